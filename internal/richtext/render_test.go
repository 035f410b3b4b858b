package richtext

import (
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/api/bsky"
)

var testLinks = Links{ProfileBase: "https://bsky.app/profile", TagBase: "https://bsky.app/hashtag"}

func linkF(start, end int64, uri string) *bsky.RichtextFacet {
	return &bsky.RichtextFacet{
		Index:    &bsky.RichtextFacet_ByteSlice{ByteStart: start, ByteEnd: end},
		Features: []*bsky.RichtextFacet_Features_Elem{{RichtextFacet_Link: &bsky.RichtextFacet_Link{Uri: uri}}},
	}
}

func mentionF(start, end int64, did string) *bsky.RichtextFacet {
	return &bsky.RichtextFacet{
		Index:    &bsky.RichtextFacet_ByteSlice{ByteStart: start, ByteEnd: end},
		Features: []*bsky.RichtextFacet_Features_Elem{{RichtextFacet_Mention: &bsky.RichtextFacet_Mention{Did: did}}},
	}
}

func tagF(start, end int64, tag string) *bsky.RichtextFacet {
	return &bsky.RichtextFacet{
		Index:    &bsky.RichtextFacet_ByteSlice{ByteStart: start, ByteEnd: end},
		Features: []*bsky.RichtextFacet_Features_Elem{{RichtextFacet_Tag: &bsky.RichtextFacet_Tag{Tag: tag}}},
	}
}

