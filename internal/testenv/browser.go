package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/skydm/skydm/internal/sandbox"
)

// ChromiumPath returns the Chromium (or Chrome) binary the browser tests
// use: $SKYDM_CHROMIUM when set (only if that file exists), else
// /usr/bin/chromium, else the first of chromium, chromium-browser,
// google-chrome on PATH; "" when none is installed.
func ChromiumPath() string {
	if p := os.Getenv("SKYDM_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return ""
		}
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// noChromium is the skip line of every browser test without Chromium.
const noChromium = "browser tests: Chromium is not installed. To run them: apt-get install chromium"

// BrowserOptions changes how Browser starts Chromium.
type BrowserOptions struct {
	// HostResolverRules is passed as --host-resolver-rules, e.g.
	// "MAP client.skydm.internal 127.0.0.1", for the confidential client.
	HostResolverRules string
	// IgnoreCertificateErrors trusts any TLS certificate (the sandbox CA).
	IgnoreCertificateErrors bool
}

// Browser starts a headless Chromium with a fresh profile for this test and
// returns a context for one tab; everything is stopped when the test ends.
// Without Chromium the test fails under CI=true and is skipped otherwise,
// and counted (see skipMissing).
func Browser(t testing.TB, o BrowserOptions) context.Context {
	t.Helper()
	path := ChromiumPath()
	if path == "" {
		where := "/usr/bin/chromium or chromium on PATH"
		if p := os.Getenv("SKYDM_CHROMIUM"); p != "" {
			where = "SKYDM_CHROMIUM=" + p
		}
		skipMissing(t, noChromium, "looked for "+where)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("no-pings", true),
		chromedp.WindowSize(1100, 900),
	}
	if o.HostResolverRules != "" {
		opts = append(opts, chromedp.Flag("host-resolver-rules", o.HostResolverRules))
	}
	if o.IgnoreCertificateErrors {
		opts = append(opts, chromedp.Flag("ignore-certificate-errors", true))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // start the browser now, so failures name it
		t.Fatalf("testenv: starting Chromium (%s): %v", path, err)
	}
	return ctx
}

// ScreenshotDir returns <repo>/artifacts/screenshots, creating it.
func ScreenshotDir(t testing.TB) string {
	t.Helper()
	repo, err := sandbox.FindRepo()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir := filepath.Join(repo, "artifacts", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dir
}

// Screenshot saves the visible part of the tab as
// artifacts/screenshots/<name>.png and returns the path. A failure is
// reported with t.Errorf (a missing picture should not hide the test's own
// result).
func Screenshot(t testing.TB, ctx context.Context, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Errorf("testenv: screenshot %s: %v", name, err)
		return ""
	}
	p := filepath.Join(ScreenshotDir(t), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Errorf("testenv: screenshot %s: %v", name, err)
		return ""
	}
	return p
}

// WaitLocation waits until the tab's URL starts with prefix and returns it.
// It fails with the last URL seen when timeout passes first.
func WaitLocation(ctx context.Context, prefix string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	var loc string
	for {
		var err error
		loc, err = chromedp.Run(ctx, chromedp.Location())
		if err == nil && strings.HasPrefix(loc, prefix) {
			return loc, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("testenv: still at %q after %s, want %s…", loc, timeout, prefix)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitText waits until an element matching the CSS selector has non-empty
// text and returns it (trimmed). Navigations while it waits are fine: it
// looks at whatever page is loaded. It fails when timeout passes first.
func WaitText(ctx context.Context, selector string, timeout time.Duration) (string, error) {
	v, err := poll[string](ctx, timeout, `(sel) => { const e = document.querySelector(sel); return e && e.textContent.trim() || null; }`, selector)
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		return "", fmt.Errorf("testenv: no text at %s within %s (page %s): %w", selector, timeout, loc, err)
	}
	return v, nil
}

// clickButtonJS clicks the first visible <button> whose text matches
// (case-insensitively) one of the words, and reports whether it found one.
const clickButtonJS = `(words) => {
  const bs = [...document.querySelectorAll('button')].filter(b => b.offsetParent !== null && !b.disabled);
  for (const w of words) {
    const b = bs.find(b => b.textContent.trim().toLowerCase() === w || b.getAttribute('aria-label')?.toLowerCase() === w);
    if (b) { b.click(); return true; }
  }
  return false;
}`

// ClickButton clicks the first visible, enabled button whose text is one of
// labels (case-insensitive), waiting up to timeout for one to appear.
func ClickButton(ctx context.Context, timeout time.Duration, labels ...string) error {
	lower := make([]any, 0, len(labels))
	for _, l := range labels {
		lower = append(lower, strings.ToLower(l))
	}
	_, err := poll[bool](ctx, timeout, `(...words) => (`+clickButtonJS+`)(words) || null`, lower...)
	if err != nil {
		return fmt.Errorf("testenv: no %q button within %s: %w", labels, timeout, err)
	}
	return nil
}

// poll evaluates fn in the page until it returns a non-null value or
// timeout passes. A navigation replacing the page while it polls (the
// execution context goes away) is not an error: it polls the new page.
func poll[T any](ctx context.Context, timeout time.Duration, fn string, args ...any) (T, error) {
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			left = time.Millisecond
		}
		v, err := chromedp.Run(ctx, chromedp.PollFunction[T](fn,
			chromedp.WithPollingArgs(args...), chromedp.WithPollingTimeout(left), chromedp.WithPollingInterval(100*time.Millisecond)))
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) || !contextGone(err) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// contextGone reports whether err says the page's JavaScript context
// disappeared under an evaluation (a navigation).
func contextGone(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Cannot find context") || strings.Contains(msg, "context was destroyed") ||
		strings.Contains(msg, "Inspected target navigated") || strings.Contains(msg, "Cannot find default execution context")
}

// PDSSignIn drives the sandbox PDS's own sign-in and consent pages in the
// browser, starting on its authorize page: "Sign in" (if the landing page
// shows it), username and password, submit, then "Authorize" (or "Deny
// access" when approve is false). shot, when not nil, is called with a
// short name at each screen so the caller can take screenshots.
func PDSSignIn(ctx context.Context, username, password string, approve bool, shot func(name string)) error {
	if shot == nil {
		shot = func(string) {}
	}
	const wait = 20 * time.Second
	// The landing page offers "Sign in" / "Create account" unless the
	// login hint takes the browser straight to the form.
	state, err := poll[string](ctx, wait, `() => {
	  if (document.querySelector('input[type="password"]')) return 'form';
	  const b = [...document.querySelectorAll('button')].find(b => b.offsetParent !== null && /^sign in$/i.test(b.textContent.trim()));
	  return b ? 'landing' : null;
	}`)
	if err != nil {
		return fmt.Errorf("testenv: the PDS page shows neither a sign-in button nor a password field: %w", err)
	}
	shot("pds-" + state)
	if state == "landing" {
		if err := ClickButton(ctx, wait, "Sign in"); err != nil {
			return err
		}
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`input[type="password"]`))); err != nil {
		return fmt.Errorf("testenv: no password field: %w", err)
	}
	user := chromedp.CSS(`input:not([type="password"]):not([type="hidden"]):not([type="checkbox"])`)
	current, err := chromedp.Run(ctx, chromedp.Value(user))
	if err != nil {
		return fmt.Errorf("testenv: no username field: %w", err)
	}
	steps := []chromedp.Action[chromedp.Void]{}
	if !strings.EqualFold(strings.TrimPrefix(current, "@"), username) {
		steps = append(steps, chromedp.Clear(user), chromedp.SendKeys(user, username))
	}
	steps = append(steps, chromedp.SendKeys(chromedp.CSS(`input[type="password"]`), password))
	if err := chromedp.Do(ctx, steps...); err != nil {
		return fmt.Errorf("testenv: filling the sign-in form: %w", err)
	}
	shot("pds-signin")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`))); err != nil {
		return fmt.Errorf("testenv: submitting the sign-in form: %w", err)
	}
	// Consent screen.
	if _, err := poll[bool](ctx, wait, `() => [...document.querySelectorAll('button')].some(b => b.offsetParent !== null && /^authorize$/i.test(b.textContent.trim())) || null`); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 400)`))
		return fmt.Errorf("testenv: no consent screen (page says %q): %w", body, err)
	}
	shot("pds-consent")
	label := "Authorize"
	if !approve {
		label = "Deny access"
	}
	return ClickButton(ctx, wait, label)
}

