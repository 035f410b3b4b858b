package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/oauth"
	"github.com/skydm/skydm/internal/projects"
)

// Defaults.
const (
	defaultAddr        = "127.0.0.1:8080"
	defaultDB          = "skydm.db"
	defaultScopes      = "atproto transition:generic transition:chat.bsky"
	defaultChatService = "did:web:api.bsky.chat#bsky_chat"
	defaultOutboxLease = 2 * time.Minute
	minOutboxLease     = 30 * time.Second // twice the outbox's per-call timeout
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
	Sandbox       bool
	SandboxState  string
	TLSCert       string
	TLSKey        string

	// Projects and change requests (internal/projects, internal/notify).
	NSIDAuthority string        // record types <authority>.project / .changeRequest
	NotifierDID   syntax.DID    // "" → each requester's own session sends the DM
	OutboxLease   time.Duration // how long a delivery attempt owns its outbox row
}

// loopback reports whether the app runs as the sandbox's loopback client.
func (c config) loopback() bool { return c.ClientKey == nil }

// flagEnv names a flag and the environment variable it falls back to.
type flagEnv struct{ flag, env string }

func (f flagEnv) String() string { return "-" + f.flag + " (" + f.env + ")" }

// Flags the subcommands name too (the others are parseConfig's own).
var (
	fDB          = flagEnv{"db", "SKYDM_DB"}
	fChatService = flagEnv{"chat-service", "SKYDM_CHAT_SERVICE"}
)

