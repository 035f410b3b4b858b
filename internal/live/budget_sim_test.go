package live

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/budget"
	"github.com/skydm/skydm/internal/lex/chat"
)

// simHost is the PDS host of every simulated user.
const simHost = "pds.example"

// countingPDS plays a PDS that limits requests per client IP as Bluesky's
// do: Limit per fixed Window, 429 past it, ratelimit-* headers on every
// answer. Every request comes from one client, the instance.
type countingPDS struct {
	clk    *fakeClock
	limit  int
	window time.Duration
	others int // requests other clients on the same IP make at the start of each window

	mu      sync.Mutex
	start   time.Time // of the current window
	used    int       // requests counted in it
	served  []time.Time
	tooMany int
}

func (p *countingPDS) RoundTrip(req *http.Request) (*http.Response, error) {
	now := p.clk.Now()
	p.mu.Lock()
	if p.start.IsZero() || !now.Before(p.start.Add(p.window)) {
		p.start, p.used = now, p.others
	}
	p.used++
	status := http.StatusOK
	if p.used > p.limit {
		status = http.StatusTooManyRequests
		p.tooMany++
	} else {
		p.served = append(p.served, now)
	}
	h := http.Header{}
	h.Set("RateLimit-Limit", strconv.Itoa(p.limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(0, p.limit-p.used)))
	h.Set("RateLimit-Reset", strconv.FormatInt(p.start.Add(p.window).Unix(), 10))
	h.Set("RateLimit-Policy", fmt.Sprintf("%d;w=%d", p.limit, int(p.window.Seconds())))
	p.mu.Unlock()
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

// maxInWindow is the most requests served in any window of length w.
func (p *countingPDS) maxInWindow(w time.Duration) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	best, j := 0, 0
	for i := range p.served {
		for p.served[i].Sub(p.served[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// pacerFunc adapts a function to Pacer.
type pacerFunc func(User, time.Duration) time.Duration

func (f pacerFunc) Pace(u User, base time.Duration) time.Duration { return f(u, base) }

// budgetSim is a hub whose users all poll one PDS host through the
// instance's budget and pacer, on a fake clock.
type budgetSim struct {
	tb     testing.TB
	clk    *fakeClock
	pds    *countingPDS
	budget *budget.Budget
	pacer  *budget.Pacer
	client *http.Client
	hub    *Hub

	subscribed int
	inflight   atomic.Int64
	fgWaits    []time.Duration // foreground waits for a token (fake time)

	mu        sync.Mutex
	polls     map[syntax.DID][]time.Time
	poll429   int // 429s that reached a poller
	refusedBg int // polls the budget did not send
}

func newBudgetSim(tb testing.TB, users int) *budgetSim {
	tb.Helper()
	clk := newFakeClock()
	s := &budgetSim{tb: tb, clk: clk, polls: map[syntax.DID][]time.Time{}}
	s.pds = &countingPDS{clk: clk, limit: 3000, window: 5 * time.Minute}
	s.budget = budget.New(budget.Config{Now: clk.Now, Sleep: func(ctx context.Context, d time.Duration) error {
		s.fgWaits = append(s.fgWaits, d) // only the test goroutine sends foreground requests
		clk.Advance(d)
		return nil
	}})
	s.pacer = budget.NewPacer(s.budget, 0)
	s.client = &http.Client{Transport: s.budget.Transport(s.pds)}
	h := New(Config{
		Source: LogSourceFunc(s.getLog),
		Now:    clk.Now,
		Pacer: pacerFunc(func(u User, base time.Duration) time.Duration {
			return s.pacer.Pace(u.DID.String(), base)
		}),
	})
	h.newTimer = clk.timer
	h.jitter = func(ceil time.Duration) time.Duration { return ceil }
	runHub(tb, h)
	s.hub = h
	return s
}

// getLog is the users' LogSource: one getLog through the budget.
func (s *budgetSim) getLog(ctx context.Context, u User, cursor string) (*chat.ConvoGetLog_Output, error) {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+simHost+"/xrpc/chat.bsky.convo.getLog?cursor="+cursor, nil)
	resp, err := s.client.Do(req)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if apperr.ReasonOf(err) == apperr.ReasonBudget {
			s.refusedBg++
		}
		return nil, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests {
		s.poll429++
		return nil, apperr.New(apperr.RateLimited, "429")
	}
	s.polls[u.DID] = append(s.polls[u.DID], s.clk.Now())
	rev := "3l0"
	return &chat.ConvoGetLog_Output{Cursor: &rev}, nil
}

func simUser(i int) syntax.DID { return syntax.DID(fmt.Sprintf("did:plc:user%05d", i)) }

// open connects a page of user i (a conversation or the inbox).
func (s *budgetSim) open(i int, convo bool) {
	s.pacer.SetHost(simUser(i).String(), simHost) // production: the LogSource, from the session's host
	if _, err := s.hub.subscribe(User{DID: simUser(i), SessionID: "s"}, convo, false, ""); err != nil {
		s.tb.Fatalf("subscribe: %v", err)
	}
	s.subscribed++
}

// settle waits until every poller waits on its timer and no call is
// running.
func (s *budgetSim) settle() {
	waitFor(s.tb, "pollers to settle", func() bool {
		return len(s.clk.pending()) == s.subscribed && s.inflight.Load() == 0
	})
}

// run advances the clock by total in steps, settling after each, and
// calls each (if not nil) at every step.
func (s *budgetSim) run(total, step time.Duration, each func(elapsed time.Duration)) {
	s.settle()
	for elapsed := time.Duration(0); elapsed < total; elapsed += step {
		if each != nil {
			each(elapsed)
		}
		s.clk.Advance(step)
		s.settle()
	}
}

// send is one foreground request (a send) through the budget; it returns
// the status, or the error the person would see.
func (s *budgetSim) send() (int, error) {
	req, _ := http.NewRequest(http.MethodPost, "https://"+simHost+"/xrpc/chat.bsky.convo.sendMessage", strings.NewReader("{}"))
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// pollsSince returns each user's polls since t.
func (s *budgetSim) pollsSince(t time.Time) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int, 0, len(s.polls))
	for _, ts := range s.polls {
		n := 0
		for _, at := range ts {
			if !at.Before(t) {
				n++
			}
		}
		out = append(out, n)
	}
	return out
}

// TestBudgetSimulation200Users is the budget proof on a fake
// clock: 200 users with a conversation open on one PDS host, 10 minutes,
// against a PDS that answers 429 past 3,000 requests per 5 minutes, while
// one of them sends a message every 5 seconds. No 429 reaches anyone, the
// served requests stay within the configured limit in every 5-minute
// window, every send goes out without waiting, and the pollers share the
// background rate evenly (each about 200 ÷ rate seconds apart).
func TestBudgetSimulation200Users(t *testing.T) {
	const users = 200
	s := newBudgetSim(t, users)
	for i := range users {
		s.open(i, true)
	}
	start := s.clk.Now()
	var sends, sendFailures int
	s.run(10*time.Minute, time.Second, func(elapsed time.Duration) {
		if elapsed%(5*time.Second) != 0 {
			return
		}
		sends++
		if status, err := s.send(); err != nil || status != http.StatusOK {
			sendFailures++
			t.Errorf("send at %s: status %d, err %v", elapsed, status, err)
		}
	})

	if s.pds.tooMany != 0 || s.poll429 != 0 {
		t.Errorf("the PDS answered 429 %d times (%d reached pollers)", s.pds.tooMany, s.poll429)
	}
	limit := s.budget.Config().Limit
	if n := s.pds.maxInWindow(5 * time.Minute); n > limit {
		t.Errorf("%d requests served in one 5-minute window; configured limit %d", n, limit)
	}
	if len(s.fgWaits) != 0 {
		t.Errorf("sends waited for a token: %v", s.fgWaits)
	}
	// Steady state: the last 5 minutes.
	counts := s.pollsSince(start.Add(5 * time.Minute))
	if len(counts) != users {
		t.Fatalf("%d of %d users polled", len(counts), users)
	}
	lo, hi, sum := slices.Min(counts), slices.Max(counts), 0
	for _, c := range counts {
		sum += c
	}
	mean := float64(sum) / users
	interval := 300 / mean
	_, bgRate := s.budget.Pressure(simHost)
	want := users / bgRate
	if interval < 0.8*want || interval > 1.25*want {
		t.Errorf("mean poll interval %.1f s; want about %.1f s (200 ÷ background rate %.2f/s)", interval, want, bgRate)
	}
	if float64(hi) > 1.5*float64(lo) {
		t.Errorf("polls per user in the last 5 minutes range %d–%d: not a fair share", lo, hi)
	}
	st := s.budget.Snapshot()[0]
	t.Logf("200 users, conversation open, 10 min: poll interval %.1f s (base 4 s, stretch %.2f×), polls/user in the last 5 min %d–%d (%.2f/min), "+
		"max served in a 5-min window %d (limit %d, host 3000), 429s %d, polls refused by the budget %d, sends %d all without waiting",
		interval, s.pacer.Snapshot()[0].Stretch, lo, hi, mean/5, s.pds.maxInWindow(5*time.Minute), limit, s.pds.tooMany, st.RefusedBackground, sends)
}

// TestBudgetSimulationSharedIP: someone else on the instance's IP (another
// program, or an instance without a budget) spends 2,000 of the PDS's
// 3,000 per window. The ratelimit-remaining the PDS returns tightens the
// budget: still no 429 reaches a poller or a send, and every send goes out.
func TestBudgetSimulationSharedIP(t *testing.T) {
	const users = 200
	s := newBudgetSim(t, users)
	s.pds.others = 2000
	for i := range users {
		s.open(i, true)
	}
	sends := 0
	s.run(10*time.Minute, time.Second, func(elapsed time.Duration) {
		if elapsed%(5*time.Second) != 0 {
			return
		}
		sends++
		if status, err := s.send(); err != nil || status != http.StatusOK {
			t.Errorf("send at %s: status %d, err %v", elapsed, status, err)
		}
	})
	if s.pds.tooMany != 0 || s.poll429 != 0 {
		t.Errorf("the PDS answered 429 %d times (%d reached pollers)", s.pds.tooMany, s.poll429)
	}
	st := s.budget.Snapshot()[0]
	if st.SentBackground == 0 {
		t.Error("no poll was sent at all")
	}
	t.Logf("shared IP (2000 of 3000 per window used by others): polls sent %d, refused by the budget %d, sends %d (waits %v), 429s %d",
		st.SentBackground, st.RefusedBackground, sends, s.fgWaits, s.pds.tooMany)
}
