package views

import (
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/skydm/skydm/internal/richtext"
)

func TestConvoPage(t *testing.T) {
	day1 := time.Date(2025, 3, 3, 22, 0, 0, 0, time.UTC)
	day2 := time.Date(2025, 3, 4, 9, 30, 0, 0, time.UTC)
	vm := ConvoVM{
		ID: "c1", Members: []MemberVM{{DID: "did:plc:bob", Name: "Bob", Handle: "bob.test"}},
		ViewerDID: "did:plc:alice", FormToken: "tok-1", EarlierCursor: "cur 1", Now: dmNow, Status: StatusAccepted,
		Messages: []MessageVM{
			{ID: "m1", SenderDID: "did:plc:bob", SenderName: "Bob", Segments: richtext.Render("hi alice", nil, dmLinks), SentAt: day1,
				Reactions: []ReactionVM{{Value: "❤️", Count: 2, Mine: true}, {Value: "👍", Count: 1}}},
			{ID: "m2", SenderDID: "did:plc:alice", Own: true, Segments: richtext.Render("hi bob", nil, dmLinks), SentAt: day1.Add(time.Minute),
				ReplyTo: &QuotedVM{ID: "m1", SenderName: "Bob", Text: "hi alice", OnPage: true}},
			{ID: "m3", SenderDID: "did:plc:bob", SenderName: "Bob", Deleted: true, SentAt: day2},
			{ID: "m4", SenderDID: "did:plc:bob", SenderName: "Bob", Unsupported: true, SentAt: day2.Add(time.Minute)},
			{ID: "m5", System: true, SystemText: "Bob added Carol", SentAt: day2.Add(2 * time.Minute)},
			{ID: "m6", SenderDID: "did:plc:bob", SenderName: "Bob", SentAt: day2.Add(3 * time.Minute),
				Embed: &EmbedVM{URL: "https://bsky.app/profile/did:plc:x/post/3k", AuthorName: "Xavier", AuthorHandle: "x.test", Text: "a post"}},
		},
	}
	doc, _ := renderDoc(t, ConvoPage(testPage(), vm))
	msgs := doc.Find(`[data-testid="message"]`)
	if msgs.Length() != 6 {
		t.Fatalf("got %d messages, want 6", msgs.Length())
	}
	byID := func(id string) *goquery.Selection { return doc.Find(`li#m-` + id + `[data-testid="message"]`) }

	t.Run("own and others are told apart", func(t *testing.T) {
		if byID("m2").AttrOr("data-own", "no") == "no" {
			t.Fatal("own message not marked own")
		}
		if byID("m1").AttrOr("data-own", "no") != "no" {
			t.Fatal("other's message marked own")
		}
		if got := byID("m2").Find(`.sender`).Text(); !strings.Contains(got, "You") {
			t.Fatalf("own sender label %q", got)
		}
	})
	t.Run("one-to-one list is not marked group", func(t *testing.T) {
		if doc.Find(`[data-testid="messages"]`).AttrOr("data-group", "no") != "no" {
			t.Fatal("one-to-one conversation marked as group (sender names would show)")
		}
		if got := byID("m1").Find(`.bubble > .sender`).Text(); got != "Bob" {
			t.Fatalf("sender for screen readers %q", got)
		}
	})
	t.Run("day separators between days", func(t *testing.T) {
		seps := doc.Find(`[data-testid="day-separator"]`)
		if seps.Length() != 2 || seps.Eq(0).Text() != "Yesterday" || seps.Eq(1).Text() != "Today" {
			t.Fatalf("separators %d %q", seps.Length(), seps.Text())
		}
		if seps.Eq(1).Next().AttrOr("id", "") != "m-m3" {
			t.Fatal("second separator not before the first message of the day")
		}
	})
	t.Run("deleted message shows placeholder without actions to reply", func(t *testing.T) {
		if byID("m3").Find(`[data-testid="message-deleted"]`).Length() != 1 || byID("m3").Find(`[data-testid="reply"]`).Length() != 0 {
			t.Fatal("deleted placeholder wrong")
		}
	})
	t.Run("unsupported message shows placeholder", func(t *testing.T) {
		if byID("m4").Find(`[data-testid="message-unsupported"]`).Length() != 1 {
			t.Fatal("unsupported placeholder missing")
		}
	})
	t.Run("system message shows its text", func(t *testing.T) {
		if got := byID("m5").Find(`[data-testid="message-system"]`).Text(); !strings.Contains(got, "Bob added Carol") {
			t.Fatalf("system text %q", got)
		}
	})
	t.Run("reply quote links to the quoted message", func(t *testing.T) {
		q := byID("m2").Find(`[data-testid="reply-quote"]`)
		if q.Length() != 1 || !strings.Contains(q.Text(), "hi alice") || q.Find("a").AttrOr("href", "") != "#m-m1" {
			t.Fatalf("quote %q", q.Text())
		}
	})
	t.Run("reactions show counts and toggle forms", func(t *testing.T) {
		rs := byID("m1").Find(`[data-testid="reaction"]`)
		if rs.Length() != 2 {
			t.Fatalf("got %d reactions", rs.Length())
		}
		if rs.Eq(0).Find("span").Text() != "2" || rs.Eq(0).AttrOr("aria-pressed", "") != "true" {
			t.Fatal("own reaction not pressed with count 2")
		}
		if a := rs.Eq(0).AttrOr("formaction", ""); a != "/convos/c1/messages/m1/reactions/remove" {
			t.Fatalf("own reaction posts to %q", a)
		}
		f := rs.Eq(1).Closest("form")
		if a := f.AttrOr("action", ""); a != "/convos/c1/messages/m1/reactions" || f.AttrOr("method", "") != "post" || rs.Eq(1).AttrOr("formaction", "") != "" {
			t.Fatalf("other reaction posts to %q", a)
		}
		if rs.Eq(1).AttrOr("aria-pressed", "") != "false" {
			t.Fatal("others' reaction pressed")
		}
		if v := rs.Eq(1).AttrOr("value", ""); v != "👍" || rs.Eq(1).AttrOr("name", "") != "value" {
			t.Fatalf("reaction value %q", v)
		}
	})
	t.Run("message actions are links", func(t *testing.T) {
		// Reply is in a message's action panel (dm.js adds one beside More).
		if n := doc.Find(`[data-testid="reply"]`).Length(); n != 0 {
			t.Fatalf("%d Reply links with no action panel open", n)
		}
		if h := byID("m1").Find(`[data-testid="more"]`).AttrOr("href", ""); h != "?sel=m1#m-m1" {
			t.Fatalf("more href %q", h)
		}
		if doc.Find(`[data-testid="message-actions"]`).Length() != 0 {
			t.Fatal("an action panel is open without ?sel")
		}
	})
	t.Run("embed is a card linking to the post", func(t *testing.T) {
		if h := byID("m6").Find(`[data-testid="embed-link"]`).AttrOr("href", ""); h != "https://bsky.app/profile/did:plc:x/post/3k" {
			t.Fatalf("embed href %q", h)
		}
	})
	t.Run("load earlier link carries the escaped cursor", func(t *testing.T) {
		if h := doc.Find(`[data-testid="load-earlier"]`).AttrOr("href", ""); h != "/convos/c1?cursor=cur+1" {
			t.Fatalf("load earlier %q", h)
		}
	})
	t.Run("composer posts text reply_to and token", func(t *testing.T) {
		f := doc.Find(`form[data-testid="composer"]`)
		if f.AttrOr("method", "") != "post" || f.AttrOr("action", "") != "/convos/c1/messages" {
			t.Fatal("composer form wrong")
		}
		if f.Find(`input[name="token"]`).AttrOr("value", "") != "tok-1" || f.Find(`textarea[name="text"]`).Length() != 1 {
			t.Fatal("composer fields wrong")
		}
		if f.Find(`input[name="reply_to"]`).Length() != 0 {
			t.Fatal("reply_to without a reply")
		}
		if doc.Find(`[data-testid="request-banner"]`).Length() != 0 {
			t.Fatal("request banner on an accepted conversation")
		}
		if e := f.Find(`[data-testid="error"]`); e.AttrOr("hidden", "none") == "none" {
			t.Fatal("empty error is not hidden")
		}
	})
}

