package views

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rivo/uniseg"

	"github.com/skydm/skydm/internal/richtext"
)

// View models of the DM pages (inbox, conversation, new conversation, chat
// settings). They hold plain values: the handlers convert indigo's chat
// types into them, so the components know nothing of the API. Every string
// is untrusted and is escaped by templ; URLs are rendered only after
// richtext.SafeHref accepts them.

// DMAssets are the versioned URLs of dm.css and dm.js, like Assets. Empty
// fields are not linked (the pages still work; they are just plainer).
type DMAssets struct {
	CSS, JS string
	// GroupCSS and GroupJS (group.css, group.js) are linked on group
	// conversation pages only.
	GroupCSS, GroupJS string
	// ManageCSS and ManageJS (manage.css, manage.js) are linked on the
	// pages around a group (new group, members, invite link, join requests,
	// joining, reports) only.
	ManageCSS, ManageJS string
}

// Inbox tabs and conversation statuses (the chat.bsky "status" values).
const (
	TabAccepted    = "accepted" // the inbox: accepted conversations
	TabRequests    = "requests" // message requests (status=request)
	StatusAccepted = "accepted"
	StatusRequest  = "request"
)

// Who may start a conversation with the viewer (chat.bsky.actor.declaration
// allowIncoming).
const (
	AllowAll       = "all"
	AllowFollowing = "following"
	AllowNone      = "none"
)

// MemberVM is a member of a conversation as the pages show them.
type MemberVM struct {
	DID       string
	Name      string // display name; "" → the handle is shown
	Handle    string // "" or "handle.invalid" when unknown
	AvatarURL string // "" or not http(s) → initials
	Initials  string // optional; "" → computed from Name, else Handle
}

// Label returns the name to show (ClampName): the display name, else the
// handle, else the DID.
func (m MemberVM) Label() string {
	if name := ClampName(m.Name); name != "" {
		return name
	}
	if h := m.validHandle(); h != "" {
		return ClampName(h)
	}
	return ClampName(m.DID)
}

// validHandle returns the handle when it is known and verified, else "".
func (m MemberVM) validHandle() string {
	if m.Handle == "handle.invalid" {
		return ""
	}
	return m.Handle
}

// initials returns Initials, or the first grapheme of the display name (or
// handle) in upper case, or "?".
func (m MemberVM) initials() string {
	if m.Initials != "" {
		return m.Initials
	}
	name := strings.TrimSpace(richtext.StripBidi(m.Name))
	if name == "" {
		name = strings.TrimPrefix(m.validHandle(), "@")
	}
	first, _, _, _ := uniseg.FirstGraphemeClusterInString(name, -1)
	if first == "" {
		return "?"
	}
	return strings.ToUpper(first)
}

// ConvoRowVM is one conversation in the inbox.
type ConvoRowVM struct {
	ID          string
	Members     []MemberVM // the other members (the viewer left out)
	LastPreview string     // last message text, "Reacted ❤️ to …", "Message deleted"; "" → "No messages yet"
	LastAt      time.Time  // zero → no time shown
	Unread      int
	Muted       bool
	Status      string // StatusAccepted or StatusRequest

	// GroupConvo is set for a group conversation: its name, member count
	// and lock; nil for a direct one.
	GroupConvo *GroupConvoVM
	// PreviewQuiet is set when LastPreview is a system message ("Bob
	// added Carol"), shown as quiet text.
	PreviewQuiet bool
}

// InboxVM is what the inbox (/) shows.
type InboxVM struct {
	Assets       DMAssets
	Convos       []ConvoRowVM // newest first
	Tab          string       // TabAccepted ("" is the same) or TabRequests
	RequestCount int          // shown on the Requests tab
	UnreadTotal  int          // unread messages in accepted conversations
	UnreadOnly   bool         // the "Unread only" filter is on
	NextCursor   string       // "" → no "Load more"
	Paged        bool         // this page was loaded with a cursor: live updates do not insert rows into it
	Error        string       // shown as an alert above the list (e.g. upstream unavailable)
	Notice       string
	Now          time.Time      // for relative times
	Loc          *time.Location // nil → UTC
}

