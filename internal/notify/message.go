package notify

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"unicode"

	appbsky "github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/rivo/uniseg"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
)

// Limits of a chat.bsky DM's text (chat.bsky.convo.defs#messageInput).
const (
	MaxMessageGraphemes = chatproxy.MaxMessageGraphemes
	MaxMessageBytes     = chatproxy.MaxMessageBytes
)

// MessageParams says what a change-request DM is about.
type MessageParams struct {
	ProjectName  string       // the project's name
	Title        string       // the change request's title
	URL          string       // absolute URL of the change request's page in skydm
	SubjectURI   syntax.ATURI // the change request record
	RecipientDID syntax.DID   // the project's owner
	// FiledBy names the requester (a handle, else the DID). Set it only
	// when the DM is sent by a notifier account rather than by the
	// requester, so the text can say who filed the request.
	FiledBy string
}

// Message is a DM ready to send: its text with the delivery marker at the
// end and one link facet over the URL.
type Message struct {
	Text      string
	LinkURL   string
	LinkStart int // UTF-8 byte offset of the link in Text (inclusive)
	LinkEnd   int // UTF-8 byte offset (exclusive)
	Marker    string
}

// DeliveryMarker returns the visible marker that ends the DM for one
// delivery: "(skydm #" + 8 lower-case base32 characters + ")", derived from
// the idempotency key (change request URI × recipient DID), so it is the
// same on every attempt and differs between deliveries (40 bits). The worker
// looks for it in the conversation before any retry of a DM that may already
// have been sent.
func DeliveryMarker(subject syntax.ATURI, recipient syntax.DID) string {
	sum := sha256.Sum256([]byte(subject.String() + "\n" + recipient.String()))
	tok := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))[:8]
	return "(skydm #" + tok + ")"
}

// ChangeRequestMessage composes the DM that tells a project's owner about a
// change request:
//
//	New change request for your project “NAME”: “TITLE”
//	https://skydm.example/change-requests/did:plc:…/3l…
//	(skydm #k3f9q2zd)
//
// (or "alice.test filed a change request for your project …" when FiledBy is
// set). The URL carries a link facet with correct UTF-8 byte offsets. Title
// and then name are shortened with "…" if the text would exceed the DM
// limits. It returns an *apperr.Error (Invalid) when the URL is missing, not
// http(s), or too long to fit.
func ChangeRequestMessage(p MessageParams) (Message, error) {
	if p.URL == "" || !(strings.HasPrefix(p.URL, "https://") || strings.HasPrefix(p.URL, "http://")) {
		return Message{}, apperr.New(apperr.Invalid, "The change request's link must be an http(s) URL.")
	}
	if strings.ContainsAny(p.URL, " \t\r\n") {
		return Message{}, apperr.New(apperr.Invalid, "The change request's link must not contain spaces.")
	}
	marker := DeliveryMarker(p.SubjectURI, p.RecipientDID)
	name, title := oneLine(p.ProjectName), oneLine(p.Title)
	filedBy := oneLine(p.FiledBy)
	for {
		m := compose(name, title, filedBy, p.URL, marker)
		if fits(m.Text) {
			return m, nil
		}
		switch {
		case uniseg.GraphemeClusterCount(title) > 20:
			title = shorten(title, uniseg.GraphemeClusterCount(title)*3/4)
		case uniseg.GraphemeClusterCount(name) > 20:
			name = shorten(name, uniseg.GraphemeClusterCount(name)*3/4)
		case uniseg.GraphemeClusterCount(filedBy) > 20:
			filedBy = shorten(filedBy, 20)
		default:
			return Message{}, apperr.New(apperr.Invalid, "The change request's link is too long to fit in a DM.")
		}
	}
}

func compose(name, title, filedBy, url, marker string) Message {
	var b strings.Builder
	if filedBy != "" {
		b.WriteString(filedBy)
		b.WriteString(" filed a change request for your project “")
	} else {
		b.WriteString("New change request for your project “")
	}
	b.WriteString(name)
	b.WriteString("”: “")
	b.WriteString(title)
	b.WriteString("”\n")
	start := b.Len()
	b.WriteString(url)
	end := b.Len()
	b.WriteString("\n")
	b.WriteString(marker)
	return Message{Text: b.String(), LinkURL: url, LinkStart: start, LinkEnd: end, Marker: marker}
}

func fits(text string) bool {
	return len(text) <= MaxMessageBytes && uniseg.GraphemeClusterCount(text) <= MaxMessageGraphemes
}

// shorten keeps the first n grapheme clusters of s and appends "…" when it
// cut anything.
func shorten(s string, n int) string {
	if n < 1 {
		n = 1
	}
	var b strings.Builder
	g := uniseg.NewGraphemes(s)
	for i := 0; g.Next(); i++ {
		if i == n {
			return strings.TrimRightFunc(b.String(), unicode.IsSpace) + "…"
		}
		b.WriteString(g.Str())
	}
	return s
}

// oneLine replaces control characters (newlines included) with spaces and
// collapses runs of white space.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

// Facets returns the message's link facet in the shape chat.bsky expects.
func (m Message) Facets() []*appbsky.RichtextFacet {
	if m.LinkURL == "" {
		return nil
	}
	return []*appbsky.RichtextFacet{{
		Index: &appbsky.RichtextFacet_ByteSlice{ByteStart: int64(m.LinkStart), ByteEnd: int64(m.LinkEnd)},
		Features: []*appbsky.RichtextFacet_Features_Elem{{
			RichtextFacet_Link: &appbsky.RichtextFacet_Link{LexiconTypeID: "app.bsky.richtext.facet#link", Uri: m.LinkURL},
		}},
	}}
}
