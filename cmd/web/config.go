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

	"github.com/skydm/skydm/internal/live"
	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/oauth"
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
	Sandbox       bool
	SandboxState  string
	TLSCert       string
	TLSKey        string

	// Projects and change requests (internal/projects, internal/notify).
	NSIDAuthority string     // record types <authority>.project / .changeRequest
	NotifierDID   syntax.DID // "" → each requester's own session sends the DM

	// The tunables (tunables.go), each already set to its flag, its
	// variable or its package's default. newApp adds the rest of each
	// package's configuration (sources, stores, loggers).
	Live   live.Config   // poll intervals, backoff cap, getLog timeout
	Outbox notify.Config // poll interval, lease, call timeout, backoff caps, give-up age
	Pages  pageSettings  // internal/handlers: deadlines, chat-call timeout, counts TTL
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
	fSandbox       = setting("sandbox")
	fSandboxState  = setting("sandbox-state")
	fTLSCert       = setting("tls-cert")
	fTLSKey        = setting("tls-key")
	fNSIDAuthority = setting("nsid-authority")
	fNotifierDID   = setting("notifier-did")
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
	tunables                                 []durationText // by index of tunables()
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
		{&in.db, fDB, defaultDB, false, "SQLite database file"},
		{&in.sessionSecret, fSessionSecret, "", true, "64 random bytes, base64: cookie signing (first 32) and encryption (last 32) keys; prefer the env var (see: web keygen)"},
		{&in.encKey, fEncryptionKey, "", true, "32 random bytes, base64: encrypts OAuth tokens and DPoP keys at rest; prefer the env var"},
		{&in.clientKey, fClientKey, "", true, "ES256 (P-256) private key, multibase or PEM, for the confidential OAuth client; required unless -sandbox; prefer the env var"},
		{&in.scopes, fScopes, defaultScopes, false, "OAuth scopes to request, space-separated"},
		{&in.chatService, fChatService, "", false, "chat service ref for the atproto-proxy header (default " + defaultChatService + "; in the sandbox: the sandbox's devchat)"},
		{&in.sandboxState, fSandboxState, "", false, "the sandbox's state file (PLC/PDS/chat URLs), written by make sandbox or the tests"},
		{&in.tlsCert, fTLSCert, "", false, "TLS certificate file (PEM); serve https directly"},
		{&in.tlsKey, fTLSKey, "", false, "TLS private key file (PEM)"},
		{&in.nsidAuthority, fNSIDAuthority, projects.DefaultAuthority, false, "NSID authority of the project and change-request records (<authority>.project, <authority>.changeRequest); publish lexicons/ under it if you change it"},
		{&in.notifierDID, fNotifierDID, "", false, "DID of an account that sends every change-request DM instead of the requester; it must sign in to skydm once with DM access (optional)"},
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
	return func() {
		for _, fill := range fills {
			fill()
		}
	}, nil
}

// problems collects what is wrong with a configuration, each naming its
// flag and variable.
type problems []error

func (p *problems) add(f flagEnv, format string, a ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", f, fmt.Sprintf(format, a...)))
}

// err returns nil without problems, else one error listing them all (a
// lines, one per line).
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration:\n  %w", lines(p))
}

// validate returns the configuration in, or one error listing every
// problem with it.
func (in *given) validate() (config, error) {
	c := config{
		Addr: in.addr, DBPath: in.db, Sandbox: in.sandbox, SandboxState: in.sandboxState,
		TLSCert: in.tlsCert, TLSKey: in.tlsKey, ChatService: strings.TrimSpace(in.chatService),
		Scopes: strings.Fields(in.scopes),
	}
	var p problems
	if c.DBPath == "" {
		p.add(fDB, "required")
	}
	in.secrets(&c, &p)
	in.chat(&c, &p)
	if c.Sandbox && c.SandboxState == "" {
		p.add(fSandboxState, "required with -sandbox: the state file `make sandbox` (or the tests) wrote")
	}
	if !c.Sandbox && c.SandboxState != "" {
		p.add(fSandboxState, "only with -sandbox")
	}
	in.projects(&c, &p)
	setTunables(&c, in.tunables, &p)
	if (c.TLSCert == "") != (c.TLSKey == "") {
		p.add(fTLSCert, "-tls-cert and -tls-key go together")
	}
	in.origin(&c, &p)
	if err := p.err(); err != nil {
		return config{}, err
	}
	return c, nil
}

