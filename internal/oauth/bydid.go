package oauth

import (
	"context"
	"errors"
	"fmt"
	"slices"

	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
)

// maxSessionsTried bounds how many stored sessions SessionForDID tries
// before giving up (each dead one costs at most a store read).
const maxSessionsTried = 5

// SessionForDID returns the process's one live *ClientSession of the newest
// stored, unexpired session of did, for background work that acts as an
// account without a browser request (the outbox worker sending a DM as the
// requester). Sessions that may use chat (transition:chat.bsky granted) are
// preferred over newer ones that may not; among equals the most recently
// saved (refreshed or signed in) wins. The session comes through the same
// path as Session, so a token refresh still happens once however many
// callers share it. A stored session that turns out to be gone or revoked
// is skipped for the next newest. It returns *apperr.Error{Code:
// Unauthorized, Reason: "SessionExpired"} when did has no usable session,
// and Internal when the store fails.
func (s *Service) SessionForDID(ctx context.Context, did syntax.DID) (*atoauth.ClientSession, error) {
	if did == "" {
		return nil, errSessionExpired(errors.New("no DID"))
	}
	ids, err := s.store.sessionIDsForDID(ctx, did, maxSessionsTried)
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "")
	}
	var last error = errSessionExpired(fmt.Errorf("no stored session for %s", did))
	for _, id := range ids {
		sess, err := s.Session(ctx, did, id)
		if err == nil {
			return sess, nil
		}
		if apperr.ReasonOf(err) != ReasonSessionExpired {
			return nil, err
		}
		last = err
	}
	return nil, last
}

// HasChatScope reports whether a session's granted scopes include
// transition:chat.bsky.
func HasChatScope(sess *atoauth.ClientSession) bool {
	return sess != nil && sess.Data != nil && slices.Contains(sess.Data.Scopes, ScopeChat)
}

// sessionIDsForDID returns the ids of did's unexpired stored sessions, at
// most limit, those granted transition:chat.bsky first, then the most
// recently saved first. It returns the database error on failure.
func (s *Store) sessionIDsForDID(ctx context.Context, did syntax.DID, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT session_id FROM oauth_sessions
		WHERE account_did = ? AND expires_at > ?
		ORDER BY (' ' || scopes || ' ' LIKE '% `+ScopeChat+` %') DESC, updated_at DESC, created_at DESC, session_id
		LIMIT ?`, did.String(), s.now().UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("oauth store: sessions of %s: %w", did, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("oauth store: sessions of %s: %w", did, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("oauth store: sessions of %s: %w", did, err)
	}
	return ids, nil
}
