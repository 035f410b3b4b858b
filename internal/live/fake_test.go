package live

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

const (
	alice = syntax.DID("did:plc:alice")
	bob   = syntax.DID("did:plc:bob")
	carol = syntax.DID("did:plc:carol")
)

// fakeSource is a LogSource over an in-memory log per DID with the
// lexicon's cursor semantics as the Bluesky service implements them: a
// call without a cursor returns the whole history and its cursor; a call
// with a cursor returns the entries after it.
type fakeSource struct {
	mu          sync.Mutex
	logs        map[syntax.DID][]*chat.ConvoGetLog_Output_Logs_Elem
	errs        map[syntax.DID][]error // returned in order before answering
	always      map[syntax.DID]error   // returned by every call while set
	calls       map[syntax.DID]int
	cursors     map[syntax.DID][]string
	sessions    map[syntax.DID][]string
	inflight    map[syntax.DID]int
	maxInflight int
	rev         int
}

func newFakeSource() *fakeSource {
	return &fakeSource{
		logs:     map[syntax.DID][]*chat.ConvoGetLog_Output_Logs_Elem{},
		errs:     map[syntax.DID][]error{},
		always:   map[syntax.DID]error{},
		calls:    map[syntax.DID]int{},
		cursors:  map[syntax.DID][]string{},
		sessions: map[syntax.DID][]string{},
		inflight: map[syntax.DID]int{},
	}
}

func (f *fakeSource) GetLog(ctx context.Context, user User, cursor string) (*chat.ConvoGetLog_Output, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	did := user.DID
	f.calls[did]++
	f.cursors[did] = append(f.cursors[did], cursor)
	f.sessions[did] = append(f.sessions[did], user.SessionID)
	f.inflight[did]++
	f.maxInflight = max(f.maxInflight, f.inflight[did])
	defer func() { f.inflight[did]-- }()
	if err := f.always[did]; err != nil {
		return nil, err
	}
	if q := f.errs[did]; len(q) > 0 {
		f.errs[did] = q[1:]
		return nil, q[0]
	}
	out := &chat.ConvoGetLog_Output{Logs: []*chat.ConvoGetLog_Output_Logs_Elem{}}
	last := cursor
	for _, e := range f.logs[did] {
		rev, _, _ := commonFields(unionMember(e))
		if cursor == "" || rev > cursor {
			out.Logs = append(out.Logs, e)
		}
		last = max(last, rev)
	}
	if last != "" {
		out.Cursor = &last
	}
	return out, nil
}

func (f *fakeSource) nextRev() string {
	f.rev++
	return fmt.Sprintf("3l%011d", f.rev)
}

// add appends an entry built by mk (given the new rev) to did's log and
// returns the rev.
func (f *fakeSource) add(did syntax.DID, mk func(rev string) *chat.ConvoGetLog_Output_Logs_Elem) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	rev := f.nextRev()
	f.logs[did] = append(f.logs[did], mk(rev))
	return rev
}

func (f *fakeSource) message(did syntax.DID, convo, text string) string {
	return f.add(did, func(rev string) *chat.ConvoGetLog_Output_Logs_Elem { return logMessage(rev, convo, text) })
}

func (f *fakeSource) failNext(did syntax.DID, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[did] = append(f.errs[did], errs...)
}

func (f *fakeSource) setAlways(did syntax.DID, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.always[did] = err
}

func (f *fakeSource) callCount(did syntax.DID) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[did]
}

func (f *fakeSource) cursorsOf(did syntax.DID) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cursors[did]...)
}

func (f *fakeSource) sessionsOf(did syntax.DID) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.sessions[did]...)
}

func logMessage(rev, convo, text string) *chat.ConvoGetLog_Output_Logs_Elem {
	return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogCreateMessage: &chat.ConvoDefs_LogCreateMessage{
		ConvoId: convo, Rev: rev,
		Message: &chat.ConvoDefs_LogCreateMessage_Message{ConvoDefs_MessageView: &chat.ConvoDefs_MessageView{
			Id: "m" + rev, Rev: rev, Text: text, SentAt: "2026-01-01T00:00:00Z",
			Sender: &chat.ConvoDefs_MessageViewSender{Did: string(bob)},
		}},
	}}
}

// fakeClock is a manual clock: timers fire only when Advance moves the
// time past them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at time.Time
	d  time.Duration
	c  chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) timer(d time.Duration) (<-chan time.Time, func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), d: d, c: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return t.c, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, o := range c.timers {
			if o == t {
				c.timers = append(c.timers[:i], c.timers[i+1:]...)
				return true
			}
		}
		return false
	}
}

// Advance moves the clock by d and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			t.c <- c.now
			continue
		}
		keep = append(keep, t)
	}
	clear(c.timers[len(keep):])
	c.timers = keep
}

// pending returns the requested durations of the live timers, sorted.
func (c *fakeClock) pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ds []time.Duration
	for _, t := range c.timers {
		ds = append(ds, t.d)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds
}

// waitFor polls cond until it holds or a 10 s deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// newTestHub returns a running hub over src with a fake clock; the hub is
// stopped (and Run's return checked) when the test ends.
func newTestHub(t *testing.T, src LogSource, cfg Config) (*Hub, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	cfg.Source = src
	cfg.Now = clk.Now
	h := New(cfg)
	h.newTimer = clk.timer
	h.jitter = func(ceil time.Duration) time.Duration { return ceil }
	runHub(t, h)
	return h, clk
}

// runHub runs h until the test ends and checks that Run returns.
func runHub(t testing.TB, h *Hub) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after its context was cancelled")
		}
	})
}

func mustSubscribe(t *testing.T, h *Hub, did syntax.DID, session string, convo bool, lastID string) *sub {
	t.Helper()
	return subscribeTab(t, h, did, session, convo, false, lastID)
}

// subscribeTab subscribes a page whose document is hidden or visible.
func subscribeTab(t *testing.T, h *Hub, did syntax.DID, session string, convo, hidden bool, lastID string) *sub {
	t.Helper()
	s, err := h.subscribe(User{DID: did, SessionID: session}, convo, hidden, lastID)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return s
}

// drain returns the events s has now, without waiting.
func drain(h *Hub, s *sub) ([]*Event, bool) {
	return h.next(s, nil)
}

func revs(evs []*Event) []string {
	var out []string
	for _, e := range evs {
		if e.Kind == KindResync || e.Kind == KindAuth {
			out = append(out, string(e.Kind))
			continue
		}
		out = append(out, e.Rev)
	}
	return out
}

func durationsEqual(a []time.Duration, b ...time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// waitNotify waits until s is notified.
func waitNotify(t *testing.T, s *sub) {
	t.Helper()
	select {
	case <-s.notify:
	case <-time.After(10 * time.Second):
		t.Fatal("subscription was not notified")
	}
}
