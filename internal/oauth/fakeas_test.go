package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// fakeAS is an in-process atproto PDS that is its own authorization
// server, just faithful enough for the client: PAR, authorization codes,
// token (code + refresh with rotation and replay detection), revocation,
// DPoP nonces, and two XRPC endpoints (com.atproto.server.getSession, and
// chat.bsky.convo.listConvos answering no conversations).
type fakeAS struct {
	t      testing.TB
	srv    *httptest.Server
	origin string // http://localhost:PORT

	mu            sync.Mutex
	issuer        string // metadata issuer (default origin)
	authServer    string // protected resource's authorization server (default origin)
	grantScope    string // "" → what was requested
	sub           string // "" → the DID given to approve
	nonce         string
	requireNonce  bool
	nonceNoHeader bool              // resource requests get use_dpop_nonce without a DPoP-Nonce header
	pars          map[string]parReq // request_uri → request
	codes         map[string]*codeInfo
	access        map[string]*tokenInfo // access token → info
	refreshTokens map[string]*tokenInfo // current refresh token → info
	seq           int

	parCount, codeRedemptions, refreshCount, revokeCount, xrpcCount int
	refreshDelay                                                    time.Duration
	refreshHold                                                     chan struct{} // non-nil: refresh answers wait until it is closed
	revokeFail                                                      bool
	tokenUnavailable                                                bool

	// expired-token barrier: hold 401 answers until this many requests
	// with an expired token have arrived (or a deadline passes).
	barrierN   int
	barrierHit int
	barrierCh  chan struct{}
}

type parReq struct {
	form url.Values
	jkt  string
}

type codeInfo struct {
	state, challenge, scope, redirect, did string
	used                                   bool
}

type tokenInfo struct {
	did, scope      string
	access, refresh string
	expired, dead   bool
}

func newFakeAS(t testing.TB) *fakeAS {
	f := &fakeAS{
		t:             t,
		nonce:         "nonce-1",
		pars:          map[string]parReq{},
		codes:         map[string]*codeInfo{},
		access:        map[string]*tokenInfo{},
		refreshTokens: map[string]*tokenInfo{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-protected-resource", f.protectedResource)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", f.metadata)
	mux.HandleFunc("POST /oauth/par", f.par)
	mux.HandleFunc("POST /oauth/token", f.token)
	mux.HandleFunc("POST /oauth/revoke", f.revoke)
	mux.HandleFunc("GET /xrpc/com.atproto.server.getSession", f.getSession)
	mux.HandleFunc("GET /xrpc/chat.bsky.convo.listConvos", f.getSession)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.origin = strings.Replace(f.srv.URL, "127.0.0.1", "localhost", 1)
	f.issuer = f.origin
	f.authServer = f.origin
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeAS) protectedResource(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	writeJSON(w, 200, map[string]any{"resource": f.origin, "authorization_servers": []string{f.authServer}})
}

func (f *fakeAS) metadata(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.origin
	writeJSON(w, 200, map[string]any{
		"issuer":                                           f.issuer,
		"authorization_endpoint":                           o + "/oauth/authorize",
		"token_endpoint":                                   o + "/oauth/token",
		"pushed_authorization_request_endpoint":            o + "/oauth/par",
		"revocation_endpoint":                              o + "/oauth/revoke",
		"response_types_supported":                         []string{"code"},
		"grant_types_supported":                            []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":                 []string{"S256"},
		"token_endpoint_auth_methods_supported":            []string{"none", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"ES256"},
		"scopes_supported":                                 []string{"atproto", "transition:generic", "transition:chat.bsky"},
		"authorization_response_iss_parameter_supported":   true,
		"require_pushed_authorization_requests":            true,
		"dpop_signing_alg_values_supported":                []string{"ES256"},
		"client_id_metadata_document_supported":            true,
	})
}

// jwtPart decodes the JSON of part i (0 header, 1 payload) of a JWT.
func jwtPart(tok string, i int) map[string]any {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

// checkDPoP enforces a proof with the current nonce (when required);
// returns false after answering use_dpop_nonce.
func (f *fakeAS) checkDPoP(w http.ResponseWriter, r *http.Request, resource bool) bool {
	proof := r.Header.Get("DPoP")
	claims := jwtPart(proof, 1)
	if claims == nil {
		writeJSON(w, 400, map[string]string{"error": "invalid_dpop_proof"})
		return false
	}
	if resource && f.nonceNoHeader {
		w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="nonce required"`)
		writeJSON(w, 401, map[string]string{"error": "use_dpop_nonce"})
		return false
	}
	if f.requireNonce && claims["nonce"] != f.nonce {
		w.Header().Set("DPoP-Nonce", f.nonce)
		if resource {
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce", error_description="nonce required"`)
			writeJSON(w, 401, map[string]string{"error": "use_dpop_nonce"})
		} else {
			writeJSON(w, 400, map[string]string{"error": "use_dpop_nonce"})
		}
		return false
	}
	return true
}

