package metrics

import (
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// maxLabelValues caps the distinct values of the host and of the method
// label: later ones are "other". skydm calls a fixed set of NSIDs and its
// users' PDS hosts, but a hostile network can redirect to made-up paths,
// and anyone can try to sign in naming a made-up PDS.
const maxLabelValues = 200

// fixedMethods names the upstream paths that are not XRPC and that skydm
// calls: OAuth discovery and the reference PDS's OAuth endpoints, and
// identity resolution. The keys are exact paths.
var fixedMethods = map[string]string{
	"/.well-known/oauth-protected-resource":   "oauth-protected-resource",
	"/.well-known/oauth-authorization-server": "oauth-authorization-server",
	"/.well-known/atproto-did":                "atproto-did",
	"/.well-known/did.json":                   "did.json",
	"/oauth/par":                              "oauth.par",
	"/oauth/token":                            "oauth.token",
	"/oauth/revoke":                           "oauth.revoke",
}

// identityPaths are paths whose host names an account (a handle, a
// did:web): their host label is "other".
var identityPaths = map[string]bool{"/.well-known/atproto-did": true, "/.well-known/did.json": true}

// labeler turns an upstream request URL into bounded host and method
// labels. Safe for concurrent use.
type labeler struct{ hosts, methods capped }

func newLabeler() *labeler {
	return &labeler{hosts: capped{seen: map[string]bool{}}, methods: capped{seen: map[string]bool{}}}
}

// request returns the host and method labels of u: never a DID, a
// handle, a query or a path beyond the NSID.
func (l *labeler) request(u *url.URL) (host, method string) {
	host = valueOther
	if !identityPaths[u.Path] {
		host = l.hosts.value(strings.ToLower(u.Host))
	}
	return host, l.methods.value(methodOf(u.Path))
}

// methodOf is the method of an upstream path before the cap.
func methodOf(path string) string {
	if nsid, ok := strings.CutPrefix(path, "/xrpc/"); ok {
		if _, err := syntax.ParseNSID(nsid); err == nil {
			return nsid
		}
		return valueOther
	}
	if m, ok := fixedMethods[path]; ok {
		return m
	}
	if strings.HasPrefix(path, "/did:plc:") {
		return "plc" // a PLC directory lookup; the DID stays out
	}
	return valueOther
}

// capped passes the first maxLabelValues distinct values through and
// turns later ones into "other".
type capped struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (c *capped) value(v string) string {
	if v == "" || v == valueOther {
		return valueOther
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[v] {
		return v
	}
	if len(c.seen) >= maxLabelValues {
		return valueOther
	}
	c.seen[v] = true
	return v
}

// statusLabel is code as text, or "other" outside 100–599.
func statusLabel(code int) string {
	if code < 100 || code > 599 {
		return valueOther
	}
	return strconv.Itoa(code)
}