func TestConvoComposerKeepsDraftAndShowsError(t *testing.T) {
	vm := convoFixture(2)
	vm.Draft = "my long draft <b>keep</b>"
	vm.Error = "Your message is 1,204 characters long; the limit is 1,000."
	vm.ReplyTo = &vm.Messages[1]
	doc, _ := renderDoc(t, ConvoBody(vm))
	ta := doc.Find(`[data-testid="draft"]`)
	if ta.Text() != vm.Draft || ta.AttrOr("aria-invalid", "") != "true" || ta.AttrOr("aria-describedby", "") != "composer-error" {
		t.Fatalf("draft %q", ta.Text())
	}
	e := doc.Find(`#composer-error[data-testid="error"]`)
	if e.Text() != vm.Error || e.AttrOr("hidden", "none") != "none" {
		t.Fatalf("error %q", e.Text())
	}
	if doc.Find(`input[name="reply_to"]`).AttrOr("value", "") != "msg001" || doc.Find(`[data-testid="composer-reply"]`).Length() != 1 {
		t.Fatal("reply not kept in the composer")
	}
}

func TestConvoRequestBanner(t *testing.T) {
	vm := convoFixture(1)
	vm.Status = StatusRequest
	doc, _ := renderDoc(t, ConvoBody(vm))
	b := doc.Find(`[data-testid="request-banner"]`)
	if b.Length() != 1 {
		t.Fatal("no request banner")
	}
	if b.Find(`[data-testid="accept"]`).Closest("form").AttrOr("action", "") != "/convos/convo1/accept" {
		t.Fatal("accept form wrong")
	}
	leave := b.Find(`details[data-testid="leave"]`)
	if leave.Length() != 1 || leave.Find(`[data-testid="leave-confirm"]`).Closest("form").AttrOr("action", "") != "/convos/convo1/leave" {
		t.Fatal("leave is not behind a confirmation")
	}
}

