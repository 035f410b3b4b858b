package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// readDeadline is how soon an open, visible conversation must be marked
// read upstream.
const readDeadline = 10 * time.Second

// readingPutProfile writes acct's profile without lexicon validation, as a
// PDS holds a record written that way: the display name may then be far
// longer than the 64 graphemes the lexicon allows.
func readingPutProfile(t *testing.T, n *sandbox.Network, acct sandbox.Account, displayName string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api := testenv.PasswordSession(t, n, acct)
	in := map[string]any{"repo": acct.DID, "collection": "app.bsky.actor.profile", "rkey": "self", "validate": false,
		"record": map[string]any{"$type": "app.bsky.actor.profile", "displayName": displayName}}
	if err := api.Post(ctx, "com.atproto.repo.putRecord", in, nil); err != nil {
		t.Fatal(err)
	}
}

// readingUnread returns alice's unread count of convo, asked of the chat
// service directly.
func readingUnread(t *testing.T, c *chatproxy.Client, convo string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := c.GetConvo(ctx, convo)
	if err != nil {
		t.Fatal(err)
	}
	return v.UnreadCount
}

// readingNewestVisible is a JavaScript function returning "" when the
// newest message of the conversation is wholly in the viewport and not
// under the sticky composer, else what is wrong, with the rectangles.
const readingNewestVisible = `() => {
	const msgs = document.querySelectorAll('#msgs > li.msg');
	const last = msgs[msgs.length - 1], composer = document.getElementById('composer');
	if (!last || !composer) return 'no messages or no composer';
	const m = last.getBoundingClientRect(), c = composer.getBoundingClientRect();
	const ok = m.top >= 0 && m.bottom <= innerHeight && m.bottom <= c.top + 0.5;
	return ok ? '' : 'newest message ' + JSON.stringify({id: last.id, top: m.top, bottom: m.bottom}) +
		' composer top ' + c.top + ' viewport ' + innerHeight + ' scrollY ' + scrollY;
}`

// readingVisualOrder is a JavaScript function taking a selector: "" when
// the characters of the element's text are laid out left to right in the
// order they are written (so nothing was reordered), else the text in the
// order it is seen.
const readingVisualOrder = `(sel) => {
	const el = document.querySelector(sel);
	if (!el) return 'no ' + sel;
	const chars = [];
	const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
	for (let n = walker.nextNode(); n; n = walker.nextNode()) {
		for (let i = 0; i < n.data.length; i++) {
			const r = document.createRange();
			r.setStart(n, i); r.setEnd(n, i + 1);
			const b = r.getBoundingClientRect();
			if (b.width > 0 && n.data[i].trim()) chars.push({c: n.data[i], x: b.left, y: Math.round(b.top)});
		}
	}
	const seen = [...chars].sort((a, b) => a.y - b.y || a.x - b.x).map(c => c.c).join('');
	const written = chars.map(c => c.c).join('');
	return seen === written ? '' : 'written ' + JSON.stringify(written) + ' but seen ' + JSON.stringify(seen);
}`

