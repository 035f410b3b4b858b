package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// waitDeliveryState reloads the change request page in the tab until its
// DM is in state want.
func waitDeliveryState(t *testing.T, ctx context.Context, pageURL, want string) {
	t.Helper()
	deadline := time.Now().Add(deliveryDeadline)
	for {
		if err := chromedp.Do(ctx, chromedp.Navigate(pageURL), chromedp.WaitVisible(chromedp.CSS(`[data-testid="delivery"]`))); err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="delivery"]').dataset.state`))
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the change request page still says %q after %s, want %q", got, deliveryDeadline, want)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestBrowserChangeRequestReachesTheOwner drives two headless Chromiums
// (bob and alice, each with its own profile) through the PDS's real
// sign-in pages: bob creates a project, alice files a change request, the
// DM reaches bob, and its link opens the change request. A change request
// to carol (DMs only from accounts she follows) shows why it was not
// delivered. Screenshots: artifacts/screenshots/issue5-*.png.
func TestBrowserChangeRequestReachesTheOwner(t *testing.T) {
	n := testenv.Network(t)
	bob, alice, carol := testenv.NewAccount(t, n), testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	setup, cancelSetup := context.WithTimeout(context.Background(), time.Minute)
	defer cancelSetup()
	bobAPI := testenv.PasswordSession(t, n, bob)
	carolAPI := testenv.PasswordSession(t, n, carol)
	if err := sandbox.Follow(setup, bobAPI, alice.DID); err != nil {
		t.Fatal(err)
	}
	decl := map[string]any{"$type": "chat.bsky.actor.declaration", "allowIncoming": "following"}
	if err := sandbox.PutRecord(setup, carolAPI, "chat.bsky.actor.declaration", "self", decl); err != nil {
		t.Fatal(err)
	}
	base, _ := startRun(t, nil, sandboxEnv(t, n))

	bobCtx, cancelBob := context.WithTimeout(testenv.Browser(t, testenv.BrowserOptions{}), 3*time.Minute)
	defer cancelBob()
	aliceCtx, cancelAlice := context.WithTimeout(testenv.Browser(t, testenv.BrowserOptions{}), 3*time.Minute)
	defer cancelAlice()
	bobLog, err := testenv.WatchLog(bobCtx)
	if err != nil {
		t.Fatal(err)
	}
	aliceLog, err := testenv.WatchLog(aliceCtx)
	if err != nil {
		t.Fatal(err)
	}
	shot := func(ctx context.Context, name string) { testenv.Screenshot(t, ctx, "issue5-"+name) }

	// bob creates a project.
	browserSignIn(t, bobCtx, base, n.PDSURL, bob, nil)
	if err := chromedp.Do(bobCtx,
		chromedp.Click(chromedp.CSS(`[data-testid="nav-projects"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="project-form"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="project-submit"]`)), // empty: the form says why
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="project-name-error"]`)),
	); err != nil {
		t.Fatal(err)
	}
	shot(bobCtx, "01-project-form-error")
	if err := chromedp.Do(bobCtx,
		chromedp.SendKeys(chromedp.CSS(`[data-testid="project-name"]`), "Widgets"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="project-description"]`), "Sturdy widgets for everyone."),
		chromedp.Click(chromedp.CSS(`[data-testid="project-submit"]`)),
	); err != nil {
		t.Fatal(err)
	}
	projectURL, err := testenv.WaitLocation(bobCtx, base+"/projects/"+bob.DID+"/", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.WaitText(bobCtx, `h1[data-testid="project-name"]`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	shot(bobCtx, "02-bob-project")

	// alice files a change request from her own browser.
	browserSignIn(t, aliceCtx, base, n.PDSURL, alice, nil)
	if err := chromedp.Do(aliceCtx,
		chromedp.Navigate(projectURL),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="cr-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="cr-title"]`), "Faster widgets"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="cr-body"]`), "Could the widgets spin twice as fast? It would help my project a lot."),
	); err != nil {
		t.Fatal(err)
	}
	shot(aliceCtx, "03-alice-proposes")
	if err := chromedp.Do(aliceCtx, chromedp.Click(chromedp.CSS(`[data-testid="cr-submit"]`))); err != nil {
		t.Fatal(err)
	}
	crURL, err := testenv.WaitLocation(aliceCtx, base+"/change-requests/"+alice.DID+"/", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitDeliveryState(t, aliceCtx, crURL, "sent")
	shot(aliceCtx, "04-alice-request-sent")

	// The DM reached bob, with the link.
	ctx, cancel := context.WithTimeout(context.Background(), deliveryDeadline)
	defer cancel()
	dms, convo, err := dmsFrom(ctx, chatproxy.New(bobAPI, n.ChatServiceRef), alice.DID, crURL)
	if err != nil {
		t.Fatal(err)
	}
	if len(dms) != 1 {
		t.Fatalf("bob has %d DMs linking %s, want 1", len(dms), crURL)
	}
	t.Logf("bob's DM: %q", dms[0].Message.Text)

	// bob opens it: through his DM page when it is served, else directly.
	convoURL := base + "/convos/" + url.PathEscape(convo)
	link := `a[href="` + crURL + `"]`
	if err := chromedp.Do(bobCtx, chromedp.Navigate(convoURL)); err != nil {
		t.Fatal(err)
	}
	found, err := testenv.WaitText(bobCtx, link+`, [data-testid="error-title"]`, 20*time.Second)
	if err != nil {
		shot(bobCtx, "99-failed")
		t.Fatal(err)
	}
	if found == "Not found" {
		t.Logf("/convos/{id} is not served yet: bob opens the change request from the DM's link directly")
		if err := chromedp.Do(bobCtx, chromedp.Navigate(crURL)); err != nil {
			t.Fatal(err)
		}
	} else {
		shot(bobCtx, "05-bob-dm")
		// Follow the link in this tab (drop any target so the test can).
		if err := chromedp.Do(bobCtx,
			chromedp.Evaluate[chromedp.Void](`document.querySelectorAll('a[target]').forEach(a => a.removeAttribute('target'))`),
			chromedp.Click(chromedp.CSS(link)),
		); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := testenv.WaitLocation(bobCtx, crURL, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	title, err := testenv.WaitText(bobCtx, `h1[data-testid="cr-title"]`, 10*time.Second)
	if err != nil || title != "Faster widgets" {
		t.Fatalf("bob's change request page title %q (%v)", title, err)
	}
	shot(bobCtx, "06-bob-opens-request")
	if err := chromedp.Do(bobCtx,
		chromedp.Click(chromedp.CSS(`[data-testid="nav-change-requests"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="cr-row"]`)),
	); err != nil {
		t.Fatal(err)
	}
	shot(bobCtx, "07-bob-incoming")

	// carol only accepts DMs from accounts she follows: alice sees why.
	carolB := newBrowserClient(t, base)
	signInHTTP(t, carolB, carol)
	gadgets := postRedirect(t, carolB, "/projects", url.Values{"name": {"Gadgets"}})
	if err := chromedp.Do(aliceCtx,
		chromedp.Navigate(base+gadgets),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="cr-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="cr-title"]`), "Shinier gadgets"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="cr-body"]`), "More shine, please."),
		chromedp.Click(chromedp.CSS(`[data-testid="cr-submit"]`)),
	); err != nil {
		t.Fatal(err)
	}
	gatedURL, err := testenv.WaitLocation(aliceCtx, base+"/change-requests/"+alice.DID+"/", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	waitDeliveryState(t, aliceCtx, gatedURL, "not_delivered")
	reason, err := testenv.WaitText(aliceCtx, `[data-testid="delivery-reason"]`, 5*time.Second)
	if err != nil || !strings.Contains(reason, "only accepts DMs from accounts they follow") {
		t.Errorf("reason %q (%v)", reason, err)
	}
	shot(aliceCtx, "08-alice-not-delivered")
	if err := chromedp.Do(aliceCtx,
		chromedp.Navigate(base+"/change-requests?tab=mine"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="cr-row"]`)),
	); err != nil {
		t.Fatal(err)
	}
	shot(aliceCtx, "09-alice-mine")

	// A signed-out visitor opens the same change request: the request, but
	// not whether or why the owner was told (issue 8), at desktop width
	// and at 390 px.
	anonCtx, cancelAnon := context.WithTimeout(testenv.Browser(t, testenv.BrowserOptions{}), time.Minute)
	defer cancelAnon()
	for _, width := range []int64{1280, 390} {
		if err := chromedp.Do(anonCtx,
			chromedp.EmulateViewport(width, 844),
			chromedp.Navigate(gatedURL),
			chromedp.WaitVisible(chromedp.CSS(`h1[data-testid="cr-title"]`)),
		); err != nil {
			t.Fatal(err)
		}
		n, err := chromedp.Run(anonCtx, chromedp.Evaluate[int](
			`document.querySelectorAll('[data-testid="cr-notifications"], [data-testid^="delivery"]').length`))
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("signed out at %d px: %d delivery elements on the page", width, n)
		}
		testenv.Screenshot(t, anonCtx, fmt.Sprintf("issue8-signed-out-%d", width))
	}
	if err := chromedp.Do(aliceCtx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(gatedURL),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="delivery-reason"]`))); err != nil {
		t.Fatal(err)
	}
	testenv.Screenshot(t, aliceCtx, "issue8-requester-390")

	for who, w := range map[string]*testenv.LogWatch{"bob": bobLog, "alice": aliceLog} {
		var ours []string
		for _, e := range w.Entries(base) {
			// The empty "New project" form is answered 400 on purpose.
			if !strings.Contains(e, "status of 400") || !strings.HasSuffix(e, "("+base+"/projects)") {
				ours = append(ours, e)
			}
		}
		if len(ours) > 0 {
			t.Errorf("console problems on our pages (%s):\n%s", who, strings.Join(ours, "\n"))
		}
		if csp := w.Entries("Content Security Policy"); len(csp) > 0 {
			t.Errorf("CSP violations (%s):\n%s", who, strings.Join(csp, "\n"))
		}
	}
}
