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

// groupTab is one person's browser in the three-browser group test.
type groupTab struct {
	name string
	ctx  context.Context
	acct sandbox.Account
}

// shot saves the tab at desktop width (1100) and at 390 px as
// artifacts/screenshots/issue10-<step>-<name>-{1100,390}.png, runs
// axe-core at both widths, and restores the desktop width.
func (g groupTab) shot(t *testing.T, step string) {
	t.Helper()
	for _, w := range []int64{390, 1100} {
		a11yViewport(t, g.ctx, w)
		testenv.Screenshot(t, g.ctx, fmt.Sprintf("issue10-%s-%s-%d", step, g.name, w))
		vs, err := testenv.Axe(g.ctx)
		if err != nil {
			t.Errorf("axe on %s's page at %d px (%s): %v", g.name, w, step, err)
		}
		for _, v := range vs {
			t.Errorf("axe on %s's page at %d px (%s): %s", g.name, w, step, v)
		}
	}
}

// groupDeclare writes acct's chat declaration with allowGroupInvites.
func groupDeclare(t *testing.T, n *sandbox.Network, acct sandbox.Account, groupInvites string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	decl := map[string]any{"$type": "chat.bsky.actor.declaration", "allowIncoming": "following", "allowGroupInvites": groupInvites}
	if err := sandbox.PutRecord(ctx, testenv.PasswordSession(t, n, acct), "chat.bsky.actor.declaration", "self", decl); err != nil {
		t.Fatal(err)
	}
}

// groupSend types text into the open conversation's composer, presses
// Enter and returns the id the server gave the message.
func groupSend(t *testing.T, g groupTab, text string) string {
	t.Helper()
	return dmSendWithEnter(t, g.ctx, text)
}

// groupSees waits until message id is on g's open page without a reload.
func groupSees(t *testing.T, g groupTab, id, what string) {
	t.Helper()
	if _, err := dmPoll(g.ctx, liveDeadline, `(id) => document.getElementById('m-' + id)`, id); err != nil {
		testenv.Screenshot(t, g.ctx, "issue10-99-"+g.name+"-missing")
		t.Fatalf("%s did not see %s live within %s: %v", g.name, what, liveDeadline, err)
	}
}

