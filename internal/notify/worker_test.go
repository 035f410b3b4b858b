package notify_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/notify/notifytest"
	"github.com/skydm/skydm/internal/pgtest"
)

const (
	alice    = syntax.DID("did:plc:alice")
	bob      = syntax.DID("did:plc:bob")
	carol    = syntax.DID("did:plc:carol")
	dave     = syntax.DID("did:plc:dave")
	notifier = syntax.DID("did:plc:notifier")
)

// clock is a manual clock shared by the worker and the fake chat service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t     *testing.T
	db    interface{ Close() error }
	cfg   notify.Config
	clock *clock
	chat  *notifytest.Server
	w     *notify.Worker
	seq   int
}

func directory() identity.Directory {
	dir := identity.NewMockDirectory()
	for did, h := range map[syntax.DID]string{alice: "alice.test", bob: "bob.test", carol: "carol.test", notifier: "notifier.test"} {
		dir.Insert(identity.Identity{DID: did, Handle: syntax.Handle(h)})
	}
	return dir
}

func newEnv(t *testing.T, mod func(*notify.Config)) *env {
	t.Helper()
	sdb, err := db.Open(context.Background(), pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	clk := &clock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	srv := notifytest.NewServer(clk.Now)
	cfg := notify.Config{
		DB:            sdb,
		Sender:        srv.Sender(),
		Directory:     directory(),
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:           clk.Now,
		Jitter:        func(time.Duration) time.Duration { return 0 },
		PollInterval:  2 * time.Millisecond,
		CallTimeout:   2 * time.Second,
		LeaseDuration: 30 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	w, err := notify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, db: sdb, cfg: cfg, clock: clk, chat: srv, w: w}
}

// start runs w until the test ends or the returned stop is called; stop
// waits for Run to return.
func start(t *testing.T, w *notify.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return within 10s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// enqueue adds a change-request DM from sender (the requester unless
// requester is given) to recipient.
func (e *env) enqueue(sender, recipient syntax.DID, requester ...syntax.DID) int64 {
	e.t.Helper()
	req := sender
	if len(requester) > 0 {
		req = requester[0]
	}
	e.seq++
	subject := syntax.ATURI(fmt.Sprintf("at://%s/dev.skydm.changeRequest/3kcr%06d", req, e.seq))
	msg, err := notify.ChangeRequestMessage(notify.MessageParams{
		ProjectName:  "Widgets",
		Title:        fmt.Sprintf("Fix bug %d", e.seq),
		URL:          fmt.Sprintf("https://skydm.example/change-requests/%s/3kcr%06d", req, e.seq),
		SubjectURI:   subject,
		RecipientDID: recipient,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	id, err := notify.Enqueue(context.Background(), e.cfg.DB, notify.Delivery{
		SubjectURI: subject, RequesterDID: req, SenderDID: sender, RecipientDID: recipient, Message: msg,
	}, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	e.w.Wake()
	return id
}

func (e *env) status(id int64) notify.Status {
	e.t.Helper()
	s, err := notify.StatusByID(context.Background(), e.cfg.DB, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// waitState polls until row id is in state want.
func (e *env) waitState(id int64, want notify.State) notify.Status {
	e.t.Helper()
	var s notify.Status
	waitFor(e.t, fmt.Sprintf("row %d %s", id, want), func() bool {
		s = e.status(id)
		return s.State == want
	})
	return s
}

// waitCycles waits until the worker has looked for due rows n more times,
// so a test can check that something did NOT happen without sleeping.
func (e *env) waitCycles(w *notify.Worker, n int64) {
	e.t.Helper()
	c0 := notify.LeaseCycles(w)
	w.Wake()
	waitFor(e.t, "lease cycles", func() bool { return notify.LeaseCycles(w) >= c0+n })
}

// bubble runs a test of the worker in a synctest bubble: every timer,
// deadline and time.Now in it (the worker's poll, its call and lease
// timeouts, waitFor's deadline) is the bubble's fake time, which moves only
// when every goroutine in the bubble is blocked. So a loaded machine makes
// a test slower, never different: a call cannot time out because its
// goroutine was not scheduled, and waitFor gives up only after the worker
// has sat idle for its whole deadline. The worker's business clock (the
// env's manual clock) is still driven by the tests themselves. Every test
// of this file that runs a worker runs in one.
func bubble(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	synctest.Test(t, f)
}

// waitFor polls cond until it holds. Inside a bubble its deadline is in
// bubble time (see bubble).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func TestHappyPathSendsOneDMWithLinkFacet(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			e := newEnv(t, nil)
			start(t, e.w)
			id := e.enqueue(alice, bob)
			s := e.waitState(id, notify.StateSent)

			msgs := e.chat.Messages(alice, bob)
			if len(msgs) != 1 {
				t.Fatalf("messages = %d, want 1", len(msgs))
			}
			m := msgs[0]
			if s.SentMessageID != m.ID || s.ConvoID != m.ConvoID || s.Attempts != 1 || s.SentAt.IsZero() {
				t.Errorf("status = %+v, message %+v", s, m)
			}
			if !strings.Contains(m.Text, "Widgets") || !strings.Contains(m.Text, "Fix bug 1") {
				t.Errorf("text %q does not name the project and request", m.Text)
			}
			f := m.Input.Facets
			if len(f) != 1 || f[0].Features[0].RichtextFacet_Link == nil {
				t.Fatalf("facets = %+v", f)
			}
			link := f[0].Features[0].RichtextFacet_Link.Uri
			if got := m.Text[f[0].Index.ByteStart:f[0].Index.ByteEnd]; got != link || !strings.HasPrefix(link, "https://skydm.example/change-requests/") {
				t.Errorf("facet covers %q, link %q", got, link)
			}
			if got := e.chat.Calls(notifytest.MethodGetMessages, ""); got != 0 {
				t.Errorf("getMessages calls = %d on a first attempt, want 0", got)
			}
		})
	})
}

func TestUnavailableThreeTimesThenSuccessSendsExactlyOnce(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			e := newEnv(t, nil)
			e.chat.Inject(notifytest.Fault{Method: notifytest.MethodSend, Count: 3, Err: notifytest.Unavailable()})
			start(t, e.w)
			id := e.enqueue(alice, bob)
			s := e.waitState(id, notify.StateSent)
			if n := len(e.chat.Messages(alice, bob)); n != 1 {
				t.Fatalf("messages = %d, want 1", n)
			}
			if s.Attempts != 4 || e.chat.Calls(notifytest.MethodSend, "") != 4 {
				t.Errorf("attempts = %d, sends = %d, want 4 and 4", s.Attempts, e.chat.Calls(notifytest.MethodSend, ""))
			}
			// Each retry after a failed send looked for the marker first.
			if got := e.chat.Calls(notifytest.MethodGetMessages, ""); got != 3 {
				t.Errorf("getMessages calls = %d, want 3", got)
			}
		})
	})
}

