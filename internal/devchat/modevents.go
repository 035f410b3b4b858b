package devchat

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// chat.bsky.moderation.subscribeModEvents: an XRPC event stream over a
// websocket. Each frame is binary: a DAG-CBOR header {"op": 1, "t":
// "#eventName"} followed by the DAG-CBOR event; an error is {"op": -1}
// followed by {"error", "message"}, and the stream then closes.
//
// The project has no websocket library in go.sum (and takes no new
// dependency for the sandbox), so this file speaks the little of RFC 6455
// a server needs: the upgrade handshake, unmasked binary and close frames
// out, and reading (discarding) whatever the client sends until it goes.
//
// Events are kept in memory for backfill. The cursor is an event's rev (a
// TID): a subscriber receives the events after it; "2222222222222" (TID
// zero) backfills everything; no cursor means only new events; a cursor
// past the newest rev is FutureCursor. A subscriber more than
// modSubBuffer events behind is dropped with ConsumerTooSlow.
//
// modemit.go builds the events; every one the lexicon lists is emitted
// except eventRateLimitExceeded (devchat has no rate limits).

// modSubBuffer is how many events a subscriber may lag behind.
const modSubBuffer = 256

// modEvent is one event of the stream.
type modEvent struct {
	rev   string
	frame []byte // header + body, encoded once
}

// modSub is one open subscription.
type modSub struct {
	frames chan []byte
	slow   chan struct{} // closed when the subscriber fell too far behind
}

// emitModLocked records an event ("#eventName", its generated struct) and
// hands it to every subscriber. Requires Server.mu.
func (s *Server) emitModLocked(rev, name string, body any) {
	frame, err := streamFrame(map[string]any{"op": 1, "t": name}, body)
	if err != nil {
		s.log.Error("encoding mod event", "event", name, "err", err)
		return
	}
	s.st.mod.events = append(s.st.mod.events, modEvent{rev: rev, frame: frame})
	for sub := range s.st.mod.subs {
		select {
		case sub.frames <- frame:
		default:
			close(sub.slow)
			delete(s.st.mod.subs, sub)
		}
	}
}

// modStream is subscribeModEvents' answer: serveXRPC hands it the
// connection (see streamer).
type modStream struct {
	s      *Server
	cursor string
}

// modSubscribe checks the cursor parameter and returns the stream.
func (s *Server) modSubscribe(_ context.Context, _ syntax.DID, r *http.Request) (any, error) {
	cursor := r.URL.Query().Get("cursor")
	if cursor != "" {
		if _, err := syntax.ParseTID(cursor); err != nil {
			return nil, invalidf("malformed cursor %q", cursor)
		}
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.Header.Get("Sec-WebSocket-Key") == "" {
		return nil, invalidf("chat.bsky.moderation.subscribeModEvents is a websocket subscription")
	}
	return &modStream{s: s, cursor: cursor}, nil
}

// ServeHTTP upgrades the connection and streams events until the client
// goes, the server closes, or the client falls behind.
func (m *modStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := m.s
	// Subscribe before answering the upgrade, so that no event made after
	// the client sees the 101 is missed.
	sub := &modSub{frames: make(chan []byte, modSubBuffer), slow: make(chan struct{})}
	s.mu.Lock()
	future := m.cursor != "" && m.cursor > s.latestRev()
	var backfill [][]byte
	if m.cursor != "" && !future {
		for _, e := range s.st.mod.events {
			if e.rev > m.cursor {
				backfill = append(backfill, e.frame)
			}
		}
	}
	if s.st.mod.subs == nil {
		s.st.mod.subs = map[*modSub]bool{}
	}
	if !future {
		s.st.mod.subs[sub] = true
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.st.mod.subs, sub)
		s.mu.Unlock()
	}()

	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeXRPCError(w, &xrpcError{Status: http.StatusInternalServerError, Name: "InternalServerError", Message: "could not open the stream"})
		return
	}
	defer conn.Close()
	sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
	if brw.Flush() != nil {
		return
	}
	if future {
		writeStreamError(conn, "FutureCursor", "Cursor in the future.")
		return
	}
	gone := make(chan struct{})
	go func() { // the client's frames are not read for meaning; EOF ends the stream
		_, _ = io.Copy(io.Discard, brw.Reader)
		close(gone)
	}()

	for _, f := range backfill {
		if writeFrame(conn, 0x2, f) != nil {
			return
		}
	}
	for {
		select {
		case f := <-sub.frames:
			if writeFrame(conn, 0x2, f) != nil {
				return
			}
		case <-sub.slow:
			writeStreamError(conn, "ConsumerTooSlow", "Stream consumer too slow")
			return
		case <-gone:
			return
		case <-s.closed:
			writeClose(conn, 1001)
			return
		}
	}
}

