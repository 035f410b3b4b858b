package views

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"
	"github.com/rivo/uniseg"
	"golang.org/x/net/html"

	"github.com/skydm/skydm/internal/richtext"
)

// longName is a display name of 400 grapheme clusters that a PDS holds when
// a profile is written without validation: multi-byte letters, a family
// emoji (one grapheme of seven code points) and flags, so a cut by bytes or
// by code points would show.
var longName = strings.Repeat("Zoë 👨‍👩‍👧 🇫🇷 ", 50)

// checkClamped fails unless got is a shortened form of full: valid UTF-8, at
// most MaxNameGraphemes grapheme clusters, ending in "…", and every other
// grapheme a whole grapheme of full, in order.
func checkClamped(t *testing.T, where, got, full string) {
	t.Helper()
	got = strings.TrimSpace(got)
	if !utf8.ValidString(got) {
		t.Fatalf("%s: %q is not valid UTF-8", where, got)
	}
	if n := uniseg.GraphemeClusterCount(got); n > MaxNameGraphemes {
		t.Fatalf("%s: %d graphemes shown, want at most %d: %q", where, n, MaxNameGraphemes, got)
	}
	head, ok := strings.CutSuffix(got, "…")
	if !ok {
		t.Fatalf("%s: %q does not end with an ellipsis", where, got)
	}
	head = strings.TrimSpace(head)
	// head is the first k whole graphemes of the name (trailing spaces trimmed).
	prefix := ""
	g := uniseg.NewGraphemes(strings.TrimSpace(full))
	for g.Next() {
		prefix += g.Str()
		if strings.TrimRight(prefix, " ") == head {
			return
		}
		if len(prefix) > len(head)+len(" ") {
			break
		}
	}
	t.Fatalf("%s: %q is not the name cut after a whole grapheme", where, head)
}

func TestClampNameCutsWholeGraphemes(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"family emoji", strings.Repeat("👨‍👩‍👧", 100)},
		{"flags", strings.Repeat("🇫🇷", 100)},
		{"combining marks", strings.Repeat("e\u0301", 100)},
		{"mixed", longName},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkClamped(t, "ClampName", ClampName(tc.in), tc.in)
			if again := ClampName(ClampName(tc.in)); again != ClampName(tc.in) {
				t.Fatalf("clamping twice changes the name: %q → %q", ClampName(tc.in), again)
			}
		})
	}
	if got := ClampName(strings.Repeat("é", MaxNameGraphemes)); got != strings.Repeat("é", MaxNameGraphemes) {
		t.Fatalf("a name of exactly %d graphemes was changed to %q", MaxNameGraphemes, got)
	}
}

