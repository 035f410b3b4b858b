package live

import (
	"fmt"
	"testing"
	"time"
)

const backgroundEvery = DefaultBackgroundInterval

func TestHiddenOnlyUserPollsAtBackgroundInterval(t *testing.T) {
	src := newFakeSource()
	h, clk := newTestHub(t, src, Config{})

	hidden := subscribeTab(t, h, alice, "s1", true, true, "")
	waitFor(t, "a hidden conversation page's first call and a background wait", func() bool {
		return src.callCount(alice) == 1 && durationsEqual(clk.pending(), backgroundEvery)
	})
	clk.Advance(backgroundEvery - time.Second)
	if n := src.callCount(alice); n != 1 {
		t.Fatalf("%d calls before the background interval passed, want 1", n)
	}
	clk.Advance(time.Second)
	waitFor(t, "the second call one background interval later", func() bool {
		return src.callCount(alice) == 2 && durationsEqual(clk.pending(), backgroundEvery)
	})

	// Any visible page decides the interval; hidden pages add nothing.
	inbox := mustSubscribe(t, h, alice, "s1", false, "")
	waitFor(t, "a visible inbox switches to InboxInterval", func() bool {
		return durationsEqual(clk.pending(), inboxEvery)
	})
	convo := mustSubscribe(t, h, alice, "s1", true, "")
	waitFor(t, "a visible conversation switches to ConvoInterval", func() bool {
		return durationsEqual(clk.pending(), convoEvery)
	})
	h.unsubscribe(convo)
	h.unsubscribe(inbox)
	waitFor(t, "back to the background interval with only the hidden page", func() bool {
		return durationsEqual(clk.pending(), backgroundEvery)
	})

	// No page at all: the poller stops after Grace, hidden or not.
	h.unsubscribe(hidden)
	waitFor(t, "grace wait", func() bool { return durationsEqual(clk.pending(), DefaultGrace) })
	clk.Advance(DefaultGrace)
	waitFor(t, "poller gone", func() bool {
		st := h.Stats()
		return st.Pollers == 0 && st.Users == 0 && len(clk.pending()) == 0
	})
	calls := src.callCount(alice)
	clk.Advance(time.Hour)
	if n := src.callCount(alice); n != calls {
		t.Fatalf("%d calls after the poller stopped, want %d", n, calls)
	}
}

func TestFiveHiddenTabsOnePoller(t *testing.T) {
	src := newFakeSource()
	h, clk := newTestHub(t, src, Config{})
	var tabs []*sub
	for range 5 {
		tabs = append(tabs, subscribeTab(t, h, alice, "s1", true, true, ""))
	}
	waitFor(t, "one call and one background wait", func() bool {
		return src.callCount(alice) == 1 && durationsEqual(clk.pending(), backgroundEvery)
	})
	for i := 2; i <= 4; i++ {
		clk.Advance(backgroundEvery)
		waitFor(t, fmt.Sprintf("call %d", i), func() bool {
			return src.callCount(alice) == i && durationsEqual(clk.pending(), backgroundEvery)
		})
	}
	if st := h.Stats(); st.Pollers != 1 || st.PollersStarted != 1 || st.Subscribers != 5 {
		t.Fatalf("5 hidden tabs: stats %+v, want 1 poller, 1 started, 5 subscribers", st)
	}
	for _, s := range tabs {
		h.unsubscribe(s)
	}
	clk.Advance(DefaultGrace)
	waitFor(t, "poller gone", func() bool { return h.Stats().Pollers == 0 })
}

// The page's script switches streams when its document is hidden or shown:
// the old stream may end before or after the new one starts.
func TestPageShownAgainPollsAtOnce(t *testing.T) {
	for _, closeFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("old stream closed first %v", closeFirst), func(t *testing.T) {
			src := newFakeSource()
			h, clk := newTestHub(t, src, Config{})
			switchTo := func(old *sub, hidden bool) *sub {
				if closeFirst {
					h.unsubscribe(old)
				}
				s := subscribeTab(t, h, alice, "s1", true, hidden, "")
				if !closeFirst {
					h.unsubscribe(old)
				}
				return s
			}

			page := mustSubscribe(t, h, alice, "s1", true, "")
			waitFor(t, "first call", func() bool {
				return src.callCount(alice) == 1 && durationsEqual(clk.pending(), convoEvery)
			})
			clk.Advance(convoEvery)
			waitFor(t, "second call", func() bool { return src.callCount(alice) == 2 })

			page = switchTo(page, true)
			waitFor(t, "hidden: the background interval", func() bool {
				return durationsEqual(clk.pending(), backgroundEvery)
			})
			clk.Advance(backgroundEvery - time.Second)
			if n := src.callCount(alice); n != 2 {
				t.Fatalf("%d calls while hidden, want 2", n)
			}
			clk.Advance(time.Second)
			waitFor(t, "the background call", func() bool {
				return src.callCount(alice) == 3 && durationsEqual(clk.pending(), backgroundEvery)
			})
			// A second after that call (within ConvoInterval of it) a
			// message arrives and the page is shown again.
			clk.Advance(time.Second)
			rev := src.message(alice, "c1", "while hidden")

			page = switchTo(page, false)
			waitFor(t, "an immediate call when the page is shown", func() bool { return src.callCount(alice) == 4 })
			waitFor(t, "the message that arrived meanwhile", func() bool {
				evs, _ := drain(h, page)
				return len(evs) == 1 && evs[0].Rev == rev
			})
			waitFor(t, "visible again: ConvoInterval", func() bool {
				return durationsEqual(clk.pending(), convoEvery)
			})
		})
	}
}

// A reload or a move to another page of a visible tab is not a return from
// the background: it waits for the interval as before.
func TestReloadOfVisiblePageDoesNotPollAtOnce(t *testing.T) {
	src := newFakeSource()
	h, clk := newTestHub(t, src, Config{})
	page := mustSubscribe(t, h, alice, "s1", true, "")
	waitFor(t, "first call", func() bool {
		return src.callCount(alice) == 1 && durationsEqual(clk.pending(), convoEvery)
	})
	clk.Advance(time.Second)
	h.unsubscribe(page)
	mustSubscribe(t, h, alice, "s1", true, "")
	waitFor(t, "the rest of the interval", func() bool {
		return durationsEqual(clk.pending(), convoEvery-time.Second)
	})
	if n := src.callCount(alice); n != 1 {
		t.Fatalf("%d calls after a reload, want 1", n)
	}
}
