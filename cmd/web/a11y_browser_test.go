package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// a11yPage is one page the accessibility check visits.
type a11yPage struct {
	name, path string
	open       string // JavaScript run after load, e.g. to open a disclosure
}

// a11yOpenLeave opens the page's Leave confirmation and scrolls it into view.
const a11yOpenLeave = `(() => { const d = document.querySelector('[data-testid="leave"]'); d.open = true; d.scrollIntoView({block: 'start'}); })()`

// a11yWidths are the viewports pages are checked at: a phone (390), the
// narrowest reflow width of WCAG 1.4.10 (320, also 640 at 200 % zoom)
// and a desktop window.
var a11yWidths = []int64{320, 390, 640, 1100}

// TestBrowserAccessibility runs axe-core (sandbox/node_modules, WCAG 2.0–2.2
// A/AA and best practices) in headless Chromium on every page of skydm,
// signed out and signed in, in light and dark colours and at 390 px and
// desktop width, and wants no violation; it saves a 390 px screenshot of
// each page (artifacts/screenshots/a11y-*.png). Then it checks by keyboard
// what axe cannot: the Leave confirmation stays inside the viewport at
// every width, no focused control hides under the sticky composer, the
// focus ring shows on every background, each message's "More" link says
// which message and is large enough, a skip link reaches the composer,
// Escape closes the confirmation, and after each action that reloads the
// page focus lands on its notice or on the message acted on.
func TestBrowserAccessibility(t *testing.T) {
	n := testenv.Network(t)
	alice, bob, carol := testenv.NewAccount(t, n), testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	dmFollowEachOther(t, n, alice, bob)
	dmFollowEachOther(t, n, alice, carol)
	aliceAPI, bobAPI, carolAPI := testenv.PasswordSession(t, n, alice), testenv.PasswordSession(t, n, bob), testenv.PasswordSession(t, n, carol)

	// A conversation with many messages, alice's own with links in them.
	convo := dmConvoWith(t, n, aliceAPI, bob)
	var lastBob string
	for i := range 24 {
		from, text := aliceAPI, fmt.Sprintf("Message %d from alice, see https://example.com/%d", i, i)
		if i%2 == 1 {
			from, text = bobAPI, fmt.Sprintf("Message %d from bob, a reply that is long enough to wrap on a phone screen", i)
		}
		id := a11ySend(t, n, from, convo, text)
		if i%2 == 1 {
			lastBob = id
		}
	}
	request := dmConvoWith(t, n, carolAPI, alice)
	a11ySend(t, n, carolAPI, request, "Hi alice, carol here: may I ask you about the widgets?")

	base, _ := startRun(t, nil, sandboxEnv(t, n))
	// A project of bob's, and a change request alice files on it.
	bobHTTP, aliceHTTP := newBrowserClient(t, base), newBrowserClient(t, base)
	signInHTTP(t, bobHTTP, bob)
	signInHTTP(t, aliceHTTP, alice)
	project := postRedirect(t, bobHTTP, "/projects", url.Values{"name": {"Widgets"}, "description": {"Sturdy widgets."}})
	cr := postRedirect(t, aliceHTTP, project+"/change-requests", url.Values{"title": {"Faster widgets"}, "body": {"Please make them spin faster."}})

	ctx, cancel := context.WithTimeout(testenv.Browser(t, testenv.BrowserOptions{}), 12*time.Minute)
	defer cancel()
	convoPath := "/convos/" + url.PathEscape(convo)
	// Pages both signed out and signed in.
	both := []a11yPage{
		{name: "projects", path: "/projects"},
		{name: "project", path: project},
		{name: "change-request", path: cr},
		{name: "error", path: "/oauth/callback?state=forged&code=x"},
		{name: "404", path: "/no-such-page"},
	}
	signedOut := append([]a11yPage{{name: "start", path: "/"}, {name: "signin", path: "/signin"}}, both...)
	t.Run("axe signed out", func(t *testing.T) { a11yAxePages(t, ctx, base, "out", signedOut) })

	browserSignIn(t, ctx, base, n.PDSURL, alice, nil)
	signedIn := []a11yPage{
		{name: "inbox", path: "/"},
		{name: "requests", path: "/requests"},
		{name: "conversation", path: convoPath},
		{name: "message-actions", path: convoPath + "?sel=" + url.QueryEscape(lastBob) + "#m-" + lastBob},
		{name: "leave-open", path: convoPath, open: a11yOpenLeave},
		{name: "request", path: "/convos/" + url.PathEscape(request)},
		{name: "new-conversation", path: "/convos/new"},
		{name: "settings", path: "/settings/chat"},
		{name: "account", path: "/account"},
		{name: "change-requests", path: "/change-requests"},
		{name: "change-requests-mine", path: "/change-requests?tab=mine"},
	}
	signedIn = append(signedIn, both...)
	t.Run("axe signed in", func(t *testing.T) { a11yAxePages(t, ctx, base, "in", signedIn) })

	t.Run("the Leave confirmation stays inside the viewport", func(t *testing.T) {
		for _, p := range []string{convoPath, "/convos/" + url.PathEscape(request)} {
			for _, w := range a11yWidths {
				a11yViewport(t, ctx, w)
				a11yGo(t, ctx, base+p)
				a11yRun(t, ctx, a11yOpenLeave)
				if w == 390 || w == 1100 {
					testenv.Screenshot(t, ctx, fmt.Sprintf("a11y-leave-open-%s-%d", map[bool]string{true: "convo", false: "request"}[p == convoPath], w))
				}
				out := a11yEval[string](t, ctx, `(() => {
				  const vw = document.documentElement.clientWidth, bad = [];
				  for (const sel of ['[data-testid="leave"] .confirm-box', '[data-testid="leave-confirm"]']) {
				    const r = document.querySelector(sel).getBoundingClientRect();
				    if (r.left < 0 || r.right > vw) bad.push(sel + ' spans ' + Math.round(r.left) + '..' + Math.round(r.right) + ' of ' + vw);
				  }
				  if (document.documentElement.scrollWidth > vw) bad.push('the page scrolls sideways: ' + document.documentElement.scrollWidth + ' > ' + vw);
				  return bad.join('; ');
				})()`)
				if out != "" {
					t.Errorf("%s at %d px: %s", p, w, out)
				}
			}
		}
	})

	t.Run("focus never hides under the composer and its ring shows", func(t *testing.T) {
		for _, v := range []struct {
			width  int64
			scheme string
		}{{390, "light"}, {1100, "light"}, {390, "dark"}} {
			w := fmt.Sprintf("%d px %s", v.width, v.scheme)
			a11yViewport(t, ctx, v.width)
			a11yScheme(t, ctx, v.scheme)
			a11yGo(t, ctx, base+convoPath)
			steps := a11yTabWalk(t, ctx)
			hidden, ringless := 0, 0
			for _, s := range steps {
				if s.UnderComposer {
					hidden++
					t.Errorf("%s: focused %s is under the composer (%s)", w, s.What, s.Rect)
				}
				if s.Ring != "" {
					ringless++
					t.Errorf("%s: focused %s: %s", w, s.What, s.Ring)
				}
			}
			t.Logf("%s: %d focusable controls, %d under the composer, %d without a visible ring", w, len(steps), hidden, ringless)
			if len(steps) < 30 {
				t.Errorf("%s: only %d controls reached by Tab", w, len(steps))
			}
		}
		a11yScheme(t, ctx, "")
		// Pages other than the DM pages have the same focus ring.
		a11yViewport(t, ctx, 1100)
		for _, p := range []string{"/projects", project, "/account"} {
			a11yGo(t, ctx, base+p)
			for _, s := range a11yTabWalk(t, ctx) {
				if s.Ring != "" {
					t.Errorf("%s: focused %s: %s", p, s.What, s.Ring)
				}
			}
		}
	})

	t.Run("each More link names its message and is at least 24 px tall", func(t *testing.T) {
		a11yViewport(t, ctx, 390)
		a11yGo(t, ctx, base+convoPath)
		sizes := a11yEval[[]string](t, ctx, `[...document.querySelectorAll('[data-testid="more"]')].map(a => {
		  const r = a.getBoundingClientRect(); return r.height < 24 || r.width < 24 ? a.textContent + ': ' + Math.round(r.width) + '×' + Math.round(r.height) : '';
		}).filter(Boolean)`)
		for _, s := range sizes {
			t.Errorf("More link smaller than 24×24 px: %s", s)
		}
		// What each link's name must say: whose message (yours, or the
		// sender's name) and its time, in page order.
		want := a11yEval[[]string](t, ctx, `[...document.querySelectorAll('[data-testid="more"]')].map(a => {
		  const li = a.closest('.msg'), who = li.hasAttribute('data-own') ? 'your message' : li.querySelector('.sender').textContent.trim() + '’s message';
		  return who + ' at ' + li.querySelector('.meta time').textContent.trim();
		})`)
		names := a11yLinkNames(t, ctx, "More")
		if len(names) != len(want) || len(want) < 24 {
			t.Fatalf("%d More links named, %d on the page", len(names), len(want))
		}
		for i, name := range names {
			if !strings.HasPrefix(name, "More actions for ") || !strings.HasSuffix(name, want[i]) || !a11yHasClock(name) {
				t.Errorf("More link %d is named %q, want it to say %q", i, name, want[i])
			}
		}
		t.Logf("e.g. %q, %q", names[0], names[1])
	})

	t.Run("a skip link reaches the composer and Escape closes the Leave confirmation", func(t *testing.T) {
		a11yViewport(t, ctx, 390)
		a11yGo(t, ctx, base+convoPath)
		reached := ""
		for range 3 {
			a11yKey(t, ctx, "Tab")
			if a11yEval[bool](t, ctx, `/message/i.test(document.activeElement.textContent) && document.activeElement.matches('a')`) {
				testenv.Screenshot(t, ctx, "a11y-skip-to-composer-390")
				a11yKey(t, ctx, "Enter")
				reached = a11yEval[string](t, ctx, `document.activeElement.id`)
				break
			}
		}
		if reached != "text" {
			t.Errorf("within 3 Tabs and Enter from the top, focus is on #%q, want the composer's text box", reached)
		}
		a11yRun(t, ctx, `document.querySelector('[data-testid="leave"] summary').focus()`)
		a11yKey(t, ctx, "Enter")
		a11yKey(t, ctx, "Tab") // onto "Yes, leave"
		if !a11yEval[bool](t, ctx, `document.querySelector('[data-testid="leave"]').open && document.activeElement.matches('[data-testid="leave-confirm"]')`) {
			t.Fatalf("Enter on Leave and Tab did not reach the open confirmation")
		}
		a11yKey(t, ctx, "Escape")
		if got := a11yEval[string](t, ctx, `(document.querySelector('[data-testid="leave"]').open ? 'open' : 'closed') + ', focus on ' + document.activeElement.textContent.trim()`); got != "closed, focus on Leave" {
			t.Errorf("after Escape: %s, want closed, focus on Leave", got)
		}
	})

	t.Run("after an action focus returns to its notice or its message", func(t *testing.T) {
		a11yViewport(t, ctx, 1100)
		msg := "#m-" + lastBob
		cases := []struct {
			what, page, open, control, want string
			noJS                            bool
		}{
			{what: "mute", page: convoPath, control: `[data-testid="mute"]`, want: `[data-testid="notice"]`},
			{what: "unmute without JavaScript", page: convoPath, control: `[data-testid="unmute"]`, want: `[data-testid="notice"]`, noJS: true},
			{what: "mark read", page: convoPath, control: `[data-testid="mark-read"]`, want: `[data-testid="notice"]`},
			{what: "react", page: convoPath + "?sel=" + lastBob, control: msg + ` [data-testid="pick"]`, want: msg},
			{what: "remove the reaction without JavaScript", page: convoPath, control: msg + ` [data-testid="reaction"][aria-pressed="true"]`, want: msg, noJS: true},
			{what: "delete", page: convoPath + "?sel=" + lastBob, control: msg + ` [data-testid="delete"]`, want: msg},
			{what: "accept", page: "/convos/" + url.PathEscape(request), control: `[data-testid="accept"]`, want: `[data-testid="notice"]`},
			{what: "leave", page: "/convos/" + url.PathEscape(request), open: a11yOpenLeave, control: `[data-testid="leave-confirm"]`, want: `[data-testid="notice"]`},
		}
		for _, c := range cases {
			a11yScripts(t, ctx, !c.noJS)
			a11yGo(t, ctx, base+c.page)
			if c.open != "" {
				a11yRun(t, ctx, c.open)
			}
			a11yRun(t, ctx, `window.__before = true; document.querySelector(`+a11yQuote(c.control)+`).focus()`)
			a11yKey(t, ctx, "Enter")
			if c.noJS {
				// Without scripts the browser itself must focus the
				// notice, or put the focus starting point on the
				// message: the next Tab goes to a control inside or after it.
				if _, err := dmPoll(ctx, 15*time.Second, `() => !window.__before && document.readyState === 'complete'`); err != nil {
					t.Fatalf("%s: no new page: %v", c.what, err)
				}
				if !a11yEval[bool](t, ctx, `document.activeElement.matches(`+a11yQuote(c.want)+`)`) {
					a11yKey(t, ctx, "Tab")
				}
			}
			got, err := dmPoll(ctx, 15*time.Second, `(want) => {
			  if (window.__before || document.readyState !== 'complete') return null;
			  const a = document.activeElement, w = document.querySelector(want);
			  if (w && (w === a || w.contains(a))) return 'ok';
			  return null;
			}`, c.want)
			if err != nil || got != "ok" {
				where := a11yEval[string](t, ctx, `location.pathname + location.search + location.hash + ': focus on ' + document.activeElement.tagName + ' ' + (document.activeElement.id || document.activeElement.className) + ' ' + document.activeElement.textContent.trim().slice(0, 60)`)
				t.Errorf("%s: focus did not land on %s (%v); at %s", c.what, c.want, err, where)
			}
		}
		a11yScripts(t, ctx, true)
	})
}

