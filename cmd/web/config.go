package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/budget"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/live"
	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/projects"
)

// Defaults of the settings that are cmd/web's own (the tunables' defaults
// are their packages', see tunables.go).
const (
	defaultAddr        = "127.0.0.1:8080"
	defaultDB          = "skydm.db"
	defaultScopes      = "atproto transition:generic transition:chat.bsky"
	defaultChatService = "did:web:api.bsky.chat#bsky_chat"
)

// config is the validated configuration.
type config struct {
	PublicURL     string // "" → http://<listen address> (sandbox loopback client only); port 0 → the listening port
	Addr          string
	DBPath        string
	HashKey       []byte // signs the session cookie
	BlockKey      []byte // encrypts the session cookie
	EncryptionKey []byte // 32 bytes, tokens and DPoP keys at rest
	ClientKey     atcrypto.PrivateKey
	Scopes        []string
	ChatService   string // "" in the sandbox when not set: taken from the sandbox state file
	// ModerationService is the DID reports go to (its #atproto_labeler);
	// "" in the sandbox when not set: the sandbox's devchat.
	ModerationService string
	Sandbox           bool
	SandboxState      string
	TLSCert           string
	TLSKey            string
	MetricsAddr       string // "" → no metrics listener (metrics.go)

	// Projects and change requests (internal/projects, internal/notify).
	NSIDAuthority string     // record types <authority>.project / .changeRequest
	NotifierDID   syntax.DID // "" → each requester's own session sends the DM

	// The tunables (tunables.go), each already set to its flag, its
	// variable or its package's default. newApp adds the rest of each
	// package's configuration (sources, stores, loggers).
	Live   live.Config   // poll intervals, backoff cap, getLog timeout
	Outbox notify.Config // poll interval, lease, call timeout, backoff caps, give-up age
	Pages  pageSettings  // internal/handlers: deadlines, chat-call timeout, counts TTL
	Budget budget.Config // internal/budget: requests per window per upstream host
}

// pageSettings are the tunables of internal/handlers: its Config's
// PageDeadline and SignInDeadline, and its DMs' UpstreamTimeout and
// CountsTTL.
type pageSettings struct {
	Deadline, SignInDeadline, ChatTimeout, CountsTTL time.Duration
}

// loopback reports whether the app runs as the sandbox's loopback client.
func (c config) loopback() bool { return c.ClientKey == nil }

func clientKind(cfg config) string {
	if cfg.loopback() {
		return "loopback"
	}
	return "confidential"
}

// flagEnv names a flag and the environment variable it falls back to.
type flagEnv struct{ flag, env string }

func (f flagEnv) String() string { return "-" + f.flag + " (" + f.env + ")" }

// setting is the flagEnv of a flag whose variable is SKYDM_ and the flag's
// name in capitals, "-" made "_" (as every flag's is).
func setting(name string) flagEnv {
	return flagEnv{name, "SKYDM_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
}

// The flags of serving (the subcommands name fDB and fChatService too).
var (
	fPublicURL     = setting("public-url")
	fAddr          = setting("addr")
	fDB            = setting("db")
	fSessionSecret = setting("session-secret")
	fEncryptionKey = setting("encryption-key")
	fClientKey     = setting("client-key")
	fScopes        = setting("scopes")
	fChatService   = setting("chat-service")
	fModeration    = setting("moderation-service")
	fSandbox       = setting("sandbox")
	fSandboxState  = setting("sandbox-state")
	fTLSCert       = setting("tls-cert")
	fTLSKey        = setting("tls-key")
	fNSIDAuthority = setting("nsid-authority")
	fNotifierDID   = setting("notifier-did")
	fMetricsAddr   = setting("metrics-addr")
)

// parseConfig reads flags, falling back to SKYDM_* environment variables,
// and validates the result. It returns flag.ErrHelp for -h, and otherwise
// one error listing every problem, each naming the flag and variable.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	in, err := readFlags(args, getenv, stderr)
	if err != nil {
		return config{}, err
	}
	return in.validate()
}

// given is the configuration as given (flag, else variable, else default),
// before validation.
type given struct {
	publicURL, addr, db, scopes, chatService string
	sessionSecret, encKey, clientKey         string
	sandbox                                  bool
	sandboxState, tlsCert, tlsKey            string
	nsidAuthority, notifierDID               string
	moderationService                        string
	metricsAddr                              string
	tunables                                 []durationText // by index of tunables()
	counts                                   []durationText // by index of counts()
}

