package live

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/lex/chat"
)

// connStates records the server's connection states.
type connStates struct {
	mu     sync.Mutex
	states map[http.ConnState]int
}

func (c *connStates) hook(_ net.Conn, s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.states[s]++
}

func (c *connStates) count(s http.ConnState) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.states[s]
}

// startStoppable runs h until stop, which returns what Run returned.
func startStoppable(h *Hub) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("Run did not return")
		}
	}
}

// An HTTP/1.1 stream is taken over from net/http (its handler has
// returned, so net/http holds nothing for it), and still gets its events
// as they come, heartbeats, and the end of the stream when the page goes.
func TestSSETakenOverStreamsStillStreamAndEndWhenThePageGoes(t *testing.T) {
	src := newFakeSource()
	h := New(Config{Source: src, ConvoInterval: 10 * time.Millisecond, Heartbeat: 30 * time.Millisecond})
	runHub(t, h)
	states := &connStates{states: map[http.ConnState]int{}}
	srv := httptest.NewUnstartedServer(h.Handler(userFromHeader, nil))
	srv.Config.ConnState = states.hook
	srv.Start()
	t.Cleanup(srv.Close)

	c := connect(t, srv, alice, "?convo=c1", "")
	waitFor(t, "the connection taken over", func() bool { return states.count(http.StateHijacked) == 1 })
	waitFor(t, "first poll", func() bool { return src.callCount(alice) >= 1 })
	for range 3 {
		rev := src.add(alice, func(rev string) *chat.ConvoGetLog_Output_Logs_Elem { return logMessage(rev, "c1", "hi "+rev) })
		if ev := c.next(t); ev.ID != rev || ev.Name != string(KindMessage) {
			t.Fatalf("event %+v, want message %s", ev, rev)
		}
	}
	heartbeats := 0
	for heartbeats < 2 {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.Comment && !ev.HasID {
				heartbeats++
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no heartbeat")
		}
	}
	c.resp.Body.Close()
	waitFor(t, "the closed page unsubscribed", func() bool { return h.Stats().Subscribers == 0 })
}

// When the hub stops, a taken-over stream ends with HTTP/1.1's last
// chunk: the browser reads a complete response, not a cut connection.
func TestSSETakenOverStreamEndsCleanlyWithTheHub(t *testing.T) {
	src := newFakeSource()
	h := New(Config{Source: src, ConvoInterval: 10 * time.Millisecond})
	stop := startStoppable(h)
	srv := httptest.NewServer(h.Handler(userFromHeader, nil))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/events", nil)
	req.Header.Set("X-Test-DID", string(alice))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("Transfer-Encoding %q, want chunked", resp.TransferEncoding)
	}
	waitFor(t, "first poll", func() bool { return src.callCount(alice) >= 1 })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the stream to its end: %v (after %q)", err, body)
	}
}

// Over HTTP/2 a connection cannot be taken over: the handler streams, as
// it did before, and the page still gets its events.
func TestSSEOverHTTP2IsStreamedByItsHandler(t *testing.T) {
	src := newFakeSource()
	h := New(Config{Source: src, ConvoInterval: 10 * time.Millisecond})
	runHub(t, h)
	srv := httptest.NewUnstartedServer(h.Handler(userFromHeader, nil))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c := connect(t, srv, alice, "?convo=c1", "")
	if c.resp.ProtoMajor != 2 {
		t.Fatalf("protocol %s, want HTTP/2", c.resp.Proto)
	}
	waitFor(t, "first poll", func() bool { return src.callCount(alice) >= 1 })
	rev := src.add(alice, func(rev string) *chat.ConvoGetLog_Output_Logs_Elem { return logMessage(rev, "c1", "hi") })
	if ev := c.next(t); ev.ID != rev {
		t.Fatalf("event %+v, want %s", ev, rev)
	}
	c.resp.Body.Close()
	waitFor(t, "the closed page unsubscribed", func() bool { return h.Stats().Subscribers == 0 })
}

// Memory goes back to the OS once after a wave of closed streams, and
// not while streams close and reopen (reloads) around the same count.
func TestStreamCountReleasesMemoryAfterAWaveOfClosedStreams(t *testing.T) {
	var mu sync.Mutex
	released := 0
	c := &streamCount{quietFor: 10 * time.Millisecond, release: func() {
		mu.Lock()
		defer mu.Unlock()
		released++
	}}
	releases := func() int {
		mu.Lock()
		defer mu.Unlock()
		return released
	}
	c.add(releaseAfter + 10)
	for range 3 * releaseAfter { // churn: every close is followed by an open
		c.add(-1)
		c.add(1)
	}
	c.add(-(releaseAfter - 1))
	waitFor(t, "the quiet timer to run", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.quiet == nil
	})
	if n := releases(); n != 0 {
		t.Fatalf("%d releases after churn and %d closed streams, want 0", n, releaseAfter-1)
	}
	c.add(-1) // the wave reaches releaseAfter
	waitFor(t, "one release", func() bool { return releases() == 1 })
	c.add(-5)
	waitFor(t, "the quiet timer to run", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.quiet == nil
	})
	if n := releases(); n != 1 {
		t.Fatalf("%d releases, want 1: five more closed streams are not a wave", n)
	}
}
