package oauth

import (
	"context"
	"sync"
	"testing"
)

// TestOnRefreshCountsEachGrantWithItsResult: 20 concurrent requests on an
// expired token call OnRefresh once (the one grant sent), with no error; a
// refused grant calls it with the error.
func TestOnRefreshCountsEachGrantWithItsResult(t *testing.T) {
	var (
		mu   sync.Mutex
		errs []error
	)
	h := newHarness(t, func(c *Config) {
		c.OnRefresh = func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }
	})
	acct := h.login()
	h.fake.expireAccess(20)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { _ = getSession(context.Background(), h, acct.SessionID) })
	}
	wg.Wait()
	mu.Lock()
	if len(errs) != 1 || errs[0] != nil {
		t.Fatalf("OnRefresh calls %v, want one without error", errs)
	}
	mu.Unlock()

	h.fake.expireAccess(0)
	h.fake.killRefresh()
	_ = getSession(context.Background(), h, acct.SessionID)
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 2 || errs[1] == nil {
		t.Fatalf("OnRefresh calls %v, want a second one with the refused grant's error", errs)
	}
}
