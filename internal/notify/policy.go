package notify

import (
	"time"

	"github.com/skydm/skydm/internal/chatproxy"
)

// The retry policy: given a classified failure and the row's history, what
// the outbox does next. It is pure — no I/O, no clock (now is passed in),
// randomness injected as jitter — so that a table test can cover it whole.

// class is the first input of the policy: what kind of failure it is.
type class int

const (
	// classTransient: the network, a per-call timeout, a 5xx, anything
	// unknown — skydm's own misconfiguration (ServiceRefWrong) too, which
	// the operator fixes while the row waits. Retried with full-jitter
	// backoff, never before a RetryAt the server gave, until MaxAge.
	classTransient class = iota
	// classRateLimited: a 429. Like transient, but due no earlier than its
	// RetryAt (RateLimitWait when the server said nothing), and the
	// sender's other rows are held until then.
	classRateLimited
	// classPermanent: the chat service refused, with a reason: not
	// delivered.
	classPermanent
	// classAuth: the sender's session is gone or may not use chat: parked
	// until the sender signs in.
	classAuth
)

// classes lists every class; the policy's table test must have rows for
// each.
var classes = []class{classTransient, classRateLimited, classPermanent, classAuth}

func (c class) String() string {
	switch c {
	case classTransient:
		return "transient"
	case classRateLimited:
		return "rate-limited"
	case classPermanent:
		return "permanent"
	case classAuth:
		return "auth"
	}
	return "class?"
}

// class returns the failure's class.
func (f failure) class() class {
	switch {
	case f.kind == permanent:
		return classPermanent
	case f.kind == authFail:
		return classAuth
	case f.code == chatproxy.ReasonRateLimited:
		return classRateLimited
	}
	return classTransient
}

// action is what the policy decides.
type action int

const (
	actRetry  action = iota // queued again, due at decision.next
	actPark                 // parked_auth until the sender signs in
	actRefuse               // not_delivered: the chat service refused
	actGiveUp               // given_up: transient failures lasted MaxAge
)

// state is the row's state after the action.
func (a action) state() State {
	switch a {
	case actPark:
		return StateParkedAuth
	case actRefuse:
		return StateNotDelivered
	case actGiveUp:
		return StateGivenUp
	}
	return StateQueued
}

// history is the second input of the policy: the row and its sender so
// far.
type history struct {
	attempts int       // attempts made, this one included
	queuedAt time.Time // start of the MaxAge window (enqueue, Retry or Resume)
	breaker  breaker   // the sender's circuit breaker before this failure
}

// decision is what to do with the row.
type decision struct {
	action action
	next   time.Time // actRetry: when the row is due again
	// hold: actRetry only; the sender's other queued rows wait until then
	// (an open breaker or a rate limit); zero when none.
	hold time.Time
	// explain is the failure whose sentence people read: the failure
	// itself, or ReasonGivenUp. The row's reason_code is always the
	// failure's own code.
	explain failure
	breaker breaker // the sender's breaker after this failure
	opened  bool    // this failure (re)opened the breaker
}

// policy holds the tunables of the decision; newPolicy fills it from a
// Config with its defaults applied.
type policy struct {
	baseBackoff, maxBackoff time.Duration
	maxRetryAfter           time.Duration // at most apperr.MaxRetryWait
	rateLimitWait           time.Duration
	maxAge                  time.Duration
	breakerThreshold        int
	breakerCooldown         time.Duration
	jitter                  func(max time.Duration) time.Duration // a delay in [0, max]
}

func newPolicy(cfg Config) policy {
	return policy{
		baseBackoff: cfg.BaseBackoff, maxBackoff: cfg.MaxBackoff, maxRetryAfter: cfg.MaxRetryAfter,
		rateLimitWait: cfg.RateLimitWait, maxAge: cfg.MaxAge,
		breakerThreshold: cfg.BreakerThreshold, breakerCooldown: cfg.BreakerCooldown, jitter: cfg.Jitter,
	}
}

// decide returns what to do after failure f of a row with history h, at
// now.
func (p policy) decide(f failure, h history, now time.Time) decision {
	d := decision{explain: f, breaker: h.breaker}
	switch f.class() {
	case classPermanent:
		d.action = actRefuse
		return d
	case classAuth:
		d.action = actPark
		return d
	case classRateLimited:
		if f.retryAt.IsZero() {
			f.retryAt = now.Add(p.rateLimitWait)
		}
	}
	d.breaker, d.opened, d.hold = p.trip(h.breaker, f, now)
	deadline := h.queuedAt.Add(p.maxAge)
	if !now.Before(deadline) {
		d.action, d.hold = actGiveUp, time.Time{}
		d.explain = failure{kind: permanent, code: ReasonGivenUp}
		return d
	}
	next := now.Add(p.jitter(p.backoff(h.attempts)))
	if !f.retryAt.IsZero() {
		next = later(next, p.capRetryAt(f.retryAt, now))
	}
	next = later(next, d.hold)
	if next.After(deadline) {
		next = deadline
	}
	d.action, d.next = actRetry, next
	return d
}

// trip counts a transient failure against the sender's breaker b and
// returns its new state, whether it (re)opened, and until when the
// sender's rows are held (breaker cool-down or a rate limit), or zero.
func (p policy) trip(b breaker, f failure, now time.Time) (_ breaker, opened bool, hold time.Time) {
	b.fails++
	if b.fails >= p.breakerThreshold {
		opened = true
		b.until = now.Add(p.breakerCooldown)
	}
	if f.class() == classRateLimited && !f.retryAt.IsZero() {
		b.until = later(b.until, p.capRetryAt(f.retryAt, now))
	}
	if b.until.After(now) {
		hold = b.until
	}
	return b, opened, hold
}

// backoff is the upper bound of the full-jitter delay after the given
// number of attempts: baseBackoff·2^(attempts-1), at most maxBackoff.
func (p policy) backoff(attempts int) time.Duration {
	d := p.baseBackoff
	for i := 1; i < attempts && d < p.maxBackoff; i++ {
		d *= 2
	}
	return min(d, p.maxBackoff)
}

// capRetryAt returns at, or now+maxRetryAfter when at is later.
func (p policy) capRetryAt(at, now time.Time) time.Time {
	if limit := now.Add(p.maxRetryAfter); at.After(limit) {
		return limit
	}
	return at
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
