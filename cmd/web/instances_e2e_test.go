package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/internal/metrics"
	"github.com/skydm/skydm/internal/pgtest"
	"github.com/skydm/skydm/internal/testenv"
)

// TestE2ETwoInstancesPollEachUserOnce runs two app instances on one
// Postgres against the sandbox. Alice signs in on both and opens the
// conversation with bob on both; bob sends her a message. It reaches her
// page on both instances with the same id, and only one instance calls
// getLog for her (its metrics count the calls to the chat service).
func TestE2ETwoInstancesPollEachUserOnce(t *testing.T) {
	n := testenv.Network(t)
	alice, bob := testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	dmFollowEachOther(t, n, alice, bob)
	bobAPI := testenv.PasswordSession(t, n, bob)
	convo := dmConvoWith(t, n, bobAPI, alice)
	env := sandboxEnv(t, n)
	env["SKYDM_DB"] = pgtest.URL(t)
	env["SKYDM_METRICS_ADDR"] = "127.0.0.1:0"

	pds := strings.TrimPrefix(strings.TrimPrefix(n.PDSURL, "http://"), "https://")
	getLogs := metrics.Series(metrics.FullName(metrics.NameUpstreamRequests),
		metrics.LabelHost, pds, metrics.LabelMethod, "chat.bsky.convo.getLog", metrics.LabelStatus, "200")
	type instance struct {
		metricsURL string
		page       <-chan testenv.SSEEvent
	}
	var ins [2]instance
	for i := range ins {
		base, logs := startRun(t, nil, env)
		m := metricsLogRE.FindStringSubmatch(logs.String())
		if m == nil {
			t.Fatalf("no metrics line in the log:\n%s", logs)
		}
		b := newBrowserClient(t, base)
		signInHTTP(t, b, alice)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events?convo="+url.QueryEscape(convo), nil)
		res, err := b.c.Do(req)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("instance %d: live stream: %v %v", i, err, res)
		}
		ins[i] = instance{metricsURL: m[1], page: testenv.SSEEvents(res.Body)}
	}
	for i := range ins {
		testenv.NextSSE(t, ins[i].page, "position")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent, err := chat.ConvoSendMessage(ctx, bobAPI.WithService(n.ChatServiceRef), &chat.ConvoSendMessage_Input{
		ConvoId: convo, Message: &chat.ConvoDefs_MessageInput{Text: "One poller, two instances."},
	})
	if err != nil {
		t.Fatalf("bob sendMessage: %v", err)
	}
	var ids [2]string
	for i := range ins {
		ev := testenv.NextSSE(t, ins[i].page, "message")
		if !strings.Contains(ev.Data, "One poller, two instances.") {
			t.Fatalf("instance %d: message event %q", i, ev.Data)
		}
		ids[i] = ev.ID
	}
	if ids[0] != ids[1] || ids[0] == "" {
		t.Fatalf("event ids %q on the two instances, want one (message %s)", ids, sent.Id)
	}
	a, b := scrapeMetrics(t, ins[0].metricsURL)[getLogs], scrapeMetrics(t, ins[1].metricsURL)[getLogs]
	if (a == 0) == (b == 0) {
		t.Fatalf("getLog calls for alice: %v on one instance, %v on the other; want them from one only", a, b)
	}
	t.Logf("getLog calls: %v and %v", a, b)
}
