package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"

	"github.com/skydm/skydm/internal/pgtest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// sandboxStateFile writes the state file run reads for n (the fields
// sandbox.Load needs).
func sandboxStateFile(t testing.TB, n *sandbox.Network) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sandbox-state.json")
	b, err := json.Marshal(map[string]any{
		"plcUrl": n.PLCURL, "pdsUrl": n.PDSURL, "chatUrl": n.ChatURL,
		"chatDid": n.ChatDID, "chatServiceRef": n.ChatServiceRef,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// browserClient is a cookie-keeping client that does not follow redirects.
type browserClient struct {
	t    testing.TB
	c    *http.Client
	base string
}

func newBrowserClient(t testing.TB, base string) *browserClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browserClient{t: t, base: base, c: &http.Client{
		Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *browserClient) do(req *http.Request) (*http.Response, *goquery.Document) {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(string(body)))
	if err != nil {
		b.t.Fatal(err)
	}
	return res, doc
}

func (b *browserClient) get(u string) (*http.Response, *goquery.Document) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site") // as after the PDS's redirect
	return b.do(req)
}

func (b *browserClient) post(path string, form url.Values) (*http.Response, *goquery.Document) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(req)
}

func sandboxEnv(t testing.TB, n *sandbox.Network) map[string]string {
	env := baseEnv(t, sandboxStateFile(t, n))
	return env
}

// startLogin posts the sign-in form and returns the authorization URL the
// continue page sends the browser to.
func startLogin(t testing.TB, b *browserClient, identifier string) string {
	t.Helper()
	res, doc := b.post("/oauth/login", url.Values{"identifier": {identifier}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST /oauth/login: %d; error %q", res.StatusCode, doc.Find(`[data-testid="signin-error"]`).Text())
	}
	authz, ok := doc.Find(`[data-testid="continue-link"]`).Attr("href")
	if !ok {
		t.Fatalf("no continue link")
	}
	return authz
}

// On both stores: SQLite, and Postgres (-db postgres://…).
func TestE2ESignInThroughSandboxPDS(t *testing.T) {
	pgtest.Each(t, testE2ESignInThroughSandboxPDS)
}

func testE2ESignInThroughSandboxPDS(t *testing.T) {
	n := testenv.Network(t)
	acct := testenv.NewAccount(t, n)
	env := sandboxEnv(t, n)
	env["SKYDM_DB"] = pgtest.DSN(t)
	base, logs := startRun(t, nil, env)
	b := newBrowserClient(t, base)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	authz := startLogin(t, b, acct.Handle)
	if !strings.HasPrefix(authz, n.PDSURL+"/oauth/authorize?") {
		t.Fatalf("authorize URL %q is not the sandbox PDS's", authz)
	}
	callback, err := testenv.CompleteAuthorize(ctx, authz, acct.Handle, acct.Password, true)
	if err != nil {
		t.Fatalf("CompleteAuthorize: %v", err)
	}
	if !strings.HasPrefix(callback, base+"/oauth/callback?") {
		t.Fatalf("PDS redirected to %q, want our callback", callback)
	}
	res, doc := b.get(callback)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("callback: %d %q: %s", res.StatusCode, res.Header.Get("Location"), doc.Find(`[data-testid="error-message"]`).Text())
	}
	_, doc = b.get(base + "/")
	if got := strings.TrimSpace(doc.Find(`[data-testid="current-handle"]`).Text()); got != acct.Handle {
		t.Fatalf("header shows %q, want %q", got, acct.Handle)
	}
	if doc.Find(`[data-testid="home-notice"]`).Length() != 0 {
		t.Errorf("DM-access notice shown although the chat scope was granted")
	}
	if doc.Find(`[data-testid="convo-list"]`).Length() != 1 {
		t.Errorf("the signed-in start page is not the inbox")
	}

	// A replayed callback must not sign anyone in again or crash.
	res, _ = b.get(callback)
	if res.StatusCode < 400 || res.StatusCode >= 500 {
		t.Errorf("replayed callback: status %d, want 4xx", res.StatusCode)
	}

	res, _ = b.post("/oauth/logout", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	_, doc = b.get(base + "/")
	if got := doc.Find(`[data-testid="current-handle"]`).Text(); got != "" {
		t.Errorf("still signed in as %q after logout", got)
	}
	for _, secret := range []string{acct.Password, "code=cod-"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log contains %q", secret)
		}
	}
}

func TestE2EDeniedConsentShowsMessageAndSignsNoOneIn(t *testing.T) {
	n := testenv.Network(t)
	acct := testenv.NewAccount(t, n)
	base, _ := startRun(t, nil, sandboxEnv(t, n))
	b := newBrowserClient(t, base)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	callback, err := testenv.CompleteAuthorize(ctx, startLogin(t, b, acct.Handle), acct.Handle, acct.Password, false)
	if err != nil {
		t.Fatalf("CompleteAuthorize: %v", err)
	}
	res, doc := b.get(callback)
	if res.StatusCode < 400 || res.StatusCode >= 500 {
		t.Fatalf("denied callback: status %d, want 4xx", res.StatusCode)
	}
	msg := doc.Find(`[data-testid="error-message"]`).Text()
	if msg == "" || strings.Contains(msg, "access_denied") {
		t.Errorf("message %q", msg)
	}
	t.Logf("denied: %d %q", res.StatusCode, msg)
	_, doc = b.get(base + "/")
	if got := doc.Find(`[data-testid="current-handle"]`).Text(); got != "" {
		t.Errorf("signed in as %q after denying", got)
	}
}

func TestE2EUnknownHandleIsShownNextToTheField(t *testing.T) {
	n := testenv.Network(t)
	base, _ := startRun(t, nil, sandboxEnv(t, n))
	b := newBrowserClient(t, base)
	res, doc := b.post("/oauth/login", url.Values{"identifier": {"nobody-here.test"}})
	if res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 404 or 400", res.StatusCode)
	}
	if v, _ := doc.Find(`[data-testid="signin-identifier"]`).Attr("value"); v != "nobody-here.test" {
		t.Errorf("input kept as %q", v)
	}
	msg := doc.Find(`[data-testid="signin-error"]`).Text()
	if msg == "" {
		t.Errorf("no message next to the field")
	}
	t.Logf("unknown handle: %d %q", res.StatusCode, msg)
}
