package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/oauth"
	"github.com/skydm/skydm/internal/projects"
)

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
	setCounts(&c, in.counts, &p)
	if (c.TLSCert == "") != (c.TLSKey == "") {
		p.add(fTLSCert, "-tls-cert and -tls-key go together")
	}
	in.origin(&c, &p)
	in.metrics(&c, &p)
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
	c.ModerationService = strings.TrimSpace(in.moderationService)
	if c.ModerationService == "" && !c.Sandbox {
		c.ModerationService = chatproxy.DefaultModerationService
	}
	if v := c.ModerationService; v != "" {
		if _, err := syntax.ParseDID(v); err != nil {
			p.add(fModeration, "%q is not a DID (give the DID alone; reports go to its #atproto_labeler)", v)
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
