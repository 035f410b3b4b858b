package notify

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/db"
)

// Every SQL statement on the outbox table is in this file: the worker's in
// the methods of store, the enqueue and status queries (which run in the
// caller's transaction) in the functions at the end.

// store is one worker's view of the outbox table. Writes that need the
// lease are made as owner and only succeed while it still holds the row.
type store struct {
	db      *sql.DB
	dialect db.Dialect
	owner   string // lease owner id, unique per Worker

	// writes serialises this worker's writes: a one-slot channel, taken by
	// lockWrites. SQLite admits one writer at a time anyway; queueing here
	// instead of in SQLite's busy handler (which sleeps 1–100 ms between
	// tries) keeps concurrent deliveries from slowing each other down. A
	// channel rather than a sync.Mutex: waiting for it gives up with the
	// caller's context, and it is a durable block under testing/synctest,
	// so a bubble's clock still moves for the busy handler of the
	// connection holding it (a Mutex froze it: the worker tests hung).
	writes chan struct{}
}

// newStore is owner's view of the outbox in db.
func newStore(sdb *sql.DB, owner string) *store {
	return &store{db: sdb, dialect: db.DialectOf(sdb), owner: owner, writes: make(chan struct{}, 1)}
}

// lockWrites takes the write slot, or returns ctx's error when ctx ends
// first; unlockWrites gives it back.
func (s *store) lockWrites(ctx context.Context) error {
	select {
	case s.writes <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *store) unlockWrites() { <-s.writes }

// row is one leased outbox row.
type row struct {
	id            int64
	subject       syntax.ATURI
	recipient     syntax.DID
	sender        syntax.DID
	requester     syntax.DID
	msg           Message
	attempts      int
	convoID       string
	sendStartedAt time.Time
	queuedAt      time.Time
}

// leaseQuery is what lease may take: at most limit rows due at now, none
// of the senders in full nor the ids in busy, at most room[s] of sender s
// (perSender for a sender not in room), each leased until until.
type leaseQuery struct {
	now, until time.Time
	limit      int
	room       map[syntax.DID]int
	perSender  int
	full       []string // never nil: NOT IN (NULL) would exclude every row
	busy       []int64
}

// lease marks the rows q allows as sending for this worker and returns
// them, and the database error if any.
func (s *store) lease(ctx context.Context, q leaseQuery) ([]row, error) {
	if q.full == nil {
		q.full = []string{}
	}
	if q.busy == nil {
		q.busy = []int64{} // a JSON array, not null
	}
	fullJSON, _ := json.Marshal(q.full)
	idsJSON, _ := json.Marshal(q.busy)
	now := q.now.UnixMilli()

	// First reads (no write lock in WAL mode, so idle polls never block
	// writers), each walking the due index (state, next_attempt_at) in
	// order for a bounded number of rows: expired leases of dead workers
	// first, then queued rows. Then one UPDATE … RETURNING on the chosen
	// ids, which re-checks that each is still due, in case another worker
	// took it meanwhile; on Postgres it skips the rows another instance's
	// lease is locking just now (FOR UPDATE SKIP LOCKED) instead of waiting
	// for them.
	scan := q.limit*4 + 16
	var candidates []int64
	for _, state := range []State{StateSending, StateQueued} {
		if len(candidates) >= q.limit {
			break
		}
		rows, err := s.db.QueryContext(ctx, `
			SELECT id, sender_did FROM outbox
			WHERE state = ?1 AND next_attempt_at <= ?2
				AND sender_did NOT IN (`+s.dialect.JSONValues("?3", "TEXT")+`)
				AND id NOT IN (`+s.dialect.JSONValues("?4", "BIGINT")+`)
			ORDER BY next_attempt_at, id
			LIMIT ?5`,
			string(state), now, string(fullJSON), string(idsJSON), scan)
		if err != nil {
			return nil, fmt.Errorf("notify: lease: %w", err)
		}
		for rows.Next() && len(candidates) < q.limit {
			var (
				id     int64
				sender string
			)
			if err := rows.Scan(&id, &sender); err != nil {
				rows.Close()
				return nil, fmt.Errorf("notify: lease: %w", err)
			}
			r, ok := q.room[syntax.DID(sender)]
			if !ok {
				r = q.perSender
			}
			if r <= 0 {
				continue
			}
			q.room[syntax.DID(sender)] = r - 1
			candidates = append(candidates, id)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("notify: lease: %w", err)
		}
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	candJSON, _ := json.Marshal(candidates)
	if err := s.lockWrites(ctx); err != nil {
		return nil, fmt.Errorf("notify: lease: %w", err)
	}
	defer s.unlockWrites()
	rows, err := s.db.QueryContext(ctx, `
		UPDATE outbox
		SET state = 'sending', lease_owner = ?1, lease_until = ?2, next_attempt_at = ?2,
			attempts = attempts + 1, updated_at = ?3
		WHERE id IN (SELECT id FROM outbox WHERE id IN (`+s.dialect.JSONValues("?4", "BIGINT")+`)
			AND state IN ('queued', 'sending') AND next_attempt_at <= ?3`+s.dialect.SkipLocked()+`)
		RETURNING id, subject_uri, recipient_did, sender_did, requester_did, text, link_url,
			link_start, link_end, marker, attempts, convo_id, send_started_at, queued_at`,
		s.owner, q.until.UnixMilli(), now, string(candJSON))
	if err != nil {
		return nil, fmt.Errorf("notify: lease: %w", err)
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		var (
			r                                 row
			subject, recip, sender, requester string
			started                           sql.NullInt64
			queuedAt                          int64
		)
		if err := rows.Scan(&r.id, &subject, &recip, &sender, &requester, &r.msg.Text, &r.msg.LinkURL,
			&r.msg.LinkStart, &r.msg.LinkEnd, &r.msg.Marker, &r.attempts, &r.convoID, &started, &queuedAt); err != nil {
			return out, fmt.Errorf("notify: lease: %w", err)
		}
		r.subject, r.recipient = syntax.ATURI(subject), syntax.DID(recip)
		r.sender, r.requester = syntax.DID(sender), syntax.DID(requester)
		if started.Valid {
			r.sendStartedAt = time.UnixMilli(started.Int64)
		}
		r.queuedAt = time.UnixMilli(queuedAt)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("notify: lease: %w", err)
	}
	return out, nil
}

// exec runs one write statement holding the write slot.
func (s *store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := s.lockWrites(ctx); err != nil {
		return nil, err
	}
	defer s.unlockWrites()
	return s.db.ExecContext(ctx, query, args...)
}

// markSendStarted records, just before sendMessage, that the DM may exist
// from now on, and extends the lease to until. It reports false when this
// worker no longer holds the row (or its lease ran out).
func (s *store) markSendStarted(ctx context.Context, id int64, convoID string, now, until time.Time) (bool, error) {
	res, err := s.exec(ctx, `
		UPDATE outbox SET convo_id = ?, send_started_at = coalesce(send_started_at, ?),
			lease_until = ?, next_attempt_at = ?, updated_at = ?
		WHERE id = ? AND lease_owner = ? AND state = 'sending' AND lease_until > ?`,
		convoID, now.UnixMilli(), until.UnixMilli(), until.UnixMilli(), now.UnixMilli(), id, s.owner, now.UnixMilli())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// markSent records the delivery. It does not insist on the lease: once
// the DM exists, "sent" is the truth whoever holds the row.
func (s *store) markSent(ctx context.Context, id int64, messageID, convoID string, now time.Time) error {
	ms := now.UnixMilli()
	_, err := s.exec(ctx, `
		UPDATE outbox SET state = 'sent', sent_message_id = ?, convo_id = ?, sent_at = ?,
			lease_owner = NULL, lease_until = NULL, reason_code = '', last_error_reason = '', fix = '',
			updated_at = ?
		WHERE id = ? AND state <> 'sent'`,
		messageID, convoID, ms, ms, id)
	return err
}

// release puts a row this worker holds back in the queue, due now.
func (s *store) release(ctx context.Context, id int64, now time.Time) error {
	ms := now.UnixMilli()
	_, err := s.exec(ctx, `
		UPDATE outbox SET state = 'queued', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL,
			updated_at = ?
		WHERE id = ? AND lease_owner = ? AND state = 'sending'`, ms, ms, id, s.owner)
	return err
}

// releaseAll releases every lease this worker still holds.
func (s *store) releaseAll(ctx context.Context, now time.Time) error {
	ms := now.UnixMilli()
	_, err := s.exec(ctx, `
		UPDATE outbox SET state = 'queued', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL,
			updated_at = ?
		WHERE lease_owner = ? AND state = 'sending'`, ms, ms, s.owner)
	return err
}

// requeue puts a leased row back in the queue after a transient failure,
// due at next, with the failure's code and human reason.
func (s *store) requeue(ctx context.Context, id int64, next time.Time, code, reason string, now time.Time) error {
	_, err := s.exec(ctx, `
		UPDATE outbox SET state = 'queued', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL,
			reason_code = ?, last_error_reason = ?, fix = '', updated_at = ?
		WHERE id = ? AND lease_owner = ? AND state = 'sending'`,
		next.UnixMilli(), code, reason, now.UnixMilli(), id, s.owner)
	return err
}

// holdSender makes the sender's queued rows due no earlier than until, so
// that an open breaker or a rate limit is honoured by every worker process.
func (s *store) holdSender(ctx context.Context, sender syntax.DID, until, now time.Time) error {
	_, err := s.exec(ctx, `
		UPDATE outbox SET next_attempt_at = ?, updated_at = ?
		WHERE sender_did = ? AND state = 'queued' AND next_attempt_at < ?`,
		until.UnixMilli(), now.UnixMilli(), sender.String(), until.UnixMilli())
	return err
}

// finish moves a leased row to a final or parked state.
func (s *store) finish(ctx context.Context, id int64, state State, now time.Time, code, reason, fix string) error {
	_, err := s.exec(ctx, `
		UPDATE outbox SET state = ?, lease_owner = NULL, lease_until = NULL, reason_code = ?,
			last_error_reason = ?, fix = ?, next_attempt_at = ?, updated_at = ?
		WHERE id = ? AND lease_owner = ? AND state = 'sending'`,
		string(state), code, reason, fix, now.UnixMilli(), now.UnixMilli(), id, s.owner)
	return err
}

// resume requeues, due now, the sender's parked rows with a fresh MaxAge
// window, and returns how many.
func (s *store) resume(ctx context.Context, sender syntax.DID, now time.Time) (int64, error) {
	ms := now.UnixMilli()
	res, err := s.exec(ctx, `
		UPDATE outbox SET state = 'queued', next_attempt_at = ?, queued_at = ?, reason_code = '',
			last_error_reason = '', fix = '', updated_at = ?
		WHERE sender_did = ? AND state = 'parked_auth'`, ms, ms, ms, sender.String())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// recheckParked requeues, due now, the oldest parked row of each sender
// parked since cut or before, and returns how many.
func (s *store) recheckParked(ctx context.Context, now, cut time.Time) (int64, error) {
	res, err := s.exec(ctx, `
		UPDATE outbox SET state = 'queued', next_attempt_at = ?, updated_at = ?
		WHERE id IN (SELECT min(id) FROM outbox WHERE state = 'parked_auth' AND updated_at <= ? GROUP BY sender_did)`,
		now.UnixMilli(), now.UnixMilli(), cut.UnixMilli())
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// retry requeues, due now with a fresh MaxAge window, row id if it is not
// delivered, by is its requester or recipient and it was last retried at
// or before retriedBy. It reports whether it did.
func (s *store) retry(ctx context.Context, id int64, by syntax.DID, now, retriedBy time.Time) (bool, error) {
	ms := now.UnixMilli()
	res, err := s.exec(ctx, `
		UPDATE outbox SET state = 'queued', next_attempt_at = ?, queued_at = ?, reason_code = '',
			last_error_reason = '', fix = '', updated_at = ?, retried_at = ?
		WHERE id = ? AND state IN ('not_delivered', 'given_up', 'parked_auth')
			AND (requester_did = ? OR recipient_did = ?) AND retried_at <= ?`,
		ms, ms, ms, ms, id, by.String(), by.String(), retriedBy.UnixMilli())
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
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