// ConvoVM is what a conversation page (/convos/{id}) shows.
type ConvoVM struct {
	Assets  DMAssets
	ID      string
	Title   string     // "" → the members' names
	Members []MemberVM // the other members (the viewer left out)
	// Messages are oldest first (newest at the bottom).
	Messages []MessageVM
	// EarlierCursor, when set, adds a "Load earlier messages" link to
	// /convos/{id}?cursor=EarlierCursor.
	EarlierCursor string
	// Earlier is set when the page shows an earlier page of messages (a
	// cursor was given); a link back to the latest messages is shown and
	// live updates do not append to it.
	Earlier bool
	Status  string // StatusRequest → the request banner (Accept / Leave)
	Muted   bool
	Unread  int        // the viewer's unread messages here; > 0 → dm.js marks it read once the page is seen
	Draft   string     // the composer's text, kept on error
	ReplyTo *MessageVM // the message being replied to (?reply=<id>), or nil
	// ReplyMissing is set when ?reply= named a message that is not in the
	// conversation: the composer says so and sends a plain message.
	ReplyMissing bool
	// AtMore, when set, is the cursor to keep looking for the ?at= message
	// further back than one search goes: a "Keep looking" link.
	AtMore string
	// At is the ?at= message the page was opened at, or "".
	At        string
	Selected  string // the message whose action panel is open (?sel=<id>), or ""
	FormToken string // one-time token of the composer form
	Error     string // shown next to the composer (send, reaction and action errors)
	Notice    string // shown above the messages
	ViewerDID string
	Block     BlockVM        // a block with the other member of a direct conversation
	Now       time.Time      // for "Today" / "Yesterday"
	Loc       *time.Location // nil → UTC

	// GroupConvo is set for a group conversation (Title is then its name):
	// member count and lock; nil for a direct one.
	GroupConvo *GroupConvoVM
}

// NewestID returns the id of the newest message the page shows ("" when
// none): the Mark read form marks the conversation read up to it, so a
// message that arrives after the page was rendered stays unread.
func (c ConvoVM) NewestID() string {
	for _, m := range slices.Backward(c.Messages) {
		if m.ID != "" {
			return m.ID
		}
	}
	return ""
}

// Group reports whether the conversation has more than one other member;
// the message list is then marked data-group and dm.css shows sender names
// on others' messages (in one-to-one conversations they are for screen
// readers only).
func (c ConvoVM) Group() bool { return c.GroupConvo != nil || len(c.Members) > 1 }

// MsgContext returns what MessageItem needs besides the message.
func (c ConvoVM) MsgContext() MsgContext {
	return MsgContext{ConvoID: c.ID, Selected: c.Selected, Loc: dmLoc(c.Loc), base: ConvoURL(c.ID), Group: c.Group()}
}

// MsgContext is what MessageItem needs to know about the conversation a
// message is shown in. Live updates build it from the convo id and its
// member count.
type MsgContext struct {
	ConvoID  string
	Selected string         // message id whose action panel is open (?sel=)
	Loc      *time.Location // nil → UTC
	base     string         // ConvoURL(ConvoID), computed once per page

	// Group shows the others' avatars beside their messages (the first of
	// a run only).
	Group bool
}

// msgURL returns MessageActionURL(ConvoID, msgID, action).
func (c MsgContext) msgURL(msgID, action string) string {
	return c.url() + "/messages/" + url.PathEscape(msgID) + "/" + action
}

// url returns the conversation's URL.
func (c MsgContext) url() string {
	if c.base != "" {
		return c.base
	}
	return ConvoURL(c.ConvoID)
}

// MessageVM is one message (or placeholder) in a conversation.
type MessageVM struct {
	ID          string
	Rev         string
	SenderDID   string
	SenderName  string // display name or handle; "" → "Someone"
	Own         bool   // sent by the viewer
	Segments    []richtext.Segment
	Embed       *EmbedVM // app.bsky.embed.record → a card linking to the post
	Reactions   []ReactionVM
	ReplyTo     *QuotedVM
	Deleted     bool   // "Message deleted" placeholder
	System      bool   // a system message (member added, convo locked…); SystemText says what
	SystemText  string // e.g. "Alice added Bob"; "" → "Conversation updated"
	Unsupported bool   // a kind of message this app cannot show
	SentAt      time.Time

	// SenderAvatar is the sender's picture (http(s) only), or "" for their
	// initials; shown in groups (MsgContext.Group).
	SenderAvatar string
	// Continued is set when the message before it on the page is from the
	// same sender on the same day: its name and avatar are not shown again.
	Continued bool
	// JoinLink is a group's join link shared in the message
	// (chat.bsky.embed.joinLink → JoinLinkCard).
	JoinLink *JoinPreviewVM
}

// Text returns the message's text (the segments joined).
func (m MessageVM) Text() string {
	var b strings.Builder
	for _, s := range m.Segments {
		b.WriteString(s.Text)
	}
	return b.String()
}

// EmbedVM is a quoted post (app.bsky.embed.record).
type EmbedVM struct {
	URL          string // web URL of the post (richtext.PostURL); not http(s) → no link
	AuthorName   string
	AuthorHandle string
	Text         string
	// Unavailable is set for a post that was deleted, is blocked, or could
	// not be loaded; the card then says so.
	Unavailable bool
}

// ReactionVM is one emoji under a message with how many people used it.
type ReactionVM struct {
	Value string // one emoji
	Count int
	Mine  bool // the viewer reacted with it (its button removes it)
}

