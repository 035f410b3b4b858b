package notify

import (
	"context"
	"fmt"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
)

// What callers outside the loop use to bring a row back to the queue: the
// login handler's Resume and the UI's Retry. (The loop's own ways — a
// successful send, the parked recheck — are in worker.go.)

// Resume requeues, due now, every row parked because senderDID's session
// had expired or lacked the chat scope. The login handler calls it after a
// successful sign-in (with the new session in place). It returns the
// database error, if any.
func (w *Worker) Resume(ctx context.Context, senderDID syntax.DID) error {
	w.breakers.reset(senderDID)
	n, err := w.store.resume(ctx, senderDID, w.now())
	if err != nil {
		return fmt.Errorf("notify: resume %s: %w", senderDID, err)
	}
	if n > 0 {
		w.Wake()
	}
	return nil
}

// RetryCooldown is how long after a manual Retry of a DM the next one is
// refused, so that the retry button cannot be used to spend the sender's
// chat rate limit.
const RetryCooldown = time.Minute

// Retry requeues, due now, a DM that was not delivered (refused, given up,
// or parked for sign-in), starting a fresh MaxAge window. Only the person
// who filed the change request or its recipient (the project's owner) may
// retry. It returns an *apperr.Error: Unauthorized when byDID is empty,
// NotFound when there is no such notification, Forbidden for anyone else,
// Conflict when it is already sent or waiting to be sent, RateLimited
// within RetryCooldown of the previous retry; and the database error
// otherwise.
func (w *Worker) Retry(ctx context.Context, outboxID int64, byDID syntax.DID) error {
	if byDID == "" {
		return apperr.New(apperr.Unauthorized, "Sign in to retry this notification.")
	}
	now := w.now()
	ok, err := w.store.retry(ctx, outboxID, byDID, now, now.Add(-RetryCooldown))
	if err != nil {
		return fmt.Errorf("notify: retry %d: %w", outboxID, err)
	}
	if ok {
		// The sender's circuit breaker and any rate-limit hold stay: a
		// retry is due now, but never earlier than the sender may send.
		w.Wake()
		return nil
	}
	st, err := StatusByID(ctx, w.store.db, outboxID)
	if err != nil {
		return err
	}
	if st.RequesterDID != byDID && st.RecipientDID != byDID {
		return apperr.New(apperr.Forbidden, "Only the person who filed the change request or the project's owner can retry its notification.")
	}
	if st.State.Retryable() {
		return apperr.New(apperr.RateLimited, "This notification was retried less than a minute ago. Please wait a moment before retrying again.")
	}
	if st.State == StateSent {
		return apperr.New(apperr.Conflict, "This notification was already delivered.")
	}
	return apperr.New(apperr.Conflict, "This notification is already waiting to be sent.")
}
