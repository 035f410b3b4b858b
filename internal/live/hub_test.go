package live

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/apperr"
)

const (
	convoEvery = DefaultConvoInterval
	inboxEvery = DefaultInboxInterval
)

func TestPollersGrowWithUsersNotTabs(t *testing.T) {
	src := newFakeSource()
	h, clk := newTestHub(t, src, Config{})

	for range 5 {
		mustSubscribe(t, h, alice, "s-alice", true, "")
	}
	waitFor(t, "alice's first call and a convo-interval wait", func() bool {
		return src.callCount(alice) == 1 && durationsEqual(clk.pending(), convoEvery)
	})
	if st := h.Stats(); st.Pollers != 1 || st.PollersStarted != 1 || st.Subscribers != 5 {
		t.Fatalf("5 tabs of one user: stats %+v, want 1 poller, 1 started, 5 subscribers", st)
	}
	for i := 1; i <= 3; i++ {
		clk.Advance(convoEvery)
		waitFor(t, fmt.Sprintf("alice's call %d", i+1), func() bool {
			return src.callCount(alice) == 1+i && durationsEqual(clk.pending(), convoEvery)
		})
	}

	mustSubscribe(t, h, bob, "s-bob", true, "")
	mustSubscribe(t, h, carol, "s-carol", true, "")
	mustSubscribe(t, h, carol, "s-carol", true, "")
	waitFor(t, "three pollers waiting", func() bool {
		return src.callCount(bob) == 1 && src.callCount(carol) == 1 &&
			durationsEqual(clk.pending(), convoEvery, convoEvery, convoEvery)
	})
	// All three pollers are due one convo interval from now.
	clk.Advance(convoEvery)
	waitFor(t, "one more call each", func() bool {
		return src.callCount(alice) == 5 && src.callCount(bob) == 2 && src.callCount(carol) == 2 &&
			len(clk.pending()) == 3
	})
	st := h.Stats()
	if st.Users != 3 || st.Pollers != 3 || st.PollersStarted != 3 || st.Subscribers != 8 {
		t.Fatalf("3 users with 8 tabs: stats %+v, want 3 users, 3 pollers, 3 started, 8 subscribers", st)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.maxInflight != 1 {
		t.Fatalf("max concurrent calls for one user = %d, want 1", src.maxInflight)
	}
}

func TestPollIntervalFollowsConnectedPages(t *testing.T) {
	src := newFakeSource()
	h, clk := newTestHub(t, src, Config{})

	inbox := mustSubscribe(t, h, alice, "s1", false, "")
	waitFor(t, "inbox-only wait of InboxInterval", func() bool {
		return src.callCount(alice) == 1 && durationsEqual(clk.pending(), inboxEvery)
	})

	convo := mustSubscribe(t, h, alice, "s1", true, "")
	waitFor(t, "convo page switches to ConvoInterval without a clock tick", func() bool {
		return durationsEqual(clk.pending(), convoEvery)
	})
	clk.Advance(convoEvery)
	waitFor(t, "second call after ConvoInterval", func() bool {
		return src.callCount(alice) == 2 && durationsEqual(clk.pending(), convoEvery)
	})

	h.unsubscribe(convo)
	waitFor(t, "back to InboxInterval when the convo page leaves", func() bool {
		return durationsEqual(clk.pending(), inboxEvery)
	})

	// 10 s into a 30 s inbox wait a convo page connects: the convo interval
	// (4 s) has already passed since the last call, so the poller calls now.
	clk.Advance(10 * time.Second)
	mustSubscribe(t, h, alice, "s1", true, "")
	waitFor(t, "an immediate call when a convo page connects late", func() bool {
		return src.callCount(alice) == 3 && durationsEqual(clk.pending(), convoEvery)
	})
	_ = inbox
}

func TestPollerStopsAfterLastPageLeaves(t *testing.T) {
	src := newFakeSource()
	src.message(alice, "c1", "history")
	h, clk := newTestHub(t, src, Config{})

	s := mustSubscribe(t, h, alice, "s1", true, "")
	waitFor(t, "first call", func() bool { return src.callCount(alice) == 1 && len(clk.pending()) == 1 })

	h.unsubscribe(s)
	waitFor(t, "grace wait", func() bool { return durationsEqual(clk.pending(), DefaultGrace) })
	if st := h.Stats(); st.Pollers != 1 || st.Subscribers != 0 {
		t.Fatalf("during grace: stats %+v, want the poller kept", st)
	}

	// A reload within the grace period keeps the same poller and cursor.
	clk.Advance(DefaultGrace / 2)
	s = mustSubscribe(t, h, alice, "s1", true, "")
	waitFor(t, "poller resumes", func() bool { return src.callCount(alice) == 2 && len(clk.pending()) == 1 })
	if st := h.Stats(); st.PollersStarted != 1 {
		t.Fatalf("reload within grace started a new poller: %+v", st)
	}
	if c := src.cursorsOf(alice); c[1] == "" {
		t.Fatalf("resumed poller called without a cursor: %q", c)
	}

	h.unsubscribe(s)
	waitFor(t, "grace wait", func() bool { return durationsEqual(clk.pending(), DefaultGrace) })
	clk.Advance(DefaultGrace)
	waitFor(t, "poller gone", func() bool {
		st := h.Stats()
		return st.Pollers == 0 && st.Users == 0 && len(clk.pending()) == 0
	})
	clk.Advance(time.Hour)
	if n := src.callCount(alice); n != 2 {
		t.Fatalf("calls after the poller stopped: %d, want 2", n)
	}
}

func TestBackoffGrowsWithFullJitterAndResetsOnSuccess(t *testing.T) {
	unavailable := apperr.New(apperr.Unavailable, "down")
	tests := []struct {
		name       string
		maxBackoff time.Duration
		want       []time.Duration // waits after 4 failures, then after the success
	}{
		{"doubling ceiling on top of the interval", 0, []time.Duration{
			convoEvery + 2*time.Second, convoEvery + 4*time.Second, convoEvery + 8*time.Second,
			convoEvery + 16*time.Second, convoEvery,
		}},
		{"capped at MaxBackoff", 10 * time.Second, []time.Duration{
			convoEvery + 2*time.Second, convoEvery + 4*time.Second, 10 * time.Second, 10 * time.Second, convoEvery,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource()
			src.failNext(alice, unavailable, unavailable, unavailable, unavailable)
			h, clk := newTestHub(t, src, Config{MaxBackoff: tt.maxBackoff})
			mustSubscribe(t, h, alice, "s1", true, "")
			for i, want := range tt.want {
				waitFor(t, fmt.Sprintf("wait %d of %v", i+1, want), func() bool {
					return src.callCount(alice) == i+1 && durationsEqual(clk.pending(), want)
				})
				clk.Advance(want)
			}
		})
	}
}

func TestBackoffJitterStaysWithinCeiling(t *testing.T) {
	h := New(Config{Source: newFakeSource()})
	err := apperr.New(apperr.Unavailable, "down")
	for failures := 1; failures <= 12; failures++ {
		ceil := min(backoffBase<<(failures-1), DefaultMaxBackoff)
		for range 50 {
			d := h.retryDelay(err, failures, convoEvery)
			if d < convoEvery || d > min(convoEvery+ceil, DefaultMaxBackoff) {
				t.Fatalf("failure %d: delay %v outside [%v, %v]", failures, d, convoEvery, convoEvery+ceil)
			}
		}
	}
}

func TestRateLimitedWaitsUntilRetryAt(t *testing.T) {
	tests := []struct {
		name    string
		retryIn time.Duration // 0: no RetryAt
		want    time.Duration
	}{
		{"waits until RetryAt", 90 * time.Second, 90 * time.Second},
		{"capped at MaxBackoff", time.Hour, DefaultMaxBackoff},
		{"never sooner than the interval", time.Second, convoEvery},
		{"without RetryAt backs off", 0, convoEvery + backoffBase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource()
			h, clk := newTestHub(t, src, Config{})
			e := &apperr.Error{Code: apperr.RateLimited, Reason: "RateLimited"}
			if tt.retryIn > 0 {
				e.RetryAt = clk.Now().Add(tt.retryIn)
			}
			src.failNext(alice, e)
			mustSubscribe(t, h, alice, "s1", true, "")
			waitFor(t, "rate-limited wait", func() bool {
				return src.callCount(alice) == 1 && durationsEqual(clk.pending(), tt.want)
			})
			// A convo page connecting does not cut the wait short.
			mustSubscribe(t, h, alice, "s1", true, "")
			clk.Advance(tt.want - time.Millisecond)
			if n := src.callCount(alice); n != 1 {
				t.Fatalf("called again %v before RetryAt", time.Millisecond)
			}
			clk.Advance(time.Millisecond)
			waitFor(t, "call after RetryAt", func() bool { return src.callCount(alice) == 2 })
		})
	}
}

