package handlers

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/testenv"
)

// TestChromiumReachesTheServerFromOurSignInForm is the evidence for the
// continue page: Chromium applies the sign-in page's CSP form-action 'self'
// to every redirect that follows the form's POST (CSP3), so answering
// POST /oauth/login with a 303 to the authorization server is blocked,
// while the continue page's meta refresh (a new navigation, not a form
// submission) gets there. Both variants use our real sign-in page and CSP.
func TestChromiumReachesTheServerFromOurSignInForm(t *testing.T) {
	// The "authorization server": another origin (localhost vs 127.0.0.1).
	authz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>authorization server</title><h1 id="landed">landed</h1>`)
	}))
	t.Cleanup(authz.Close)
	_, port, _ := net.SplitHostPort(authz.Listener.Addr().String())
	authorizeURL := "http://localhost:" + port + "/oauth/authorize?request_uri=urn%3Ax"

	tests := []struct {
		name        string
		redirect    bool // answer the POST with a 303 instead of the continue page
		wantArrival bool
	}{
		{"continue page reaches the server", false, true},
		{"a 303 from the form post is blocked by form-action", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newTestApp(t)
			app.auth.start = func(string) (string, error) { return authorizeURL, nil }
			if tt.redirect {
				real := app.srv.Config.Handler
				app.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPost && r.URL.Path == "/oauth/login" {
						kit.SecureHeaders(app.server.csp, app.server.hsts, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
							http.Redirect(w, r, authorizeURL, http.StatusSeeOther)
						})).ServeHTTP(w, r)
						return
					}
					real.ServeHTTP(w, r)
				})
			}
			ctx := testenv.Browser(t, testenv.BrowserOptions{})
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			watch, err := testenv.WatchLog(ctx)
			if err != nil {
				t.Fatal(err)
			}
			field := chromedp.CSS(`[data-testid="signin-identifier"]`)
			if err := chromedp.Do(ctx,
				chromedp.Navigate(app.srv.URL+"/signin"),
				chromedp.WaitVisible(field),
				chromedp.SendKeys(field, "alice.test"),
				chromedp.Click(chromedp.CSS(`[data-testid="signin-submit"]`)),
			); err != nil {
				t.Fatal(err)
			}
			_, err = testenv.WaitLocation(ctx, "http://localhost:"+port+"/", 5*time.Second)
			if arrived := err == nil; arrived != tt.wantArrival {
				t.Fatalf("arrived at the authorization server = %v, want %v (%v); console: %q", arrived, tt.wantArrival, err, watch.Entries())
			}
			if !tt.wantArrival {
				if v := watch.Entries("form-action"); len(v) == 0 {
					t.Errorf("no form-action violation logged: %q", watch.Entries())
				} else {
					t.Logf("Chromium: %s", v[0])
				}
			} else if v := watch.Entries("Content Security Policy"); len(v) > 0 {
				t.Errorf("CSP violations: %q", v)
			}
			if strings.Contains(strings.Join(watch.Entries(), " "), "favicon") {
				t.Errorf("favicon errors: %q", watch.Entries())
			}
		})
	}
}
