# skydm — `make help` lists the targets.
SHELL := bash
.DEFAULT_GOAL := help
GO ?= go
PKGS := ./...

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The chat.bsky Go types and XRPC calls (internal/lex/chat) come from the
# vendored official lexicons (lexicons/official, source commit in its README)
# through indigo's own generator; the record types' CBOR encoders through
# cbor-gen, as indigo does. Generated files are committed.
LEX := lexicons/official
LEXGEN_DIRS := $(addprefix $(LEX)/chat/bsky/,actor convo embed group moderation notification)
GENERATED := views internal/lex/chat

.PHONY: generate
generate: ## regenerate templ components and the chat.bsky types (commit the generated files)
	$(GO) tool templ generate -path views
	@grep -l '^// Code generated' internal/lex/chat/*.go | xargs -r rm -f
	@$(GO) tool lexgen --build-file $(LEX)/lexgen.json --external-lexicons $(LEX)/app --external-lexicons $(LEX)/com $(LEXGEN_DIRS) >/dev/null
	@$(GO) run -tags cborgen ./internal/lex/cborgen

.PHONY: build
build: ## build bin/web, bin/devchat, bin/sandbox
	$(GO) build -o bin/ ./cmd/...

.PHONY: install-sandbox
install-sandbox: ## install Node 22 and the sandbox's npm packages once (cached outside the repo)
	@sandbox/install.sh >/dev/null

# A test skipped for want of a tool (Chromium, for the browser tests) leaves
# one line in $$SKYDM_SKIP_DIR (internal/testenv); the recipe counts them at
# the end, so skips are never silent. Under CI=true they fail instead.
.PHONY: test
test: install-sandbox ## run every test (unit + end to end against the sandbox) with -race
	@skips=$$(mktemp -d); trap 'rm -rf "$$skips"' EXIT; \
	echo "$(GO) test -race -count=1 -timeout 25m $(PKGS)"; \
	SKYDM_SKIP_DIR=$$skips $(GO) test -race -count=1 -timeout 25m $(PKGS); status=$$?; \
	n=$$(ls "$$skips" | wc -l); \
	if [ "$$n" -gt 0 ]; then \
	  echo; echo "make test: $$n test(s) were SKIPPED and checked nothing:"; \
	  sort "$$skips"/* | uniq -c; \
	fi; \
	exit $$status

.PHONY: bench
bench: install-sandbox ## run the benchmarks (speed and memory targets)
	$(GO) test -run '^$$' -bench . -benchmem -count 1 $(PKGS)

.PHONY: lint
lint: ## gofmt, go vet, and generated files current
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@$(MAKE) -s generate >/dev/null && \
	  if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then echo "generated files are stale: run make generate and commit"; git status --porcelain -- $(GENERATED); exit 1; fi

.PHONY: keys
keys: ## print fresh secrets and a client signing key for production
	$(GO) run ./cmd/web keygen

.PHONY: sandbox
sandbox: install-sandbox ## start PLC + PDS + devchat on 127.0.0.1 with demo accounts (Ctrl-C stops and wipes)
	$(GO) run ./cmd/sandbox

.PHONY: demo
demo: install-sandbox ## sandbox + web app with demo accounts and conversations; prints the URL and logins
	$(GO) build -o bin/ ./cmd/web ./cmd/demo
	bin/demo

.PHONY: demo-cluster
demo-cluster: install-sandbox ## make demo with two web app instances on one throw-away Postgres behind a round-robin proxy
	$(GO) build -o bin/ ./cmd/web ./cmd/demo
	bin/demo -cluster
