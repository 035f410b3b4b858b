package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/devchat"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// dmText is the text of a selection with runs of white space collapsed.
func dmText(s *goquery.Selection) string { return strings.Join(strings.Fields(s.Text()), " ") }

// dmFollowEachOther makes a and b follow each other.
func dmFollowEachOther(t testing.TB, n *sandbox.Network, a, b sandbox.Account) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sandbox.Follow(ctx, testenv.PasswordSession(t, n, a), b.DID); err != nil {
		t.Fatal(err)
	}
	if err := sandbox.Follow(ctx, testenv.PasswordSession(t, n, b), a.DID); err != nil {
		t.Fatal(err)
	}
}

// dmDeclare writes acct's chat declaration with allowIncoming allow.
func dmDeclare(t *testing.T, n *sandbox.Network, acct sandbox.Account, allow string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	decl := map[string]any{"$type": "chat.bsky.actor.declaration", "allowIncoming": allow}
	if err := sandbox.PutRecord(ctx, testenv.PasswordSession(t, n, acct), "chat.bsky.actor.declaration", "self", decl); err != nil {
		t.Fatal(err)
	}
}

// dmConvoWith starts (or finds) the conversation from → to through the
// chat service directly and returns its id.
func dmConvoWith(t *testing.T, n *sandbox.Network, from *atclient.APIClient, to sandbox.Account) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := chatproxy.New(from, n.ChatServiceRef).GetConvoForMembers(ctx, []string{to.DID})
	if err != nil {
		t.Fatal(err)
	}
	return c.Id
}

func dmInject(t *testing.T, n *sandbox.Network, f devchat.Fault) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.InjectFault(ctx, f); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.ClearFaults(ctx); err != nil {
			t.Errorf("clearing faults: %v", err)
		}
	})
}

func dmClearFaults(t *testing.T, n *sandbox.Network) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.ClearFaults(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestE2EDMUpstreamFaultsGiveReadablePages signs alice in through the
// sandbox PDS and makes devchat fail: a 503 or a hang on listConvos gives
// the inbox's readable 503 page with a "Try again" link (never a 500); a
// 429 on sendMessage keeps the draft and says when to retry; with the
// faults gone the same pages work.
func TestE2EDMUpstreamFaultsGiveReadablePages(t *testing.T) {
	n := testenv.Network(t)
	alice, bob := testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	dmFollowEachOther(t, n, alice, bob)
	convo := dmConvoWith(t, n, testenv.PasswordSession(t, n, alice), bob)
	base, _ := startRun(t, nil, sandboxEnv(t, n))
	b := newBrowserClient(t, base)
	signInHTTP(t, b, alice)

	for _, f := range []devchat.Fault{
		{Method: "chat.bsky.convo.listConvos", Status: http.StatusServiceUnavailable},
		{Method: "chat.bsky.convo.listConvos", Hang: true},
	} {
		dmInject(t, n, f)
		start := time.Now()
		res, doc := b.get(base + "/?unread=1")
		took := time.Since(start)
		dmClearFaults(t, n)
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("fault %+v: inbox answered %d, want 503", f, res.StatusCode)
		}
		if got := dmText(doc.Find(`[data-testid="error-message"]`)); !strings.Contains(got, "not answering") {
			t.Errorf("fault %+v: message %q", f, got)
		}
		if href, _ := doc.Find(`[data-testid="error-retry"]`).Attr("href"); href != "/?unread=1" {
			t.Errorf("fault %+v: retry link %q", f, href)
		}
		t.Logf("fault %+v: readable 503 after %s", f, took.Round(time.Millisecond))
	}
	if res, doc := b.get(base + "/"); res.StatusCode != http.StatusOK || doc.Find(`[data-testid="convo-list"]`).Length() != 1 {
		t.Fatalf("inbox after the faults: %d", res.StatusCode)
	}

	// 429 on send: the draft stays, with when to retry.
	_, page := b.get(base + "/convos/" + convo)
	token, _ := page.Find(`[data-testid="composer"] input[name="token"]`).Attr("value")
	dmInject(t, n, devchat.Fault{Method: "chat.bsky.convo.sendMessage", Status: http.StatusTooManyRequests, Count: 1, RetryAfter: 30 * time.Second})
	const draft = "Are we still on for Saturday?"
	res, doc := b.post("/convos/"+convo+"/messages", url.Values{"token": {token}, "text": {draft}})
	if res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("send under 429: %d", res.StatusCode)
	}
	if got := doc.Find(`[data-testid="draft"]`).Text(); got != draft {
		t.Errorf("draft %q, want it kept", got)
	}
	msg := dmText(doc.Find(`[data-testid="composer"] [data-testid="error"]`))
	// The reference PDS drops devchat's Retry-After from proxied errors, so
	// the page says about a minute; a PDS that forwards it gives the time.
	if !strings.Contains(msg, "try again in about a minute (at ") && !strings.Contains(msg, "try again in 30 seconds") && !strings.Contains(msg, "try again in 29 seconds") {
		t.Errorf("429 message %q does not say when to retry", msg)
	}
	t.Logf("429 on send: %q", msg)
	// The page's fresh form sends once the limit has passed (the fault was one call).
	token, _ = doc.Find(`[data-testid="composer"] input[name="token"]`).Attr("value")
	if loc := postRedirect(t, b, "/convos/"+convo+"/messages", url.Values{"token": {token}, "text": {draft}}); loc != "/convos/"+convo+"#latest" {
		t.Errorf("send redirected to %q", loc)
	}
	_, doc = b.get(base + "/convos/" + convo)
	if got := dmText(doc.Find(`[data-testid="message-text"]`).Last()); got != draft {
		t.Errorf("last message %q", got)
	}
}
