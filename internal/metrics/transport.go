package metrics

import (
	"log/slog"
	"net/http"
)

// Transport returns base (nil → http.DefaultTransport) counting every
// request in NameUpstreamRequests. A 429 is also logged as a warning with
// the same host, method and status; other requests at debug level.
func (m *Metrics) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{m: m, base: base}
}

type transport struct {
	m    *Metrics
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	host, method := t.m.labels.request(req.URL)
	resp, err := t.base.RoundTrip(req)
	status := statusError
	if err == nil {
		status = statusLabel(resp.StatusCode)
	}
	t.m.upstream.WithLabelValues(host, method, status).Inc()
	level := slog.LevelDebug
	if status == "429" {
		level = slog.LevelWarn
	}
	t.m.log.Log(req.Context(), level, "upstream request", LabelHost, host, LabelMethod, method, LabelStatus, status)
	return resp, err
}
