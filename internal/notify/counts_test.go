package notify_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/notify/notifytest"
)

// TestCountByStateAndDeliveryLatency: CountByState names every state,
// zero counts too; OnDelivered gets queued_at → sent_at of each row sent,
// once.
func TestCountByStateAndDeliveryLatency(t *testing.T) {
	bubble(t, func(t *testing.T) {
		var (
			mu        sync.Mutex
			latencies []time.Duration
		)
		e := newEnv(t, func(c *notify.Config) {
			c.OnDelivered = func(d time.Duration) { mu.Lock(); latencies = append(latencies, d); mu.Unlock() }
		})
		counts, err := e.w.CountByState(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []notify.State{notify.StateQueued, notify.StateSending, notify.StateSent,
			notify.StateNotDelivered, notify.StateParkedAuth, notify.StateGivenUp} {
			if n, ok := counts[string(s)]; !ok || n != 0 {
				t.Errorf("empty outbox: %s = %d (present %v), want 0", s, n, ok)
			}
		}
		e.chat.Inject(notifytest.Fault{Method: notifytest.MethodSend, Count: 1, Err: notifytest.Unavailable()})
		first := e.enqueue(alice, bob)
		e.enqueue(carol, bob)
		e.clock.Advance(3 * time.Second) // queued 3 s before the worker starts
		start(t, e.w)
		e.waitState(first, notify.StateSent)
		waitFor(t, "both sent", func() bool {
			c, err := e.w.CountByState(context.Background())
			return err == nil && c[string(notify.StateSent)] == 2 && c[string(notify.StateQueued)] == 0
		})
		mu.Lock()
		defer mu.Unlock()
		if len(latencies) != 2 {
			t.Fatalf("OnDelivered called %d times, want 2: %v", len(latencies), latencies)
		}
		for _, d := range latencies {
			if d < 3*time.Second {
				t.Errorf("latency %s, want at least the 3 s the rows waited", d)
			}
		}
	})
}
