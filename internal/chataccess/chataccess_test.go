package chataccess

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/oauth"
	"github.com/skydm/skydm/internal/websession"
)

// fakeSessions hands out one session per DID, with the scopes given.
type fakeSessions struct {
	host   string
	scopes map[syntax.DID][]string
}

func (f fakeSessions) session(did syntax.DID) *atoauth.ClientSession {
	return &atoauth.ClientSession{Config: &atoauth.ClientConfig{}, Client: http.DefaultClient,
		Data: &atoauth.ClientSessionData{AccountDID: did, HostURL: f.host, Scopes: f.scopes[did]}}
}

func (f fakeSessions) Session(_ context.Context, did syntax.DID, _ string) (*atoauth.ClientSession, error) {
	return f.session(did), nil
}

func (f fakeSessions) SessionForDID(_ context.Context, did syntax.DID) (*atoauth.ClientSession, error) {
	return f.session(did), nil
}

// TestOneScopeCheckAndOneGateForEveryCaller: a session granted no DM access
// gets no chat client, whether a page (ForAccount) or the outbox (ForDID)
// asks; and a wait the gate learned for an account holds for every client
// of that account, so none of them calls upstream meanwhile.
func TestOneScopeCheckAndOneGateForEveryCaller(t *testing.T) {
	var calls atomic.Int64
	pds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, `{"error":"InternalServerError"}`, http.StatusInternalServerError)
	}))
	t.Cleanup(pds.Close)
	alice, carol := syntax.DID("did:plc:alice"), syntax.DID("did:plc:carol")
	gate := chatproxy.NewGate(nil)
	s := New(fakeSessions{host: pds.URL, scopes: map[syntax.DID][]string{
		alice: {"atproto", oauth.ScopeChat},
		carol: {"atproto", "transition:generic"},
	}}, "did:web:chat.example#bsky_chat", gate)
	ctx := context.Background()

	if c, _, err := s.ForAccount(ctx, websession.Account{DID: carol, SessionID: "s"}); err != ErrNoChatScope || c != nil {
		t.Errorf("page for a session without DM access = %v, %v; want ErrNoChatScope", c, err)
	}
	if c, err := s.ForDID(ctx, carol); apperr.ReasonOf(err) != apperr.ReasonScopeMissing || c != nil {
		t.Errorf("outbox for a session without DM access = %v, %v; want ScopeMissing", c, err)
	}

	gate.Hold(alice.String(), time.Now().Add(time.Minute))
	page, _, err := s.ForAccount(ctx, websession.Account{DID: alice, SessionID: "s"})
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := s.ForDID(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*chatproxy.Client{"page": page, "outbox": outbox} {
		if _, err := c.GetLog(ctx, ""); apperr.CodeOf(err) != apperr.RateLimited {
			t.Errorf("%s client while the account must wait: %v, want RateLimited", name, err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("%d upstream calls while the gate said wait, want 0", n)
	}
}
