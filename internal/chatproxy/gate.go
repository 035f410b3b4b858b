package chatproxy

import (
	"sync"
	"time"

	"github.com/skydm/skydm/internal/apperr"
)

// Gate remembers, per account, until when its PDS or chat service said to
// wait (a 429 with Retry-After or RateLimit-Reset). A Client made with
// WithGate answers every call before then at once with the RateLimited
// error, RetryAt set, without sending anything: reloading a page during a
// limit window costs no upstream request. Waits are capped at
// apperr.MaxRetryWait. A Gate is safe for concurrent use; the zero Gate is
// not usable, use NewGate.
type Gate struct {
	now func() time.Time

	mu    sync.Mutex
	until map[string]time.Time // by key (an account DID)
}

// maxGateKeys bounds the accounts a Gate remembers; past it, the waits that
// have ended are dropped.
const maxGateKeys = 10000

// NewGate returns an empty Gate on the clock now (nil → time.Now).
func NewGate(now func() time.Time) *Gate {
	if now == nil {
		now = time.Now
	}
	return &Gate{now: now, until: map[string]time.Time{}}
}

// Until returns when key may call again; a time not after now (or zero)
// means it may call now.
func (g *Gate) Until(key string) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.until[key]
}

// Hold makes key wait until at (capped at apperr.MaxRetryWait from now); an
// earlier at than a wait already held changes nothing.
func (g *Gate) Hold(key string, at time.Time) {
	now := g.now()
	at = apperr.CapRetryAt(at, now)
	if !at.After(now) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.until) >= maxGateKeys {
		for k, t := range g.until {
			if !t.After(now) {
				delete(g.until, k)
			}
		}
	}
	if at.After(g.until[key]) {
		g.until[key] = at
	}
}

// check returns the RateLimited error for key while it must wait, or nil.
func (g *Gate) check(key string) error {
	until := g.Until(key)
	if !until.After(g.now()) {
		return nil
	}
	return &apperr.Error{Code: kRateLimited.code, Reason: kRateLimited.reason, Message: kRateLimited.msg(""), RetryAt: until}
}

// record holds key when err is a RateLimited answer that said until when.
// The instance's own budget refusing a request (apperr.ReasonBudget) is no
// answer about the account: it holds nothing, so the account's foreground
// calls still go out while the budget has tokens for them.
func (g *Gate) record(key string, err error) {
	if e := apperr.As(err); e != nil && e.Code == apperr.RateLimited && !e.RetryAt.IsZero() && e.Reason != apperr.ReasonBudget {
		g.Hold(key, e.RetryAt)
	}
}
