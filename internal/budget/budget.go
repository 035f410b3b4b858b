// Package budget spends each upstream host's request allowance: one token
// bucket per host for the whole instance, foreground requests first.
//
// Bluesky's PDSes limit requests per client IP (3,000 per 5 minutes), and
// every user of a skydm instance shares its IP. A Budget gives every host
// (the URL host of a request) a bucket sized so that no window of Limit's
// length sees more than Limit requests: a burst of a tenth of Limit, and the
// other nine tenths refilled evenly over Window. The ratelimit-* headers a
// host returns can only tighten it: a smaller advertised limit (used at 90
// %) or a low remaining count until ratelimit-reset.
//
// A request's context says whose it is. Foreground (the default: a page a
// person waits for, a send) takes a token whenever one is left and waits
// briefly for the next one otherwise. Background (Background(ctx): live
// polls, outbox deliveries, the reconciler) leaves the last Reserve of the
// burst to foreground; a background request that finds no budget is not
// sent and fails with a RateLimited *apperr.Error carrying RetryAt, so its
// loop backs off as it does after a 429.
package budget

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skydm/skydm/internal/apperr"
)

// Defaults for Config's zero values.
const (
	DefaultLimit   = 2700 // 90 % of Bluesky's documented 3,000 requests per 5 minutes per client IP
	DefaultWindow  = 5 * time.Minute
	DefaultReserve = 0.25            // share of the burst background work leaves to foreground
	DefaultMaxWait = 5 * time.Second // longest a foreground request waits for a token
)

const (
	// burstShare of the limit is the bucket's capacity; the rest refills
	// over the window, so any window of that length sees at most the limit.
	burstShare = 0.1
	// headerShare of a host's advertised ratelimit-limit is what we use.
	headerShare = 0.9
	// maxHosts bounds the buckets kept; past it, idle full ones are dropped.
	maxHosts = 10000
)

