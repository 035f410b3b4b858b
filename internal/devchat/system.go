package devchat

import (
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

// System messages: the chat.bsky.convo.defs#systemMessageView entries a
// group's history carries (a member added, a rename, a lock...), and the
// getLog events that deliver them.

// sysKind is the data variant of a system message
// (chat.bsky.convo.defs#systemMessageData*).
type sysKind int

const (
	sysAddMember sysKind = iota
	sysRemoveMember
	sysMemberJoin
	sysMemberLeave
	sysLockConvo
	sysUnlockConvo
	sysLockConvoPermanently
	sysEditGroup
	sysCreateJoinLink
	sysEditJoinLink
	sysEnableJoinLink
	sysDisableJoinLink
)

// systemData is what a system message says.
type systemData struct {
	kind sysKind
	// member is who was added, removed, joined or left.
	member syntax.DID
	// actor is addedBy, removedBy, approvedBy (join; "" without approval),
	// lockedBy or unlockedBy.
	actor syntax.DID
	// role is the role a member was added or joined with.
	role string
	// oldName and newName are an editGroup's names.
	oldName, newName string
}

// logKind is the getLog event that delivers each kind of system message
// (chat.bsky.convo.defs#logAddMember...).
var sysLogKind = map[sysKind]logKind{
	sysAddMember:            logAddMember,
	sysRemoveMember:         logRemoveMember,
	sysMemberJoin:           logMemberJoin,
	sysMemberLeave:          logMemberLeave,
	sysLockConvo:            logLockConvo,
	sysUnlockConvo:          logUnlockConvo,
	sysLockConvoPermanently: logLockConvoPermanently,
	sysEditGroup:            logEditGroup,
	sysCreateJoinLink:       logCreateJoinLink,
	sysEditJoinLink:         logEditJoinLink,
	sysEnableJoinLink:       logEnableJoinLink,
	sysDisableJoinLink:      logDisableJoinLink,
}

// systemLocked appends a system message to a group's history and logs it
// (as its log* event) to every current member. Call it after changing the
// membership, so an added member gets it (as the first message they see)
// and a removed or leaving member does not. Requires Server.mu.
func (s *Server) systemLocked(c *convo, d systemData) *message {
	m := &message{id: s.nextTID(), system: &d, sentAt: s.now()}
	m.rev = s.nextTID()
	c.messages = append(c.messages, m)
	c.byID[m.id] = m
	c.rev = m.rev
	for _, did := range c.members {
		if c.member[did].active() {
			s.appendLog(did, logEntry{rev: m.rev, kind: sysLogKind[d.kind], convoID: c.id, msg: snapshot(m)})
		}
	}
	s.modSystemLocked(c, m) // modevents.go
	return m
}

// referred are the DIDs a system message names, for relatedProfiles.
func (d *systemData) referred() []syntax.DID {
	var out []syntax.DID
	for _, did := range []syntax.DID{d.member, d.actor} {
		if did != "" {
			out = append(out, did)
		}
	}
	return out
}

func referredUser(did syntax.DID) *chat.ConvoDefs_SystemMessageReferredUser {
	return &chat.ConvoDefs_SystemMessageReferredUser{Did: did.String()}
}

// systemView renders a system message.
func systemView(m *message) *chat.ConvoDefs_SystemMessageView {
	d := m.system
	data := &chat.ConvoDefs_SystemMessageView_Data{}
	switch d.kind {
	case sysAddMember:
		role := d.role
		data.ConvoDefs_SystemMessageDataAddMember = &chat.ConvoDefs_SystemMessageDataAddMember{
			Member: referredUser(d.member), Role: &role, AddedBy: referredUser(d.actor),
		}
	case sysRemoveMember:
		data.ConvoDefs_SystemMessageDataRemoveMember = &chat.ConvoDefs_SystemMessageDataRemoveMember{
			Member: referredUser(d.member), RemovedBy: referredUser(d.actor),
		}
	case sysMemberJoin:
		role := d.role
		j := &chat.ConvoDefs_SystemMessageDataMemberJoin{Member: referredUser(d.member), Role: &role}
		if d.actor != "" {
			j.ApprovedBy = referredUser(d.actor)
		}
		data.ConvoDefs_SystemMessageDataMemberJoin = j
	case sysMemberLeave:
		data.ConvoDefs_SystemMessageDataMemberLeave = &chat.ConvoDefs_SystemMessageDataMemberLeave{Member: referredUser(d.member)}
	case sysLockConvo:
		data.ConvoDefs_SystemMessageDataLockConvo = &chat.ConvoDefs_SystemMessageDataLockConvo{LockedBy: referredUser(d.actor)}
	case sysUnlockConvo:
		data.ConvoDefs_SystemMessageDataUnlockConvo = &chat.ConvoDefs_SystemMessageDataUnlockConvo{UnlockedBy: referredUser(d.actor)}
	case sysLockConvoPermanently:
		data.ConvoDefs_SystemMessageDataLockConvoPermanently = &chat.ConvoDefs_SystemMessageDataLockConvoPermanently{LockedBy: referredUser(d.actor)}
	case sysEditGroup:
		data.ConvoDefs_SystemMessageDataEditGroup = &chat.ConvoDefs_SystemMessageDataEditGroup{OldName: optional(d.oldName), NewName: optional(d.newName)}
	case sysCreateJoinLink:
		data.ConvoDefs_SystemMessageDataCreateJoinLink = &chat.ConvoDefs_SystemMessageDataCreateJoinLink{}
	case sysEditJoinLink:
		data.ConvoDefs_SystemMessageDataEditJoinLink = &chat.ConvoDefs_SystemMessageDataEditJoinLink{}
	case sysEnableJoinLink:
		data.ConvoDefs_SystemMessageDataEnableJoinLink = &chat.ConvoDefs_SystemMessageDataEnableJoinLink{}
	case sysDisableJoinLink:
		data.ConvoDefs_SystemMessageDataDisableJoinLink = &chat.ConvoDefs_SystemMessageDataDisableJoinLink{}
	}
	return &chat.ConvoDefs_SystemMessageView{
		LexiconTypeID: "chat.bsky.convo.defs#systemMessageView",
		Id:            m.id,
		Rev:           m.rev,
		SentAt:        datetime(m.sentAt),
		Data:          data,
	}
}

// anyMessage renders m as exactly one of a messageView, a
// deletedMessageView (deleted for the viewer) or a systemMessageView.
func (h *hydrator) anyMessage(m *message, deleted bool) (*chat.ConvoDefs_MessageView, *chat.ConvoDefs_DeletedMessageView, *chat.ConvoDefs_SystemMessageView) {
	if m.system != nil {
		return nil, nil, systemView(m)
	}
	mv, dv := h.message(m, deleted)
	return mv, dv, nil
}

// systemLogView renders the log* event of a system message, or nil when e
// is not one.
func (h *hydrator) systemLogView(c *convo, e logEntry) *chat.ConvoGetLog_Output_Logs_Elem {
	if e.msg == nil || e.msg.system == nil {
		return nil
	}
	sv := systemView(e.msg)
	related := h.relatedIn(c, e.msg.system.referred()...)
	switch e.kind {
	case logAddMember:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogAddMember: &chat.ConvoDefs_LogAddMember{ConvoId: e.convoID, Rev: e.rev, Message: sv, RelatedProfiles: related}}
	case logRemoveMember:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogRemoveMember: &chat.ConvoDefs_LogRemoveMember{ConvoId: e.convoID, Rev: e.rev, Message: sv, RelatedProfiles: related}}
	case logMemberJoin:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogMemberJoin: &chat.ConvoDefs_LogMemberJoin{ConvoId: e.convoID, Rev: e.rev, Message: sv, RelatedProfiles: related}}
	case logMemberLeave:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogMemberLeave: &chat.ConvoDefs_LogMemberLeave{ConvoId: e.convoID, Rev: e.rev, Message: sv, RelatedProfiles: related}}
	case logLockConvo:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogLockConvo: &chat.ConvoDefs_LogLockConvo{ConvoId: e.convoID, Rev: e.rev, Message: sv, RelatedProfiles: related}}
	case logUnlockConvo:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogUnlockConvo: &chat.ConvoDefs_LogUnlockConvo{ConvoId: e.convoID, Rev: e.rev, Message: sv, RelatedProfiles: related}}
	case logLockConvoPermanently:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogLockConvoPermanently: &chat.ConvoDefs_LogLockConvoPermanently{ConvoId: e.convoID, Rev: e.rev, Message: sv, RelatedProfiles: related}}
	case logEditGroup:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogEditGroup: &chat.ConvoDefs_LogEditGroup{ConvoId: e.convoID, Rev: e.rev, Message: sv}}
	case logCreateJoinLink:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogCreateJoinLink: &chat.ConvoDefs_LogCreateJoinLink{ConvoId: e.convoID, Rev: e.rev, Message: sv}}
	case logEditJoinLink:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogEditJoinLink: &chat.ConvoDefs_LogEditJoinLink{ConvoId: e.convoID, Rev: e.rev, Message: sv}}
	case logEnableJoinLink:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogEnableJoinLink: &chat.ConvoDefs_LogEnableJoinLink{ConvoId: e.convoID, Rev: e.rev, Message: sv}}
	case logDisableJoinLink:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogDisableJoinLink: &chat.ConvoDefs_LogDisableJoinLink{ConvoId: e.convoID, Rev: e.rev, Message: sv}}
	}
	return nil
}