func TestSessionErrorsSendAuthAndStopPolling(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantReason string
	}{
		{"expired session", &apperr.Error{Code: apperr.Unauthorized, Reason: "SessionExpired", Message: "Your session has expired. Please sign in again."}, "SessionExpired"},
		{"unauthorized without reason", &apperr.Error{Code: apperr.Unauthorized}, "SessionExpired"},
		{"chat scope missing", &apperr.Error{Code: apperr.Forbidden, Reason: "ScopeMissing", Message: "To use DMs, sign in again."}, "ScopeMissing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource()
			src.setAlways(alice, tt.err)
			h, clk := newTestHub(t, src, Config{})
			s := mustSubscribe(t, h, alice, "old", true, "")
			waitNotify(t, s)
			evs, final := drain(h, s)
			if len(evs) != 1 || evs[0].Kind != KindAuth || !final {
				t.Fatalf("events %v final %v, want one final auth event", revs(evs), final)
			}
			if evs[0].Reason != tt.wantReason || evs[0].Notice != apperr.MessageOf(tt.err) {
				t.Fatalf("auth event reason %q notice %q", evs[0].Reason, evs[0].Notice)
			}
			waitFor(t, "poller stopped", func() bool { return h.Stats().Pollers == 0 })
			clk.Advance(time.Hour)
			if n := src.callCount(alice); n != 1 {
				t.Fatalf("calls after auth failure = %d, want 1", n)
			}

			// Another tab of the dead session is told at once, without a call.
			again := mustSubscribe(t, h, alice, "old", false, "")
			if evs, final := drain(h, again); len(evs) != 1 || evs[0].Kind != KindAuth || !final {
				t.Fatalf("new tab of a dead session got %v", revs(evs))
			}
			if st := h.Stats(); st.PollersStarted != 1 || src.callCount(alice) != 1 {
				t.Fatalf("dead session restarted polling: %+v", st)
			}

			// Signing in again (a new session) polls again.
			src.setAlways(alice, nil)
			mustSubscribe(t, h, alice, "new", true, "")
			waitFor(t, "polling with the new session", func() bool { return src.callCount(alice) == 2 })
			if got := src.sessionsOf(alice); got[1] != "new" {
				t.Fatalf("sessions used %q", got)
			}
		})
	}
}

