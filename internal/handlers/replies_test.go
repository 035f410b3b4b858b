package handlers

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/handlers/dm"
	"github.com/skydm/skydm/internal/lex/chat"
)

// sentInputs returns what SendMessage was given, in order.
func (f *fakeChat) sentInputs() []chatproxy.MessageInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]chatproxy.MessageInput(nil), f.sent...)
}

// Without JavaScript: More → Reply opens the composer replying to the
// message; sending posts reply_to, and the reply shows its quote, linked
// to the parent on the page.
func TestReplyWithoutJavaScript(t *testing.T) {
	a := newReplyApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 3, 0)
	parent := "c1-m002" // bob's, the newest

	res := a.get("/convos/c1?sel=" + parent)
	reply := res.doc.Find(`li#m-` + parent + ` [data-testid="reply"]`)
	if href := reply.AttrOr("href", ""); href != "/convos/c1?reply="+parent+"#composer" {
		t.Fatalf("Reply action href %q", href)
	}
	res = a.get("/convos/c1?reply=" + parent)
	box := testid(res.doc, "composer-reply")
	if got := text(box); !strings.HasPrefix(got, "Replying to Bob: Message 2 of c1") {
		t.Fatalf("composer says %q", got)
	}
	if box.Find(`[data-testid="cancel-reply"]`).AttrOr("href", "") != "/convos/c1#latest" {
		t.Error("no Cancel link back to the plain composer")
	}
	form := testid(res.doc, "composer")
	rt := form.Find(`input[type="hidden"][name="reply_to"]`).AttrOr("value", "")
	tok := form.Find(`input[name="token"]`).AttrOr("value", "")
	if rt != parent {
		t.Fatalf("reply_to %q", rt)
	}

	res = a.post("/convos/c1/messages", url.Values{"token": {tok}, "text": {"yes, that one"}, "reply_to": {rt}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/convos/c1#latest" {
		t.Fatalf("send: %d %q", res.status, res.header.Get("Location"))
	}
	if sent := a.chat.sentInputs(); len(sent) != 1 || sent[0].ReplyTo != parent {
		t.Fatalf("sent %+v, want a reply to %s", sent, parent)
	}
	page := a.get("/convos/c1")
	q := page.doc.Find(`li#m-sent001 [data-testid="reply-quote"]`)
	if got := text(q); got != "In reply to Bob Message 2 of c1" {
		t.Errorf("quote %q", got)
	}
	if href := q.Find("a").AttrOr("href", ""); href != "#m-"+parent {
		t.Errorf("quote links to %q, want the parent on the page", href)
	}
	if testid(page.doc, "composer-reply").Length() != 0 {
		t.Error("the composer still replies after sending")
	}
}

// The bad input: a reply to a message id that does not exist is
// refused with a clear message, nothing is sent, the draft is kept.
func TestReplyToAMessageThatDoesNotExist(t *testing.T) {
	a := newReplyApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 3, 0)

	res := a.get("/convos/c1?reply=nosuchmessage")
	if !strings.Contains(text(testid(res.doc, "composer-reply-missing")), "not there any more") ||
		res.doc.Find(`input[name="reply_to"]`).Length() != 0 {
		t.Fatalf("composer for a missing target: %q", text(testid(res.doc, "composer")))
	}

	const draft = "my answer <b>kept</b>"
	for _, target := range []string{"nosuchmessage", "bad id/<x>"} {
		t.Run(target, func(t *testing.T) {
			calls := a.chat.count("SendMessage")
			res := a.post("/convos/c1/messages", url.Values{"token": {a.token("c1")}, "text": {draft}, "reply_to": {target}})
			if res.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", res.status)
			}
			if got := text(res.doc.Find(`[data-testid="composer"] [data-testid="error"]`)); got != "The message you replied to is no longer there." {
				t.Errorf("error %q", got)
			}
			if got := testid(res.doc, "draft").Text(); got != draft {
				t.Errorf("draft %q, want it kept", got)
			}
			if res.doc.Find(`input[name="reply_to"]`).Length() != 0 {
				t.Error("the form still replies to the missing message")
			}
			if len(a.chat.sentInputs()) != 0 {
				t.Fatal("something was sent")
			}
			if target == "bad id/<x>" && a.chat.count("SendMessage") != calls {
				t.Error("a malformed id reached the chat service")
			}
			j := a.postJSON("/convos/c1/messages", url.Values{"token": {a.token("c1")}, "text": {draft}, "reply_to": {target}})
			var r dm.SendReply
			if err := json.Unmarshal([]byte(j.body), &r); err != nil || r.Error != "The message you replied to is no longer there." || r.Draft != draft || r.ReplyTo != "" || r.Token == "" {
				t.Errorf("JSON %d %q", j.status, j.body)
			}
		})
	}
}

// A send that fails for another reason keeps the reply with the draft.
func TestFailedReplyStaysAReply(t *testing.T) {
	a := newReplyApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 3, 0)
	a.chat.setFail("SendMessage", errFakeUnavailable)
	form := url.Values{"token": {a.token("c1")}, "text": {"still a reply"}, "reply_to": {"c1-m000"}}
	res := a.post("/convos/c1/messages", form)
	if res.status != http.StatusServiceUnavailable || res.doc.Find(`input[name="reply_to"]`).AttrOr("value", "") != "c1-m000" ||
		!strings.HasPrefix(text(testid(res.doc, "composer-reply")), "Replying to Bob: Message 0 of c1") {
		t.Fatalf("%d, composer %q", res.status, text(testid(res.doc, "composer")))
	}
	form.Set("token", a.token("c1"))
	j := a.postJSON("/convos/c1/messages", form)
	var r dm.SendReply
	if err := json.Unmarshal([]byte(j.body), &r); err != nil || r.ReplyTo != "c1-m000" || r.Error == "" {
		t.Errorf("JSON %q", j.body)
	}
}