func TestLongNamesAreClampedEverywhereTheyAreShown(t *testing.T) {
	long := MemberVM{DID: "did:plc:long", Name: longName, Handle: "long.test"}
	page := testPage()
	page.Title = ConvoTitle("", []MemberVM{long})
	page.Current = &Account{DID: "did:web:" + strings.Repeat("a", 300) + ".example", Handle: "handle.invalid", Active: true}
	page.Accounts = []Account{*page.Current}
	convo := ConvoVM{ID: "c1", Members: []MemberVM{long}, Now: dmNow, Messages: []MessageVM{
		{ID: "m1", SenderDID: long.DID, SenderName: long.Label(), Segments: []richtext.Segment{{Text: "hi"}}, SentAt: dmNow,
			Embed: &EmbedVM{AuthorName: longName, Text: "post"}},
	}}
	group := convo
	group.Members = []MemberVM{long, long, long}
	inbox := InboxVM{Tab: TabRequests, Now: dmNow, Convos: []ConvoRowVM{{ID: "c1", Members: []MemberVM{long}, Status: StatusRequest}}}
	pr := ProjectVM{Path: "/projects/x/y", Name: longName, OwnerName: longName}
	cr := ChangeRequestVM{Path: "/change-requests/x/y", Title: "t", ProjectName: longName, RequesterName: longName, OwnerName: longName,
		Deliveries: []DeliveryVM{{State: DeliverySent, Label: "Sent", SenderName: longName, RecipientName: longName}}}

	for _, tc := range []struct {
		name      string
		c         templ.Component
		selectors []string
	}{
		{"conversation", ConvoPage(page, convo), []string{"title", `[data-testid="convo-title"]`, `[data-testid="message"] .sender`, `.embed-author bdi`, `[data-testid="current-handle"]`}},
		{"group conversation", ConvoPage(page, group), []string{`[data-testid="convo-title"] bdi`}},
		{"requests", InboxPage(page, inbox), []string{`[data-testid="convo-names"] bdi`}},
		{"account", AccountPage(page), []string{`[data-testid="account-handle"]`}},
		{"projects", ProjectsPage(page, ProjectsView{Recent: []ProjectVM{pr}}), []string{`[data-testid="project-link"]`, `[data-testid="project-owner"]`}},
		{"project", ProjectPage(page, ProjectView{Project: pr, Requests: []ChangeRequestVM{cr}}), []string{`[data-testid="project-name"]`, `[data-testid="project-owner"]`, `.muted bdi`}},
		{"change request", ChangeRequestPage(page, ChangeRequestView{CR: cr, IsOwner: true}), []string{`[data-testid="cr-project-link"]`, `[data-testid="cr-requester"]`, `[data-testid="cr-owner"]`}},
		{"change requests", ChangeRequestsPage(page, ChangeRequestsView{Tab: TabIncoming, Rows: []ChangeRequestVM{cr}}), []string{`[data-testid="cr-row-requester"]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, _ := renderDoc(t, tc.c)
			for _, sel := range tc.selectors {
				s := doc.Find(sel)
				if s.Length() == 0 {
					t.Fatalf("%s: not found", sel)
				}
				s.Each(func(_ int, e *goquery.Selection) {
					full := longName
					switch {
					case sel == "title":
						full = strings.TrimSuffix(strings.TrimSpace(e.Text()), "· skydm")
						if uniseg.GraphemeClusterCount(full) > MaxNameGraphemes+2 {
							t.Fatalf("<title> is %d graphemes long", uniseg.GraphemeClusterCount(full))
						}
						return
					case strings.Contains(sel, "current-handle") || strings.Contains(sel, "account-handle"):
						full = page.Current.DID
					}
					checkClamped(t, sel, e.Text(), full)
				})
			}
		})
	}
}

// hasBidiControl reports whether s holds a character that reorders text
// invisibly.
func hasBidiControl(s string) bool { return richtext.StripBidi(s) != s }

// TestNoBidiControlReachesWhatPeopleRead renders every page that shows
// text from other people, each text carrying a right-to-left override,
// and checks that no text node people read holds a bidi control: the
// override in "invoice_\u202Efdp.exe" would show it as "invoice_exe.pdf".
// Only form fields (the person's own draft) keep the text as typed.
func TestNoBidiControlReachesWhatPeopleRead(t *testing.T) {
	const evil = "invoice_\u202Efdp.exe \u2067isolate\u2069 \u202Bembed\u202C \u200Fmark"
	mem := MemberVM{DID: "did:plc:evil", Name: "Eve" + evil, Handle: "eve.test"}
	convo := ConvoVM{ID: "c1", Members: []MemberVM{mem}, Now: dmNow, Messages: []MessageVM{
		{ID: "m1", SenderDID: mem.DID, SenderName: mem.Label(), SentAt: dmNow,
			Segments:  []richtext.Segment{{Text: "see " + evil + " "}, {Text: evil, Kind: richtext.Link, Href: "https://x.example/"}},
			ReplyTo:   &QuotedVM{ID: "m0", SenderName: "Eve" + evil, Text: evil},
			Embed:     &EmbedVM{AuthorName: evil, AuthorHandle: "eve.test", Text: evil, URL: "https://bsky.app/x"},
			Reactions: []ReactionVM{{Value: "❤️", Count: 1}}},
		{ID: "m2", System: true, SystemText: evil, SentAt: dmNow},
	}}
	inbox := InboxVM{Now: dmNow, Convos: []ConvoRowVM{{ID: "c1", Members: []MemberVM{mem}, LastPreview: evil, Status: StatusAccepted}}}
	pr := ProjectVM{Path: "/projects/x/y", Name: evil, Description: evil, OwnerName: evil}
	cr := ChangeRequestVM{Path: "/change-requests/x/y", Title: evil, Body: evil, ProjectName: evil, RequesterName: evil, OwnerName: evil,
		Deliveries: []DeliveryVM{{State: DeliveryNotDelivered, Label: "Not delivered", SenderName: evil, RecipientName: evil}}}
	page := testPage()
	page.Title = evil
	for _, tc := range []struct {
		name string
		c    templ.Component
	}{
		{"conversation", ConvoPage(page, convo)},
		{"inbox", InboxPage(page, inbox)},
		{"projects", ProjectsPage(page, ProjectsView{Recent: []ProjectVM{pr}, Mine: []ProjectVM{pr}})},
		{"project", ProjectPage(page, ProjectView{Project: pr, Requests: []ChangeRequestVM{cr}})},
		{"change request", ChangeRequestPage(page, ChangeRequestView{CR: cr, IsOwner: true})},
		{"change requests", ChangeRequestsPage(page, ChangeRequestsView{Tab: TabIncoming, Rows: []ChangeRequestVM{cr}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, _ := renderDoc(t, tc.c)
			if !strings.Contains(doc.Text(), "invoice_fdp.exe") {
				t.Fatalf("the text is not shown at all")
			}
			var walk func(n *html.Node)
			walk = func(n *html.Node) {
				if n.Type == html.ElementNode && n.Data == "textarea" {
					return
				}
				if n.Type == html.TextNode && hasBidiControl(n.Data) {
					t.Errorf("<%s> shows %q with a bidi control", n.Parent.Data, n.Data)
				}
				if n.Type == html.ElementNode {
					for _, a := range n.Attr {
						if (a.Key == "title" || a.Key == "aria-label") && hasBidiControl(a.Val) {
							t.Errorf("<%s %s=%q> has a bidi control", n.Data, a.Key, a.Val)
						}
					}
				}
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c)
				}
			}
			walk(doc.Nodes[0])
		})
	}
}
