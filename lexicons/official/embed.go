// Package official embeds the vendored official lexicons (chat.bsky and the
// app.bsky / com.atproto files they reference; see README.md) for tools and
// tests that load them into a lexicon catalog.
package official

import "embed"

// FS holds the lexicon JSON files, under "chat/", "app/" and "com/".
//
//go:embed chat app com
var FS embed.FS
