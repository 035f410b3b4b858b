package live

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/apperr"
)

// sseEvent is one parsed SSE block; Comment is set for comment-only blocks.
type sseEvent struct {
	ID, Name, Data string
	HasID          bool
	Comment        bool
}

// sseClient reads a text/event-stream response in the background.
type sseClient struct {
	resp   *http.Response
	events chan sseEvent
}

// userFromHeader identifies the test user from the X-Test-DID header.
func userFromHeader(r *http.Request) (User, bool) {
	did := r.Header.Get("X-Test-DID")
	if did == "" {
		return User{}, false
	}
	return User{DID: syntax.DID(did), SessionID: "s-" + did}, true
}

// startSSE returns a real-clock hub over src behind an httptest server.
func startSSE(t *testing.T, src LogSource, cfg Config, render Renderer) (*Hub, *httptest.Server) {
	t.Helper()
	cfg.Source = src
	if cfg.ConvoInterval == 0 {
		cfg.ConvoInterval = 10 * time.Millisecond
	}
	if cfg.InboxInterval == 0 {
		cfg.InboxInterval = 10 * time.Millisecond
	}
	h := New(cfg)
	runHub(t, h)
	srv := httptest.NewServer(h.Handler(userFromHeader, render))
	t.Cleanup(srv.Close)
	return h, srv
}

func connect(t *testing.T, srv *httptest.Server, did syntax.DID, query, lastID string) *sseClient {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Test-DID", string(did))
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	resp, err := srv.Client().Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c := &sseClient{resp: resp, events: make(chan sseEvent, 1024)}
	go c.read()
	return c
}

func (c *sseClient) read() {
	defer close(c.events)
	sc := bufio.NewScanner(c.resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var ev sseEvent
	var data []string
	any := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if any {
				ev.Data = strings.Join(data, "\n")
				c.events <- ev
			}
			ev, data, any = sseEvent{}, nil, false
			continue
		}
		any = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			ev.Comment = true
		case "id":
			ev.ID, ev.HasID = value, true
		case "event":
			ev.Name = value
		case "data":
			data = append(data, value)
		}
	}
}

// next returns the next non-comment event, skipping retry-only blocks and
// "position" events.
func (c *sseClient) next(t *testing.T) sseEvent {
	t.Helper()
	for {
		if ev := c.nextAny(t); ev.Name != "position" {
			return ev
		}
	}
}

// nextAny returns the next non-comment event (skipping retry-only blocks).
func (c *sseClient) nextAny(t *testing.T) sseEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.Comment && ev.Name == "" && ev.Data == "" && !ev.HasID {
				continue
			}
			if !ev.HasID && ev.Name == "" && ev.Data == "" {
				continue // the retry: preamble
			}
			return ev
		case <-timeout:
			t.Fatal("timed out waiting for an event")
		}
	}
}