func TestOtherErrorsKeepPolling(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"forbidden for another reason", &apperr.Error{Code: apperr.Forbidden, Reason: "ChatDisabled"}},
		{"plain error", errors.New("boom")},
		{"unavailable", &apperr.Error{Code: apperr.Unavailable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource()
			src.failNext(alice, tt.err)
			h, clk := newTestHub(t, src, Config{})
			s := mustSubscribe(t, h, alice, "s1", true, "")
			waitFor(t, "backoff wait", func() bool {
				return src.callCount(alice) == 1 && durationsEqual(clk.pending(), convoEvery+backoffBase)
			})
			clk.Advance(convoEvery + backoffBase)
			waitFor(t, "retry", func() bool { return src.callCount(alice) == 2 })
			if evs, _ := drain(h, s); len(evs) != 0 {
				t.Fatalf("page got %v for a transient error", revs(evs))
			}
		})
	}
}

func TestDeadSessionHandsOverToAnotherLiveSession(t *testing.T) {
	src := newFakeSource()
	h, clk := newTestHub(t, src, Config{})
	phone := mustSubscribe(t, h, alice, "phone", true, "")
	waitFor(t, "first call", func() bool { return src.callCount(alice) == 1 && len(clk.pending()) == 1 })
	laptop := mustSubscribe(t, h, alice, "laptop", true, "")
	h.unsubscribe(phone)
	phone = mustSubscribe(t, h, alice, "phone", true, "") // newest: the poller prefers it
	src.failNext(alice, &apperr.Error{Code: apperr.Unauthorized, Reason: "SessionExpired"})
	clk.Advance(convoEvery)
	waitFor(t, "phone's session fails, laptop's takes over", func() bool {
		s := src.sessionsOf(alice)
		return len(s) == 3 && s[1] == "phone" && s[2] == "laptop"
	})
	if evs, final := drain(h, phone); len(evs) != 1 || evs[0].Kind != KindAuth || !final {
		t.Fatalf("phone page got %v, want auth", revs(evs))
	}
	if evs, _ := drain(h, laptop); len(evs) != 0 {
		t.Fatalf("laptop page got %v, want nothing", revs(evs))
	}
	if st := h.Stats(); st.Pollers != 1 || st.PollersStarted != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestFirstCallTakesCursorAndEmitsNoHistory(t *testing.T) {
	src := newFakeSource()
	old := []string{src.message(alice, "c1", "one"), src.message(alice, "c1", "two")}
	h, clk := newTestHub(t, src, Config{})
	s := mustSubscribe(t, h, alice, "s1", true, "")
	waitFor(t, "first call", func() bool { return src.callCount(alice) == 1 && len(clk.pending()) == 1 })
	if evs, _ := drain(h, s); len(evs) != 0 {
		t.Fatalf("history emitted: %v", revs(evs))
	}
	fresh := src.message(alice, "c1", "three")
	clk.Advance(convoEvery)
	waitFor(t, "second call", func() bool { return src.callCount(alice) == 2 && len(clk.pending()) == 1 })
	evs, _ := drain(h, s)
	if got := revs(evs); !slices.Equal(got, []string{fresh}) {
		t.Fatalf("events %v, want only %v", got, fresh)
	}
	if got := src.cursorsOf(alice); !slices.Equal(got, []string{"", old[1]}) {
		t.Fatalf("cursors %q, want [\"\" %q]", got, old[1])
	}
	if evs[0].Kind != KindMessage || evs[0].ConvoID != "c1" || evs[0].Message == nil || evs[0].Message.Text != "three" {
		t.Fatalf("decoded event %+v", evs[0])
	}
}

func TestSlowSubscriberGetsResyncAndNeverBlocksThePoller(t *testing.T) {
	src := newFakeSource()
	h, clk := newTestHub(t, src, Config{Buffer: 4})
	fast := mustSubscribe(t, h, alice, "s1", true, "")
	slow := mustSubscribe(t, h, alice, "s1", true, "")
	waitFor(t, "first call", func() bool { return src.callCount(alice) == 1 && len(clk.pending()) == 1 })

	var want, got []string
	for round := range 5 {
		want = append(want, src.message(alice, "c1", "a"), src.message(alice, "c1", "b"))
		clk.Advance(convoEvery)
		waitFor(t, "poll", func() bool { return src.callCount(alice) == round+2 && len(clk.pending()) == 1 })
		evs, _ := drain(h, fast)
		got = append(got, revs(evs)...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("fast subscriber got %v, want %v", got, want)
	}
	evs, _ := drain(h, slow)
	if g := revs(evs); !slices.Equal(g, []string{"resync"}) {
		t.Fatalf("slow subscriber got %v, want [resync]", g)
	}
	// After the resync it follows live again.
	next := src.message(alice, "c1", "c")
	clk.Advance(convoEvery)
	waitFor(t, "poll", func() bool { return src.callCount(alice) == 7 && len(clk.pending()) == 1 })
	if evs, _ := drain(h, slow); !slices.Equal(revs(evs), []string{next}) {
		t.Fatalf("after resync got %v", revs(evs))
	}
}

func TestResumeFromLastEventID(t *testing.T) {
	src := newFakeSource()
	h, clk := newTestHub(t, src, Config{Buffer: 3})
	live := mustSubscribe(t, h, alice, "s1", true, "")
	waitFor(t, "first call", func() bool { return src.callCount(alice) == 1 && len(clk.pending()) == 1 })
	var r []string
	for range 5 {
		r = append(r, src.message(alice, "c1", "x"))
	}
	clk.Advance(convoEvery)
	waitFor(t, "poll", func() bool { return src.callCount(alice) == 2 && len(clk.pending()) == 1 })
	drain(h, live)
	// The ring now holds r[2..4]; its floor is r[1].
	tests := []struct {
		name   string
		lastID string
		want   []string
	}{
		{"replays only newer events", r[2], r[3:]},
		{"at the floor replays the whole ring", r[1], r[2:]},
		{"up to date gets nothing", r[4], nil},
		{"older than the ring gets resync", r[0], []string{"resync"}},
		{"newer than anything sent gets resync", r[4] + "z", []string{"resync"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSubscribe(t, h, alice, "s1", true, tt.lastID)
			defer h.unsubscribe(s)
			evs, _ := drain(h, s)
			if got := revs(evs); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecodeEntryMapsLogTypesToKinds(t *testing.T) {
	msg := &chat.ConvoDefs_MessageView{Id: "m1", Rev: "r", Text: "hi"}
	reaction := &chat.ConvoDefs_ReactionView{Value: "👍"}
	tests := []struct {
		name    string
		elem    *chat.ConvoGetLog_Output_Logs_Elem
		kind    Kind
		typ     string
		message bool
		removed bool
	}{
		{"create message is message", &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogCreateMessage: &chat.ConvoDefs_LogCreateMessage{Rev: "r1", ConvoId: "c", Message: &chat.ConvoDefs_LogCreateMessage_Message{ConvoDefs_MessageView: msg}}}, KindMessage, "chat.bsky.convo.defs#logCreateMessage", true, false},
		{"delete message is delete", &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogDeleteMessage: &chat.ConvoDefs_LogDeleteMessage{Rev: "r1", ConvoId: "c", Message: &chat.ConvoDefs_LogDeleteMessage_Message{ConvoDefs_MessageView: msg}}}, KindDelete, "chat.bsky.convo.defs#logDeleteMessage", true, false},
		{"add reaction is reaction", &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogAddReaction: &chat.ConvoDefs_LogAddReaction{Rev: "r1", ConvoId: "c", Reaction: reaction, Message: &chat.ConvoDefs_LogAddReaction_Message{ConvoDefs_MessageView: msg}}}, KindReaction, "chat.bsky.convo.defs#logAddReaction", true, false},
		{"remove reaction is reaction removed", &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogRemoveReaction: &chat.ConvoDefs_LogRemoveReaction{Rev: "r1", ConvoId: "c", Reaction: reaction, Message: &chat.ConvoDefs_LogRemoveReaction_Message{ConvoDefs_MessageView: msg}}}, KindReaction, "chat.bsky.convo.defs#logRemoveReaction", true, true},
		{"read message is unread", &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogReadMessage: &chat.ConvoDefs_LogReadMessage{Rev: "r1", ConvoId: "c", Message: &chat.ConvoDefs_LogReadMessage_Message{ConvoDefs_MessageView: msg}}}, KindUnread, "chat.bsky.convo.defs#logReadMessage", true, false},
		{"read convo is unread", &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogReadConvo: &chat.ConvoDefs_LogReadConvo{Rev: "r1", ConvoId: "c", Message: &chat.ConvoDefs_LogReadConvo_Message{ConvoDefs_MessageView: msg}}}, KindUnread, "chat.bsky.convo.defs#logReadConvo", true, false},
		{"begin convo is convo", &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogBeginConvo: &chat.ConvoDefs_LogBeginConvo{Rev: "r1", ConvoId: "c"}}, KindConvo, "chat.bsky.convo.defs#logBeginConvo", false, false},
		{"accept convo is convo", &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogAcceptConvo: &chat.ConvoDefs_LogAcceptConvo{Rev: "r1", ConvoId: "c"}}, KindConvo, "chat.bsky.convo.defs#logAcceptConvo", false, false},
		{"leave convo is convo", &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogLeaveConvo: &chat.ConvoDefs_LogLeaveConvo{Rev: "r1", ConvoId: "c"}}, KindConvo, "chat.bsky.convo.defs#logLeaveConvo", false, false},
		{"mute convo is convo", &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogMuteConvo: &chat.ConvoDefs_LogMuteConvo{Rev: "r1", ConvoId: "c"}}, KindConvo, "chat.bsky.convo.defs#logMuteConvo", false, false},
		{"unmute convo is convo", &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogUnmuteConvo: &chat.ConvoDefs_LogUnmuteConvo{Rev: "r1", ConvoId: "c"}}, KindConvo, "chat.bsky.convo.defs#logUnmuteConvo", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok := decodeEntry(tt.elem)
			if !ok {
				t.Fatal("not decoded")
			}
			if ev.Kind != tt.kind || ev.Rev != "r1" || ev.ConvoID != "c" || ev.Type != tt.typ {
				t.Fatalf("got kind %q rev %q convo %q type %q", ev.Kind, ev.Rev, ev.ConvoID, ev.Type)
			}
			if (ev.Message != nil) != tt.message || ev.ReactionRemoved != tt.removed {
				t.Fatalf("message %v removed %v", ev.Message != nil, ev.ReactionRemoved)
			}
			if tt.kind == KindReaction && ev.Reaction != reaction {
				t.Fatal("reaction not set")
			}
			if len(ev.JSON) == 0 {
				t.Fatal("no JSON")
			}
		})
	}
	t.Run("unknown type is skipped", func(t *testing.T) {
		var e chat.ConvoGetLog_Output_Logs_Elem
		if err := e.UnmarshalJSON([]byte(`{"$type":"chat.bsky.convo.defs#logFuture","rev":"r9","convoId":"c"}`)); err != nil {
			t.Fatal(err)
		}
		if _, ok := decodeEntry(&e); ok {
			t.Fatal("unknown type decoded")
		}
	})
}

