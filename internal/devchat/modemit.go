package devchat

import (
	"context"
	"slices"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

// The chat.bsky.moderation.subscribeModEvents events (modevents.go
// streams them), each built where the service makes the change it reports.

// modFirstMessageLocked emits eventConvoFirstMessage when m is the first
// user message of c. Requires Server.mu.
func (s *Server) modFirstMessageLocked(c *convo, m *message) {
	if slices.IndexFunc(c.messages, func(x *message) bool { return x.system == nil }) != len(c.messages)-1 {
		return
	}
	id := m.id
	recipients := []string{}
	for _, d := range c.others(m.sender) {
		recipients = append(recipients, d.String())
	}
	s.emitModLocked(m.rev, "#eventConvoFirstMessage", &chat.ModerationSubscribeModEvents_EventConvoFirstMessage{
		ConvoId: c.id, CreatedAt: datetime(m.sentAt), MessageId: &id, Recipients: recipients, Rev: m.rev, User: m.sender.String(),
	})
}

// modGroupCreatedLocked emits eventGroupChatCreated for a new group c.
// Requires Server.mu.
func (s *Server) modGroupCreatedLocked(c *convo) {
	g := c.group
	initial := []string{}
	for _, d := range c.others(g.owner) {
		initial = append(initial, d.String())
	}
	rev := s.nextTID()
	s.emitModLocked(rev, "#eventGroupChatCreated", &chat.ModerationSubscribeModEvents_EventGroupChatCreated{
		ActorDid: g.owner.String(), ConvoCreatedAt: datetime(g.createdAt), ConvoId: c.id, CreatedAt: datetime(s.now()),
		GroupMemberCount: int64(len(c.members)), GroupName: g.name, InitialMemberDids: initial, OwnerDid: g.owner.String(), Rev: rev,
	})
}

// convoCreatedAt is when c was created: a group's createdAt, or the time of
// a direct convo's id (a TID minted at its creation).
func convoCreatedAt(c *convo) string {
	if c.group != nil {
		return datetime(c.group.createdAt)
	}
	if tid, err := syntax.ParseTID(c.id); err == nil {
		return datetime(tid.Time())
	}
	return ""
}

// modAcceptedLocked emits eventChatAccepted: did accepted c, "explicit"ly
// (acceptConvo) or by sending a "message". Requires Server.mu.
func (s *Server) modAcceptedLocked(c *convo, did syntax.DID, method string) {
	rev := s.nextTID()
	ev := &chat.ModerationSubscribeModEvents_EventChatAccepted{
		ActorDid: did.String(), ConvoCreatedAt: convoCreatedAt(c), ConvoId: c.id, CreatedAt: datetime(s.now()), Method: method, Rev: rev,
	}
	if g := c.group; g != nil {
		n, name, owner := int64(len(c.members)), g.name, g.owner.String()
		ev.GroupMemberCount, ev.GroupName, ev.OwnerDid = &n, &name, &owner
	}
	s.emitModLocked(rev, "#eventChatAccepted", ev)
}

// modUpdateTypes are the eventGroupChatUpdated updateType of each system
// message kind that announces one.
var modUpdateTypes = map[sysKind]string{
	sysEditGroup:            "name_changed",
	sysLockConvo:            "locked",
	sysLockConvoPermanently: "locked_permanently",
	sysUnlockConvo:          "unlocked",
	sysCreateJoinLink:       "join_link_created",
	sysEditJoinLink:         "join_link_settings_changed",
	sysEnableJoinLink:       "join_link_settings_changed",
	sysDisableJoinLink:      "join_link_disabled",
}

// modSystemLocked emits the mod event a group's system message m stands
// for: eventGroupChatMemberLeft (left: voluntary; removed: kicked) or
// eventGroupChatUpdated, or eventGroupChatJoinRequestApproved for a join
// by approval. Members added or joining by link are reported by their
// handlers (modMemberAddedLocked, modJoinedLocked): those events need
// subjectFollowsOwner, a record read made before taking Server.mu.
// Requires Server.mu.
func (s *Server) modSystemLocked(c *convo, m *message) {
	g, d := c.group, m.system
	created, now, count, owner := datetime(g.createdAt), datetime(m.sentAt), int64(len(c.members)), g.owner.String()
	switch d.kind {
	case sysMemberJoin:
		if d.actor != "" { // joined by approval
			s.modJoinDecisionLocked(c, d.member, true, m.rev)
		}
		return
	case sysMemberLeave, sysRemoveMember:
		method, actor := "voluntary", d.member
		if d.kind == sysRemoveMember {
			method, actor = "kicked", d.actor
		}
		s.emitModLocked(m.rev, "#eventGroupChatMemberLeft", &chat.ModerationSubscribeModEvents_EventGroupChatMemberLeft{
			ActorDid: actor.String(), ConvoCreatedAt: created, ConvoId: c.id, CreatedAt: now, GroupMemberCount: count,
			GroupName: g.name, LeaveMethod: method, OwnerDid: owner, Rev: m.rev, SubjectDid: d.member.String(),
		})
		return
	}
	update, ok := modUpdateTypes[d.kind]
	if !ok {
		return
	}
	ev := &chat.ModerationSubscribeModEvents_EventGroupChatUpdated{
		ActorDid: owner, ConvoCreatedAt: created, ConvoId: c.id, CreatedAt: now, GroupMemberCount: count,
		GroupName: g.name, OwnerDid: owner, Rev: m.rev, UpdateType: update,
	}
	switch d.kind {
	case sysEditGroup:
		ev.OldName, ev.NewName = &d.oldName, &d.newName
	case sysLockConvo:
		reason := "owner_action"
		ev.LockReason = &reason
	case sysCreateJoinLink, sysEditJoinLink, sysEnableJoinLink, sysDisableJoinLink:
		if l := g.join.link; l != nil {
			code, followers, approval := l.code, l.rule == joinRuleFollowedByOwner, l.requireApproval
			ev.JoinLinkCode, ev.JoinLinkFollowersOnly, ev.JoinLinkRequiresApproval = &code, &followers, &approval
		}
	}
	s.emitModLocked(m.rev, "#eventGroupChatUpdated", ev)
}

// modJoinDecisionLocked emits eventGroupChatJoinRequestApproved or
// Rejected: the owner decided on subject's join request. Requires
// Server.mu.
func (s *Server) modJoinDecisionLocked(c *convo, subject syntax.DID, approved bool, rev string) {
	g := c.group
	owner, created, now, count := g.owner.String(), datetime(g.createdAt), datetime(s.now()), int64(len(c.members))
	if approved {
		s.emitModLocked(rev, "#eventGroupChatJoinRequestApproved", &chat.ModerationSubscribeModEvents_EventGroupChatJoinRequestApproved{
			ActorDid: owner, ConvoCreatedAt: created, ConvoId: c.id, CreatedAt: now, GroupMemberCount: count,
			GroupName: g.name, OwnerDid: owner, Rev: rev, SubjectDid: subject.String(),
		})
		return
	}
	s.emitModLocked(rev, "#eventGroupChatJoinRequestRejected", &chat.ModerationSubscribeModEvents_EventGroupChatJoinRequestRejected{
		ActorDid: owner, ConvoCreatedAt: created, ConvoId: c.id, CreatedAt: now, GroupMemberCount: count,
		GroupName: g.name, OwnerDid: owner, Rev: rev, SubjectDid: subject.String(),
	})
}

// followsOwner reports, for each subject, whether they follow owner (the
// events' subjectFollowsOwner). A failed read counts as false and is
// logged: the event must not fail the user's call. It reads records, so
// call it without Server.mu.
func (s *Server) followsOwner(ctx context.Context, owner syntax.DID, subjects ...syntax.DID) map[syntax.DID]bool {
	out := map[syntax.DID]bool{}
	for _, d := range subjects {
		f, err := s.follows(ctx, d, owner)
		if err != nil {
			s.log.Warn("reading follows for a mod event", "did", d.String(), "err", err)
		}
		out[d] = f
	}
	return out
}

// modMemberAddedLocked emits eventGroupChatMemberAdded: the owner added
// subject (as a request). Requires Server.mu.
func (s *Server) modMemberAddedLocked(c *convo, subject syntax.DID, followsOwner bool) {
	g := c.group
	requests := int64(0)
	for _, d := range c.members {
		if c.member[d].status == statusRequest {
			requests++
		}
	}
	rev := s.nextTID()
	s.emitModLocked(rev, "#eventGroupChatMemberAdded", &chat.ModerationSubscribeModEvents_EventGroupChatMemberAdded{
		ActorDid: g.owner.String(), ConvoCreatedAt: datetime(g.createdAt), ConvoId: c.id, CreatedAt: datetime(s.now()),
		GroupMemberCount: int64(len(c.members)), GroupName: g.name, OwnerDid: g.owner.String(), RequestMembersCount: requests,
		Rev: rev, SubjectDid: subject.String(), SubjectFollowsOwner: followsOwner,
	})
}

// modJoinedLocked emits eventGroupChatMemberJoined (joined by a link
// without approval) or, with pending, eventGroupChatJoinRequest. Requires
// Server.mu.
func (s *Server) modJoinedLocked(c *convo, who syntax.DID, code string, followsOwner, pending bool) {
	g := c.group
	rev := s.nextTID()
	owner, created, now, count := g.owner.String(), datetime(g.createdAt), datetime(s.now()), int64(len(c.members))
	if pending {
		s.emitModLocked(rev, "#eventGroupChatJoinRequest", &chat.ModerationSubscribeModEvents_EventGroupChatJoinRequest{
			ActorDid: who.String(), ConvoCreatedAt: created, ConvoId: c.id, CreatedAt: now, GroupMemberCount: count,
			GroupName: g.name, JoinLinkCode: code, OwnerDid: owner, Rev: rev, SubjectFollowsOwner: followsOwner,
		})
		return
	}
	s.emitModLocked(rev, "#eventGroupChatMemberJoined", &chat.ModerationSubscribeModEvents_EventGroupChatMemberJoined{
		ActorDid: who.String(), ConvoCreatedAt: created, ConvoId: c.id, CreatedAt: now, GroupMemberCount: count,
		GroupName: g.name, JoinLinkCode: code, OwnerDid: owner, Rev: rev, SubjectFollowsOwner: followsOwner,
	})
}