// Config configures a Budget. Zero values take the Default* of the same
// name.
type Config struct {
	Limit   int           // requests per Window per host this instance may send
	Window  time.Duration // the window Limit counts in
	Reserve float64       // share of the burst (0–1) background requests leave to foreground
	MaxWait time.Duration // longest a foreground request waits for a token (also bounded by its context)
	Now     func() time.Time
	// Sleep waits d or until ctx is done (returning its error); nil: a
	// timer. Simulations on a fake clock replace it with Now.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Budget is the instance's request allowance per upstream host. It is safe
// for concurrent use; create it with New.
type Budget struct {
	cfg   Config
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error

	mu    sync.Mutex
	hosts map[string]*host
}

// host is the bucket of one upstream host.
type host struct {
	limit  int           // in effect: the configured one or the host's, whichever is tighter
	window time.Duration // Limit's window in effect
	tokens float64
	at     time.Time // when tokens was brought up to date

	advertised int       // the host's last ratelimit-limit; 0 unknown
	tracked    bool      // the host said how many requests are left until resetAt
	remain     float64   // requests still ours before resetAt, when tracked
	resetAt    time.Time // end of the host's window, when tracked

	inflight int
	sent     [2]uint64 // by priority: foreground, background
	refused  [2]uint64
}

// New returns a Budget for cfg with defaults filled in.
func New(cfg Config) *Budget {
	if cfg.Limit <= 0 {
		cfg.Limit = DefaultLimit
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Reserve <= 0 || cfg.Reserve >= 1 {
		cfg.Reserve = DefaultReserve
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	return &Budget{cfg: cfg, now: cfg.Now, sleep: cfg.Sleep, hosts: map[string]*host{}}
}

// Config returns the configuration in effect, defaults filled in.
func (b *Budget) Config() Config { return b.cfg }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

type backgroundKey struct{}

// Background returns ctx marked as background work: its upstream requests
// leave the reserve to foreground and are refused, not delayed, when the
// budget is short.
func Background(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

// IsBackground reports whether ctx was marked by Background.
func IsBackground(ctx context.Context) bool {
	bg, _ := ctx.Value(backgroundKey{}).(bool)
	return bg
}

// priority indexes host.sent and host.refused.
func priority(bg bool) int {
	if bg {
		return 1
	}
	return 0
}

// HostKey is the bucket a URL's requests draw on: its host, lower case,
// with the port unless it is the scheme's default.
func HostKey(u *url.URL) string {
	h, port := strings.ToLower(u.Hostname()), u.Port()
	switch {
	case port == "",
		port == "443" && u.Scheme == "https",
		port == "80" && u.Scheme == "http":
		return h
	}
	if strings.Contains(h, ":") {
		return "[" + h + "]:" + port
	}
	return h + ":" + port
}

// HostOf is HostKey of a URL given as text ("" when it does not parse).
func HostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return HostKey(u)
}

// capacity is the bucket's size: a tenth of the limit, at least one.
func (h *host) capacity() float64 { return max(1, burstShare*float64(h.limit)) }

// rate is the refill in tokens per second: the rest of the limit over the
// window.
func (h *host) rate() float64 {
	return max(0, float64(h.limit)-h.capacity()) / h.window.Seconds()
}

// refill brings tokens up to now and forgets the host's count once its
// window has reset.
func (h *host) refill(now time.Time) {
	if dt := now.Sub(h.at).Seconds(); dt > 0 {
		h.tokens = min(h.capacity(), h.tokens+dt*h.rate())
		h.at = now
	}
	if h.tracked && !now.Before(h.resetAt) {
		h.tracked = false
	}
}

// available is what may be spent now: the tokens, and no more than the
// host said is left.
func (h *host) available() float64 {
	if h.tracked {
		return min(h.tokens, h.remain)
	}
	return h.tokens
}

// need is what a request of the priority must find available: one token,
// and for background the reserve on top.
func (b *Budget) need(h *host, bg bool) float64 {
	if bg {
		return 1 + b.cfg.Reserve*h.capacity()
	}
	return 1
}

// take spends a token when enough is available, or says how long until it
// would be. Called with b.mu held, after refill.
func (b *Budget) take(h *host, now time.Time, bg bool) (wait time.Duration, ok bool) {
	need := b.need(h, bg)
	if h.available() >= need {
		h.tokens--
		if h.tracked {
			h.remain--
		}
		h.inflight++
		h.sent[priority(bg)]++
		return 0, true
	}
	if h.tokens < need {
		if r := h.rate(); r > 0 {
			wait = time.Duration((need - h.tokens) / r * float64(time.Second))
		} else {
			wait = h.window
		}
	}
	if h.tracked && h.remain < need {
		wait = max(wait, h.resetAt.Sub(now))
	}
	return max(wait, time.Millisecond), false
}

// hostLocked returns the bucket of key, made full on first use. Called with
// b.mu held.
func (b *Budget) hostLocked(key string, now time.Time) *host {
	h := b.hosts[key]
	if h == nil {
		if len(b.hosts) >= maxHosts {
			b.pruneLocked(now)
		}
		h = &host{limit: b.cfg.Limit, window: b.cfg.Window, at: now}
		h.tokens = h.capacity()
		b.hosts[key] = h
	}
	h.refill(now)
	return h
}

// pruneLocked drops buckets nobody is using that are full again (forgetting
// them loses nothing).
func (b *Budget) pruneLocked(now time.Time) {
	for k, h := range b.hosts {
		if h.refill(now); h.inflight == 0 && !h.tracked && h.tokens >= h.capacity() {
			delete(b.hosts, k)
		}
	}
}

// acquire takes a token of key's bucket for a request with ctx: at once,
// or for foreground after waiting at most MaxWait (and within ctx's
// deadline) in all. done must be called with the response (nil after a
// transport error) once it arrived.
func (b *Budget) acquire(ctx context.Context, key string) (done func(*http.Response), err error) {
	bg := IsBackground(ctx)
	giveUp := b.now().Add(b.cfg.MaxWait) // however often other requests take the next token first
	if dl, has := ctx.Deadline(); has && dl.Before(giveUp) {
		giveUp = dl
	}
	for {
		b.mu.Lock()
		now := b.now()
		h := b.hostLocked(key, now)
		wait, ok := b.take(h, now, bg)
		if ok {
			b.mu.Unlock()
			return func(resp *http.Response) { b.finish(key, resp) }, nil
		}
		if bg || now.Add(wait).After(giveUp) {
			h.refused[priority(bg)]++
			b.mu.Unlock()
			return nil, refused(key, bg, now.Add(wait))
		}
		b.mu.Unlock()
		if err := b.sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// finish ends an in-flight request of key and calibrates from its response.
func (b *Budget) finish(key string, resp *http.Response) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	h := b.hostLocked(key, now)
	h.inflight--
	if resp != nil {
		b.observe(h, resp.Header, now)
	}
}

// msgRefused is what a person reads when their own request found no budget.
const msgRefused = "skydm is sending as many requests to your account's server as it allows right now. Please try again in a moment."

// refused is the error of a request the budget did not send.
func refused(key string, bg bool, retryAt time.Time) error {
	kind := "foreground"
	if bg {
		kind = "background"
	}
	return &apperr.Error{
		Code: apperr.RateLimited, Reason: apperr.ReasonBudget, Message: msgRefused, RetryAt: retryAt,
		Err: fmt.Errorf("budget: no %s request to %s before %s", kind, key, retryAt.UTC().Format(time.RFC3339Nano)),
	}
}

// HostState is a snapshot of one host's bucket (for metrics and logs).
type HostState struct {
	Host      string
	Limit     int           // requests per Window in effect
	Window    time.Duration // Limit's window in effect
	Capacity  float64       // the bucket's size
	Tokens    float64       // what may be spent now (the host's own count included)
	Fill      float64       // Tokens ÷ Capacity
	Remaining int           // what the host said is left for us until ResetAt; -1 when it did not say
	ResetAt   time.Time     // zero when Remaining is -1
	InFlight  int
	// Sent and Refused count requests since the bucket was made, by
	// priority.
	SentForeground, SentBackground       uint64
	RefusedForeground, RefusedBackground uint64
}

// Snapshot returns every host's bucket, sorted by host. It never fails.
func (b *Budget) Snapshot() []HostState {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	out := make([]HostState, 0, len(b.hosts))
	for k, h := range b.hosts {
		h.refill(now)
		s := HostState{
			Host: k, Limit: h.limit, Window: h.window, Capacity: h.capacity(), Tokens: max(0, h.available()),
			Remaining: -1, InFlight: h.inflight,
			SentForeground: h.sent[0], SentBackground: h.sent[1], RefusedForeground: h.refused[0], RefusedBackground: h.refused[1],
		}
		s.Fill = s.Tokens / s.Capacity
		if h.tracked {
			s.Remaining, s.ResetAt = int(max(0, h.remain)), h.resetAt
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b HostState) int { return strings.Compare(a.Host, b.Host) })
	return out
}

// Pressure returns how full host's bucket is (0–1, the host's own count
// included) and the rate background work may sustain there (tokens per
// second: the refill less the reserve's share), which the Pacer shares out.
func (b *Budget) Pressure(host string) (fill, backgroundRate float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.hostLocked(host, b.now())
	return max(0, h.available()) / h.capacity(), h.rate() * (1 - b.cfg.Reserve)
}
