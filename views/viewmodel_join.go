package views

import (
	"net/url"
	"strconv"
	"time"
)

// View models of join links and join requests: the owner's link page, the
// /join/{code} page, the owner's requests page and the card of a join link
// shared in a message.

// Join link preview states (chat.bsky.group.defs: joinLinkPreviewView,
// disabledJoinLinkPreviewView, invalidJoinLinkPreviewView).
const (
	JoinValid    = "valid"
	JoinDisabled = "disabled"
	JoinInvalid  = "invalid"
)

// Join link choices of the owner's form (field "who"): the joinRule, and
// ":approval" when the owner approves each request. Wording from the
// official app's invite link dialog.
const (
	WhoAnyone            = "anyone"
	WhoAnyoneApproval    = "anyone:approval"
	WhoFollowed          = "followedByOwner"
	WhoFollowedApproval  = "followedByOwner:approval"
	joinRuleFollowedByMe = "followedByOwner"
)

// JoinWho returns the form value of a rule and approval.
func JoinWho(rule string, approval bool) string {
	if rule != joinRuleFollowedByMe {
		rule = WhoAnyone
	}
	if approval {
		return rule + ":approval"
	}
	return rule
}

// JoinPreviewVM is what a join link shows before joining.
type JoinPreviewVM struct {
	Code            string
	State           string // JoinValid, JoinDisabled, JoinInvalid
	Name            string // the group's name
	Owner           MemberVM
	MemberCount     int64
	MemberLimit     int64
	RequireApproval bool
	FollowedByOwner bool   // only people the owner follows may join
	ConvoID         string // the group, when the viewer is a member
	Member          bool   // the viewer is a member already
	Requested       bool   // the viewer's request is waiting for the owner
}

// Full reports whether the group has no room left.
func (p JoinPreviewVM) Full() bool { return p.MemberLimit > 0 && p.MemberCount >= p.MemberLimit }

// JoinURL is the skydm page of a join code.
func JoinURL(code string) string { return "/join/" + url.PathEscape(code) }

// joinMembers words the member count: "1 member", "3 members".
func joinMembers(n int64) string {
	if n == 1 {
		return "1 member"
	}
	return strconv.FormatInt(n, 10) + " members"
}

// joinRuleText says who may join and how, as a person with the link reads it.
func (p JoinPreviewVM) joinRuleText() string {
	who := "Anyone with the link"
	if p.FollowedByOwner {
		who = "Only people " + p.Owner.Label() + " follows"
	}
	if p.RequireApproval {
		return who + " can ask to join; " + p.Owner.Label() + " approves each request."
	}
	return who + " can join right away."
}

// JoinPageVM is the /join/{code} page.
type JoinPageVM struct {
	Assets  DMAssets
	Preview JoinPreviewVM
	Error   string // a refusal in words
	Notice  string
}

// JoinLinkPageVM is the owner's join link page of a group.
type JoinLinkPageVM struct {
	Assets    DMAssets
	ConvoID   string
	GroupName string
	Owner     bool // the viewer owns the group (only the owner changes the link)
	OwnerName string
	// Link is the group's link; nil when it has none yet.
	Link *JoinLinkVM
	// Who is the choice the form shows (WhoAnyone...).
	Who string
	// UnreadRequests is how many join requests the owner has not seen.
	UnreadRequests int
	Error, Notice  string
}

// JoinLinkVM is a group's join link.
type JoinLinkVM struct {
	Code      string
	URL       string // the full link to share: PublicURL + /join/{code}
	Enabled   bool
	CreatedAt time.Time
}

// JoinRequestsVM is the owner's list of requests to join a group.
type JoinRequestsVM struct {
	Assets    DMAssets
	ConvoID   string
	GroupName string
	Requests  []JoinRequestVM
	// Unread is how many were unread when the page was opened.
	Unread        int
	Cursor        string // the next page, "" at the end
	Error, Notice string
}

// JoinRequestVM is one request to join.
type JoinRequestVM struct {
	Member      MemberVM
	RequestedAt time.Time
}

// JoinRequestsURL is the owner's requests page of a group.
func JoinRequestsURL(convoID string) string {
	return "/convos/" + url.PathEscape(convoID) + "/join-requests"
}

// JoinLinkURL is the owner's join link page of a group.
func JoinLinkURL(convoID string) string { return "/convos/" + url.PathEscape(convoID) + "/link" }

// JoinRequestsBadge is the unread count of a group's join requests as a
// badge label ("3 new"), or "" for none; for a link to JoinRequestsURL.
func JoinRequestsBadge(unread int) string {
	if unread <= 0 {
		return ""
	}
	return strconv.Itoa(unread) + " new"
}
