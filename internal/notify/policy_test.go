package notify

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
)

// failuresOf returns errors of class c, as the chat calls return them,
// carrying retryAt; the first is the one the policy table uses.
func failuresOf(t *testing.T, c class, retryAt time.Time) []error {
	switch c {
	case classTransient:
		return []error{
			&apperr.Error{Code: apperr.Unavailable, Reason: chatproxy.ReasonUnavailable, RetryAt: retryAt},
			fmt.Errorf("call: %w", context.DeadlineExceeded),
			// skydm's own misconfiguration waits for the operator's fix.
			&apperr.Error{Code: apperr.Unavailable, Reason: chatproxy.ReasonServiceRefWrong},
			&atclient.APIError{StatusCode: 502},
			errors.New("anything unknown"),
		}
	case classRateLimited:
		return []error{
			&apperr.Error{Code: apperr.RateLimited, Reason: chatproxy.ReasonRateLimited, RetryAt: retryAt},
			&atclient.APIError{StatusCode: 429},
		}
	case classPermanent:
		return []error{
			&apperr.Error{Code: apperr.Forbidden, Reason: chatproxy.ReasonNotFollowedBySender, RetryAt: retryAt},
			&apperr.Error{Code: apperr.NotFound, Reason: chatproxy.ReasonRecipientNotFound},
			&atclient.APIError{StatusCode: 400, Name: "BlockedActor"},
		}
	case classAuth:
		return []error{
			&apperr.Error{Code: apperr.Unauthorized, Reason: chatproxy.ReasonSessionExpired, RetryAt: retryAt},
			&apperr.Error{Code: apperr.Forbidden, Reason: chatproxy.ReasonScopeMissing},
			&atclient.APIError{StatusCode: 401, Name: "ExpiredToken"},
		}
	}
	t.Fatalf("failuresOf: no errors for class %v; add them", c)
	return nil
}

func TestEveryClassHasFailuresThatClassifyToIt(t *testing.T) {
	for _, c := range classes {
		for _, err := range failuresOf(t, c, time.Time{}) {
			if got := classify(err).class(); got != c {
				t.Errorf("classify(%v).class() = %v, want %v", err, got, c)
			}
		}
	}
}

