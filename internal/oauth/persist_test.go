package oauth

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"

	"github.com/skydm/skydm/internal/pgtest"
	"github.com/skydm/skydm/internal/safebuf"
)

// failingUpdates fails the next n UpdateSession calls (as a busy or full
// database does), then hands them to the Store.
type failingUpdates struct {
	*Store
	mu    sync.Mutex
	n     int
	calls int
}

func (f *failingUpdates) UpdateSession(ctx context.Context, d atoauth.ClientSessionData) error {
	f.mu.Lock()
	f.calls++
	fail := f.n > 0
	if fail {
		f.n--
	}
	f.mu.Unlock()
	if fail {
		return errors.New("oauth store: update session: database is locked (SQLITE_BUSY)")
	}
	return f.Store.UpdateSession(ctx, d)
}

func (f *failingUpdates) setFailures(n int) {
	f.mu.Lock()
	f.n = n
	f.mu.Unlock()
}

// storedRefreshIs polls until the stored session holds the live session's
// refresh token, or the deadline passes.
func storedRefreshIs(t *testing.T, s *Service, sess *atoauth.ClientSession, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		stored, err := s.store.GetSession(context.Background(), sess.Data.AccountDID, sess.Data.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.RefreshToken == sess.Data.RefreshToken {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// restartAndRefresh starts a second Service on the same database (a
// restart), expires the access token and makes a call: it fails when the
// database kept a spent refresh token (the auth server answers
// invalid_grant and the session ends).
func restartAndRefresh(t *testing.T, h *harness, sessionID string) {
	t.Helper()
	svc2, err := New(h.svc.cfg, h.db)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc2
	h.fake.expireAccess(0)
	if err := getSession(context.Background(), h, sessionID); err != nil {
		t.Fatalf("after restart the session is gone (a spent refresh token was replayed): %v", err)
	}
}

func TestRotatedTokensSurviveFailingSaves(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		var logs safebuf.Buffer
		h := newHarness(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
		acct := h.login()
		h.svc.saveRetryMin = time.Millisecond
		fu := &failingUpdates{Store: h.svc.store, n: 3}
		h.svc.sessionSaves = fu

		h.fake.expireAccess(0)
		if err := getSession(context.Background(), h, acct.SessionID); err != nil {
			t.Fatalf("the refresh itself succeeded; the call must too: %v", err)
		}
		sess, err := h.svc.Session(context.Background(), h.did, acct.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		if !storedRefreshIs(t, h.svc, sess, 10*time.Second) {
			t.Fatalf("rotated tokens never saved after %d failing saves: the store still holds the spent refresh token", 3)
		}
		if !strings.Contains(logs.String(), "signed out") {
			t.Fatalf("the failed save's log does not say what is at stake:\n%s", logs.String())
		}
		restartAndRefresh(t, h, acct.SessionID)
		if _, _, refreshes, _ := h.fake.counts(); refreshes != 2 {
			t.Fatalf("%d refreshes, want 2", refreshes)
		}
	})
}

func TestCloseSavesRotatedTokens(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		h := newHarness(t)
		acct := h.login()
		h.svc.saveRetryMin = time.Hour // no background retry before Close
		fu := &failingUpdates{Store: h.svc.store, n: 1 << 30}
		h.svc.sessionSaves = fu

		h.fake.expireAccess(0)
		if err := getSession(context.Background(), h, acct.SessionID); err != nil {
			t.Fatal(err)
		}
		sess, _ := h.svc.Session(context.Background(), h.did, acct.SessionID)
		fu.setFailures(0) // the database recovers before shutdown
		if err := h.svc.Close(context.Background()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if !storedRefreshIs(t, h.svc, sess, 0) {
			t.Fatal("Close did not save the rotated tokens")
		}
		restartAndRefresh(t, h, acct.SessionID)
	})
}
