package views

import (
	"context"
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
	p, vm := testPage(), convoFixture(100)
	texts := make([]string, len(vm.Messages))
	facets := make([][]*bsky.RichtextFacet, len(vm.Messages))
	for i := range vm.Messages {
		texts[i], facets[i] = fixtureText(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		for i := range vm.Messages {
			vm.Messages[i].Segments = richtext.Render(texts[i], facets[i], dmLinks)
		}
		if err := ConvoPage(p, vm).Render(ctx, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
