package views

import (
	"context"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"
)

func TestAccountNameAndInitials(t *testing.T) {
	tests := []struct {
		name         string
		acct         Account
		wantName     string
		wantInitials string
	}{
		{"handle", Account{DID: "did:plc:a", Handle: "alice.bsky.social"}, "alice.bsky.social", "A"},
		{"invalid handle falls back to the DID", Account{DID: "did:plc:a", Handle: "handle.invalid"}, "did:plc:a", "?"},
		{"no handle falls back to the DID", Account{DID: "did:plc:a"}, "did:plc:a", "?"},
		{"at-sign is skipped", Account{DID: "did:plc:a", Handle: "@zed.test"}, "@zed.test", "Z"},
		{"non-ASCII first grapheme", Account{DID: "did:plc:a", Handle: "élodie.test"}, "élodie.test", "É"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.acct.Name(); got != tt.wantName {
				t.Errorf("Name() = %q, want %q", got, tt.wantName)
			}
			if got := tt.acct.Initials(); got != tt.wantInitials {
				t.Errorf("Initials() = %q, want %q", got, tt.wantInitials)
			}
		})
	}
}

func render(t *testing.T, ctx context.Context, c templ.Component) *goquery.Document {
	t.Helper()
	var b strings.Builder
	if err := c.Render(ctx, &b); err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestLayoutCarriesNonceAndEscapesData(t *testing.T) {
	ctx := templ.WithNonce(context.Background(), "n0nce")
	cur := Account{DID: "did:plc:x", Handle: `<script>alert(1)</script>`, AvatarURL: "javascript:alert(1)"}
	p := Page{Current: &cur, Accounts: []Account{cur}, Assets: Assets{CSS: "/static/app.css?v=1", JS: "/static/app.js?v=1", Icon: "/static/favicon.svg?v=1"}}
	doc := render(t, ctx, HomePage(p, Home{}))
	if got := doc.Find("script").AttrOr("nonce", ""); got != "n0nce" {
		t.Errorf("script nonce %q", got)
	}
	if doc.Find("script").Length() != 1 {
		t.Errorf("%d scripts: injected markup was not escaped", doc.Find("script").Length())
	}
	if got := doc.Find(`[data-testid="current-handle"]`).Text(); got != cur.Handle {
		t.Errorf("handle text %q", got)
	}
	if doc.Find(`[data-testid="avatar"]`).Length() != 0 || doc.Find(`[data-testid="avatar-initials"]`).Length() != 1 {
		t.Errorf("unsafe avatar URL rendered instead of initials")
	}
	cur.AvatarURL = "https://cdn.bsky.app/img/avatar/plain/did:plc:x/abc@jpeg"
	doc = render(t, ctx, HomePage(Page{Current: &cur}, Home{}))
	if src := doc.Find(`[data-testid="avatar"]`).AttrOr("src", ""); src != cur.AvatarURL {
		t.Errorf("avatar src %q", src)
	}
}

func TestSignInPageShowsErrorNextToFieldWithInputKept(t *testing.T) {
	doc := render(t, context.Background(), SignInPage(Page{}, SignInForm{Identifier: `bob"><b>`, Error: "No such account."}))
	in := doc.Find(`[data-testid="signin-identifier"]`)
	if v := in.AttrOr("value", ""); v != `bob"><b>` {
		t.Errorf("value %q", v)
	}
	if in.AttrOr("aria-invalid", "") != "true" || !strings.Contains(in.AttrOr("aria-describedby", ""), "identifier-error") {
		t.Errorf("field not marked invalid/described: %v", in.Nodes[0].Attr)
	}
	if got := doc.Find(`#identifier-error[data-testid="signin-error"]`).Text(); got != "No such account." {
		t.Errorf("error %q", got)
	}
	if doc.Find("b").Length() != 0 {
		t.Errorf("input not escaped")
	}
}
