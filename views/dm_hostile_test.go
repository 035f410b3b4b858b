package views

import (
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"
	"github.com/bluesky-social/indigo/api/bsky"
	"golang.org/x/net/html"

	"github.com/skydm/skydm/internal/richtext"
)

const (
	xss   = `<script>alert(1)</script>`
	rlo   = "\u202E"
	jsURL = "javascript:alert(1)"
)

func hostileFacets(text string) []*bsky.RichtextFacet {
	at := func(sub string) (int64, int64) {
		i := strings.Index(text, sub)
		return int64(i), int64(i + len(sub))
	}
	s1, e1 := at("click")
	s2, e2 := at(xss)
	s3, e3 := at(rlo + "gnp.exe")
	return []*bsky.RichtextFacet{
		{Index: &bsky.RichtextFacet_ByteSlice{ByteStart: s1, ByteEnd: e1}, Features: []*bsky.RichtextFacet_Features_Elem{{RichtextFacet_Link: &bsky.RichtextFacet_Link{Uri: jsURL}}}},
		{Index: &bsky.RichtextFacet_ByteSlice{ByteStart: s2, ByteEnd: e2}, Features: []*bsky.RichtextFacet_Features_Elem{{RichtextFacet_Link: &bsky.RichtextFacet_Link{Uri: "https://ok.example/\"><script>alert(1)</script>"}}}},
		{Index: &bsky.RichtextFacet_ByteSlice{ByteStart: s3, ByteEnd: e3}, Features: []*bsky.RichtextFacet_Features_Elem{{RichtextFacet_Link: &bsky.RichtextFacet_Link{Uri: "https://ok.example/file"}}}},
		{Index: &bsky.RichtextFacet_ByteSlice{ByteStart: 2, ByteEnd: 500}, Features: []*bsky.RichtextFacet_Features_Elem{{RichtextFacet_Link: &bsky.RichtextFacet_Link{Uri: "https://out.example"}}}},
		{Index: &bsky.RichtextFacet_ByteSlice{ByteStart: 1, ByteEnd: 3}, Features: []*bsky.RichtextFacet_Features_Elem{{RichtextFacet_Mention: &bsky.RichtextFacet_Mention{Did: "did:plc:x"}}}},
		{Index: &bsky.RichtextFacet_ByteSlice{ByteStart: e1, ByteEnd: s1}, Features: []*bsky.RichtextFacet_Features_Elem{{RichtextFacet_Link: &bsky.RichtextFacet_Link{Uri: "https://reversed.example"}}}},
	}
}

func hostileMember() MemberVM {
	return MemberVM{DID: "did:plc:evil", Name: xss + rlo + "evil", Handle: `"><img src=x onerror=alert(1)>`, AvatarURL: jsURL}
}

func hostileConvo() ConvoVM {
	text := "é" + "click " + xss + " and " + rlo + "gnp.exe " + rlo + "unterminated override"
	mem := hostileMember()
	return ConvoVM{
		ID: `c"><script>alert(1)</script>`, Title: xss + rlo, Members: []MemberVM{mem, {DID: "did:plc:two", Name: "Two" + rlo}},
		EarlierCursor: `"><script>alert(1)</script>`, FormToken: `"><script>alert(1)</script>`,
		Draft: "</textarea>" + xss, Error: xss, Notice: xss, Status: StatusRequest, Now: dmNow, Selected: `m"1`,
		Messages: []MessageVM{{
			ID: `m"1`, SenderDID: mem.DID, SenderName: mem.Name, Segments: richtext.Render(text, hostileFacets(text), dmLinks),
			SentAt: dmNow, ReplyTo: &QuotedVM{ID: `"><script>`, SenderName: xss, Text: xss + rlo},
			Embed:     &EmbedVM{URL: jsURL, AuthorName: xss, AuthorHandle: xss, Text: xss + rlo},
			Reactions: []ReactionVM{{Value: xss, Count: 1}},
		}, {
			ID: "m2", System: true, SystemText: xss + rlo, SentAt: dmNow,
		}, {
			ID: "m3", SenderName: "x", Segments: []richtext.Segment{{Text: "forged", Kind: richtext.Link, Href: jsURL}}, SentAt: dmNow,
		}},
	}
}

func hostileInbox() InboxVM {
	return InboxVM{Now: dmNow, NextCursor: `"><script>alert(1)</script>`, Error: xss, Convos: []ConvoRowVM{{
		ID: `"><script>alert(1)</script>`, Members: []MemberVM{hostileMember()}, LastPreview: xss + rlo, LastAt: dmNow, Unread: 1,
	}}}
}

