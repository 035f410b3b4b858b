package livepg_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/internal/live"
	"github.com/skydm/skydm/internal/livepg"
	"github.com/skydm/skydm/internal/pgtest"
	"github.com/skydm/skydm/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const alice = syntax.DID("did:plc:alice")

// chatLog is the chat service's log of one user, shared by every
// instance, with getLog's cursor semantics: without a cursor the whole
// history and its cursor, with one the entries after it. Every answer is
// made anew, as if decoded from the wire: answers are not shared.
type chatLog struct {
	mu    sync.Mutex
	texts []string
}

func revOf(i int) string { return fmt.Sprintf("3l%011d", i+1) }

func (l *chatLog) message(text string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.texts = append(l.texts, text)
	return revOf(len(l.texts) - 1)
}

func (l *chatLog) after(cursor string) *chat.ConvoGetLog_Output {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := &chat.ConvoGetLog_Output{Logs: []*chat.ConvoGetLog_Output_Logs_Elem{}}
	last := cursor
	for i, text := range l.texts {
		r := revOf(i)
		if cursor == "" || r > cursor {
			out.Logs = append(out.Logs, &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogCreateMessage: &chat.ConvoDefs_LogCreateMessage{
				ConvoId: "c1", Rev: r,
				Message: &chat.ConvoDefs_LogCreateMessage_Message{ConvoDefs_MessageView: &chat.ConvoDefs_MessageView{
					Id: "m" + r, Rev: r, Text: text, SentAt: "2026-01-01T00:00:00Z",
					Sender: &chat.ConvoDefs_MessageViewSender{Did: "did:plc:bob"},
				}},
			}})
		}
		last = max(last, r)
	}
	if last != "" {
		out.Cursor = &last
	}
	return out
}

// source is one instance's LogSource over the shared log: it counts its
// calls per user and records their cursors.
type source struct {
	log     *chatLog
	mu      sync.Mutex
	cursors map[syntax.DID][]string
}

func (s *source) GetLog(_ context.Context, user live.User, cursor string) (*chat.ConvoGetLog_Output, error) {
	s.mu.Lock()
	s.cursors[user.DID] = append(s.cursors[user.DID], cursor)
	s.mu.Unlock()
	return s.log.after(cursor), nil
}

func (s *source) calls(did syntax.DID) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cursors[did]...)
}

// instance is one app instance: a hub with a cluster on its own pool of
// the shared database, its source and its SSE endpoint.
type instance struct {
	db   *sql.DB
	hub  *live.Hub
	src  *source
	srv  *httptest.Server
	stop func() // stops the hub and waits for it
}