// a11ySend sends text from one account into convo, with a link facet on
// any URL in it, and returns the message id.
func a11ySend(t *testing.T, n *sandbox.Network, from *atclient.APIClient, convo, text string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var facets []*bsky.RichtextFacet
	if i := strings.Index(text, "https://"); i >= 0 {
		end := i + strings.IndexByte(text[i:]+" ", ' ')
		facets = append(facets, &bsky.RichtextFacet{Index: &bsky.RichtextFacet_ByteSlice{ByteStart: int64(i), ByteEnd: int64(end)},
			Features: []*bsky.RichtextFacet_Features_Elem{{RichtextFacet_Link: &bsky.RichtextFacet_Link{Uri: text[i:end]}}}})
	}
	m, err := chatproxy.New(from, n.ChatServiceRef).SendMessage(ctx, convo, chatproxy.MessageInput{Text: text, Facets: facets})
	if err != nil {
		t.Fatal(err)
	}
	return m.Id
}

// a11yAxePages loads each page at desktop width in light and dark colours
// and at 390 px, runs axe-core on each, and saves the 390 px screenshot.
func a11yAxePages(t *testing.T, ctx context.Context, base, who string, pages []a11yPage) {
	for _, p := range pages {
		for _, v := range []struct {
			width  int64
			scheme string
		}{{1100, "light"}, {1100, "dark"}, {390, "light"}} {
			a11yViewport(t, ctx, v.width)
			a11yScheme(t, ctx, v.scheme)
			a11yGo(t, ctx, base+p.path)
			if p.open != "" {
				a11yRun(t, ctx, p.open)
			}
			if v.width == 390 {
				testenv.Screenshot(t, ctx, "a11y-"+who+"-"+p.name+"-390")
			}
			vs, err := testenv.Axe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range vs {
				t.Errorf("signed %s, %s (%s) at %d px, %s: %s", who, p.name, p.path, v.width, v.scheme, x)
			}
		}
	}
	a11yScheme(t, ctx, "")
}