// QuotedVM is the message a reply quotes (messageView.replyTo): a message,
// a deleted one, or one from before the viewer joined the group (which has
// no id, sender or text).
type QuotedVM struct {
	ID           string
	SenderName   string
	Own          bool   // the viewer sent it: "You"
	Text         string // plain text, shortened by the handler if needed
	Deleted      bool   // "Deleted message"
	BeforeJoined bool   // "Message from before you joined"; not a link
	// OnPage is set when the quoted message is on the page: the quote links
	// to it there (#m-<id>); otherwise it opens the conversation at it
	// (ConvoAtURL).
	OnPage bool
}

// NewConvoVM is what the new conversation page shows.
type NewConvoVM struct {
	Assets DMAssets
	Handle string // what the person typed, kept on error
	Error  string // why the conversation cannot be started
	Notice string
}

// SettingsVM is what the chat settings page shows.
type SettingsVM struct {
	Assets        DMAssets
	AllowIncoming string // AllowAll, AllowFollowing or AllowNone; "" → AllowFollowing (Bluesky's default)
	// AllowGroupInvites is who may add the viewer to groups, as
	// AllowIncoming; "" → AllowFollowing.
	AllowGroupInvites string
	// Notify is the chat notification preferences form; nil when they
	// could not be read (NotifyError says why).
	Notify      *NotifyVM
	NotifyError string
	Error       string
	Notice      string // e.g. "Saved."
}

// CommonReactions returns the emoji the reaction picker offers as buttons.
func CommonReactions() [8]string {
	return [8]string{"❤️", "👍", "😂", "😮", "😢", "🙏", "🔥", "👀"}
}

// The DM URLs below are the paths the handlers route; ids are path-escaped.