// TestRetryPolicy covers every failure class × attempt history × server
// RetryAt; a class, history or RetryAt without its row fails the test.
func TestRetryPolicy(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p := policy{
		baseBackoff: 2 * time.Second, maxBackoff: 30 * time.Minute, maxRetryAfter: time.Hour,
		rateLimitWait: 30 * time.Second, maxAge: 24 * time.Hour,
		breakerThreshold: 5, breakerCooldown: 2 * time.Minute,
		jitter: func(max time.Duration) time.Duration { return max / 2 },
	}
	histories := map[string]history{
		// first attempt: backoff 2s, jittered to 1s
		"first": {attempts: 1, queuedAt: now},
		// middle: backoff 16s (jitter 8s); this is the sender's 5th failure in a row, so the breaker opens
		"middle": {attempts: 4, queuedAt: now.Add(-2 * time.Hour), breaker: breaker{fails: 4}},
		// 10s before the give-up age: backoff 30m (jitter 15m), cut to the deadline
		"near-give-up": {attempts: 20, queuedAt: now.Add(-24*time.Hour + 10*time.Second), breaker: breaker{fails: 1}},
		// at the give-up age
		"give-up": {attempts: 30, queuedAt: now.Add(-24 * time.Hour)},
	}
	retryAts := map[string]time.Time{
		"none":       {},
		"soon":       now.Add(5 * time.Minute),
		"beyond-cap": now.Add(3 * time.Hour), // capped at now+1h
	}
	// Offsets from now; 0 is the zero time.
	type want struct {
		action     action
		next, hold time.Duration
		fails      int
		until      time.Duration
		opened     bool
	}
	const s, m, h = time.Second, time.Minute, time.Hour
	rows := []struct {
		class   class
		history string
		retryAt string
		want    want
	}{
		{classTransient, "first", "none", want{actRetry, 1 * s, 0, 1, 0, false}},
		{classTransient, "first", "soon", want{actRetry, 5 * m, 0, 1, 0, false}},
		{classTransient, "first", "beyond-cap", want{actRetry, 1 * h, 0, 1, 0, false}},
		{classTransient, "middle", "none", want{actRetry, 2 * m, 2 * m, 5, 2 * m, true}},
		{classTransient, "middle", "soon", want{actRetry, 5 * m, 2 * m, 5, 2 * m, true}},
		{classTransient, "middle", "beyond-cap", want{actRetry, 1 * h, 2 * m, 5, 2 * m, true}},
		{classTransient, "near-give-up", "none", want{actRetry, 10 * s, 0, 2, 0, false}},
		{classTransient, "near-give-up", "soon", want{actRetry, 10 * s, 0, 2, 0, false}},
		{classTransient, "near-give-up", "beyond-cap", want{actRetry, 10 * s, 0, 2, 0, false}},
		{classTransient, "give-up", "none", want{actGiveUp, 0, 0, 1, 0, false}},
		{classTransient, "give-up", "soon", want{actGiveUp, 0, 0, 1, 0, false}},
		{classTransient, "give-up", "beyond-cap", want{actGiveUp, 0, 0, 1, 0, false}},

		// A rate limit holds the sender until its reset (RateLimitWait when
		// the server gave none), capped at MaxRetryAfter.
		{classRateLimited, "first", "none", want{actRetry, 30 * s, 30 * s, 1, 30 * s, false}},
		{classRateLimited, "first", "soon", want{actRetry, 5 * m, 5 * m, 1, 5 * m, false}},
		{classRateLimited, "first", "beyond-cap", want{actRetry, 1 * h, 1 * h, 1, 1 * h, false}},
		{classRateLimited, "middle", "none", want{actRetry, 2 * m, 2 * m, 5, 2 * m, true}},
		{classRateLimited, "middle", "soon", want{actRetry, 5 * m, 5 * m, 5, 5 * m, true}},
		{classRateLimited, "middle", "beyond-cap", want{actRetry, 1 * h, 1 * h, 5, 1 * h, true}},
		{classRateLimited, "near-give-up", "none", want{actRetry, 10 * s, 30 * s, 2, 30 * s, false}},
		{classRateLimited, "near-give-up", "soon", want{actRetry, 10 * s, 5 * m, 2, 5 * m, false}},
		{classRateLimited, "near-give-up", "beyond-cap", want{actRetry, 10 * s, 1 * h, 2, 1 * h, false}},
		{classRateLimited, "give-up", "none", want{actGiveUp, 0, 0, 1, 30 * s, false}},
		{classRateLimited, "give-up", "soon", want{actGiveUp, 0, 0, 1, 5 * m, false}},
		{classRateLimited, "give-up", "beyond-cap", want{actGiveUp, 0, 0, 1, 1 * h, false}},

		// Refusals and auth failures stop at once, whatever the history,
		// and leave the breaker alone.
		{classPermanent, "first", "none", want{actRefuse, 0, 0, 0, 0, false}},
		{classPermanent, "first", "soon", want{actRefuse, 0, 0, 0, 0, false}},
		{classPermanent, "first", "beyond-cap", want{actRefuse, 0, 0, 0, 0, false}},
		{classPermanent, "middle", "none", want{actRefuse, 0, 0, 4, 0, false}},
		{classPermanent, "middle", "soon", want{actRefuse, 0, 0, 4, 0, false}},
		{classPermanent, "middle", "beyond-cap", want{actRefuse, 0, 0, 4, 0, false}},
		{classPermanent, "near-give-up", "none", want{actRefuse, 0, 0, 1, 0, false}},
		{classPermanent, "near-give-up", "soon", want{actRefuse, 0, 0, 1, 0, false}},
		{classPermanent, "near-give-up", "beyond-cap", want{actRefuse, 0, 0, 1, 0, false}},
		{classPermanent, "give-up", "none", want{actRefuse, 0, 0, 0, 0, false}},
		{classPermanent, "give-up", "soon", want{actRefuse, 0, 0, 0, 0, false}},
		{classPermanent, "give-up", "beyond-cap", want{actRefuse, 0, 0, 0, 0, false}},

		{classAuth, "first", "none", want{actPark, 0, 0, 0, 0, false}},
		{classAuth, "first", "soon", want{actPark, 0, 0, 0, 0, false}},
		{classAuth, "first", "beyond-cap", want{actPark, 0, 0, 0, 0, false}},
		{classAuth, "middle", "none", want{actPark, 0, 0, 4, 0, false}},
		{classAuth, "middle", "soon", want{actPark, 0, 0, 4, 0, false}},
		{classAuth, "middle", "beyond-cap", want{actPark, 0, 0, 4, 0, false}},
		{classAuth, "near-give-up", "none", want{actPark, 0, 0, 1, 0, false}},
		{classAuth, "near-give-up", "soon", want{actPark, 0, 0, 1, 0, false}},
		{classAuth, "near-give-up", "beyond-cap", want{actPark, 0, 0, 1, 0, false}},
		{classAuth, "give-up", "none", want{actPark, 0, 0, 0, 0, false}},
		{classAuth, "give-up", "soon", want{actPark, 0, 0, 0, 0, false}},
		{classAuth, "give-up", "beyond-cap", want{actPark, 0, 0, 0, 0, false}},
	}

	at := func(d time.Duration) time.Time {
		if d == 0 {
			return time.Time{}
		}
		return now.Add(d)
	}
	covered := map[string]bool{}
	for _, row := range rows {
		key := fmt.Sprintf("%v/%s/%s", row.class, row.history, row.retryAt)
		if covered[key] {
			t.Errorf("%s: two rows", key)
		}
		covered[key] = true
		hist, ok := histories[row.history]
		if !ok {
			t.Fatalf("%s: no history %q", key, row.history)
		}
		ra, ok := retryAts[row.retryAt]
		if !ok {
			t.Fatalf("%s: no RetryAt %q", key, row.retryAt)
		}
		t.Run(key, func(t *testing.T) {
			f := classify(failuresOf(t, row.class, ra)[0])
			if f.class() != row.class {
				t.Fatalf("failure %+v is of class %v", f, f.class())
			}
			d := p.decide(f, hist, now)
			w := row.want
			if d.action != w.action || !d.next.Equal(at(w.next)) || !d.hold.Equal(at(w.hold)) ||
				d.breaker.fails != w.fails || !d.breaker.until.Equal(at(w.until)) || d.opened != w.opened {
				t.Errorf("decide = action %v next %v hold %v breaker %+v opened %v;\nwant %+v (offsets from %v)",
					d.action, d.next, d.hold, d.breaker, d.opened, w, now)
			}
			wantExplain := f.code
			if d.action == actGiveUp {
				wantExplain = ReasonGivenUp
			}
			if d.explain.code != wantExplain {
				t.Errorf("explained as %q, want %q", d.explain.code, wantExplain)
			}
		})
	}
	for _, c := range classes {
		for hn := range histories {
			for rn := range retryAts {
				if key := fmt.Sprintf("%v/%s/%s", c, hn, rn); !covered[key] {
					t.Errorf("no row for %s", key)
				}
			}
		}
	}
}

func TestActionStates(t *testing.T) {
	for a, want := range map[action]State{actRetry: StateQueued, actPark: StateParkedAuth, actRefuse: StateNotDelivered, actGiveUp: StateGivenUp} {
		if got := a.state(); got != want {
			t.Errorf("action %d state = %q, want %q", a, got, want)
		}
	}
}
