package budget

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/apperr"
)

// clock is a manual clock; sleeping on it advances it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestBudget returns a Budget on a fake clock whose foreground waits
// advance the clock; slept collects them.
func newTestBudget(cfg Config) (*Budget, *clock, *[]time.Duration) {
	clk := newClock()
	var slept []time.Duration
	var mu sync.Mutex
	cfg.Now = clk.Now
	cfg.Sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		slept = append(slept, d)
		mu.Unlock()
		clk.Advance(d)
		return ctx.Err()
	}
	return New(cfg), clk, &slept
}

// upstream is a RoundTripper standing in for a host: it counts what
// reaches it and answers with hdr.
type upstream struct {
	mu    sync.Mutex
	calls int
	hdr   func() http.Header
}

func (u *upstream) RoundTrip(req *http.Request) (*http.Response, error) {
	u.mu.Lock()
	u.calls++
	u.mu.Unlock()
	h := http.Header{}
	if u.hdr != nil {
		h = u.hdr()
	}
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls
}

// send makes one request to host through rt with ctx.
func send(t *testing.T, rt http.RoundTripper, ctx context.Context, host string) error {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+host+"/xrpc/chat.bsky.convo.getLog", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

func TestBucketNeverLetsAWindowPastTheLimit(t *testing.T) {
	// A greedy foreground caller for 20 minutes of fake time: every
	// 300-second window sees at most Limit requests, and the sustained
	// rate fills it.
	b, clk, _ := newTestBudget(Config{Limit: 300, Window: 300 * time.Second})
	up := &upstream{}
	rt := b.Transport(up)
	start := clk.Now()
	var at []time.Duration
	for clk.Now().Sub(start) < 20*time.Minute {
		if err := send(t, rt, context.Background(), "pds.example"); err != nil {
			t.Fatalf("foreground request refused at %s: %v", clk.Now().Sub(start), err)
		}
		at = append(at, clk.Now().Sub(start))
	}
	j := 0
	for i := range at {
		for at[i]-at[j] >= 300*time.Second {
			j++
		}
		if n := i - j + 1; n > 300 {
			t.Fatalf("%d requests within 300 s ending at %s; limit 300", n, at[i])
		}
	}
	// 30 at once (the burst), then 270 per 300 s: about 1,110 in 20 minutes.
	if n := len(at); n < 1100 || n > 1111 {
		t.Errorf("%d requests in 20 minutes; want about 1,110 (burst 30 + 0.9/s)", n)
	}
	if up.count() != len(at) {
		t.Errorf("upstream saw %d requests, sent %d", up.count(), len(at))
	}
}

func TestBackgroundLeavesTheReserveToForeground(t *testing.T) {
	b, _, slept := newTestBudget(Config{Limit: 1000, Window: time.Hour, Reserve: 0.25})
	up := &upstream{}
	rt := b.Transport(up)
	bg := Background(context.Background())
	// Capacity 100: background may spend down to the reserve of 25.
	sent := 0
	var err error
	for ; sent < 200; sent++ {
		if err = send(t, rt, bg, "pds.example"); err != nil {
			break
		}
	}
	if sent != 75 {
		t.Fatalf("background sent %d of a burst of 100 before it was refused; want 75 (reserve 25)", sent)
	}
	e := apperr.As(err)
	if e == nil || e.Code != apperr.RateLimited || e.Reason != apperr.ReasonBudget || e.RetryAt.IsZero() {
		t.Fatalf("background refusal = %#v; want RateLimited, Reason %q, RetryAt set", err, apperr.ReasonBudget)
	}
	if up.count() != 75 {
		t.Errorf("upstream saw %d requests; the refused one must not be sent (want 75)", up.count())
	}
	// Foreground is never refused while tokens remain: all 25 go through
	// without waiting.
	for i := range 25 {
		if err := send(t, rt, context.Background(), "pds.example"); err != nil {
			t.Fatalf("foreground request %d refused with tokens left: %v", i+1, err)
		}
	}
	if len(*slept) != 0 {
		t.Errorf("foreground waited %v with tokens left", *slept)
	}
	// Another host's bucket is its own.
	if err := send(t, rt, bg, "other.example"); err != nil {
		t.Errorf("background request to another host refused: %v", err)
	}
}

func TestBackgroundRetryAtIsWhenTheReserveRefills(t *testing.T) {
	b, clk, _ := newTestBudget(Config{Limit: 1000, Window: 900 * time.Second, Reserve: 0.25})
	rt := b.Transport(&upstream{})
	bg := Background(context.Background())
	for send(t, rt, bg, "pds.example") == nil {
	}
	err := send(t, rt, bg, "pds.example")
	retry := apperr.As(err).RetryAt
	// Rate (1000-100)/900 = 1 token/s; tokens ≈ 25, background needs 26.
	if d := retry.Sub(clk.Now()); d < 500*time.Millisecond || d > 2*time.Second {
		t.Fatalf("RetryAt in %s; want about 1 s", d)
	}
	clk.Advance(retry.Sub(clk.Now()))
	if err := send(t, rt, bg, "pds.example"); err != nil {
		t.Errorf("background refused again at its RetryAt: %v", err)
	}
}

func TestForegroundWaitsBrieflyThenIsRefused(t *testing.T) {
	b, _, slept := newTestBudget(Config{Limit: 20, Window: 180 * time.Second, MaxWait: 5 * time.Second})
	rt := b.Transport(&upstream{})
	// Capacity 2, rate 18/180 = 0.1/s: a token every 10 s, longer than MaxWait.
	for i := range 2 {
		if err := send(t, rt, context.Background(), "pds.example"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	err := send(t, rt, context.Background(), "pds.example")
	if apperr.CodeOf(err) != apperr.RateLimited || apperr.ReasonOf(err) != apperr.ReasonBudget {
		t.Fatalf("foreground with no token for 10 s = %v; want the budget's RateLimited", err)
	}
	if msg := apperr.MessageOf(err); strings.Contains(msg, "pds.example") || strings.Contains(msg, "budget:") {
		t.Errorf("message %q shows internals", msg)
	}
	// With MaxWait above the next token's time it waits instead.
	b2, _, slept2 := newTestBudget(Config{Limit: 20, Window: 180 * time.Second, MaxWait: 15 * time.Second})
	rt2 := b2.Transport(&upstream{})
	for i := range 3 {
		if err := send(t, rt2, context.Background(), "pds.example"); err != nil {
			t.Fatalf("request %d with a 15 s wait allowed: %v", i, err)
		}
	}
	if len(*slept) != 0 || len(*slept2) != 1 || (*slept2)[0] > 10*time.Second {
		t.Errorf("waits = %v and %v; want none, then one of at most 10 s", *slept, *slept2)
	}
}

func TestForegroundWaitIsBoundedByItsDeadline(t *testing.T) {
	b, clk, slept := newTestBudget(Config{Limit: 20, Window: 180 * time.Second, MaxWait: time.Minute})
	rt := b.Transport(&upstream{})
	send(t, rt, context.Background(), "pds.example")
	send(t, rt, context.Background(), "pds.example")
	ctx, cancel := context.WithDeadline(context.Background(), clk.Now().Add(3*time.Second))
	defer cancel()
	if err := send(t, rt, ctx, "pds.example"); apperr.CodeOf(err) != apperr.RateLimited {
		t.Fatalf("a request whose deadline is before the next token = %v; want RateLimited at once", err)
	}
	if len(*slept) != 0 {
		t.Errorf("waited %v past the request's deadline", *slept)
	}
}

func pdsHeaders(limit, remaining int, reset time.Time, window int) http.Header {
	h := http.Header{}
	h.Set("RateLimit-Limit", strconv.Itoa(limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("RateLimit-Policy", strconv.Itoa(limit)+";w="+strconv.Itoa(window))
	return h
}

func TestSmallerAdvertisedLimitTightensAndLargerRestores(t *testing.T) {
	b, clk, _ := newTestBudget(Config{})
	limit := 100
	up := &upstream{hdr: func() http.Header { return pdsHeaders(limit, limit-1, clk.Now().Add(time.Minute), 60) }}
	rt := b.Transport(up)
	if err := send(t, rt, context.Background(), "pds.example"); err != nil {
		t.Fatal(err)
	}
	s := b.Snapshot()[0]
	if s.Limit != 90 || s.Window != time.Minute || s.Capacity != 9 {
		t.Fatalf("after ratelimit-limit 100;w=60: limit %d per %s, capacity %v; want 90 per 1m0s, 9", s.Limit, s.Window, s.Capacity)
	}
	if s.Tokens > 9 {
		t.Errorf("tokens %v above the tightened capacity", s.Tokens)
	}
	limit = 100000 // looser than the configuration: back to DefaultLimit
	send(t, rt, context.Background(), "pds.example")
	if s := b.Snapshot()[0]; s.Limit != DefaultLimit || s.Window != DefaultWindow {
		t.Errorf("after a larger advertised limit: %d per %s; want the configured %d per %s", s.Limit, s.Window, DefaultLimit, DefaultWindow)
	}
}

func TestLowRemainingHoldsUntilReset(t *testing.T) {
	b, clk, _ := newTestBudget(Config{MaxWait: time.Second})
	reset := clk.Now().Add(100 * time.Second)
	// Someone else on this IP has used most of the host's window: 310 of
	// 3000 left, of which the host's tenth (300) is kept back.
	remaining := 310
	up := &upstream{hdr: func() http.Header { remaining--; return pdsHeaders(3000, remaining, reset, 300) }}
	rt := b.Transport(up)
	sent := 0
	for sent < 50 && send(t, rt, context.Background(), "pds.example") == nil {
		sent++
	}
	if sent < 9 || sent > 11 {
		t.Fatalf("sent %d before the host's remaining count stopped us; want about 10", sent)
	}
	err := send(t, rt, context.Background(), "pds.example")
	if e := apperr.As(err); e == nil || !e.RetryAt.Equal(reset) {
		t.Fatalf("refusal %v; want RetryAt at the host's reset %s", err, reset)
	}
	if s := b.Snapshot()[0]; s.Remaining != 0 || !s.ResetAt.Equal(reset) {
		t.Errorf("snapshot remaining %d reset %s", s.Remaining, s.ResetAt)
	}
	clk.Advance(100 * time.Second)
	remaining = 3000
	if err := send(t, rt, context.Background(), "pds.example"); err != nil {
		t.Errorf("after the reset: %v", err)
	}
}

func TestResetAsSecondsAndStaleAnswers(t *testing.T) {
	b, clk, _ := newTestBudget(Config{})
	h := b.hostLocked("pds.example", clk.Now())
	hdr := http.Header{}
	hdr.Set("RateLimit-Remaining", "500")
	hdr.Set("RateLimit-Reset", "30") // seconds from now
	b.observe(h, hdr, clk.Now())
	if !h.tracked || h.remain != 500 || !h.resetAt.Equal(clk.Now().Add(30*time.Second)) {
		t.Fatalf("reset in seconds: tracked %v remain %v reset %s", h.tracked, h.remain, h.resetAt)
	}
	hdr.Set("RateLimit-Remaining", "900") // an older answer of the same window
	b.observe(h, hdr, clk.Now())
	if h.remain != 500 {
		t.Errorf("a larger count for the same reset loosened the bucket to %v", h.remain)
	}
}

func TestPolicyWindow(t *testing.T) {
	for _, c := range []struct {
		policy string
		limit  int
		want   time.Duration
	}{
		{"3000;w=300", 3000, 300 * time.Second},
		{"100;w=10, 3000;w=300", 3000, 300 * time.Second},
		{"100;w=10, 3000;w=300", 50, 10 * time.Second},
		{"", 3000, 0},
		{"junk", 3000, 0},
	} {
		if got := policyWindow(c.policy, c.limit); got != c.want {
			t.Errorf("policyWindow(%q, %d) = %s; want %s", c.policy, c.limit, got, c.want)
		}
	}
}

func TestHostKey(t *testing.T) {
	for in, want := range map[string]string{
		"https://PDS.example.com/xrpc/x": "pds.example.com",
		"https://pds.example.com:443/x":  "pds.example.com",
		"http://127.0.0.1:2583/x":        "127.0.0.1:2583",
		"http://[::1]:80/x":              "::1",
		"http://[::1]:81/x":              "[::1]:81",
	} {
		if got := HostOf(in); got != want {
			t.Errorf("HostOf(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestRefusedRequestBodyIsClosed(t *testing.T) {
	b, _, _ := newTestBudget(Config{Limit: 10, Window: time.Hour})
	rt := b.Transport(&upstream{})
	for send(t, rt, Background(context.Background()), "pds.example") == nil {
	}
	body := &closeRecorder{Reader: strings.NewReader("x")}
	req, _ := http.NewRequestWithContext(Background(context.Background()), http.MethodPost, "https://pds.example/xrpc/x", body)
	if _, err := rt.RoundTrip(req); err == nil {
		t.Fatal("request sent without budget")
	}
	if !body.closed {
		t.Error("refused request's body was not closed")
	}
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

func TestCanceledWaitReturnsTheContextError(t *testing.T) {
	b, _, _ := newTestBudget(Config{Limit: 20, Window: 180 * time.Second, MaxWait: time.Minute})
	b.sleep = func(ctx context.Context, d time.Duration) error { return context.Canceled }
	rt := b.Transport(&upstream{})
	send(t, rt, context.Background(), "pds.example")
	send(t, rt, context.Background(), "pds.example")
	if err := send(t, rt, context.Background(), "pds.example"); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v; want context.Canceled", err)
	}
}

func TestForegroundWaitsAtMostMaxWaitInAll(t *testing.T) {
	// Capacity 2, a token every 10 s, MaxWait 15 s: each time the waiter
	// wakes, someone else has taken the token; it gives up after 15 s in
	// all, not 15 s per try.
	b, clk, _ := newTestBudget(Config{Limit: 20, Window: 180 * time.Second, MaxWait: 15 * time.Second})
	rt := b.Transport(&upstream{})
	start := clk.Now()
	b.sleep = func(ctx context.Context, d time.Duration) error {
		clk.Advance(d)
		send(t, rt, context.Background(), "pds.example") // the other request, first to the token
		return nil
	}
	send(t, rt, context.Background(), "pds.example")
	send(t, rt, context.Background(), "pds.example")
	err := send(t, rt, context.Background(), "pds.example")
	if apperr.ReasonOf(err) != apperr.ReasonBudget {
		t.Fatalf("err = %v; want the budget's refusal", err)
	}
	if waited := clk.Now().Sub(start); waited > 15*time.Second {
		t.Errorf("waited %s in all; MaxWait is 15s", waited)
	}
}