func TestRateLimitedWaitsForRetryAtThenSendsOnce(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			e := newEnv(t, nil)
			t0 := e.clock.Now()
			e.chat.Inject(notifytest.Fault{Method: notifytest.MethodAvailability, Count: 1, Err: notifytest.RateLimited(t0.Add(2 * time.Second))})
			start(t, e.w)
			id := e.enqueue(alice, bob)
			var s notify.Status
			waitFor(t, "rate-limited attempt recorded", func() bool {
				s = e.status(id)
				return s.State == notify.StateQueued && s.ReasonCode == "RateLimited"
			})
			if want := t0.Add(2 * time.Second); !s.NextAttemptAt.Equal(want) {
				t.Fatalf("next_attempt_at = %v, want %v", s.NextAttemptAt, want)
			}
			if !strings.Contains(s.Reason, "slow down") {
				t.Errorf("reason = %q", s.Reason)
			}
			e.clock.Advance(2*time.Second - time.Millisecond)
			e.waitCycles(e.w, 3)
			if got := e.chat.Calls(notifytest.MethodAvailability, ""); got != 1 {
				t.Fatalf("availability calls before RetryAt = %d, want 1", got)
			}
			e.clock.Advance(time.Millisecond)
			e.w.Wake()
			e.waitState(id, notify.StateSent)
			if n := len(e.chat.Messages(alice, bob)); n != 1 {
				t.Fatalf("messages = %d, want 1", n)
			}
		})
	})
}

