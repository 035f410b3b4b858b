package views

import (
	"strings"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/richtext"
)

// repliesFixture is a conversation whose last messages reply to a message
// on the page, to one further back, to a deleted one and to one from before
// the viewer joined.
func repliesFixture() ConvoVM {
	vm := convoFixture(2)
	at := vm.Messages[1].SentAt
	add := func(id string, q QuotedVM) {
		at = at.Add(time.Minute)
		vm.Messages = append(vm.Messages, MessageVM{ID: id, SenderDID: "did:plc:bob", SenderName: "Bob",
			Segments: richtext.Render("reply "+id, nil, dmLinks), SentAt: at, ReplyTo: &q})
	}
	add("r-here", QuotedVM{ID: "msg000", SenderName: "Alice", Own: true, Text: "the parent <b>text</b>", OnPage: true})
	add("r-far", QuotedVM{ID: "old 1", SenderName: "Bob", Text: "far back"})
	add("r-deleted", QuotedVM{ID: "gone1", SenderName: "Bob", Deleted: true})
	add("r-before", QuotedVM{BeforeJoined: true})
	return vm
}

func TestReplyQuotes(t *testing.T) {
	doc, _ := renderDoc(t, ConvoBody(repliesFixture()))
	quote := func(id string) (text, href string) {
		q := doc.Find(`li#m-` + id + ` [data-testid="reply-quote"]`)
		if q.Length() != 1 {
			t.Fatalf("%s: %d quotes", id, q.Length())
		}
		return strings.Join(strings.Fields(q.Text()), " "), q.Find("a").AttrOr("href", "")
	}
	t.Run("a parent on the page is linked in place, named You when it is the viewer's", func(t *testing.T) {
		text, href := quote("r-here")
		if text != "In reply to You the parent <b>text</b>" || href != "#m-msg000" {
			t.Fatalf("quote %q → %q", text, href)
		}
	})
	t.Run("a parent further back opens the conversation at it", func(t *testing.T) {
		_, href := quote("r-far")
		if href != "/convos/convo1?at=old+1#m-old 1" {
			t.Fatalf("href %q", href)
		}
		if p := doc.Find(`li#m-r-far [data-testid="reply-quote-link"]`).AttrOr("data-parent", ""); p != "old 1" {
			t.Fatalf("data-parent %q", p)
		}
	})
	t.Run("a deleted parent says so and still links to its place", func(t *testing.T) {
		text, href := quote("r-deleted")
		if text != "In reply to Bob Deleted message" || href == "" {
			t.Fatalf("quote %q → %q", text, href)
		}
	})
	t.Run("a parent from before the viewer joined is not a link", func(t *testing.T) {
		text, href := quote("r-before")
		if text != "In reply to Message from before you joined" || href != "" {
			t.Fatalf("quote %q → %q", text, href)
		}
	})
}

func TestReplyActionAndComposer(t *testing.T) {
	vm := repliesFixture()
	vm.Selected = "msg001"
	doc, _ := renderDoc(t, ConvoBody(vm))
	r := doc.Find(`li#m-msg001 [data-testid="message-actions"] [data-testid="reply"]`)
	if r.Length() != 1 || r.Is("button") || r.AttrOr("href", "") != "/convos/convo1?reply=msg001#composer" {
		t.Fatalf("Reply action %d %q", r.Length(), r.AttrOr("href", ""))
	}
	if doc.Find(`[data-testid="composer-reply"], [data-testid="composer-reply-missing"]`).Length() != 0 {
		t.Fatal("the composer replies without ?reply=")
	}

	vm.Selected, vm.ReplyTo = "", &vm.Messages[1]
	doc, _ = renderDoc(t, ConvoBody(vm))
	box := doc.Find(`form#composer [data-testid="composer-reply"]`)
	if got := strings.Join(strings.Fields(box.Text()), " "); !strings.HasPrefix(got, "Replying to Bob: Message 1: shall we meet") {
		t.Fatalf("reply block %q", got)
	}
	if doc.Find(`form#composer input[type="hidden"][name="reply_to"]`).AttrOr("value", "") != "msg001" {
		t.Fatal("no reply_to field")
	}
	if box.Find(`[data-testid="cancel-reply"]`).AttrOr("href", "") != "/convos/convo1#latest" {
		t.Fatal("no Cancel link")
	}

	vm.ReplyTo, vm.ReplyMissing = nil, true
	doc, _ = renderDoc(t, ConvoBody(vm))
	if !strings.Contains(doc.Find(`form#composer [data-testid="composer-reply-missing"]`).Text(), "not there any more") ||
		doc.Find(`input[name="reply_to"]`).Length() != 0 {
		t.Fatal("a missing reply target is not said, or still sent")
	}
}

func TestAtMoreLink(t *testing.T) {
	vm := convoFixture(1)
	vm.At, vm.AtMore = "3lbx", "cur 9"
	doc, _ := renderDoc(t, ConvoBody(vm))
	if h := doc.Find(`[data-testid="at-more"]`).AttrOr("href", ""); h != "/convos/convo1?at=3lbx&cursor=cur+9#m-3lbx" {
		t.Fatalf("keep looking %q", h)
	}
}
