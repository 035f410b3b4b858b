package oauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
)

func TestParseIdentifier(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		sandbox bool
		handle  string
		did     string
		server  string
		invalid bool
	}{
		{"handle accepted", "alice.bsky.social", false, "alice.bsky.social", "", "", false},
		{"at sign and case stripped", "  @Alice.Bsky.Social ", false, "alice.bsky.social", "", "", false},
		{"plc did accepted", "did:plc:ewvi7nxzyoun6zhxrhs64oiz", false, "", "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "", false},
		{"web did accepted", "did:web:example.com", false, "", "did:web:example.com", "", false},
		{"entryway url gives server", "https://bsky.social", false, "", "", "https://bsky.social", false},
		{"entryway url with slash gives server", "https://Bsky.Social/", false, "", "", "https://bsky.social", false},
		{"sandbox pds url allowed in sandbox", "http://localhost:2583", true, "", "", "http://localhost:2583", false},
		{"test tld allowed in sandbox", "alice.test", true, "alice.test", "", "", false},
		{"empty refused", "   ", false, "", "", "", true},
		{"no dot refused", "alice", false, "", "", "", true},
		{"spaces refused", "alice bsky.social", false, "", "", "", true},
		{"bad characters refused", "al!ce.bsky.social", false, "", "", "", true},
		{"reserved tld refused in production", "alice.test", false, "", "", "", true},
		{"handle.invalid refused", "handle.invalid", true, "", "", "", true},
		{"unknown did method refused", "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme", false, "", "", "", true},
		{"malformed did refused", "did:plc:", false, "", "", "", true},
		{"http url refused in production", "http://bsky.social", false, "", "", "", true},
		{"localhost url refused in production", "https://localhost", false, "", "", "", true},
		{"url with path refused", "https://bsky.social/profile/alice", false, "", "", "", true},
		{"url with port refused in production", "https://bsky.social:8443", false, "", "", "", true},
		{"loopback ip url refused in production", "https://127.0.0.1", false, "", "", "", true},
		{"private ip url refused in production", "https://10.1.2.3", false, "", "", "", true},
		{"http non-localhost refused in sandbox", "http://example.com:2583", true, "", "", "", true},
		{"javascript url refused", "javascript:alert(1)", false, "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Service{cfg: Config{Sandbox: tt.sandbox}, policy: policy{sandbox: tt.sandbox}}
			got, err := s.parseIdentifier(tt.in)
			if tt.invalid {
				if err == nil {
					t.Fatalf("parseIdentifier(%q) = %+v, want error", tt.in, got)
				}
				if apperr.CodeOf(err) != apperr.Invalid || apperr.MessageOf(err) == "" {
					t.Fatalf("error %v: code %s, want Invalid with a message", err, apperr.CodeOf(err))
				}
				return
			}
			if err != nil {
				t.Fatalf("parseIdentifier(%q): %v", tt.in, err)
			}
			if got.handle.String() != tt.handle || got.did.String() != tt.did || got.server != tt.server {
				t.Fatalf("parseIdentifier(%q) = %+v", tt.in, got)
			}
		})
	}
}

func TestStartLoginMalformedIdentifierMakesNoRequest(t *testing.T) {
	h := newHarness(t)
	for _, in := range []string{"", "alice", "not a handle", "@@alice.test", "did:plc:", "ftp://x.example"} {
		_, cookies, err := h.start(in)
		if apperr.CodeOf(err) != apperr.Invalid {
			t.Fatalf("StartLogin(%q) = %v, want Invalid", in, err)
		}
		if len(cookies) != 0 {
			t.Fatalf("StartLogin(%q) set cookies", in)
		}
	}
	if n := h.ct.count(); n != 0 {
		t.Fatalf("%d outbound requests for malformed identifiers: %v", n, h.ct.urls)
	}
	if n := h.dir.count(); n != 0 {
		t.Fatalf("%d directory lookups for malformed identifiers", n)
	}
	if !strings.Contains(apperr.MessageOf(mustErr(h.start("alice"))), "doesn't look like a handle") {
		t.Fatal("message does not say the handle is malformed")
	}
}

func mustErr(_ string, _ []*http.Cookie, err error) error { return err }