func TestRateLimitWaitIsBounded(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			retryIn  time.Duration // 0: the 429 says nothing
			wantWait time.Duration
		}{
			{"a RetryAt 5 hours ahead is capped at one hour", 5 * time.Hour, time.Hour},
			{"a 429 without RetryAt waits RateLimitWait", 0, 30 * time.Second},
		} {
			t.Run(tc.name, func(t *testing.T) {
				bubble(t, func(t *testing.T) {
					e := newEnv(t, nil)
					t0 := e.clock.Now()
					var at time.Time
					if tc.retryIn > 0 {
						at = t0.Add(tc.retryIn)
					}
					e.chat.Inject(notifytest.Fault{Method: notifytest.MethodAvailability, Count: 1, Err: notifytest.RateLimited(at)})
					start(t, e.w)
					id := e.enqueue(alice, bob)
					var s notify.Status
					waitFor(t, "rate-limited attempt recorded", func() bool {
						s = e.status(id)
						return s.ReasonCode == "RateLimited"
					})
					if want := t0.Add(tc.wantWait); !s.NextAttemptAt.Equal(want) {
						t.Fatalf("next_attempt_at = %v, want %v", s.NextAttemptAt, want)
					}
				})
			})
		}
	})
}

func TestHangTimesOutRetriesAndSendsOnce(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			after     bool // the hung call had already stored the message
			wantSends int
		}{
			{"hang before the send took effect: sent again once", false, 2},
			{"hang after the send took effect: marker found, not resent", true, 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				bubble(t, func(t *testing.T) {
					e := newEnv(t, func(c *notify.Config) { c.CallTimeout = 100 * time.Millisecond })
					e.chat.Inject(notifytest.Fault{Method: notifytest.MethodSend, Count: 1, Hang: true, After: tc.after})
					start(t, e.w)
					id := e.enqueue(alice, bob)
					s := e.waitState(id, notify.StateSent)
					msgs := e.chat.Messages(alice, bob)
					if len(msgs) != 1 {
						t.Fatalf("messages = %d, want 1", len(msgs))
					}
					if got := e.chat.Calls(notifytest.MethodSend, ""); got != tc.wantSends {
						t.Errorf("sendMessage calls = %d, want %d", got, tc.wantSends)
					}
					if s.SentMessageID != msgs[0].ID {
						t.Errorf("sent_message_id = %q, want %q", s.SentMessageID, msgs[0].ID)
					}
				})
			})
		}
	})
}

func TestCrashBetweenSendAndMarkDoesNotSendTwice(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			padding int // messages posted in the convo after the crash
		}{
			{"marker on the first page", 0},
			{"marker on the second page", 150},
			// A busy convo (hundreds of DMs during one lease, as when many
			// change requests are filed to one owner): the search goes back to
			// when the send started, not a fixed number of pages.
			{"marker behind 450 newer messages", 450},
		} {
			t.Run(tc.name, func(t *testing.T) {
				bubble(t, func(t *testing.T) {
					e := newEnv(t, nil)
					w1 := e.w
					notify.SetAfterSend(w1, func(int64) bool { return true })
					stop1 := start(t, w1)
					id := e.enqueue(alice, bob)
					waitFor(t, "the first worker's send", func() bool { return len(e.chat.Messages(alice, bob)) == 1 })
					stop1() // the worker "died" right after sendMessage returned
					if s := e.status(id); s.State != notify.StateSending {
						t.Fatalf("after the crash the row is %s, want still sending (leased)", s.State)
					}
					for i := 0; i < tc.padding; i++ {
						e.chat.Post(bob, alice, fmt.Sprintf("chatter %d", i))
					}

					w2, err := notify.New(e.cfg)
					if err != nil {
						t.Fatal(err)
					}
					start(t, w2)
					e.waitCycles(w2, 2)
					if s := e.status(id); s.State != notify.StateSending {
						t.Fatalf("a new worker took the row before its lease expired: %s", s.State)
					}
					e.clock.Advance(e.cfg.LeaseDuration)
					w2.Wake()
					s := e.waitState(id, notify.StateSent)
					msgs := e.chat.Messages(alice, bob)
					var fromAlice []notifytest.Message
					for _, m := range msgs {
						if m.Sender == alice {
							fromAlice = append(fromAlice, m)
						}
					}
					if len(fromAlice) != 1 || e.chat.Calls(notifytest.MethodSend, "") != 1 {
						t.Fatalf("DMs from alice = %d, sendMessage calls = %d; want 1 and 1", len(fromAlice), e.chat.Calls(notifytest.MethodSend, ""))
					}
					if s.SentMessageID != fromAlice[0].ID {
						t.Errorf("sent_message_id = %q, want the original %q", s.SentMessageID, fromAlice[0].ID)
					}
				})
			})
		}
	})
}

