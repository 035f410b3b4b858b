package notify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
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

// Enqueue writes d as a queued outbox row due at now, inside the caller's
// transaction (so the change request and its DM are committed together). It
// is idempotent on (SubjectURI, RecipientDID): a second call returns the
// existing row's id and writes nothing. It returns an *apperr.Error
// (Internal) when d is incomplete or the sender is the recipient, and the
// database error otherwise.
func Enqueue(ctx context.Context, tx DBTX, d Delivery, now time.Time) (int64, error) {
	switch {
	case d.SubjectURI == "" || d.RequesterDID == "" || d.SenderDID == "" || d.RecipientDID == "":
		return 0, apperr.New(apperr.Internal, "notify: incomplete delivery")
	case d.SenderDID == d.RecipientDID:
		return 0, apperr.New(apperr.Internal, "notify: sender and recipient are the same account")
	case d.Message.Text == "" || d.Message.Marker == "" || !strings.Contains(d.Message.Text, d.Message.Marker):
		return 0, apperr.New(apperr.Internal, "notify: message without its delivery marker")
	}
	ms := now.UnixMilli()
	var id int64
	err := tx.QueryRowContext(ctx, `
		INSERT INTO outbox (subject_uri, recipient_did, sender_did, requester_did, text, link_url,
			link_start, link_end, marker, state, next_attempt_at, created_at, queued_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)
		ON CONFLICT (subject_uri, recipient_did) DO NOTHING
		RETURNING id`,
		d.SubjectURI.String(), d.RecipientDID.String(), d.SenderDID.String(), d.RequesterDID.String(),
		d.Message.Text, d.Message.LinkURL, d.Message.LinkStart, d.Message.LinkEnd, d.Message.Marker,
		ms, ms, ms, ms).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowContext(ctx, `SELECT id FROM outbox WHERE subject_uri = ? AND recipient_did = ?`,
			d.SubjectURI.String(), d.RecipientDID.String()).Scan(&id)
	}
	if err != nil {
		return 0, fmt.Errorf("notify: enqueue: %w", err)
	}
	return id, nil
}

const statusColumns = `id, subject_uri, recipient_did, sender_did, requester_did, state, attempts,
	reason_code, last_error_reason, fix, next_attempt_at, convo_id, sent_message_id, sent_at,
	created_at, updated_at`

func scanStatus(sc interface{ Scan(...any) error }) (Status, error) {
	var (
		s                              Status
		subject, recip, sender, reqstr string
		state                          string
		next, created, updated         int64
		sentAt                         sql.NullInt64
	)
	if err := sc.Scan(&s.ID, &subject, &recip, &sender, &reqstr, &state, &s.Attempts,
		&s.ReasonCode, &s.Reason, &s.Fix, &next, &s.ConvoID, &s.SentMessageID, &sentAt,
		&created, &updated); err != nil {
		return Status{}, err
	}
	s.SubjectURI, s.RecipientDID = syntax.ATURI(subject), syntax.DID(recip)
	s.SenderDID, s.RequesterDID = syntax.DID(sender), syntax.DID(reqstr)
	s.State = State(state)
	s.NextAttemptAt = time.UnixMilli(next).UTC()
	if sentAt.Valid {
		s.SentAt = time.UnixMilli(sentAt.Int64).UTC()
	}
	s.CreatedAt, s.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return s, nil
}

// StatusByID returns one outbox row. It returns an *apperr.Error (NotFound)
// when there is no such row, and the database error otherwise.
func StatusByID(ctx context.Context, q DBTX, id int64) (Status, error) {
	s, err := scanStatus(q.QueryRowContext(ctx, `SELECT `+statusColumns+` FROM outbox WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Status{}, apperr.New(apperr.NotFound, "We could not find that notification.")
	}
	if err != nil {
		return Status{}, fmt.Errorf("notify: status %d: %w", id, err)
	}
	return s, nil
}

// StatusesFor returns the outbox rows of the given subjects (change request
// URIs), keyed by subject, oldest row first. Subjects without rows are
// absent from the map. It returns the database error on failure.
func StatusesFor(ctx context.Context, q DBTX, subjects []syntax.ATURI) (map[syntax.ATURI][]Status, error) {
	out := make(map[syntax.ATURI][]Status, len(subjects))
	const chunk = 500 // stay well under SQLite's parameter limit
	for i := 0; i < len(subjects); i += chunk {
		part := subjects[i:min(i+chunk, len(subjects))]
		args := make([]any, len(part))
		for j, s := range part {
			args[j] = s.String()
		}
		rows, err := q.QueryContext(ctx, `SELECT `+statusColumns+` FROM outbox WHERE subject_uri IN (?`+
			strings.Repeat(",?", len(part)-1)+`) ORDER BY id`, args...)
		if err != nil {
			return nil, fmt.Errorf("notify: statuses: %w", err)
		}
		for rows.Next() {
			s, err := scanStatus(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("notify: statuses: %w", err)
			}
			out[s.SubjectURI] = append(out[s.SubjectURI], s)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("notify: statuses: %w", err)
		}
	}
	return out, nil
}
