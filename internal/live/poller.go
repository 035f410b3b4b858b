package live

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/budget"
)

// invalidResets is how many consecutive Invalid answers make the poller
// drop its cursor and start again at the current one (the chat service no
// longer accepts the cursor, e.g. after a reset). Pages then get "resync".
const invalidResets = 3

// A getLog answer with at least catchUpPage entries may have left more
// behind (devchat and, as far as we know, the Bluesky service return up to
// 100): the poller then calls again at once, up to maxCatchUp times in a row.
const (
	catchUpPage = 100
	maxCatchUp  = 10
)

// poll is the one poller goroutine of u. It runs until the user's last page
// has been gone for Grace, no connected page has a live session, or the hub
// shuts down.
func (h *Hub) poll(u *userState) {
	defer h.wg.Done()
	log := h.log.With("did", u.did.String())
	var (
		lastCall time.Time // end of the last call; zero before the first
		retryAt  time.Time // no call before this while backing off
		failures int       // consecutive failures
		invalid  int       // consecutive Invalid failures
		reinit   bool      // next call is made without a cursor
		catchUps int       // consecutive immediate calls for full pages
	)
	for {
		h.mu.Lock()
		now := h.now()
		var (
			wait     time.Duration
			session  string
			cursor   = u.cursor
			initial  = !u.ready || reinit
			interval = h.interval(u)
		)
		if len(u.subs) == 0 {
			wait = u.empty.Add(h.cfg.Grace).Sub(now)
			if wait <= 0 {
				h.stopPoller(u)
				h.mu.Unlock()
				log.Debug("live: poller stopped: no page connected")
				return
			}
		} else {
			var ok bool
			if session, ok = u.liveSession(); !ok {
				h.stopPoller(u)
				h.mu.Unlock()
				log.Debug("live: poller stopped: no live session")
				return
			}
			due := now
			if !lastCall.IsZero() && !u.pollNow {
				due = lastCall.Add(interval)
			}
			if retryAt.After(due) {
				due = retryAt
			}
			if wait = due.Sub(now); wait <= 0 {
				u.pollNow = false
			}
		}
		h.mu.Unlock()

		if wait > 0 {
			c, stop := h.newTimer(wait)
			select {
			case <-h.ctx.Done():
				stop()
				h.mu.Lock()
				h.stopPoller(u)
				h.mu.Unlock()
				return
			case <-u.wake:
				stop()
			case <-c:
			}
			continue
		}

		if initial {
			cursor = ""
		}
		ctx, cancel := context.WithTimeout(budget.Background(h.ctx), h.cfg.CallTimeout)
		out, err := h.getLog(ctx, u, User{DID: u.did, SessionID: session}, cursor, initial)
		cancel()
		lastCall = h.now()
		if errors.Is(err, ErrUnpublished) {
			continue // a Cluster follower before the holder's first answer: wait for it
		}
		if err == nil && out == nil {
			err = apperr.New(apperr.Unavailable, "The chat service sent an empty reply.")
		}
		if err != nil {
			if h.ctx.Err() != nil {
				h.mu.Lock()
				h.stopPoller(u)
				h.mu.Unlock()
				return
			}
			if reason, stops := stopsSession(err); stops {
				h.authFailed(u, session, reason, err)
				log.Info("live: stopped polling for a session", "reason", reason, "err", err)
				failures, invalid, retryAt, lastCall = 0, 0, time.Time{}, time.Time{}
				continue
			}
			failures++
			if apperr.CodeOf(err) == apperr.Invalid && !initial {
				if invalid++; invalid >= invalidResets {
					reinit, invalid = true, 0
				}
			}
			d := h.retryDelay(err, failures, interval)
			retryAt = lastCall.Add(d)
			lvl := slog.LevelDebug
			if refused := apperr.ReasonOf(err) == apperr.ReasonBudget; refused {
				lastCall = time.Time{} // nothing was sent: due at retryAt, not an interval on
			} else if failures == 1 {
				lvl = slog.LevelWarn
			}
			log.Log(context.Background(), lvl, "live: getLog failed", "failures", failures, "retry_in", d, "err", err)
			continue
		}
		failures, invalid, retryAt = 0, 0, time.Time{}
		h.apply(u, cursor, initial, out)
		reinit = false
		if !initial && len(out.Logs) >= catchUpPage && catchUps < maxCatchUp {
			catchUps++
			lastCall = time.Time{} // due now
		} else {
			catchUps = 0
		}
	}
}

// stopPoller marks u's poller as gone and forgets u when no page is
// connected. Called with h.mu held.
func (h *Hub) stopPoller(u *userState) {
	u.polling = false
	if len(u.subs) == 0 && h.users[u.did] == u {
		delete(h.users, u.did)
	}
}

