package notify

import (
	"regexp"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/rivo/uniseg"
)

func TestDeliveryMarkerIsStableShortAndDistinct(t *testing.T) {
	a := DeliveryMarker("at://did:plc:alice/dev.skydm.changeRequest/3kaaa", "did:plc:bob")
	if !regexp.MustCompile(`^\(skydm #[a-z2-7]{8}\)$`).MatchString(a) {
		t.Fatalf("marker %q has the wrong shape", a)
	}
	if b := DeliveryMarker("at://did:plc:alice/dev.skydm.changeRequest/3kaaa", "did:plc:bob"); a != b {
		t.Errorf("marker not stable: %q vs %q", a, b)
	}
	if c := DeliveryMarker("at://did:plc:alice/dev.skydm.changeRequest/3kaab", "did:plc:bob"); a == c {
		t.Errorf("two change requests share marker %q", a)
	}
	if d := DeliveryMarker("at://did:plc:alice/dev.skydm.changeRequest/3kaaa", "did:plc:carol"); a == d {
		t.Errorf("two recipients share marker %q", a)
	}
}

func TestChangeRequestMessageFacetCoversTheURLInBytes(t *testing.T) {
	for _, tc := range []struct {
		name, project, title, filedBy string
		wantPrefix                    string
	}{
		{"ascii", "Widgets", "Fix the bug", "", "New change request for your project “Widgets”: “Fix the bug”\n"},
		{"multibyte before the link", "日本語 🚀 proj", "Ünïcödé 👩‍👩‍👧‍👦 title", "", "New change request for your project “日本語 🚀 proj”"},
		{"notifier names the filer", "Widgets", "T", "alice.test", "alice.test filed a change request for your project “Widgets”"},
		{"control characters flattened", "A\nB", "line1\r\nline2\ttab", "", "New change request for your project “A B”: “line1 line2 tab”"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := "https://skydm.example/change-requests/did:plc:alice/3kaaa"
			m, err := ChangeRequestMessage(MessageParams{ProjectName: tc.project, Title: tc.title, URL: url,
				SubjectURI: "at://did:plc:alice/dev.skydm.changeRequest/3kaaa", RecipientDID: "did:plc:bob", FiledBy: tc.filedBy})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(m.Text, tc.wantPrefix) {
				t.Errorf("text %q does not start with %q", m.Text, tc.wantPrefix)
			}
			if got := m.Text[m.LinkStart:m.LinkEnd]; got != url {
				t.Errorf("facet covers %q, want %q", got, url)
			}
			f := m.Facets()[0]
			if f.Index.ByteStart != int64(m.LinkStart) || f.Index.ByteEnd != int64(m.LinkEnd) || f.Features[0].RichtextFacet_Link.Uri != url {
				t.Errorf("facet %+v", f)
			}
			if !strings.HasSuffix(m.Text, "\n"+m.Marker) {
				t.Errorf("text %q does not end with the marker %q", m.Text, m.Marker)
			}
		})
	}
}

func TestChangeRequestMessageFitsDMLimits(t *testing.T) {
	for _, tc := range []struct {
		name, project, title, url string
		wantShortened             bool
	}{
		{
			// lexicon maxima in graphemes and (almost) bytes: fits as is
			name:    "longest name and title fit",
			project: strings.Repeat("👩‍👩‍👧‍👦", 40), title: strings.Repeat("👩‍👩‍👧‍👦", 80),
			url: "https://skydm.example/change-requests/did:plc:alice/3kaaa",
		},
		{
			name:    "a very long link shortens the title",
			project: strings.Repeat("n", 100), title: strings.Repeat("t", 200),
			url:           "https://skydm.example/change-requests/" + strings.Repeat("x", 750),
			wantShortened: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ChangeRequestMessage(MessageParams{ProjectName: tc.project, Title: tc.title, URL: tc.url,
				SubjectURI: "at://did:plc:alice/dev.skydm.changeRequest/3kaaa", RecipientDID: "did:plc:bob"})
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Text) > MaxMessageBytes || uniseg.GraphemeClusterCount(m.Text) > MaxMessageGraphemes {
				t.Fatalf("text is %d bytes, %d graphemes", len(m.Text), uniseg.GraphemeClusterCount(m.Text))
			}
			if got := strings.Contains(m.Text, "…"); got != tc.wantShortened {
				t.Errorf("shortened = %v, want %v", got, tc.wantShortened)
			}
			if m.Text[m.LinkStart:m.LinkEnd] != tc.url || !strings.HasSuffix(m.Text, m.Marker) || !strings.Contains(m.Text, "“nnn") && tc.wantShortened {
				t.Errorf("text lost its parts: %q", m.Text)
			}
		})
	}
}

func TestChangeRequestMessageRejectsBadLinks(t *testing.T) {
	for _, url := range []string{"", "javascript:alert(1)", "/relative", "https://x.example/a b", "https://x.example/" + strings.Repeat("a", 20000)} {
		if _, err := ChangeRequestMessage(MessageParams{ProjectName: "P", Title: "T", URL: url,
			SubjectURI: syntax.ATURI("at://did:plc:a/c.d.e/r"), RecipientDID: "did:plc:b"}); err == nil {
			t.Errorf("URL %.40q accepted", url)
		}
	}
}