// secrets sets the cookie keys, the encryption key and the client key.
func (in *given) secrets(c *config, p *problems) {
	switch {
	case in.sessionSecret == "":
		p.add(fSessionSecret, "required: 64 random bytes, base64 (run `web keygen`)")
	default:
		b, err := decodeBase64(in.sessionSecret)
		if err != nil || len(b) != 64 {
			p.add(fSessionSecret, "must be 64 random bytes, base64 (run `web keygen`)")
		} else {
			c.HashKey, c.BlockKey = b[:32], b[32:]
		}
	}
	if in.encKey == "" {
		p.add(fEncryptionKey, "required: 32 random bytes, base64 (run `web keygen`)")
	} else if k, err := oauth.ParseEncryptionKey(in.encKey); err != nil {
		p.add(fEncryptionKey, "%v", err)
	} else {
		c.EncryptionKey = k
	}
	if in.clientKey != "" {
		k, err := oauth.ParseClientKey(in.clientKey)
		if err != nil {
			p.add(fClientKey, "%v", err)
		} else {
			c.ClientKey = k
		}
	} else if !c.Sandbox {
		p.add(fClientKey, "required in production (only -sandbox may run as the loopback client); run `web keygen`")
	}
}

// chat checks the scopes and the chat service ref, defaulting the ref
// outside the sandbox.
func (in *given) chat(c *config, p *problems) {
	if len(c.Scopes) == 0 || !slices.Contains(c.Scopes, "atproto") {
		p.add(fScopes, "must include \"atproto\"")
	}
	if c.ChatService == "" && !c.Sandbox {
		c.ChatService = defaultChatService
	}
	if c.ChatService != "" {
		if _, _, err := parseServiceRef(c.ChatService); err != nil {
			p.add(fChatService, "%v", err)
		}
	}
}

// projects sets the record NSID authority and the notifier account.
func (in *given) projects(c *config, p *problems) {
	a := strings.TrimSpace(in.nsidAuthority)
	if _, err := projects.CollectionsFor(a); err != nil || a == "" {
		p.add(fNSIDAuthority, "%q must be a reversed domain name such as %s", in.nsidAuthority, projects.DefaultAuthority)
	} else {
		c.NSIDAuthority = a
	}
	if v := strings.TrimSpace(in.notifierDID); v != "" {
		if did, err := syntax.ParseDID(v); err != nil {
			p.add(fNotifierDID, "%q is not a DID", v)
		} else {
			c.NotifierDID = did
		}
	}
}

// origin checks the listen address and sets the public URL: required and
// https for the confidential client; for the sandbox loopback client
// http://127.0.0.1:PORT, or none (then the listen address must be
// 127.0.0.1).
func (in *given) origin(c *config, p *problems) {
	host, _, addrErr := net.SplitHostPort(c.Addr)
	if addrErr != nil {
		p.add(fAddr, "%q is not host:port", c.Addr)
	}
	loopback := c.Sandbox && in.clientKey == ""
	pu := strings.TrimSpace(in.publicURL)
	if pu == "" {
		if !loopback {
			p.add(fPublicURL, "required: the https origin browsers use, e.g. https://skydm.example")
		} else if addrErr == nil && host != "127.0.0.1" {
			p.add(fAddr, "the sandbox loopback client must listen on 127.0.0.1, got %q", c.Addr)
		}
		return
	}
	switch u, err := url.Parse(strings.TrimRight(pu, "/")); {
	case err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		p.add(fPublicURL, "%q must be scheme://host[:port] with no path", pu)
	case loopback && (u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == ""):
		p.add(fPublicURL, "the sandbox loopback client needs http://127.0.0.1:PORT (the PDS refuses \"localhost\" redirect URIs), got %q", pu)
	case !loopback && u.Scheme != "https":
		p.add(fPublicURL, "must be https (the confidential client), got %q", pu)
	case !loopback && net.ParseIP(u.Hostname()) != nil:
		p.add(fPublicURL, "must name a host, not an IP address, got %q", pu)
	default:
		c.PublicURL = u.Scheme + "://" + u.Host
	}
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