// parseConfig reads flags, falling back to SKYDM_* environment variables,
// and validates the result. It returns flag.ErrHelp for -h, and otherwise
// one error listing every problem, each naming the flag and variable.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var (
		fPublicURL     = flagEnv{"public-url", "SKYDM_PUBLIC_URL"}
		fAddr          = flagEnv{"addr", "SKYDM_ADDR"}
		fSessionSecret = flagEnv{"session-secret", "SKYDM_SESSION_SECRET"}
		fEncryptionKey = flagEnv{"encryption-key", "SKYDM_ENCRYPTION_KEY"}
		fClientKey     = flagEnv{"client-key", "SKYDM_CLIENT_KEY"}
		fScopes        = flagEnv{"scopes", "SKYDM_SCOPES"}
		fSandbox       = flagEnv{"sandbox", "SKYDM_SANDBOX"}
		fSandboxState  = flagEnv{"sandbox-state", "SKYDM_SANDBOX_STATE"}
		fTLSCert       = flagEnv{"tls-cert", "SKYDM_TLS_CERT"}
		fTLSKey        = flagEnv{"tls-key", "SKYDM_TLS_KEY"}
		fNSIDAuthority = flagEnv{"nsid-authority", "SKYDM_NSID_AUTHORITY"}
		fNotifierDID   = flagEnv{"notifier-did", "SKYDM_NOTIFIER_DID"}
		fOutboxLease   = flagEnv{"outbox-lease", "SKYDM_OUTBOX_LEASE"}
	)
	fs := flag.NewFlagSet("web", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(f flagEnv, def string) string {
		if v := getenv(f.env); v != "" {
			return v
		}
		return def
	}
	str := func(f flagEnv, def, usage string) *string {
		return fs.String(f.flag, env(f, def), usage+" ["+f.env+"]")
	}
	// secret is str for secrets: the environment value is not made the
	// flag's default, because flag prints defaults in its usage text (on -h
	// or any mistyped flag) and the secret would land in a terminal or log.
	// The environment is read after parsing, when the flag was not given.
	var secrets []func()
	secret := func(f flagEnv, usage string) *string {
		p := fs.String(f.flag, "", usage+" ["+f.env+"]")
		secrets = append(secrets, func() {
			if *p == "" {
				*p = getenv(f.env)
			}
		})
		return p
	}
	publicURL := str(fPublicURL, "", "public origin browsers use: https://host[:port] (production); sandbox loopback client: http://127.0.0.1:PORT, default the listening address")
	addr := str(fAddr, defaultAddr, "listen address")
	dbPath := str(fDB, defaultDB, "SQLite database file")
	sessionSecret := secret(fSessionSecret, "64 random bytes, base64: cookie signing (first 32) and encryption (last 32) keys; prefer the env var (see: web keygen)")
	encKey := secret(fEncryptionKey, "32 random bytes, base64: encrypts OAuth tokens and DPoP keys at rest; prefer the env var")
	clientKey := secret(fClientKey, "ES256 (P-256) private key, multibase or PEM, for the confidential OAuth client; required unless -sandbox; prefer the env var")
	scopes := str(fScopes, defaultScopes, "OAuth scopes to request, space-separated")
	chatService := str(fChatService, "", "chat service ref for the atproto-proxy header (default "+defaultChatService+"; in the sandbox: the sandbox's devchat)")
	sandboxDefault := false
	if v := getenv(fSandbox.env); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return config{}, fmt.Errorf("%s: %q is not true or false", fSandbox, v)
		}
		sandboxDefault = b
	}
	sandbox := fs.Bool(fSandbox.flag, sandboxDefault, "development against the local sandbox network (never in production) ["+fSandbox.env+"]")
	sandboxState := str(fSandboxState, "", "the sandbox's state file (PLC/PDS/chat URLs), written by make sandbox or the tests")
	tlsCert := str(fTLSCert, "", "TLS certificate file (PEM); serve https directly")
	tlsKey := str(fTLSKey, "", "TLS private key file (PEM)")
	nsidAuthority := str(fNSIDAuthority, projects.DefaultAuthority, "NSID authority of the project and change-request records (<authority>.project, <authority>.changeRequest); publish lexicons/ under it if you change it")
	notifierDID := str(fNotifierDID, "", "DID of an account that sends every change-request DM instead of the requester; it must sign in to skydm once with DM access (optional)")
	outboxLease := str(fOutboxLease, defaultOutboxLease.String(), "how long one delivery attempt owns an outbox row; after a crash the row is retried when this has passed (at least 30s)")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	for _, fill := range secrets {
		fill()
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q (subcommands: %s)", fs.Args(), strings.Join(subcommandNames(), ", "))
	}

	c := config{
		Addr: *addr, DBPath: *dbPath, Sandbox: *sandbox, SandboxState: *sandboxState,
		TLSCert: *tlsCert, TLSKey: *tlsKey, ChatService: strings.TrimSpace(*chatService),
		Scopes: strings.Fields(*scopes),
	}
	var problems []error
	bad := func(f flagEnv, format string, a ...any) {
		problems = append(problems, fmt.Errorf("%s: %s", f, fmt.Sprintf(format, a...)))
	}

	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		bad(fAddr, "%q is not host:port", c.Addr)
	}
	if c.DBPath == "" {
		bad(fDB, "required")
	}

	switch {
	case *sessionSecret == "":
		bad(fSessionSecret, "required: 64 random bytes, base64 (run `web keygen`)")
	default:
		b, err := decodeBase64(*sessionSecret)
		if err != nil || len(b) != 64 {
			bad(fSessionSecret, "must be 64 random bytes, base64 (run `web keygen`)")
		} else {
			c.HashKey, c.BlockKey = b[:32], b[32:]
		}
	}
	if *encKey == "" {
		bad(fEncryptionKey, "required: 32 random bytes, base64 (run `web keygen`)")
	} else if k, err := oauth.ParseEncryptionKey(*encKey); err != nil {
		bad(fEncryptionKey, "%v", err)
	} else {
		c.EncryptionKey = k
	}
	if *clientKey != "" {
		k, err := oauth.ParseClientKey(*clientKey)
		if err != nil {
			bad(fClientKey, "%v", err)
		} else {
			c.ClientKey = k
		}
	} else if !c.Sandbox {
		bad(fClientKey, "required in production (only -sandbox may run as the loopback client); run `web keygen`")
	}

	if len(c.Scopes) == 0 || !slices.Contains(c.Scopes, "atproto") {
		bad(fScopes, "must include \"atproto\"")
	}
	if c.ChatService == "" && !c.Sandbox {
		c.ChatService = defaultChatService
	}
	if c.ChatService != "" {
		if _, _, err := parseServiceRef(c.ChatService); err != nil {
			bad(fChatService, "%v", err)
		}
	}

	if c.Sandbox && c.SandboxState == "" {
		bad(fSandboxState, "required with -sandbox: the state file `make sandbox` (or the tests) wrote")
	}
	if !c.Sandbox && c.SandboxState != "" {
		bad(fSandboxState, "only with -sandbox")
	}
	if _, err := projects.CollectionsFor(strings.TrimSpace(*nsidAuthority)); err != nil || strings.TrimSpace(*nsidAuthority) == "" {
		bad(fNSIDAuthority, "%q must be a reversed domain name such as %s", *nsidAuthority, projects.DefaultAuthority)
	} else {
		c.NSIDAuthority = strings.TrimSpace(*nsidAuthority)
	}
	if v := strings.TrimSpace(*notifierDID); v != "" {
		if did, err := syntax.ParseDID(v); err != nil {
			bad(fNotifierDID, "%q is not a DID", v)
		} else {
			c.NotifierDID = did
		}
	}
	if d, err := time.ParseDuration(strings.TrimSpace(*outboxLease)); err != nil || d < minOutboxLease {
		bad(fOutboxLease, "%q must be a duration of at least %s, e.g. 2m", *outboxLease, minOutboxLease)
	} else {
		c.OutboxLease = d
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad(fTLSCert, "-tls-cert and -tls-key go together")
	}

	loopback := c.Sandbox && *clientKey == ""
	if pu := strings.TrimSpace(*publicURL); pu == "" {
		if !loopback {
			bad(fPublicURL, "required: the https origin browsers use, e.g. https://skydm.example")
		} else if err == nil && host != "127.0.0.1" {
			bad(fAddr, "the sandbox loopback client must listen on 127.0.0.1, got %q", c.Addr)
		}
	} else if u, perr := url.Parse(strings.TrimRight(pu, "/")); perr != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		bad(fPublicURL, "%q must be scheme://host[:port] with no path", pu)
	} else if loopback && (u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "") {
		bad(fPublicURL, "the sandbox loopback client needs http://127.0.0.1:PORT (the PDS refuses \"localhost\" redirect URIs), got %q", pu)
	} else if !loopback && u.Scheme != "https" {
		bad(fPublicURL, "must be https (the confidential client), got %q", pu)
	} else if !loopback && net.ParseIP(u.Hostname()) != nil {
		bad(fPublicURL, "must name a host, not an IP address, got %q", pu)
	} else {
		c.PublicURL = u.Scheme + "://" + u.Host
	}
	if len(problems) > 0 {
		return config{}, fmt.Errorf("invalid configuration:\n  %w", joinLines(problems))
	}
	return c, nil
}

// parseServiceRef splits "did:…#service_id" into the DID and the id,
// returning an error when ref is not of that form.
func parseServiceRef(ref string) (syntax.DID, string, error) {
	d, id, ok := strings.Cut(ref, "#")
	if !ok || id == "" {
		return "", "", fmt.Errorf("%q must be did:…#service_id", ref)
	}
	did, err := syntax.ParseDID(d)
	if err != nil {
		return "", "", fmt.Errorf("%q does not start with a DID", ref)
	}
	return did, id, nil
}

// decodeBase64 accepts standard or URL base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// lines is a list of problems printed one per line.
type lines []error

func (l lines) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n  ")
}

func joinLines(errs []error) error { return lines(errs) }
