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
// Bidirectional text: Segment.Text is never altered (the segments still
// concatenate to the text as written), but pages show text from other
// people through [StripBidi] ([Segment.Display] for message segments): the
// embedding, override and isolate controls (U+202A–U+202E, U+2066–U+2069)
// and the invisible marks (U+200E, U+200F, U+061C) are removed, so
// "invoice_<U+202E>fdp.exe" reads as written, not as "invoice_exe.pdf".
// Visible right-to-left letters still lay out by the Unicode bidi
// algorithm, and the views keep every such text in an isolating element
// (<bdi> or dir="auto") so it cannot reorder what is around it. A link
// whose URL contains any control or bidi character is refused by
// [SafeHref].
package richtext
