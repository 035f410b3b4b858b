package richtext

import (
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Kind says what a segment is.
type Kind uint8

// The kinds of segment.
const (
	Plain   Kind = iota // text only
	Link                // Href is an http(s) URL
	Mention             // Href is the profile URL of the mentioned DID
	Tag                 // Href is the tag's page
)

// String returns the kind's name ("plain", "link", "mention", "tag").
func (k Kind) String() string {
	switch k {
	case Link:
		return "link"
	case Mention:
		return "mention"
	case Tag:
		return "tag"
	}
	return "plain"
}

// Segment is a run of message text. Href is "" for Plain segments and is an
// absolute http(s) URL that passed [SafeHref] for the others.
type Segment struct {
	Text string
	Kind Kind
	Href string
}

// IsLink reports whether the segment should be shown as a link: its kind is
// not Plain and its Href starts with http:// or https:// and has no
// whitespace, control or bidi characters. Views call it rather than trusting
// Kind, so a Segment built by hand cannot smuggle in another scheme. (Render
// has already applied the full SafeHref check; this is the cheap re-check
// done on every render.)
func (s Segment) IsLink() bool {
	h := s.Href
	if s.Kind == Plain || len(h) > maxHref {
		return false
	}
	switch {
	case len(h) > 8 && strings.EqualFold(h[:8], "https://"):
	case len(h) > 7 && strings.EqualFold(h[:7], "http://"):
	default:
		return false
	}
	if !urlChars(h) {
		return false
	}
	return true
}

// Display returns the text to show for the segment: its text without bidi
// control characters (StripBidi), so an override cannot make the text, or
// a link, read differently from what was written.
func (s Segment) Display() string { return StripBidi(s.Text) }

// Links configures where mentions and tags point.
type Links struct {
	// ProfileBase is the URL a mention's DID is appended to, e.g.
	// "https://bsky.app/profile". "" or a non-http(s) base renders mentions
	// as plain text.
	ProfileBase string
	// TagBase is the URL a tag (path-escaped, without '#') is appended to,
	// e.g. "https://bsky.app/hashtag". "" renders tags as plain text.
	TagBase string
}

// lazyLinks checks each base of the Links of one Render call on first use
// only (SafeHref; "" when unsafe), with trailing slashes removed.
type lazyLinks struct {
	raw                Links
	profile, tag       string
	profileOK, tagDone bool
}

func (l *lazyLinks) profileBase() string {
	if !l.profileOK {
		l.profile, l.profileOK = checkedBase(l.raw.ProfileBase), true
	}
	return l.profile
}

func (l *lazyLinks) tagBase() string {
	if !l.tagDone {
		l.tag, l.tagDone = checkedBase(l.raw.TagBase), true
	}
	return l.tag
}

func checkedBase(base string) string {
	if _, ok := SafeHref(base); !ok {
		return ""
	}
	return strings.TrimRight(base, "/")
}

// Render splits text into ordered segments following facets. Facets that are
// nil, have no index, an out-of-range, empty or reversed range, a boundary
// inside a UTF-8 character, a range overlapping an earlier (by start) facet,
// or no usable feature are dropped, and their text is rendered as plain text.
// For a facet with several features the first usable one wins. Render never
// fails and never panics; the segments' Text concatenated equals text.
func Render(text string, facets []*bsky.RichtextFacet, links Links) []Segment {
	if len(facets) == 0 {
		if text == "" {
			return nil
		}
		return []Segment{{Text: text}}
	}
	type span struct {
		start, end int
		kind       Kind
		href       string
	}
	lk := &lazyLinks{raw: links}
	spans := make([]span, 0, len(facets))
	sorted := true
	for _, f := range facets {
		if f == nil || f.Index == nil {
			continue
		}
		s, e := f.Index.ByteStart, f.Index.ByteEnd
		if s < 0 || e > int64(len(text)) || s >= e {
			continue
		}
		start, end := int(s), int(e)
		if !utf8.RuneStart(text[start]) || (end < len(text) && !utf8.RuneStart(text[end])) {
			continue
		}
		kind, href, ok := feature(f.Features, lk)
		if !ok {
			continue
		}
		if n := len(spans); n > 0 && spans[n-1].start > start {
			sorted = false
		}
		spans = append(spans, span{start, end, kind, href})
	}
	if !sorted {
		slices.SortStableFunc(spans, func(a, b span) int { return a.start - b.start })
	}

	segs := make([]Segment, 0, 2*len(spans)+1)
	pos := 0
	for _, sp := range spans {
		if sp.start < pos { // overlaps a facet already taken
			continue
		}
		if sp.start > pos {
			segs = append(segs, Segment{Text: text[pos:sp.start]})
		}
		segs = append(segs, Segment{Text: text[sp.start:sp.end], Kind: sp.kind, Href: sp.href})
		pos = sp.end
	}
	if pos < len(text) {
		segs = append(segs, Segment{Text: text[pos:]})
	}
	return segs
}

// feature returns the first usable feature of a facet.
func feature(features []*bsky.RichtextFacet_Features_Elem, lk *lazyLinks) (Kind, string, bool) {
	for _, ft := range features {
		switch {
		case ft == nil:
		case ft.RichtextFacet_Link != nil:
			if href, ok := SafeHref(ft.RichtextFacet_Link.Uri); ok {
				return Link, href, true
			}
		case ft.RichtextFacet_Mention != nil:
			// links.ProfileBase passed SafeHref (checked) and a DID is only
			// [a-zA-Z0-9._:%-], so the joined URL is safe too.
			if base := lk.profileBase(); base != "" {
				if d, err := syntax.ParseDID(ft.RichtextFacet_Mention.Did); err == nil {
					return Mention, base + "/" + d.String(), true
				}
			}
		case ft.RichtextFacet_Tag != nil:
			if href, ok := tagURL(lk.tagBase(), ft.RichtextFacet_Tag.Tag); ok {
				return Tag, href, true
			}
		}
	}
	return Plain, "", false
}

// ProfileURL returns base + "/" + did when did is a syntactically valid DID
// and base is a safe http(s) URL; ok is false otherwise.
func ProfileURL(base, did string) (href string, ok bool) {
	if base == "" {
		return "", false
	}
	d, err := syntax.ParseDID(did)
	if err != nil {
		return "", false
	}
	return SafeHref(strings.TrimSuffix(base, "/") + "/" + d.String())
}

// PostURL returns the web URL of the post an at:// URI names, such as
// base/did:plc:x/post/3k... for at://did:plc:x/app.bsky.feed.post/3k..., with
// base a profile base like "https://bsky.app/profile". ok is false when the
// URI does not parse or does not name an app.bsky.feed.post record.
func PostURL(base, atURI string) (href string, ok bool) {
	u, err := syntax.ParseATURI(atURI)
	if err != nil || base == "" || u.Collection() != "app.bsky.feed.post" || u.RecordKey() == "" {
		return "", false
	}
	return SafeHref(strings.TrimSuffix(base, "/") + "/" + u.Authority().String() + "/post/" + u.RecordKey().String())
}

func tagURL(base, tag string) (string, bool) {
	tag = strings.TrimPrefix(tag, "#")
	if base == "" || tag == "" || len(tag) > 640 || strings.IndexFunc(tag, unsafeRune) >= 0 || strings.ContainsAny(tag, " \t\n") {
		return "", false
	}
	return SafeHref(strings.TrimSuffix(base, "/") + "/" + url.PathEscape(tag))
}

// maxHref bounds the URLs rendered as links.
const maxHref = 2048

// SafeHref returns raw unchanged with ok true when it is an absolute http or
// https URL with a host, no user-info, and no whitespace, control or bidi
// control characters; otherwise it returns "" and false. Every href the
// views render from data passes through it (javascript:, data:, vbscript:
// and relative URLs are all refused).
func SafeHref(raw string) (href string, ok bool) {
	if raw == "" || len(raw) > maxHref {
		return "", false
	}
	// Fast scheme check before parsing.
	var rest string
	switch {
	case len(raw) > 8 && strings.EqualFold(raw[:8], "https://"):
		rest = raw[8:]
	case len(raw) > 7 && strings.EqualFold(raw[:7], "http://"):
		rest = raw[7:]
	default:
		return "", false
	}
	if rest == "" || rest[0] == '/' {
		return "", false
	}
	if !urlChars(raw) {
		return "", false
	}
	if !alwaysParse && plainAuthority(rest) {
		return raw, true // what url.Parse would accept: no need to parse
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	if s := strings.ToLower(u.Scheme); s != "http" && s != "https" {
		return "", false
	}
	return raw, true
}

// alwaysParse turns SafeHref's plainAuthority shortcut off, so tests can
// check that it never changes an answer.
var alwaysParse = false

// plainAuthority reports whether rest (a URL after "http(s)://") starts
// with a host of letters, digits, dots and hyphens and an optional :port of
// digits, followed by the end, "/", "?" or "#", with no "%" anywhere:
// url.Parse accepts every such URL, with that host and no user-info, so
// SafeHref need not parse it (avatars and most links are like this).
func plainAuthority(rest string) bool {
	if strings.IndexByte(rest, '%') >= 0 {
		return false
	}
	i, colon := 0, -1
	for ; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '.', c == '-':
			if colon >= 0 {
				return false
			}
		case c >= '0' && c <= '9':
		case c == ':' && colon < 0:
			colon = i
		case c == '/' || c == '?' || c == '#':
			return i > 0 && colon != 0 && colon != i-1
		default:
			return false
		}
	}
	return i > 0 && colon != 0 && colon != i-1
}

