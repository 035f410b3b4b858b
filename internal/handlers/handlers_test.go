package handlers

import (
	"context"

	"errors"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/websession"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/skydm/skydm/internal/apperr"
)

var nonceRE = regexp.MustCompile(`script-src 'self' 'nonce-([A-Za-z0-9_-]+)'`)

func TestSecurityHeadersAndNonceDifferPerRequest(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.ImageOrigins = []string{"https://cdn.bsky.app"} })
	seen := map[string]bool{}
	for _, path := range []string{"/", "/", "/signin", "/no-such-page"} {
		res := app.get(path)
		csp := res.header.Get("Content-Security-Policy")
		m := nonceRE.FindStringSubmatch(csp)
		if m == nil {
			t.Fatalf("GET %s: CSP without nonce: %q", path, csp)
		}
		if seen[m[1]] {
			t.Errorf("GET %s: nonce %q reused", path, m[1])
		}
		seen[m[1]] = true
		scripts := res.doc.Find("script")
		if scripts.Length() == 0 {
			t.Fatalf("GET %s: no <script>", path)
		}
		scripts.Each(func(_ int, s *goquery.Selection) {
			if got, _ := s.Attr("nonce"); got != m[1] {
				t.Errorf("GET %s: <script nonce=%q>, CSP nonce %q", path, got, m[1])
			}
		})
		for _, d := range []string{"default-src 'none'", "style-src 'self'", "img-src 'self' https://cdn.bsky.app;",
			"connect-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("GET %s: CSP %q lacks %q", path, csp, d)
			}
		}
		for h, want := range map[string]string{
			"X-Content-Type-Options":     "nosniff",
			"Referrer-Policy":            "same-origin",
			"Cross-Origin-Opener-Policy": "same-origin",
			"X-Frame-Options":            "DENY",
		} {
			if got := res.header.Get(h); got != want {
				t.Errorf("GET %s: %s = %q, want %q", path, h, got, want)
			}
		}
		if res.header.Get("Permissions-Policy") == "" {
			t.Errorf("GET %s: no Permissions-Policy", path)
		}
		if res.header.Get("Strict-Transport-Security") != "" {
			t.Errorf("GET %s: HSTS sent without HSTS config", path)
		}
	}
}

func TestHSTSOnlyWhenConfigured(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.HSTS = true })
	if got := app.get("/healthz").header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
		t.Fatalf("HSTS = %q", got)
	}
}

