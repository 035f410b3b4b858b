package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/metrics"
	"github.com/skydm/skydm/internal/testenv"
)

var metricsLogRE = regexp.MustCompile(`msg="serving metrics" url=(\S+)`)

// scrapeMetrics GETs the metrics URL and parses it.
func scrapeMetrics(t *testing.T, u string) metrics.Samples {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d", res.StatusCode)
	}
	s, err := metrics.Parse(res.Body)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return s
}

// TestE2EMetricsCountWhatHappened runs the app with -metrics-addr against
// the sandbox: alice and bob sign in, alice opens the inbox and the
// conversation (with its live stream) and sends bob a DM, bob creates a
// project and alice files a change request, delivered as a DM. The
// metrics listener's counters move by exactly what happened (one more
// sendMessage 200 per DM), the live gauges show the open stream and its
// 4 s poller, the outbox shows the sent row and its delivery latency; no
// label carries a DID or a handle. The public listener has no /metrics.
func TestE2EMetricsCountWhatHappened(t *testing.T) {
	n := testenv.Network(t)
	alice, bob := testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	dmFollowEachOther(t, n, alice, bob)
	convo := dmConvoWith(t, n, testenv.PasswordSession(t, n, alice), bob)
	env := sandboxEnv(t, n)
	env["SKYDM_METRICS_ADDR"] = "127.0.0.1:0"
	base, logs := startRun(t, nil, env)
	m := metricsLogRE.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no metrics line in the log:\n%s", logs)
	}
	metricsURL := m[1]
	if !strings.HasPrefix(metricsURL, "http://127.0.0.1:") || strings.HasPrefix(metricsURL, base) {
		t.Fatalf("metrics at %q, app at %q: want a loopback listener of its own", metricsURL, base)
	}
	if res, err := http.Get(base + "/metrics"); err != nil || res.StatusCode != http.StatusNotFound {
		t.Fatalf("public /metrics: %v %v, want 404", res.StatusCode, err)
	} else {
		res.Body.Close()
	}

	aliceB, bobB := newBrowserClient(t, base), newBrowserClient(t, base)
	signInHTTP(t, aliceB, alice)
	signInHTTP(t, bobB, bob)
	pds := strings.TrimPrefix(strings.TrimPrefix(n.PDSURL, "http://"), "https://")
	req := metrics.FullName(metrics.NameUpstreamRequests)
	upstream := func(method, status string) string {
		return metrics.Series(req, metrics.LabelHost, pds, metrics.LabelMethod, method, metrics.LabelStatus, status)
	}
	sends := upstream("chat.bsky.convo.sendMessage", "200")
	before := scrapeMetrics(t, metricsURL)

	// The inbox, the conversation with its live stream, one DM.
	if res, _ := aliceB.get(base + "/"); res.StatusCode != http.StatusOK {
		t.Fatalf("inbox: %d", res.StatusCode)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streamReq, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events?convo="+url.QueryEscape(convo), nil)
	stream, err := aliceB.c.Do(streamReq)
	if err != nil || stream.StatusCode != http.StatusOK {
		t.Fatalf("live stream: %v %v", err, stream)
	}
	defer stream.Body.Close()
	if line, err := bufio.NewReader(stream.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "retry:") {
		t.Fatalf("live stream's first line %q: %v", line, err)
	}
	_, page := aliceB.get(base + "/convos/" + convo)
	token, _ := page.Find(`[data-testid="composer"] input[name="token"]`).Attr("value")
	postRedirect(t, aliceB, "/convos/"+convo+"/messages", url.Values{"token": {token}, "text": {"Metrics, please."}})

	pollers, sse := metrics.FullName(metrics.NameLivePollers), metrics.FullName(metrics.NameLiveSSEConnections)
	interval := metrics.FullName(metrics.NameLivePollInterval)
	var s metrics.Samples
	waitFor(t, "the stream's poller to have polled", 30*time.Second, func() bool {
		s = scrapeMetrics(t, metricsURL)
		return s[upstream("chat.bsky.convo.getLog", "200")] > before[upstream("chat.bsky.convo.getLog", "200")]
	})
	if got := s[sends] - before[sends]; got != 1 {
		t.Errorf("sendMessage 200 moved by %v after one DM, want 1", got)
	}
	if got := s[upstream("chat.bsky.convo.listConvos", "200")] - before[upstream("chat.bsky.convo.listConvos", "200")]; got < 1 {
		t.Errorf("listConvos 200 moved by %v after the inbox, want at least 1", got)
	}
	if s[pollers] != 1 || s[sse] != 1 || s[interval+"_count"] != 1 || s[metrics.Series(interval+"_bucket", "le", "4")] != 1 {
		t.Errorf("one conversation stream: pollers %v, sse %v, intervals %v (≤4 s: %v), want 1, 1, 1, 1",
			s[pollers], s[sse], s[interval+"_count"], s[metrics.Series(interval+"_bucket", "le", "4")])
	}
	// The PDS host's upstream budget: its bucket (a tenth of the default
	// 2,700 per 5 minutes) and what is left of it.
	left := metrics.Series(metrics.FullName(metrics.NameBudgetLeft), metrics.LabelHost, pds)
	size := metrics.Series(metrics.FullName(metrics.NameBudgetLimit), metrics.LabelHost, pds)
	if s[size] != 270 || s[left] <= 0 || s[left] > s[size] {
		t.Errorf("budget of the PDS host: left %v of %v, want 0 < left ≤ 270", s[left], s[size])
	}
	cancel()
	waitFor(t, "the stream to be counted closed", 15*time.Second, func() bool {
		return scrapeMetrics(t, metricsURL)[sse] == 0
	})

	// A change request: one outbox row, sent, one more sendMessage.
	afterDM := scrapeMetrics(t, metricsURL)
	projectPath := postRedirect(t, bobB, "/projects", url.Values{"name": {"Gauges"}, "description": {"Counted."}})
	crPath := postRedirect(t, aliceB, projectPath+"/change-requests",
		url.Values{"title": {"Count better"}, "body": {"Please."}})
	waitFor(t, "the change request's DM to be sent", deliveryDeadline, func() bool {
		state, _ := deliveryState(t, aliceB, base+crPath)
		return state == "sent"
	})
	rows := metrics.FullName(metrics.NameOutboxRows)
	delivery := metrics.FullName(metrics.NameOutboxDelivery)
	s = scrapeMetrics(t, metricsURL)
	if got := s[sends] - afterDM[sends]; got != 1 {
		t.Errorf("sendMessage 200 moved by %v after one change request, want 1", got)
	}
	if s[metrics.Series(rows, metrics.LabelState, "sent")] != 1 || s[metrics.Series(rows, metrics.LabelState, "queued")] != 0 {
		t.Errorf("outbox rows sent %v queued %v, want 1 and 0",
			s[metrics.Series(rows, metrics.LabelState, "sent")], s[metrics.Series(rows, metrics.LabelState, "queued")])
	}
	if got := s[delivery+"_count"] - afterDM[delivery+"_count"]; got != 1 {
		t.Errorf("delivery latency observed %v times, want 1", got)
	}
	refreshes := metrics.Series(metrics.FullName(metrics.NameTokenRefreshes), metrics.LabelOutcome, "ok")
	if _, ok := s[refreshes]; !ok {
		t.Errorf("no %s series", refreshes)
	}
	for series := range s {
		for _, secret := range []string{"did:", alice.Handle, bob.Handle, convo} {
			if strings.Contains(series, secret) {
				t.Errorf("series %s carries %q", series, secret)
			}
		}
	}
	if !strings.Contains(logs.String(), metrics.AttrDeliverySeconds+"=") {
		t.Errorf("the dm sent line has no %s", metrics.AttrDeliverySeconds)
	}
	var seen []string
	for series, v := range s {
		if strings.HasPrefix(series, req) {
			seen = append(seen, fmt.Sprintf("%s %v", strings.TrimPrefix(series, req), v))
		}
	}
	slices.Sort(seen)
	t.Logf("upstream requests of the test:\n%s", strings.Join(seen, "\n"))
}
