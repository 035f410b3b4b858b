package oauth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
)

func getSession(ctx context.Context, h *harness, sessID string) error {
	return getSessionVia(ctx, h, h.svc, sessID)
}

// getSessionVia is getSession through svc, another instance on h's
// database.
func getSessionVia(ctx context.Context, h *harness, svc *Service, sessID string) error {
	api, err := svc.APIClient(ctx, accountOf(h, sessID))
	if err != nil {
		return err
	}
	var out struct{ DID string }
	if err := api.Get(ctx, "com.atproto.server.getSession", nil, &out); err != nil {
		return err
	}
	if out.DID != h.did.String() {
		return fmt.Errorf("getSession did %q", out.DID)
	}
	return nil
}

func TestConcurrentExpiredRequestsRefreshOnce(t *testing.T) {
	for _, nonce := range []bool{false, true} {
		t.Run(fmt.Sprintf("dpop nonce required %v", nonce), func(t *testing.T) {
			h := newHarness(t)
			h.fake.set(func(f *fakeAS) { f.requireNonce = nonce })
			acct := h.login()
			if err := getSession(context.Background(), h, acct.SessionID); err != nil {
				t.Fatal(err)
			}
			const n = 50
			h.fake.expireAccess(n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { errs[i] = getSession(context.Background(), h, acct.SessionID) })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			if _, _, refreshes, _ := h.fake.counts(); refreshes != 1 {
				t.Fatalf("%d refresh grants, want exactly 1", refreshes)
			}
			// The rotated tokens were persisted: a restarted process resumes
			// with the new refresh token (no replay).
			stored, err := h.svc.store.GetSession(context.Background(), h.did, acct.SessionID)
			if err != nil {
				t.Fatal(err)
			}
			sess, _ := h.svc.Session(context.Background(), h.did, acct.SessionID)
			if tok, _ := sess.GetHostAccessData(); stored.AccessToken != tok {
				t.Fatalf("stored access token %q, live %q", stored.AccessToken, tok)
			}
		})
	}
}

// TestIndigoSessionAloneRefreshesPerRequest documents the gap the refresh
// transport closes: the same 50 requests on a bare indigo ClientSession
// refresh many times.
func TestIndigoSessionAloneRefreshesPerRequest(t *testing.T) {
	h := newHarness(t)
	acct := h.login()
	bare, err := h.svc.app.ResumeSession(context.Background(), h.did, acct.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	h.fake.expireAccess(n)
	api := bare.APIClient()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { api.Get(context.Background(), "com.atproto.server.getSession", nil, nil) })
	}
	wg.Wait()
	_, _, refreshes, _ := h.fake.counts()
	t.Logf("bare indigo ClientSession: %d refresh grants for %d concurrent requests", refreshes, n)
	if refreshes < 2 {
		t.Fatalf("expected indigo alone to refresh more than once, got %d", refreshes)
	}
}

func TestSessionIsOneInstancePerSession(t *testing.T) {
	h := newHarness(t)
	acct := h.login()
	const n = 20
	got := make([]*atoauth.ClientSession, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := h.svc.Session(context.Background(), acct.DID, acct.SessionID)
			if err != nil {
				t.Error(err)
			}
			got[i] = s
		})
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("Session returned %d different instances", n)
		}
	}
	acct2 := h.login()
	s2, _ := h.svc.Session(context.Background(), acct2.DID, acct2.SessionID)
	if s2 == got[0] {
		t.Fatal("two sessions share an instance")
	}
}

func TestSessionUnknownIsSessionExpired(t *testing.T) {
	h := newHarness(t)
	_, err := h.svc.Session(context.Background(), h.did, "nope")
	if apperr.CodeOf(err) != apperr.Unauthorized || apperr.ReasonOf(err) != ReasonSessionExpired {
		t.Fatalf("Session(unknown) = %v", err)
	}
}

