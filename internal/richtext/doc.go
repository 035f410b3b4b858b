// Package richtext turns chat message text and its app.bsky.richtext.facet
// annotations into safe, ordered segments for the views, detects facets in
// text a person types, and checks the message length limits.
//
//   - render.go: [Render] reads facets (UTF-8 byte ranges) defensively. A
//     facet whose range is out of bounds, empty or reversed, not on a UTF-8
//     character boundary, or overlapping an earlier facet is dropped and its
//     text stays plain; so is a link whose URL is not http(s) ([SafeHref]) and
//     a mention whose DID does not parse. Concatenating the Text of the
//     segments always gives back the original text exactly.
//   - detect.go: [Detect] finds links (http(s) URLs and, conservatively, bare
//     domains with a common top-level domain) and @mentions (resolved to DIDs
//     through a callback) and returns facets with correct byte offsets.
//   - limits.go: [CheckLength] enforces chat's 1000 grapheme / 10000 byte
//     limits with a human message.
//
// Bidirectional text: Segment.Text is never altered (so a message is shown as
// it was written), and the views put every piece of untrusted text (message
// text, names, previews) inside an isolating element (<bdi> or dir="auto"),
// so an unterminated right-to-left override (U+202A–U+202E, U+2066–U+2069)
// cannot reorder anything outside it. For link, mention and tag segments the
// views show [Segment.Display], which additionally removes the bidi control
// characters, so a link's visible text cannot be disguised; and a link whose
// URL contains any control or bidi character is refused by [SafeHref].
package richtext