// a11yScheme makes the page prefer light or dark colours; "" ends the
// emulation.
func a11yScheme(t *testing.T, ctx context.Context, scheme string) {
	t.Helper()
	var p emulation.SetEmulatedMediaParams
	if scheme != "" {
		p.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
	}
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, p); err != nil {
		t.Fatal(err)
	}
}

// a11yStep is what one Tab press focused.
type a11yStep struct {
	What          string `json:"what"`
	Rect          string `json:"rect"`
	UnderComposer bool   `json:"under"`
	Ring          string `json:"ring"` // why the focus ring is not visible; "" when it is
}

// a11yStepJS describes the focused element: whether it intersects the
// sticky composer (unless it is inside it), and whether its focus ring (an
// outline at least 2 px wide, or a box-shadow halo) has 3:1 contrast with
// the background behind the element.
const a11yStepJS = `(() => {
  const a = document.activeElement;
  if (!a || a === document.body) return null;
  const lum = c => {
    const m = c.match(/[\d.]+/g); if (!m) return null;
    const [r, g, b] = m.slice(0, 3).map(v => { v = v / 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return { l: 0.2126 * r + 0.7152 * g + 0.0722 * b, alpha: m.length > 3 ? +m[3] : 1 };
  };
  const ratio = (x, y) => (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  let bg = null;
  for (let e = a.parentElement; e && !bg; e = e.parentElement) {
    const c = getComputedStyle(e).backgroundColor, v = lum(c);
    if (v && v.alpha > 0.5) bg = v.l;
  }
  if (bg === null) bg = lum(getComputedStyle(document.documentElement).backgroundColor || 'rgb(255,255,255)').l;
  const s = getComputedStyle(a);
  let ring = '';
  const ow = parseFloat(s.outlineWidth) || 0, oc = lum(s.outlineColor);
  const halo = s.boxShadow && s.boxShadow !== 'none' ? lum(s.boxShadow) : null;
  const best = Math.max(s.outlineStyle !== 'none' && ow >= 2 && oc ? ratio(oc.l, bg) : 0, halo ? ratio(halo.l, bg) : 0);
  if (best < 3) ring = 'focus ring ' + s.outlineStyle + ' ' + s.outlineWidth + ' ' + s.outlineColor + (halo ? ' / ' + s.boxShadow : '') + ' has ' + best.toFixed(2) + ':1 on its background, want 3:1';
  const r = a.getBoundingClientRect(), c = document.querySelector('.composer');
  let under = false;
  if (c && !c.contains(a)) {
    const k = c.getBoundingClientRect();
    under = r.bottom > k.top && r.top < k.bottom && r.right > k.left && r.left < k.right && r.width > 0;
  }
  const what = a.tagName.toLowerCase() + (a.dataset.testid ? '[' + a.dataset.testid + ']' : '') + ' "' + (a.textContent || a.value || '').trim().slice(0, 40) + '"';
  return JSON.stringify({ what, rect: Math.round(r.top) + '..' + Math.round(r.bottom) + (c ? ' vs composer ' + Math.round(c.getBoundingClientRect().top) : ''), under, ring });
})()`