func newInstance(t *testing.T, dsn string, l *chatLog, opts livepg.Options) *instance {
	t.Helper()
	sdb := openDB(t, dsn)
	src := &source{log: l, cursors: map[syntax.DID][]string{}}
	opts.Tick = 100 * time.Millisecond
	h := live.New(live.Config{
		Source:        src,
		Cluster:       livepg.New(sdb, dsn, opts),
		ConvoInterval: 100 * time.Millisecond,
		InboxInterval: 100 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := h.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	srv := httptest.NewServer(h.Handler(func(*http.Request) (live.User, bool) {
		return live.User{DID: alice, SessionID: "s1"}, true
	}, nil))
	t.Cleanup(srv.Close)
	return &instance{db: sdb, hub: h, src: src, srv: srv, stop: stop}
}

// openBoth starts two instances on a new database with alice's page open
// on each, once both pages know their position: the holder (the instance
// that polls her) first.
func openBoth(t *testing.T, l *chatLog, opts livepg.Options) (holder, other *instance, ph, po *page) {
	t.Helper()
	dsn := pgtest.URL(t)
	a, b := newInstance(t, dsn, l, opts), newInstance(t, dsn, l, opts)
	pa, pb := a.open(t, ""), b.open(t, "")
	pa.next(t, "position")
	pb.next(t, "position")
	if len(a.src.calls(alice)) == 0 {
		return b, a, pb, pa
	}
	return a, b, pa, pb
}

type page struct {
	events <-chan testenv.SSEEvent
	cancel context.CancelFunc
}

func (in *instance) open(t *testing.T, lastID string) *page {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.srv.URL+"/?convo=c1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := in.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	p := &page{events: testenv.SSEEvents(resp.Body), cancel: cancel}
	return p
}

// next returns the page's next event named name (testenv.NextSSE).
func (p *page) next(t *testing.T, name string) testenv.SSEEvent {
	t.Helper()
	return testenv.NextSSE(t, p.events, name)
}

// openDB opens and migrates the database at dsn.
func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	sdb, err := db.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	if err := db.Migrate(context.Background(), sdb); err != nil {
		t.Fatal(err)
	}
	return sdb
}

// TestOneInstancePollsEachUserForAll: alice has a page open on each of two
// instances on one Postgres. Only one instance calls getLog for her; a
// new message reaches both pages with the same id; a page of the instance
// that does not poll resumes by Last-Event-ID; when the polling instance
// stops, the other takes over from the last published cursor and keeps
// delivering.
func TestOneInstancePollsEachUserForAll(t *testing.T) {
	l := &chatLog{}
	l.message("history")
	holder, other, ph, po := openBoth(t, l, livepg.Options{})

	rev := l.message("hello both")
	for _, p := range []*page{ph, po} {
		if ev := p.next(t, "message"); ev.ID != rev || !strings.Contains(ev.Data, "hello both") {
			t.Fatalf("event %+v, want message %s", ev, rev)
		}
	}
	if n := len(other.src.calls(alice)); n != 0 || len(holder.src.calls(alice)) == 0 {
		t.Fatalf("getLog calls: holder %d, other %d; want the holder's only", len(holder.src.calls(alice)), n)
	}

	// The other instance's page goes away and comes back with its last id.
	po.cancel()
	missed := l.message("while away")
	if ev := ph.next(t, "message"); ev.ID != missed {
		t.Fatalf("holder's page got %+v, want %s", ev, missed)
	}
	po = other.open(t, rev)
	if ev := po.next(t, "message"); ev.ID != missed {
		t.Fatalf("resumed page got %+v, want %s", ev, missed)
	}

	holder.stop()
	after := l.message("after the holder stopped")
	if ev := po.next(t, "message"); ev.ID != after || !strings.Contains(ev.Data, "after the holder stopped") {
		t.Fatalf("event %+v, want message %s", ev, after)
	}
	calls := other.src.calls(alice)
	if len(calls) == 0 || calls[0] != missed {
		t.Fatalf("the new holder's getLog cursors %q, want the first at the published cursor %s", calls, missed)
	}
}

// TestLeaseOutlivesALostHolderByTTL: the polling instance loses the
// database without giving its lease up (as when it dies). After the TTL
// the other instance takes the lease and delivers new messages, and the
// lost one stops calling getLog.
func TestLeaseOutlivesALostHolderByTTL(t *testing.T) {
	l := &chatLog{}
	l.message("history")
	holder, other, _, po := openBoth(t, l, livepg.Options{TTL: time.Second})
	holder.db.Close()
	t0 := time.Now()

	rev := l.message("after the holder was lost")
	if ev := po.next(t, "message"); ev.ID != rev {
		t.Fatalf("event %+v, want message %s", ev, rev)
	}
	t.Logf("the other instance delivered after %v", time.Since(t0).Round(10*time.Millisecond))
	// The lost holder steps down once its lease has expired: it makes no
	// call while the new holder makes its 10th to 20th.
	took := len(other.src.calls(alice))
	otherCalls := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(other.src.calls(alice)) < took+n {
			if time.Now().After(deadline) {
				t.Fatalf("the new holder made %d getLog calls in 10 s", len(other.src.calls(alice))-took)
			}
			time.Sleep(20 * time.Millisecond) // polling interval
		}
	}
	otherCalls(10)
	lost := len(holder.src.calls(alice))
	otherCalls(20)
	if n := len(holder.src.calls(alice)); n != lost {
		t.Fatalf("the lost holder made %d getLog calls while the new one made 10", n-lost)
	}
}