func TestRevokedSessionEndsOnRefresh(t *testing.T) {
	h := newHarness(t)
	acct := h.login()
	if err := getSession(context.Background(), h, acct.SessionID); err != nil {
		t.Fatal(err)
	}
	h.fake.expireAccess(0)
	h.fake.killRefresh()
	err := getSession(context.Background(), h, acct.SessionID)
	if apperr.ReasonOf(err) != ReasonSessionExpired || apperr.CodeOf(err) != apperr.Unauthorized {
		t.Fatalf("API call on a revoked session = %v", err)
	}
	if n := countRows(t, h, "oauth_sessions"); n != 0 {
		t.Fatalf("%d session rows left", n)
	}
	if _, err := h.svc.Session(context.Background(), acct.DID, acct.SessionID); apperr.ReasonOf(err) != ReasonSessionExpired {
		t.Fatalf("Session after revocation = %v", err)
	}
	if _, _, refreshes, _ := h.fake.counts(); refreshes != 1 {
		t.Fatalf("%d refresh attempts, want 1", refreshes)
	}
}

func TestRefreshFailureThatIsNotInvalidGrantKeepsSession(t *testing.T) {
	h := newHarness(t)
	acct := h.login()
	h.fake.expireAccess(0)
	h.fake.set(func(f *fakeAS) { f.tokenUnavailable = true })
	err := getSession(context.Background(), h, acct.SessionID)
	if apperr.ReasonOf(err) != ReasonRefreshFailed || apperr.CodeOf(err) != apperr.Unavailable {
		t.Fatalf("= %v", err)
	}
	if n := countRows(t, h, "oauth_sessions"); n != 1 {
		t.Fatalf("%d session rows, want 1 (kept for a retry)", n)
	}
}

func TestLogout(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("revocation fails %v", fail), func(t *testing.T) {
			h := newHarness(t)
			acct := h.login()
			api, err := h.svc.APIClient(context.Background(), acct)
			if err != nil {
				t.Fatal(err)
			}
			h.fake.set(func(f *fakeAS) { f.revokeFail = fail })
			if err := h.svc.Logout(context.Background(), acct.DID, acct.SessionID); err != nil {
				t.Fatalf("Logout: %v", err)
			}
			if _, _, _, revokes := h.fake.counts(); revokes != 2 {
				t.Fatalf("%d revocation requests, want 2", revokes)
			}
			if n := countRows(t, h, "oauth_sessions"); n != 0 {
				t.Fatalf("%d session rows after logout", n)
			}
			if _, err := h.svc.Session(context.Background(), acct.DID, acct.SessionID); apperr.ReasonOf(err) != ReasonSessionExpired {
				t.Fatalf("Session after logout = %v", err)
			}
			// A client obtained before logout stops working at once.
			err = api.Get(context.Background(), "com.atproto.server.getSession", nil, nil)
			if apperr.ReasonOf(err) != ReasonSessionExpired {
				t.Fatalf("old client after logout = %v", err)
			}
			if err := h.svc.Logout(context.Background(), acct.DID, acct.SessionID); err != nil {
				t.Fatalf("second Logout: %v", err)
			}
		})
	}
}

func TestRestartedServiceResumesRefreshedSession(t *testing.T) {
	h := newHarness(t)
	acct := h.login()
	h.fake.expireAccess(0)
	if err := getSession(context.Background(), h, acct.SessionID); err != nil {
		t.Fatal(err)
	}
	// A second Service on the same database (a restart) must use the
	// rotated refresh token, not replay the first one.
	svc2, err := New(h.svc.cfg, h.db)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc2
	h.fake.expireAccess(0)
	if err := getSession(context.Background(), h, acct.SessionID); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if _, _, refreshes, _ := h.fake.counts(); refreshes != 2 {
		t.Fatalf("%d refreshes, want 2", refreshes)
	}
}

