package oauth

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/websession"
)

// Why a refresh lock of our own: indigo's ClientSession serialises
// RefreshTokens with its mutex, but DoWithAuth calls RefreshTokens whenever
// a response says invalid_token, without checking whether another goroutine
// already refreshed. N concurrent requests with an expired token therefore
// refresh N times in a row (each one rotating the refresh token), and two
// ClientSession instances for one session would send the same refresh token
// twice, which the reference PDS treats as a replay and answers by deleting
// the whole session. So the Service keeps exactly one ClientSession per
// (DID, session id) and gives it an http.Client whose transport handles an
// expired-token answer itself: under a per-session lock it refreshes only if
// the token the request used is still the current one, then retries with
// the current token. DoWithAuth never sees invalid_token from a request it
// could refresh for, so it never refreshes on its own.

const (
	refreshTimeout = 30 * time.Second
	persistTimeout = 10 * time.Second
	revokeTimeout  = 10 * time.Second
	maxReplayBody  = 32 << 20
)

type sessionKey struct {
	did syntax.DID
	id  string
}

type liveSession struct {
	ready chan struct{} // closed when sess/err are set
	sess  *atoauth.ClientSession
	tr    *sessionTransport
	err   error
}

// Session returns the process's one live *ClientSession for (did,
// sessionID), loading it from the store on first use. All callers (page
// handlers, the live poller, the outbox worker) share it, so a token
// refresh happens once. Use it through APIClient() / DoWithAuth; do not
// call its RefreshTokens directly (that bypasses the refresh-once lock). It
// returns *apperr.Error{Code: Unauthorized,
// Reason: "SessionExpired"} when the session is unknown, expired, revoked
// or unreadable, and Internal when the store fails.
func (s *Service) Session(ctx context.Context, did syntax.DID, sessionID string) (*atoauth.ClientSession, error) {
	ls, err := s.liveSession(ctx, did, sessionID)
	if err != nil {
		return nil, err
	}
	return ls.sess, nil
}

func (s *Service) liveSession(ctx context.Context, did syntax.DID, sessionID string) (*liveSession, error) {
	if did == "" || sessionID == "" {
		return nil, errSessionExpired(errors.New("no session"))
	}
	key := sessionKey{did, sessionID}
	s.mu.Lock()
	ls, ok := s.live[key]
	if !ok {
		ls = &liveSession{ready: make(chan struct{})}
		s.live[key] = ls
	}
	s.mu.Unlock()

	if !ok {
		ls.sess, ls.tr, ls.err = s.resume(ctx, key)
		if ls.err != nil {
			s.evict(key, ls)
		}
		close(ls.ready)
	} else {
		select {
		case <-ls.ready:
		case <-ctx.Done():
			return nil, newErr(apperr.Unavailable, "", "", ctx.Err())
		}
	}
	if ls.err != nil {
		return nil, ls.err
	}
	if ls.tr.dead.Load() {
		return nil, errSessionExpired(errors.New("session ended"))
	}
	return ls, nil
}

// resume builds the ClientSession from the store (indigo's ResumeSession)
// and wires in the refresh-once transport and an update-only persist
// callback.
func (s *Service) resume(ctx context.Context, key sessionKey) (*atoauth.ClientSession, *sessionTransport, error) {
	sess, err := s.app.ResumeSession(ctx, key.did, key.id)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil, errSessionExpired(err)
	case errors.Is(err, ErrDecrypt):
		s.log.Error("oauth: stored session cannot be decrypted (was the encryption key changed?)",
			"did", key.did, "session_id", key.id)
		return nil, nil, errSessionExpired(err)
	case err != nil:
		return nil, nil, apperr.Wrap(err, apperr.Internal, "")
	}
	base := s.httpClient.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	tr := &sessionTransport{
		base:          base,
		svc:           s,
		key:           key,
		sess:          sess,
		tokenEndpoint: sess.Data.AuthServerTokenEndpoint,
	}
	sess.Client = &http.Client{
		Transport:     tr,
		Timeout:       s.httpClient.Timeout,
		CheckRedirect: s.httpClient.CheckRedirect,
	}
	tr.saver = &tokenSaver{svc: s, tr: tr}
	sess.PersistSessionCallback = tr.saver.persist
	return sess, tr, nil
}