func TestCrossOriginPostIsRefusedAndChangesNothing(t *testing.T) {
	posts := []struct {
		path string
		form url.Values
	}{
		{"/oauth/login", url.Values{"identifier": {"alice.test"}}},
		{"/oauth/logout", url.Values{"did": {"did:plc:alice"}}},
		{"/account/switch", url.Values{"did": {"did:plc:bob"}}},
	}
	attackers := []struct {
		name    string
		headers map[string]string
	}{
		{"evil origin", map[string]string{"Origin": "https://evil.example"}},
		{"cross-site fetch metadata", map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"same-site but other origin", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://sub.127.0.0.1"}},
	}
	for _, p := range posts {
		for _, a := range attackers {
			t.Run(p.path+" "+a.name, func(t *testing.T) {
				app := newTestApp(t)
				app.signIn("did:plc:bob", "bob.test", true)
				app.signIn("did:plc:alice", "alice.test", true)
				before := app.auth.Calls()
				res := app.postWith(p.path, p.form, a.headers)
				if res.status != http.StatusForbidden {
					t.Fatalf("status %d, want 403", res.status)
				}
				if len(res.header.Values("Set-Cookie")) != 0 {
					t.Errorf("refused request set cookies: %q", res.header.Values("Set-Cookie"))
				}
				if got := testid(res.doc, "error-message").Text(); !strings.Contains(got, "another site") {
					t.Errorf("error message %q", got)
				}
				if after := app.auth.Calls(); !slices.Equal(before, after) {
					t.Errorf("auth called: %v", after[len(before):])
				}
				if h := app.currentHandle(); h != "alice.test" {
					t.Errorf("signed in as %q after refused POST, want alice.test", h)
				}
			})
		}
	}
}

func TestSameOriginPostWithoutFetchMetadataIsAllowed(t *testing.T) {
	app := newTestApp(t)
	res := app.postWith("/oauth/login", url.Values{"identifier": {"alice.test"}}, map[string]string{"Origin": app.srv.URL})
	if res.status != http.StatusOK {
		t.Fatalf("status %d, want 200", res.status)
	}
}

func TestGETNeverChangesState(t *testing.T) {
	app := newTestApp(t)
	app.signIn("did:plc:bob", "bob.test", true)
	app.signIn("did:plc:alice", "alice.test", true)
	before := app.auth.Calls()
	for _, path := range []string{
		"/", "/signin", "/account", "/healthz", "/static/app.css",
		"/oauth/logout", "/oauth/logout?did=did:plc:alice",
		"/account/switch?did=did:plc:bob", "/oauth/login?identifier=mallory.test",
		"/oauth-client-metadata.json", "/oauth/jwks.json", "/nope",
	} {
		res := app.get(path)
		if res.status >= 500 {
			t.Errorf("GET %s: status %d", path, res.status)
		}
	}
	if after := app.auth.Calls(); !slices.Equal(before, after) {
		t.Errorf("GETs called auth: %v", after[len(before):])
	}
	if h := app.currentHandle(); h != "alice.test" {
		t.Errorf("after GETs signed in as %q, want alice.test", h)
	}
	res := app.get("/account")
	if n := testid(res.doc, "account").Length(); n != 2 {
		t.Errorf("after GETs %d accounts listed, want 2", n)
	}
}

func TestSignInErrorKeepsInputAndShowsMessageByTheField(t *testing.T) {
	tests := []struct {
		name       string
		input      string
		err        error
		wantStatus int
		wantMsg    string
		wantStart  bool
	}{
		{"invalid handle is 400", "not a handle!", errorWith(apperr.Invalid, "", "That is not a handle, DID or server address."), 400, "That is not a handle, DID or server address.", true},
		{"unknown account is 404", "nobody.bsky.social", errorWith(apperr.NotFound, "", "We could not find the account nobody.bsky.social."), 404, "We could not find the account nobody.bsky.social.", true},
		{"server down is 503", "alice.example.com", errorWith(apperr.Unavailable, "", "Your server is not answering. Please try again."), 503, "Your server is not answering. Please try again.", true},
		{"internal cause stays hidden", "alice.test", errors.New("dial tcp: secret-token-123"), 500, "Something went wrong on our side. It has been logged.", true},
		{"empty input is 400 without a lookup", "   ", nil, 400, "Enter your handle", false},
		{"markup is escaped", `<b>x</b>"'`, errorWith(apperr.Invalid, "", "Not valid."), 400, "Not valid.", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newTestApp(t)
			app.auth.start = func(string) (string, error) { return "", tt.err }
			res := app.post("/oauth/login", url.Values{"identifier": {tt.input}})
			if res.status != tt.wantStatus {
				t.Fatalf("status %d, want %d", res.status, tt.wantStatus)
			}
			input := testid(res.doc, "signin-identifier")
			if got, _ := input.Attr("value"); got != strings.TrimSpace(tt.input) {
				t.Errorf("input value %q, want %q", got, strings.TrimSpace(tt.input))
			}
			if got, _ := input.Attr("aria-invalid"); got != "true" {
				t.Errorf("aria-invalid %q", got)
			}
			msg := testid(res.doc, "signin-error")
			if !strings.Contains(msg.Text(), tt.wantMsg) {
				t.Errorf("error next to the field %q, want %q", msg.Text(), tt.wantMsg)
			}
			if id, _ := msg.Attr("id"); !strings.Contains(input.AttrOr("aria-describedby", ""), id) {
				t.Errorf("field is not described by the error (%q)", input.AttrOr("aria-describedby", ""))
			}
			if strings.Contains(res.body, "secret-token-123") || strings.Contains(res.body, "<b>x</b>") {
				t.Errorf("page leaks cause or unescaped input")
			}
			started := len(app.auth.Calls()) > 0
			if started != tt.wantStart {
				t.Errorf("StartLogin called = %v, want %v", started, tt.wantStart)
			}
		})
	}
}