// LogWatch collects the browser's console errors and warnings (CSP
// violations among them) and uncaught exceptions.
type LogWatch struct {
	mu      sync.Mutex
	entries []string
}

// WatchLog starts collecting from the tab of ctx until ctx ends. It fails
// when the Log domain cannot be enabled.
func WatchLog(ctx context.Context) (*LogWatch, error) {
	w := &LogWatch{}
	entries := chromedp.Events(ctx, cdplog.EntryAdded)
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		return nil, fmt.Errorf("testenv: Log.enable: %w", err)
	}
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		return nil, fmt.Errorf("testenv: Runtime.enable: %w", err)
	}
	go func() {
		for ev, err := range entries {
			if err != nil {
				return
			}
			if e := ev.Entry; e != nil && (e.Level == cdplog.EntryLevelError || e.Level == cdplog.EntryLevelWarning) {
				w.add(fmt.Sprintf("%s %s: %s (%s)", e.Level, e.Source, e.Text, e.URL))
			}
		}
	}()
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			if d := ev.ExceptionDetails; d != nil {
				w.add(fmt.Sprintf("exception: %s (%s)", d.Text, d.URL))
			}
		}
	}()
	return w, nil
}

func (w *LogWatch) add(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.entries = append(w.entries, s)
}

// Entries returns what was collected so far whose text contains any of
// the filters (all entries when none is given).
func (w *LogWatch) Entries(filters ...string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, e := range w.entries {
		if len(filters) == 0 {
			out = append(out, e)
			continue
		}
		for _, f := range filters {
			if strings.Contains(e, f) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}
