package views

import "net/url"

// NewGroupVM is the new group form (GET/POST /convos/new-group): the draft
// as typed, and why it was refused.
type NewGroupVM struct {
	Assets    DMAssets
	Name      string // the group name as typed
	NameError string
	// Members is the members field as typed (handles, one per line or
	// separated by commas).
	Members      string
	MembersError string          // about the list as a whole (none, too many)
	Refused      []RefusedMember // each member who cannot be added, with why
	Error        string          // the chat service's refusal of the whole form
	Limit        int             // the group member limit, the owner included
}

// RefusedMember is a member who cannot be added, as typed, with the reason.
type RefusedMember struct {
	Handle string
	Reason string
}

// GroupMembersVM is a group's members page (GET /convos/{id}/members).
type GroupMembersVM struct {
	Assets      DMAssets
	ConvoID     string
	Name        string // the group's name
	MemberCount int
	Limit       int    // the group's member limit
	Lock        string // "unlocked", "locked" or "locked-permanently"
	// LockedByModeration is set when moderation, not the owner, holds the
	// lock status.
	LockedByModeration bool
	Owner              bool // the viewer owns the group
	JoinRequestsUnread int  // unread requests to join (the owner only)
	Members            []GroupMemberVM
	NextCursor         string // "" → no more members
	Notice, Error      string
	// ConfirmRemove, when set, is the member whose removal the owner is
	// asked to confirm (?remove=).
	ConfirmRemove *GroupMemberVM
	// The owner's forms, with their drafts and refusals.
	AddDraft, AddError       string
	AddRefused               []RefusedMember
	RenameDraft, RenameError string
}

// GroupMemberVM is one member on the members page.
type GroupMemberVM struct {
	MemberVM
	Owner    bool // the group's owner
	You      bool // the viewer
	Blocking bool // the viewer blocks them (their profile's viewer.blocking)
}

// Locked reports whether the group takes no new messages.
func (vm GroupMembersVM) Locked() bool { return vm.Lock == "locked" || vm.Lock == "locked-permanently" }

// Role is how the members page names the member's role.
func (m GroupMemberVM) Role() string {
	if m.Owner {
		return "Owner"
	}
	return "Member"
}

// GroupMembersURL is the members page of a group.
func GroupMembersURL(id string) string { return ConvoURL(id) + "/members" }

// groupMembersPageURL is the members page from a cursor.
func groupMembersPageURL(id, cursor string) string {
	return GroupMembersURL(id) + "?cursor=" + url.QueryEscape(cursor)
}

// groupRemoveURL is the confirmation step of removing a member.
func groupRemoveURL(id, did string) string {
	return GroupMembersURL(id) + "?remove=" + url.QueryEscape(did) + "#confirm-remove"
}

func groupMemberCount(n int) string {
	if n == 1 {
		return "1 member"
	}
	return dmItoa(n) + " members"
}
