package metrics

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/live"
	"github.com/skydm/skydm/internal/safebuf"
)

// scrape serves m's handler once and parses the answer.
func scrape(t *testing.T, m *Metrics) Samples {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	s, err := Parse(rec.Body)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return s
}

// TestTransportCountsByHostMethodStatus: each request through Transport
// is counted once under its host, NSID and status; a 429 also gives a
// warning with the same names; a request with no answer is "error".
func TestTransportCountsByHostMethodStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/xrpc/chat.bsky.convo.getLog" {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	logs := &safebuf.Buffer{}
	m := New(slog.New(slog.NewTextHandler(logs, nil)))
	c := &http.Client{Transport: m.Transport(nil)}
	get := func(path string) {
		res, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	get("/xrpc/chat.bsky.convo.sendMessage")
	get("/xrpc/chat.bsky.convo.sendMessage")
	get("/xrpc/chat.bsky.convo.getLog?cursor=did:plc:abc")
	host := strings.TrimPrefix(srv.URL, "http://")
	req := FullName(NameUpstreamRequests)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedHost := strings.TrimPrefix(closed.URL, "http://")
	closed.Close()
	if _, err := c.Get(closed.URL + "/xrpc/com.atproto.server.describeServer"); err == nil {
		t.Fatal("a closed server answered")
	}

	s := scrape(t, m)
	for series, want := range map[string]float64{
		Series(req, LabelHost, host, LabelMethod, "chat.bsky.convo.sendMessage", LabelStatus, "200"):               2,
		Series(req, LabelHost, host, LabelMethod, "chat.bsky.convo.getLog", LabelStatus, "429"):                    1,
		Series(req, LabelHost, closedHost, LabelMethod, "com.atproto.server.describeServer", LabelStatus, "error"): 1,
	} {
		if s[series] != want {
			t.Errorf("%s = %v, want %v", series, s[series], want)
		}
	}
	for k := range s {
		if strings.Contains(k, "did:") || strings.Contains(k, "cursor") {
			t.Errorf("series %s carries request data", k)
		}
	}
	if !strings.Contains(logs.String(), `level=WARN msg="upstream request" host=`+host+` method=chat.bsky.convo.getLog status=429`) {
		t.Errorf("no 429 warning with the label names:\n%s", logs)
	}
}

type fakeHub live.Stats

func (f fakeHub) Stats() live.Stats { return live.Stats(f) }

type fakeOutbox struct {
	counts map[string]int
	err    error
}

func (f fakeOutbox) CountByState(context.Context) (map[string]int, error) { return f.counts, f.err }

// TestCollectorsReadAtScrapeTime: the hub, outbox and budget gauges show
// what their sources say at the scrape; the poll intervals are a
// histogram; refreshes and delivery latency count what was reported.
func TestCollectorsReadAtScrapeTime(t *testing.T) {
	m := New(nil)
	m.WatchHub(fakeHub{Users: 3, Pollers: 2, Subscribers: 5, PollersStarted: 7,
		Intervals: []time.Duration{4 * time.Second, 30 * time.Second}})
	m.WatchOutbox(fakeOutbox{counts: map[string]int{"queued": 2, "sent": 9, "given_up": 0}})
	m.WatchBudget(BudgetFunc(func() []HostBudget {
		return []HostBudget{{Host: "PDS.example.com", Left: 2400, Limit: 2700}}
	}))
	m.TokenRefreshed(nil)
	m.TokenRefreshed(errors.New("invalid_grant"))
	m.TokenRefreshed(nil)
	m.Delivered(1500 * time.Millisecond)

	s := scrape(t, m)
	iv := FullName(NameLivePollInterval)
	for series, want := range map[string]float64{
		FullName(NameLivePollers):                                       2,
		FullName(NameLiveUsers):                                         3,
		FullName(NameLiveSSEConnections):                                5,
		FullName(NameLivePollersStarted):                                7,
		iv + "_count":                                                   2,
		iv + "_sum":                                                     34,
		Series(iv+"_bucket", "le", "4"):                                 1,
		Series(iv+"_bucket", "le", "15"):                                1,
		Series(iv+"_bucket", "le", "30"):                                2,
		Series(FullName(NameOutboxRows), LabelState, "queued"):          2,
		Series(FullName(NameOutboxRows), LabelState, "sent"):            9,
		Series(FullName(NameOutboxRows), LabelState, "given_up"):        0,
		Series(FullName(NameBudgetLeft), LabelHost, "pds.example.com"):  2400,
		Series(FullName(NameBudgetLimit), LabelHost, "pds.example.com"): 2700,
		Series(FullName(NameTokenRefreshes), LabelOutcome, "ok"):        2,
		Series(FullName(NameTokenRefreshes), LabelOutcome, "error"):     1,
		FullName(NameOutboxDelivery) + "_count":                         1,
		FullName(NameOutboxDelivery) + "_sum":                           1.5,
		Series(FullName(NameOutboxDelivery)+"_bucket", "le", "1"):       0,
		Series(FullName(NameOutboxDelivery)+"_bucket", "le", "2.5"):     1,
	} {
		v, ok := s[series]
		if !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
}

// TestOutboxQueryFailureLeavesTheRest: a failing outbox query is left out
// of the scrape; the other metrics are still served.
func TestOutboxQueryFailureLeavesTheRest(t *testing.T) {
	m := New(nil)
	m.WatchHub(fakeHub{Pollers: 1})
	m.WatchOutbox(fakeOutbox{err: errors.New("database is locked")})
	s := scrape(t, m)
	if s[FullName(NameLivePollers)] != 1 {
		t.Errorf("pollers missing from a scrape whose outbox query failed: %v", s)
	}
}
