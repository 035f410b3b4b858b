package testenv

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

func TestParseAuthorizeData(t *testing.T) {
	tests := []struct {
		name      string
		page      string
		wantScope string
		wantErr   bool
	}{
		{
			name:      "hydration script gives scope",
			page:      `<html><script>window["__authorizeData"]=JSON.parse("{\"requestUri\":\"urn:ietf:params:oauth:request_uri:req-1\",\"clientId\":\"http://localhost?x\",\"scope\":\"atproto transition:chat.bsky\",\"loginHint\":\"a.test\"}");window["__sessions"]=JSON.parse("[]");document.currentScript.remove();</script>`,
			wantScope: "atproto transition:chat.bsky",
		},
		{
			name:      "escaped angle bracket decodes",
			page:      `window["__authorizeData"]=JSON.parse("{\"scope\":\"atproto\",\"clientId\":\"\u003c/script>\"}");`,
			wantScope: "atproto",
		},
		{name: "page without data is an error", page: `<html>nothing</html>`, wantErr: true},
		{name: "truncated data is an error", page: `window["__authorizeData"]=JSON.parse("{\"scope`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := parseAuthorizeData([]byte(tt.page))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if d.Scope != tt.wantScope {
				t.Fatalf("scope %q, want %q", d.Scope, tt.wantScope)
			}
		})
	}
}

// TestCompleteAuthorize drives the real PDS's sign-in and consent: approve
// gives a code for our callback, deny gives access_denied, a wrong password
// is the PDS's sign-in error.
func TestCompleteAuthorize(t *testing.T) {
	n := Network(t)
	acct := NewAccount(t, n)
	tests := []struct {
		name      string
		password  string
		approve   bool
		wantParam string // query parameter the callback gets
		wantStep  string // failing step when an *AuthorizeError is expected
	}{
		{name: "approve redirects with code", password: acct.Password, approve: true, wantParam: "code"},
		{name: "deny redirects with access_denied", password: acct.Password, approve: false, wantParam: "error"},
		{name: "wrong password fails sign-in", password: "wrong-password", approve: true, wantStep: "sign-in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			f, err := startFlow(ctx, n, acct.Handle, "atproto transition:chat.bsky")
			if err != nil {
				t.Fatal(err)
			}
			redirect, err := CompleteAuthorize(ctx, f.authorizeURL, acct.Handle, tt.password, tt.approve)
			if tt.wantStep != "" {
				var ae *AuthorizeError
				if !errors.As(err, &ae) || ae.Step != tt.wantStep || ae.Status < 400 {
					t.Fatalf("err = %v, want an AuthorizeError at %s", err, tt.wantStep)
				}
				t.Logf("%v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(redirect)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(redirect, OAuthCallbackURL+"?") {
				t.Fatalf("redirect %s is not to the callback %s", redirect, OAuthCallbackURL)
			}
			q := u.Query()
			if q.Get("state") != f.info.State || q.Get("iss") != n.PDSURL || q.Get(tt.wantParam) == "" {
				t.Fatalf("redirect %s: want state %s, iss %s and %s", redirect, f.info.State, n.PDSURL, tt.wantParam)
			}
			if tt.wantParam == "error" && q.Get("error") != "access_denied" {
				t.Fatalf("error = %q, want access_denied", q.Get("error"))
			}
		})
	}
}

// TestOAuthSessionCallsPDS checks the session NewOAuthSession returns works
// against the PDS (DPoP nonce retry included) and carries the granted scope.
func TestOAuthSessionCallsPDS(t *testing.T) {
	n := Network(t)
	acct := NewAccount(t, n)
	sess := OAuthSession(t, n, acct, "atproto transition:generic")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out struct {
		DID    string `json:"did"`
		Handle string `json:"handle"`
	}
	if err := sess.APIClient().Get(ctx, "com.atproto.server.getSession", nil, &out); err != nil {
		t.Fatal(err)
	}
	if out.DID != acct.DID || out.Handle != acct.Handle {
		t.Fatalf("getSession = %+v, want %s %s", out, acct.DID, acct.Handle)
	}
	if strings.Join(sess.Data.Scopes, " ") != "atproto transition:generic" {
		t.Fatalf("scopes %v", sess.Data.Scopes)
	}
	if sess.Data.DPoPHostNonce == "" {
		t.Fatalf("no DPoP nonce recorded after a call (nonce retry not exercised?)")
	}
}

// TestPasswordSessionAndNewAccount checks fresh accounts are unique and can
// log in.
func TestPasswordSessionAndNewAccount(t *testing.T) {
	n := Network(t)
	a, b := NewAccount(t, n), NewAccount(t, n)
	if a.Handle == b.Handle || a.DID == b.DID || !strings.HasSuffix(a.Handle, ".test") {
		t.Fatalf("accounts not unique: %+v %+v", a, b)
	}
	c := PasswordSession(t, n, a)
	if c.AccountDID == nil || c.AccountDID.String() != a.DID {
		t.Fatalf("session DID %v, want %s", c.AccountDID, a.DID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wrong := a
	wrong.Password = "wrong"
	if _, err := n.Login(ctx, wrong); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
}
