package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/websession"
)

// TestCallbackPastItsDeadlineSaysTheServerIsTooSlow: a callback whose token
// exchange outlasts the sign-in deadline answers (before the deadline plus a
// margin) with a page naming the authorization server as too slow.
func TestCallbackPastItsDeadlineSaysTheServerIsTooSlow(t *testing.T) {
	const deadline = 300 * time.Millisecond
	a := newTestApp(t, func(c *Config) { c.SignInDeadline = deadline })
	a.auth.finish = func(r *http.Request) (websession.Account, error) {
		<-r.Context().Done() // a token endpoint that never answers
		return websession.Account{}, apperr.Wrap(fmt.Errorf("token request: %w", r.Context().Err()), apperr.Unavailable,
			"Your account's sign-in server didn't complete the sign-in. Please try again.")
	}
	start := time.Now()
	res := a.get("/oauth/callback?state=s&code=c&iss=" + "https%3A%2F%2Fauth.example.com")
	if took := time.Since(start); took > deadline+5*time.Second {
		t.Errorf("callback answered after %s", took)
	}
	if res.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", res.status)
	}
	if msg := testid(res.doc, "error-message").Text(); !strings.Contains(msg, "auth.example.com is too slow") {
		t.Errorf("message %q, want it to name auth.example.com as too slow", msg)
	}
}

// TestClientThatLeavesMidRequestIsNotAnError: a browser that disconnects
// while the conversation is loading (its request context is cancelled) is
// logged at info, not as an error or an upstream failure, and gets no
// error page.
func TestClientThatLeavesMidRequestIsNotAnError(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 2, 0)
	hold := make(chan struct{})
	defer close(hold)
	a.chat.block["GetConvo"] = hold
	entered := make(chan string, 8)
	a.chat.entered = entered

	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, a.srv.URL+"/convos/c1", nil)
	for _, c := range a.client.Jar.Cookies(req.URL) {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.server.ServeHTTP(rec, req)
	}()
	for m := range entered {
		if m == "GetConvo" {
			break
		}
	}
	cancel() // the browser goes away
	<-done

	logs := a.logs.String()
	for _, bad := range []string{"level=ERROR", "level=WARN"} {
		if strings.Contains(logs, bad) {
			t.Errorf("a client that left was logged at %s:\n%s", bad, logs)
		}
	}
	if !strings.Contains(logs, "client went away") {
		t.Errorf("no info line for the client that left:\n%s", logs)
	}
	if rec.Body.Len() != 0 {
		t.Errorf("an answer was written for a client that left: %d %.200s", rec.Code, rec.Body.String())
	}
}

// TestOversizedFormIs413WithTheHumanMessage posts as an attacker would: a
// 10 MB send form gets 413 with the page's human message (the body is not
// read past the cap), while a message merely over the length limit still
// gets the field error with its draft kept.
func TestOversizedFormIs413WithTheHumanMessage(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 2, 0)

	huge := url.Values{"token": {a.token("c1")}, "text": {strings.Repeat("A", 10<<20)}}
	start := time.Now()
	res := a.post("/convos/c1/messages", huge)
	t.Logf("10 MB send form: %d after %s", res.status, time.Since(start).Round(time.Millisecond))
	if res.status != http.StatusRequestEntityTooLarge {
		t.Errorf("10 MB form: status %d, want 413", res.status)
	}
	if msg := testid(res.doc, "error").Text(); !strings.Contains(msg, "too long") {
		t.Errorf("10 MB form: message %q, want the human message", msg)
	}
	if n := len(a.chat.sentTexts()); n != 0 {
		t.Errorf("%d messages sent", n)
	}
	if res := a.post("/oauth/logout", url.Values{"did": {strings.Repeat("x", 1<<20)}}); res.status != http.StatusRequestEntityTooLarge {
		t.Errorf("1 MB sign-out form: status %d, want 413", res.status)
	}

	// Twice the limit (2,000 emoji, 8,000 bytes, 24,000 encoded) still reads: field error, draft kept.
	long := strings.Repeat("😀", 2000)
	res = a.post("/convos/c1/messages", url.Values{"token": {a.token("c1")}, "text": {long}})
	if res.status != http.StatusBadRequest {
		t.Errorf("over-limit message: status %d, want 400", res.status)
	}
	if got := testid(res.doc, "draft").Text(); got != long {
		t.Errorf("over-limit message: draft not kept (%d bytes)", len(got))
	}
}
