package notify

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluesky-social/indigo/api/chat"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
)

// Sender gives the worker a chat client acting as one account.
type Sender interface {
	// Chat returns a client whose calls act as senderDID. It returns an
	// *apperr.Error with Reason "SessionExpired" (or Code Unauthorized)
	// when the account has no usable session, "ScopeMissing" when its
	// session may not use chat, and any other error for transient trouble.
	Chat(ctx context.Context, senderDID syntax.DID) (Chat, error)
}

// Chat is the part of chat.bsky.convo the worker uses, in the shapes of
// *chatproxy.Client (which satisfies it). Errors should be *apperr.Error
// with chatproxy's Reasons (NotFollowedBySender, MessagesDisabled, Blocked,
// RecipientNotFound, RateLimited with RetryAt, SessionExpired,
// ScopeMissing, Unavailable, ...); raw atclient.APIError, net and context
// errors are understood too.
type Chat interface {
	// GetConvoAvailability: members are the other members' DIDs.
	GetConvoAvailability(ctx context.Context, members []string) (*chat.ConvoGetConvoAvailability_Output, error)
	// GetConvoForMembers gets or creates the direct convo with members.
	GetConvoForMembers(ctx context.Context, members []string) (*chat.ConvoDefs_ConvoView, error)
	SendMessage(ctx context.Context, convoID string, msg chatproxy.MessageInput) (*chat.ConvoDefs_MessageView, error)
	// GetMessages returns a page of the convo's messages, newest first.
	GetMessages(ctx context.Context, convoID, cursor string, limit int64) (*chatproxy.MessagePage, error)
}

var _ Chat = (*chatproxy.Client)(nil)

// Config configures a Worker. Zero values take the defaults noted.
type Config struct {
	DB        *sql.DB            // required; the database with the outbox table
	Sender    Sender             // required
	Directory identity.Directory // optional: handles for human reasons; nil → generic labels
	Logger    *slog.Logger       // nil → discard
	Now       func() time.Time   // nil → time.Now
	// Jitter picks a delay in [0, max] for full-jitter backoff; nil →
	// uniformly random.
	Jitter func(max time.Duration) time.Duration

	Concurrency       int           // deliveries in flight at once; default 8
	SenderConcurrency int           // deliveries in flight per sender; default 1
	PollInterval      time.Duration // how often due rows are looked for without a Wake; default 1s
	LeaseDuration     time.Duration // a leased row is the worker's for this long; default 2m
	CallTimeout       time.Duration // per chat call; default 15s
	BaseBackoff       time.Duration // first retry delay bound; default 2s
	MaxBackoff        time.Duration // bound of the backoff; default 30m
	MaxRetryAfter     time.Duration // cap on a server's Retry-After / ratelimit-reset; default (and at most) apperr.MaxRetryWait
	// RateLimitWait is the wait after a 429 that says nothing of when to
	// retry. Through a PDS that is the usual case: the reference PDS
	// (@atproto/pds pipethrough + xrpc-server error middleware) drops the
	// chat service's Retry-After and ratelimit-* headers from proxied
	// errors. Default 30s.
	RateLimitWait    time.Duration
	MaxAge           time.Duration // give up after transient failures for this long; default 24h
	BreakerThreshold int           // consecutive transient failures that open a sender's breaker; default 5
	BreakerCooldown  time.Duration // how long an open breaker holds the sender's rows; default 2m
	ShutdownGrace    time.Duration // time in-flight deliveries get after Run's ctx ends; default 10s
	// ParkedRecheck: every so often one parked row per sender is tried
	// again, in case the sender signed in without Resume being called.
	// Default 15m; negative disables.
	ParkedRecheck time.Duration
	// MarkerPages bounds the marker search before a retry: pages of 100
	// messages of getMessages. The search stops earlier, at messages sent
	// before the delivery's first send began (less MarkerClockSkew); this
	// is only the hard cap for a convo busier than that. Default 50.
	MarkerPages int
	// MarkerClockSkew is how far the chat service's clock may be behind
	// skydm's when the marker search decides a message is older than the
	// delivery's first send; default 10m.
	MarkerClockSkew time.Duration
}

