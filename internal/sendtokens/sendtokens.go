// Package sendtokens records in the database which one-time send-form tokens were spent, so that a token is spent once across every instance on it.
package sendtokens

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Use is the earlier use of a token that a claim met: still sending, or
// sent as the message MessageID.
type Use struct {
	Sent      bool
	MessageID string
}

// DefaultCollectEvery is how often Run deletes the rows of expired tokens.
const DefaultCollectEvery = 10 * time.Minute

// Store keeps the spent tokens in the send_tokens table (migration 0006);
// every instance on one database shares what it records. A token is known
// by its nonce: the random part its HMAC covers (the handlers check the
// HMAC first, so only their own tokens reach the store).
type Store struct {
	db  *sql.DB
	now func() time.Time
	log *slog.Logger
}

// New returns the store on sdb (a database db.Open returned, migrated);
// now nil → time.Now, log nil → slog.Default.
func New(sdb *sql.DB, now func() time.Time, log *slog.Logger) *Store {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Store{db: sdb, now: now, log: log}
}

// claimAttempts bounds Claim's retries when the row it met was deleted
// (its send failed) before it could be read.
const claimAttempts = 3

// Claim marks the token with nonce, valid until exp, as sending. ok is
// true when the caller may send: the token was never used, or its last
// use failed. Otherwise prev is the earlier use. Of claims of one token at
// the same time, on any instance, exactly one gets ok.
func (s *Store) Claim(ctx context.Context, nonce string, exp time.Time) (prev Use, ok bool, err error) {
	for range claimAttempts {
		res, err := s.db.ExecContext(ctx,
			`INSERT INTO send_tokens (nonce, state, message_id, expires_at) VALUES (?, 'sending', '', ?)
			 ON CONFLICT (nonce) DO NOTHING`, []byte(nonce), exp.UnixMilli())
		if err != nil {
			return Use{}, false, fmt.Errorf("sendtokens: claim: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return Use{}, false, fmt.Errorf("sendtokens: claim: %w", err)
		} else if n == 1 {
			return Use{}, true, nil
		}
		var state string
		err = s.db.QueryRowContext(ctx, `SELECT state, message_id FROM send_tokens WHERE nonce = ?`, []byte(nonce)).
			Scan(&state, &prev.MessageID)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			continue // its send failed meanwhile: claim it again
		case err != nil:
			return Use{}, false, fmt.Errorf("sendtokens: claim: %w", err)
		}
		prev.Sent = state == "sent"
		return prev, false, nil
	}
	// Sent and failed over and over while we looked: another request is
	// sending with it.
	return Use{}, false, nil
}

// Finish records the outcome of the send that claimed nonce: the message
// id when it was sent, or "" when it failed (the token may then be used
// again).
func (s *Store) Finish(ctx context.Context, nonce, msgID string) error {
	var err error
	if msgID == "" {
		_, err = s.db.ExecContext(ctx, `DELETE FROM send_tokens WHERE nonce = ? AND state = 'sending'`, []byte(nonce))
	} else {
		_, err = s.db.ExecContext(ctx, `UPDATE send_tokens SET state = 'sent', message_id = ? WHERE nonce = ?`, msgID, []byte(nonce))
	}
	if err != nil {
		return fmt.Errorf("sendtokens: finish: %w", err)
	}
	return nil
}

// DeleteExpired deletes the rows of tokens that have expired (their forms
// are refused before the store is asked) and returns how many.
func (s *Store) DeleteExpired(ctx context.Context) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM send_tokens WHERE expires_at <= ?`, s.now().UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("sendtokens: delete expired: %w", err)
	}
	return res.RowsAffected()
}

// Run deletes expired rows now and then every DefaultCollectEvery until
// ctx is done; failures are logged and tried again next time.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(DefaultCollectEvery)
	defer t.Stop()
	for {
		n, err := s.DeleteExpired(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("sendtokens: deleting expired rows", "err", err)
		case n > 0:
			s.log.Info("sendtokens: deleted expired rows", "rows", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
