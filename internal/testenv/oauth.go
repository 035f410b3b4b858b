package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/sandbox"
)

// OAuthCallbackURL is the redirect_uri of the loopback client NewOAuthSession
// uses. Nothing listens there: the code is read from the redirect URL.
const OAuthCallbackURL = "http://127.0.0.1/testenv/callback"

// OAuthSession is NewOAuthSession for tests: it fails the test on error.
func OAuthSession(t testing.TB, n *sandbox.Network, acct sandbox.Account, scope string) *atoauth.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := NewOAuthSession(ctx, n, acct, scope)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return s
}

// NewOAuthSession signs acct in through the sandbox PDS's OAuth server as a
// public loopback client asking for scope (space-separated, e.g. "atproto
// transition:chat.bsky"): PAR with DPoP, the PDS's sign-in and consent
// (CompleteAuthorize), and the code exchange. It returns indigo's
// ClientSession (DPoP-signing, nonce retries, refresh on expiry); call
// APIClient() on it for XRPC. It is meant for testing the PDS/chat path
// itself, not the app's OAuth code. Errors name the failing step.
func NewOAuthSession(ctx context.Context, n *sandbox.Network, acct sandbox.Account, scope string) (*atoauth.ClientSession, error) {
	f, err := startFlow(ctx, n, acct.Handle, scope)
	if err != nil {
		return nil, err
	}
	app, cfg, meta, info := f.app, f.cfg, f.meta, f.info
	redirect, err := CompleteAuthorize(ctx, f.authorizeURL, acct.Handle, acct.Password, true)
	if err != nil {
		return nil, err
	}
	ru, err := url.Parse(redirect)
	if err != nil {
		return nil, fmt.Errorf("testenv: redirect %q: %w", redirect, err)
	}
	p := ru.Query()
	switch {
	case p.Get("error") != "":
		return nil, fmt.Errorf("testenv: authorization failed: %s: %s", p.Get("error"), p.Get("error_description"))
	case p.Get("state") != info.State:
		return nil, fmt.Errorf("testenv: redirect state %q, want %q", p.Get("state"), info.State)
	case p.Get("iss") != meta.Issuer:
		return nil, fmt.Errorf("testenv: redirect iss %q, want %q", p.Get("iss"), meta.Issuer)
	}
	tok, err := app.SendInitialTokenRequest(ctx, p.Get("code"), *info)
	if err != nil {
		return nil, fmt.Errorf("testenv: token: %w", err)
	}
	if tok.Subject != acct.DID {
		return nil, fmt.Errorf("testenv: token sub %q, want %q", tok.Subject, acct.DID)
	}
	did, err := syntax.ParseDID(tok.Subject)
	if err != nil {
		return nil, err
	}
	key, err := atcrypto.ParsePrivateMultibase(info.DPoPPrivateKeyMultibase)
	if err != nil {
		return nil, err
	}
	return &atoauth.ClientSession{
		Client: n.HTTPClient(),
		Config: cfg,
		Data: &atoauth.ClientSessionData{
			AccountDID:                   did,
			SessionID:                    info.State,
			HostURL:                      n.PDSURL,
			AuthServerURL:                meta.Issuer,
			AuthServerTokenEndpoint:      meta.TokenEndpoint,
			AuthServerRevocationEndpoint: meta.RevocationEndpoint,
			Scopes:                       strings.Fields(tok.Scope),
			AccessToken:                  tok.AccessToken,
			RefreshToken:                 tok.RefreshToken,
			DPoPAuthServerNonce:          info.DPoPAuthServerNonce,
			DPoPPrivateKeyMultibase:      info.DPoPPrivateKeyMultibase,
		},
		DPoPPrivateKey: key,
		// Nothing to persist; the callback only keeps indigo from warning.
		PersistSessionCallback: func(context.Context, *atoauth.ClientSessionData) {},
	}, nil
}

// flow is an OAuth authorization started with PAR, waiting for the user.
type flow struct {
	app          *atoauth.ClientApp
	cfg          *atoauth.ClientConfig
	meta         *atoauth.AuthServerMetadata
	info         *atoauth.AuthRequestData
	authorizeURL string
}

// startFlow sends PAR (with DPoP) as the loopback client and returns the URL
// to send the browser to.
func startFlow(ctx context.Context, n *sandbox.Network, loginHint, scope string) (*flow, error) {
	meta, err := authServerMetadata(ctx, n)
	if err != nil {
		return nil, err
	}
	scopes := strings.Fields(scope)
	cfg := atoauth.NewLocalhostConfig(OAuthCallbackURL, scopes)
	app := atoauth.NewClientApp(&cfg, atoauth.NewMemStore())
	app.Client = n.HTTPClient()
	info, err := app.SendAuthRequest(ctx, meta, scopes, loginHint)
	if err != nil {
		return nil, fmt.Errorf("testenv: PAR: %w", err)
	}
	q := url.Values{"client_id": {cfg.ClientID}, "request_uri": {info.RequestURI}}
	return &flow{app: app, cfg: &cfg, meta: meta, info: info, authorizeURL: meta.AuthorizationEndpoint + "?" + q.Encode()}, nil
}

// authServerMetadata fetches the PDS's OAuth metadata directly: indigo's
// Resolver accepts only https issuers, and the sandbox's is http://localhost.
func authServerMetadata(ctx context.Context, n *sandbox.Network) (*atoauth.AuthServerMetadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.PDSURL+"/.well-known/oauth-authorization-server", nil)
	if err != nil {
		return nil, err
	}
	resp, err := n.HTTPClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("testenv: auth server metadata: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("testenv: auth server metadata: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("testenv: auth server metadata: HTTP %d: %s", resp.StatusCode, snippet(b))
	}
	var meta atoauth.AuthServerMetadata
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, fmt.Errorf("testenv: auth server metadata: %w", err)
	}
	return &meta, nil
}
