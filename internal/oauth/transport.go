package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"

	"github.com/skydm/skydm/internal/apperr"
)

// sessionTransport is the RoundTripper of one live session's http.Client.
// Requests without "Authorization: DPoP …" (PAR, token, revocation) pass
// through; token endpoint error codes are noted so a failed refresh can be
// classified. Resource requests are sent with the current access token and
// refreshed-and-retried here on an expired-token answer.
type sessionTransport struct {
	base          http.RoundTripper
	svc           *Service
	key           sessionKey
	sess          *atoauth.ClientSession
	saver         *tokenSaver
	tokenEndpoint string

	refreshMu sync.Mutex // held across a whole refresh
	dead      atomic.Bool
	refreshes atomic.Int64 // refresh grants sent (tests, metrics)

	errMu        sync.Mutex
	lastTokenErr string
}

// Refreshes returns how many refresh grants this live session has sent.
func (t *sessionTransport) Refreshes() int64 { return t.refreshes.Load() }

func (t *sessionTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	auth := req.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "DPoP ") {
		return t.passThrough(req)
	}
	if t.dead.Load() {
		closeReqBody(req)
		return nil, errSessionExpired(errors.New("session ended"))
	}
	req, replayable, err := makeReplayable(req)
	if err != nil {
		return nil, err
	}
	used := strings.TrimPrefix(auth, "DPoP ")
	if cur, _ := t.sess.GetHostAccessData(); cur != used {
		// DoWithAuth read the token before another request refreshed it
		// (it keeps it across its own nonce retry): send the current one.
		if req, err = t.resign(req, cur); err != nil {
			return nil, err
		}
		used = cur
	}
	resp, err := t.send(req)
	if err != nil || !isExpiredTokenAnswer(resp) {
		return resp, err
	}
	drain(resp)

	tok, err := t.refresh(req.Context(), used)
	if err != nil {
		return nil, err
	}
	if !replayable {
		return nil, newErr(apperr.Unavailable, "", "Please try that again.",
			errors.New("request body could not be replayed after a token refresh"))
	}
	for attempt := 0; ; attempt++ {
		r2, err := t.resign(req, tok)
		if err != nil {
			return nil, err
		}
		resp, err = t.send(r2)
		if err != nil {
			return nil, err
		}
		nonce := resp.Header.Get("DPoP-Nonce")
		if attempt == 0 && resp.StatusCode == http.StatusUnauthorized &&
			strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) && nonce != "" {
			drain(resp)
			t.sess.UpdateHostDPoPNonce(req.Context(), nonce)
			continue
		}
		break
	}
	if isExpiredTokenAnswer(resp) {
		// A token issued a moment ago is refused: the session was revoked.
		drain(resp)
		cause := errors.New("fresh access token refused by the resource server")
		t.svc.expire(req.Context(), t, cause)
		return nil, errSessionExpired(cause)
	}
	return resp, nil
}

// send sends a signed resource request. A 401 use_dpop_nonce that carries
// no DPoP-Nonce to retry with is the PDS misbehaving, not an ended
// session: it becomes an Unavailable error, so nobody is sent to sign in
// again and the session is kept.
func (t *sessionTransport) send(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) || resp.Header.Get("DPoP-Nonce") != "" {
		return resp, err
	}
	drain(resp)
	return nil, newErr(apperr.Unavailable, ReasonPDSFault,
		"Your account's server is not answering properly right now. Please try again in a moment.",
		errors.New("PDS answered use_dpop_nonce without a DPoP-Nonce header"))
}

// refresh returns a current access token newer than used, refreshing only
// if no other request did so since used was read. An invalid_grant answer
// ends the session (deleted, evicted, SessionExpired). The refresh itself
// runs detached from ctx (losing the auth server's answer would lose the
// rotated refresh token), but the caller waits for it only until ctx is
// done: a page keeps its one deadline and answers Unavailable (try again)
// while the refresh finishes on its own and stores the new tokens.
func (t *sessionTransport) refresh(ctx context.Context, used string) (string, error) {
	type result struct {
		tok string
		err error
	}
	done := make(chan result, 1)
	go func() {
		tok, err := t.refreshOnce(context.WithoutCancel(ctx), used)
		done <- result{tok, err}
	}()
	select {
	case r := <-done:
		return r.tok, r.err
	case <-ctx.Done():
		return "", newErr(apperr.Unavailable, ReasonRefreshFailed,
			"Your account's server is slow to renew your sign-in. Please try again in a moment.", ctx.Err())
	}
}

