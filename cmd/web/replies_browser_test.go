package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skydm/skydm/internal/testenv"
)

// TestBrowserReplies: in headless Chromium alice replies to bob's message
// with JavaScript (Reply in its actions fills the composer in place, Esc
// cancels, Enter sends), sees the quote above her text, clicks it and bob's
// message, far up the page, scrolls into view and is highlighted (the
// :target), without a reload. Then without JavaScript: ?reply= renders the composer replying,
// Send stores the reply and the page shows its quote. axe-core runs on each
// state; no console or CSP problems. Screenshots (desktop and 390 px):
// artifacts/screenshots/issue10-replies-*.png.
//
// It needs devchat's replyTo support (stored and returned).
func TestBrowserReplies(t *testing.T) {
	n, alice, bob, bobAPI, convo := repliesPair(t)
	parentID := a11ySend(t, n, bobAPI, convo, "Dinner on Friday at eight? I can book the Thai place on Mill Street.")
	for i := range 25 {
		a11ySend(t, n, bobAPI, convo, fmt.Sprintf("Another thought, number %d, so that the first message is far up the page", i))
	}
	base, _ := startRun(t, nil, sandboxEnv(t, n))
	ctx, cancel := context.WithTimeout(testenv.Browser(t, testenv.BrowserOptions{}), 5*time.Minute)
	defer cancel()
	watch, err := testenv.WatchLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// shots saves the tab at desktop width and at 390 px, with the element
	// of sel scrolled into view after each resize.
	shots := func(name, sel string) {
		for _, w := range []int64{1100, 390} {
			a11yViewport(t, ctx, w)
			a11yRun(t, ctx, `document.querySelector(`+a11yQuote(sel)+`).scrollIntoView({block: "center"})`)
			testenv.Screenshot(t, ctx, fmt.Sprintf("issue10-replies-%s-%d", name, w))
		}
		a11yViewport(t, ctx, 1100)
	}
	// axe runs axe-core on the page as loaded (with scripts on for axe
	// itself when the page was loaded without them).
	axe := func(state string, noJS bool) {
		t.Helper()
		if noJS {
			a11yScripts(t, ctx, true)
			defer a11yScripts(t, ctx, false)
		}
		vs, err := testenv.Axe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			t.Errorf("%s: %s", state, v)
		}
	}
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	browserSignIn(t, ctx, base, n.PDSURL, alice, nil)
	convoURL := base + "/convos/" + convo
	parent := `#m-` + parentID

	// With JavaScript: More → Reply fills the composer without a reload.
	a11yGo(t, ctx, convoURL+"?sel="+parentID)
	a11yRun(t, ctx, `window.__stayed = true`)
	dmDo(t, ctx, "reply-in-place", chromedp.Click(css(parent+` [data-testid="message-actions"] [data-testid="reply"]`)),
		chromedp.WaitVisible(css(`#composer [data-testid="composer-reply"]`)))
	box := a11yEval[string](t, ctx, `document.querySelector('#composer [data-testid="composer-reply"]').innerText`)
	if !strings.HasPrefix(strings.Join(strings.Fields(box), " "), "Replying to "+bob.Handle+": Dinner on Friday at eight?") {
		t.Errorf("composer reply line %q", box)
	}
	if !a11yEval[bool](t, ctx, `window.__stayed === true && document.activeElement.id === "text" && document.querySelector('#composer input[name="reply_to"]').value === `+a11yQuote(parentID)) {
		t.Error("Reply reloaded the page, left the focus elsewhere or did not set reply_to")
	}
	axe("composer replying (JS)", false)
	shots("01-composer-replying", "#composer")

	// Esc cancels; Reply again, and Enter sends the reply.
	a11yKey(t, ctx, "Escape")
	if a11yEval[int](t, ctx, `document.querySelectorAll('#composer [data-testid="composer-reply"], #composer input[name="reply_to"]').length`) != 0 {
		t.Error("Esc did not cancel the reply")
	}
	dmDo(t, ctx, "reply-again", chromedp.Click(css(parent+` [data-testid="message-actions"] [data-testid="reply"]`)),
		chromedp.WaitVisible(css(`#composer [data-testid="composer-reply"]`)))
	const answer = "Yes, eight works. Book it!"
	replyID := dmSendWithEnter(t, ctx, answer)
	reply := `#m-` + replyID
	dmWait(t, ctx, 10*time.Second, "the reply's quote", `(sel) => document.querySelector(sel + ' [data-testid="reply-quote"]')`, reply)
	quote := a11yEval[string](t, ctx, `document.querySelector('`+reply+` [data-testid="reply-quote"]').innerText`)
	if !strings.Contains(quote, bob.Handle) || !strings.Contains(quote, "Dinner on Friday at eight?") {
		t.Errorf("quote %q", quote)
	}
	if a11yEval[int](t, ctx, `document.querySelectorAll('#composer [data-testid="composer-reply"], #composer input[name="reply_to"]').length`) != 0 {
		t.Error("sending did not clear the reply")
	}
	axe("reply with its quote (JS)", false)
	shots("02-reply-with-quote", reply)

	// Clicking the quote scrolls bob's message into view and highlights it.
	// Scrolled to its top, an element can sit a fraction of a pixel above
	// the viewport (sub-pixel layout): within 1 px counts as in view.
	inView := `(sel) => { const r = document.querySelector(sel).getBoundingClientRect(); return r.top >= -1 && r.bottom <= innerHeight + 1; }`
	if a11yEval[bool](t, ctx, `(`+inView+`)(`+a11yQuote(parent)+`)`) {
		t.Fatal("the parent is already in view; the test proves nothing")
	}
	dmDo(t, ctx, "click-quote", chromedp.Click(css(reply+` [data-testid="reply-quote-link"]`)))
	dmWait(t, ctx, 5*time.Second, "the parent scrolled into view", inView, parent)
	if !a11yEval[bool](t, ctx, `window.__stayed === true && document.querySelector(`+a11yQuote(parent)+`).matches(":target")`) {
		t.Error("the quote reloaded the page or did not highlight the parent")
	}
	shots("03-quote-jumped-to-parent", parent)

	// Without JavaScript: ?reply= renders the composer replying; Send posts.
	a11yScripts(t, ctx, false)
	a11yGo(t, ctx, convoURL+"?reply="+parentID+"#composer")
	if got := a11yEval[string](t, ctx, `document.querySelector('#composer [data-testid="composer-reply"]').innerText`); !strings.Contains(got, "Dinner on Friday") {
		t.Errorf("no-JS composer %q", got)
	}
	axe("composer replying (no JS)", true)
	shots("04-nojs-composer-replying", "#composer")
	const second = "Also: shall we invite Carol?"
	dmDo(t, ctx, "nojs-send", chromedp.SendKeys(css(`[data-testid="draft"]`), second), chromedp.Click(css(`[data-testid="send"]`)),
		chromedp.WaitVisible(css(`[data-testid="latest"]`)))
	dmWait(t, ctx, 10*time.Second, "the no-JS reply with its quote", `(text) => [...document.querySelectorAll('#msgs li[data-own]')].some(li =>
		li.textContent.includes(text) && li.querySelector('[data-testid="reply-quote"]') && li.querySelector('[data-testid="reply-quote"]').textContent.includes("Dinner on Friday"))`, second)
	axe("reply with its quote (no JS)", true)
	shots("05-nojs-reply-with-quote", "#msgs li[data-own]:last-of-type")
	a11yScripts(t, ctx, true)

	if ours := watch.Entries(base); len(ours) > 0 {
		t.Errorf("console problems on our pages:\n%s", strings.Join(ours, "\n"))
	}
	if csp := watch.Entries("Content Security Policy"); len(csp) > 0 {
		t.Errorf("CSP violations:\n%s", strings.Join(csp, "\n"))
	}
}