// readFlags defines the flags on a flag set writing its usage to stderr,
// and parses args. It returns flag.ErrHelp for -h, the flag package's error
// for an unknown or malformed flag, and an error for a non-boolean
// SKYDM_SANDBOX or for arguments left over.
func readFlags(args []string, getenv func(string) string, stderr io.Writer) (*given, error) {
	in := &given{}
	fs := flag.NewFlagSet("web", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fillSecrets, err := in.define(fs, getenv)
	if err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	fillSecrets()
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (subcommands: %s)", fs.Args(), strings.Join(subcommandNames(), ", "))
	}
	return in, nil
}

// define defines every flag of serving on fs, each defaulting to its
// variable, else its default. A secret's variable is not made its flag's
// default, because flag prints defaults in its usage text (on -h or any
// mistyped flag) and the secret would land in a terminal or log: call
// fillSecrets after parsing to read the variables of secrets not given as
// flags. It returns an error when SKYDM_SANDBOX is not a boolean.
func (in *given) define(fs *flag.FlagSet, getenv func(string) string) (fillSecrets func(), err error) {
	strs := []struct {
		p      *string
		f      flagEnv
		def    string
		secret bool
		usage  string
	}{
		{&in.publicURL, fPublicURL, "", false, "public origin browsers use: https://host[:port] (production); sandbox loopback client: http://127.0.0.1:PORT, default the listening address"},
		{&in.addr, fAddr, defaultAddr, false, "listen address"},
		{&in.db, fDB, defaultDB, false, "SQLite database file, or a postgres:// URL (several instances share one Postgres)"},
		{&in.sessionSecret, fSessionSecret, "", true, "64 random bytes, base64: cookie signing (first 32) and encryption (last 32) keys; prefer the env var (see: web keygen)"},
		{&in.encKey, fEncryptionKey, "", true, "32 random bytes, base64: encrypts OAuth tokens and DPoP keys at rest; prefer the env var"},
		{&in.clientKey, fClientKey, "", true, "ES256 (P-256) private key, multibase or PEM, for the confidential OAuth client; required unless -sandbox; prefer the env var"},
		{&in.scopes, fScopes, defaultScopes, false, "OAuth scopes to request, space-separated"},
		{&in.chatService, fChatService, "", false, "chat service ref for the atproto-proxy header (default " + defaultChatService + "; in the sandbox: the sandbox's devchat)"},
		{&in.moderationService, fModeration, "", false, "DID of the moderation service reports are sent to, through the user's PDS to its #atproto_labeler (default " + chatproxy.DefaultModerationService + ", Bluesky's; in the sandbox: the sandbox's devchat)"},
		{&in.sandboxState, fSandboxState, "", false, "the sandbox's state file (PLC/PDS/chat URLs), written by make sandbox or the tests"},
		{&in.tlsCert, fTLSCert, "", false, "TLS certificate file (PEM); serve https directly"},
		{&in.tlsKey, fTLSKey, "", false, "TLS private key file (PEM)"},
		{&in.nsidAuthority, fNSIDAuthority, projects.DefaultAuthority, false, "NSID authority of the project and change-request records (<authority>.project, <authority>.changeRequest); publish lexicons/ under it if you change it"},
		{&in.notifierDID, fNotifierDID, "", false, "DID of an account that sends every change-request DM instead of the requester; it must sign in to skydm once with DM access (optional)"},
		{&in.metricsAddr, fMetricsAddr, "", false, "listen address of a second listener serving only Prometheus /metrics, e.g. 127.0.0.1:9090; keep it off the public network (default: no metrics)"},
	}
	var fills []func()
	for _, s := range strs {
		def := s.def
		if v := getenv(s.f.env); v != "" && !s.secret {
			def = v
		}
		fs.StringVar(s.p, s.f.flag, def, s.usage+" ["+s.f.env+"]")
		if s.secret {
			fills = append(fills, func() {
				if *s.p == "" {
					*s.p = getenv(s.f.env)
				}
			})
		}
	}
	sandboxDefault := false
	if v := getenv(fSandbox.env); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not true or false", fSandbox, v)
		}
		sandboxDefault = b
	}
	fs.BoolVar(&in.sandbox, fSandbox.flag, sandboxDefault, "development against the local sandbox network (never in production) ["+fSandbox.env+"]")
	ts := tunables()
	in.tunables = make([]durationText, len(ts))
	for i, t := range ts {
		in.tunables[i] = durationText(t.def.String())
		if v := getenv(t.env); v != "" {
			in.tunables[i] = durationText(v)
		}
		fs.Var(&in.tunables[i], t.flag, t.usage+"; a `duration` ["+t.env+"]")
	}
	in.counts = defineCounts(fs, getenv)
	return func() {
		for _, fill := range fills {
			fill()
		}
	}, nil
}