func TestLoginSucceeds(t *testing.T) {
	tests := []struct {
		name       string
		identifier string
		grant      string
		wantChat   bool
		wantHint   string
	}{
		{"handle with chat scope", "@ALICE.test", "", true, "alice.test"},
		{"did login", "did:plc:alice0000000000000000000", "", true, "did:plc:alice0000000000000000000"},
		{"pds url login has no hint", "", "", true, ""},
		{"token without chat scope", "alice.test", "atproto transition:generic", false, "alice.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.grant != "" {
				h.fake.set(func(f *fakeAS) { f.grantScope = tt.grant })
			}
			id := tt.identifier
			if id == "" {
				id = h.fake.origin
			}
			u, cookies, err := h.start(id)
			if err != nil {
				t.Fatalf("StartLogin: %v", err)
			}
			if !strings.HasPrefix(u, h.fake.origin+"/oauth/authorize?") {
				t.Fatalf("authorize URL %s", u)
			}
			form := h.fake.parForm(u)
			if got := form.Get("login_hint"); got != tt.wantHint {
				t.Fatalf("login_hint %q, want %q", got, tt.wantHint)
			}
			if form.Get("scope") != "atproto transition:generic transition:chat.bsky" {
				t.Fatalf("scope %q", form.Get("scope"))
			}
			if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode || cookies[0].MaxAge != 600 {
				t.Fatalf("state cookie %+v", cookies)
			}
			if strings.Contains(cookies[0].Value, form.Get("state")) {
				t.Fatal("state cookie holds the raw state")
			}
			acct, err := h.callback(h.fake.approve(u, h.did), cookies)
			if err != nil {
				t.Fatalf("FinishLogin: %v", err)
			}
			if acct.DID != h.did || acct.Handle != "alice.test" || acct.HasChatScope != tt.wantChat || acct.SessionID == "" {
				t.Fatalf("account %+v", acct)
			}
			if acct.SessionID == form.Get("state") {
				t.Fatal("session id reuses the state")
			}
			api, err := h.svc.APIClient(context.Background(), acct)
			if err != nil {
				t.Fatal(err)
			}
			var out struct{ DID string }
			if err := api.Get(context.Background(), "com.atproto.server.getSession", nil, &out); err != nil {
				t.Fatalf("getSession: %v", err)
			}
			if out.DID != h.did.String() {
				t.Fatalf("getSession did %q", out.DID)
			}
		})
	}
}

