package handlers

import (
	"fmt"
	"net/http"
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