func (f *fakeAS) par(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.checkDPoP(w, r, false) {
		return
	}
	f.parCount++
	f.seq++
	uri := fmt.Sprintf("urn:ietf:params:oauth:request_uri:req-%d", f.seq)
	f.pars[uri] = parReq{form: r.PostForm}
	writeJSON(w, 201, map[string]any{"request_uri": uri, "expires_in": 300})
}

// approve plays the user consenting: it returns the callback query for
// the PAR behind authorizeURL, as the PDS would redirect with it.
func (f *fakeAS) approve(authorizeURL string, did syntax.DID) url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, err := url.Parse(authorizeURL)
	if err != nil {
		f.t.Fatalf("authorize URL: %v", err)
	}
	p, ok := f.pars[u.Query().Get("request_uri")]
	if !ok {
		f.t.Fatalf("unknown request_uri in %s", authorizeURL)
	}
	f.seq++
	code := fmt.Sprintf("cod-%d", f.seq)
	scope := p.form.Get("scope")
	if f.grantScope != "" {
		scope = f.grantScope
	}
	f.codes[code] = &codeInfo{state: p.form.Get("state"), challenge: p.form.Get("code_challenge"),
		scope: scope, redirect: p.form.Get("redirect_uri"), did: did.String()}
	return url.Values{"state": {p.form.Get("state")}, "iss": {f.issuer}, "code": {code}}
}

func (f *fakeAS) parForm(authorizeURL string) url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, _ := url.Parse(authorizeURL)
	return f.pars[u.Query().Get("request_uri")].form
}

func (f *fakeAS) issue(did, scope string) *tokenInfo {
	f.seq++
	ti := &tokenInfo{did: did, scope: scope,
		access: fmt.Sprintf("at-%d", f.seq), refresh: fmt.Sprintf("ref-%d", f.seq)}
	f.access[ti.access] = ti
	f.refreshTokens[ti.refresh] = ti
	return ti
}

func (f *fakeAS) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f.mu.Lock()
	if !f.checkDPoP(w, r, false) {
		f.mu.Unlock()
		return
	}
	if f.tokenUnavailable {
		f.mu.Unlock()
		writeJSON(w, 503, map[string]string{"error": "temporarily_unavailable"})
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		defer f.mu.Unlock()
		f.codeRedemptions++
		c, ok := f.codes[r.PostForm.Get("code")]
		if !ok || c.used {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "code used or unknown"})
			return
		}
		c.used = true
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge || r.PostForm.Get("redirect_uri") != c.redirect {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "PKCE or redirect mismatch"})
			return
		}
		ti := f.issue(c.did, c.scope)
		sub := c.did
		if f.sub != "" {
			sub = f.sub
		}
		writeJSON(w, 200, map[string]any{"access_token": ti.access, "token_type": "DPoP", "refresh_token": ti.refresh,
			"scope": ti.scope, "sub": sub, "expires_in": 3600})
	case "refresh_token":
		f.refreshCount++
		delay, hold := f.refreshDelay, f.refreshHold
		f.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay) // simulated network latency, not synchronisation
		}
		if hold != nil {
			<-hold
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		old, ok := f.refreshTokens[r.PostForm.Get("refresh_token")]
		if !ok || old.dead {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "Invalid refresh token"})
			return
		}
		delete(f.refreshTokens, old.refresh)
		old.dead = true
		delete(f.access, old.access)
		ti := f.issue(old.did, old.scope)
		writeJSON(w, 200, map[string]any{"access_token": ti.access, "token_type": "DPoP", "refresh_token": ti.refresh,
			"scope": ti.scope, "sub": ti.did, "expires_in": 3600})
	default:
		f.mu.Unlock()
		writeJSON(w, 400, map[string]string{"error": "unsupported_grant_type"})
	}
}