func TestFinishLoginRefuses(t *testing.T) {
	other := syntax.DID("did:plc:mallory00000000000000000")
	tests := []struct {
		name       string
		setup      func(h *harness)
		tamper     func(h *harness, q url.Values, cookies []*http.Cookie) (url.Values, []*http.Cookie)
		wantReason string
		wantCode   apperr.Code
		wantTokens int // code redemptions expected
	}{
		{
			name: "state cookie missing",
			tamper: func(h *harness, q url.Values, c []*http.Cookie) (url.Values, []*http.Cookie) {
				return q, nil
			},
			wantReason: ReasonStateMismatch, wantCode: apperr.Invalid,
		},
		{
			name: "state cookie from another login",
			tamper: func(h *harness, q url.Values, c []*http.Cookie) (url.Values, []*http.Cookie) {
				_, c2, err := h.start(h.handle.String())
				if err != nil {
					h.t.Fatal(err)
				}
				return q, c2
			},
			wantReason: ReasonStateMismatch, wantCode: apperr.Invalid,
		},
		{
			name: "user denied",
			tamper: func(h *harness, q url.Values, c []*http.Cookie) (url.Values, []*http.Cookie) {
				return url.Values{"state": {q.Get("state")}, "iss": {q.Get("iss")}, "error": {"access_denied"},
					"error_description": {"<script>alert(1)</script>"}}, c
			},
			wantReason: ReasonAccessDenied, wantCode: apperr.Forbidden,
		},
		{
			name: "iss mismatch",
			tamper: func(h *harness, q url.Values, c []*http.Cookie) (url.Values, []*http.Cookie) {
				q.Set("iss", "https://evil.example")
				return q, c
			},
			wantReason: ReasonIssuerMismatch, wantCode: apperr.Invalid,
		},
		{
			name: "iss missing",
			tamper: func(h *harness, q url.Values, c []*http.Cookie) (url.Values, []*http.Cookie) {
				q.Del("iss")
				return q, c
			},
			wantReason: ReasonCallbackInvalid, wantCode: apperr.Invalid,
		},
		{
			name: "request expired",
			tamper: func(h *harness, q url.Values, c []*http.Cookie) (url.Values, []*http.Cookie) {
				h.clock.Add(DefaultAuthRequestTTL + 1)
				return q, c
			},
			wantReason: ReasonAuthRequestExpired, wantCode: apperr.Invalid,
		},
		{
			name:       "token for another account",
			setup:      func(h *harness) { h.fake.set(func(f *fakeAS) { f.sub = other.String() }) },
			wantReason: ReasonSubjectMismatch, wantCode: apperr.Forbidden, wantTokens: 1,
		},
		{
			name: "issuer without authority over the DID",
			setup: func(h *harness) {
				// The account's PDS names a different authorization server
				// at callback time (the identity moved meanwhile).
				h.fake.set(func(f *fakeAS) { f.authServer = "https://other-entryway.example" })
			},
			wantReason: ReasonIssuerMismatch, wantCode: apperr.Forbidden, wantTokens: 1,
		},
		{
			name:       "atproto scope not granted",
			setup:      func(h *harness) { h.fake.set(func(f *fakeAS) { f.grantScope = "transition:generic" }) },
			wantReason: ReasonScopeMissing, wantCode: apperr.Forbidden, wantTokens: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			u, cookies, err := h.start(h.handle.String())
			if err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(h)
			}
			q := h.fake.approve(u, h.did)
			if tt.tamper != nil {
				q, cookies = tt.tamper(h, q, cookies)
			}
			_, err = h.callback(q, cookies)
			if apperr.ReasonOf(err) != tt.wantReason || apperr.CodeOf(err) != tt.wantCode {
				t.Fatalf("FinishLogin = %v (reason %q code %q), want %s/%s", err, apperr.ReasonOf(err), apperr.CodeOf(err), tt.wantReason, tt.wantCode)
			}
			msg := apperr.MessageOf(err)
			if msg == "" || strings.Contains(msg, "<script>") || strings.Contains(msg, "evil") {
				t.Fatalf("message %q", msg)
			}
			if _, code, _, _ := h.fake.counts(); code != tt.wantTokens {
				t.Fatalf("%d code redemptions, want %d", code, tt.wantTokens)
			}
			if n := countRows(t, h, "oauth_sessions"); n != 0 {
				t.Fatalf("%d sessions saved", n)
			}
		})
	}
}

func TestRefusedTokensAreRevoked(t *testing.T) {
	h := newHarness(t)
	h.fake.set(func(f *fakeAS) { f.sub = "did:plc:mallory00000000000000000" })
	h.fake.set(func(f *fakeAS) {})
	u, cookies, _ := h.start(h.handle.String())
	if _, err := h.callback(h.fake.approve(u, h.did), cookies); apperr.ReasonOf(err) != ReasonSubjectMismatch {
		t.Fatal(err)
	}
	if _, _, _, revoked := h.fake.counts(); revoked != 2 {
		t.Fatalf("%d revocations, want 2 (access + refresh)", revoked)
	}
}

func TestStateCookieMismatchLeavesRequestUsable(t *testing.T) {
	h := newHarness(t)
	u, cookies, _ := h.start(h.handle.String())
	q := h.fake.approve(u, h.did)
	if _, err := h.callback(q, nil); apperr.ReasonOf(err) != ReasonStateMismatch {
		t.Fatalf("without cookie: %v", err)
	}
	if !strings.Contains(apperr.MessageOf(mustErr("", nil, func() error { _, err := h.callback(q, nil); return err }())), "another browser") {
		t.Fatal("message does not mention another browser")
	}
	if _, err := h.callback(q, cookies); err != nil {
		t.Fatalf("the right browser could not finish: %v", err)
	}
}

func TestReplayedCallbackRedeemsCodeOnce(t *testing.T) {
	h := newHarness(t)
	u, cookies, _ := h.start(h.handle.String())
	q := h.fake.approve(u, h.did)
	if _, err := h.callback(q, cookies); err != nil {
		t.Fatal(err)
	}
	_, err := h.callback(q, cookies)
	if apperr.ReasonOf(err) != ReasonAuthRequestUsed || !strings.Contains(apperr.MessageOf(err), "already used") {
		t.Fatalf("replay: %v", err)
	}
	if _, code, _, _ := h.fake.counts(); code != 1 {
		t.Fatalf("%d code redemptions, want 1", code)
	}
}