// a11yTabWalk presses Tab from the top of the loaded page until focus
// leaves the page or comes back round, and describes each focused element.
func a11yTabWalk(t *testing.T, ctx context.Context) []a11yStep {
	t.Helper()
	var steps []a11yStep
	seen := map[string]bool{}
	a11yRun(t, ctx, `document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)`)
	for range 300 {
		a11yKey(t, ctx, "Tab")
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[*string](a11yStepJS))
		if err != nil {
			t.Fatal(err)
		}
		if raw == nil {
			break
		}
		var s a11yStep
		if err := json.Unmarshal([]byte(*raw), &s); err != nil {
			t.Fatal(err)
		}
		id := a11yEval[string](t, ctx, `(() => { const a = document.activeElement; const all = [...document.querySelectorAll('*')]; return String(all.indexOf(a)); })()`)
		if seen[id] {
			break
		}
		seen[id] = true
		steps = append(steps, s)
	}
	return steps
}

// a11yLinkNames returns the accessible names, as Chromium computes them,
// of the page's links whose name starts with prefix.
func a11yLinkNames(t *testing.T, ctx context.Context, prefix string) []string {
	t.Helper()
	if _, err := chromedp.Call(ctx, accessibility.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	tree, err := chromedp.Call(ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, nd := range tree.Nodes {
		if nd.Ignored || nd.Role == nil || nd.Name == nil || string(nd.Role.Value) != `"link"` {
			continue
		}
		var name string
		if json.Unmarshal(nd.Name.Value, &name) == nil && strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	return names
}

// a11yHasClock reports whether s holds a time of day like 14:02.
func a11yHasClock(s string) bool {
	for i := 0; i+5 <= len(s); i++ {
		c := s[i : i+5]
		if c[2] == ':' && strings.Trim(c[:2]+c[3:], "0123456789") == "" {
			return true
		}
	}
	return false
}

func a11yViewport(t *testing.T, ctx context.Context, width int64) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 844)); err != nil {
		t.Fatal(err)
	}
}

