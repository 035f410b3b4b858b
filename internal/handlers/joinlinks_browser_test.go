package handlers

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/internal/testenv"
)

// TestJoinLinkPagesInChromium renders the join link pages over the fakes in
// Chromium at desktop and 390 px wide: the /join page valid, pending and
// turned off, and the owner's invite link page (where dm.js adds a Copy
// button). Each has no axe-core violations; screenshots are saved as
// artifacts/screenshots/join-*.png.
func TestJoinLinkPagesInChromium(t *testing.T) {
	a := newDMApp(t)
	a.chat.addGroup("g1", "Weekend plans", dmAlice, 1)
	a.chat.setLink("g1", &chat.GroupDefs_JoinLinkView{Code: "Wk3nd42", EnabledStatus: ptr("enabled"), JoinRule: ptr("followedByOwner"),
		RequireApproval: true, CreatedAt: "2025-03-04T12:00:00Z"})
	a.setPreview("Wk3nd42", validPreview("Wk3nd42", true))
	a.setPreview("off1234", &chatproxy.JoinLinkPreview{GroupDefs_DisabledJoinLinkPreviewView: &chat.GroupDefs_DisabledJoinLinkPreviewView{Code: "off1234"}})
	a.chat.join().joinAs["Wk3nd42"] = &chat.GroupRequestJoin_Output{Status: "pending"}

	ctx := testenv.Browser(t, testenv.BrowserOptions{})
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	signIn := a.srv.URL + "/oauth/callback?" + url.Values{"did": {dmAlice}, "handle": {"alice.test"}}.Encode()
	if err := chromedp.Do(ctx, chromedp.Navigate(signIn)); err != nil {
		t.Fatal(err)
	}
	pages := []struct{ name, path, wait string }{
		{"valid", "/join/Wk3nd42", `[data-testid="join-submit"]`},
		{"pending", "/join/Wk3nd42?notice=requested", `[data-testid="join-withdraw"]`},
		{"disabled", "/join/off1234", `[data-testid="join-disabled"]`},
		{"owner-link", "/convos/g1/link", `[data-testid="join-link-copy"]`},
	}
	for _, width := range []int64{1100, 390} {
		for _, p := range pages {
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 844), chromedp.Navigate(a.srv.URL+p.path),
				chromedp.WaitVisible(chromedp.CSS(p.wait))); err != nil {
				t.Fatalf("%s at %d px: %v", p.name, width, err)
			}
			vs, err := testenv.Axe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vs {
				t.Errorf("%s at %d px: axe: %s", p.name, width, v)
			}
			testenv.Screenshot(t, ctx, "join-"+p.name+"-"+strconv.FormatInt(width, 10))
		}
	}
}