func TestSSEEventsCarryRevAsID(t *testing.T) {
	src := newFakeSource()
	h, srv := startSSE(t, src, Config{}, nil)
	c := connect(t, srv, alice, "?convo=c1", "")
	if ct := c.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	if cc := c.resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q", cc)
	}
	waitFor(t, "first poll", func() bool { return src.callCount(alice) >= 1 })
	rev := src.message(alice, "c1", "hello <b>bob</b>")
	ev := c.next(t)
	if ev.ID != rev || ev.Name != "message" {
		t.Fatalf("got id %q event %q, want id %q event message", ev.ID, ev.Name, rev)
	}
	var data struct {
		Kind    string
		Rev     string
		ConvoID string `json:"convoId"`
		Log     struct {
			Type    string `json:"$type"`
			Message struct{ Text string }
		}
	}
	if err := json.Unmarshal([]byte(ev.Data), &data); err != nil {
		t.Fatalf("data %q: %v", ev.Data, err)
	}
	if data.Kind != "message" || data.Rev != rev || data.ConvoID != "c1" ||
		data.Log.Type != "chat.bsky.convo.defs#logCreateMessage" || data.Log.Message.Text != "hello <b>bob</b>" {
		t.Fatalf("data %+v", data)
	}
	if st := h.Stats(); st.Subscribers != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSSEReconnectReplaysOnlyNewerEvents(t *testing.T) {
	src := newFakeSource()
	_, srv := startSSE(t, src, Config{Buffer: 4}, nil)
	first := connect(t, srv, alice, "", "")
	waitFor(t, "first poll", func() bool { return src.callCount(alice) >= 1 })
	var r []string
	for i := range 6 {
		r = append(r, src.message(alice, "c1", "x"))
		if ev := first.next(t); ev.ID != r[i] {
			t.Fatalf("event %d id %q, want %q", i, ev.ID, r[i])
		}
	}

	// The buffer holds r[2..5]. A reconnect after r[3] gets r[4] and r[5].
	again := connect(t, srv, alice, "", r[3])
	var got []string
	for range 2 {
		got = append(got, again.next(t).ID)
	}
	if !slices.Equal(got, r[4:]) {
		t.Fatalf("replayed %v, want %v", got, r[4:])
	}
	more := src.message(alice, "c1", "y")
	if ev := again.next(t); ev.ID != more {
		t.Fatalf("after replay got %q, want live %q", ev.ID, more)
	}

	// A reconnect from before the buffer is told to reload.
	stale := connect(t, srv, alice, "", r[0])
	ev := stale.next(t)
	if ev.Name != "resync" || ev.HasID {
		t.Fatalf("stale reconnect got event %q id %q, want resync without id", ev.Name, ev.ID)
	}
}

func TestSSEFilteredEventsStillAdvanceTheID(t *testing.T) {
	src := newFakeSource()
	_, srv := startSSE(t, src, Config{}, JSONRenderer{OnlyPageConvo: true})
	c := connect(t, srv, alice, "?convo=c1", "")
	waitFor(t, "first poll", func() bool { return src.callCount(alice) >= 1 })
	other := src.message(alice, "c2", "elsewhere")
	ev := c.next(t)
	if ev.ID != other || ev.Name != "" || ev.Data != "" {
		t.Fatalf("filtered event sent as %+v, want a bare id %q", ev, other)
	}
	mine := src.message(alice, "c1", "here")
	if ev := c.next(t); ev.ID != mine || ev.Name != "message" {
		t.Fatalf("got %+v", ev)
	}
}

func TestSSERendererOutputIsFramedSafely(t *testing.T) {
	src := newFakeSource()
	render := RendererFunc(func(_ context.Context, _ User, ev Event, _ PageInfo) (string, []byte, bool) {
		if ev.Message != nil && ev.Message.Text == "bad name" {
			return "message\nevent: evil", []byte("x"), true
		}
		return "message", []byte("line1\nline2\r\ndata: injected\rline4"), true
	})
	_, srv := startSSE(t, src, Config{}, render)
	c := connect(t, srv, alice, "", "")
	waitFor(t, "first poll", func() bool { return src.callCount(alice) >= 1 })
	bad := src.message(alice, "c1", "bad name")
	ev := c.next(t)
	if ev.ID != bad || ev.Name != "" || ev.Data != "" {
		t.Fatalf("bad event name not dropped: %+v", ev)
	}
	good := src.message(alice, "c1", "ok")
	ev = c.next(t)
	if ev.ID != good || ev.Data != "line1\nline2\ndata: injected\nline4" {
		t.Fatalf("multi-line data framed as %+v", ev)
	}
}

func TestSSEHeartbeat(t *testing.T) {
	src := newFakeSource()
	_, srv := startSSE(t, src, Config{Heartbeat: 20 * time.Millisecond}, nil)
	c := connect(t, srv, alice, "", "")
	timeout := time.After(10 * time.Second)
	for beats := 0; beats < 2; {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.Comment && !ev.HasID && ev.Name == "" {
				beats++
			}
		case <-timeout:
			t.Fatal("no heartbeat")
		}
	}
}