func TestConcurrentCallbacksRedeemCodeOnce(t *testing.T) {
	h := newHarness(t)
	u, cookies, _ := h.start(h.handle.String())
	q := h.fake.approve(u, h.did)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = h.callback(q, cookies) })
	}
	wg.Wait()
	ok, used := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case apperr.ReasonOf(err) == ReasonAuthRequestUsed:
			used++
		default:
			t.Fatalf("unexpected: %v", err)
		}
	}
	if ok != 1 || used != n-1 {
		t.Fatalf("ok=%d used=%d", ok, used)
	}
	if _, code, _, _ := h.fake.counts(); code != 1 {
		t.Fatalf("%d code redemptions, want 1", code)
	}
}

func TestStartLoginErrorsAreHuman(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(h *harness)
		identifier string
		wantCode   apperr.Code
		wantReason string
	}{
		{"unknown handle", nil, "nobody.test", apperr.NotFound, ReasonAccountNotFound},
		{"unknown did", nil, "did:plc:nobody000000000000000000", apperr.NotFound, ReasonAccountNotFound},
		{"handle not confirmed by its DID", func(h *harness) {
			id := h.fake.identityFor("did:plc:bob00000000000000000000", "bob.test")
			id.Handle = "bob.test"
			id.AlsoKnownAs = []string{"at://someone-else.test"}
			h.mock.Insert(id)
			// MockDirectory does not check both ways; emulate a directory that does.
			h.svc.dir = mismatchDir{h.dir}
		}, "bob.test", apperr.Invalid, ReasonHandleNotVerified},
		{"account without pds", func(h *harness) {
			h.mock.Insert(identityNoPDS("did:plc:nopds0000000000000000000", "nopds.test"))
		}, "nopds.test", apperr.NotFound, ReasonNoPDS},
		{"auth server metadata with wrong issuer", func(h *harness) {
			h.fake.set(func(f *fakeAS) { f.issuer = "http://localhost:1" })
		}, "alice.test", apperr.Unavailable, ReasonAuthServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.setup != nil {
				tt.setup(h)
			}
			_, _, err := h.start(tt.identifier)
			if apperr.CodeOf(err) != tt.wantCode || apperr.ReasonOf(err) != tt.wantReason || apperr.MessageOf(err) == "" {
				t.Fatalf("StartLogin(%q) = %v (%s/%s)", tt.identifier, err, apperr.CodeOf(err), apperr.ReasonOf(err))
			}
			if strings.Contains(apperr.MessageOf(err), "localhost") {
				t.Fatalf("message leaks internals: %q", apperr.MessageOf(err))
			}
		})
	}
}

func TestProductionPolicyRefusesLocalDiscovery(t *testing.T) {
	h := newHarness(t)
	h.svc.policy = policy{sandbox: false}
	if _, err := h.svc.resolveAuthServerURL(context.Background(), h.fake.origin); err == nil {
		t.Fatal("production resolved http://localhost")
	}
	if _, err := h.svc.resolveAuthServerMetadata(context.Background(), h.fake.origin); err == nil {
		t.Fatal("production fetched metadata over http://localhost")
	}
	if n := h.ct.count(); n != 0 {
		t.Fatalf("%d requests made", n)
	}
}

// TestErrorCallbackChecksIssuer: an error answer is an authorization
// response too (RFC 9207): it must carry the issuer the request went to.
func TestErrorCallbackChecksIssuer(t *testing.T) {
	for _, tt := range []struct {
		name, iss, wantReason string
	}{
		{"from another issuer", "https://evil.example", ReasonIssuerMismatch},
		{"without an issuer", "", ReasonCallbackInvalid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			u, cookies, err := h.start(h.handle.String())
			if err != nil {
				t.Fatal(err)
			}
			q := url.Values{"state": {h.fake.approve(u, h.did).Get("state")}, "error": {"access_denied"}}
			if tt.iss != "" {
				q.Set("iss", tt.iss)
			}
			_, err = h.callback(q, cookies)
			if apperr.ReasonOf(err) != tt.wantReason || apperr.CodeOf(err) != apperr.Invalid {
				t.Fatalf("error callback %s = %v (reason %q), want %s", tt.name, err, apperr.ReasonOf(err), tt.wantReason)
			}
		})
	}
}

