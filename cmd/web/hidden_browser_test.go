package main

import (
	"context"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/live"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// shownDeadline is how soon a message that arrived while a conversation's
// tab was hidden must be on the page once the tab is shown again.
const shownDeadline = time.Second

// hiddenGetLogs counts the chat.bsky.convo.getLog calls devchat has
// received.
func hiddenGetLogs(t *testing.T, n *sandbox.Network) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := n.Calls(ctx, "chat.bsky.convo.getLog")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hiddenCallsDuring watches getLog calls at devchat for d and returns how
// many came; with none set, the first call fails the test at once.
func hiddenCallsDuring(t *testing.T, n *sandbox.Network, d time.Duration, none bool, what string) int {
	t.Helper()
	start, end := hiddenGetLogs(t, n), time.Now().Add(d)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		got := hiddenGetLogs(t, n) - start
		if none && got > 0 {
			t.Fatalf("%s: %d getLog calls, want none", what, got)
		}
		if time.Now().After(end) {
			return got
		}
	}
	return 0
}

// hiddenStream is one /events request of the tab: its query and whether
// it has ended.
type hiddenStream struct {
	id     network.RequestID
	query  url.Values
	closed bool
}

func (s hiddenStream) hidden() bool { return s.query.Get("hidden") == "1" }

// hiddenStreams records the tab's /events requests from the browser's
// network events.
type hiddenStreams struct {
	mu sync.Mutex
	ss []hiddenStream
}

