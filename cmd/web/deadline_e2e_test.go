package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/skydm/skydm/internal/devchat"
	"github.com/skydm/skydm/internal/testenv"
)

// pageDeadline is the one deadline every page and form answers within
// (internal/handlers pageDeadline); deadlineMargin is what the network and
// the test's own scheduling may add on a loaded machine. Both bound
// correctness (an answer, not a hang), not speed.
const (
	pageDeadline   = 10 * time.Second
	deadlineMargin = 3 * time.Second
)

// deadlineAnswer is one request's answer under a hung chat service.
type deadlineAnswer struct {
	name   string
	status int
	header http.Header
	body   string
	took   time.Duration
	err    error
}

// TestE2EDMEveryPageAnswersWithinTheDeadlineWhenChatHangs makes devchat
// hang on every method and opens every DM page and submits every DM form
// at once: each answers within the one request deadline (plus a margin)
// with a readable "not answering" message, and the send form keeps the
// draft (HTML and JSON). Before the deadline rule a send took 25 s.
func TestE2EDMEveryPageAnswersWithinTheDeadlineWhenChatHangs(t *testing.T) {
	n := testenv.Network(t)
	alice, bob := testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	dmFollowEachOther(t, n, alice, bob)
	convo := dmConvoWith(t, n, testenv.PasswordSession(t, n, alice), bob)
	base, _ := startRun(t, nil, sandboxEnv(t, n))
	b := newBrowserClient(t, base)
	signInHTTP(t, b, alice)

	// A message to act on, and a fresh send form for each send below.
	_, page := b.get(base + "/convos/" + convo)
	token, _ := page.Find(`[data-testid="composer"] input[name="token"]`).Attr("value")
	postRedirect(t, b, "/convos/"+convo+"/messages", url.Values{"token": {token}, "text": {"first"}})
	_, page = b.get(base + "/convos/" + convo)
	mid := strings.TrimPrefix(page.Find(`[data-testid="messages"] li[id^="m-"]`).Last().AttrOr("id", ""), "m-")
	if mid == "" {
		t.Fatal("no message on the conversation page")
	}
	tokens := page.Find(`[data-testid="composer"] input[name="token"]`).AttrOr("value", "")
	_, page2 := b.get(base + "/convos/" + convo)
	tokenJSON := page2.Find(`[data-testid="composer"] input[name="token"]`).AttrOr("value", "")

	dmInject(t, n, devchat.Fault{Method: "*", Hang: true})

	const draft = "Still there? This draft must survive the hang."
	type req struct {
		name, method, path string
		form               url.Values
		json               bool
	}
	reqs := []req{
		{"inbox", "GET", "/", nil, false},
		{"requests", "GET", "/requests", nil, false},
		{"conversation", "GET", "/convos/" + convo, nil, false},
		{"send", "POST", "/convos/" + convo + "/messages", url.Values{"token": {tokens}, "text": {draft}}, false},
		{"send (script)", "POST", "/convos/" + convo + "/messages", url.Values{"token": {tokenJSON}, "text": {draft}}, true},
		{"new conversation", "POST", "/convos/new", url.Values{"handle": {bob.Handle}}, false},
		{"read all", "POST", "/convos/read-all", url.Values{}, false},
		{"accept", "POST", "/convos/" + convo + "/accept", url.Values{}, false},
		{"mute", "POST", "/convos/" + convo + "/mute", url.Values{}, false},
		{"unmute", "POST", "/convos/" + convo + "/unmute", url.Values{}, false},
		{"read", "POST", "/convos/" + convo + "/read", url.Values{}, false},
		{"leave", "POST", "/convos/" + convo + "/leave", url.Values{}, false},
		{"delete", "POST", "/convos/" + convo + "/messages/" + mid + "/delete", url.Values{}, false},
		{"react", "POST", "/convos/" + convo + "/messages/" + mid + "/reactions", url.Values{"value": {"👍"}}, false},
		{"unreact", "POST", "/convos/" + convo + "/messages/" + mid + "/reactions/remove", url.Values{"value": {"👍"}}, false},
	}
	answers := make([]deadlineAnswer, len(reqs))
	var wg sync.WaitGroup
	for i, rq := range reqs {
		wg.Go(func() {
			var body io.Reader
			if rq.form != nil {
				body = strings.NewReader(rq.form.Encode())
			}
			hr, _ := http.NewRequest(rq.method, base+rq.path, body)
			if rq.form != nil {
				hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				hr.Header.Set("Origin", base)
				hr.Header.Set("Sec-Fetch-Site", "same-origin")
			}
			if rq.json {
				hr.Header.Set("Accept", "application/json")
			}
			start := time.Now()
			res, err := b.c.Do(hr)
			a := deadlineAnswer{name: rq.name, err: err}
			if err == nil {
				raw, _ := io.ReadAll(res.Body)
				res.Body.Close()
				a.status, a.header, a.body = res.StatusCode, res.Header, string(raw)
			}
			a.took = time.Since(start)
			answers[i] = a
		})
	}
	wg.Wait()

	for i, a := range answers {
		rq := reqs[i]
		if a.err != nil {
			t.Errorf("%s: no answer: %v (after %s)", a.name, a.err, a.took.Round(time.Millisecond))
			continue
		}
		t.Logf("%s: %d after %s", a.name, a.status, a.took.Round(time.Millisecond))
		if a.took > pageDeadline+deadlineMargin {
			t.Errorf("%s answered after %s, past the %s deadline (+%s margin)", a.name, a.took.Round(time.Millisecond), pageDeadline, deadlineMargin)
		}
		if a.status != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d, want 503", a.name, a.status)
		}
		if rq.json {
			var j struct{ Error, Token, Draft string }
			if err := json.Unmarshal([]byte(a.body), &j); err != nil {
				t.Errorf("%s: not JSON: %v: %.200s", a.name, err, a.body)
				continue
			}
			if !strings.Contains(j.Error, "not answering") || j.Token == "" || j.Draft != draft {
				t.Errorf("%s: JSON %+v, want the message, a fresh token and the draft kept", a.name, j)
			}
			continue
		}
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(a.body))
		if err != nil {
			t.Fatal(err)
		}
		msg := dmText(doc.Find(`[data-testid="error-message"], [data-testid="error"]`))
		if !strings.Contains(msg, "not answering") {
			t.Errorf("%s: message %q, want it to say the service is not answering; page: %.300s", a.name, msg, dmText(doc.Find("main")))
		}
		if rq.name == "send" {
			if got := doc.Find(`[data-testid="draft"]`).Text(); got != draft {
				t.Errorf("send: draft %q, want it kept", got)
			}
		}
	}
}

