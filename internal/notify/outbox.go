package notify

import (
	"context"
	"database/sql"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// State is where one DM is in its delivery.
type State string

// The states of an outbox row.
const (
	StateQueued       State = "queued"        // waiting for its next attempt
	StateSending      State = "sending"       // leased by a worker right now
	StateSent         State = "sent"          // delivered; SentMessageID and ConvoID are set
	StateNotDelivered State = "not_delivered" // refused by the chat service; Reason and Fix say why
	StateParkedAuth   State = "parked_auth"   // the sender must sign in again; resumes then
	StateGivenUp      State = "given_up"      // transient failures lasted longer than MaxAge
)

// Label returns a short human label for the state.
func (s State) Label() string {
	switch s {
	case StateQueued:
		return "Waiting to be sent"
	case StateSending:
		return "Sending"
	case StateSent:
		return "Sent"
	case StateNotDelivered:
		return "Not delivered"
	case StateParkedAuth:
		return "Waiting for sign-in"
	case StateGivenUp:
		return "Not delivered (gave up)"
	}
	return string(s)
}

// Retryable reports whether Retry may requeue a row in this state.
func (s State) Retryable() bool {
	return s == StateNotDelivered || s == StateGivenUp || s == StateParkedAuth
}

// Status is what people may see of one DM's delivery.
type Status struct {
	ID           int64
	SubjectURI   syntax.ATURI // the change request
	RecipientDID syntax.DID   // the project's owner
	SenderDID    syntax.DID   // the requester, or the notifier account
	RequesterDID syntax.DID
	State        State
	Attempts     int
	// ReasonCode is the machine reason of the last failure (e.g.
	// "NotFollowedBySender", "Unavailable"); "" when none.
	ReasonCode string
	// Reason says, for people, why the DM is not (yet) delivered; it names
	// accounts by handle and is fit for both the requester and the owner.
	Reason string
	// Fix says what would let the DM through, addressed to the requester
	// ("Ask them to follow you, …"); "" when nothing can be done.
	Fix           string
	NextAttemptAt time.Time // for queued rows
	ConvoID       string
	SentMessageID string
	SentAt        time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Delivery is one DM to enqueue.
type Delivery struct {
	SubjectURI   syntax.ATURI // the change request (with RecipientDID: the idempotency key)
	RequesterDID syntax.DID   // may Retry, as may the recipient
	SenderDID    syntax.DID   // whose session sends the DM
	RecipientDID syntax.DID
	Message      Message // from ChangeRequestMessage
}

// DBTX is what Enqueue and the status queries need: a *sql.DB or a *sql.Tx.
type DBTX interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}