func TestNotFollowedIsRecordedWithReasonAndRetryDeliversAfterFollow(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			e := newEnv(t, nil)
			e.chat.SetGate(carol, notifytest.GateFollowing)
			start(t, e.w)
			id := e.enqueue(alice, carol)
			s := e.waitState(id, notify.StateNotDelivered)
			if s.ReasonCode != "NotFollowedBySender" ||
				s.Reason != "carol.test only accepts DMs from accounts they follow." ||
				s.Fix != "Ask them to follow you, or to allow DMs from everyone, then retry." {
				t.Fatalf("status = %q / %q / %q", s.ReasonCode, s.Reason, s.Fix)
			}
			if got := e.chat.Calls(notifytest.MethodSend, ""); got != 0 {
				t.Errorf("sendMessage calls = %d, want 0", got)
			}

			ctx := context.Background()
			for _, tc := range []struct {
				name string
				by   syntax.DID
				want apperr.Code
			}{
				{"signed out", "", apperr.Unauthorized},
				{"a stranger", bob, apperr.Forbidden},
			} {
				if err := e.w.Retry(ctx, id, tc.by); apperr.CodeOf(err) != tc.want {
					t.Errorf("Retry by %s: %v, want %s", tc.name, err, tc.want)
				}
			}
			if err := e.w.Retry(ctx, 999999, alice); apperr.CodeOf(err) != apperr.NotFound {
				t.Errorf("Retry of a missing row: %v, want NotFound", err)
			}

			// A retry while the gate is still closed fails again, and a second
			// retry within RetryCooldown is refused without a chat call.
			if err := e.w.Retry(ctx, id, alice); err != nil {
				t.Fatalf("Retry by the requester: %v", err)
			}
			e.waitState(id, notify.StateNotDelivered)
			calls := e.chat.Calls(notifytest.MethodAvailability, "")
			if err := e.w.Retry(ctx, id, carol); apperr.CodeOf(err) != apperr.RateLimited {
				t.Fatalf("second Retry within the cooldown: %v, want RateLimited", err)
			}
			if s := e.status(id); s.State != notify.StateNotDelivered {
				t.Fatalf("refused retry changed the state to %s", s.State)
			}
			if got := e.chat.Calls(notifytest.MethodAvailability, ""); got != calls {
				t.Fatalf("refused retry made %d chat calls", got-calls)
			}
			e.clock.Advance(notify.RetryCooldown)

			e.chat.Follow(carol, alice)
			if err := e.w.Retry(ctx, id, carol); err != nil { // the owner may retry too
				t.Fatalf("Retry by the owner: %v", err)
			}
			s = e.waitState(id, notify.StateSent)
			if s.Reason != "" || s.Fix != "" {
				t.Errorf("a sent row keeps reason %q fix %q", s.Reason, s.Fix)
			}
			if n := len(e.chat.Messages(alice, carol)); n != 1 {
				t.Fatalf("messages = %d, want 1", n)
			}
			if err := e.w.Retry(ctx, id, alice); apperr.CodeOf(err) != apperr.Conflict {
				t.Errorf("Retry of a sent row: %v, want Conflict", err)
			}
		})
	})
}

