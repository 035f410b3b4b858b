package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// repliesPair makes alice and bob, who follow each other, and bob's
// conversation with alice: it returns bob's session and the convo's id.
func repliesPair(t *testing.T) (n *sandbox.Network, alice, bob sandbox.Account, bobAPI *atclient.APIClient, convo string) {
	t.Helper()
	n = testenv.Network(t)
	alice, bob = testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	dmFollowEachOther(t, n, alice, bob)
	bobAPI = testenv.PasswordSession(t, n, bob)
	return n, alice, bob, bobAPI, dmConvoWith(t, n, bobAPI, alice)
}

// TestE2EReplies replies without JavaScript against the sandbox: alice
// opens Reply on bob's message (?reply=), the composer says what it replies
// to, sending stores a reply (bob reads replyTo from the chat service) and
// the page shows the quote linked to the parent. A reply to a message id
// that does not exist is refused with a clear message, the draft kept and
// nothing sent. A quote of a parent further back than the page opens the
// conversation at it (?at=), paging back.
//
// It needs devchat's replyTo support (stored, returned, ReplyTargetNotFound).
func TestE2EReplies(t *testing.T) {
	n, alice, bob, bobAPI, convo := repliesPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bobChat := chatproxy.New(bobAPI, n.ChatServiceRef)
	parent, err := bobChat.SendMessage(ctx, convo, chatproxy.MessageInput{Text: "Dinner on Friday at eight?"})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := startRun(t, nil, sandboxEnv(t, n))
	b := newBrowserClient(t, base)
	signInHTTP(t, b, alice)

	_, doc := b.get(base + "/convos/" + convo + "?sel=" + url.QueryEscape(parent.Id))
	href, _ := doc.Find(`#m-` + parent.Id + ` [data-testid="reply"]`).Attr("href")
	if href != "/convos/"+convo+"?reply="+parent.Id+"#composer" {
		t.Fatalf("Reply action %q", href)
	}
	_, doc = b.get(base + href)
	if got := dmText(doc.Find(`[data-testid="composer-reply"]`)); !strings.HasPrefix(got, "Replying to "+bob.Handle+": Dinner on Friday at eight?") {
		t.Fatalf("composer says %q", got)
	}
	form := doc.Find(`[data-testid="composer"]`)
	token, _ := form.Find(`input[name="token"]`).Attr("value")
	replyTo, _ := form.Find(`input[name="reply_to"]`).Attr("value")
	if loc := postRedirect(t, b, "/convos/"+convo+"/messages", url.Values{"token": {token}, "text": {"Yes, eight works"}, "reply_to": {replyTo}}); loc != "/convos/"+convo+"#latest" {
		t.Fatalf("send went to %q", loc)
	}
	page, err := bobChat.GetMessages(ctx, convo, "", 5)
	if err != nil {
		t.Fatal(err)
	}
	reply := page.Messages[0].Message
	if reply == nil || reply.Text != "Yes, eight works" || reply.ReplyTo == nil || reply.ReplyTo.ConvoDefs_MessageView == nil || reply.ReplyTo.ConvoDefs_MessageView.Id != parent.Id {
		t.Fatalf("bob reads %+v, want a reply to %s", page.Messages[0], parent.Id)
	}
	_, doc = b.get(base + "/convos/" + convo)
	q := doc.Find(`#m-` + reply.Id + ` [data-testid="reply-quote"]`)
	if got := dmText(q); got != "In reply to "+bob.Handle+" Dinner on Friday at eight?" {
		t.Errorf("quote %q", got)
	}
	if h, _ := q.Find("a").Attr("href"); h != "#m-"+parent.Id {
		t.Errorf("quote links to %q", h)
	}

	// The bad input: a reply to a message id that does not exist.
	token, _ = doc.Find(`[data-testid="composer"] input[name="token"]`).Attr("value")
	const draft = "Replying to nothing"
	res, doc := b.post("/convos/"+convo+"/messages", url.Values{"token": {token}, "text": {draft}, "reply_to": {"3lzzzzzzzzzzz"}})
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("reply to a missing message: %d", res.StatusCode)
	}
	if got := dmText(doc.Find(`[data-testid="composer"] [data-testid="error"]`)); got != "The message you replied to is no longer there." {
		t.Errorf("error %q", got)
	}
	if got := doc.Find(`[data-testid="draft"]`).Text(); got != draft {
		t.Errorf("draft %q, want it kept", got)
	}
	if after, err := bobChat.GetMessages(ctx, convo, "", 5); err != nil || after.Messages[0].ID != reply.Id {
		t.Fatalf("something was sent: newest %+v (%v)", after.Messages[0], err)
	}

	// 55 messages later the parent is on the second page: the quote of a
	// new reply opens the conversation at it.
	for i := range 55 {
		if _, err := bobChat.SendMessage(ctx, convo, chatproxy.MessageInput{Text: fmt.Sprintf("filler %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	late, err := bobChat.SendMessage(ctx, convo, chatproxy.MessageInput{Text: "About Friday again", ReplyTo: parent.Id})
	if err != nil {
		t.Fatal(err)
	}
	_, doc = b.get(base + "/convos/" + convo)
	at, _ := doc.Find(`#m-` + late.Id + ` [data-testid="reply-quote"] a`).Attr("href")
	if at != "/convos/"+convo+"?at="+parent.Id+"#m-"+parent.Id {
		t.Fatalf("quote of a parent further back links to %q", at)
	}
	_, doc = b.get(base + strings.TrimSuffix(at, "#m-"+parent.Id))
	if doc.Find(`#m-`+parent.Id).Length() != 1 || doc.Find(`[data-testid="load-latest"]`).Length() != 1 {
		t.Fatalf("?at= did not open the conversation at the parent: %q", dmText(doc.Find("main")))
	}
}
