package live

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/procstat"
)

// connFigures is what holding a number of SSE connections added.
type connFigures struct {
	conns, users                    int
	heapInuse, stackInuse, sys, rss int64 // bytes added
}

func (f connFigures) String() string {
	mb := func(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }
	return fmt.Sprintf("%d connections of %d users: RSS +%s, Go Sys +%s, HeapInuse +%s, StackInuse +%s, %.1f KB RSS per connection",
		f.conns, f.users, mb(f.rss), mb(f.sys), mb(f.heapInuse), mb(f.stackInuse), float64(f.rss)/float64(f.conns)/1024)
}

// holdConnections opens conns SSE streams spread over users users (on
// conversation pages, so every poller runs at the convo interval) against
// a real HTTP server, measures what they added, and closes them. The
// clients are raw TCP connections reading with a stack buffer, so nearly
// all of the figure is the server side.
func holdConnections(tb testing.TB, conns, users int) connFigures {
	tb.Helper()
	src := newFakeSource()
	h := New(Config{Source: src, ConvoInterval: 50 * time.Millisecond, Grace: time.Millisecond})
	runHub(tb, h)
	srv := httptest.NewServer(h.Handler(userFromHeader, nil))
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rss0 := procstat.RSS()

	open := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range open {
			c.Close()
		}
		waitFor(tb, "all streams closed", func() bool { return h.Stats().Subscribers == 0 })
	}()
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			tb.Fatalf("dial %d: %v", i, err)
		}
		open = append(open, c)
		did := syntax.DID(fmt.Sprintf("did:plc:user%04d", i%users))
		fmt.Fprintf(c, "GET /events?convo=c%d HTTP/1.1\r\nHost: x\r\nX-Test-DID: %s\r\n\r\n", i, did)
		var buf [512]byte
		var got []byte
		for !bytes.Contains(got, []byte("\r\n\r\n")) {
			n, err := c.Read(buf[:])
			if err != nil && err != io.EOF {
				tb.Fatalf("read %d: %v", i, err)
			}
			if n == 0 {
				tb.Fatalf("connection %d closed before the headers", i)
			}
			got = append(got, buf[:n]...)
		}
		if !bytes.HasPrefix(got, []byte("HTTP/1.1 200")) {
			tb.Fatalf("connection %d: %q", i, got)
		}
	}
	waitFor(tb, "every stream subscribed and every poller polling", func() bool {
		st := h.Stats()
		return st.Subscribers == conns && st.Pollers == users
	})
	runtime.GC()
	runtime.ReadMemStats(&after)
	return connFigures{
		conns: conns, users: users,
		heapInuse:  int64(after.HeapInuse) - int64(before.HeapInuse),
		stackInuse: int64(after.StackInuse) - int64(before.StackInuse),
		sys:        int64(after.Sys) - int64(before.Sys),
		rss:        procstat.RSS() - rss0,
	}
}

const memBudget = 100 << 20 // the target: 500 connections under 100 MB

func TestSSEConnectionsMemory(t *testing.T) {
	for _, users := range []int{500, 100} {
		t.Run(fmt.Sprintf("%d users", users), func(t *testing.T) {
			f := holdConnections(t, 500, users)
			t.Log(f)
			if raceEnabled {
				return // the race detector's shadow memory makes the figure meaningless
			}
			if f.rss > memBudget || f.sys > memBudget {
				t.Fatalf("%v: over the 100 MB budget", f)
			}
		})
	}
}

// BenchmarkSSEConnections holds 500 SSE connections (500 users, one tab
// each: the worst case, one poller per connection) per iteration and
// reports what they add.
func BenchmarkSSEConnections(b *testing.B) {
	var total connFigures
	n := 0
	for b.Loop() {
		f := holdConnections(b, 500, 500)
		total.rss += f.rss
		total.sys += f.sys
		total.heapInuse += f.heapInuse
		total.stackInuse += f.stackInuse
		n++
	}
	per := func(v int64) float64 { return float64(v) / float64(n) }
	b.ReportMetric(per(total.rss)/(1<<20), "MB-RSS/500conns")
	b.ReportMetric(per(total.sys)/(1<<20), "MB-Sys/500conns")
	b.ReportMetric(per(total.heapInuse+total.stackInuse)/500, "B-heap+stack/conn")
	if !raceEnabled && per(total.sys) > memBudget {
		b.Fatalf("500 connections added %.1f MB of Go memory, over the 100 MB budget", per(total.sys)/(1<<20))
	}
}