func TestRender(t *testing.T) {
	const emojiText = "👨‍👩‍👧 é see https://a.example/x ok" // family emoji (18 bytes) + e + combining acute
	emojiStart := int64(strings.Index(emojiText, "https://"))
	tests := []struct {
		name   string
		text   string
		facets []*bsky.RichtextFacet
		links  Links
		want   []Segment
	}{
		{"no facets gives one plain segment", "hello", nil, testLinks, []Segment{{Text: "hello"}}},
		{"empty text gives no segments", "", nil, testLinks, nil},
		{"valid link becomes link", "go https://example.com now",
			[]*bsky.RichtextFacet{linkF(3, 22, "https://example.com")}, testLinks,
			[]Segment{{Text: "go "}, {Text: "https://example.com", Kind: Link, Href: "https://example.com"}, {Text: " now"}}},
		{"valid mention links to profile", "hi @alice.test!",
			[]*bsky.RichtextFacet{mentionF(3, 14, "did:plc:abc123")}, testLinks,
			[]Segment{{Text: "hi "}, {Text: "@alice.test", Kind: Mention, Href: "https://bsky.app/profile/did:plc:abc123"}, {Text: "!"}}},
		{"did:web mention keeps percent escape", "@x",
			[]*bsky.RichtextFacet{mentionF(0, 2, "did:web:localhost%3A2590")}, testLinks,
			[]Segment{{Text: "@x", Kind: Mention, Href: "https://bsky.app/profile/did:web:localhost%3A2590"}}},
		{"tag links to tag page", "#go yes",
			[]*bsky.RichtextFacet{tagF(0, 3, "go")}, testLinks,
			[]Segment{{Text: "#go", Kind: Tag, Href: "https://bsky.app/hashtag/go"}, {Text: " yes"}}},
		{"tag without tag base is plain", "#go yes",
			[]*bsky.RichtextFacet{tagF(0, 3, "go")}, Links{ProfileBase: "https://bsky.app/profile"},
			[]Segment{{Text: "#go yes"}}},
		{"mention without profile base is plain", "@a",
			[]*bsky.RichtextFacet{mentionF(0, 2, "did:plc:abc")}, Links{},
			[]Segment{{Text: "@a"}}},
		{"invalid did mention is plain", "@a",
			[]*bsky.RichtextFacet{mentionF(0, 2, "javascript:alert(1)")}, testLinks,
			[]Segment{{Text: "@a"}}},
		{"emoji and combining mark before facet keep byte offsets", emojiText,
			[]*bsky.RichtextFacet{linkF(emojiStart, emojiStart+int64(len("https://a.example/x")), "https://a.example/x")}, testLinks,
			[]Segment{{Text: emojiText[:emojiStart]}, {Text: "https://a.example/x", Kind: Link, Href: "https://a.example/x"}, {Text: " ok"}}},
		{"out of range end is plain", "short",
			[]*bsky.RichtextFacet{linkF(0, 50, "https://example.com")}, testLinks, []Segment{{Text: "short"}}},
		{"negative start is plain", "short",
			[]*bsky.RichtextFacet{linkF(-1, 3, "https://example.com")}, testLinks, []Segment{{Text: "short"}}},
		{"reversed range is plain", "short",
			[]*bsky.RichtextFacet{linkF(4, 1, "https://example.com")}, testLinks, []Segment{{Text: "short"}}},
		{"empty range is plain", "short",
			[]*bsky.RichtextFacet{linkF(2, 2, "https://example.com")}, testLinks, []Segment{{Text: "short"}}},
		{"start inside a character is plain", "é link",
			[]*bsky.RichtextFacet{linkF(1, 7, "https://example.com")}, testLinks, []Segment{{Text: "é link"}}},
		{"end inside a character is plain", "ab😀",
			[]*bsky.RichtextFacet{linkF(0, 4, "https://example.com")}, testLinks, []Segment{{Text: "ab😀"}}},
		{"overlapping later facet is plain", "abcdefgh",
			[]*bsky.RichtextFacet{linkF(0, 4, "https://one.example"), linkF(2, 6, "https://two.example")}, testLinks,
			[]Segment{{Text: "abcd", Kind: Link, Href: "https://one.example"}, {Text: "efgh"}}},
		{"facets out of order are sorted", "ab cd",
			[]*bsky.RichtextFacet{linkF(3, 5, "https://two.example"), linkF(0, 2, "https://one.example")}, testLinks,
			[]Segment{{Text: "ab", Kind: Link, Href: "https://one.example"}, {Text: " "}, {Text: "cd", Kind: Link, Href: "https://two.example"}}},
		{"javascript link is plain", "click me",
			[]*bsky.RichtextFacet{linkF(0, 5, "javascript:alert(1)")}, testLinks, []Segment{{Text: "click me"}}},
		{"upper-case javascript link is plain", "click me",
			[]*bsky.RichtextFacet{linkF(0, 5, "JaVaScRiPt:alert(1)")}, testLinks, []Segment{{Text: "click me"}}},
		{"data link is plain", "click me",
			[]*bsky.RichtextFacet{linkF(0, 5, "data:text/html,<script>alert(1)</script>")}, testLinks, []Segment{{Text: "click me"}}},
		{"vbscript link is plain", "click me",
			[]*bsky.RichtextFacet{linkF(0, 5, "vbscript:msgbox")}, testLinks, []Segment{{Text: "click me"}}},
		{"link with leading space is plain", "click me",
			[]*bsky.RichtextFacet{linkF(0, 5, " https://example.com")}, testLinks, []Segment{{Text: "click me"}}},
		{"relative link is plain", "click me",
			[]*bsky.RichtextFacet{linkF(0, 5, "//evil.example/x")}, testLinks, []Segment{{Text: "click me"}}},
		{"link with user info is plain", "click me",
			[]*bsky.RichtextFacet{linkF(0, 5, "https://bank.example@evil.example/")}, testLinks, []Segment{{Text: "click me"}}},
		{"link with RLO in URL is plain", "click me",
			[]*bsky.RichtextFacet{linkF(0, 5, "https://example.com/\u202Egnp.exe")}, testLinks, []Segment{{Text: "click me"}}},
		{"nil facet and nil index are ignored", "x",
			[]*bsky.RichtextFacet{nil, {Features: nil}}, testLinks, []Segment{{Text: "x"}}},
		{"facet with no known feature is plain", "xyz",
			[]*bsky.RichtextFacet{{Index: &bsky.RichtextFacet_ByteSlice{ByteStart: 0, ByteEnd: 1}, Features: []*bsky.RichtextFacet_Features_Elem{{}}}}, testLinks,
			[]Segment{{Text: "xyz"}}},
		{"first usable feature wins", "xyz",
			[]*bsky.RichtextFacet{{Index: &bsky.RichtextFacet_ByteSlice{ByteStart: 0, ByteEnd: 1}, Features: []*bsky.RichtextFacet_Features_Elem{
				{RichtextFacet_Link: &bsky.RichtextFacet_Link{Uri: "javascript:x"}},
				{RichtextFacet_Link: &bsky.RichtextFacet_Link{Uri: "https://ok.example"}},
			}}}, testLinks,
			[]Segment{{Text: "x", Kind: Link, Href: "https://ok.example"}, {Text: "yz"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Render(tt.text, tt.facets, tt.links)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d segments %+v, want %+v", len(got), got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("segment %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			if joined := join(got); joined != tt.text {
				t.Fatalf("segments join to %q, want %q", joined, tt.text)
			}
		})
	}
}

func join(segs []Segment) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteString(s.Text)
	}
	return b.String()
}

