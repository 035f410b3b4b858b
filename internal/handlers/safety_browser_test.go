package handlers

import (
	"context"
	"net/url"
	"testing"
	"time"

	appbsky "github.com/bluesky-social/indigo/api/bsky"
	"github.com/chromedp/chromedp"

	"github.com/skydm/skydm/internal/testenv"
)

// TestBrowserSafetyPages opens the report form (also after a refusal),
// the blocked composer of both kinds and the chat settings in headless
// Chromium over the fake chat service, at desktop width and 390 px, runs
// axe-core on each and saves screenshots
// (artifacts/screenshots/issue10-safety-*.png); dm.js must not fail on
// any of them (the blocked composer is not the send form).
func TestBrowserSafetyPages(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob Example"), "accepted", 4, 0)
	a.chat.addConvo("c2", profile(dmCarol, "carol.test", "Carol"), "accepted", 2, 0)
	yes := true
	a.chat.setViewer(dmCarol, func(v *appbsky.ActorDefs_ViewerState) { v.BlockedBy = &yes })

	ctx, cancel := context.WithTimeout(testenv.Browser(t, testenv.BrowserOptions{}), 3*time.Minute)
	defer cancel()
	watch, err := testenv.WatchLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"did": {dmAlice}, "handle": {"alice.test"}}
	if err := chromedp.Do(ctx, chromedp.Navigate(a.srv.URL+"/oauth/callback?"+q.Encode()), chromedp.WaitReady(chromedp.CSS("main"))); err != nil {
		t.Fatal(err)
	}
	report := "/convos/c1/report?message=c1-m003&sender=" + url.QueryEscape(dmBob)
	// The refused report: submitted without a reason (the browser's own
	// check taken off, as an old browser would).
	refused := `(() => { document.querySelectorAll('[name="reason_type"]').forEach(e => e.required = false);
		document.querySelector('#details').value = 'He sends this every day.';
		document.querySelector('[data-testid="send-report"]').click(); })()`
	blockBob := `document.querySelector('[data-testid="block"]').click()`
	pages := []struct {
		name, path, then, want string
	}{
		{"report-form", report, "", `[data-testid="report-form"]`},
		{"report-refused", report, refused, `[data-testid="error"]`},
		{"blocked-composer", "/convos/c1", blockBob, `[data-testid="composer-blocked"]`},
		{"blocked-by-composer", "/convos/c2", "", `[data-testid="composer-blocked"]`},
		{"settings", "/settings/chat", "", `[data-testid="notify-form"]`},
	}
	for _, p := range pages {
		for _, width := range []int64{1100, 390} {
			steps := []chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(width, 844), chromedp.Navigate(a.srv.URL + p.path), chromedp.WaitReady(chromedp.CSS("main"))}
			if p.then != "" {
				steps = append(steps, chromedp.Evaluate[chromedp.Void](p.then))
			}
			steps = append(steps, chromedp.WaitVisible(chromedp.CSS(p.want)))
			if err := chromedp.Do(ctx, steps...); err != nil {
				t.Fatalf("%s at %d px: %v", p.name, width, err)
			}
			testenv.Screenshot(t, ctx, "issue10-safety-"+p.name+"-"+map[int64]string{1100: "desktop", 390: "390"}[width])
			if p.name == "settings" {
				if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-testid="notify-form"]').scrollIntoView()`)); err != nil {
					t.Fatal(err)
				}
				testenv.Screenshot(t, ctx, "issue10-safety-settings-notify-"+map[int64]string{1100: "desktop", 390: "390"}[width])
			}
			if e := watch.Entries("exception"); len(e) > 0 {
				t.Errorf("%s at %d px: the page's script failed: %q", p.name, width, e)
			}
			vs, err := testenv.Axe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vs {
				t.Errorf("%s at %d px: %s", p.name, width, v)
			}
			if p.name == "blocked-composer" && width == 1100 {
				// Unblock again for the 390 px pass.
				if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="composer-unblock"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="draft"]`))); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}
