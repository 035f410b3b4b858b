package handlers

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/testenv"
)

// TestGroupPagesInChromium renders the new group form with a refused
// member and the owner's members page (over the fakes) in Chromium at
// desktop and 390 px width: no axe-core violation, nothing wider than the
// viewport, and screenshots of each.
func TestGroupPagesInChromium(t *testing.T) {
	a := newGroupApp(t, dmAlice)
	a.chat.setRefusal(dmCarol, chatproxy.ReasonNotFollowedBySender)
	ctx := testenv.Browser(t, testenv.BrowserOptions{})
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	signIn := a.srv.URL + "/oauth/callback?" + url.Values{"did": {dmAlice}, "handle": {"alice.test"}}.Encode()
	if err := chromedp.Do(ctx, chromedp.Navigate(signIn), chromedp.WaitVisible(css(`[data-testid="new-group"]`))); err != nil {
		t.Fatal(err)
	}
	for _, w := range []int64{1100, 390} {
		suffix := map[int64]string{1100: "desktop", 390: "390"}[w]
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, 600), chromedp.Navigate(a.srv.URL+"/"),
			chromedp.WaitVisible(css(`[data-testid="new-group"]`))); err != nil {
			t.Fatal(err)
		}
		groupPageChecks(t, ctx, w)
		testenv.Screenshot(t, ctx, "groups-inbox-new-group-"+suffix)
		if err := chromedp.Do(ctx,
			chromedp.EmulateViewport(w, 900),
			chromedp.Navigate(a.srv.URL+"/convos/new-group"),
			chromedp.SendKeys(css(`[data-testid="group-name"]`), "Weekend plans"),
			chromedp.SendKeys(css(`[data-testid="members"]`), "bob.test\ncarol.test"),
			chromedp.Click(css(`[data-testid="create-group"]`)),
			chromedp.WaitVisible(css(`[data-testid="refused-member"]`)),
		); err != nil {
			t.Fatal(err)
		}
		got, err := testenv.WaitText(ctx, `[data-testid="refused-member"]`, 5*time.Second)
		if err != nil || !strings.Contains(got, "carol.test only accepts group invitations from people they follow.") {
			t.Errorf("refused member says %q (%v)", got, err)
		}
		groupPageChecks(t, ctx, w)
		testenv.Screenshot(t, ctx, "groups-new-refused-"+suffix)

		if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, 1500), chromedp.Navigate(a.srv.URL+"/convos/g1/members"),
			chromedp.WaitVisible(css(`[data-testid="members-list"]`))); err != nil {
			t.Fatal(err)
		}
		groupPageChecks(t, ctx, w)
		testenv.Screenshot(t, ctx, "groups-members-owner-"+suffix)

		// The confirmation step of removing carol, reached by her Remove button.
		if err := chromedp.Do(ctx, chromedp.Click(css(`[data-did="`+dmCarol+`"] [data-testid="remove-member"]`)),
			chromedp.WaitVisible(css(`[data-testid="confirm-remove"]`))); err != nil {
			t.Fatal(err)
		}
		groupPageChecks(t, ctx, w)
		testenv.Screenshot(t, ctx, "groups-members-confirm-remove-"+suffix)
	}
	if len(a.chat.createdGroups()) != 0 {
		t.Error("a group was created although carol was refused")
	}
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// groupPageChecks runs axe-core on the open page and wants nothing wider
// than the viewport.
func groupPageChecks(t *testing.T, ctx context.Context, width int64) {
	t.Helper()
	v, err := testenv.Axe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range v {
		t.Errorf("axe at %d px: %s", width, x)
	}
	wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > document.documentElement.clientWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if wide {
		t.Errorf("the page scrolls sideways at %d px", width)
	}
}
