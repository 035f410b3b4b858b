package views

// Group conversations (chat.bsky.convo.defs#groupConvo) as the inbox and
// the conversation page show them. The handlers fill these from the convo
// view; every string is untrusted, like all view model text.

// Lock statuses of a group (chat.bsky.convo.defs#convoLockStatus).
const (
	LockUnlocked          = "unlocked"
	LockLocked            = "locked"
	LockLockedPermanently = "locked-permanently"
)

// GroupConvoVM is what a group conversation adds to a direct one.
type GroupConvoVM struct {
	Name        string // the group's name; "" → the members' names (ConvoTitle)
	MemberCount int    // every member, the viewer included
	LockStatus  string // LockUnlocked ("" is the same), LockLocked or LockLockedPermanently
	// ModerationLock is set when the lock is forced by moderation (the
	// lexicon's lockStatusModerationOverride), not by the owner.
	ModerationLock bool
	// LockedBy names who locked the group, when the messages on the page
	// say so (the newest lock system message); "" → not known.
	LockedBy string
	// InvitedBy names the member who added the viewer, for an invitation
	// (a group in Requests); "" → not known.
	InvitedBy string
}

// Locked reports whether the group takes no new messages.
func (g *GroupConvoVM) Locked() bool {
	return g != nil && (g.LockStatus == LockLocked || g.LockStatus == LockLockedPermanently)
}

// LockedText is the sentence that replaces the composer of a locked group:
// who locked it when known, Bluesky moderation when the lock is forced.
func (g *GroupConvoVM) LockedText() string {
	switch {
	case g.ModerationLock:
		return "This group was locked by Bluesky moderation. No new messages can be sent."
	case g.LockStatus == LockLockedPermanently && g.LockedBy != "":
		return ClampName(g.LockedBy) + " locked this group permanently. No new messages can be sent."
	case g.LockStatus == LockLockedPermanently:
		return "This group is locked permanently. No new messages can be sent."
	case g.LockedBy != "":
		return ClampName(g.LockedBy) + " locked this group. No new messages can be sent."
	}
	return "This group is locked. No new messages can be sent."
}

// MembersLabel is "1 member" or "N members".
func (g *GroupConvoVM) MembersLabel() string { return groupMemberCount(g.MemberCount) }

// groupInviteText says who invited the viewer: "Bob added you to this
// group", or "You were added to this group" when it is not known.
func groupInviteText(g *GroupConvoVM) string {
	if n := ClampName(g.InvitedBy); n != "" {
		return n + " added you to this group"
	}
	return "You were added to this group"
}

// convoSkipTarget is the id the skip link of a conversation page points
// to: the composer's text box, or the locked line that replaces it.
func convoSkipTarget(vm ConvoVM) (id, label string) {
	if vm.GroupConvo.Locked() && vm.Draft == "" {
		return "composer-locked", "Skip to the end of the conversation"
	}
	return "text", "Skip to the message box"
}

// groupGoneText is what a group's page says when live updates tell it the
// viewer is no longer a member (logLeaveConvo: removed, or left it in
// another window); group.js shows it.
const groupGoneText = "You were removed from this group, or left it in another window."

// requestBanner is the heading and sentence of a conversation's request
// banner: a message request, or a group invitation with who sent it.
func requestBanner(vm ConvoVM) (heading, text string) {
	if vm.GroupConvo != nil {
		return "Group invitation", groupInviteText(vm.GroupConvo) + ". Accept it to move the group to your inbox and chat with its members."
	}
	return "Message request", "You have not accepted this conversation yet. Accept it to move it to your inbox; replying also accepts it."
}
