package views

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"
	"github.com/bluesky-social/indigo/api/bsky"

	"github.com/skydm/skydm/internal/richtext"
)

// dmNow is the fixed "now" of the DM view tests: Tuesday 4 March 2025, 15:00 UTC.
var dmNow = time.Date(2025, 3, 4, 15, 0, 0, 0, time.UTC)

var dmLinks = richtext.Links{ProfileBase: "https://bsky.app/profile", TagBase: "https://bsky.app/hashtag"}

// renderDoc renders c and parses the result.
func renderDoc(t testing.TB, c templ.Component) (*goquery.Document, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render: %v", err)
	}
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return doc, buf.String()
}

func testPage() Page {
	return Page{Title: "Inbox", Nav: "home", Current: &Account{DID: "did:plc:viewer", Handle: "me.test"},
		Assets: Assets{CSS: "/static/app.css?v=1", JS: "/static/app.js?v=1", Icon: "/static/favicon.svg?v=1"}}
}

func testDMAssets() DMAssets {
	return DMAssets{CSS: "/static/dm.css?v=1", JS: "/static/dm.js?v=1"}
}

// inboxFixture returns an inbox with n conversations, newest first.
func inboxFixture(n int) InboxVM {
	vm := InboxVM{Assets: testDMAssets(), Tab: TabAccepted, RequestCount: 2, UnreadTotal: 5, NextCursor: "cur-2", Now: dmNow}
	for i := 0; i < n; i++ {
		row := ConvoRowVM{
			ID:          fmt.Sprintf("convo%03d", i),
			Members:     []MemberVM{{DID: fmt.Sprintf("did:plc:user%03d", i), Name: fmt.Sprintf("User %d", i), Handle: fmt.Sprintf("user%d.test", i)}},
			LastPreview: "See you at the station at eight, don't be late!",
			LastAt:      dmNow.Add(-time.Duration(i*i) * 7 * time.Minute),
			Status:      StatusAccepted,
		}
		if i%3 == 0 {
			row.Members[0].AvatarURL = fmt.Sprintf("https://cdn.bsky.app/img/avatar/plain/did:plc:user%03d/bafk@jpeg", i)
		}
		if i%4 == 0 {
			row.Unread = i%7 + 1
		}
		row.Muted = i%5 == 1
		vm.Convos = append(vm.Convos, row)
	}
	return vm
}

// fixtureText returns the text and facets of fixture message i: every
// third has a mention and a link after an emoji and a combining mark.
func fixtureText(i int) (string, []*bsky.RichtextFacet) {
	if i%3 != 0 {
		return fmt.Sprintf("Message %d: shall we meet tomorrow? 👋🏽 It's at the usual place.", i), nil
	}
	text := fmt.Sprintf("Héllo 👨‍👩‍👧 @bob.test look https://example.com/p/%d and tell me", i)
	ms := strings.Index(text, "@bob.test")
	ls := strings.Index(text, "https://")
	le := strings.Index(text, " and tell")
	return text, []*bsky.RichtextFacet{
		{Index: &bsky.RichtextFacet_ByteSlice{ByteStart: int64(ms), ByteEnd: int64(ms + len("@bob.test"))},
			Features: []*bsky.RichtextFacet_Features_Elem{{RichtextFacet_Mention: &bsky.RichtextFacet_Mention{Did: "did:plc:ewvi7nxzyoun6zhxrhs64oiz"}}}},
		{Index: &bsky.RichtextFacet_ByteSlice{ByteStart: int64(ls), ByteEnd: int64(le)},
			Features: []*bsky.RichtextFacet_Features_Elem{{RichtextFacet_Link: &bsky.RichtextFacet_Link{Uri: text[ls:le]}}}},
	}
}

// convoFixture returns a conversation with n messages over several days,
// every third with a link and a mention, every fourth with reactions.
func convoFixture(n int) ConvoVM {
	vm := ConvoVM{
		Assets: testDMAssets(), ID: "convo1", Members: []MemberVM{{DID: "did:plc:bob", Name: "Bob", Handle: "bob.test"}},
		FormToken: "tok-123", ViewerDID: "did:plc:alice", EarlierCursor: "older-1", Now: dmNow, Status: StatusAccepted,
	}
	start := dmNow.Add(-time.Duration(n) * 37 * time.Minute)
	for i := 0; i < n; i++ {
		own := i%2 == 0
		text, facets := fixtureText(i)
		m := MessageVM{
			ID: fmt.Sprintf("msg%03d", i), Rev: fmt.Sprintf("rev%03d", i), Own: own,
			Segments: richtext.Render(text, facets, dmLinks),
			SentAt:   start.Add(time.Duration(i) * 37 * time.Minute),
		}
		if own {
			m.SenderDID, m.SenderName = "did:plc:alice", "Alice"
		} else {
			m.SenderDID, m.SenderName = "did:plc:bob", "Bob"
		}
		if i%4 == 0 {
			m.Reactions = []ReactionVM{{Value: "❤️", Count: 2, Mine: true}, {Value: "😂", Count: 1}}
		}
		vm.Messages = append(vm.Messages, m)
	}
	return vm
}

func secs(n int64) time.Duration { return time.Duration(n) * time.Second }