// ?at= opens the conversation at a message further back: the page of
// messages that holds it, found by paging back; a reply's quote of a
// parent not on the page links there.
func TestOpenConversationAtAMessage(t *testing.T) {
	a := newReplyApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 180, 0)
	a.chat.mu.Lock()
	newest := a.chat.msgs["c1"][0]
	newest.ReplyTo = &chat.ConvoDefs_MessageView_ReplyTo{ConvoDefs_MessageView: clone(a.chat.msgs["c1"][169])} // c1-m010
	a.chat.mu.Unlock()

	page := a.get("/convos/c1")
	href := page.doc.Find(`li#m-c1-m179 [data-testid="reply-quote"] a`).AttrOr("href", "")
	if href != "/convos/c1?at=c1-m010#m-c1-m010" {
		t.Fatalf("quote of a parent further back links to %q", href)
	}
	before := a.chat.count("GetMessages")
	res := a.get(strings.TrimSuffix(href, "#m-c1-m010"))
	if res.status != http.StatusOK || res.doc.Find(`li#m-c1-m010`).Length() != 1 {
		t.Fatalf("%d: the parent is not on the page", res.status)
	}
	if n := a.chat.count("GetMessages") - before; n != 4 {
		t.Errorf("%d getMessages pages, want 4 (it is the 170th newest of 50 a page)", n)
	}
	if testid(res.doc, "load-latest").Length() != 1 || testid(res.doc, "messages").AttrOr("data-live", "none") != "none" {
		t.Error("an earlier window has no way back to the latest, or takes live messages")
	}
	if testid(res.doc, "notice").Length() != 0 {
		t.Errorf("notice %q", text(testid(res.doc, "notice")))
	}
}

// Past the bound (5 pages, 250 messages) ?at= shows the oldest page it
// reached and a link to keep looking from there; an id that is not in the
// conversation says so.
func TestOpenAtPastTheBound(t *testing.T) {
	a := newReplyApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 300, 0)
	a.chat.addConvo("c2", profile(dmCarol, "carol.test", "Carol"), "accepted", 3, 0)

	res := a.get("/convos/c1?at=c1-m000")
	if !strings.Contains(text(res.doc.Find(".notice")), "further back than the 250 messages") {
		t.Errorf("notice %q", text(res.doc.Find(".notice")))
	}
	more := testid(res.doc, "at-more").AttrOr("href", "")
	if more != "/convos/c1?at=c1-m000&cursor=250#m-c1-m000" {
		t.Fatalf("keep looking %q", more)
	}
	res = a.get(strings.TrimSuffix(more, "#m-c1-m000"))
	if res.doc.Find(`li#m-c1-m000`).Length() != 1 || testid(res.doc, "at-more").Length() != 0 {
		t.Fatal("keep looking did not find it")
	}

	res = a.get("/convos/c2?at=nosuchmessage")
	if got := text(res.doc.Find(".notice")); !strings.Contains(got, "not in this conversation") {
		t.Errorf("notice %q", got)
	}
}

// ?reply= to a message further back than the page finds it there.
func TestReplyToAMessageFurtherBack(t *testing.T) {
	a := newReplyApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 120, 0)
	res := a.get("/convos/c1?reply=c1-m005")
	if got := text(testid(res.doc, "composer-reply")); !strings.HasPrefix(got, "Replying to Bob: Message 5 of c1") {
		t.Fatalf("composer %q", got)
	}
}

// A reply arriving live renders with its quote, its parent's sender named.
func TestLiveReplyShowsItsQuote(t *testing.T) {
	hub, src := startHub(t)
	a := newDMApp(t, func(d *DMs) { d.Hub = hub })
	bob := profile(dmBob, "bob.test", "Bob")
	a.chat.addConvo("c1", bob, "accepted", 2, 0)
	a.get("/convos/c1") // the page names the members

	req, _ := http.NewRequest(http.MethodGet, a.srv.URL+"/events?convo=c1", nil)
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	events := readEvents(t, resp)
	waitFor(t, "the poller's cursor", func() bool { src.mu.Lock(); defer src.mu.Unlock(); return src.calls > 1 })

	a.chat.mu.Lock()
	parent := clone(a.chat.msgs["c1"][1]) // alice's own
	a.chat.mu.Unlock()
	msg := &chat.ConvoDefs_MessageView{Id: "m9", Rev: "r09", Text: "agreed", SentAt: a.chat.now.Format(time.RFC3339),
		Sender:  &chat.ConvoDefs_MessageViewSender{Did: dmBob},
		ReplyTo: &chat.ConvoDefs_MessageView_ReplyTo{ConvoDefs_MessageView: parent}}
	src.push(createMessage("c1", "r09", msg, bob))
	var m dm.LiveMessage
	if err := json.Unmarshal([]byte(waitEvent(t, events, "message").data), &m); err != nil {
		t.Fatal(err)
	}
	doc, _ := goquery.NewDocumentFromReader(strings.NewReader(m.HTML))
	q := doc.Find(`li#m-m9 [data-testid="reply-quote"]`)
	if got := text(q); got != "In reply to You "+parent.Text {
		t.Errorf("live quote %q", got)
	}
	if href := q.Find("a").AttrOr("href", ""); href != "/convos/c1?at="+parent.Id+"#m-"+parent.Id || q.Find("a").AttrOr("data-parent", "") != parent.Id {
		t.Errorf("live quote links to %q", href)
	}
}