func (f *fakeAS) revoke(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.checkDPoP(w, r, false) {
		return
	}
	f.revokeCount++
	if f.revokeFail {
		writeJSON(w, 500, map[string]string{"error": "server_error"})
		return
	}
	tok := r.PostForm.Get("token")
	if ti, ok := f.access[tok]; ok {
		ti.dead = true
	}
	if ti, ok := f.refreshTokens[tok]; ok {
		ti.dead = true
	}
	w.WriteHeader(200)
}

func (f *fakeAS) getSession(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.xrpcCount++
	if !f.checkDPoP(w, r, true) {
		f.mu.Unlock()
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
	ti := f.access[tok]
	claims := jwtPart(r.Header.Get("DPoP"), 1)
	sum := sha256.Sum256([]byte(tok))
	if !ok || claims["ath"] != base64.RawURLEncoding.EncodeToString(sum[:]) || claims["htu"] != f.origin+r.URL.Path {
		f.mu.Unlock()
		writeJSON(w, 400, map[string]string{"error": "InvalidToken", "message": "bad DPoP proof"})
		return
	}
	if ti == nil || ti.expired || ti.dead {
		var wait chan struct{}
		if ti != nil && ti.expired && f.barrierN > 0 {
			f.barrierHit++
			if f.barrierHit == f.barrierN {
				close(f.barrierCh)
			}
			wait = f.barrierCh
		}
		f.mu.Unlock()
		if wait != nil {
			select {
			case <-wait:
			case <-time.After(5 * time.Second):
			}
		}
		w.Header().Set("WWW-Authenticate", `DPoP error="invalid_token", error_description="Token expired"`)
		writeJSON(w, 401, map[string]string{"error": "invalid_token"})
		return
	}
	did := ti.did
	f.mu.Unlock()
	if strings.HasPrefix(r.URL.Path, "/xrpc/chat.") {
		writeJSON(w, 200, map[string]any{"convos": []any{}})
		return
	}
	writeJSON(w, 200, map[string]any{"did": did, "handle": "alice.test"})
}

// expireAccess marks every live access token expired; n > 0 arms the
// barrier so n requests with an expired token are answered together.
func (f *fakeAS) expireAccess(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ti := range f.access {
		ti.expired = true
	}
	f.barrierN, f.barrierHit = n, 0
	f.barrierCh = make(chan struct{})
}

// killRefresh makes every refresh token invalid (session deleted upstream).
func (f *fakeAS) killRefresh() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ti := range f.refreshTokens {
		ti.dead = true
	}
}

func (f *fakeAS) counts() (par, code, refresh, revoke int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.parCount, f.codeRedemptions, f.refreshCount, f.revokeCount
}

func (f *fakeAS) set(fn func(f *fakeAS)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// identityFor returns a directory entry whose PDS is this fake.
func (f *fakeAS) identityFor(did syntax.DID, handle syntax.Handle) identity.Identity {
	return identity.Identity{
		DID:         did,
		Handle:      handle,
		AlsoKnownAs: []string{"at://" + handle.String()},
		Services:    map[string]identity.ServiceEndpoint{"atproto_pds": {Type: "AtprotoPersonalDataServer", URL: f.origin}},
	}
}

// countingDir counts lookups.
type countingDir struct {
	identity.Directory
	mu sync.Mutex
	n  int
}

func (d *countingDir) inc() { d.mu.Lock(); d.n++; d.mu.Unlock() }
func (d *countingDir) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}
func (d *countingDir) LookupHandle(ctx context.Context, h syntax.Handle) (*identity.Identity, error) {
	d.inc()
	return d.Directory.LookupHandle(ctx, h)
}
func (d *countingDir) LookupDID(ctx context.Context, did syntax.DID) (*identity.Identity, error) {
	d.inc()
	return d.Directory.LookupDID(ctx, did)
}
func (d *countingDir) Lookup(ctx context.Context, a syntax.AtIdentifier) (*identity.Identity, error) {
	d.inc()
	return d.Directory.Lookup(ctx, a)
}

// countingTransport counts outbound requests.
type countingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    int
	urls []string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n++
	c.urls = append(c.urls, r.Method+" "+r.URL.String())
	c.mu.Unlock()
	return c.base.RoundTrip(r)
}

func (c *countingTransport) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