// signInDeadline is the deadline of POST /oauth/login and GET
// /oauth/callback (internal/handlers signInDeadline).
const signInDeadline = 15 * time.Second

// TestE2ESignInAnswersTooSlowWhenTheServerDrips signs in with the address
// of a server that answers every request just inside skydm's per-step
// timeouts (headers after 9 s, under the 10 s response-header timeout):
// the login answers within the sign-in deadline with a page that names the
// server as too slow, never an empty reply after the write timeout.
func TestE2ESignInAnswersTooSlowWhenTheServerDrips(t *testing.T) {
	n := testenv.Network(t)
	// Each answer: headers after 9 s (under the 10 s response-header
	// timeout), then the body a few bytes every 300 ms for 9 s more (under
	// the 30 s per-request timeout): 18 s a step.
	const headerDelay, drip = 9 * time.Second, 300 * time.Millisecond
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The misbehaving server's own pace, not a test synchronisation.
		wait := func(d time.Duration) bool {
			select {
			case <-time.After(d):
				return true
			case <-r.Context().Done():
				return false
			}
		}
		if !wait(headerDelay) {
			return
		}
		host := "http://" + r.Host
		doc := map[string]any{"issuer": host}
		if r.URL.Path == "/.well-known/oauth-protected-resource" {
			doc = map[string]any{"resource": host, "authorization_servers": []string{host}}
		}
		body, _ := json.Marshal(doc)
		body = append(body, bytes.Repeat([]byte(" "), max(0, 90-len(body)))...)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		for i := 0; i < len(body); i += 3 {
			w.Write(body[i:min(i+3, len(body))])
			w.(http.Flusher).Flush()
			if !wait(drip) {
				return
			}
		}
	}))
	t.Cleanup(slow.Close)
	_, port, _ := net.SplitHostPort(slow.Listener.Addr().String())
	server := "localhost:" + port

	base, _ := startRun(t, nil, sandboxEnv(t, n))
	b := newBrowserClient(t, base)
	start := time.Now()
	res, doc := b.post("/oauth/login", url.Values{"identifier": {"http://" + server}})
	took := time.Since(start)
	t.Logf("login against a dripping server: %d after %s", res.StatusCode, took.Round(time.Millisecond))
	if took > signInDeadline+deadlineMargin {
		t.Errorf("login answered after %s, past the %s deadline (+%s margin)", took.Round(time.Millisecond), signInDeadline, deadlineMargin)
	}
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", res.StatusCode)
	}
	msg := dmText(doc.Find(`[data-testid="signin-error"]`))
	if !strings.Contains(msg, "too slow") || !strings.Contains(msg, server) {
		t.Errorf("message %q, want it to say %s is too slow", msg, server)
	}
}
