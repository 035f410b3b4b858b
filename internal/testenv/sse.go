package testenv

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"time"
)

// SSEEvent is one event of a text/event-stream: its id, name and data
// (data lines joined without separators).
type SSEEvent struct{ ID, Name, Data string }

// SSEEvents reads the event stream body into the returned channel (cap
// 64), skipping comments and retry lines, and closes both body and channel
// when the stream ends.
func SSEEvents(body io.ReadCloser) <-chan SSEEvent {
	out := make(chan SSEEvent, 64)
	go func() {
		defer close(out)
		defer body.Close()
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		var ev SSEEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" || ev.Data != "" {
					out <- ev
				}
				ev = SSEEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Name = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data += line[6:]
			}
		}
	}()
	return out
}

// NextSSE returns the next event named name from events, skipping others;
// it fails t when the stream ends or none comes within 10 s.
func NextSSE(t testing.TB, events <-chan SSEEvent, name string) SSEEvent {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("stream ended before a %q event", name)
			}
			if ev.Name == name {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %q event within 10 s", name)
		}
	}
}
