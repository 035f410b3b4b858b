package chatproxy

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skydm/skydm/internal/budget"
)

// respMeta holds what the transport saw of the last HTTP response of one
// call: its status and the headers the error mapping needs. Each call makes
// its own holder and puts it in the request context (withRespMeta), so
// concurrent calls never share one. The auth methods may send a request more
// than once (DPoP nonce retry, token refresh); the last response wins, which
// is the one whose error the call returns.
type respMeta struct {
	mu         sync.Mutex
	status     int
	header     http.Header
	receivedAt time.Time
}

type respMetaKey struct{}

// withRespMeta returns a context carrying a fresh holder, and the holder.
func withRespMeta(ctx context.Context) (context.Context, *respMeta) {
	m := &respMeta{}
	return context.WithValue(ctx, respMetaKey{}, m), m
}

func respMetaFrom(ctx context.Context) *respMeta {
	m, _ := ctx.Value(respMetaKey{}).(*respMeta)
	return m
}

// keptHeaders are the response headers recorded for the error mapping.
var keptHeaders = []string{
	"Retry-After",
	"RateLimit-Reset",
	"RateLimit-Remaining",
	"RateLimit-Limit",
	"RateLimit-Policy",
	"WWW-Authenticate",
}

func (m *respMeta) record(resp *http.Response, at time.Time) {
	h := make(http.Header, len(keptHeaders))
	for _, k := range keptHeaders {
		if v := resp.Header.Values(k); len(v) > 0 {
			h[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status = resp.StatusCode
	m.header = h
	m.receivedAt = at
}

// snapshot returns the recorded status, headers and receive time; a nil
// holder or no response gives zero values.
func (m *respMeta) snapshot() (int, http.Header, time.Time) {
	if m == nil {
		return 0, nil, time.Time{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status, m.header, m.receivedAt
}

// captureTransport records, for requests whose context carries a respMeta,
// the status and rate-limit headers of each response. It changes nothing
// about the request or the response.
type captureTransport struct {
	base http.RoundTripper
	now  func() time.Time
}

func (t *captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if resp != nil {
		if m := respMetaFrom(req.Context()); m != nil {
			m.record(resp, t.now())
		}
	}
	return resp, err
}

// wrapHTTPClient returns a copy of c (nil: a zero client, as
// http.DefaultClient) whose transport records response metadata.
func wrapHTTPClient(c *http.Client, now func() time.Time) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	}
	base := out.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	out.Transport = &captureTransport{base: base, now: now}
	return &out
}

// retryAt reads when a client may retry from the response headers:
// Retry-After (delay in seconds, or an HTTP date), else RateLimit-Reset
// (unix seconds, as the atproto PDS and the Bluesky services send it; a
// small value is read as a delay in seconds, as in the IETF draft). It
// returns the zero time when neither header gives a usable answer.
func retryAt(h http.Header, receivedAt time.Time) time.Time {
	if h == nil {
		return time.Time{}
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
			if secs >= 0 && secs < maxDelaySeconds {
				return receivedAt.Add(time.Duration(secs) * time.Second)
			}
		} else if t, err := http.ParseTime(v); err == nil {
			return t
		}
	}
	return budget.ResetTime(h.Get("RateLimit-Reset"), receivedAt)
}

// maxDelaySeconds bounds a relative Retry-After to something sane (a year).
const maxDelaySeconds = 365 * 24 * 3600