// InboxURL returns the inbox URL for a tab, filter and cursor.
func InboxURL(tab string, unreadOnly bool, cursor string) string {
	q := url.Values{}
	if tab == TabRequests {
		q.Set("tab", TabRequests)
	}
	if unreadOnly {
		q.Set("unread", "1")
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if len(q) == 0 {
		return "/"
	}
	return "/?" + q.Encode()
}

// ConvoURL returns /convos/{id}.
func ConvoURL(id string) string { return "/convos/" + url.PathEscape(id) }

// LatestAnchor is the id of the element at the end of a conversation's
// messages, just above the composer: ConvoLatestURL links to it so the
// page opens at the newest message, with or without JavaScript.
const LatestAnchor = "latest"

// ConvoLatestURL returns /convos/{id}#latest, the conversation opened at
// its newest message. Every link and redirect that opens a conversation
// uses it.
func ConvoLatestURL(id string) string { return ConvoURL(id) + "#" + LatestAnchor }

// ConvoAtURL returns /convos/{id}?at={msg}#m-{msg}: the conversation
// opened at one message (paging back to find it), which is highlighted.
func ConvoAtURL(id, msgID string) string {
	return ConvoURL(id) + "?at=" + url.QueryEscape(msgID) + "#" + MessageDOMID(msgID)
}

// dmAtMoreURL continues the search for the ?at= message from AtMore.
func dmAtMoreURL(vm ConvoVM) string {
	return ConvoURL(vm.ID) + "?at=" + url.QueryEscape(vm.At) + "&cursor=" + url.QueryEscape(vm.AtMore) + "#" + MessageDOMID(vm.At)
}

// ConvoReplyURL returns /convos/{id}?reply={msg}#composer: the conversation
// with the composer replying to one message (without JavaScript).
func ConvoReplyURL(id, msgID string) string {
	return ConvoURL(id) + "?reply=" + url.QueryEscape(msgID) + "#composer"
}

// ConvoActionURL returns /convos/{id}/{action}, e.g. "messages", "accept",
// "leave", "mute", "unmute", "read".
func ConvoActionURL(id, action string) string { return ConvoURL(id) + "/" + action }

// MessageActionURL returns /convos/{id}/messages/{msg}/{action}, e.g.
// "delete", "reactions", "reactions/remove".
func MessageActionURL(convoID, msgID, action string) string {
	return ConvoURL(convoID) + "/messages/" + url.PathEscape(msgID) + "/" + action
}

// MessageDOMID returns the id attribute of a message's element, "m-" + id.
func MessageDOMID(id string) string { return "m-" + id }

// RelTime formats t relative to now for lists: "now", "5m", "3h", a weekday
// ("Mon") within the last week, "Mar 4" this year, "Mar 4, 2023" before.
// Times in the future (clock skew) are "now"; a zero t gives "".
func RelTime(t, now time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	if loc == nil {
		loc = time.UTC
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "now"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 24*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	lt, ln := t.In(loc), now.In(loc)
	switch {
	case d < 6*24*time.Hour:
		return lt.Format("Mon")
	case lt.Year() == ln.Year():
		return lt.Format("Jan 2")
	}
	return lt.Format("Jan 2, 2006")
}

// dmDayLabel names the day of t for a separator: "Today", "Yesterday",
// "Monday, March 4", or "March 4, 2023" in another year.
func dmDayLabel(t, now time.Time, loc *time.Location) string {
	lt, ln := t.In(loc), now.In(loc)
	y, m, d := lt.Date()
	ny, nm, nd := ln.Date()
	today := time.Date(ny, nm, nd, 0, 0, 0, 0, loc)
	day := time.Date(y, m, d, 0, 0, 0, 0, loc)
	switch {
	case day.Equal(today):
		return "Today"
	case day.Equal(today.AddDate(0, 0, -1)):
		return "Yesterday"
	case y == ny:
		return lt.Format("Monday, January 2")
	}
	return lt.Format("January 2, 2006")
}

// dmSameDay reports whether a and b fall on the same calendar day in loc.
func dmSameDay(a, b time.Time, loc *time.Location) bool {
	ay, am, ad := a.In(loc).Date()
	by, bm, bd := b.In(loc).Date()
	return ay == by && am == bm && ad == bd
}

func dmLoc(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// ConvoTitle is the one name of a conversation, for its header and the
// page's <title> alike: title, or the members' names joined ("Alice",
// "Alice and Bob", "Alice, Bob and Carol", "Alice, Bob and 2 others"),
// clamped as one name (ClampName).
func ConvoTitle(title string, ms []MemberVM) string {
	if strings.TrimSpace(title) != "" {
		return ClampName(title)
	}
	names := make([]string, 0, len(ms))
	for _, m := range ms {
		names = append(names, m.Label())
	}
	var t string
	switch len(names) {
	case 0:
		t = "Conversation"
	case 1:
		t = names[0]
	case 2:
		t = names[0] + " and " + names[1]
	case 3:
		t = names[0] + ", " + names[1] + " and " + names[2]
	default:
		t = names[0] + ", " + names[1] + " and " + strconv.Itoa(len(names)-2) + " others"
	}
	return ClampName(t)
}

// dmSafeURL returns raw as a templ.SafeURL-able string when it is an http(s)
// URL (richtext.SafeHref), else "".
func dmSafeURL(raw string) string {
	h, _ := richtext.SafeHref(raw)
	return h
}

// dmUnreadLabel is what a screen reader hears for an unread badge.
func dmUnreadLabel(n int) string {
	if n == 1 {
		return "1 unread message"
	}
	return strconv.Itoa(n) + " unread messages"
}

// dmBadge shows counts above 99 as "99+".
func dmBadge(n int) string {
	if n > 99 {
		return "99+"
	}
	return strconv.Itoa(n)
}

// allow returns the selected AllowIncoming value, defaulting to following.
func (s SettingsVM) allow() string {
	switch s.AllowIncoming {
	case AllowAll, AllowNone:
		return s.AllowIncoming
	}
	return AllowFollowing
}

func dmCurrent(on bool) string {
	if on {
		return "page"
	}
	return "false"
}

func dmItoa(n int) string { return strconv.Itoa(n) }

func dmQueryEscape(s string) string { return url.QueryEscape(s) }

// dmTabStatus maps a tab to the status of the conversations it lists.
func dmTabStatus(tab string) string {
	if tab == TabRequests {
		return StatusRequest
	}
	return StatusAccepted
}

// dmInboxEmpty is the empty-state sentence of the inbox.
func dmInboxEmpty(vm InboxVM) string {
	switch {
	case vm.UnreadOnly:
		return "No unread conversations."
	case vm.Tab == TabRequests:
		return "No message requests."
	}
	return "No conversations yet. Start one with “New message”."
}

// dmSenderLabel names the sender of a message: "You" for the viewer.
func dmSenderLabel(m MessageVM) string {
	if m.Own {
		return "You"
	}
	return dmNameOr(m.SenderName, "Someone")
}

// dmNameOr returns name as pages show it (ClampName), or or when that is
// empty.
func dmNameOr(name, or string) string {
	if n := ClampName(name); n != "" {
		return n
	}
	return or
}

func dmQuotedSender(q QuotedVM) string {
	if q.Own {
		return "You"
	}
	return dmNameOr(q.SenderName, "Someone")
}

// dmQuoteHref is where a reply's quote links: the parent on this page, or
// the conversation opened at it.
func dmQuoteHref(q QuotedVM, c MsgContext) string {
	if q.OnPage {
		return "#" + MessageDOMID(q.ID)
	}
	return ConvoAtURL(c.ConvoID, q.ID)
}

func dmSystemText(m MessageVM) string {
	if t := strings.TrimSpace(richtext.StripBidi(m.SystemText)); t != "" {
		return t
	}
	return "Conversation updated"
}