func TestLoginContinuesToAuthorizationServerWithoutRedirect(t *testing.T) {
	app := newTestApp(t)
	const authz = "https://pds.example/oauth/authorize?client_id=c&request_uri=urn%3Areq"
	app.auth.start = func(id string) (string, error) { return authz, nil }
	res := app.post("/oauth/login", url.Values{"identifier": {" @Alice.Test "}})
	if res.status != http.StatusOK {
		t.Fatalf("status %d, want 200 (a redirect would break CSP form-action)", res.status)
	}
	if got := app.auth.Calls(); !slices.Equal(got, []string{"start:@Alice.Test"}) {
		t.Errorf("calls %v", got)
	}
	refresh, _ := res.doc.Find(`meta[http-equiv="refresh"]`).Attr("content")
	if refresh != "0;url="+authz {
		t.Errorf("meta refresh %q", refresh)
	}
	if href, _ := testid(res.doc, "continue-link").Attr("href"); href != authz {
		t.Errorf("continue link %q", href)
	}
	if cc := res.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
}

func TestLoginRefusesNonHTTPAuthorizeURL(t *testing.T) {
	app := newTestApp(t)
	app.auth.start = func(string) (string, error) { return "javascript:alert(1)", nil }
	res := app.post("/oauth/login", url.Values{"identifier": {"alice.test"}})
	if res.status != http.StatusInternalServerError || strings.Contains(res.body, "javascript:") {
		t.Fatalf("status %d, body contains javascript: %v", res.status, strings.Contains(res.body, "javascript:"))
	}
}

func TestCallbackSignsInAndHeaderShowsHandle(t *testing.T) {
	app := newTestApp(t)
	if h := app.currentHandle(); h != "" {
		t.Fatalf("signed in before callback as %q", h)
	}
	app.signIn("did:plc:alice", "alice.test", true)
	res := app.get("/")
	if got := strings.TrimSpace(testid(res.doc, "current-handle").Text()); got != "alice.test" {
		t.Errorf("header handle %q", got)
	}
	if got := testid(res.doc, "avatar-initials").Text(); got != "A" {
		t.Errorf("initials %q", got)
	}
	if testid(res.doc, "inbox-placeholder").Length() != 1 {
		t.Errorf("no inbox placeholder")
	}
	if testid(res.doc, "home-notice").Length() != 0 {
		t.Errorf("chat notice shown although chat scope was granted")
	}
}

func TestCallbackWithoutChatScopeSaysToSignInAgain(t *testing.T) {
	app := newTestApp(t)
	app.signIn("did:plc:alice", "alice.test", false)
	res := app.get("/")
	if !strings.Contains(testid(res.doc, "home-notice").Text(), "sign in again") && !strings.Contains(testid(res.doc, "home-notice").Text(), "Sign in again") {
		t.Errorf("notice %q", testid(res.doc, "home-notice").Text())
	}
	if testid(res.doc, "home-signin-again").Length() != 1 {
		t.Errorf("no sign-in-again button")
	}
	if v, _ := res.doc.Find(`form[action="/oauth/login"] input[name="identifier"]`).Attr("value"); v != "did:plc:alice" {
		t.Errorf("sign-in-again identifier %q", v)
	}
}

func TestCallbackErrorShowsMessageNotCause(t *testing.T) {
	app := newTestApp(t)
	app.auth.finish = func(*http.Request) (websessionAccount, error) {
		return websessionAccount{}, apperr.Wrap(errors.New("access_denied from pds: secret detail"), apperr.Forbidden, "You declined the sign-in on your server.")
	}
	res := app.get("/oauth/callback?error=access_denied")
	if res.status != http.StatusForbidden {
		t.Fatalf("status %d", res.status)
	}
	if got := testid(res.doc, "error-message").Text(); got != "You declined the sign-in on your server." {
		t.Errorf("message %q", got)
	}
	if strings.Contains(res.body, "secret detail") {
		t.Errorf("cause leaked")
	}
	if h := app.currentHandle(); h != "" {
		t.Errorf("signed in as %q after a failed callback", h)
	}
}

func TestInternalErrorRendersGenericMessageAndIsLogged(t *testing.T) {
	app := newTestApp(t)
	app.auth.finish = func(*http.Request) (websessionAccount, error) {
		return websessionAccount{}, errors.New("database password is secret-hunter2")
	}
	res := app.get("/oauth/callback?code=c&state=s")
	if res.status != http.StatusInternalServerError {
		t.Fatalf("status %d", res.status)
	}
	if strings.Contains(res.body, "secret") {
		t.Errorf("page leaks the cause: %s", res.body)
	}
	if got := testid(res.doc, "error-message").Text(); got != apperr.MessageOf(errors.New("x")) {
		t.Errorf("message %q", got)
	}
	id := testid(res.doc, "error-request-id").Text()
	if id == "" {
		t.Fatalf("no request id on the page")
	}
	logs := app.logs.String()
	if !strings.Contains(logs, "secret-hunter2") || !strings.Contains(logs, "request_id="+id) {
		t.Errorf("log lacks the cause or request id %s:\n%s", id, logs)
	}
	if strings.Contains(logs, "code=c") || strings.Contains(logs, "state=s") {
		t.Errorf("log contains the callback query:\n%s", logs)
	}
}

