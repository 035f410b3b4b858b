package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/websession"
)

// staticAccess hands every account a real chat client (with the shared
// rate-limit gate, as chataccess makes them) over a plain API client for
// one host.
type staticAccess struct {
	host string
	gate *chatproxy.Gate
}

func (s staticAccess) ForAccount(ctx context.Context, acct websession.Account) (*chatproxy.Client, *atclient.APIClient, error) {
	api := atclient.NewAPIClient(s.host)
	did := acct.DID
	api.AccountDID = &did
	return chatproxy.New(api, "did:web:chat.example#bsky_chat", chatproxy.WithGate(s.gate, did.String())), api, nil
}

// TestRateLimitFarInTheFutureIsCappedAndHonoured goes through the real chat
// client to a PDS that answers every chat call 429 with a reset in the year
// 3000 (Retry-After as an HTTP date, RateLimit-Reset as unix seconds): the
// page's Retry-After is at most the one cap, the page says until when in
// the reader's terms, and reloads while the limit holds make no upstream
// call.
func TestRateLimitFarInTheFutureIsCappedAndHonoured(t *testing.T) {
	var calls atomic.Int64
	year3000 := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	pds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", year3000.Format(http.TimeFormat))
		w.Header().Set("RateLimit-Reset", strconv.FormatInt(year3000.Unix(), 10))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}`))
	}))
	t.Cleanup(pds.Close)
	a := newTestApp(t, func(c *Config) {
		c.DMs = &DMs{Chats: NewChatClients(staticAccess{pds.URL, chatproxy.NewGate(nil)}), Directory: fakeDir{}}
	})
	a.signIn(dmAlice, "alice.test", true)

	for _, path := range []string{"/convos/c1", "/"} {
		res := a.get(path)
		if res.status != http.StatusTooManyRequests {
			t.Fatalf("GET %s: status %d, want 429", path, res.status)
		}
		ra, err := strconv.Atoi(res.header.Get("Retry-After"))
		if err != nil || ra <= 0 || ra > int(apperr.MaxRetryWait/time.Second) {
			t.Errorf("GET %s: Retry-After %q, want 1..%d seconds", path, res.header.Get("Retry-After"), int(apperr.MaxRetryWait/time.Second))
		}
		if msg := testid(res.doc, "error-message").Text(); !strings.Contains(msg, "in about 60 minutes") {
			t.Errorf("GET %s: message %q, want it to say when, in the reader's terms", path, msg)
		}
	}
	before := calls.Load()
	if before == 0 {
		t.Fatal("the PDS was never called")
	}
	for range 3 {
		if res := a.get("/convos/c1"); res.status != http.StatusTooManyRequests {
			t.Errorf("reload: status %d, want 429", res.status)
		}
	}
	if got := calls.Load() - before; got != 0 {
		t.Errorf("3 reloads during the limit made %d upstream calls, want 0", got)
	}
}
