package oauth

import (
	"context"
	"sync"
	"testing"

	"github.com/skydm/skydm/internal/pgtest"
)

// Two skydm instances on one Postgres, each with its own live session for
// the same stored one: when the access token expires under concurrent
// requests on both, the auth server sees exactly one refresh grant (the
// lock across instances), every request succeeds (the other instance uses
// the winner's tokens instead of replaying the spent refresh token, which
// would end the session), and the session goes on working on both.
func TestTwoInstancesRefreshAnExpiredSessionOnce(t *testing.T) {
	pgtest.On(t, pgtest.Postgres, func(t *testing.T) {
		h := newHarness(t)
		acct := h.login()
		other, err := New(h.cfg, h.db)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, svc := range []*Service{h.svc, other} {
			if err := getSessionVia(ctx, h, svc, acct.SessionID); err != nil {
				t.Fatal(err)
			}
		}
		const n = 40
		h.fake.expireAccess(n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			svc := h.svc
			if i%2 == 1 {
				svc = other
			}
			wg.Go(func() { errs[i] = getSessionVia(ctx, h, svc, acct.SessionID) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("request %d (instance %d): %v", i, i%2, err)
			}
		}
		if _, _, refreshes, _ := h.fake.counts(); refreshes != 1 {
			t.Fatalf("%d refresh grants at the auth server, want exactly 1", refreshes)
		}
		for _, svc := range []*Service{h.svc, other} {
			if err := getSessionVia(ctx, h, svc, acct.SessionID); err != nil {
				t.Fatalf("after the refresh: %v", err)
			}
		}
	})
}
