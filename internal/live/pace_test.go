package live

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/budget"
	"github.com/skydm/skydm/internal/lex/chat"
)

// triplePacer stretches every interval threefold and records what it was
// asked.
type triplePacer struct {
	mu    sync.Mutex
	asked map[User]time.Duration
}

func (p *triplePacer) Pace(u User, base time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked[u] = base
	return 3 * base
}

func TestPacerSetsThePollInterval(t *testing.T) {
	src := newFakeSource()
	p := &triplePacer{asked: map[User]time.Duration{}}
	h, clk := newTestHub(t, src, Config{Pacer: p})
	mustSubscribe(t, h, alice, "s1", true, "")
	waitFor(t, "a wait of the paced conversation interval", func() bool {
		return src.callCount(alice) == 1 && durationsEqual(clk.pending(), 3*convoEvery)
	})
	clk.Advance(convoEvery)
	if n := src.callCount(alice); n != 1 {
		t.Fatalf("polled again after the base interval (%d calls); the paced one had not passed", n)
	}
	p.mu.Lock()
	base := p.asked[User{DID: alice}]
	p.mu.Unlock()
	if base != convoEvery {
		t.Errorf("pacer asked with base %s for %s; want the conversation interval %s", base, alice, convoEvery)
	}
}

func TestPollsAreBackgroundWork(t *testing.T) {
	var mu sync.Mutex
	var marks []bool
	src := LogSourceFunc(func(ctx context.Context, _ User, _ string) (*chat.ConvoGetLog_Output, error) {
		mu.Lock()
		defer mu.Unlock()
		marks = append(marks, budget.IsBackground(ctx))
		return &chat.ConvoGetLog_Output{}, nil
	})
	h, _ := newTestHub(t, src, Config{})
	mustSubscribe(t, h, alice, "s1", true, "")
	waitFor(t, "a poll", func() bool { mu.Lock(); defer mu.Unlock(); return len(marks) > 0 })
	mu.Lock()
	defer mu.Unlock()
	if !marks[0] {
		t.Error("the poller's getLog context is not marked budget.Background: polls would take the foreground's reserve")
	}
}

// TestBudgetRefusalRetriesSoonAfterItsRetryAt: a poll the instance's own
// budget did not send asked nobody upstream; the poller tries again at the
// budget's RetryAt (plus jitter up to a quarter interval, so refused
// pollers do not retry in step), not a whole interval later, so a user
// refused once is not left behind those whose polls went out.
func TestBudgetRefusalRetriesSoonAfterItsRetryAt(t *testing.T) {
	src := newFakeSource()
	h, clk := newTestHub(t, src, Config{})
	src.failNext(alice, &apperr.Error{Code: apperr.RateLimited, Reason: apperr.ReasonBudget, RetryAt: clk.Now().Add(time.Second)})
	mustSubscribe(t, h, alice, "s1", true, "")
	want := time.Second + convoEvery/4 // the test hub's jitter is its ceiling
	waitFor(t, "the wait after a budget refusal", func() bool {
		return src.callCount(alice) == 1 && durationsEqual(clk.pending(), want)
	})
	clk.Advance(want)
	waitFor(t, "the retry", func() bool { return src.callCount(alice) == 2 })
}
