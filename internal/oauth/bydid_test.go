package oauth

import (
	"context"
	"sync"
	"testing"
	"time"

	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/pgtest"
)

func TestSessionForDIDReturnsTheNewestLiveInstance(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		h := newHarness(t)
		older := h.login()
		h.clock.Add(time.Minute)
		newer := h.login()

		got, err := h.svc.SessionForDID(context.Background(), h.did)
		if err != nil {
			t.Fatal(err)
		}
		if got.Data.SessionID != newer.SessionID {
			t.Fatalf("SessionForDID picked session %q, want the newest %q (older %q)", got.Data.SessionID, newer.SessionID, older.SessionID)
		}
		same, err := h.svc.Session(context.Background(), h.did, newer.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		if same != got {
			t.Fatal("SessionForDID and Session returned different instances for one session")
		}
		if !HasChatScope(got) {
			t.Errorf("scopes %v: no chat scope", got.Data.Scopes)
		}
	})
}

func TestSessionForDIDSkipsEndedSessions(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		h := newHarness(t)
		older := h.login()
		h.clock.Add(time.Minute)
		newer := h.login()
		ctx := context.Background()

		if err := h.svc.Logout(ctx, h.did, newer.SessionID); err != nil {
			t.Fatal(err)
		}
		got, err := h.svc.SessionForDID(ctx, h.did)
		if err != nil {
			t.Fatalf("after logging the newest out: %v", err)
		}
		if got.Data.SessionID != older.SessionID {
			t.Fatalf("got session %q, want the remaining %q", got.Data.SessionID, older.SessionID)
		}

		if err := h.svc.Logout(ctx, h.did, older.SessionID); err != nil {
			t.Fatal(err)
		}
		_, err = h.svc.SessionForDID(ctx, h.did)
		if apperr.CodeOf(err) != apperr.Unauthorized || apperr.ReasonOf(err) != ReasonSessionExpired {
			t.Fatalf("with no session left: %v, want Unauthorized SessionExpired", err)
		}
	})
}

func TestSessionForDIDWithoutSessionsIsSessionExpired(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		h := newHarness(t)
		for _, did := range []syntax.DID{"", "did:plc:nobody00000000000000000"} {
			_, err := h.svc.SessionForDID(context.Background(), did)
			if apperr.CodeOf(err) != apperr.Unauthorized || apperr.ReasonOf(err) != ReasonSessionExpired {
				t.Errorf("SessionForDID(%q) = %v, want Unauthorized SessionExpired", did, err)
			}
		}
	})
}

func TestSessionForDIDPrefersASessionThatMayChat(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		h := newHarness(t)
		withChat := h.login()
		h.clock.Add(time.Minute)
		h.fake.set(func(f *fakeAS) { f.grantScope = "atproto transition:generic" })
		withoutChat := h.login()

		got, err := h.svc.SessionForDID(context.Background(), h.did)
		if err != nil {
			t.Fatal(err)
		}
		if got.Data.SessionID != withChat.SessionID {
			t.Fatalf("got session %q, want the older one with DM access %q (not %q)", got.Data.SessionID, withChat.SessionID, withoutChat.SessionID)
		}

		// Without any chat-capable session, the newest one is returned and
		// HasChatScope says it may not chat.
		if err := h.svc.Logout(context.Background(), h.did, withChat.SessionID); err != nil {
			t.Fatal(err)
		}
		got, err = h.svc.SessionForDID(context.Background(), h.did)
		if err != nil {
			t.Fatal(err)
		}
		if got.Data.SessionID != withoutChat.SessionID || HasChatScope(got) {
			t.Fatalf("got %q (chat %v), want %q without chat", got.Data.SessionID, HasChatScope(got), withoutChat.SessionID)
		}
	})
}

// Background callers and page handlers share one instance, so concurrent
// calls with an expired token still refresh exactly once.
func TestSessionForDIDConcurrentExpiredCallsRefreshOnce(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		h := newHarness(t)
		acct := h.login()
		if err := getSession(context.Background(), h, acct.SessionID); err != nil {
			t.Fatal(err)
		}
		const n = 40
		h.fake.expireAccess(n)
		errs := make([]error, n)
		sessions := make([]*atoauth.ClientSession, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ctx := context.Background()
				if i%2 == 0 { // half through a browser's session id, half by DID
					errs[i] = getSession(ctx, h, acct.SessionID)
					return
				}
				sess, err := h.svc.SessionForDID(ctx, h.did)
				if err != nil {
					errs[i] = err
					return
				}
				sessions[i] = sess
				var out struct{ DID string }
				errs[i] = sess.APIClient().Get(ctx, "com.atproto.server.getSession", nil, &out)
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		for i := 1; i < n; i += 2 {
			if sessions[i] != sessions[1] {
				t.Fatal("SessionForDID returned different instances")
			}
		}
		if _, _, refreshes, _ := h.fake.counts(); refreshes != 1 {
			t.Fatalf("%d refresh grants, want exactly 1", refreshes)
		}
	})
}