func TestRefusalsHaveHumanReasons(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		for _, tc := range []struct {
			name       string
			setup      func(*notifytest.Server)
			sender     syntax.DID
			requester  syntax.DID
			wantCode   string
			wantReason string
			wantFix    string
		}{
			{
				name:       "notifier not followed: fix names the notifier",
				setup:      func(s *notifytest.Server) { s.SetGate(carol, notifytest.GateFollowing) },
				sender:     notifier,
				requester:  alice,
				wantCode:   "NotFollowedBySender",
				wantReason: "carol.test only accepts DMs from accounts they follow.",
				wantFix:    "Ask them to follow notifier.test, or to allow DMs from everyone, then retry.",
			},
			{
				name:       "messages disabled",
				setup:      func(s *notifytest.Server) { s.SetGate(carol, notifytest.GateNobody) },
				sender:     alice,
				requester:  alice,
				wantCode:   "MessagesDisabled",
				wantReason: "carol.test does not accept DMs.",
			},
			{
				name: "blocked",
				setup: func(s *notifytest.Server) {
					s.Inject(notifytest.Fault{Method: notifytest.MethodAvailability, Count: -1,
						Err: &apperr.Error{Code: apperr.Forbidden, Reason: "Blocked"}})
				},
				sender:     alice,
				requester:  alice,
				wantCode:   "Blocked",
				wantReason: "There is a block between alice.test and carol.test, so Bluesky will not deliver the DM.",
			},
			{
				name: "unknown handle falls back to a label",
				setup: func(s *notifytest.Server) {
					s.SetGate(dave, notifytest.GateFollowing)
				},
				sender:     alice,
				requester:  alice,
				wantCode:   "NotFollowedBySender",
				wantReason: "The project's owner only accepts DMs from accounts they follow.",
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				bubble(t, func(t *testing.T) {
					e := newEnv(t, nil)
					tc.setup(e.chat)
					start(t, e.w)
					recipient := carol
					if strings.Contains(tc.name, "unknown") {
						recipient = dave
					}
					id := e.enqueue(tc.sender, recipient, tc.requester)
					s := e.waitState(id, notify.StateNotDelivered)
					if s.ReasonCode != tc.wantCode || s.Reason != tc.wantReason || (tc.wantFix != "" && s.Fix != tc.wantFix) {
						t.Errorf("got %q / %q / %q", s.ReasonCode, s.Reason, s.Fix)
					}
				})
			})
		}
	})
}

func TestSessionExpiredParksUntilResume(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			break_ func(*notifytest.Server)
			code   string
		}{
			{"expired session", func(s *notifytest.Server) { s.ExpireSession(alice, nil) }, "SessionExpired"},
			{"chat scope missing on send", func(s *notifytest.Server) {
				s.Inject(notifytest.Fault{Method: notifytest.MethodSend, Count: 1, Err: notifytest.ScopeMissing()})
			}, "ScopeMissing"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				bubble(t, func(t *testing.T) {
					e := newEnv(t, nil)
					tc.break_(e.chat)
					start(t, e.w)
					id := e.enqueue(alice, bob)
					s := e.waitState(id, notify.StateParkedAuth)
					if s.ReasonCode != tc.code || s.Reason == "" || s.Fix == "" {
						t.Fatalf("parked with %q / %q / %q", s.ReasonCode, s.Reason, s.Fix)
					}
					e.chat.RestoreSession(alice)
					e.waitCycles(e.w, 3)
					if s := e.status(id); s.State != notify.StateParkedAuth {
						t.Fatalf("row left parked_auth without Resume: %s", s.State)
					}
					if err := e.w.Resume(context.Background(), alice); err != nil {
						t.Fatal(err)
					}
					e.waitState(id, notify.StateSent)
					if n := len(e.chat.Messages(alice, bob)); n != 1 {
						t.Fatalf("messages = %d, want 1", n)
					}
				})
			})
		}
		t.Run("expired session message", func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				e := newEnv(t, nil)
				e.chat.ExpireSession(alice, nil)
				start(t, e.w)
				s := e.waitState(e.enqueue(alice, bob), notify.StateParkedAuth)
				if s.Reason != "alice.test’s sign-in to skydm has expired." || s.Fix != "Sign in to skydm again; the DM will be sent then." {
					t.Errorf("got %q / %q", s.Reason, s.Fix)
				}
			})
		})
	})
}

func TestParkedRowsAreRecheckedAndResumeOnSuccess(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			e := newEnv(t, func(c *notify.Config) { c.ParkedRecheck = time.Minute })
			e.chat.ExpireSession(alice, nil)
			start(t, e.w)
			ids := []int64{e.enqueue(alice, bob), e.enqueue(alice, carol), e.enqueue(alice, bob)}
			for _, id := range ids {
				e.waitState(id, notify.StateParkedAuth)
			}
			e.chat.RestoreSession(alice) // signed in, but the login hook did not call Resume
			e.clock.Advance(time.Minute)
			e.w.Wake()
			for _, id := range ids {
				e.waitState(id, notify.StateSent)
			}
			if got := e.chat.Calls(notifytest.MethodSend, ""); got != 3 {
				t.Errorf("sends = %d, want 3", got)
			}
		})
	})
}

