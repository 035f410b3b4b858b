// Package views holds skydm's templ components: the layout, one file per
// page and the small shared pieces. Components take plain view models (this
// file) so they know nothing about sessions, OAuth or the database; every
// value is escaped by templ.
package views

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/rivo/uniseg"

	"github.com/skydm/skydm/internal/richtext"
)

// Account is a signed-in account as pages show it.
type Account struct {
	DID          string
	Handle       string // "" or "handle.invalid" when unknown or not verified
	AvatarURL    string // "" → initials
	HasChatScope bool   // the session may use chat.bsky.*
	Active       bool   // the account the app is currently acting as
}

// Name returns the handle when it is known and verified, else the DID.
func (a Account) Name() string {
	if a.Handle == "" || a.Handle == "handle.invalid" {
		return a.DID
	}
	return a.Handle
}

// Label returns Name as pages show it (ClampName).
func (a Account) Label() string { return ClampName(a.Name()) }

// Initials returns one upper-case grapheme standing for the account when it
// has no avatar: the first character of its handle, or "?" when none.
func (a Account) Initials() string {
	name := a.Handle
	if name == "" || name == "handle.invalid" {
		return "?"
	}
	name = strings.TrimPrefix(name, "@")
	first, _, _, _ := uniseg.FirstGraphemeClusterInString(name, -1)
	if first == "" {
		return "?"
	}
	return strings.ToUpper(first)
}

// avatarSrc returns AvatarURL when it is an absolute http(s) URL, else ""
// (then the initials are shown). templ does not sanitise <img src>.
func (a Account) avatarSrc() string {
	u, err := url.Parse(a.AvatarURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return a.AvatarURL
}

// Assets are the URLs of the static files every page links to, with a
// content version so they can be cached for long.
type Assets struct {
	CSS, JS, Icon string
}

// Page is what the layout needs for every page.
type Page struct {
	Title    string    // the page's own title; the layout appends the app name
	Nav      string    // which nav item is current: "home", "accounts", "signin", "projects", "change-requests"
	Current  *Account  // nil when signed out
	Accounts []Account // every signed-in account in this browser, active first
	Assets   Assets
	// Unread is the unread DM total shown next to Home in the nav (the DM
	// pages set it; dm.js keeps it current). 0 → the badge is hidden.
	Unread int
	// Skip is a second skip link after "Skip to content", e.g. to the
	// composer of a conversation; none when its Target is "".
	Skip Skip
}

// Skip is a skip link: Label, to the element whose id is Target.
type Skip struct{ Target, Label string }

// NoticeID is the id of the flash notice (Notice): a redirect after an
// action goes to "…?notice=<code>#" + NoticeID.
const NoticeID = "notice"

// SignedIn reports whether an account is active.
func (p Page) SignedIn() bool { return p.Current != nil }

func (p Page) ariaCurrent(item string) string {
	if p.Nav == item {
		return "page"
	}
	return "false"
}

// SignInForm is the state of the sign-in form.
type SignInForm struct {
	Identifier string // what the person typed, kept on error
	Error      string // shown next to the field; "" when none
	Notice     string // shown above the form, e.g. why they must sign in again
}

// ErrorView is what the error page shows.
type ErrorView struct {
	Status    int
	Title     string
	Message   string // safe for people: apperr.MessageOf, never err.Error()
	RequestID string // shown for internal errors so a report can be matched to the log
	// SignInAgain, when set, offers a button that signs this account in
	// again (e.g. to grant DM access); it is the handle or DID to use.
	SignInAgain string
	// Retry, when set, is a same-site path offered as a "Try again" link
	// (e.g. the page itself after an upstream failure).
	Retry string
}

// Home is what the home page shows.
type Home struct {
	Notice string // e.g. DMs need a new sign-in granting DM access
}

// navBadge shows the nav's unread count, "99+" above 99.
func navBadge(n int) string {
	if n > 99 {
		return "99+"
	}
	if n < 0 {
		n = 0
	}
	return strconv.Itoa(n)
}

// MaxNameGraphemes is how many characters (grapheme clusters) of a name the
// pages show. It is Bluesky's own limit on display names, so a name a PDS
// validated is never cut; longer ones come from records written without
// validation.
const MaxNameGraphemes = 64

// ClampName returns a name (display name, handle, DID, project name; also
// the page title) the way every page shows it: without bidi control
// characters (richtext.StripBidi), trimmed, and at most MaxNameGraphemes
// grapheme clusters, the last one "…" when it was longer. It never cuts
// inside a character or an emoji, and clamping twice changes nothing.
func ClampName(s string) string {
	return Shorten(strings.TrimSpace(richtext.StripBidi(s)), MaxNameGraphemes)
}

// Shorten returns s when it has at most n grapheme clusters, else its first
// n-1 followed by "…" (trailing spaces and newlines before the "…"
// dropped). It cuts only between grapheme clusters, so no multi-byte
// character or emoji sequence is split.
func Shorten(s string, n int) string {
	if len(s) <= n || n < 1 { // n bytes hold at most n graphemes
		return s
	}
	cut := 0 // where the n-th grapheme starts
	g := uniseg.NewGraphemes(s)
	for i := 0; g.Next(); i++ {
		switch i {
		case n - 1:
			cut, _ = g.Positions()
		case n:
			return strings.TrimRight(s[:cut], " \n") + "…"
		}
	}
	return s
}