func TestSegmentDisplayStripsBidiFromEverySegment(t *testing.T) {
	rlo := "\u202Etxt.exe\u202C"
	if got := (Segment{Text: "invoice_\u202Efdp.exe"}).Display(); got != "invoice_fdp.exe" {
		t.Fatalf("plain Display = %q, want bidi controls removed", got)
	}
	if got := (Segment{Text: rlo, Kind: Link, Href: "https://x.example"}).Display(); got != "txt.exe" {
		t.Fatalf("link Display = %q, want bidi controls removed", got)
	}
	if got := StripBidi("a\u2066b\u2069c\u200Fd"); got != "abcd" {
		t.Fatalf("StripBidi = %q", got)
	}
}

func TestSegmentIsLinkRechecksHref(t *testing.T) {
	tests := []struct {
		name string
		seg  Segment
		want bool
	}{
		{"https link is a link", Segment{Kind: Link, Href: "https://x.example"}, true},
		{"hand-built javascript segment is not a link", Segment{Kind: Link, Href: "javascript:alert(1)"}, false},
		{"plain with href is not a link", Segment{Kind: Plain, Href: "https://x.example"}, false},
		{"mention without href is not a link", Segment{Kind: Mention}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.seg.IsLink(); got != tt.want {
				t.Fatalf("IsLink = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPostURL(t *testing.T) {
	tests := []struct {
		name, uri, want string
		ok              bool
	}{
		{"post uri becomes web url", "at://did:plc:abc/app.bsky.feed.post/3k2a", "https://bsky.app/profile/did:plc:abc/post/3k2a", true},
		{"other collection is refused", "at://did:plc:abc/app.bsky.feed.like/3k2a", "", false},
		{"garbage is refused", "javascript:alert(1)", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := PostURL("https://bsky.app/profile", tt.uri)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("PostURL = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzRender(f *testing.F) {
	f.Add("hello https://example.com", int64(6), int64(25), "https://example.com", int64(0), int64(5))
	f.Add("👨‍👩‍👧 é @alice", int64(1), int64(3), "javascript:alert(1)", int64(-4), int64(100))
	f.Add("\u202Eabc", int64(0), int64(3), "https://x.example", int64(2), int64(1))
	f.Fuzz(func(t *testing.T, text string, s1, e1 int64, uri string, s2, e2 int64) {
		facets := []*bsky.RichtextFacet{linkF(s1, e1, uri), mentionF(s2, e2, "did:plc:abc"), tagF(s1, e2, uri)}
		segs := Render(text, facets, testLinks)
		if got := join(segs); got != text {
			t.Fatalf("segments join to %q, want %q", got, text)
		}
		for _, s := range segs {
			if s.Text == "" {
				t.Fatalf("empty segment in %+v", segs)
			}
			if s.Kind != Plain && !s.IsLink() {
				t.Fatalf("non-plain segment with unsafe href %+v", s)
			}
		}
	})
}

func BenchmarkRender(b *testing.B) {
	text := "Héllo 👨‍👩‍👧 @bob.test look https://example.com/p/1 and tell me"
	ms, ls := strings.Index(text, "@bob.test"), strings.Index(text, "https://")
	facets := []*bsky.RichtextFacet{mentionF(int64(ms), int64(ms+9), "did:plc:ewvi7nxzyoun6zhxrhs64oiz"), linkF(int64(ls), int64(ls+23), "https://example.com/p/1")}
	b.ReportAllocs()
	for b.Loop() {
		Render(text, facets, testLinks)
	}
}