func TestConvoGroupShowsSenderNames(t *testing.T) {
	vm := convoFixture(2)
	vm.Members = append(vm.Members, MemberVM{DID: "did:plc:carol", Handle: "carol.test"})
	doc, _ := renderDoc(t, ConvoBody(vm))
	if doc.Find(`[data-testid="messages"]`).AttrOr("data-group", "no") == "no" {
		t.Fatal("group conversation list not marked data-group")
	}
	other := doc.Find(`[data-testid="message"]:not([data-own]) .bubble > .sender`)
	if other.Text() != "Bob" {
		t.Fatalf("group sender name %q", other.Text())
	}
	if got := doc.Find(`[data-testid="convo-title"]`).Text(); got != "Bob and carol.test" {
		t.Fatalf("title %q", got)
	}
}

func TestActionPanelOpensForOneMessage(t *testing.T) {
	vm := convoFixture(3)
	vm.Selected = "msg001"
	doc, _ := renderDoc(t, ConvoBody(vm))
	if n := doc.Find(`[data-testid="message-actions"]`).Length(); n != 1 {
		t.Fatalf("%d action panels open, want 1", n)
	}
	p := doc.Find(`[data-testid="reaction-picker"]`)
	if p.Length() != 1 || p.Closest(`[data-testid="message"]`).AttrOr("id", "") != "m-msg001" {
		t.Fatal("picker not under msg001 only")
	}
	if p.AttrOr("method", "") != "post" || p.AttrOr("action", "") != "/convos/convo1/messages/msg001/reactions" {
		t.Fatal("picker is not a POST form to the reactions action")
	}
	del := doc.Find(`#m-msg001 [data-testid="delete"]`).Closest("form")
	if del.AttrOr("method", "") != "post" || del.AttrOr("action", "") != "/convos/convo1/messages/msg001/delete" {
		t.Fatal("delete for me is not a POST form")
	}
	if p.Find(`[data-testid="pick"]`).Length() != len(CommonReactions()) || doc.Find(`#m-msg001 [data-testid="reaction-input"]`).Length() != 1 {
		t.Fatal("picker lacks buttons or field")
	}
}

func TestMessageItemRendersAloneForLiveUpdates(t *testing.T) {
	m := convoFixture(1).Messages[0]
	doc, html := renderDoc(t, MessageItem(m, MsgContext{ConvoID: "convo1"}))
	if !strings.HasPrefix(html, `<li class="msg" id="m-msg000"`) || doc.Find(`li#m-msg000[data-testid="message"]`).Length() != 1 {
		t.Fatalf("fragment %q", html[:min(80, len(html))])
	}
	if doc.Find(`[data-testid="mention"]`).AttrOr("href", "") != "https://bsky.app/profile/did:plc:ewvi7nxzyoun6zhxrhs64oiz" {
		t.Fatal("mention href wrong")
	}
	if doc.Find(`[data-testid="link"]`).AttrOr("href", "") != "https://example.com/p/0" {
		t.Fatal("link href wrong")
	}
	_, empty := renderDoc(t, MessageReactions(MessageVM{ID: "x"}, MsgContext{ConvoID: "c"}))
	if empty != "" {
		t.Fatalf("reactions of a message without any rendered %q", empty)
	}
}

func TestNewConvoAndSettingsPages(t *testing.T) {
	doc, _ := renderDoc(t, NewConvoPage(testPage(), NewConvoVM{Handle: "carol.test", Error: "carol.test only accepts messages from people they follow."}))
	if doc.Find(`[data-testid="handle"]`).AttrOr("value", "") != "carol.test" || !strings.Contains(doc.Find(`[data-testid="error"]`).Text(), "people they follow") {
		t.Fatal("new convo page does not keep the handle or show the error")
	}
	for _, tt := range []struct{ allow, want string }{{"", AllowFollowing}, {AllowAll, AllowAll}, {AllowNone, AllowNone}} {
		doc, _ := renderDoc(t, SettingsPage(testPage(), SettingsVM{AllowIncoming: tt.allow}))
		checked := doc.Find(`input[name="allow_incoming"][checked]`)
		if checked.Length() != 1 || checked.AttrOr("value", "") != tt.want {
			t.Fatalf("allow %q: checked %q, want %q", tt.allow, checked.AttrOr("value", ""), tt.want)
		}
	}
}
