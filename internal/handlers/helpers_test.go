package handlers

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/PuerkitoBio/goquery"
	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/websession"
)

// fakeAuth stands in for *oauth.Service. FinishLogin signs in the account
// named by the callback's query (?did=&handle=&chat=0) unless finish is set.
type fakeAuth struct {
	mu      sync.Mutex
	start   func(identifier string) (string, error)
	finish  func(r *http.Request) (websession.Account, error)
	ended   map[string]bool // session ids whose OAuth session is gone
	calls   []string        // "start:<identifier>", "finish", "logout:<did>:<session>"
	nextSes int
}

func (f *fakeAuth) record(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fakeAuth) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeAuth) StartLogin(ctx context.Context, w http.ResponseWriter, r *http.Request, identifier string) (string, error) {
	f.record("start:" + identifier)
	if f.start != nil {
		return f.start(identifier)
	}
	return "https://pds.example/oauth/authorize?client_id=x&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Areq-1", nil
}

func (f *fakeAuth) FinishLogin(ctx context.Context, w http.ResponseWriter, r *http.Request) (websession.Account, error) {
	f.record("finish")
	if f.finish != nil {
		return f.finish(r)
	}
	q := r.URL.Query()
	f.mu.Lock()
	f.nextSes++
	id := "ses-" + string(rune('0'+f.nextSes))
	f.mu.Unlock()
	return websession.Account{
		DID:          syntax.DID(q.Get("did")),
		SessionID:    id,
		Handle:       q.Get("handle"),
		HasChatScope: q.Get("chat") != "0",
	}, nil
}

// endSession makes the OAuth session sessionID gone (revoked, expired or
// deleted server-side) while the browser's cookie still names it.
func (f *fakeAuth) endSession(sessionID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended == nil {
		f.ended = map[string]bool{}
	}
	f.ended[sessionID] = true
}

func (f *fakeAuth) SessionActive(ctx context.Context, did syntax.DID, sessionID string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.ended[sessionID], nil
}

func (f *fakeAuth) Logout(ctx context.Context, did syntax.DID, sessionID string) error {
	f.record("logout:" + did.String() + ":" + sessionID)
	return nil
}

type fakeDocs struct{}

func (fakeDocs) ClientMetadata() atoauth.ClientMetadata {
	return atoauth.ClientMetadata{ClientID: "https://skydm.example/oauth-client-metadata.json"}
}
func (fakeDocs) JWKS() atoauth.JWKS { return atoauth.JWKS{} }

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testApp struct {
	t      *testing.T
	srv    *httptest.Server
	auth   *fakeAuth
	logs   *lockedBuffer
	client *http.Client // cookie jar, does not follow redirects
	server *Server
}

type appOption func(*Config)

func newTestApp(t *testing.T, opts ...appOption) *testApp {
	t.Helper()
	auth := &fakeAuth{}
	logs := &lockedBuffer{}
	srv := httptest.NewUnstartedServer(nil)
	cfg := Config{
		Auth:      auth,
		Sessions:  websession.New(bytes.Repeat([]byte("h"), 32), bytes.Repeat([]byte("b"), 32), false),
		PublicURL: "http://" + srv.Listener.Addr().String(),
		Logger:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.Config.Handler = s
	srv.Start()
	t.Cleanup(srv.Close)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &testApp{t: t, srv: srv, auth: auth, logs: logs, client: client, server: s}
}

// response is a finished request: status, headers, body and its document.
type response struct {
	status int
	header http.Header
	body   string
	doc    *goquery.Document
}

func (a *testApp) do(req *http.Request) response {
	a.t.Helper()
	res, err := a.client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(b))
	if err != nil {
		a.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: string(b), doc: doc}
}

func (a *testApp) get(path string) response {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.srv.URL+path, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	return a.do(req)
}

// post sends a form as a same-origin browser would.
func (a *testApp) post(path string, form url.Values) response {
	a.t.Helper()
	return a.postWith(path, form, map[string]string{"Origin": a.srv.URL, "Sec-Fetch-Site": "same-origin"})
}

func (a *testApp) postWith(path string, form url.Values, headers map[string]string) response {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return a.do(req)
}

// signIn completes a (fake) OAuth callback for did/handle in this browser.
func (a *testApp) signIn(did, handle string, chat bool) {
	a.t.Helper()
	q := url.Values{"did": {did}, "handle": {handle}}
	if !chat {
		q.Set("chat", "0")
	}
	res := a.get("/oauth/callback?" + q.Encode())
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/" {
		a.t.Fatalf("callback: status %d location %q, want 303 /", res.status, res.header.Get("Location"))
	}
}

// currentHandle returns the handle the header shows, or "" when signed out.
func (a *testApp) currentHandle() string {
	a.t.Helper()
	res := a.get("/")
	if res.status != http.StatusOK {
		a.t.Fatalf("GET /: status %d", res.status)
	}
	return strings.TrimSpace(res.doc.Find(`[data-testid="current-handle"]`).Text())
}

func testid(doc *goquery.Document, id string) *goquery.Selection {
	return doc.Find(`[data-testid="` + id + `"]`)
}

// errorWith returns an apperr with a code, message and reason.
func errorWith(code apperr.Code, reason, msg string) error {
	return &apperr.Error{Code: code, Reason: reason, Message: msg}
}