func hiddenWatchStreams(t *testing.T, ctx context.Context) *hiddenStreams {
	t.Helper()
	w := &hiddenStreams{}
	if err := chromedp.Listen(ctx, func(ev any) {
		w.mu.Lock()
		defer w.mu.Unlock()
		var id network.RequestID
		switch e := ev.(type) {
		case *network.EventResponseReceived:
			if u, err := url.Parse(e.Response.URL); err == nil && u.Path == "/events" && e.Response.Status == 200 {
				w.ss = append(w.ss, hiddenStream{id: e.RequestID, query: u.Query()})
			}
			return
		case *network.EventLoadingFailed:
			id = e.RequestID
		case *network.EventLoadingFinished:
			id = e.RequestID
		default:
			return
		}
		for i := range w.ss {
			if w.ss[i].id == id {
				w.ss[i].closed = true
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *hiddenStreams) list() []hiddenStream {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.ss)
}

// wait polls cond over the streams so far until it holds or timeout passes.
func (w *hiddenStreams) wait(timeout time.Duration, cond func([]hiddenStream) bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond(w.list()) {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// TestBrowserHiddenTabStopsPolling opens alice's conversation with bob in
// headless Chromium against the sandbox, with the real intervals (4 s
// visible conversation, 30 s inbox, 5 min background), and counts getLog
// calls at devchat (only alice's pages poll in this test):
//   - the inbox and the visible conversation poll at their rates;
//   - another tab brought to the front hides the conversation's tab: the
//     browser's own page lifecycle (document.visibilityState "hidden" and a
//     real visibilitychange event, as when a user switches tabs), not a
//     script pretending. From then on the page holds a hidden stream and,
//     after a short grace, no getLog is made for 20 s (the next is due 5 min
//     after the last one) while bob and carol write to alice;
//   - frozen (Page.setWebLifecycleState, as Chrome freezes background
//     tabs) the page holds no stream, and resumed it reopens its hidden one
//     with ?lastEventId= (the "position" the server told it);
//   - bringing the tab back opens a visible stream resuming by
//     ?lastEventId= and shows bob's message within a second, and the title
//     and nav count carol's unread message;
//   - with no page open the poller stops after its grace.
//
// Screenshots: artifacts/screenshots/issue11-hidden-*.png.
func TestBrowserHiddenTabStopsPolling(t *testing.T) {
	if live.DefaultBackgroundInterval < time.Minute {
		t.Fatalf("the background interval is %s: this test counts on minutes", live.DefaultBackgroundInterval)
	}
	n := testenv.Network(t)
	alice, bob, carol := testenv.NewAccount(t, n), testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	dmFollowEachOther(t, n, alice, bob)
	dmFollowEachOther(t, n, alice, carol)
	bobAPI, carolAPI := testenv.PasswordSession(t, n, bob), testenv.PasswordSession(t, n, carol)
	convo, other := dmConvoWith(t, n, bobAPI, alice), dmConvoWith(t, n, carolAPI, alice)
	bobChat, carolChat := chatproxy.New(bobAPI, n.ChatServiceRef), chatproxy.New(carolAPI, n.ChatServiceRef)
	aliceChat := chatproxy.New(testenv.PasswordSession(t, n, alice), n.ChatServiceRef)
	setup, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	send := func(c *chatproxy.Client, convo, text string) string {
		t.Helper()
		m, err := c.SendMessage(setup, convo, chatproxy.MessageInput{Text: text})
		if err != nil {
			t.Fatal(err)
		}
		return m.Id
	}
	for _, x := range []struct {
		c     *chatproxy.Client
		convo string
	}{{bobChat, convo}, {carolChat, other}} {
		send(x.c, x.convo, "Hello Alice")
		if _, err := aliceChat.AcceptConvo(setup, x.convo); err != nil {
			t.Fatal(err)
		}
		if _, err := aliceChat.UpdateRead(setup, x.convo, ""); err != nil {
			t.Fatal(err)
		}
	}

	base, _ := startRun(t, nil, sandboxEnv(t, n))
	ctx, cancelCtx := context.WithTimeout(testenv.Browser(t, testenv.BrowserOptions{}), 4*time.Minute)
	defer cancelCtx()
	shot := func(name string) { testenv.Screenshot(t, ctx, "issue11-hidden-"+name) }
	console, err := testenv.WatchLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	streams := hiddenWatchStreams(t, ctx)
	browserSignIn(t, ctx, base, n.PDSURL, alice, nil)

	// The inbox, then the conversation, visible.
	dmDo(t, ctx, "inbox", chromedp.WaitVisible(chromedp.CSS(`[data-testid="convo-row"][data-id="`+convo+`"]`)))
	inboxCalls := hiddenCallsDuring(t, n, 30*time.Second, false, "inbox")
	dmDo(t, ctx, "conversation", chromedp.Navigate(base+"/convos/"+convo), chromedp.WaitVisible(chromedp.CSS(`[data-testid="composer"]`)))
	convoCalls := hiddenCallsDuring(t, n, 20*time.Second, false, "visible conversation")
	if convoCalls < 2 {
		t.Fatalf("a visible conversation made %d getLog calls in 20 s; the test needs its poller running", convoCalls)
	}

	// Another tab comes to the front: the conversation's tab is hidden.
	atHide := hiddenGetLogs(t, n)
	front, err := chromedp.CallBrowser(ctx, target.CreateTarget, target.CreateTargetParams{URL: "about:blank"})
	if err != nil {
		t.Fatal(err)
	}
	frontCtx, cancelFront := chromedp.NewContext(ctx, chromedp.WithTargetID(front.TargetID))
	defer cancelFront()
	if err := chromedp.Do(frontCtx); err != nil {
		t.Fatal(err)
	}
	dmWait(t, ctx, 10*time.Second, "the conversation's tab hidden", `() => document.visibilityState === 'hidden'`)
	if !streams.wait(10*time.Second, func(ss []hiddenStream) bool {
		return len(ss) >= 2 && ss[len(ss)-1].hidden() && ss[len(ss)-2].closed
	}) {
		t.Errorf("the hidden page did not swap its stream for a hidden one: %+v", streams.list()) // the counts below say what that costs
	}
	hiddenCallsDuring(t, n, 2*time.Second, false, "grace") // a call already on its way may land
	hiddenCallsDuring(t, n, 10*time.Second, true, "first 10 s hidden")
	bobMsg := send(bobChat, convo, "Are you there?")
	send(carolChat, other, "Ping from Carol")
	hiddenCallsDuring(t, n, 10*time.Second, true, "next 10 s hidden, with new messages")
	hiddenTotal := hiddenGetLogs(t, n) - atHide
	if hiddenTotal > 1 {
		t.Fatalf("%d getLog calls from hiding the tab to 22 s later, want at most 1", hiddenTotal)
	}
	if on, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.getElementById('m-`+bobMsg+`')`)); err != nil || on {
		t.Fatalf("bob's message is on the hidden page (%v, %v): it was polled for", on, err)
	}

	// Frozen (as Chrome freezes background tabs), the page holds no stream;
	// resumed, it opens a hidden one again where it left off: no event came
	// while hidden, so its position is the one the server told it.
	n0 := len(streams.list())
	if _, err := chromedp.Call(ctx, page.SetWebLifecycleState, page.SetWebLifecycleStateParams{State: page.SetWebLifecycleStateStateFrozen}); err != nil {
		t.Fatal(err)
	}
	if !streams.wait(10*time.Second, func(ss []hiddenStream) bool { return len(ss) == n0 && ss[n0-1].closed }) {
		t.Fatalf("a frozen page kept its stream: %+v", streams.list())
	}
	if _, err := chromedp.Call(ctx, page.SetWebLifecycleState, page.SetWebLifecycleStateParams{State: page.SetWebLifecycleStateStateActive}); err != nil {
		t.Fatal(err)
	}
	if !streams.wait(10*time.Second, func(ss []hiddenStream) bool {
		return len(ss) == n0+1 && ss[n0].hidden() && ss[n0].query.Get("lastEventId") != ""
	}) {
		t.Fatalf("a resumed hidden page did not reopen a hidden stream with its last event id: %+v", streams.list())
	}

	// The conversation's tab comes back to the front.
	me := chromedp.FromContext(ctx).Target.TargetID
	shown := time.Now()
	if _, err := chromedp.CallBrowser(ctx, target.ActivateTarget, target.ActivateTargetParams{TargetID: me}); err != nil {
		t.Fatal(err)
	}
	dmWait(t, ctx, shownDeadline, "bob's message within a second of the tab being shown",
		`(id) => document.visibilityState === 'visible' && !!document.getElementById('m-' + id)`, bobMsg)
	t.Logf("bob's message was on the page %s after the tab was shown", time.Since(shown).Round(time.Millisecond))
	if ss := streams.list(); ss[len(ss)-1].hidden() || ss[len(ss)-1].query.Get("lastEventId") == "" {
		t.Errorf("the page shown again opened %+v, want a visible stream resuming by lastEventId", ss[len(ss)-1])
	}
	dmWait(t, ctx, 15*time.Second, "the title and nav counting carol's unread message",
		`() => document.title.startsWith('(1) ') && document.querySelector('[data-testid="nav-unread"]')?.textContent === '1'`)
	for _, w := range []struct {
		width, height int64
		name          string
	}{{1100, 900, "1100px-back"}, {390, 844, "390px-back"}} {
		dmDo(t, ctx, w.name, chromedp.EmulateViewport(w.width, w.height))
		shot(w.name)
	}
	vs, err := testenv.Axe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Errorf("conversation shown again: %s", v)
	}
	if bad := console.Entries("Content Security Policy", "exception"); len(bad) > 0 {
		t.Errorf("console: %q", bad)
	}

	// No page open: the poller stops after its grace.
	cancelFront()
	dmDo(t, ctx, "leave", chromedp.Navigate("about:blank"))
	hiddenCallsDuring(t, n, live.DefaultGrace+2*time.Second, false, "grace after the last page")
	hiddenCallsDuring(t, n, 20*time.Second, true, "no page open")

	t.Logf("getLog calls per minute at devchat: inbox %.1f (30 s), visible conversation %.1f (20 s), hidden 0 in 20 s after a 2 s grace (%d from hiding to 22 s), no page 0 (20 s)",
		float64(inboxCalls)*2, float64(convoCalls)*3, hiddenTotal)
}