// TestCallbackClearsStateCookie: the per-login cookie is deleted by the
// callback's answer, whether the sign-in succeeded or was refused.
func TestCallbackClearsStateCookie(t *testing.T) {
	for _, tt := range []struct {
		name   string
		tamper func(q url.Values)
	}{
		{"success", func(url.Values) {}},
		{"denied", func(q url.Values) { q.Del("code"); q.Set("error", "access_denied") }},
		{"iss mismatch", func(q url.Values) { q.Set("iss", "https://evil.example") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			u, cookies, err := h.start(h.handle.String())
			if err != nil {
				t.Fatal(err)
			}
			if len(cookies) != 1 || cookies[0].MaxAge <= 0 {
				t.Fatalf("StartLogin cookies %v, want one state cookie", cookies)
			}
			q := h.fake.approve(u, h.did)
			tt.tamper(q)
			req := httptest.NewRequest("GET", testPublicURL+CallbackPath+"?"+q.Encode(), nil)
			req.AddCookie(cookies[0])
			rec := httptest.NewRecorder()
			h.svc.FinishLogin(context.Background(), rec, req)
			var cleared bool
			for _, c := range rec.Result().Cookies() {
				if c.Name == cookies[0].Name && c.MaxAge < 0 && c.Value == "" && c.Path == cookies[0].Path {
					cleared = true
				}
			}
			if !cleared {
				t.Fatalf("callback (%s) left the state cookie %s in the browser; Set-Cookie: %v",
					tt.name, cookies[0].Name, rec.Result().Header["Set-Cookie"])
			}
		})
	}
}

// TestProductionRefusesAddressesAtOnce: in production a DID or server URL
// naming an IP address or a numeric host name, or an account whose PDS is
// one, is refused at once, permanently (Invalid, not "try again"), with the
// message any private address gets, and with no lookup or request.
func TestProductionRefusesAddressesAtOnce(t *testing.T) {
	production := func(h *harness) {
		h.svc.policy = policy{sandbox: false}
		h.svc.cfg.Sandbox = false
	}
	h := newHarness(t)
	production(h)
	_, _, err := h.start("https://10.0.0.1")
	want := apperr.MessageOf(err)
	if apperr.CodeOf(err) != apperr.Invalid || want == "" {
		t.Fatalf("https://10.0.0.1 = %v", err)
	}
	for _, id := range []string{
		"https://0x7f000001", "https://2130706433", "https://127.1", "https://0177.0.0.1", "https://0x7f000001.",
		"did:web:127.0.0.1", "did:web:0x7f000001", "did:web:2130706433", "did:web:10.0.0.1", "did:web:localhost",
		"did:web:%5B%3A%3A1%5D", "did:web:example.com%3A8443",
	} {
		t.Run(strings.ReplaceAll(id, "%", "_"), func(t *testing.T) {
			h := newHarness(t)
			production(h)
			_, _, err := h.start(id)
			if apperr.CodeOf(err) != apperr.Invalid || apperr.MessageOf(err) != want {
				t.Errorf("StartLogin(%s) = %v (code %v, status %d), want Invalid: %q", id, err, apperr.CodeOf(err), apperr.Status(apperr.CodeOf(err)), want)
			}
			if n, l := h.ct.count(), h.dir.count(); n != 0 || l != 0 {
				t.Errorf("StartLogin(%s): %d requests, %d identity lookups", id, n, l)
			}
		})
	}
	t.Run("account whose PDS is a numeric host", func(t *testing.T) {
		h := newHarness(t)
		production(h)
		handle := syntax.Handle("numeric.example.com")
		ident := h.fake.identityFor(h.did, handle)
		ident.Services["atproto_pds"] = identity.ServiceEndpoint{Type: "AtprotoPersonalDataServer", URL: "https://2130706433"}
		h.mock.Insert(ident)
		_, _, err := h.start(handle.String())
		if apperr.CodeOf(err) != apperr.Invalid || apperr.MessageOf(err) != want {
			t.Errorf("PDS https://2130706433 = %v (code %v), want Invalid: %q", err, apperr.CodeOf(err), want)
		}
		if n := h.ct.count(); n != 0 {
			t.Errorf("%d requests", n)
		}
	})
}