// writeStreamError sends an error frame and closes the websocket.
func writeStreamError(conn net.Conn, name, message string) {
	if f, err := streamFrame(map[string]any{"op": -1}, map[string]string{"error": name, "message": message}); err == nil {
		_ = writeFrame(conn, 0x2, f)
	}
	writeClose(conn, 1008)
}

// writeClose sends a close frame with a status code.
func writeClose(conn net.Conn, code uint16) {
	_ = writeFrame(conn, 0x8, binary.BigEndian.AppendUint16(nil, code))
}

// writeFrame writes one unmasked, final websocket frame.
func writeFrame(conn net.Conn, opcode byte, payload []byte) error {
	hdr := []byte{0x80 | opcode}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, byte(n))
	case n <= 0xffff:
		hdr = binary.BigEndian.AppendUint16(append(hdr, 126), uint16(n))
	default:
		hdr = binary.BigEndian.AppendUint64(append(hdr, 127), uint64(n))
	}
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	w := bufio.NewWriter(conn)
	_, _ = w.Write(hdr)
	_, _ = w.Write(payload)
	return w.Flush()
}

// streamFrame encodes an XRPC stream frame: header then body, DAG-CBOR.
func streamFrame(header, body any) ([]byte, error) {
	var b bytes.Buffer
	for _, v := range []any{header, body} {
		j, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		d := json.NewDecoder(bytes.NewReader(j))
		d.UseNumber()
		var generic any
		if err := d.Decode(&generic); err != nil {
			return nil, err
		}
		if err := writeCBOR(&b, generic); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// writeCBOR encodes a decoded JSON value as DAG-CBOR (integers only: the
// events have no floats; map keys sorted length-first, then bytewise).
func writeCBOR(b *bytes.Buffer, v any) error {
	head := func(major byte, n uint64) {
		switch {
		case n < 24:
			b.WriteByte(major<<5 | byte(n))
		case n <= 0xff:
			b.Write([]byte{major<<5 | 24, byte(n)})
		case n <= 0xffff:
			b.Write(binary.BigEndian.AppendUint16([]byte{major<<5 | 25}, uint16(n)))
		case n <= 0xffffffff:
			b.Write(binary.BigEndian.AppendUint32([]byte{major<<5 | 26}, uint32(n)))
		default:
			b.Write(binary.BigEndian.AppendUint64([]byte{major<<5 | 27}, n))
		}
	}
	switch v := v.(type) {
	case nil:
		b.WriteByte(0xf6)
	case bool:
		if v {
			b.WriteByte(0xf5)
		} else {
			b.WriteByte(0xf4)
		}
	case string:
		head(3, uint64(len(v)))
		b.WriteString(v)
	case json.Number:
		n, err := v.Int64()
		if err != nil {
			return errors.New("devchat: mod events carry integers only")
		}
		if n >= 0 {
			head(0, uint64(n))
		} else {
			head(1, uint64(-1-n))
		}
	case []any:
		head(4, uint64(len(v)))
		for _, e := range v {
			if err := writeCBOR(b, e); err != nil {
				return err
			}
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if len(a) != len(b) {
				return len(a) - len(b)
			}
			return strings.Compare(a, b)
		})
		head(5, uint64(len(keys)))
		for _, k := range keys {
			head(3, uint64(len(k)))
			b.WriteString(k)
			if err := writeCBOR(b, v[k]); err != nil {
				return err
			}
		}
	default:
		return errors.New("devchat: unexpected JSON value in a mod event")
	}
	return nil
}