func TestSessionErrorUnwrapsThroughHTTPClient(t *testing.T) {
	// The SessionExpired error travels through net/http's *url.Error and
	// atclient; callers find it with apperr.As / errors.As.
	h := newHarness(t)
	acct := h.login()
	h.fake.expireAccess(0)
	h.fake.killRefresh()
	err := getSession(context.Background(), h, acct.SessionID)
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Reason != ReasonSessionExpired {
		t.Fatalf("errors.As: %v", err)
	}
}

// TestNonceChallengeWithoutNonceIsAnUpstreamFault: a PDS answering 401
// use_dpop_nonce without a DPoP-Nonce header is misbehaving; the session is
// intact, so the person is told to try again, not to sign in again.
func TestNonceChallengeWithoutNonceIsAnUpstreamFault(t *testing.T) {
	h := newHarness(t)
	acct := h.login()
	ctx := context.Background()
	api, err := h.svc.APIClient(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	h.fake.set(func(f *fakeAS) { f.nonceNoHeader = true })
	_, err = chatproxy.New(api, "did:web:chat.test#bsky_chat").ListConvos(ctx, chatproxy.ListConvosParams{})
	if apperr.CodeOf(err) != apperr.Unavailable {
		t.Fatalf("nonce challenge without a nonce = %v (code %v, reason %q), want Unavailable",
			err, apperr.CodeOf(err), apperr.ReasonOf(err))
	}
	h.fake.set(func(f *fakeAS) { f.nonceNoHeader = false })
	if err := getSession(ctx, h, acct.SessionID); err != nil {
		t.Fatalf("session not intact afterwards: %v", err)
	}
}

func TestSessionActive(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	active := func(id string) bool {
		t.Helper()
		ok, err := h.svc.SessionActive(ctx, h.did, id)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	stored := h.login()
	if !active(stored.SessionID) {
		t.Fatal("a stored session is not active")
	}
	if err := getSession(ctx, h, stored.SessionID); err != nil { // now live too
		t.Fatal(err)
	}
	if !active(stored.SessionID) {
		t.Fatal("a live session is not active")
	}
	if active("no-such-session") {
		t.Fatal("an unknown session is active")
	}
	// Ended by the auth server: the refresh is refused.
	h.fake.expireAccess(0)
	h.fake.killRefresh()
	getSession(ctx, h, stored.SessionID)
	if active(stored.SessionID) {
		t.Fatal("a session the auth server ended is still active")
	}
	other := h.login()
	if err := h.svc.Logout(ctx, h.did, other.SessionID); err != nil {
		t.Fatal(err)
	}
	if active(other.SessionID) {
		t.Fatal("a signed-out session is still active")
	}
}

// TestSlowRefreshDoesNotHoldTheRequestPastItsDeadline: a request whose
// token must be refreshed answers when its own deadline passes, with a
// try-again error, while the refresh goes on without it; once the auth
// server answers, the rotated tokens are the session's and the next
// request needs no refresh of its own.
func TestSlowRefreshDoesNotHoldTheRequestPastItsDeadline(t *testing.T) {
	h := newHarness(t)
	acct := h.login()
	if err := getSession(context.Background(), h, acct.SessionID); err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	h.fake.set(func(f *fakeAS) { f.refreshHold = hold })
	h.fake.expireAccess(0)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := getSession(ctx, h, acct.SessionID)
	cancel()
	// The auth server has not answered yet (hold is open): the request
	// came back on its own deadline.
	if apperr.CodeOf(err) != apperr.Unavailable {
		t.Fatalf("request during a slow refresh = %v, want Unavailable", err)
	}
	if _, _, refreshes, _ := h.fake.counts(); refreshes != 1 {
		t.Fatalf("%d refresh grants sent, want 1 (in flight)", refreshes)
	}
	close(hold)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := getSession(context.Background(), h, acct.SessionID); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("after the refresh finished: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
	if _, _, refreshes, _ := h.fake.counts(); refreshes != 1 {
		t.Fatalf("%d refresh grants, want exactly 1 (the detached one)", refreshes)
	}
}
