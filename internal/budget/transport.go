package budget

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/skydm/skydm/internal/apperr"
)

// Transport returns a RoundTripper that takes a token of the request's
// host (HostKey of its URL) before handing it to base (nil:
// http.DefaultTransport), and calibrates the host's bucket from the
// ratelimit-* headers of the response. A request the budget does not send
// fails with a RateLimited *apperr.Error (Reason apperr.ReasonBudget,
// RetryAt set); its body is closed.
func (b *Budget) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{b: b, base: base}
}

type transport struct {
	b    *Budget
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	done, err := t.b.acquire(req.Context(), HostKey(req.URL))
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, err := t.base.RoundTrip(req)
	done(resp)
	return resp, err
}

const (
	// unixThreshold separates a RateLimit-Reset given as seconds to wait
	// (the IETF draft) from one given as unix seconds (the atproto PDS and
	// the Bluesky services): 1e9 is September 2001.
	unixThreshold = 1_000_000_000
	// maxUnix is the year 3000; larger values are garbage.
	maxUnix = 32_503_680_000
)

// observe calibrates h from a response's headers: ratelimit-limit and the
// window of ratelimit-policy ("3000;w=300") may tighten the limit in effect
// (the host's, used at 90 %, when its rate is below the configured one; the
// latest answer counts, so a later larger one loosens it back up to the
// configuration); ratelimit-remaining and ratelimit-reset cap what may be
// sent until the reset, keeping back the same tenth of the host's limit.
// Called with b.mu held.
func (b *Budget) observe(h *host, hdr http.Header, now time.Time) {
	limit, ok := headerInt(hdr, "RateLimit-Limit")
	if ok && limit > 0 {
		window := policyWindow(hdr.Get("RateLimit-Policy"), limit)
		if window <= 0 {
			window = b.cfg.Window
		}
		h.advertised = limit
		h.limit, h.window = b.cfg.Limit, b.cfg.Window
		if own := int(headerShare * float64(limit)); float64(own)/window.Seconds() < float64(b.cfg.Limit)/b.cfg.Window.Seconds() {
			h.limit, h.window = max(1, own), window
		}
		h.tokens = min(h.tokens, h.capacity())
	}
	remaining, ok := headerInt(hdr, "RateLimit-Remaining")
	if !ok || remaining < 0 {
		return
	}
	reset := apperr.CapRetryAt(ResetTime(hdr.Get("RateLimit-Reset"), now), now)
	if !reset.After(now) {
		return
	}
	keep := 0
	if h.advertised > 0 {
		keep = h.advertised - int(headerShare*float64(h.advertised))
	}
	left := float64(remaining - keep - h.inflight)
	switch {
	case !h.tracked || reset.After(h.resetAt):
		h.tracked, h.remain, h.resetAt = true, left, reset // a new window of the host's
	case reset.Equal(h.resetAt):
		h.remain = min(h.remain, left) // answers may arrive out of order
	}
}

// headerInt reads a header as a whole number.
func headerInt(hdr http.Header, name string) (int, bool) {
	v := strings.TrimSpace(hdr.Get(name))
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}

// policyWindow is the window (w=seconds) of the entry of a ratelimit-policy
// whose quota is limit, or else of its first entry; 0 when none says.
func policyWindow(policy string, limit int) time.Duration {
	var first time.Duration
	for i, entry := range strings.Split(policy, ",") {
		parts := strings.Split(entry, ";")
		quota, err := strconv.Atoi(strings.TrimSpace(parts[0]))
		var w time.Duration
		for _, p := range parts[1:] {
			if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.TrimSpace(k) == "w" {
				if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs > 0 {
					w = time.Duration(secs) * time.Second
				}
			}
		}
		if err == nil && quota == limit && w > 0 {
			return w
		}
		if i == 0 {
			first = w
		}
	}
	return first
}

// ResetTime reads a RateLimit-Reset header value received at receivedAt:
// unix seconds, or (a small number) seconds from receivedAt. It returns the
// zero time when v is absent or unusable. The one reading of the header,
// for the budget and for chatproxy's RetryAt.
func ResetTime(v string, receivedAt time.Time) time.Time {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	switch {
	case err != nil || n < 0 || n >= maxUnix:
		return time.Time{}
	case n < unixThreshold:
		return receivedAt.Add(time.Duration(n) * time.Second)
	default:
		return time.Unix(n, 0)
	}
}