// TestBrowserReadingAConversation opens a conversation with a long history
// from someone whose (unvalidated) display name is hundreds of characters
// long and whose newest message hides a right-to-left override:
//   - a prefetch from another site and a tab in the background do not
//     mark it read (no updateRead upstream); showing it does, within 10 s;
//   - at 1100 and 390 px wide, with JavaScript on and off, opening it from
//     the inbox and sending a message leave the newest message wholly
//     visible above the sticky composer;
//   - "invoice_<U+202E>fdp.exe" is seen in the order it was written, in
//     the conversation and in the inbox preview;
//   - the long name neither widens the page at 390 px nor fills the title,
//     and takes at most two lines of the header;
//   - a message that arrives while the page is visible is marked read.
//
// Screenshots: artifacts/screenshots/issue8-reading-*.png.
func TestBrowserReadingAConversation(t *testing.T) {
	n := testenv.Network(t)
	alice, bob := testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	dmFollowEachOther(t, n, alice, bob)
	longName := strings.Repeat("Ŵ", 300) // unbroken, 600 bytes
	readingPutProfile(t, n, bob, longName)
	bobAPI := testenv.PasswordSession(t, n, bob)
	convo := dmConvoWith(t, n, bobAPI, alice)
	bobChat := chatproxy.New(bobAPI, n.ChatServiceRef)
	setup, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const evil = "invoice_\u202Efdp.exe"
	evilID := ""
	for i := range 30 {
		text := fmt.Sprintf("Message %d: a line long enough to wrap on a phone, so the conversation is taller than the screen.", i)
		if i == 29 {
			text = evil
		}
		m, err := bobChat.SendMessage(setup, convo, chatproxy.MessageInput{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		evilID = m.Id
	}
	aliceChat := chatproxy.New(testenv.PasswordSession(t, n, alice), n.ChatServiceRef)
	if _, err := aliceChat.AcceptConvo(setup, convo); err != nil {
		t.Fatal(err)
	}
	if u := readingUnread(t, aliceChat, convo); u != 30 {
		t.Fatalf("alice has %d unread, want 30", u)
	}
	updateReads := func() int {
		c, err := n.Calls(setup, "chat.bsky.convo.updateRead")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	readsBefore := updateReads()

	base, _ := startRun(t, nil, sandboxEnv(t, n))
	ctx, cancelCtx := context.WithTimeout(testenv.Browser(t, testenv.BrowserOptions{}), 4*time.Minute)
	defer cancelCtx()
	shot := func(name string) { testenv.Screenshot(t, ctx, "issue8-reading-"+name) }
	browserSignIn(t, ctx, base, n.PDSURL, alice, nil)
	convoURL := base + "/convos/" + convo

	// Another site prefetches the conversation and frames it.
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>elsewhere</title><link rel="prefetch" href="%s"><iframe src="%s"></iframe><p id="ok">elsewhere</p>`, convoURL, convoURL)
	}))
	defer other.Close()
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1) // another site than 127.0.0.1
	dmDo(t, ctx, "cross-site page", chromedp.Navigate(otherURL), chromedp.WaitVisible(chromedp.CSS(`#ok`)))

	// A tab opened in the background loads the page (and its script) but
	// is not seen.
	yes := true
	bg, err := chromedp.CallBrowser(ctx, target.CreateTarget, target.CreateTargetParams{URL: convoURL, Background: &yes})
	if err != nil {
		t.Fatal(err)
	}
	bgCtx, cancelBg := chromedp.NewContext(ctx, chromedp.WithTargetID(bg.TargetID))
	defer cancelBg()
	dmWait(t, bgCtx, 20*time.Second, "the background tab's page and script", `() => document.readyState === 'complete' && document.getElementById('composer-hint')?.hidden === false`)
	if vis, err := chromedp.Run(bgCtx, chromedp.Evaluate[string](`document.visibilityState`)); err != nil || vis != "hidden" {
		t.Fatalf("the background tab is %q (%v), want hidden", vis, err)
	}
	if got := updateReads() - readsBefore; got != 0 {
		t.Errorf("a cross-site prefetch and a background tab made %d updateRead calls, want 0", got)
	}
	if u := readingUnread(t, aliceChat, convo); u != 30 {
		t.Errorf("unread %d after a prefetch and a background tab, want 30", u)
	}

	// Bringing the tab to the front marks it read.
	if _, err := chromedp.CallBrowser(bgCtx, target.ActivateTarget, target.ActivateTargetParams{TargetID: bg.TargetID}); err != nil {
		t.Fatal(err)
	}
	readingWaitRead(t, ctx, aliceChat, convo, "the background tab brought to the front")
	cancelBg()

	// The newest message is in view, at both widths, with and without JavaScript.
	for _, js := range []bool{true, false} {
		for _, width := range []int64{1100, 390} {
			name := fmt.Sprintf("%dpx-js-%v", width, js)
			height := int64(900)
			if width == 390 {
				height = 844
			}
			if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !js}); err != nil {
				t.Fatal(err)
			}
			dmDo(t, ctx, name+"-setup",
				chromedp.EmulateViewport(width, height),
				chromedp.Navigate(base+"/"),
				chromedp.WaitVisible(chromedp.CSS(`[data-testid="convo-row"][data-id="`+convo+`"] a`)),
			)
			if w, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.scrollWidth > innerWidth ? 'page is ' + document.documentElement.scrollWidth + 'px wide' : ''`)); err != nil || w != "" {
				t.Errorf("%s inbox: %s (%v)", name, w, err)
			}
			if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(`+readingVisualOrder+`)('[data-testid="convo-row"][data-id="`+convo+`"] [data-testid="convo-preview"]')`)); err != nil || got != "" {
				t.Errorf("%s inbox preview: %s (%v)", name, got, err)
			}
			shot(name + "-1-inbox")
			dmDo(t, ctx, name+"-open",
				chromedp.Click(chromedp.CSS(`[data-testid="convo-row"][data-id="`+convo+`"] a`)),
				chromedp.WaitVisible(chromedp.CSS(`[data-testid="composer"]`)),
			)
			dmWait(t, ctx, 10*time.Second, name+": the newest message in view after opening", `() => document.readyState === 'complete'`)
			if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(`+readingNewestVisible+`)()`)); err != nil || got != "" {
				shot(name + "-99-open")
				t.Errorf("%s after opening from the inbox: %s (%v)", name, got, err)
			}
			if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(`+readingVisualOrder+`)('#m-`+evilID+` [data-testid="message-text"]')`)); err != nil || got != "" {
				t.Errorf("%s message text: %s (%v)", name, got, err)
			}
			checks := map[string]string{
				"the page is no wider than the screen": `document.documentElement.scrollWidth <= innerWidth`,
				"the title is not the whole name":      `[...new Intl.Segmenter().segment(document.title)].length <= 80`,
				"the header shows a clamped name":      `document.querySelector('[data-testid="convo-title"]').textContent.trim().endsWith('…')`,
				"the name takes at most two lines":     `(h => h.getBoundingClientRect().height <= 2.2 * parseFloat(getComputedStyle(h).lineHeight))(document.querySelector('[data-testid="convo-title"]'))`,
			}
			for what, js := range checks {
				if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js)); err != nil || !ok {
					t.Errorf("%s: %s: %v (%v)", name, what, ok, err)
				}
			}
			shot(name + "-2-opened")
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](`scrollTo(0, 0)`)); err == nil {
				shot(name + "-2-header")
			}

			text := "Sent at " + name
			if js {
				dmSendWithEnter(t, ctx, text)
			} else {
				dmDo(t, ctx, name+"-send",
					chromedp.SendKeys(chromedp.CSS(`[data-testid="draft"]`), text),
					chromedp.Click(chromedp.CSS(`[data-testid="send"]`)),
				)
				dmWait(t, ctx, 15*time.Second, name+": the sent message on the page", `(t) => document.readyState === 'complete' && [...document.querySelectorAll('#msgs > li.msg')].pop().textContent.includes(t)`, text)
			}
			if got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(`+readingNewestVisible+`)()`)); err != nil || got != "" {
				shot(name + "-99-sent")
				t.Errorf("%s after sending: %s (%v)", name, got, err)
			}
			shot(name + "-3-sent")
		}
	}

	// A message that arrives while the conversation is open and visible is
	// marked read by the page.
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false}); err != nil {
		t.Fatal(err)
	}
	dmDo(t, ctx, "open for a live message", chromedp.Navigate(convoURL), chromedp.WaitVisible(chromedp.CSS(`[data-testid="composer"]`)))
	dmWait(t, ctx, 10*time.Second, "the live stream connected", `() => document.getElementById('composer-hint')?.hidden === false`)
	live, err := bobChat.SendMessage(setup, convo, chatproxy.MessageInput{Text: "Are you there?"})
	if err != nil {
		t.Fatal(err)
	}
	dmWait(t, ctx, liveDeadline+5*time.Second, "the live message on the open page", `(id) => !!document.getElementById('m-' + id)`, live.Id)
	readingWaitRead(t, ctx, aliceChat, convo, "a live message on the visible page")
}

// readingWaitRead polls the chat service until alice has no unread message
// in convo, failing the test after readDeadline.
func readingWaitRead(t *testing.T, ctx context.Context, c *chatproxy.Client, convo, what string) {
	t.Helper()
	deadline := time.Now().Add(readDeadline)
	for readingUnread(t, c, convo) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the conversation is still unread after %s", what, readDeadline)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
