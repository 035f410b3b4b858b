package main

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/bluesky-social/indigo/atproto/identity"

	"github.com/skydm/skydm/internal/atid"
	"github.com/skydm/skydm/internal/budget"
	"github.com/skydm/skydm/internal/metrics"
	"github.com/skydm/skydm/internal/safehttp"
	"github.com/skydm/skydm/internal/sandbox"
)

// upstream is how skydm reaches the atproto network: in production through
// safehttp (timeouts, size caps, SSRF guard) and the public resolvers; with
// -sandbox through the local network named in the sandbox state file.
// Every request (identity, OAuth and its token endpoint, PDS and chat
// calls of pages, live updates, the outbox and the reconciler) goes through
// httpClient, whose transport spends the instance's budget per host.
type upstream struct {
	dir          identity.Directory
	httpClient   *http.Client
	budget       *budget.Budget   // requests per upstream host, foreground first
	imageOrigins []string         // where avatars may be loaded from (CSP img-src)
	chatService  string           // the chat service ref in effect
	moderation   string           // the moderation service DID in effect
	sandbox      *sandbox.Network // nil in production
}

// newUpstream builds the upstream of cfg. It returns an error naming
// -sandbox-state when the sandbox state file cannot be read.
func newUpstream(cfg config) (upstream, error) { return newUpstreamVia(cfg, nil) }

// newUpstreamVia is newUpstream whose requests the budget lets through
// pass through sent (nil: none) on their way out, e.g. to be counted: a
// request the budget refuses is never sent and passes through nothing.
func newUpstreamVia(cfg config, sent func(http.RoundTripper) http.RoundTripper) (upstream, error) {
	if !cfg.Sandbox {
		client, b := budgeted(safehttp.NewClient(safehttp.Options{}), cfg.Budget, sent)
		return upstream{
			dir:          atid.NewProduction(client),
			httpClient:   client,
			budget:       b,
			imageOrigins: []string{productionImageOrigin},
			chatService:  cfg.ChatService,
			moderation:   cfg.ModerationService,
		}, nil
	}
	sb, err := sandbox.Load(cfg.SandboxState)
	if err != nil {
		return upstream{}, fmt.Errorf("-sandbox-state: %w", err)
	}
	pds, err := url.Parse(sb.PDSURL)
	if err != nil || pds.Host == "" {
		return upstream{}, fmt.Errorf("-sandbox-state: PDS URL %q: %v", sb.PDSURL, err)
	}
	client, b := budgeted(safehttp.NewClient(safehttp.Options{AllowPrivate: true, AllowHTTP: true}), cfg.Budget, sent)
	up := upstream{
		dir:          atid.NewSandbox(sb.PLCURL, sb.PDSURL, client),
		httpClient:   client,
		budget:       b,
		imageOrigins: []string{pds.Scheme + "://" + pds.Host}, // avatars are the PDS's getBlob
		chatService:  cfg.ChatService,
		moderation:   cfg.ModerationService,
		sandbox:      sb,
	}
	if up.chatService == "" {
		up.chatService = sb.ChatServiceRef
	}
	if up.moderation == "" { // devchat records reports (its #atproto_labeler)
		up.moderation = sb.ChatDID
	}
	return up, nil
}

// budgeted makes client's transport spend a Budget of cfg, the requests
// it sends going through sent (if not nil), and returns both.
func budgeted(client *http.Client, cfg budget.Config, sent func(http.RoundTripper) http.RoundTripper) (*http.Client, *budget.Budget) {
	b := budget.New(cfg)
	if sent != nil {
		client.Transport = sent(client.Transport)
	}
	client.Transport = b.Transport(client.Transport)
	return client, b
}

// hostBudgets is b's snapshot for the metrics: of each host's bucket, what
// may be spent now and its size.
func hostBudgets(b *budget.Budget) []metrics.HostBudget {
	snap := b.Snapshot()
	out := make([]metrics.HostBudget, len(snap))
	for i, s := range snap {
		out[i] = metrics.HostBudget{Host: s.Host, Left: s.Tokens, Limit: s.Capacity}
	}
	return out
}
