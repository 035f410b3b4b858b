package notify

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/budget"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/metrics"
)

// The loop that leases and delivers: Run leases due rows from the store,
// deliver makes one attempt's chat calls, and recordFailure writes what the
// retry policy decides.

// Wake tells a running worker that rows may be due now (after an enqueue).
// It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
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
	ctx = budget.Background(ctx) // deliveries leave the upstream budget's reserve to pages

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
	q := leaseQuery{
		now: now, until: now.Add(w.cfg.LeaseDuration), limit: limit,
		room: map[syntax.DID]int{}, perSender: w.cfg.SenderConcurrency, full: []string{},
		busy: make([]int64, 0, len(inflight)),
	}
	for s, n := range perSender {
		if q.room[s] = w.cfg.SenderConcurrency - n; q.room[s] <= 0 {
			q.full = append(q.full, s.String())
		}
	}
	for _, s := range w.breakers.held(now) {
		q.room[s] = 0
		q.full = append(q.full, s.String())
	}
	for id := range inflight {
		q.busy = append(q.busy, id)
	}
	return w.store.lease(ctx, q)
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
		if err := w.store.markSent(wctx, r.id, res.messageID, res.convoID, w.now()); err != nil {
			log.Error("marking sent failed; the marker check will catch it on the next lease", "err", err)
			return
		}
		latency := w.now().Sub(r.queuedAt)
		w.cfg.OnDelivered(latency)
		log.Info("dm sent", "message_id", res.messageID, metrics.AttrDeliverySeconds, latency.Seconds())
		w.senderSucceeded(wctx, r.sender)
	case res.canceled:
		if err := w.store.release(wctx, r.id, w.now()); err != nil {
			log.Error("releasing lease failed", "err", err)
		}
	default:
		w.recordFailure(wctx, log, r, *res.fail)
	}
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
	now := w.now()
	ok, err := w.store.markSendStarted(ctx, r.id, convoID, now, now.Add(w.cfg.LeaseDuration))
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

// recordFailure writes what the retry policy decides after a failed
// attempt.
func (w *Worker) recordFailure(ctx context.Context, log *slog.Logger, r row, f failure) {
	now := w.now()
	var d decision
	w.breakers.update(r.sender, func(b breaker) breaker {
		d = w.policy.decide(f, history{attempts: r.attempts, queuedAt: r.queuedAt, breaker: b}, now)
		return d.breaker
	})
	reason, fix := explain(d.explain, w.names(ctx, r), w.cfg.MaxAge)
	switch d.action {
	case actRefuse, actPark:
		if err := w.store.finish(ctx, r.id, d.action.state(), now, f.code, reason, fix); err != nil {
			log.Error("recording failure failed", "err", err)
			return
		}
		log.Info("dm not delivered", "state", d.action.state(), "reason", f.code, "err", f.err)
		return
	case actGiveUp:
		if err := w.store.finish(ctx, r.id, StateGivenUp, now, f.code, reason, fix); err != nil {
			log.Error("recording give-up failed", "err", err)
			return
		}
		log.Warn("dm given up", "reason", f.code, "err", f.err)
		return
	}
	if err := w.store.requeue(ctx, r.id, d.next, f.code, reason, now); err != nil {
		log.Error("recording retry failed", "err", err)
		return
	}
	if !d.hold.IsZero() {
		if err := w.store.holdSender(ctx, r.sender, d.hold, now); err != nil {
			log.Error("holding sender's rows failed", "err", err)
		}
	}
	log.Info("dm attempt failed; will retry", "reason", f.code, "next_attempt_at", d.next, "breaker_opened", d.opened, "err", f.err)
}

// senderSucceeded closes the sender's breaker and resumes rows parked for
// its sign-in: a successful send proves the session works again.
func (w *Worker) senderSucceeded(ctx context.Context, sender syntax.DID) {
	w.breakers.reset(sender)
	if n, err := w.store.resume(ctx, sender, w.now()); err != nil {
		w.log.Error("resuming parked rows failed", "sender", sender, "err", err)
	} else if n > 0 {
		w.Wake()
	}
}

// recheckParked requeues the oldest parked row of each sender that has
// been parked for ParkedRecheck: if the sender signed in meanwhile, it is
// sent and the sender's other parked rows follow (senderSucceeded).
func (w *Worker) recheckParked(ctx context.Context) error {
	now := w.now()
	n, err := w.store.recheckParked(ctx, now, now.Add(-w.cfg.ParkedRecheck))
	if err != nil {
		return err
	}
	if n > 0 {
		w.Wake()
	}
	return nil
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

// releaseAll releases every lease this worker still holds (after Run).
func (w *Worker) releaseAll() {
	if w.crashed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.store.releaseAll(ctx, w.now()); err != nil {
		w.log.Error("releasing leases at shutdown failed", "err", err)
	}
}