// TestBrowserGroupConversationThreePeople drives three headless Chromiums
// (alice, bob, carol) through a group's life against the sandbox:
//   - alice creates "Weekend plans" with bob and carol; carol only allows
//     group invitations from people she follows (she follows nobody), so she
//     is refused with the reason before anything is created;
//   - alice creates the group with bob; bob accepts it from Requests;
//   - alice makes a join link that needs approval; carol opens it and asks
//     to join; alice approves;
//   - all three see each other's messages live;
//   - bob replies to alice's message; alice clicks the quote and lands on
//     the parent;
//   - alice removes carol, whose open page says so live;
//   - alice locks the group; bob's composer is replaced by why;
//   - bob reports a message (devchat records it) and blocks carol (a block
//     record in bob's repository).
//
// Every step is screenshotted at 1100 and 390 px and checked with axe-core.
func TestBrowserGroupConversationThreePeople(t *testing.T) {
	n := testenv.Network(t)
	alice, bob, carol := testenv.NewAccount(t, n), testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	dmFollowEachOther(t, n, alice, bob)
	groupDeclare(t, n, carol, "following")
	base, logs := startRun(t, nil, sandboxEnv(t, n))
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	tab := func(name string, acct sandbox.Account) groupTab {
		ctx, cancel := context.WithTimeout(testenv.Browser(t, testenv.BrowserOptions{}), 8*time.Minute)
		t.Cleanup(cancel)
		return groupTab{name: name, ctx: ctx, acct: acct}
	}
	a, b, c := tab("alice", alice), tab("bob", bob), tab("carol", carol)
	for _, g := range []groupTab{a, b, c} {
		browserSignIn(t, g.ctx, base, n.PDSURL, g.acct, nil)
	}

	// 1. alice asks for bob and carol: carol is refused, with her reason,
	// and nothing is created.
	dmDo(t, a.ctx, "alice-new-group",
		chromedp.Navigate(base+"/"),
		chromedp.Click(css(`[data-testid="new-group"]`)),
		chromedp.WaitVisible(css(`[data-testid="group-name"]`)),
		chromedp.SendKeys(css(`[data-testid="group-name"]`), "Weekend plans"),
		chromedp.SendKeys(css(`[data-testid="members"]`), bob.Handle+"\n"+carol.Handle),
		chromedp.Click(css(`[data-testid="create-group"]`)),
		chromedp.WaitVisible(css(`[data-testid="refused-member"]`)),
	)
	refused, err := chromedp.Run(a.ctx, chromedp.Evaluate[string](`[...document.querySelectorAll('[data-testid="refused-member"]')].map(e => e.textContent).join(" | ")`))
	if err != nil || !strings.Contains(refused, carol.Handle) || strings.Contains(refused, bob.Handle) ||
		!strings.Contains(refused, "follow") {
		t.Fatalf("refused members %q (%v), want only carol, with the follow reason", refused, err)
	}
	if kept, _ := chromedp.Run(a.ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="group-name"]').value`)); kept != "Weekend plans" {
		t.Errorf("the name was not kept: %q", kept)
	}
	a.shot(t, "01-refused-before-creating")
	aliceChat := chatproxy.New(testenv.PasswordSession(t, n, alice), n.ChatServiceRef)
	listCtx, cancelList := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancelList()
	if page, err := aliceChat.ListConvos(listCtx, chatproxy.ListConvosParams{}); err != nil || len(page.Convos) != 0 {
		t.Fatalf("after the refusal alice has %d conversations (%v), want none", len(page.Convos), err)
	}

	// 2. alice creates the group with bob only.
	dmDo(t, a.ctx, "alice-create-with-bob",
		chromedp.SetValue(css(`[data-testid="members"]`), bob.Handle),
		chromedp.Click(css(`[data-testid="create-group"]`)),
		chromedp.WaitVisible(css(`[data-testid="composer"]`)),
	)
	convoID, err := chromedp.Run(a.ctx, chromedp.Evaluate[string](`decodeURIComponent(location.pathname.slice("/convos/".length))`))
	if err != nil || convoID == "" || strings.Contains(convoID, "/") {
		t.Fatalf("alice is at %q (%v), want the new group's page", convoID, err)
	}
	convoURL := base + "/convos/" + convoID
	if title, _ := testenv.WaitText(a.ctx, `[data-testid="convo-title"]`, 5*time.Second); !strings.Contains(title, "Weekend plans") {
		t.Errorf("group page title %q", title)
	}
	a.shot(t, "02-group-created")

	// 3. bob finds the invitation in Requests and accepts it.
	dmDo(t, b.ctx, "bob-requests",
		chromedp.Navigate(base+"/requests"),
		chromedp.WaitVisible(css(`[data-testid="convo-row"][data-id="`+convoID+`"]`)),
	)
	b.shot(t, "03-bob-requests")
	dmDo(t, b.ctx, "bob-accept",
		chromedp.Click(css(`[data-testid="convo-row"][data-id="`+convoID+`"] a`)),
		chromedp.WaitVisible(css(`[data-testid="accept"]`)),
		chromedp.Click(css(`[data-testid="accept"]`)),
		chromedp.WaitVisible(css(`[data-testid="composer"]`)),
	)
	b.shot(t, "04-bob-accepted")

	// 4. alice makes a join link that needs her approval.
	dmDo(t, a.ctx, "alice-join-link",
		chromedp.Navigate(convoURL+"/link"),
		chromedp.WaitVisible(css(`[data-testid="join-link-create-form"]`)),
		chromedp.Click(css(`[data-testid="who-anyone:approval"]`)),
		chromedp.Click(css(`[data-testid="join-link-create"]`)),
		chromedp.WaitVisible(css(`[data-testid="join-link-url"]`)),
	)
	joinURL, err := chromedp.Run(a.ctx, chromedp.Evaluate[string](`document.querySelector('[data-testid="join-link-url"]').value`))
	if err != nil || !strings.HasPrefix(joinURL, base+"/join/") {
		t.Fatalf("join link %q (%v)", joinURL, err)
	}
	a.shot(t, "05-join-link")

	// 5. carol opens the link and asks to join.
	dmDo(t, c.ctx, "carol-join-preview",
		chromedp.Navigate(joinURL),
		chromedp.WaitVisible(css(`[data-testid="join-preview"]`)),
	)
	c.shot(t, "06-carol-join-preview")
	dmDo(t, c.ctx, "carol-ask",
		chromedp.Click(css(`[data-testid="join-submit"]`)),
		chromedp.WaitVisible(css(`[data-testid="join-pending"]`)),
	)
	c.shot(t, "07-carol-pending")

	// 6. alice approves her.
	dmDo(t, a.ctx, "alice-approve",
		chromedp.Navigate(convoURL+"/join-requests"),
		chromedp.WaitVisible(css(`[data-testid="join-request"] [data-testid="approve"]`)),
	)
	a.shot(t, "08-join-requests")
	dmDo(t, a.ctx, "alice-approved",
		chromedp.Click(css(`[data-testid="join-request"] [data-testid="approve"]`)),
		chromedp.WaitNotPresent(css(`[data-testid="join-request"]`)),
	)

	// 7. All three on the group's page: each one's message reaches the
	// others live.
	for _, g := range []groupTab{a, b, c} {
		dmDo(t, g.ctx, g.name+"-open-group", chromedp.Navigate(convoURL), chromedp.WaitVisible(css(`[data-testid="composer"]`)))
	}
	c.shot(t, "09-carol-joined")
	const hello = "Who's bringing snacks on Saturday?"
	helloID := groupSend(t, a, hello)
	groupSees(t, b, helloID, "alice's message")
	groupSees(t, c, helloID, "alice's message")
	bobID := groupSend(t, b, "I'll bring crisps")
	groupSees(t, a, bobID, "bob's message")
	groupSees(t, c, bobID, "bob's message")
	carolID := groupSend(t, c, "Fruit from me!")
	groupSees(t, a, carolID, "carol's message")
	groupSees(t, b, carolID, "carol's message")
	if names, _ := chromedp.Run(a.ctx, chromedp.Evaluate[string](`document.getElementById('m-`+carolID+`').textContent`)); !strings.Contains(names, "Fruit from me!") {
		t.Errorf("carol's message on alice's page: %q", names)
	}
	for _, g := range []groupTab{a, b, c} {
		g.shot(t, "10-live")
	}

	// 8. bob replies to alice's message; alice clicks the quote and lands
	// on the parent.
	dmDo(t, b.ctx, "bob-reply",
		chromedp.Click(css(`#m-`+helloID+` [data-testid="more"]`)),
		chromedp.WaitVisible(css(`#m-`+helloID+` [data-testid="reply"]`)),
		chromedp.Click(css(`#m-`+helloID+` [data-testid="reply"]`)),
		chromedp.WaitVisible(css(`[data-testid="composer-reply"]`)),
	)
	b.shot(t, "11-bob-replying")
	replyID := groupSend(t, b, "Me! And drinks.")
	groupSees(t, a, replyID, "bob's reply")
	dmWait(t, a.ctx, 10*time.Second, "the quote on bob's reply", `(id) => document.querySelector('#m-' + id + ' [data-testid="reply-quote-link"]')`, replyID)
	if _, err := chromedp.Run(a.ctx, chromedp.Evaluate[bool](`window.scrollTo(0, document.body.scrollHeight), true`)); err != nil {
		t.Fatal(err)
	}
	dmDo(t, a.ctx, "alice-clicks-quote", chromedp.Click(css(`#m-`+replyID+` [data-testid="reply-quote-link"]`)))
	dmWait(t, a.ctx, 5*time.Second, "alice's page at the parent", `(id) => {
		const el = document.getElementById('m-' + id), r = el && el.getBoundingClientRect();
		return location.hash === '#m-' + id && r && r.bottom > 0 && r.top < innerHeight;
	}`, helloID)
	a.shot(t, "12-alice-jumped-to-parent")

	// 9. alice removes carol; carol's open page says so.
	dmDo(t, a.ctx, "alice-remove-carol",
		chromedp.Navigate(convoURL+"/members?remove="+url.QueryEscape(carol.DID)+"#confirm-remove"),
		chromedp.WaitVisible(css(`[data-testid="confirm-remove-button"]`)),
	)
	a.shot(t, "13-confirm-remove")
	dmDo(t, a.ctx, "alice-removed-carol", chromedp.Click(css(`[data-testid="confirm-remove-button"]`)))
	dmWait(t, a.ctx, 10*time.Second, "the members list without carol", `(h) => {
		const l = document.querySelector('[data-testid="members-list"]');
		return !document.querySelector('[data-testid="confirm-remove"]') && l && !l.textContent.includes(h);
	}`, carol.Handle)
	if _, err := dmPoll(c.ctx, liveDeadline, `() => document.querySelector('[data-testid="gone"]')`); err != nil {
		t.Fatalf("carol's open page did not say she was removed: %v\n%s", err, logs.String())
	}
	c.shot(t, "14-carol-removed")

	// 10. alice locks the group; bob's open composer is replaced by why.
	dmDo(t, a.ctx, "alice-lock",
		chromedp.Navigate(convoURL+"/members"),
		chromedp.WaitVisible(css(`[data-testid="lock"]`)),
		chromedp.Click(css(`[data-testid="lock"]`)),
		chromedp.WaitVisible(css(`[data-testid="unlock"]`)),
	)
	a.shot(t, "15-alice-locked")
	if _, err := dmPoll(b.ctx, liveDeadline, `() => document.querySelector('[data-testid="composer-locked"]')`); err != nil {
		t.Fatalf("bob's composer was not closed live: %v", err)
	}
	if why, _ := testenv.WaitText(b.ctx, `[data-testid="locked-text"]`, 5*time.Second); !strings.Contains(strings.ToLower(why), "locked") {
		t.Errorf("bob's locked composer says %q", why)
	}
	b.shot(t, "16-bob-locked")

	groupReportAndBlock(t, n, b, convoURL, helloID, carolID, alice, carol)
}

