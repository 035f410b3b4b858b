package chatproxy_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/budget"
	"github.com/skydm/skydm/internal/chatproxy"
)

// TestBudgetRefusalDoesNotHoldTheAccount: a background call the instance's
// budget did not send comes back as the budget's RateLimited, unchanged,
// and does not make the gate hold the account: its next page (foreground)
// still goes out while tokens remain.
func TestBudgetRefusalDoesNotHoldTheAccount(t *testing.T) {
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"convo": convoJSON("c1")})
	})
	// Capacity 1: background (which leaves the reserve) is refused at once.
	b := budget.New(budget.Config{Limit: 10, Window: time.Hour})
	api := atclient.NewAPIClient(f.srv.URL)
	api.Client = &http.Client{Transport: b.Transport(nil)}
	gate := chatproxy.NewGate(nil)
	c := chatproxy.New(api, testRef, chatproxy.WithGate(gate, aliceDID))

	_, err := c.GetConvo(budget.Background(context.Background()), "c1")
	if e := apperr.As(err); e == nil || e.Code != apperr.RateLimited || e.Reason != apperr.ReasonBudget || e.RetryAt.IsZero() {
		t.Fatalf("background call without budget = %v; want the budget's RateLimited with RetryAt", err)
	}
	if n := f.totalCalls(); n != 0 {
		t.Fatalf("the refused call reached the PDS (%d calls)", n)
	}
	if until := gate.Until(aliceDID); !until.IsZero() {
		t.Errorf("the gate holds the account until %s after the budget's refusal", until)
	}
	if _, err := c.GetConvo(context.Background(), "c1"); err != nil {
		t.Fatalf("foreground call after a background refusal: %v", err)
	}
	if n := f.totalCalls(); n != 1 {
		t.Errorf("PDS saw %d calls; want the foreground one", n)
	}
}