// Worker delivers outbox rows. Create it with New; Run owns its goroutines.
// Resume and Retry may be called from any goroutine, whether or not Run is
// running.
type Worker struct {
	cfg   Config
	db    *sql.DB
	log   *slog.Logger
	now   func() time.Time
	owner string // lease owner id, unique per Worker
	wake  chan struct{}
	run   atomic.Bool

	mu       sync.Mutex
	breakers map[syntax.DID]*breaker

	// wmu serialises this worker's writes. SQLite admits one writer at a
	// time anyway; queueing on a Go mutex instead of in SQLite's busy
	// handler (which sleeps 1–100 ms between tries) keeps concurrent
	// deliveries from slowing each other down.
	wmu sync.Mutex

	// Test seams. afterSend, when set, is called right after sendMessage
	// returns; true simulates the process dying before the row is marked
	// (nothing more is written by this worker, not even at shutdown).
	// cycles counts lease queries, so tests can wait for the worker to
	// have looked for due rows without sleeping.
	afterSend func(id int64) bool
	crashed   atomic.Bool
	cycles    atomic.Int64
}

type breaker struct {
	fails int
	until time.Time
}

// New returns a Worker. It returns an error when DB or Sender is missing or
// the durations contradict one another (LeaseDuration must exceed
// 2×CallTimeout).
func New(cfg Config) (*Worker, error) {
	if cfg.DB == nil || cfg.Sender == nil {
		return nil, errors.New("notify: Config.DB and Config.Sender are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	defInt(&cfg.Concurrency, 8)
	defInt(&cfg.SenderConcurrency, 1)
	defInt(&cfg.BreakerThreshold, 5)
	defInt(&cfg.MarkerPages, 50)
	def(&cfg.PollInterval, time.Second)
	def(&cfg.LeaseDuration, 2*time.Minute)
	def(&cfg.CallTimeout, 15*time.Second)
	def(&cfg.BaseBackoff, 2*time.Second)
	def(&cfg.MaxBackoff, 30*time.Minute)
	def(&cfg.MaxRetryAfter, apperr.MaxRetryWait)
	cfg.MaxRetryAfter = min(cfg.MaxRetryAfter, apperr.MaxRetryWait)
	def(&cfg.RateLimitWait, 30*time.Second)
	def(&cfg.MaxAge, 24*time.Hour)
	def(&cfg.BreakerCooldown, 2*time.Minute)
	def(&cfg.ShutdownGrace, 10*time.Second)
	def(&cfg.MarkerClockSkew, 10*time.Minute)
	if cfg.ParkedRecheck == 0 {
		cfg.ParkedRecheck = 15 * time.Minute
	}
	if cfg.LeaseDuration < 2*cfg.CallTimeout {
		return nil, fmt.Errorf("notify: LeaseDuration %v must be at least twice CallTimeout %v", cfg.LeaseDuration, cfg.CallTimeout)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return time.Duration(mrand.Int64N(int64(max) + 1))
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("notify: lease owner id: %w", err)
	}
	return &Worker{
		cfg:      cfg,
		db:       cfg.DB,
		log:      log.With("component", "notify"),
		now:      cfg.Now,
		owner:    hex.EncodeToString(b[:]),
		wake:     make(chan struct{}, 1),
		breakers: map[syntax.DID]*breaker{},
	}, nil
}

// Wake tells a running worker that rows may be due now (after an enqueue).
// It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

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

// Run delivers due rows until ctx is done. It then stops leasing, gives
// in-flight deliveries ShutdownGrace to finish (a delivery cut short puts
// its row back in the queue, due at once) and releases any lease it still
// holds. It returns nil after a clean stop, and an error only if called
// while already running.
func (w *Worker) Run(ctx context.Context) error {
	if !w.run.CompareAndSwap(false, true) {
		return errors.New("notify: Worker.Run is already running")
	}
	defer w.run.Store(false)

	hard, hardCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hardCancel()

	type finished struct {
		id     int64
		sender syntax.DID
	}
	done := make(chan finished)
	inflight := map[int64]syntax.DID{}
	perSender := map[syntax.DID]int{}
	poll := time.NewTimer(0)
	defer poll.Stop()
	var grace <-chan time.Time
	var graceTimer *time.Timer
	defer func() {
		if graceTimer != nil {
			graceTimer.Stop()
		}
	}()
	ctxDone := ctx.Done()
	var lastParkedCheck time.Time

	for {
		if ctx.Err() == nil {
			if w.cfg.ParkedRecheck > 0 && w.now().Sub(lastParkedCheck) >= w.cfg.ParkedRecheck {
				lastParkedCheck = w.now()
				if err := w.recheckParked(ctx); err != nil && ctx.Err() == nil {
					w.log.Error("parked recheck failed", "err", err)
				}
			}
			if free := w.cfg.Concurrency - len(inflight); free > 0 {
				rows, err := w.lease(ctx, free, inflight, perSender)
				if err != nil && ctx.Err() == nil {
					w.log.Error("leasing outbox rows failed", "err", err)
				}
				for _, r := range rows {
					inflight[r.id] = r.sender
					perSender[r.sender]++
					go func(r row) {
						w.deliver(hard, r)
						done <- finished{r.id, r.sender}
					}(r)
				}
			}
		} else if len(inflight) == 0 {
			break
		}
		select {
		case <-ctxDone:
			ctxDone = nil
			graceTimer = time.NewTimer(w.cfg.ShutdownGrace)
			grace = graceTimer.C
		case <-grace:
			grace = nil
			hardCancel()
		case f := <-done:
			delete(inflight, f.id)
			if perSender[f.sender]--; perSender[f.sender] <= 0 {
				delete(perSender, f.sender)
			}
		case <-w.wake:
		case <-poll.C:
			poll.Reset(w.cfg.PollInterval)
		}
	}
	w.releaseAll()
	return nil
}

// lease marks up to limit due rows as sending for this worker and returns
// them. Rows of senders at their concurrency limit or with an open breaker
// are left alone, as are rows this worker is delivering already.
func (w *Worker) lease(ctx context.Context, limit int, inflight map[int64]syntax.DID, perSender map[syntax.DID]int) ([]row, error) {
	defer w.cycles.Add(1)
	now := w.now()
	// room[s]: how many more rows sender s may have in flight; senders
	// with no room (at their limit, or held by a breaker or rate limit)
	// are excluded in SQL, so the rows scanned are mostly leaseable.
	room := map[syntax.DID]int{}
	full := []string{} // never "null": NOT IN (NULL) would exclude every row
	for s, n := range perSender {
		if room[s] = w.cfg.SenderConcurrency - n; room[s] <= 0 {
			full = append(full, s.String())
		}
	}
	w.mu.Lock()
	for s, b := range w.breakers {
		if b.until.After(now) {
			room[s] = 0
			full = append(full, s.String())
		}
	}
	w.mu.Unlock()
	ids := make([]int64, 0, len(inflight))
	for id := range inflight {
		ids = append(ids, id)
	}
	fullJSON, _ := json.Marshal(full)
	idsJSON, _ := json.Marshal(ids)
	until := now.Add(w.cfg.LeaseDuration).UnixMilli()

	// First reads (no write lock in WAL mode, so idle polls never block
	// writers), each walking the due index (state, next_attempt_at) in
	// order for a bounded number of rows: expired leases of dead workers
	// first, then queued rows. Then one UPDATE … RETURNING on the chosen
	// ids, which re-checks that each is still due, in case another worker
	// took it meanwhile.
	scan := limit*4 + 16
	var candidates []int64
	for _, state := range []State{StateSending, StateQueued} {
		if len(candidates) >= limit {
			break
		}
		rows, err := w.db.QueryContext(ctx, `
			SELECT id, sender_did FROM outbox
			WHERE state = ?1 AND next_attempt_at <= ?2
				AND sender_did NOT IN (SELECT value FROM json_each(?3))
				AND id NOT IN (SELECT value FROM json_each(?4))
			ORDER BY next_attempt_at, id
			LIMIT ?5`,
			string(state), now.UnixMilli(), string(fullJSON), string(idsJSON), scan)
		if err != nil {
			return nil, fmt.Errorf("notify: lease: %w", err)
		}
		for rows.Next() && len(candidates) < limit {
			var (
				id     int64
				sender string
			)
			if err := rows.Scan(&id, &sender); err != nil {
				rows.Close()
				return nil, fmt.Errorf("notify: lease: %w", err)
			}
			r, ok := room[syntax.DID(sender)]
			if !ok {
				r = w.cfg.SenderConcurrency
			}
			if r <= 0 {
				continue
			}
			room[syntax.DID(sender)] = r - 1
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
	w.wmu.Lock()
	defer w.wmu.Unlock()
	rows, err := w.db.QueryContext(ctx, `
		UPDATE outbox
		SET state = 'sending', lease_owner = ?1, lease_until = ?2, next_attempt_at = ?2,
			attempts = attempts + 1, updated_at = ?3
		WHERE id IN (SELECT value FROM json_each(?4))
			AND state IN ('queued', 'sending') AND next_attempt_at <= ?3
		RETURNING id, subject_uri, recipient_did, sender_did, requester_did, text, link_url,
			link_start, link_end, marker, attempts, convo_id, send_started_at, queued_at`,
		w.owner, until, now.UnixMilli(), string(candJSON))
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

// result is how one attempt ended.
type result struct {
	sent      bool
	messageID string
	convoID   string
	fail      *failure
	canceled  bool // the worker is stopping, or the attempt ran out of lease
	lost      bool // the lease was taken by another worker: write nothing
	crashed   bool // test hook: behave as if the process died
}

// deliver runs one attempt for r and records its outcome. It never holds
// a transaction across a network call: each write below is one short
// statement.
func (w *Worker) deliver(parent context.Context, r row) {
	// The attempt must end before the lease does, or another worker could
	// lease the row while this one is still sending.
	ctx, cancel := context.WithTimeout(parent, w.cfg.LeaseDuration*9/10)
	defer cancel()
	res := w.attempt(ctx, r)
	if res.fail != nil && ctx.Err() != nil {
		res = result{canceled: true}
	}
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(parent), 10*time.Second)
	defer wcancel()
	log := w.log.With("outbox_id", r.id, "sender", r.sender, "recipient", r.recipient, "attempt", r.attempts)
	switch {
	case res.crashed, res.lost:
		if res.lost {
			log.Warn("lease lost; leaving the row to its new holder")
		}
	case res.sent:
		if err := w.markSent(wctx, r, res.messageID, res.convoID); err != nil {
			log.Error("marking sent failed; the marker check will catch it on the next lease", "err", err)
			return
		}
		log.Info("dm sent", "message_id", res.messageID)
		w.senderSucceeded(wctx, r.sender)
	case res.canceled:
		if err := w.release(wctx, r.id); err != nil {
			log.Error("releasing lease failed", "err", err)
		}
	default:
		w.recordFailure(wctx, log, r, *res.fail)
	}
}

// exec runs one write statement under wmu.
func (w *Worker) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return w.db.ExecContext(ctx, query, args...)
}

func (w *Worker) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, w.cfg.CallTimeout)
}

func failed(err error) result {
	f := classify(err)
	return result{fail: &f}
}

// attempt makes the chat calls for one delivery.
func (w *Worker) attempt(ctx context.Context, r row) result {
	cctx, cancel := w.callCtx(ctx)
	c, err := w.cfg.Sender.Chat(cctx, r.sender)
	cancel()
	if err != nil {
		return failed(err)
	}
	// A previous attempt may have sent the DM (a crash, a lost response, a
	// timeout): look for this delivery's marker before sending again.
	if !r.sendStartedAt.IsZero() && r.convoID != "" {
		id, found, err := w.findMarker(ctx, c, r)
		switch {
		case err != nil && apperr.ReasonOf(err) != chatproxy.ReasonConvoNotFound:
			return failed(err)
		case found:
			return result{sent: true, messageID: id, convoID: r.convoID}
		}
	}
	convoID, res := w.convoFor(ctx, c, r)
	if res != nil {
		return *res
	}
	ok, err := w.markSendStarted(ctx, r.id, convoID)
	if err != nil {
		if ctx.Err() != nil {
			return result{canceled: true}
		}
		// Without the record that a send may have happened, do not send.
		w.log.Error("recording send start failed", "outbox_id", r.id, "err", err)
		return failed(apperr.Wrap(err, apperr.Unavailable, "database busy"))
	}
	if !ok {
		return result{lost: true}
	}
	cctx, cancel = w.callCtx(ctx)
	msg, err := c.SendMessage(cctx, convoID, chatproxy.MessageInput{Text: r.msg.Text, Facets: r.msg.Facets()})
	cancel()
	if w.afterSend != nil && w.afterSend(r.id) {
		w.crashed.Store(true)
		return result{crashed: true}
	}
	if err != nil {
		return failed(err)
	}
	if msg == nil || msg.Id == "" {
		return failed(apperr.New(apperr.Unavailable, "sendMessage returned no message id"))
	}
	return result{sent: true, messageID: msg.Id, convoID: convoID}
}

// convoFor checks that the sender may message the recipient and returns
// the convo id: getConvoAvailability, then getConvoForMembers when the
// availability answer carries no convo.
func (w *Worker) convoFor(ctx context.Context, c Chat, r row) (string, *result) {
	members := []string{r.recipient.String()}
	cctx, cancel := w.callCtx(ctx)
	avail, err := c.GetConvoAvailability(cctx, members)
	cancel()
	switch {
	case err != nil && apperr.ReasonOf(err) == chatproxy.ReasonNotImplemented:
		avail = nil // a chat service without the method: getConvoForMembers decides
	case err != nil:
		res := failed(err)
		return "", &res
	}
	if avail != nil && avail.CanChat && avail.Convo != nil && avail.Convo.Id != "" {
		return avail.Convo.Id, nil
	}
	cctx, cancel = w.callCtx(ctx)
	out, err := c.GetConvoForMembers(cctx, members)
	cancel()
	if err != nil {
		res := failed(err)
		return "", &res
	}
	if avail != nil && !avail.CanChat {
		// getConvoForMembers usually names the refusal; when it does not,
		// the availability answer still stands.
		return "", &result{fail: &failure{kind: permanent, code: ReasonCannotChat}}
	}
	if out == nil || out.Id == "" {
		res := failed(apperr.New(apperr.Unavailable, "getConvoForMembers returned no convo"))
		return "", &res
	}
	return out.Id, nil
}

// findMarker looks through the convo's messages, newest first, for one
// from the sender carrying this delivery's marker. It goes back to the
// delivery's first send (messages are newest first: once a page reaches
// messages sent before it, less MarkerClockSkew, no older page can hold
// the DM), however many messages came after it, up to MarkerPages pages.
func (w *Worker) findMarker(ctx context.Context, c Chat, r row) (id string, found bool, err error) {
	floor := r.sendStartedAt.Add(-w.cfg.MarkerClockSkew)
	cursor := ""
	for page := 0; page < w.cfg.MarkerPages; page++ {
		cctx, cancel := w.callCtx(ctx)
		out, err := c.GetMessages(cctx, r.convoID, cursor, 100)
		cancel()
		if err != nil {
			return "", false, err
		}
		if out == nil {
			return "", false, nil
		}
		older := false
		for _, m := range out.Messages {
			if m.Message != nil && m.SenderDID() == r.sender.String() && strings.Contains(m.Message.Text, r.msg.Marker) {
				return m.Message.Id, true, nil
			}
			if at, err := time.Parse(time.RFC3339Nano, m.SentAt); err == nil && at.Before(floor) {
				older = true
			}
		}
		if older || out.Cursor == "" || len(out.Messages) == 0 {
			return "", false, nil
		}
		cursor = out.Cursor
	}
	return "", false, nil
}

// markSendStarted records, just before sendMessage, that the DM may exist
// from now on, and extends the lease. It reports false when this worker no
// longer holds the row (or its lease ran out).
func (w *Worker) markSendStarted(ctx context.Context, id int64, convoID string) (bool, error) {
	now := w.now()
	until := now.Add(w.cfg.LeaseDuration).UnixMilli()
	res, err := w.exec(ctx, `
		UPDATE outbox SET convo_id = ?, send_started_at = coalesce(send_started_at, ?),
			lease_until = ?, next_attempt_at = ?, updated_at = ?
		WHERE id = ? AND lease_owner = ? AND state = 'sending' AND lease_until > ?`,
		convoID, now.UnixMilli(), until, until, now.UnixMilli(), id, w.owner, now.UnixMilli())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// markSent records the delivery. It does not insist on the lease: once
// the DM exists, "sent" is the truth whoever holds the row.
func (w *Worker) markSent(ctx context.Context, r row, messageID, convoID string) error {
	now := w.now().UnixMilli()
	_, err := w.exec(ctx, `
		UPDATE outbox SET state = 'sent', sent_message_id = ?, convo_id = ?, sent_at = ?,
			lease_owner = NULL, lease_until = NULL, reason_code = '', last_error_reason = '', fix = '',
			updated_at = ?
		WHERE id = ? AND state <> 'sent'`,
		messageID, convoID, now, now, r.id)
	return err
}

// release puts a row this worker holds back in the queue, due now.
func (w *Worker) release(ctx context.Context, id int64) error {
	now := w.now().UnixMilli()
	_, err := w.exec(ctx, `
		UPDATE outbox SET state = 'queued', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL,
			updated_at = ?
		WHERE id = ? AND lease_owner = ? AND state = 'sending'`, now, now, id, w.owner)
	return err
}

// releaseAll releases every lease this worker still holds (after Run).
func (w *Worker) releaseAll() {
	if w.crashed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := w.now().UnixMilli()
	if _, err := w.exec(ctx, `
		UPDATE outbox SET state = 'queued', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL,
			updated_at = ?
		WHERE lease_owner = ? AND state = 'sending'`, now, now, w.owner); err != nil {
		w.log.Error("releasing leases at shutdown failed", "err", err)
	}
}

// recordFailure writes the outcome of a failed attempt.
func (w *Worker) recordFailure(ctx context.Context, log *slog.Logger, r row, f failure) {
	now := w.now()
	n := w.names(ctx, r)
	switch f.kind {
	case permanent, authFail:
		state := StateNotDelivered
		if f.kind == authFail {
			state = StateParkedAuth
		}
		reason, fix := explain(f, n, w.cfg.MaxAge)
		if err := w.finish(ctx, r.id, state, now, f.code, reason, fix); err != nil {
			log.Error("recording failure failed", "err", err)
			return
		}
		log.Info("dm not delivered", "state", state, "reason", f.code, "err", f.err)
		return
	}

	if f.code == chatproxy.ReasonRateLimited && f.retryAt.IsZero() {
		f.retryAt = now.Add(w.cfg.RateLimitWait)
	}
	opened, holdUntil := w.noteTransient(r.sender, now, f)
	deadline := r.queuedAt.Add(w.cfg.MaxAge)
	if !now.Before(deadline) {
		reason, fix := explain(failure{kind: permanent, code: ReasonGivenUp}, n, w.cfg.MaxAge)
		if err := w.finish(ctx, r.id, StateGivenUp, now, f.code, reason, fix); err != nil {
			log.Error("recording give-up failed", "err", err)
			return
		}
		log.Warn("dm given up", "reason", f.code, "err", f.err)
		return
	}
	next := now.Add(w.cfg.Jitter(w.backoff(r.attempts)))
	if !f.retryAt.IsZero() {
		ra := f.retryAt
		if limit := now.Add(w.cfg.MaxRetryAfter); ra.After(limit) {
			ra = limit
		}
		if ra.After(next) {
			next = ra
		}
	}
	if holdUntil.After(next) {
		next = holdUntil
	}
	if next.After(deadline) {
		next = deadline
	}
	reason, _ := explain(f, n, w.cfg.MaxAge)
	nowMs := now.UnixMilli()
	if _, err := w.exec(ctx, `
		UPDATE outbox SET state = 'queued', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL,
			reason_code = ?, last_error_reason = ?, fix = '', updated_at = ?
		WHERE id = ? AND lease_owner = ? AND state = 'sending'`,
		next.UnixMilli(), f.code, reason, nowMs, r.id, w.owner); err != nil {
		log.Error("recording retry failed", "err", err)
		return
	}
	if !holdUntil.IsZero() {
		// Hold the sender's other queued rows too, so that an open breaker
		// or a rate limit is honoured by every worker process.
		if _, err := w.exec(ctx, `
			UPDATE outbox SET next_attempt_at = ?, updated_at = ?
			WHERE sender_did = ? AND state = 'queued' AND next_attempt_at < ?`,
			holdUntil.UnixMilli(), nowMs, r.sender.String(), holdUntil.UnixMilli()); err != nil {
			log.Error("holding sender's rows failed", "err", err)
		}
	}
	log.Info("dm attempt failed; will retry", "reason", f.code, "next_attempt_at", next, "breaker_opened", opened, "err", f.err)
}

// finish moves a leased row to a final or parked state.
func (w *Worker) finish(ctx context.Context, id int64, state State, now time.Time, code, reason, fix string) error {
	_, err := w.exec(ctx, `
		UPDATE outbox SET state = ?, lease_owner = NULL, lease_until = NULL, reason_code = ?,
			last_error_reason = ?, fix = ?, next_attempt_at = ?, updated_at = ?
		WHERE id = ? AND lease_owner = ? AND state = 'sending'`,
		string(state), code, reason, fix, now.UnixMilli(), now.UnixMilli(), id, w.owner)
	return err
}

// backoff is the upper bound of the full-jitter delay after the given
// number of attempts: BaseBackoff·2^(attempts-1), at most MaxBackoff.
func (w *Worker) backoff(attempts int) time.Duration {
	d := w.cfg.BaseBackoff
	for i := 1; i < attempts && d < w.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, w.cfg.MaxBackoff)
}

// noteTransient counts a transient failure against the sender's breaker.
// It returns whether the breaker (re)opened and until when the sender's
// rows are held (breaker cool-down or a rate limit), or zero.
func (w *Worker) noteTransient(sender syntax.DID, now time.Time, f failure) (opened bool, holdUntil time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.breakers[sender]
	if b == nil {
		b = &breaker{}
		w.breakers[sender] = b
	}
	b.fails++
	if b.fails >= w.cfg.BreakerThreshold {
		opened = true
		b.until = now.Add(w.cfg.BreakerCooldown)
	}
	if f.code == chatproxy.ReasonRateLimited && !f.retryAt.IsZero() {
		ra := f.retryAt
		if limit := now.Add(w.cfg.MaxRetryAfter); ra.After(limit) {
			ra = limit
		}
		if ra.After(b.until) {
			b.until = ra
		}
	}
	if b.until.After(now) {
		holdUntil = b.until
	}
	return opened, holdUntil
}

// senderSucceeded closes the sender's breaker and resumes rows parked for
// its sign-in: a successful send proves the session works again.
func (w *Worker) senderSucceeded(ctx context.Context, sender syntax.DID) {
	w.mu.Lock()
	delete(w.breakers, sender)
	w.mu.Unlock()
	if n, err := w.resume(ctx, sender); err != nil {
		w.log.Error("resuming parked rows failed", "sender", sender, "err", err)
	} else if n > 0 {
		w.Wake()
	}
}

// names resolves the handles used in human reasons. Lookups are bounded;
// failures fall back to generic labels.
func (w *Worker) names(ctx context.Context, r row) names {
	n := names{
		recipient:     "the project's owner",
		sender:        "the requester",
		senderIsFiler: r.sender == r.requester,
	}
	if !n.senderIsFiler {
		n.sender = "the notifier account"
	}
	if h := w.handle(ctx, r.recipient); h != "" {
		n.recipient = h
	}
	if h := w.handle(ctx, r.sender); h != "" {
		n.sender = h
	}
	return n
}

func (w *Worker) handle(ctx context.Context, did syntax.DID) string {
	if w.cfg.Directory == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ident, err := w.cfg.Directory.LookupDID(ctx, did)
	if err != nil || ident == nil || ident.Handle == "" || ident.Handle.IsInvalidHandle() {
		return ""
	}
	return ident.Handle.String()
}

// Resume requeues, due now, every row parked because senderDID's session
// had expired or lacked the chat scope. The login handler calls it after a
// successful sign-in (with the new session in place). It returns the
// database error, if any.
func (w *Worker) Resume(ctx context.Context, senderDID syntax.DID) error {
	w.mu.Lock()
	delete(w.breakers, senderDID)
	w.mu.Unlock()
	n, err := w.resume(ctx, senderDID)
	if err != nil {
		return fmt.Errorf("notify: resume %s: %w", senderDID, err)
	}
	if n > 0 {
		w.Wake()
	}
	return nil
}

func (w *Worker) resume(ctx context.Context, sender syntax.DID) (int64, error) {
	now := w.now().UnixMilli()
	res, err := w.exec(ctx, `
		UPDATE outbox SET state = 'queued', next_attempt_at = ?, queued_at = ?, reason_code = '',
			last_error_reason = '', fix = '', updated_at = ?
		WHERE sender_did = ? AND state = 'parked_auth'`, now, now, now, sender.String())
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// recheckParked requeues the oldest parked row of each sender that has
// been parked for ParkedRecheck: if the sender signed in meanwhile, it is
// sent and the sender's other parked rows follow (senderSucceeded).
func (w *Worker) recheckParked(ctx context.Context) error {
	now := w.now()
	cut := now.Add(-w.cfg.ParkedRecheck).UnixMilli()
	res, err := w.exec(ctx, `
		UPDATE outbox SET state = 'queued', next_attempt_at = ?, updated_at = ?
		WHERE id IN (SELECT min(id) FROM outbox WHERE state = 'parked_auth' AND updated_at <= ? GROUP BY sender_did)`,
		now.UnixMilli(), now.UnixMilli(), cut)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
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
	res, err := w.exec(ctx, `
		UPDATE outbox SET state = 'queued', next_attempt_at = ?, queued_at = ?, reason_code = '',
			last_error_reason = '', fix = '', updated_at = ?, retried_at = ?
		WHERE id = ? AND state IN ('not_delivered', 'given_up', 'parked_auth')
			AND (requester_did = ? OR recipient_did = ?) AND retried_at <= ?`,
		now.UnixMilli(), now.UnixMilli(), now.UnixMilli(), now.UnixMilli(),
		outboxID, byDID.String(), byDID.String(), now.Add(-RetryCooldown).UnixMilli())
	if err != nil {
		return fmt.Errorf("notify: retry %d: %w", outboxID, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		// The sender's circuit breaker and any rate-limit hold stay: a
		// retry is due now, but never earlier than the sender may send.
		w.Wake()
		return nil
	}
	st, err := StatusByID(ctx, w.db, outboxID)
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
