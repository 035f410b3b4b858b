package richtext

import (
	"context"
	"errors"
	"testing"
)

type wantFacet struct {
	text string // the facet's text, text[start:end]
	uri  string // link URI, or "" for a mention
	did  string // mention DID
}

func fakeResolver(calls *int) ResolveFunc {
	dids := map[string]string{"alice.test": "did:plc:alice", "bob.example.com": "did:plc:bob", "evil.test": "not a did"}
	return func(ctx context.Context, handle string) (string, error) {
		*calls++
		if d, ok := dids[handle]; ok {
			return d, nil
		}
		return "", errors.New("not found")
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []wantFacet
	}{
		{"plain text has no facets", "hello there", nil},
		{"https url is a link", "see https://example.com/a?b=c#d now", []wantFacet{{text: "https://example.com/a?b=c#d", uri: "https://example.com/a?b=c#d"}}},
		{"trailing sentence punctuation is left out", "go to https://example.com/x.", []wantFacet{{text: "https://example.com/x", uri: "https://example.com/x"}}},
		{"url in parentheses drops the closing one", "(https://example.com/x)", []wantFacet{{text: "https://example.com/x", uri: "https://example.com/x"}}},
		{"balanced parentheses are kept", "https://en.wikipedia.org/wiki/Go_(game)", []wantFacet{{text: "https://en.wikipedia.org/wiki/Go_(game)", uri: "https://en.wikipedia.org/wiki/Go_(game)"}}},
		{"bare domain becomes https link", "try example.com/path, ok", []wantFacet{{text: "example.com/path", uri: "https://example.com/path"}}},
		{"file names stay plain", "open main.go and node.js and e.g. this", nil},
		{"numbers stay plain", "version 1.5.2", nil},
		{"email address stays plain", "mail bob@example.com", nil},
		{"javascript url stays plain", "javascript:alert(1)", nil},
		{"scheme without host stays plain", "https:// nothing", nil},
		{"resolved mention gets its did", "hi @alice.test!", []wantFacet{{text: "@alice.test", did: "did:plc:alice"}}},
		{"mention is case-insensitive", "hi @Alice.Test", []wantFacet{{text: "@Alice.Test", did: "did:plc:alice"}}},
		{"unresolved mention stays plain", "hi @nobody.test", nil},
		{"resolver returning a non-did stays plain", "hi @evil.test", nil},
		{"mention at end of sentence drops the dot", "ask @alice.test.", []wantFacet{{text: "@alice.test", did: "did:plc:alice"}}},
		{"mention glued to a word stays plain", "x@alice.test", nil},
		{"mention followed by underscore stays plain", "@alice.test_x", nil},
		{"emoji and combining marks before facets keep byte offsets",
			"👨‍👩‍👧‍👦 é 🇫🇷 @alice.test https://ex.example/ü",
			[]wantFacet{{text: "@alice.test", did: "did:plc:alice"}, {text: "https://ex.example/ü", uri: "https://ex.example/ü"}}},
		{"invalid UTF-8 gets no facets", "hi https://a.example \xa7", nil},
		{"newline separates tokens", "line\nhttps://a.example\n@bob.example.com", []wantFacet{{text: "https://a.example", uri: "https://a.example"}, {text: "@bob.example.com", did: "did:plc:bob"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			got := Detect(context.Background(), tt.text, fakeResolver(&calls))
			if len(got) != len(tt.want) {
				t.Fatalf("got %d facets, want %d", len(got), len(tt.want))
			}
			for i, f := range got {
				text := tt.text[f.Index.ByteStart:f.Index.ByteEnd]
				if text != tt.want[i].text {
					t.Fatalf("facet %d covers %q, want %q", i, text, tt.want[i].text)
				}
				ft := f.Features[0]
				switch {
				case tt.want[i].uri != "":
					if ft.RichtextFacet_Link == nil || ft.RichtextFacet_Link.Uri != tt.want[i].uri {
						t.Fatalf("facet %d feature %+v, want link %q", i, ft, tt.want[i].uri)
					}
				default:
					if ft.RichtextFacet_Mention == nil || ft.RichtextFacet_Mention.Did != tt.want[i].did {
						t.Fatalf("facet %d feature %+v, want mention %q", i, ft, tt.want[i].did)
					}
				}
			}
			// What Detect finds, Render shows.
			segs := Render(tt.text, got, testLinks)
			links := 0
			for _, s := range segs {
				if s.Kind != Plain {
					links++
				}
			}
			if links != len(tt.want) {
				t.Fatalf("Render made %d links of %d detected facets", links, len(tt.want))
			}
		})
	}
}

func TestDetectResolvesEachHandleOnceAndBoundsMentions(t *testing.T) {
	calls := 0
	text := "@alice.test @alice.test @ALICE.test"
	if got := Detect(context.Background(), text, fakeResolver(&calls)); len(got) != 3 || calls != 1 {
		t.Fatalf("got %d facets with %d resolver calls, want 3 and 1", len(got), calls)
	}
	calls = 0
	text = ""
	for i := 0; i < MaxMentions+5; i++ {
		text += "@u" + string(rune('a'+i)) + ".test "
	}
	Detect(context.Background(), text, fakeResolver(&calls))
	if calls != MaxMentions {
		t.Fatalf("resolver called %d times, want at most %d", calls, MaxMentions)
	}
}

func TestDetectWithoutResolverFindsOnlyLinks(t *testing.T) {
	got := Detect(context.Background(), "@alice.test https://a.example", nil)
	if len(got) != 1 || got[0].Features[0].RichtextFacet_Link == nil {
		t.Fatalf("got %+v, want one link", got)
	}
}

func FuzzDetect(f *testing.F) {
	f.Add("hi @alice.test see https://a.example/x (example.com) 👨‍👩‍👧 é")
	f.Add("@@ https:// (https://x.y/(a)) e.g. @alice.test.")
	f.Fuzz(func(t *testing.T, text string) {
		calls := 0
		facets := Detect(context.Background(), text, fakeResolver(&calls))
		prev := int64(0)
		for _, fc := range facets {
			s, e := fc.Index.ByteStart, fc.Index.ByteEnd
			if s < prev || s >= e || e > int64(len(text)) {
				t.Fatalf("bad range [%d,%d) after %d in %q", s, e, prev, text)
			}
			prev = e
		}
		// Every detected facet survives Render (ranges valid, hrefs safe).
		n := 0
		for _, seg := range Render(text, facets, testLinks) {
			if seg.Kind != Plain {
				n++
			}
		}
		if n != len(facets) {
			t.Fatalf("Render kept %d of %d facets for %q", n, len(facets), text)
		}
	})
}
