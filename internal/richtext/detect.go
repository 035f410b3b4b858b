package richtext

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// ResolveFunc resolves a handle (without '@') to a DID. An error, or a
// result that is not a valid DID, leaves the mention as plain text.
type ResolveFunc func(ctx context.Context, handle string) (did string, err error)

// MaxMentions bounds how many distinct handles one message may have
// resolved; further mentions stay plain text.
const MaxMentions = 10

// bareTLD reports whether a bare domain ("example.com/x") with this
// top-level domain (lower case) is turned into a link. The list is short on
// purpose: "file.txt", "node.js" or "e.g." must stay plain text.
func bareTLD(tld string) bool {
	switch tld {
	case "com", "org", "net", "edu", "gov", "io", "dev", "app", "social", "blog", "me", "co", "uk", "de",
		"fr", "nl", "eu", "jp", "ca", "au", "us", "info", "xyz", "news", "tech", "site", "online":
		return true
	}
	return false
}

// Detect finds link and mention facets in text a person typed, with UTF-8
// byte offsets into text, in order. Links are http:// or https:// URLs, and
// bare domains with a common top-level domain (linked as https://). A token
// only starts a link or mention at the start of the text, after whitespace
// or after '('; trailing punctuation (and an unbalanced ')') is left out.
// Mentions ("@handle") are resolved with resolve (nil resolves nothing);
// mentions that do not resolve, and those beyond MaxMentions distinct
// handles, stay plain text. Detect never fails; it returns nil when nothing
// is found, and for text that is not valid UTF-8 (which CheckLength refuses).
func Detect(ctx context.Context, text string, resolve ResolveFunc) []*bsky.RichtextFacet {
	if !utf8.ValidString(text) {
		return nil
	}
	var facets []*bsky.RichtextFacet
	resolved := map[string]string{} // normalized handle → DID ("" = unresolved)
	for start := 0; start < len(text); {
		// Skip whitespace.
		r, size := utf8.DecodeRuneInString(text[start:])
		if unicode.IsSpace(r) {
			start += size
			continue
		}
		end := start
		for end < len(text) {
			r, size := utf8.DecodeRuneInString(text[end:])
			if unicode.IsSpace(r) {
				break
			}
			end += size
		}
		tokStart := start
		for tokStart < end && text[tokStart] == '(' {
			tokStart++
		}
		if f := detectToken(ctx, text, tokStart, end, resolve, resolved); f != nil {
			facets = append(facets, f)
		}
		start = end
	}
	return facets
}

func detectToken(ctx context.Context, text string, start, end int, resolve ResolveFunc, resolved map[string]string) *bsky.RichtextFacet {
	tok := text[start:end]
	if tok == "" {
		return nil
	}
	if tok[0] == '@' {
		return detectMention(ctx, tok, start, resolve, resolved)
	}
	lower := strings.ToLower(tok)
	if strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "http://") {
		u := trimURL(tok)
		href, ok := SafeHref(u)
		if !ok {
			return nil
		}
		return linkFacet(start, start+len(u), href)
	}
	// Bare domain: labels of [a-z0-9-] separated by dots, then nothing or a
	// '/'-started path.
	u := trimURL(tok)
	host := u
	if i := strings.IndexByte(u, '/'); i >= 0 {
		host = u[:i]
	}
	if !bareDomain(host) {
		return nil
	}
	href, ok := SafeHref("https://" + u)
	if !ok {
		return nil
	}
	return linkFacet(start, start+len(u), href)
}

func detectMention(ctx context.Context, tok string, start int, resolve ResolveFunc, resolved map[string]string) *bsky.RichtextFacet {
	n := 1
	for n < len(tok) && isHandleByte(tok[n]) {
		n++
	}
	// A word boundary: no trailing dots or hyphens ("@alice.test." at the end of a sentence).
	for n > 1 && (tok[n-1] == '.' || tok[n-1] == '-') {
		n--
	}
	// The handle must end the token or be followed by punctuation, not by
	// other word characters (e.g. "@alice_x" is not "@alice").
	if n < len(tok) {
		r, _ := utf8.DecodeRuneInString(tok[n:])
		if r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) {
			return nil
		}
	}
	h, err := syntax.ParseHandle(tok[1:n])
	if err != nil || resolve == nil {
		return nil
	}
	key := h.Normalize().String()
	did, seen := resolved[key]
	if !seen {
		if len(resolved) >= MaxMentions {
			return nil
		}
		if d, err := resolve(ctx, key); err == nil {
			if pd, err := syntax.ParseDID(d); err == nil {
				did = pd.String()
			}
		}
		resolved[key] = did
	}
	if did == "" {
		return nil
	}
	return &bsky.RichtextFacet{
		Index: &bsky.RichtextFacet_ByteSlice{ByteStart: int64(start), ByteEnd: int64(start + n)},
		Features: []*bsky.RichtextFacet_Features_Elem{{
			RichtextFacet_Mention: &bsky.RichtextFacet_Mention{LexiconTypeID: "app.bsky.richtext.facet#mention", Did: did},
		}},
	}
}

func linkFacet(start, end int, href string) *bsky.RichtextFacet {
	return &bsky.RichtextFacet{
		Index: &bsky.RichtextFacet_ByteSlice{ByteStart: int64(start), ByteEnd: int64(end)},
		Features: []*bsky.RichtextFacet_Features_Elem{{
			RichtextFacet_Link: &bsky.RichtextFacet_Link{LexiconTypeID: "app.bsky.richtext.facet#link", Uri: href},
		}},
	}
}

func isHandleByte(c byte) bool {
	return c == '.' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// trimURL drops trailing punctuation that usually ends a sentence rather
// than a URL, and a closing parenthesis without an opening one in the URL.
func trimURL(s string) string {
	for len(s) > 0 {
		c := s[len(s)-1]
		switch {
		case strings.IndexByte(".,;:!?\"'>]}*", c) >= 0:
			s = s[:len(s)-1]
		case c == ')' && strings.Count(s, "(") < strings.Count(s, ")"):
			s = s[:len(s)-1]
		default:
			// Trailing non-ASCII punctuation such as ’ or ” or …
			r, size := utf8.DecodeLastRuneInString(s)
			if r >= utf8.RuneSelf && (unicode.IsPunct(r) || unicode.IsSymbol(r)) {
				s = s[:len(s)-size]
				continue
			}
			return s
		}
	}
	return s
}

// bareDomain reports whether host looks like a domain name with a TLD that
// bareTLD accepts: at least two labels of ASCII letters, digits and hyphens.
func bareDomain(host string) bool {
	labels := strings.Split(host, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
				return false
			}
		}
	}
	return bareTLD(strings.ToLower(labels[len(labels)-1]))
}
