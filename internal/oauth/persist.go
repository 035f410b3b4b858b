package oauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
)

// Why rotated tokens stay in memory until they are saved: a refresh spends
// the stored refresh token the moment the auth server answers. When saving
// the new pair fails (SQLite busy, disk full) and the session is later
// resumed from the database (a restart), the spent token is sent again,
// and the reference PDS treats that as a replay and deletes the session.
// So a live session's newest data is the authority until a save succeeds:
// the save is retried in the background with capped backoff until it
// succeeds or the session ends, a live session with unsaved tokens is never
// evicted (so nothing resumes it from the stale row), and Service.Close
// makes a last attempt at shutdown.

// sessionUpdater saves a live session's rotated tokens (the Store).
type sessionUpdater interface {
	UpdateSession(ctx context.Context, sess atoauth.ClientSessionData) error
}

// saveRetryMax caps the wait between attempts to save unsaved tokens.
const saveRetryMax = 30 * time.Second

// tokenSaver stores one live session's data and keeps the newest copy the
// store does not have yet.
type tokenSaver struct {
	svc *Service
	tr  *sessionTransport

	mu       sync.Mutex                 // held across each save, so saves never go backwards
	pending  *atoauth.ClientSessionData // newest data not yet stored; nil when stored
	failures int                        // failed saves of pending
	retrying bool                       // a retry goroutine is running
}

// persist is the session's PersistSessionCallback; indigo calls it with the
// session's lock held after a refresh or a nonce update.
func (ts *tokenSaver) persist(ctx context.Context, d *atoauth.ClientSessionData) {
	if ts.tr.dead.Load() {
		return
	}
	snap := *d
	snap.Scopes = slices.Clone(d.Scopes)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.pending = &snap
	// Saved even if the request that caused the refresh was cancelled.
	if ts.saveLocked(context.WithoutCancel(ctx)) || ts.retrying {
		return
	}
	ts.retrying = ts.svc.goBackground(ts.retry)
}

// unsaved reports whether the store lacks this session's newest tokens.
func (ts *tokenSaver) unsaved() bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.pending != nil
}

// saveLocked stores pending, if any, and reports whether nothing is left
// to save. A row that is gone ends the session.
func (ts *tokenSaver) saveLocked(ctx context.Context) bool {
	if ts.pending == nil || ts.tr.dead.Load() {
		return true
	}
	pctx, cancel := context.WithTimeout(ctx, persistTimeout)
	defer cancel()
	d := ts.pending
	err := ts.svc.sessionSaves.UpdateSession(pctx, *d)
	log := ts.svc.log.With("did", d.AccountDID, "session_id", d.SessionID)
	switch {
	case err == nil:
		if ts.failures > 0 {
			log.Info("oauth: rotated tokens saved after failed attempts; the session is safe again", "failed_attempts", ts.failures)
		}
		ts.pending, ts.failures = nil, 0
		return true
	case errors.Is(err, ErrNotFound):
		// Logged out or collected meanwhile: the in-memory copy must not
		// outlive its row and keep refreshing until a restart.
		ts.pending, ts.failures = nil, 0
		ts.svc.expire(pctx, ts.tr, errors.New("session row gone while saving refreshed tokens"))
		return true
	}
	ts.failures++
	if ts.failures == 1 {
		log.Error("oauth: could not save a session's rotated tokens; the stored refresh token is already spent, "+
			"so this user will be signed out if the process stops before the save succeeds. "+
			"Keeping the new tokens in memory and retrying", "err", err)
	} else {
		log.Warn("oauth: still cannot save a session's rotated tokens; the user will be signed out if the process stops first",
			"failed_attempts", ts.failures, "err", err)
	}
	return false
}

// retry saves pending again with doubling waits (saveRetryMin up to
// saveRetryMax) until it is stored, the session ends or the Service closes.
func (ts *tokenSaver) retry() {
	wait := ts.svc.saveRetryMin
	for {
		t := time.NewTimer(wait)
		select {
		case <-ts.svc.closing:
			t.Stop()
			ts.mu.Lock()
			ts.retrying = false
			ts.mu.Unlock()
			return
		case <-t.C:
		}
		ts.mu.Lock()
		done := ts.saveLocked(context.Background())
		if done {
			ts.retrying = false
		}
		ts.mu.Unlock()
		if done {
			return
		}
		wait = min(2*wait, saveRetryMax)
	}
}

// goBackground runs f in a goroutine Close waits for and reports whether
// it started (not after Close).
func (s *Service) goBackground(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.bg.Go(f)
	return true
}

// Close stops background saving and makes a last attempt to store every
// live session's unsaved rotated tokens; call it at shutdown after the
// HTTP server and background workers have stopped. It returns an error
// naming how many sessions could not be saved (their users will have to
// sign in again); that is logged too. Calling it twice is harmless.
func (s *Service) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closing)
	}
	var savers []*tokenSaver
	for _, ls := range s.live {
		select {
		case <-ls.ready:
			if ls.err == nil {
				savers = append(savers, ls.tr.saver)
			}
		default:
		}
	}
	s.mu.Unlock()
	s.bg.Wait()
	lost := 0
	for _, ts := range savers {
		ts.mu.Lock()
		if !ts.saveLocked(ctx) {
			lost++
		}
		ts.mu.Unlock()
	}
	if lost > 0 {
		s.log.Error("oauth: shutting down with rotated tokens that could not be saved; these users must sign in again",
			"sessions", lost)
		return fmt.Errorf("oauth: rotated tokens of %d session(s) could not be saved", lost)
	}
	return nil
}