// isBidiControl reports whether r is a bidirectional formatting character:
// embeddings and overrides (U+202A–U+202E), isolates (U+2066–U+2069), the
// marks LRM, RLM (U+200E, U+200F) and ALM (U+061C).
func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) || r == 0x200E || r == 0x200F || r == 0x061C
}

// unsafeRune reports characters never allowed in a URL or tag: C0/C1
// controls, DEL, bidi controls and the zero-width/invisible formatters.
func unsafeRune(r rune) bool {
	return r < 0x20 || (r >= 0x7F && r <= 0x9F) || isBidiControl(r) ||
		(r >= 0x200B && r <= 0x200D) || r == 0x2060 || r == 0xFEFF
}

// urlChars reports whether s has no space, control, bidi control or
// invisible character (unsafeRune) and is valid UTF-8: the characters every
// href must be free of. ASCII is checked byte by byte; only other runes are
// decoded.
func urlChars(s string) bool {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c <= ' ' || c == 0x7F {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unsafeRune(r) {
			return false
		}
		i += n
	}
	return true
}

// StripBidi returns s without bidi control characters (see isBidiControl).
// It returns s itself when there are none. It is the one rule for text from
// other people that pages show (message text, link text, previews, names,
// project and change-request text): invisible characters never decide the
// order in which the visible ones are read.
func StripBidi(s string) string {
	// Every bidi control is encoded starting with 0xE2 (U+200E–U+2069) or
	// 0xD8 (U+061C): text with neither byte has none, found without
	// decoding it.
	if strings.IndexByte(s, 0xE2) < 0 && strings.IndexByte(s, 0xD8) < 0 {
		return s
	}
	if strings.IndexFunc(s, isBidiControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isBidiControl(r) {
			return -1
		}
		return r
	}, s)
}
