package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/skydm/skydm/internal/testenv"
)

// TestBrowserSignInThroughPDSPages signs a fresh account in with headless
// Chromium through the sandbox PDS's real sign-in and consent pages, then
// signs it out, saving a screenshot of every screen under
// artifacts/screenshots/. No page of ours may log a CSP violation or error.
func TestBrowserSignInThroughPDSPages(t *testing.T) {
	n := testenv.Network(t)
	acct := testenv.NewAccount(t, n)
	base, _ := startRun(t, nil, sandboxEnv(t, n))
	ctx := testenv.Browser(t, testenv.BrowserOptions{})
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	watch, err := testenv.WatchLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	shot := func(name string) { testenv.Screenshot(t, ctx, "signin-"+name) }

	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="home-signin"]`)),
	); err != nil {
		t.Fatal(err)
	}
	shot("01-home-signed-out")
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid="home-signin"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="signin-identifier"]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="signin-identifier"]`), acct.Handle),
	); err != nil {
		t.Fatal(err)
	}
	shot("02-signin-form")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-testid="signin-submit"]`))); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.WaitLocation(ctx, n.PDSURL+"/oauth/authorize", 20*time.Second); err != nil {
		t.Fatalf("the sign-in form did not lead to the PDS (CSP form-action?): %v; console: %q", err, watch.Entries())
	}
	if err := testenv.PDSSignIn(ctx, acct.Handle, acct.Password, true, func(name string) { shot("03-" + name) }); err != nil {
		shot("99-failed")
		t.Fatal(err)
	}
	handle, err := testenv.WaitText(ctx, `[data-testid="current-handle"]`, 20*time.Second)
	if err != nil {
		shot("99-failed")
		t.Fatal(err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != base+"/" {
		t.Errorf("landed on %q, want %s/", loc, base)
	}
	if strings.TrimSpace(handle) != acct.Handle {
		t.Errorf("header shows %q, want %q", handle, acct.Handle)
	}
	shot("04-home-signed-in")

	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/account"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="account-signout"]`)),
	); err != nil {
		t.Fatal(err)
	}
	shot("05-accounts")
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid="account-signout"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="home-signin"]`)),
	); err != nil {
		t.Fatal(err)
	}
	shot("06-signed-out")

	if ours := watch.Entries(base); len(ours) > 0 {
		t.Errorf("console problems on our pages:\n%s", strings.Join(ours, "\n"))
	}
	if csp := watch.Entries("Content Security Policy"); len(csp) > 0 {
		t.Errorf("CSP violations:\n%s", strings.Join(csp, "\n"))
	}
}

// TestBrowserSignInWorksWithJavaScriptOff: with scripts disabled our pages
// still show errors next to the field and send the browser on to the PDS.
func TestBrowserSignInWorksWithJavaScriptOff(t *testing.T) {
	n := testenv.Network(t)
	acct := testenv.NewAccount(t, n)
	base, _ := startRun(t, nil, sandboxEnv(t, n))
	ctx := testenv.Browser(t, testenv.BrowserOptions{})
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	field := chromedp.CSS(`[data-testid="signin-identifier"]`)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/signin"),
		chromedp.WaitVisible(field),
		chromedp.SendKeys(field, "nobody-here.test"),
		chromedp.Click(chromedp.CSS(`[data-testid="signin-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="signin-error"]`)),
	); err != nil {
		t.Fatal(err)
	}
	testenv.Screenshot(t, ctx, "nojs-01-signin-error")
	kept, err := chromedp.Run(ctx, chromedp.Value(field))
	if err != nil || kept != "nobody-here.test" {
		t.Errorf("input kept as %q (%v)", kept, err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Clear(field),
		chromedp.SendKeys(field, acct.Handle),
		chromedp.Click(chromedp.CSS(`[data-testid="signin-submit"]`)),
	); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.WaitLocation(ctx, n.PDSURL+"/oauth/authorize", 20*time.Second); err != nil {
		testenv.Screenshot(t, ctx, "nojs-99-failed")
		t.Fatalf("without JavaScript the browser did not reach the PDS: %v", err)
	}
}
