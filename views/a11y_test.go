package views

import (
	"strings"
	"testing"
	"time"
)

// TestMoreLinksNameTheirMessage: each message's More link is named for
// whose message it is and when, the name isolated and cut when long, and
// markup in a name stays text.
func TestMoreLinksNameTheirMessage(t *testing.T) {
	at := time.Date(2025, 3, 4, 14, 2, 0, 0, time.UTC)
	long := strings.Repeat("Ω", 300)
	vm := ConvoVM{ID: "c1", Now: dmNow, Status: StatusAccepted, Messages: []MessageVM{
		{ID: "m1", SenderName: "Bob", SentAt: at},
		{ID: "m2", Own: true, SenderName: "Alice", SentAt: at},
		{ID: "m3", SenderName: `<b>x</b>`, SentAt: at},
		{ID: "m4", SenderName: long},
	}}
	doc, _ := renderDoc(t, ConvoPage(testPage(), vm))
	want := map[string]string{
		"m1": "More actions for Bob’s message at 14:02",
		"m2": "More actions for your message at 14:02",
		"m3": "More actions for <b>x</b>’s message at 14:02",
		"m4": "More actions for " + strings.Repeat("Ω", MaxNameGraphemes-1) + "…’s message",
	}
	for id, w := range want {
		more := doc.Find(`#m-` + id + ` [data-testid="more"]`)
		if got := more.Text(); got != w {
			t.Errorf("%s: More link says %q, want %q", id, got, w)
		}
		if vis := more.Contents().First().Text(); vis != "More" {
			t.Errorf("%s: visible text %q, want More", id, vis)
		}
		if more.Find(`span.sr`).Length() != 1 {
			t.Errorf("%s: the rest of the name is not visually hidden", id)
		}
	}
	if doc.Find(`#m-m3 [data-testid="more"] b`).Length() != 0 {
		t.Error("markup in a sender's name became an element")
	}
	if doc.Find(`#m-m1 [data-testid="more"] bdi`).Text() != "Bob" {
		t.Error("the sender's name is not isolated in <bdi>")
	}
}

// TestConvoPageSkipsToTheComposer: the conversation page has a second skip
// link, to the composer's text box.
func TestConvoPageSkipsToTheComposer(t *testing.T) {
	doc, _ := renderDoc(t, ConvoPage(testPage(), convoFixture(3)))
	skip := doc.Find(`a.skip[data-testid="skip"]`)
	if skip.AttrOr("href", "") != "#text" || doc.Find(`textarea#text`).Length() != 1 {
		t.Errorf("skip link %q to #text; text box present: %d", skip.AttrOr("href", ""), doc.Find(`textarea#text`).Length())
	}
	if doc.Find(`a.skip`).First().AttrOr("href", "") != "#main" {
		t.Error("the first skip link is not to the content")
	}
}

// TestNoticeIsTheFocusTarget: the notice after an action has the id
// redirects point to, is a status, and can take focus.
func TestNoticeIsTheFocusTarget(t *testing.T) {
	vm := convoFixture(1)
	vm.Notice = "Conversation muted."
	doc, _ := renderDoc(t, ConvoPage(testPage(), vm))
	n := doc.Find(`#` + NoticeID)
	if n.AttrOr("role", "") != "status" || n.AttrOr("tabindex", "") != "-1" || strings.TrimSpace(n.Text()) != vm.Notice {
		t.Errorf("notice: role %q tabindex %q text %q", n.AttrOr("role", ""), n.AttrOr("tabindex", ""), n.Text())
	}
}
