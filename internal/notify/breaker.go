package notify

import (
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// breaker is one sender's circuit breaker: consecutive transient failures,
// and until when the sender's rows are held (zero or past: closed). The
// policy decides its next state (policy.trip); breakers keeps it.
type breaker struct {
	fails int
	until time.Time
}

// breakers are a worker's circuit breakers, one per sender that failed
// since its last success. Safe for concurrent use.
type breakers struct {
	mu sync.Mutex
	m  map[syntax.DID]breaker
}

// held returns the senders whose breaker holds their rows at now.
func (bs *breakers) held(now time.Time) []syntax.DID {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	var out []syntax.DID
	for s, b := range bs.m {
		if b.until.After(now) {
			out = append(out, s)
		}
	}
	return out
}

// update replaces sender's breaker with f of it, atomically.
func (bs *breakers) update(sender syntax.DID, f func(breaker) breaker) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	old, ok := bs.m[sender]
	if b := f(old); ok || b != (breaker{}) {
		if bs.m == nil {
			bs.m = map[syntax.DID]breaker{}
		}
		bs.m[sender] = b
	}
}

// reset closes sender's breaker.
func (bs *breakers) reset(sender syntax.DID) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	delete(bs.m, sender)
}