func TestHostileContentIsInert(t *testing.T) {
	pages := []struct {
		name string
		c    templ.Component
	}{
		{"convo page", ConvoPage(testPage(), hostileConvo())},
		{"inbox page", InboxPage(testPage(), hostileInbox())},
		{"new convo page", NewConvoPage(testPage(), NewConvoVM{Handle: `"><script>alert(1)</script>`, Error: xss})},
		{"settings page", SettingsPage(testPage(), SettingsVM{AllowIncoming: `"><script>`, Error: xss})},
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			doc, raw := renderDoc(t, p.c)
			t.Run("no script element from data", func(t *testing.T) {
				doc.Find("script").Each(func(_ int, s *goquery.Selection) {
					if src, _ := s.Attr("src"); !strings.HasPrefix(src, "/static/") || strings.TrimSpace(s.Text()) != "" {
						t.Fatalf("unexpected script element %q", src)
					}
				})
				if doc.Find("img[onerror], [onerror], [onclick]").Length() != 0 {
					t.Fatal("event handler attribute from data")
				}
			})
			t.Run("no javascript or data URL in any attribute", func(t *testing.T) {
				doc.Find("*").Each(func(_ int, s *goquery.Selection) {
					for _, a := range s.Nodes[0].Attr {
						v := strings.ToLower(strings.TrimSpace(a.Val))
						if strings.Contains(v, "javascript:") || strings.HasPrefix(v, "data:") || strings.HasPrefix(v, "vbscript:") {
							t.Fatalf("<%s %s=%q>", s.Nodes[0].Data, a.Key, a.Val)
						}
					}
				})
			})
			t.Run("hostile text is shown literally", func(t *testing.T) {
				if !strings.Contains(doc.Text(), xss) {
					t.Fatal("the script text is not shown as text")
				}
				if strings.Contains(raw, "<script>alert") {
					t.Fatal("raw markup contains an unescaped script tag")
				}
			})
			t.Run("every override character is inside an isolating element", func(t *testing.T) {
				var walk func(n *html.Node)
				walk = func(n *html.Node) {
					if n.Type == html.TextNode && strings.Contains(n.Data, rlo) && !isolated(n) {
						t.Fatalf("RLO in text %q of <%s> without an isolating ancestor", n.Data, n.Parent.Data)
					}
					for c := n.FirstChild; c != nil; c = c.NextSibling {
						walk(c)
					}
				}
				walk(doc.Nodes[0])
			})
		})
	}
}

// isolated reports whether text node n sits inside <bdi>, an element with a
// dir attribute, or a block-level paragraph of its own, before reaching the
// body (where an override could reorder surrounding content), or in <title>,
// <textarea> or an attribute-free text context the browser isolates anyway.
func isolated(n *html.Node) bool {
	for p := n.Parent; p != nil; p = p.Parent {
		if p.Type != html.ElementNode {
			continue
		}
		switch p.Data {
		case "bdi", "textarea", "title":
			return true
		}
		for _, a := range p.Attr {
			if a.Key == "dir" {
				return true
			}
		}
	}
	return false
}

func TestHostileConvoDetails(t *testing.T) {
	doc, _ := renderDoc(t, ConvoBody(hostileConvo()))
	msg := doc.Find(`[data-testid="message"]`).First()
	t.Run("javascript and out-of-range facets render as plain text", func(t *testing.T) {
		links := msg.Find(`[data-testid="message-text"] a`)
		// Only the https link over the script text and the one over the RLO
		// file name survive; javascript:, out-of-range, mid-character and
		// reversed facets are plain.
		if links.Length() != 2 {
			t.Fatalf("got %d links in the message text, want 2", links.Length())
		}
		if !strings.Contains(msg.Find(`[data-testid="message-text"]`).Text(), "click "+xss) {
			t.Fatal("message text not shown literally")
		}
	})
	t.Run("link text has overrides removed", func(t *testing.T) {
		if got := msg.Find(`[data-testid="message-text"] a`).Eq(1).Text(); got != "gnp.exe" {
			t.Fatalf("link text %q, want the override removed", got)
		}
	})
	t.Run("hand-built javascript segment is not a link", func(t *testing.T) {
		if doc.Find(`#m-m3 a[data-testid="link"]`).Length() != 0 || !strings.Contains(doc.Find(`#m-m3`).Text(), "forged") {
			t.Fatal("forged segment became a link or vanished")
		}
	})
	t.Run("javascript avatar falls back to initials", func(t *testing.T) {
		if doc.Find(`img[data-testid="avatar"]`).Length() != 0 || doc.Find(`[data-testid="avatar-initials"]`).First().Text() != "<" {
			t.Fatal("avatar not replaced by initials")
		}
	})
	t.Run("javascript embed URL has no link", func(t *testing.T) {
		if doc.Find(`[data-testid="embed-link"]`).Length() != 0 {
			t.Fatal("embed linked to javascript:")
		}
	})
	t.Run("draft stays inside the textarea", func(t *testing.T) {
		if got := doc.Find(`textarea[data-testid="draft"]`).Text(); got != "</textarea>"+xss {
			t.Fatalf("draft %q", got)
		}
	})
	t.Run("hand-written meta escapes ids", func(t *testing.T) {
		more := msg.Find(`[data-testid="more"]`).AttrOr("href", "")
		if more != `?sel=m%221#m-m"1` {
			t.Fatalf("more href %q", more)
		}
		if msg.AttrOr("id", "") != `m-m"1` {
			t.Fatalf("message id %q", msg.AttrOr("id", ""))
		}
	})
	t.Run("ids are escaped into paths", func(t *testing.T) {
		if a := doc.Find(`form[data-testid="composer"]`).AttrOr("action", ""); a != "/convos/c%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E/messages" {
			t.Fatalf("composer action %q", a)
		}
	})
}

func TestAppendEscapedMatchesTempl(t *testing.T) {
	for _, s := range []string{"", "plain 15:04", `<a href="x">'&'</a>`, "é\u202e<>", xss} {
		if got, want := string(dmAppendEscaped(nil, []byte(s))), templ.EscapeString(s); got != want {
			t.Fatalf("appendEscaped(%q) = %q, want %q", s, got, want)
		}
	}
}
