package handlers

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skydm/skydm/internal/testenv"
)

// browserWait polls the JavaScript condition js in the tab until it is
// true or 10 s pass.
func browserWait(t *testing.T, ctx context.Context, what, js string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%v)", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// browserShots saves the page at a desktop and a 390 px wide viewport and
// checks it with axe-core at both.
func browserShots(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	for _, w := range []int64{1100, 390} {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, 844), chromedp.Evaluate[chromedp.Void](`scrollTo(0, document.body.scrollHeight)`)); err != nil {
			t.Fatal(err)
		}
		testenv.Screenshot(t, ctx, name+"-"+map[int64]string{1100: "desktop", 390: "390"}[w])
		vs, err := testenv.Axe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			t.Errorf("%s at %d px: axe: %s", name, w, v)
		}
	}
}

// TestGroupConversationPagesInChromium shows a group conversation, the inbox with
// groups, and live group events applied by dm.js: a new member's system
// line, a live message continuing its sender's run, the rename, the lock
// closing the composer and the removal.
func TestGroupConversationPagesInChromium(t *testing.T) {
	hub, src := startHub(t)
	a := newGroupViewApp(t, func(d *DMs) { d.Hub = hub })
	a.group.weekendPlans(t, "unlocked")
	a.chat.addConvo("c1", profile(dmCarol, "carol.test", "Carol"), "accepted", 2, 1)
	// Avatars the page may load (CSP img-src 'self').
	a.group.mu.Lock()
	for _, p := range append(a.group.pages["g1"].RelatedProfiles, a.group.find("g1").Members...) {
		if p.Did == dmBob {
			p.Avatar = ptr(a.srv.URL + "/static/favicon.svg")
		}
	}
	a.group.mu.Unlock()
	// A group whose last message is someone else's, and an invitation.
	people := []any{jsonProfile(dmAlice, "alice.test", "Alice", "", "standard", dmBob), jsonProfile(dmBob, "bob.test", "Bob", "", "owner", ""),
		jsonProfile(dmCarol, "carol.test", "Carol", "", "standard", "")}
	last := jsonMessage("x1", dmBob, "see you at eight", a.chat.now.Add(-3*time.Minute))
	a.group.addGroup(t, jsonGroupConvo("g3", "Book club", "accepted", "locked", false, 7, people, last), []any{last}, people)
	added := jsonSystem("x2", "systemMessageDataAddMember", a.chat.now.Add(-2*time.Minute), map[string]any{"member": ref(dmAlice), "role": "standard", "addedBy": ref(dmBob)})
	a.group.addGroup(t, jsonGroupConvo("g4", "Secret club", "request", "unlocked", false, 2, people[:2], added), []any{added}, people[:2])

	ctx := testenv.Browser(t, testenv.BrowserOptions{})
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(a.srv.URL+"/oauth/callback?did="+dmAlice+"&handle=alice.test")); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(a.srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	browserWait(t, ctx, "the inbox", `!!document.querySelector('[data-id="g1"] [data-testid="group-avatar"]')`)
	browserShots(t, ctx, "group-inbox")
	if err := chromedp.Do(ctx, chromedp.Navigate(a.srv.URL+"/requests")); err != nil {
		t.Fatal(err)
	}
	browserWait(t, ctx, "the invitation", `!!document.querySelector('[data-id="g4"] [data-testid="group-invite"]')`)
	browserShots(t, ctx, "group-requests")

	if err := chromedp.Do(ctx, chromedp.Navigate(a.srv.URL+"/convos/g1")); err != nil {
		t.Fatal(err)
	}
	browserWait(t, ctx, "the group page", `!!document.querySelector('[data-testid="group-members-link"]')`)
	browserShots(t, ctx, "group-convo")
	waitFor(t, "the page's live stream", func() bool { return hub.Stats().Subscribers >= 1 })

	dave := map[string]any{"did": "did:plc:dave00000000000000000000", "handle": "dave.test", "displayName": "Dave"}
	event := func(typ, rev string, extra map[string]any) {
		e := map[string]any{"$type": "chat.bsky.convo.defs#" + typ, "rev": rev, "convoId": "g1"}
		for k, v := range extra {
			e[k] = v
		}
		src.push(logEntry(t, e))
	}
	now := a.chat.now
	event("logAddMember", "r21", map[string]any{"relatedProfiles": []any{dave},
		"message": jsonSystem("s21", "systemMessageDataAddMember", now, map[string]any{"member": ref(dave["did"].(string)), "role": "standard", "addedBy": ref(dmAlice)})})
	for i, id := range []string{"m21", "m22"} {
		event("logCreateMessage", "r2"+string(rune('2'+i)), map[string]any{"relatedProfiles": []any{dave},
			"message": jsonMessage(id, dave["did"].(string), "Hello from Dave "+id, now)})
	}
	browserWait(t, ctx, "the system line", `document.querySelector('#m-s21')?.textContent.includes('You added Dave')`)
	browserWait(t, ctx, "Dave's messages as one run", `(() => { const a = document.querySelector('#m-m21'), b = document.querySelector('#m-m22');
		return !!(a && b && a.querySelector('.msg-av') && !b.querySelector('.msg-av') && b.hasAttribute('data-cont')); })()`)
	event("logEditGroup", "r24", map[string]any{"message": jsonSystem("s24", "systemMessageDataEditGroup", now, map[string]any{"oldName": "Weekend plans", "newName": "Sunday brunch"})})
	browserWait(t, ctx, "the new name", `document.querySelector('[data-testid="convo-title"]').textContent === 'Sunday brunch' && document.title.includes('Sunday brunch')`)
	event("logLockConvo", "r25", map[string]any{"relatedProfiles": []any{jsonProfile(dmBob, "bob.test", "Bob", "", "", "")},
		"message": jsonSystem("s25", "systemMessageDataLockConvo", now, map[string]any{"lockedBy": ref(dmBob)})})
	browserWait(t, ctx, "the composer closed", `!document.querySelector('#composer') && document.querySelector('[data-testid="locked-text"]')?.textContent.startsWith('Bob locked this group')`)
	browserShots(t, ctx, "group-convo-locked-live")
	event("logLeaveConvo", "r26", nil)
	browserWait(t, ctx, "the removal", `document.querySelector('[data-testid="gone"]')?.textContent.includes('You were removed from this group')`)
	browserShots(t, ctx, "group-convo-removed-live")
}