func TestPanicRenders500PageAndIsLogged(t *testing.T) {
	app := newTestApp(t)
	app.auth.finish = func(*http.Request) (websessionAccount, error) { panic("boom secret-panic-value") }
	res := app.get("/oauth/callback")
	if res.status != http.StatusInternalServerError {
		t.Fatalf("status %d", res.status)
	}
	if strings.Contains(res.body, "secret-panic-value") {
		t.Errorf("panic value leaked")
	}
	if testid(res.doc, "error-title").Text() != "Something went wrong" {
		t.Errorf("title %q", testid(res.doc, "error-title").Text())
	}
	m := nonceRE.FindStringSubmatch(res.header.Get("Content-Security-Policy"))
	if m == nil || res.doc.Find("script").AttrOr("nonce", "") != m[1] {
		t.Errorf("500 page without matching CSP nonce")
	}
	logs := app.logs.String()
	if !strings.Contains(logs, "panic serving request") || !strings.Contains(logs, "secret-panic-value") || !strings.Contains(logs, "status=500") {
		t.Errorf("panic not logged:\n%s", logs)
	}
}

func TestErrorPath(t *testing.T) {
	tests := []struct {
		name         string
		signedIn     bool
		err          error
		wantStatus   int
		wantLocation string
		wantMsg      string
		wantAgain    bool
	}{
		{"session expired redirects to sign-in with the handle", true, errorWith(apperr.Unauthorized, "SessionExpired", "gone"), 303, "/signin?hint=alice.test&reason=expired", "", false},
		{"unauthorized redirects to sign-in", false, errorWith(apperr.Unauthorized, "", ""), 303, "/signin", "", false},
		{"scope missing offers to sign in again", true, errorWith(apperr.Forbidden, "ScopeMissing", "Missing scope"), 403, "", "DM", true},
		{"not found shows its message", true, errorWith(apperr.NotFound, "ConvoNotFound", "That conversation does not exist."), 404, "", "That conversation does not exist.", false},
		{"rate limited is 429", false, errorWith(apperr.RateLimited, "", ""), 429, "", "Too many requests", false},
		{"plain error is internal", false, errors.New("secret"), 500, "", "Something went wrong on our side", false},
		{"nil error is internal", false, nil, 500, "", "Something went wrong on our side", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newTestApp(t)
			app.signIn("did:plc:alice", "alice.test", true)
			h := kit.SecureHeaders(app.server.csp, app.server.hsts, app.server.kit.LoadSession(app.server.sessions, app.server.sessionActive, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				app.server.kit.Error(w, r, tt.err)
			})))
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			if tt.signedIn {
				for _, c := range app.client.Jar.Cookies(mustURL(t, app.srv.URL)) {
					req.AddCookie(c)
				}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Location"); got != tt.wantLocation {
				t.Errorf("Location %q, want %q", got, tt.wantLocation)
			}
			if tt.wantLocation != "" {
				return
			}
			doc, err := goquery.NewDocumentFromReader(rec.Body)
			if err != nil {
				t.Fatal(err)
			}
			if got := testid(doc, "error-message").Text(); !strings.Contains(got, tt.wantMsg) || strings.Contains(got, "secret") {
				t.Errorf("message %q, want it to contain %q", got, tt.wantMsg)
			}
			if got := testid(doc, "signin-again").Length() == 1; got != tt.wantAgain {
				t.Errorf("sign-in-again button = %v", got)
			}
		})
	}
}