// groupReportAndBlock: bob reports alice's message from its actions (the
// report reaches devchat's moderation service through bob's PDS), then
// blocks carol from her message (an app.bsky.graph.block record in his
// repository).
func groupReportAndBlock(t *testing.T, n *sandbox.Network, b groupTab, convoURL, helloID, carolID string, alice, carol sandbox.Account) {
	t.Helper()
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	before := len(n.Chat.Reports())
	dmDo(t, b.ctx, "bob-report-form",
		chromedp.Click(css(`#m-`+helloID+` [data-testid="more"]`)),
		chromedp.WaitVisible(css(`#m-`+helloID+` [data-testid="report"]`)),
		chromedp.Click(css(`#m-`+helloID+` [data-testid="report"]`)),
		chromedp.WaitVisible(css(`[data-testid="report-form"]`)),
		chromedp.Click(css(`[data-testid="reason"][value="`+chatproxy.ReasonTypeSpam+`"]`)),
		chromedp.SendKeys(css(`[data-testid="details"]`), "Testing reports from a group"),
	)
	b.shot(t, "17-bob-report")
	dmDo(t, b.ctx, "bob-report-sent",
		chromedp.Click(css(`[data-testid="send-report"]`)),
		chromedp.WaitVisible(css(`[data-testid="notice"]`)),
	)
	b.shot(t, "18-bob-report-sent")
	reports := n.Chat.Reports()
	if len(reports) != before+1 {
		t.Fatalf("devchat has %d reports, want %d", len(reports), before+1)
	}
	r := reports[len(reports)-1]
	if r.ReportedBy.String() != b.acct.DID || r.ReasonType != chatproxy.ReasonTypeSpam ||
		!strings.Contains(string(r.Subject), helloID) || !strings.Contains(string(r.Subject), alice.DID) ||
		!strings.Contains(string(r.Subject), "chat.bsky.convo.defs#messageRef") {
		t.Errorf("report %+v subject %s: want bob's spam report of alice's message %s", r, r.Subject, helloID)
	}

	dmDo(t, b.ctx, "bob-block-carol",
		chromedp.Navigate(convoURL),
		chromedp.WaitVisible(css(`#m-`+carolID+` [data-testid="more"]`)),
		chromedp.Click(css(`#m-`+carolID+` [data-testid="more"]`)),
		chromedp.WaitVisible(css(`#m-`+carolID+` [data-testid="message-block"]`)),
	)
	b.shot(t, "19-bob-block-carol")
	dmDo(t, b.ctx, "bob-blocked-carol",
		chromedp.Click(css(`#m-`+carolID+` [data-testid="message-block"]`)),
		chromedp.WaitVisible(css(`[data-testid="notice"]`)),
	)
	b.shot(t, "20-bob-blocked-carol")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out struct {
		Records []struct {
			Value struct {
				Subject string `json:"subject"`
			} `json:"value"`
		} `json:"records"`
	}
	api := testenv.PasswordSession(t, n, b.acct)
	if err := api.Get(ctx, "com.atproto.repo.listRecords", map[string]any{"repo": b.acct.DID, "collection": "app.bsky.graph.block"}, &out); err != nil {
		t.Fatal(err)
	}
	blocks := 0
	for _, rec := range out.Records {
		if rec.Value.Subject == carol.DID {
			blocks++
		}
	}
	if blocks != 1 {
		t.Fatalf("bob's repository has %d blocks of carol, want 1 (%+v)", blocks, out.Records)
	}
}