func TestCircuitBreakerHoldsOnlyTheFailingSender(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			e := newEnv(t, func(c *notify.Config) {
				c.BreakerThreshold = 3
				c.BreakerCooldown = time.Minute
			})
			e.chat.Inject(notifytest.Fault{Method: notifytest.MethodAvailability, Sender: alice, Count: -1, Err: notifytest.Unavailable()})
			start(t, e.w)
			t0 := e.clock.Now()
			a1, a2 := e.enqueue(alice, bob), e.enqueue(alice, carol)
			c1 := e.enqueue(carol, bob)
			e.waitState(c1, notify.StateSent)
			waitFor(t, "three failures for alice", func() bool { return e.chat.Calls(notifytest.MethodAvailability, alice) >= 3 })
			waitFor(t, "alice's rows held", func() bool {
				return !e.status(a1).NextAttemptAt.Before(t0.Add(time.Minute)) && !e.status(a2).NextAttemptAt.Before(t0.Add(time.Minute))
			})
			e.waitCycles(e.w, 5)
			if got := e.chat.Calls(notifytest.MethodAvailability, alice); got != 3 {
				t.Fatalf("alice's calls while the breaker is open = %d, want 3", got)
			}
			// A new row for alice is held too.
			a3 := e.enqueue(alice, bob)
			e.waitCycles(e.w, 3)
			if got := e.chat.Calls(notifytest.MethodAvailability, alice); got != 3 {
				t.Fatalf("a new row of alice's was tried while the breaker is open (%d calls)", got)
			}
			e.chat.ClearFaults()
			e.clock.Advance(time.Minute)
			e.w.Wake()
			for _, id := range []int64{a1, a2, a3} {
				e.waitState(id, notify.StateSent)
			}
		})
	})
}

func TestGivesUpAfterMaxAgeWithReason(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			e := newEnv(t, func(c *notify.Config) {
				c.MaxAge = time.Hour
				c.Jitter = func(max time.Duration) time.Duration { return max } // deterministic backoff
				c.BreakerThreshold = 1000
			})
			e.chat.Inject(notifytest.Fault{Method: notifytest.MethodAvailability, Count: -1, Err: notifytest.Unavailable()})
			start(t, e.w)
			id := e.enqueue(alice, bob)
			var s notify.Status
			waitFor(t, "given up", func() bool {
				s = e.status(id)
				if s.State == notify.StateGivenUp {
					return true
				}
				if s.State == notify.StateQueued && s.Attempts > 0 {
					e.clock.Advance(10 * time.Minute)
					e.w.Wake()
				}
				return false
			})
			if s.Reason != "Bluesky's chat service kept failing for 1 hour." || s.Fix != "Retry to try again." || s.ReasonCode != "Unavailable" {
				t.Errorf("given up with %q / %q / %q", s.ReasonCode, s.Reason, s.Fix)
			}
			if !s.NextAttemptAt.After(time.Time{}) || s.Attempts < 2 {
				t.Errorf("attempts = %d", s.Attempts)
			}
			// Retry starts a new window and delivers once the service is back.
			e.chat.ClearFaults()
			if err := e.w.Retry(context.Background(), id, bob); err != nil {
				t.Fatal(err)
			}
			e.waitState(id, notify.StateSent)
		})
	})
}

func TestStopFinishesInFlightDelivery(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			e := newEnv(t, nil)
			e.chat.Latency = 100 * time.Millisecond
			stop := start(t, e.w)
			id := e.enqueue(alice, bob)
			waitFor(t, "delivery under way", func() bool { return e.chat.Calls(notifytest.MethodAvailability, "") > 0 })
			stop()
			if s := e.status(id); s.State != notify.StateSent {
				t.Fatalf("after a clean stop the in-flight row is %s, want sent", s.State)
			}
		})
	})
}

