package live

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// handOff takes an HTTP/1.1 stream's connection over from net/http
// (Hijack) once its headers and first bytes are flushed, and streams s on
// it from a goroutine of its own; the handler then returns. It reports
// false, having done nothing, when the connection cannot be taken (HTTP/2,
// a ResponseWriter that is not a connection, the hub closing): the
// handler streams as before.
//
// Why: while a handler runs, net/http keeps per connection a 4 KB read
// buffer, a 4 KB write buffer, a 2 KB response buffer, the request and
// its headers, the response's cloned headers, the middleware's contexts,
// the handler goroutine's stack, grown by everything the request did
// before streaming (session cookie, middleware), and its background read
// goroutine: about 30 KB of a held stream's 46 KB (BenchmarkSSE10000).
// Taken over, a stream holds the connection, its subscription and one
// goroutine that starts small (heldStream).
//
// net/http has already answered with Transfer-Encoding: chunked (an
// HTTP/1.1 response without a length), so each flush is written as one
// chunk, and the stream ends with the last chunk.
func (h *Hub) handOff(r *http.Request, rc *http.ResponseController, s *sub, usr User, page PageInfo, render Renderer) bool {
	if r.ProtoMajor != 1 || r.ProtoMinor != 1 {
		return false
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return false
	}
	h.wg.Add(1) // Run waits for the stream as for the pollers
	h.mu.Unlock()
	conn, _, err := rc.Hijack() // the buffers it returns are empty: the request had no body, the headers are flushed
	if err != nil {
		h.wg.Done()
		return false
	}
	// Render's context: the request's values (request id, …), cancelled
	// when the stream or the hub ends.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	hs := &heldStream{hub: h, s: s, conn: conn, beat: time.Now().Add(h.cfg.Heartbeat)}
	h.mu.Lock()
	s.wake = hs.interrupt // poke calls it, under h.mu
	h.mu.Unlock()
	heldStreams.add(1)
	go func() {
		defer h.wg.Done()
		defer heldStreams.add(-1) // last: after the stream's memory is let go
		defer h.unsubscribe(s)
		defer conn.Close()
		defer cancel()
		defer context.AfterFunc(h.ctx, func() { cancel(); hs.interrupt() })() // a Render in progress stops too
		cw := &chunkedConn{conn: conn}
		sw := &sseWriter{w: cw, flushTo: cw.flush, deadlineTo: conn.SetWriteDeadline, timeout: h.cfg.WriteTimeout}
		h.streamUntilDone(ctx, sw, s, usr, page, render, hs.wait)
		sw.deadline()
		conn.Write([]byte("0\r\n\r\n")) // the last chunk; the connection closes anyway
	}()
	return true
}

// heldStream is the wait of a stream on a taken-over connection: its one
// goroutine waits in a read of the connection, which ends when the
// browser closes it, at the read deadline (the next heartbeat), or when
// interrupt moves the deadline into the past (s.poke: new events; the
// hub's end). No ticker, no select, no second goroutine.
type heldStream struct {
	hub  *Hub
	s    *sub
	conn net.Conn
	beat time.Time // when the next heartbeat is due
	b    [1]byte
}

// longAgo is a read deadline that has passed: a blocked read returns.
var longAgo = time.Unix(1, 0)

func (hs *heldStream) interrupt() { _ = hs.conn.SetReadDeadline(longAgo) }

// wait is the stream's waitFunc. The deadline is set before notify and
// the hub are checked, so a poke or the hub's end that comes after the
// check finds the read to interrupt, and one that came before is seen by
// the check.
func (hs *heldStream) wait() (bool, error) {
	for {
		if now := time.Now(); !now.Before(hs.beat) {
			hs.beat = now.Add(hs.hub.cfg.Heartbeat)
			return true, nil
		}
		_ = hs.conn.SetReadDeadline(hs.beat)
		if hs.hub.ctx.Err() != nil {
			return false, errHubDone
		}
		select {
		case <-hs.s.notify:
			return false, nil
		default:
		}
		if _, err := hs.conn.Read(hs.b[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return false, context.Canceled // the browser closed the connection: the page went away
		}
		// A deadline (heartbeat or interrupt), or a stray byte: look again.
	}
}

// chunkedConn collects what the sseWriter writes and sends it as one
// HTTP/1.1 chunk on flush. Its buffer is dropped after a large event, so
// a held stream keeps at most a small one.
type chunkedConn struct {
	conn net.Conn
	buf  []byte
}

var crlf = []byte("\r\n")

func (c *chunkedConn) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *chunkedConn) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	chunk := net.Buffers{strconv.AppendInt(nil, int64(len(c.buf)), 16), crlf, c.buf, crlf}
	_, err := chunk.WriteTo(c.conn) // one writev
	if cap(c.buf) > 1<<10 {
		c.buf = nil
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// heldStreams counts the streams this process holds on taken-over
// connections, to give memory back to the OS after a wave of them closed.
var heldStreams = streamCount{release: debug.FreeOSMemory}

// streamCount is the number of held streams and its peak since memory
// was last released.
type streamCount struct {
	mu         sync.Mutex
	held, peak int
	quiet      *time.Timer   // runs check once no stream has closed for quietFor
	quietFor   time.Duration // 0: releaseQuiet
	release    func()
}

// Memory is released once no stream has closed for releaseQuiet and at
// least releaseAfter fewer streams are held than at the peak since the
// last release. Go frees a closed stream's memory (≈13 KB) for reuse at
// the next GC but gives it back to the OS only slowly: 10,000 closed
// streams left 120 MB of RSS a minute later. debug.FreeOSMemory (a GC and
// a scavenge) returns it at once; 1,000 streams are ≈13 MB, worth one GC.
// Streams that close and reopen (reloads, reconnects) leave the count near
// its peak and release nothing.
const (
	releaseAfter = 1000
	releaseQuiet = 2 * time.Second
)

func (c *streamCount) add(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held += n
	c.peak = max(c.peak, c.held)
	if n >= 0 {
		return
	}
	d := c.quietFor
	if d == 0 {
		d = releaseQuiet
	}
	if c.quiet == nil {
		c.quiet = time.AfterFunc(d, c.check)
	} else {
		c.quiet.Reset(d)
	}
}

func (c *streamCount) check() {
	c.mu.Lock()
	c.quiet = nil
	due := c.peak-c.held >= releaseAfter
	if due {
		c.peak = c.held
	}
	c.mu.Unlock()
	if due {
		c.release()
	}
}
