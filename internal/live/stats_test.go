package live

import (
	"slices"
	"testing"
	"time"
)

// TestStatsIntervals: Stats reports each running poller's current
// interval: the conversation interval while one of the user's pages is a
// conversation, the inbox interval otherwise.
func TestStatsIntervals(t *testing.T) {
	src := newFakeSource()
	h, _ := newTestHub(t, src, Config{})
	mustSubscribe(t, h, alice, "s-alice", true, "")
	mustSubscribe(t, h, bob, "s-bob", false, "")
	waitFor(t, "two pollers", func() bool { return h.Stats().Pollers == 2 })
	got := h.Stats().Intervals
	slices.Sort(got)
	if want := []time.Duration{DefaultConvoInterval, DefaultInboxInterval}; !slices.Equal(got, want) {
		t.Fatalf("intervals %v, want %v", got, want)
	}
}