// interval is the poll interval for u's connected pages: ConvoInterval
// while a conversation page is visible, InboxInterval while another page
// is, BackgroundInterval while all are hidden, passed through the Pacer
// when there is one. It is the one place that decides it. Called with h.mu
// held.
func (h *Hub) interval(u *userState) time.Duration {
	d := h.cfg.BackgroundInterval
	switch {
	case u.convos > 0:
		d = h.cfg.ConvoInterval
	case u.visible > 0:
		d = h.cfg.InboxInterval
	}
	// Only this instance's own getLog calls spend its budget: a user whose
	// Cluster lease another instance holds reads published entries here.
	if h.cfg.Pacer != nil && (h.cfg.Cluster == nil || u.lead) {
		d = h.cfg.Pacer.Pace(User{DID: u.did}, d)
	}
	return d
}

// retryDelay is how long to wait after the failures-th consecutive failure:
// until RetryAt for RateLimited (at least one interval; for the instance's
// own budget's refusal RetryAt plus jitter up to a quarter interval, as
// nothing was sent); otherwise the
// interval plus full jitter over an exponentially growing ceiling, and never
// earlier than a RetryAt the error carries. Both are capped at MaxBackoff.
func (h *Hub) retryDelay(err error, failures int, interval time.Duration) time.Duration {
	var until time.Duration
	e := apperr.As(err)
	if e != nil && !e.RetryAt.IsZero() {
		now := h.now()
		until = apperr.CapRetryAt(e.RetryAt, now).Sub(now)
	}
	var d time.Duration
	switch {
	case e != nil && e.Code == apperr.RateLimited && e.Reason == apperr.ReasonBudget:
		// The instance's own budget refused to send it: nobody upstream
		// asked to wait, so try again once it has tokens (spread out).
		d = until + h.jitter(interval/4)
	case e != nil && e.Code == apperr.RateLimited && !e.RetryAt.IsZero():
		d = max(interval, until)
	default:
		ceil := backoffBase << min(failures-1, 30)
		if ceil <= 0 || ceil > h.cfg.MaxBackoff {
			ceil = h.cfg.MaxBackoff
		}
		d = max(interval+h.jitter(ceil), until)
	}
	return min(d, h.cfg.MaxBackoff)
}

// stopsSession reports whether err means the session cannot poll any more:
// Unauthorized (expired or revoked) or Forbidden with Reason ScopeMissing.
func stopsSession(err error) (reason string, ok bool) {
	e := apperr.As(err)
	switch {
	case e == nil:
		return "", false
	case e.Code == apperr.Unauthorized:
		if e.Reason == "" {
			return "SessionExpired", true
		}
		return e.Reason, true
	case e.Code == apperr.Forbidden && e.Reason == "ScopeMissing":
		return e.Reason, true
	}
	return "", false
}

// authFailed stops polling with session and sends its pages an auth event.
func (h *Hub) authFailed(u *userState, session, reason string, err error) {
	ev := &Event{Kind: KindAuth, Reason: reason, Notice: apperr.MessageOf(err)}
	h.mu.Lock()
	defer h.mu.Unlock()
	u.dead[session] = ev
	delete(u.sessions, session)
	for s := range u.subs {
		if s.session == session && s.auth == nil {
			s.auth = ev
			s.poke()
		}
	}
}

// apply records a successful getLog answer for the call made with cursor.
// An initial call only takes the cursor: its logs may be the whole history.
func (h *Hub) apply(u *userState, cursor string, initial bool, out *chat.ConvoGetLog_Output) {
	var events []*Event
	maxRev := ""
	for _, e := range out.Logs {
		if e == nil {
			continue
		}
		if initial {
			// Only the revs matter: the history is not emitted.
			if m := unionMember(e); m != nil {
				rev, _, _ := commonFields(m)
				maxRev = max(maxRev, rev)
			}
			continue
		}
		ev, ok := decodeEntry(e)
		if !ok {
			continue // a type this package does not know (an empty union)
		}
		maxRev = max(maxRev, ev.Rev)
		if ev.Rev != "" && ev.Rev > cursor && !unsafeID(ev.Rev) {
			events = append(events, ev)
		}
	}
	slices.SortStableFunc(events, func(a, b *Event) int { return strings.Compare(a.Rev, b.Rev) })
	next := cursor
	if out.Cursor != nil {
		next = max(next, *out.Cursor)
	}
	next = max(next, maxRev)

	h.mu.Lock()
	defer h.mu.Unlock()
	if initial {
		u.cursor, u.floor, u.ready = next, next, true
		clear(u.ring)
		u.ring, u.start = u.ring[:0], 0
	} else {
		u.cursor = next
		for _, ev := range events {
			u.push(ev, h.cfg.Buffer)
		}
	}
	if initial || len(events) > 0 {
		for s := range u.subs {
			if s.atFloor {
				// Subscribed before the first answer: everything after the
				// starting cursor is new to the page.
				s.after, s.atFloor = u.floor, false
			}
			s.poke()
		}
	}
}

// poke wakes the subscription's handler without blocking.
func (s *sub) poke() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
	if s.wake != nil {
		s.wake()
	}
}

// unsafeID reports whether rev cannot be an SSE id: too long, or containing
// a control character (a line break would end the field).
func unsafeID(rev string) bool {
	if len(rev) > 256 {
		return true
	}
	for i := 0; i < len(rev); i++ {
		if rev[i] < 0x20 || rev[i] == 0x7f {
			return true
		}
	}
	return false
}