func TestStopReleasesLeaseOfAHungDeliveryAndANewWorkerSendsOnce(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			e := newEnv(t, func(c *notify.Config) {
				c.ShutdownGrace = 50 * time.Millisecond
				c.CallTimeout = 20 * time.Second
				c.LeaseDuration = time.Minute
			})
			e.chat.Inject(notifytest.Fault{Method: notifytest.MethodSend, Count: 1, Hang: true})
			stop := start(t, e.w)
			id := e.enqueue(alice, bob)
			waitFor(t, "send under way", func() bool { return e.chat.Calls(notifytest.MethodSend, "") == 1 })
			stop()
			s := e.status(id)
			if s.State != notify.StateQueued || !s.NextAttemptAt.Equal(e.clock.Now()) {
				t.Fatalf("after stop the row is %s due %v, want queued and due now", s.State, s.NextAttemptAt)
			}
			w2, err := notify.New(e.cfg)
			if err != nil {
				t.Fatal(err)
			}
			start(t, w2)
			e.waitState(id, notify.StateSent)
			if n := len(e.chat.Messages(alice, bob)); n != 1 {
				t.Fatalf("messages = %d, want 1", n)
			}
			if got := e.chat.Calls(notifytest.MethodGetMessages, ""); got != 1 {
				t.Errorf("getMessages calls = %d, want 1 (the marker check)", got)
			}
		})
	})
}

func TestEnqueueIsIdempotentPerChangeRequestAndRecipient(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			e := newEnv(t, nil)
			subject := syntax.ATURI("at://did:plc:alice/dev.skydm.changeRequest/3kabc")
			msg, err := notify.ChangeRequestMessage(notify.MessageParams{ProjectName: "P", Title: "T",
				URL: "https://skydm.example/x", SubjectURI: subject, RecipientDID: bob})
			if err != nil {
				t.Fatal(err)
			}
			d := notify.Delivery{SubjectURI: subject, RequesterDID: alice, SenderDID: alice, RecipientDID: bob, Message: msg}
			ctx := context.Background()
			id1, err := notify.Enqueue(ctx, e.cfg.DB, d, e.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			id2, err := notify.Enqueue(ctx, e.cfg.DB, d, e.clock.Now())
			if err != nil || id1 != id2 {
				t.Fatalf("second enqueue: id %d err %v, want %d", id2, err, id1)
			}
			st, err := notify.StatusesFor(ctx, e.cfg.DB, []syntax.ATURI{subject})
			if err != nil || len(st[subject]) != 1 {
				t.Fatalf("rows = %v err %v, want 1", st, err)
			}
			d.SenderDID = bob
			if _, err := notify.Enqueue(ctx, e.cfg.DB, d, e.clock.Now()); err == nil {
				t.Error("enqueue with sender == recipient succeeded")
			}
		})
	})
}

func TestManySendersConcurrentlyNoDuplicates(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			e := newEnv(t, func(c *notify.Config) { c.Concurrency = 8 })
			start(t, e.w)
			senders := make([]syntax.DID, 10)
			for i := range senders {
				senders[i] = syntax.DID(fmt.Sprintf("did:plc:user%d", i))
			}
			var mu sync.Mutex
			var ids []int64
			var wg sync.WaitGroup
			for i, s := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; j < 20; j++ {
						subject := syntax.ATURI(fmt.Sprintf("at://%s/dev.skydm.changeRequest/3k%04d", s, j))
						msg, err := notify.ChangeRequestMessage(notify.MessageParams{ProjectName: "P", Title: "T",
							URL: fmt.Sprintf("https://skydm.example/%d/%d", i, j), SubjectURI: subject, RecipientDID: bob})
						if err != nil {
							t.Error(err)
							return
						}
						id, err := notify.Enqueue(context.Background(), e.cfg.DB, notify.Delivery{SubjectURI: subject,
							RequesterDID: s, SenderDID: s, RecipientDID: bob, Message: msg}, e.clock.Now())
						if err != nil {
							t.Error(err)
							return
						}
						e.w.Wake()
						mu.Lock()
						ids = append(ids, id)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			for _, id := range ids {
				e.waitState(id, notify.StateSent)
			}
			if len(ids) != 200 {
				t.Fatalf("rows %d, want 200", len(ids))
			}
			e.assertSentOnce(200)
		})
	})
}