func TestAccountsSwitchAndSignOut(t *testing.T) {
	app := newTestApp(t)
	app.signIn("did:plc:bob", "bob.test", true)
	app.signIn("did:plc:alice", "alice.test", false)

	res := app.get("/account")
	if n := testid(res.doc, "account").Length(); n != 2 {
		t.Fatalf("%d accounts listed", n)
	}
	if first := testid(res.doc, "account").First().AttrOr("data-did", ""); first != "did:plc:alice" {
		t.Errorf("active account listed first = %q", first)
	}
	if testid(res.doc, "account-no-chat").Length() != 1 {
		t.Errorf("missing no-DM-access badge")
	}
	if testid(res.doc, "add-account").AttrOr("href", "") != "/signin" {
		t.Errorf("no add-account link")
	}

	if res := app.post("/account/switch", url.Values{"did": {"did:plc:bob"}}); res.status != http.StatusSeeOther {
		t.Fatalf("switch: status %d", res.status)
	}
	if h := app.currentHandle(); h != "bob.test" {
		t.Fatalf("after switch signed in as %q", h)
	}
	if res := app.post("/account/switch", url.Values{"did": {"did:plc:mallory"}}); res.status != http.StatusNotFound {
		t.Errorf("switch to unknown account: status %d", res.status)
	}

	if res := app.post("/oauth/logout", url.Values{"did": {"did:plc:bob"}}); res.status != http.StatusSeeOther {
		t.Fatalf("logout: status %d", res.status)
	}
	if !slices.Contains(app.auth.Calls(), "logout:did:plc:bob:ses-1") {
		t.Errorf("bob's session not revoked: %v", app.auth.Calls())
	}
	if h := app.currentHandle(); h != "alice.test" {
		t.Fatalf("after signing bob out, signed in as %q", h)
	}
	app.post("/oauth/logout", nil) // the active one
	if h := app.currentHandle(); h != "" {
		t.Fatalf("after signing out everyone, signed in as %q", h)
	}
	if res := app.get("/account"); res.status != http.StatusSeeOther || res.header.Get("Location") != "/signin" {
		t.Errorf("signed-out /account: %d %q", res.status, res.header.Get("Location"))
	}
}

func TestSigningInAgainRevokesTheReplacedSession(t *testing.T) {
	app := newTestApp(t)
	app.signIn("did:plc:alice", "alice.test", false)
	app.signIn("did:plc:alice", "alice.test", true)
	if !slices.Contains(app.auth.Calls(), "logout:did:plc:alice:ses-1") {
		t.Errorf("old session not revoked: %v", app.auth.Calls())
	}
	res := app.get("/account")
	if n := testid(res.doc, "account").Length(); n != 1 {
		t.Errorf("%d accounts", n)
	}
}

func TestSignInPage(t *testing.T) {
	app := newTestApp(t)
	res := app.get("/signin?reason=expired&hint=alice.test")
	if got := testid(res.doc, "signin-notice").Text(); !strings.Contains(got, "session has ended") {
		t.Errorf("notice %q", got)
	}
	if v := testid(res.doc, "signin-identifier").AttrOr("value", ""); v != "alice.test" {
		t.Errorf("prefilled %q", v)
	}
	res = app.get("/signin?reason=<script>")
	if testid(res.doc, "signin-notice").Length() != 0 {
		t.Errorf("unknown reason shown")
	}
	if res.doc.Find(`form[action="/oauth/login"][method="post"] input[name="identifier"]`).Length() != 1 {
		t.Errorf("no sign-in form")
	}
	for _, ex := range []string{"alice.bsky.social", "did:plc:", "https://bsky.social"} {
		if !strings.Contains(res.doc.Find("#identifier-hint").Text(), ex) {
			t.Errorf("hint lacks example %q", ex)
		}
	}
}

func TestClientDocs(t *testing.T) {
	t.Run("loopback client has none", func(t *testing.T) {
		app := newTestApp(t)
		for _, p := range []string{"/oauth-client-metadata.json", "/oauth/jwks.json"} {
			if res := app.get(p); res.status != http.StatusNotFound {
				t.Errorf("%s: status %d", p, res.status)
			}
		}
	})
	t.Run("confidential client serves JSON", func(t *testing.T) {
		app := newTestApp(t, func(c *Config) { c.ClientDocs = fakeDocs{} })
		res := app.get("/oauth-client-metadata.json")
		if res.status != 200 || res.header.Get("Content-Type") != "application/json" || !strings.Contains(res.body, `"client_id":"https://skydm.example/oauth-client-metadata.json"`) {
			t.Errorf("metadata: %d %q %s", res.status, res.header.Get("Content-Type"), res.body)
		}
		if res := app.get("/oauth/jwks.json"); res.status != 200 || !strings.Contains(res.body, `"keys"`) {
			t.Errorf("jwks: %d %s", res.status, res.body)
		}
	})
}