// refreshOnce is refresh under the session's refresh lock, bounded by
// refreshTimeout.
func (t *sessionTransport) refreshOnce(ctx context.Context, used string) (string, error) {
	t.refreshMu.Lock()
	defer t.refreshMu.Unlock()
	if t.dead.Load() {
		return "", errSessionExpired(errors.New("session ended"))
	}
	if cur, _ := t.sess.GetHostAccessData(); cur != used {
		return cur, nil
	}
	// ctx is detached from the caller (refresh): once the auth server
	// rotates the refresh token, losing its answer kills the session.
	rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	t.setTokenErr("")
	t.refreshes.Add(1)
	tok, err := t.sess.RefreshTokens(rctx)
	t.svc.cfg.OnRefresh(err)
	if err != nil {
		if code := t.tokenErr(); code == "invalid_grant" {
			t.svc.expire(ctx, t, err)
			return "", errSessionExpired(err)
		}
		return "", newErr(apperr.Unavailable, ReasonRefreshFailed,
			"We couldn't renew your sign-in with your account's server. Please try again in a moment.", err)
	}
	return tok, nil
}

// resign returns a clone of req carrying token and a fresh DPoP proof.
func (t *sessionTransport) resign(req *http.Request, token string) (*http.Request, error) {
	u := *req.URL
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	proof, err := t.sess.NewHostDPoP(req.Method, u.String())
	if err != nil {
		return nil, err
	}
	r2 := req.Clone(req.Context())
	if req.GetBody != nil {
		if r2.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	r2.Header.Set("Authorization", "DPoP "+token)
	r2.Header.Set("DPoP", proof)
	return r2, nil
}

func (t *sessionTransport) passThrough(req *http.Request) (*http.Response, error) {
	isToken := req.Method == http.MethodPost && sameEndpoint(req.URL, t.tokenEndpoint)
	resp, err := t.base.RoundTrip(req)
	if err != nil || !isToken || resp.StatusCode == http.StatusOK {
		return resp, err
	}
	// Note the OAuth error code, then hand the body on unchanged.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	t.setTokenErr(e.Error)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (t *sessionTransport) setTokenErr(code string) {
	t.errMu.Lock()
	t.lastTokenErr = code
	t.errMu.Unlock()
}

func (t *sessionTransport) tokenErr() string {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	return t.lastTokenErr
}

func sameEndpoint(u *url.URL, endpoint string) bool {
	e, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Scheme, e.Scheme) && strings.EqualFold(u.Host, e.Host) && u.Path == e.Path
}

// isExpiredTokenAnswer is indigo's test for "refresh and retry".
func isExpiredTokenAnswer(resp *http.Response) bool {
	return resp.StatusCode == http.StatusUnauthorized &&
		strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
}

// makeReplayable makes sure req's body can be sent again (GetBody). Bodies
// larger than maxReplayBody without GetBody are sent once; the bool says
// whether a retry is possible.
func makeReplayable(req *http.Request) (*http.Request, bool, error) {
	if req.Body == nil || req.Body == http.NoBody || req.GetBody != nil {
		return req, true, nil
	}
	if req.ContentLength > maxReplayBody {
		return req, false, nil
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, maxReplayBody+1))
	req.Body.Close()
	if err != nil {
		return nil, false, fmt.Errorf("reading request body: %w", err)
	}
	if len(b) > maxReplayBody {
		return nil, false, errors.New("request body too large")
	}
	r2 := req.Clone(req.Context())
	r2.Body = io.NopCloser(bytes.NewReader(b))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	r2.ContentLength = int64(len(b))
	return r2, true, nil
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func closeReqBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
