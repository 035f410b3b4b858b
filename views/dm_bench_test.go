package views

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/bluesky-social/indigo/api/bsky"

	"github.com/skydm/skydm/internal/richtext"
)

// BenchmarkRenderInbox50 renders the inbox page (layout included) with 50
// conversations. Target: under 300 µs per render.
func BenchmarkRenderInbox50(b *testing.B) {
	p, vm := testPage(), inboxFixture(50)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := InboxPage(p, vm).Render(ctx, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderConvo100 renders a conversation page (layout included) with
// 100 messages, a third of them with a link and a mention facet and a
// quarter with two reactions. Each iteration also turns every message's
// text and facets into segments with richtext.Render, as the handler does
// when it builds the view model. Target: under 300 µs per render.
func BenchmarkRenderConvo100(b *testing.B) {
	benchConvoPage(b, convoFixture(100))
}

// benchConvoPage renders vm's conversation page per iteration, first
// turning every message's fixture text and facets (fixtureText) into
// segments with richtext.Render, as the handler does when it builds the
// view model; system messages have no text.
func benchConvoPage(b *testing.B, vm ConvoVM) {
	p := testPage()
	texts := make([]string, len(vm.Messages))
	facets := make([][]*bsky.RichtextFacet, len(vm.Messages))
	for i := range vm.Messages {
		texts[i], facets[i] = fixtureText(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		for i := range vm.Messages {
			if !vm.Messages[i].System {
				vm.Messages[i].Segments = richtext.Render(texts[i], facets[i], dmLinks)
			}
		}
		if err := ConvoPage(p, vm).Render(ctx, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// groupConvoFixture is convoFixture(n) as a group of members people (the
// viewer included): messages from others come from a rotating cast, each
// with a name and an avatar, in runs of one to three, and every tenth is a
// system message.
func groupConvoFixture(n, members int) ConvoVM {
	vm := convoFixture(n)
	vm.GroupConvo = &GroupConvoVM{Name: "Weekend plans", MemberCount: members}
	vm.Members = vm.Members[:0]
	for j := 1; j < members; j++ {
		vm.Members = append(vm.Members, MemberVM{DID: fmt.Sprintf("did:plc:member%020d", j), Name: fmt.Sprintf("Member %d", j), Handle: fmt.Sprintf("member%d.test", j)})
	}
	for i := range vm.Messages {
		m := &vm.Messages[i]
		if i%10 == 9 {
			*m = MessageVM{ID: m.ID, Rev: m.Rev, SentAt: m.SentAt, System: true, SystemText: fmt.Sprintf("Alice added Member %d", i%(members-1)+1)}
			continue
		}
		if m.Own {
			continue
		}
		who := (i/3)%(members-1) + 1
		m.SenderDID, m.SenderName = fmt.Sprintf("did:plc:member%020d", who), fmt.Sprintf("Member %d", who)
		m.SenderAvatar = fmt.Sprintf("https://cdn.bsky.app/img/avatar/plain/did:plc:member%020d/bafkreiabc@jpeg", who)
		m.Continued = i > 0 && vm.Messages[i-1].SenderDID == m.SenderDID
	}
	return vm
}

// BenchmarkRenderGroupConvo100 renders a group conversation page (layout
// included) of 100 messages from a group of 50: sender names and avatars,
// system lines, a third of the texts with a link and a mention, turned into
// segments each iteration as the handler does. Target: under 300 µs per
// render (issue 10; the handler's whole page, with its 2 upstream calls, is
// BenchmarkGroupConvoPage100 in internal/handlers).
func BenchmarkRenderGroupConvo100(b *testing.B) {
	benchConvoPage(b, groupConvoFixture(100, 50))
}

// BenchmarkRenderInbox50Mixed renders an inbox of 50 conversations, every
// other one a group of five with a name, stacked avatars and the last
// sender's name (every fifth group's last message a system line). Target:
// under 200 µs per render (issue 10; the handler's page, with 1 upstream
// call and the cached counts, is BenchmarkInboxPage50Mixed).
func BenchmarkRenderInbox50Mixed(b *testing.B) {
	p, vm := testPage(), inboxFixture(50)
	for i := range vm.Convos {
		if i%2 == 0 {
			continue
		}
		row := &vm.Convos[i]
		row.GroupConvo = &GroupConvoVM{Name: fmt.Sprintf("Group %d", i), MemberCount: 5}
		row.Members = nil
		for j := 0; j < 4; j++ {
			row.Members = append(row.Members, MemberVM{DID: fmt.Sprintf("did:plc:m%03d%017d", i, j), Name: fmt.Sprintf("Member %d", j),
				Handle: fmt.Sprintf("m%d-%d.test", i, j), AvatarURL: "https://cdn.bsky.app/img/avatar/plain/x/bafk@jpeg"})
		}
		row.LastPreview = "Member 1: See you all on Saturday at the usual place 👋🏽"
		if i%5 == 0 {
			row.LastPreview, row.PreviewQuiet = "You added Member 2", true
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := InboxPage(p, vm).Render(ctx, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