// a11yScripts turns the page's JavaScript on or off for the next loads.
func a11yScripts(t *testing.T, ctx context.Context, on bool) {
	t.Helper()
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !on}); err != nil {
		t.Fatal(err)
	}
}

// a11yGo loads u and waits until it has loaded.
func a11yGo(t *testing.T, ctx context.Context, u string) {
	t.Helper()
	dmDo(t, ctx, "load "+u, chromedp.Navigate(u), chromedp.WaitReady(chromedp.CSS(`main`)))
}

// a11yCallTimeout bounds each single evaluation or key press.
const a11yCallTimeout = 20 * time.Second

func a11yRun(t *testing.T, ctx context.Context, js string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, a11yCallTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](js)); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
}

func a11yEval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, a11yCallTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

func a11yQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// a11yKey presses one key the way a keyboard does: Tab, Enter or Escape.
func a11yKey(t *testing.T, ctx context.Context, key string) {
	t.Helper()
	codes := map[string]int64{"Tab": 9, "Enter": 13, "Escape": 27}
	text := map[string]string{"Enter": "\r"}[key]
	down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: key, Code: key,
		WindowsVirtualKeyCode: codes[key], NativeVirtualKeyCode: codes[key], Text: text, UnmodifiedText: text}
	if text == "" {
		down.Type = input.DispatchKeyEventTypeRawKeyDown
	}
	up := down
	up.Type, up.Text, up.UnmodifiedText = input.DispatchKeyEventTypeKeyUp, "", ""
	ctx, cancel := context.WithTimeout(ctx, a11yCallTimeout)
	defer cancel()
	for _, ev := range []input.DispatchKeyEventParams{down, up} {
		if _, err := chromedp.Call(ctx, input.DispatchKeyEvent, ev); err != nil {
			t.Fatalf("pressing %s: %v", key, err)
		}
	}
}
