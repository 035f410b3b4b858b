package views

// ReportSubject is what a report is about.
const (
	ReportMessage = "message"
	ReportConvo   = "conversation"
	ReportGroup   = "group"
)

// ReportReason is one reason a report can give: Value is its
// com.atproto.moderation.defs#reasonType.
type ReportReason struct {
	Value, Title, Description string
}

// ReportVM is the report form (GET /convos/{id}/report?message=<id>) and,
// with Sent, its thanks.
type ReportVM struct {
	Assets    DMAssets
	ConvoID   string
	MessageID string // "" → the conversation or group is reported
	Sender    string // the DID of the message's sender (MessageID set)
	Subject   string // ReportMessage, ReportConvo or ReportGroup
	Title     string // the conversation's title (its members' names, or the group's name)
	InGroup   bool   // the conversation is a group (its message or itself is reported)
	Reasons   []ReportReason
	Reason    string // the chosen reason type (kept on error)
	Details   string // the optional text (kept on error)
	Error     string
	// Moderation names where the report goes ("Bluesky's moderation
	// service").
	Moderation string
	Sent       bool // the report was sent: the thanks is shown instead of the form
}

// ReportURL is the report form of a conversation, or of one of its messages
// (messageID and sender set).
func ReportURL(convoID, messageID, sender string) string {
	u := ConvoActionURL(convoID, "report")
	if messageID != "" {
		u += "?message=" + dmQueryEscape(messageID) + "&sender=" + dmQueryEscape(sender)
	}
	return u
}

// BlockVM is the block between the viewer and the other member of a
// direct conversation, as the member's viewer state says.
type BlockVM struct {
	DID, Name string // the other member
	Blocking  bool   // the viewer blocks them: the composer offers Unblock
	BlockedBy bool   // they block the viewer: the composer says so
}

// Closed reports whether a block stops the viewer from writing.
func (b BlockVM) Closed() bool { return b.Blocking || b.BlockedBy }

// NotifyVM is the chat notification preferences
// (chat.bsky.notification.defs#preferences): for messages in accepted
// conversations (Chat) and for message requests (ChatRequest).
type NotifyVM struct {
	Chat, ChatRequest NotifyPref
}

// NotifyPref is one chat notification preference.
type NotifyPref struct {
	Include string // NotifyAll or NotifyFollows
	Push    bool
}

// Values of NotifyPref.Include.
const (
	NotifyAll     = "all"
	NotifyFollows = "follows"
)

// groupInvites returns the selected AllowGroupInvites value, defaulting to
// following.
func (s SettingsVM) groupInvites() string {
	switch s.AllowGroupInvites {
	case AllowAll, AllowNone:
		return s.AllowGroupInvites
	}
	return AllowFollowing
}
