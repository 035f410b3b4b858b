//go:build deps

// Package deps pins the modules skydm builds on so `go mod tidy` keeps them
// while the packages that use them are being written. Never compiled.
package deps

import (
	_ "github.com/PuerkitoBio/goquery"
	_ "github.com/a-h/templ"
	_ "github.com/bluesky-social/indigo/api/atproto"
	_ "github.com/bluesky-social/indigo/api/bsky"
	_ "github.com/bluesky-social/indigo/api/chat"
	_ "github.com/bluesky-social/indigo/atproto/atclient"
	_ "github.com/bluesky-social/indigo/atproto/atcrypto"
	_ "github.com/bluesky-social/indigo/atproto/auth"
	_ "github.com/bluesky-social/indigo/atproto/auth/oauth"
	_ "github.com/bluesky-social/indigo/atproto/identity"
	_ "github.com/bluesky-social/indigo/atproto/syntax"
	_ "github.com/bluesky-social/indigo/lex/util"
	_ "github.com/chromedp/chromedp"
	_ "github.com/gorilla/securecookie"
	_ "github.com/gorilla/sessions"
	_ "github.com/rivo/uniseg"
	_ "modernc.org/sqlite"
)