func TestEmptyLogThenFirstEventIsDelivered(t *testing.T) {
	// A new account's log is empty: the first call returns no cursor, so
	// later calls are made without one and everything they return is new.
	src := newFakeSource()
	h, clk := newTestHub(t, src, Config{})
	s := mustSubscribe(t, h, alice, "s1", false, "")
	waitFor(t, "first call", func() bool { return src.callCount(alice) == 1 && len(clk.pending()) == 1 })
	first := src.message(alice, "c1", "first ever")
	clk.Advance(inboxEvery)
	waitFor(t, "second call", func() bool { return src.callCount(alice) == 2 && len(clk.pending()) == 1 })
	if evs, _ := drain(h, s); !slices.Equal(revs(evs), []string{first}) {
		t.Fatalf("got %v, want [%s]", revs(evs), first)
	}
}

func TestFullPageIsFollowedAtOnce(t *testing.T) {
	// A page of catchUpPage entries may have more behind it: the poller
	// calls again without waiting for the interval.
	src := pagedSource{newFakeSource(), catchUpPage}
	h, clk := newTestHub(t, src, Config{})
	s := mustSubscribe(t, h, alice, "s1", false, "")
	waitFor(t, "first call", func() bool { return src.callCount(alice) == 1 && len(clk.pending()) == 1 })
	var want []string
	for range catchUpPage + 20 {
		want = append(want, src.message(alice, "c1", "burst"))
	}
	clk.Advance(inboxEvery)
	waitFor(t, "two calls for two pages", func() bool { return src.callCount(alice) == 3 && len(clk.pending()) == 1 })
	if evs, _ := drain(h, s); !slices.Equal(revs(evs), want) {
		t.Fatalf("got %d events, want %d", len(evs), len(want))
	}
}

// pagedSource returns at most limit entries per call, like devchat.
type pagedSource struct {
	*fakeSource
	limit int
}

func (p pagedSource) GetLog(ctx context.Context, user User, cursor string) (*chat.ConvoGetLog_Output, error) {
	out, err := p.fakeSource.GetLog(ctx, user, cursor)
	if err != nil || cursor == "" || len(out.Logs) <= p.limit {
		return out, err
	}
	out.Logs = out.Logs[:p.limit]
	last, _, _ := commonFields(unionMember(out.Logs[p.limit-1]))
	out.Cursor = &last
	return out, nil
}