// evict forgets a live session so the next use resumes it from the store,
// except while it holds rotated tokens the store lacks and has not ended:
// resuming then would send a spent refresh token. (dead is checked first:
// expire calls this with the saver's lock held.)
func (s *Service) evict(key sessionKey, ls *liveSession) {
	if ls.tr != nil && !ls.tr.dead.Load() && ls.tr.saver.unsaved() {
		s.log.Warn("oauth: keeping a live session whose rotated tokens are not saved yet", "did", key.did, "session_id", key.id)
		return
	}
	s.mu.Lock()
	if s.live[key] == ls {
		delete(s.live, key)
	}
	s.mu.Unlock()
}

// SessionActive reports whether the session (did, sessionID) still exists:
// live in this process and not ended, or stored and unexpired. It makes no
// network call, so a session revoked at the auth server counts as active
// until a request finds out (which ends it). It returns the store's error
// when it can't tell.
func (s *Service) SessionActive(ctx context.Context, did syntax.DID, sessionID string) (bool, error) {
	s.mu.Lock()
	ls := s.live[sessionKey{did, sessionID}]
	s.mu.Unlock()
	if ls != nil {
		select {
		case <-ls.ready:
			if ls.err == nil {
				return !ls.tr.dead.Load(), nil
			}
		default:
		}
	}
	ok, err := s.store.sessionExists(ctx, did, sessionID)
	if err != nil {
		return false, apperr.Wrap(err, apperr.Internal, "")
	}
	return ok, nil
}

// APIClient returns an XRPC client for acct's PDS that signs requests with
// the account's DPoP-bound token and refreshes it (once) when it expires.
// Use .WithService(ref) for proxied services such as chat. Errors are those
// of Session. A session that turns out to be revoked while in use makes the
// request fail with an error wrapping the SessionExpired *apperr.Error.
func (s *Service) APIClient(ctx context.Context, acct websession.Account) (*atclient.APIClient, error) {
	sess, err := s.Session(ctx, acct.DID, acct.SessionID)
	if err != nil {
		return nil, err
	}
	return sess.APIClient(), nil
}

// Logout revokes the session's tokens at the authorization server and
// deletes it, even when revocation fails (that is logged). Logging out a
// session that is already gone is not an error. It returns an
// *apperr.Error Internal only when the store cannot delete the row.
func (s *Service) Logout(ctx context.Context, did syntax.DID, sessionID string) error {
	key := sessionKey{did, sessionID}
	ls, err := s.liveSession(ctx, did, sessionID)
	if err == nil {
		ls.tr.refreshMu.Lock() // no refresh in flight while revoking
		if !ls.tr.dead.Swap(true) {
			if ls.sess.Data.AuthServerRevocationEndpoint == "" {
				s.log.Info("oauth: auth server has no revocation endpoint", "did", did)
			} else {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
				if err := ls.sess.RevokeSession(rctx); err != nil {
					s.log.Warn("oauth: revoking tokens at logout failed; deleting the session anyway",
						"did", did, "session_id", sessionID, "err", err)
				}
				cancel()
			}
		}
		ls.tr.refreshMu.Unlock()
		s.evict(key, ls)
	}
	if err := s.store.DeleteSession(context.WithoutCancel(ctx), did, sessionID); err != nil {
		return apperr.Wrap(err, apperr.Internal, "")
	}
	return nil
}

// expire forgets a session the auth server no longer honours.
func (s *Service) expire(ctx context.Context, tr *sessionTransport, cause error) {
	tr.dead.Store(true)
	s.mu.Lock()
	ls := s.live[tr.key]
	s.mu.Unlock()
	if ls != nil && ls.tr == tr {
		s.evict(tr.key, ls)
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), persistTimeout)
	defer cancel()
	if err := s.store.DeleteSession(dctx, tr.key.did, tr.key.id); err != nil {
		s.log.Error("oauth: deleting expired session", "did", tr.key.did, "err", err)
	}
	s.log.Info("oauth: session ended by the auth server", "did", tr.key.did, "session_id", tr.key.id, "cause", cause)
}

func parseDPoPKey(multibase string) (atcrypto.PrivateKey, error) {
	return atcrypto.ParsePrivateMultibase(multibase)
}