func TestStaticFiles(t *testing.T) {
	app := newTestApp(t)
	home := app.get("/")
	css := home.doc.Find(`link[rel="stylesheet"]`).AttrOr("href", "")
	if !strings.HasPrefix(css, "/static/app.css?v=") {
		t.Fatalf("stylesheet href %q", css)
	}
	res := app.get(css)
	if res.status != 200 || !strings.HasPrefix(res.header.Get("Content-Type"), "text/css") || !strings.Contains(res.header.Get("Cache-Control"), "immutable") {
		t.Errorf("versioned css: %d %q %q", res.status, res.header.Get("Content-Type"), res.header.Get("Cache-Control"))
	}
	if res := app.get("/static/app.css"); res.header.Get("Cache-Control") != "public, max-age=300" {
		t.Errorf("unversioned css Cache-Control %q", res.header.Get("Cache-Control"))
	}
	req, _ := http.NewRequest(http.MethodGet, app.srv.URL+css, nil)
	req.Header.Set("If-None-Match", res.header.Get("ETag"))
	if res := app.do(req); res.status != http.StatusNotModified {
		t.Errorf("revalidation: status %d", res.status)
	}
	if res := app.get("/favicon.ico"); res.status != 200 || res.header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("favicon.ico: %d %q", res.status, res.header.Get("Content-Type"))
	}
	for _, p := range []string{"/static/", "/static/nope.css", "/static/embed.go"} {
		if res := app.get(p); res.status != http.StatusNotFound {
			t.Errorf("%s: status %d", p, res.status)
		}
	}
}

func TestHealthz(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.Health = nil })
	if res := app.get("/healthz"); res.status != 200 || res.body != "ok\n" {
		t.Errorf("healthz %d %q", res.status, res.body)
	}
	bad := newTestApp(t, func(c *Config) { c.Health = func(context.Context) error { return errors.New("db gone") } })
	if res := bad.get("/healthz"); res.status != 503 || strings.Contains(res.body, "db gone") {
		t.Errorf("unhealthy %d %q", res.status, res.body)
	}
}

func TestRequestLogHasNoQuery(t *testing.T) {
	app := newTestApp(t)
	app.signIn("did:plc:alice", "alice.test", true)
	app.get("/?token=abc123")
	logs := app.logs.String()
	if !strings.Contains(logs, "path=/ status=200") {
		t.Errorf("request not logged:\n%s", logs)
	}
	if strings.Contains(logs, "abc123") {
		t.Errorf("query logged:\n%s", logs)
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

type websessionAccount = websession.Account

// TestEndedSessionIsSignedOutEverywhere: a cookie naming an account whose
// OAuth session has ended (revoked, expired, deleted) does not count as
// signed in on any page, and the account is dropped from the cookie.
func TestEndedSessionIsSignedOutEverywhere(t *testing.T) {
	app := newTestApp(t)
	app.signIn("did:plc:bob", "bob.test", true)     // ses-1
	app.signIn("did:plc:alice", "alice.test", true) // ses-2, active

	app.auth.endSession("ses-2")
	res := app.get("/account")
	if res.status != http.StatusOK {
		t.Fatalf("/account: status %d", res.status)
	}
	var listed []string
	testid(res.doc, "account").Each(func(_ int, s *goquery.Selection) { listed = append(listed, s.AttrOr("data-did", "")) })
	if !slices.Equal(listed, []string{"did:plc:bob"}) {
		t.Fatalf("/account lists %v after alice's session ended, want only bob", listed)
	}
	if h := app.currentHandle(); h != "bob.test" {
		t.Fatalf("signed in as %q, want bob.test", h)
	}

	app.auth.endSession("ses-1")
	if res := app.get("/account"); res.status != http.StatusSeeOther || res.header.Get("Location") != "/signin" {
		t.Fatalf("/account with every session ended: %d %q, want the signed-out redirect", res.status, res.header.Get("Location"))
	}
	// Dropped from the cookie: even a server that forgot the sessions had
	// ended no longer sees them.
	app.auth.mu.Lock()
	app.auth.ended = nil
	app.auth.mu.Unlock()
	if h := app.currentHandle(); h != "" {
		t.Fatalf("ended accounts still in the cookie: signed in as %q", h)
	}
}