func TestSSERejectsBadRequests(t *testing.T) {
	src := newFakeSource()
	h, srv := startSSE(t, src, Config{}, nil)
	tests := []struct {
		name   string
		method string
		did    string
		query  string
		want   int
	}{
		{"POST is not allowed", http.MethodPost, string(alice), "", http.StatusMethodNotAllowed},
		{"signed out is unauthorized", http.MethodGet, "", "", http.StatusUnauthorized},
		{"malformed convo id is bad request", http.MethodGet, string(alice), "?convo=%0Aevil", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+"/events"+tt.query, nil)
			if tt.did != "" {
				req.Header.Set("X-Test-DID", tt.did)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	if st := h.Stats(); st.Users != 0 || st.PollersStarted != 0 {
		t.Fatalf("rejected requests left state: %+v", st)
	}
}

func TestSSEAuthEventOnExpiredSession(t *testing.T) {
	src := newFakeSource()
	src.setAlways(alice, &apperr.Error{Code: apperr.Unauthorized, Reason: "SessionExpired", Message: "Your session has expired. Please sign in again."})
	h, srv := startSSE(t, src, Config{}, nil)
	c := connect(t, srv, alice, "", "")
	ev := c.next(t)
	if ev.Name != "auth" || ev.HasID {
		t.Fatalf("got %+v, want auth without id", ev)
	}
	var data struct{ Reason, Message string }
	if err := json.Unmarshal([]byte(ev.Data), &data); err != nil || data.Reason != "SessionExpired" || data.Message == "" {
		t.Fatalf("auth data %q (%v)", ev.Data, err)
	}
	waitFor(t, "poller stopped", func() bool { return h.Stats().Pollers == 0 })
	if n := src.callCount(alice); n != 1 {
		t.Fatalf("calls %d, want 1", n)
	}
}

func TestSSEShutdownEndsStreams(t *testing.T) {
	src := newFakeSource()
	h := New(Config{Source: src, ConvoInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	srv := httptest.NewServer(h.Handler(userFromHeader, nil))
	defer srv.Close()
	c := connect(t, srv, alice, "?convo=c1", "")
	waitFor(t, "first poll", func() bool { return src.callCount(alice) >= 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-c.events:
			if !ok {
				// Stream ended; new connections are refused.
				req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
				req.Header.Set("X-Test-DID", string(alice))
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("after shutdown: status %d", resp.StatusCode)
				}
				return
			}
		case <-timeout:
			t.Fatal("stream still open after shutdown")
		}
	}
}

// bigMessage returns a log entry whose message text is n bytes.
func bigMessage(n int) func(rev string) *chat.ConvoGetLog_Output_Logs_Elem {
	text := strings.Repeat("x", n)
	return func(rev string) *chat.ConvoGetLog_Output_Logs_Elem { return logMessage(rev, "c1", text) }
}

func TestSSESlowConsumerDoesNotBlockOthers(t *testing.T) {
	src := newFakeSource()
	h, srv := startSSE(t, src, Config{Buffer: 512, WriteTimeout: 300 * time.Millisecond}, nil)

	// The slow page: a raw connection that never reads after the headers.
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	io.WriteString(conn, "GET /events HTTP/1.1\r\nHost: x\r\nX-Test-DID: "+string(alice)+"\r\n\r\n")
	fast := connect(t, srv, alice, "", "")
	waitFor(t, "both subscribed and polled", func() bool {
		return h.Stats().Subscribers == 2 && src.callCount(alice) >= 1
	})

	const n, size = 80, 100 << 10 // 8 MB: more than the socket buffers hold
	var want []string
	for range n {
		want = append(want, src.add(alice, bigMessage(size)))
	}
	for i := range n {
		if ev := fast.next(t); ev.ID != want[i] {
			t.Fatalf("fast page event %d id %q, want %q", i, ev.ID, want[i])
		}
	}
	waitFor(t, "the stuck page cut off by the write deadline", func() bool { return h.Stats().Subscribers == 1 })
	polls := src.callCount(alice)
	waitFor(t, "the poller still polling", func() bool { return src.callCount(alice) > polls+3 })
}
