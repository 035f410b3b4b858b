package devchat

import (
	"context"
	"net/http"
	"sort"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

// logKind is the type of a chat.bsky.convo.getLog event.
type logKind int

const (
	logBeginConvo logKind = iota
	logAcceptConvo
	logLeaveConvo
	logMuteConvo
	logUnmuteConvo
	logCreateMessage
	logDeleteMessage
	logReadMessage
	logAddReaction
	logRemoveReaction
	// Group events; each delivers a system message (system.go).
	logAddMember
	logRemoveMember
	logMemberJoin
	logMemberLeave
	logLockConvo
	logUnlockConvo
	logLockConvoPermanently
	logEditGroup
	logCreateJoinLink
	logEditJoinLink
	logEnableJoinLink
	logDisableJoinLink
)

// logEntry is one event in one user's log.
type logEntry struct {
	rev      string
	kind     logKind
	convoID  string
	msg      *message  // snapshot at event time (message events)
	deleted  bool      // render msg as a deletedMessageView for this user
	reaction *reaction // add/remove reaction events
}

// appendLog adds an event to did's log. Revs are handed out in order under
// Server.mu, so every log stays in ascending rev order. Requires Server.mu.
func (s *Server) appendLog(did syntax.DID, e logEntry) {
	s.st.logs[did] = append(s.st.logs[did], e)
}

// getLog implements chat.bsky.convo.getLog. Without a cursor it returns the
// newest events (up to 100); with one, the events after it (oldest first, up
// to 100). Events are in ascending rev order. The returned cursor is the rev
// of the last event returned, or, when there is nothing new, the cursor that
// was passed (without one: the service's latest rev), so it is always set.
func (s *Server) getLog(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	cursor, err := cursorParam(r.URL.Query())
	if err != nil {
		return nil, err
	}
	h := &hydrator{}
	out := &chat.ConvoGetLog_Output{Logs: []*chat.ConvoGetLog_Output_Logs_Elem{}}

	s.mu.Lock()
	log := s.st.logs[viewer]
	var page []logEntry
	if cursor == "" {
		page = log[max(0, len(log)-maxLogPage):]
	} else {
		i := sort.Search(len(log), func(i int) bool { return log[i].rev > cursor })
		page = log[i:min(len(log), i+maxLogPage)]
	}
	for _, e := range page {
		if v := h.systemLogView(s.st.convos[e.convoID], e); v != nil {
			out.Logs = append(out.Logs, v)
			continue
		}
		out.Logs = append(out.Logs, h.logView(e))
	}
	next := cursor
	if len(page) > 0 {
		next = page[len(page)-1].rev
	} else if next == "" {
		next = s.latestRev()
	}
	s.mu.Unlock()

	out.Cursor = &next
	s.hydrate(ctx, h)
	return out, nil
}

// logView renders one event as its chat.bsky.convo.defs#log* union member.
func (h *hydrator) logView(e logEntry) *chat.ConvoGetLog_Output_Logs_Elem {
	var mv *chat.ConvoDefs_MessageView
	var dv *chat.ConvoDefs_DeletedMessageView
	var sv *chat.ConvoDefs_SystemMessageView // only logReadMessage may carry one
	if e.msg != nil {
		mv, dv, sv = h.anyMessage(e.msg, e.deleted)
	}
	switch e.kind {
	case logBeginConvo:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogBeginConvo: &chat.ConvoDefs_LogBeginConvo{ConvoId: e.convoID, Rev: e.rev}}
	case logAcceptConvo:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogAcceptConvo: &chat.ConvoDefs_LogAcceptConvo{ConvoId: e.convoID, Rev: e.rev}}
	case logLeaveConvo:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogLeaveConvo: &chat.ConvoDefs_LogLeaveConvo{ConvoId: e.convoID, Rev: e.rev}}
	case logMuteConvo:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogMuteConvo: &chat.ConvoDefs_LogMuteConvo{ConvoId: e.convoID, Rev: e.rev}}
	case logUnmuteConvo:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogUnmuteConvo: &chat.ConvoDefs_LogUnmuteConvo{ConvoId: e.convoID, Rev: e.rev}}
	case logCreateMessage:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogCreateMessage: &chat.ConvoDefs_LogCreateMessage{
			ConvoId:         e.convoID,
			Rev:             e.rev,
			Message:         &chat.ConvoDefs_LogCreateMessage_Message{ConvoDefs_MessageView: mv, ConvoDefs_DeletedMessageView: dv},
			RelatedProfiles: h.related(e.msg.sender),
		}}
	case logDeleteMessage:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogDeleteMessage: &chat.ConvoDefs_LogDeleteMessage{
			ConvoId: e.convoID,
			Rev:     e.rev,
			Message: &chat.ConvoDefs_LogDeleteMessage_Message{ConvoDefs_MessageView: mv, ConvoDefs_DeletedMessageView: dv},
		}}
	case logReadMessage:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogReadMessage: &chat.ConvoDefs_LogReadMessage{
			ConvoId: e.convoID,
			Rev:     e.rev,
			Message: &chat.ConvoDefs_LogReadMessage_Message{ConvoDefs_MessageView: mv, ConvoDefs_DeletedMessageView: dv, ConvoDefs_SystemMessageView: sv},
		}}
	case logAddReaction:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogAddReaction: &chat.ConvoDefs_LogAddReaction{
			ConvoId:         e.convoID,
			Rev:             e.rev,
			Message:         &chat.ConvoDefs_LogAddReaction_Message{ConvoDefs_MessageView: mv, ConvoDefs_DeletedMessageView: dv},
			Reaction:        reactionView(*e.reaction),
			RelatedProfiles: h.related(e.msg.sender, e.reaction.sender),
		}}
	default: // logRemoveReaction
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogRemoveReaction: &chat.ConvoDefs_LogRemoveReaction{
			ConvoId:         e.convoID,
			Rev:             e.rev,
			Message:         &chat.ConvoDefs_LogRemoveReaction_Message{ConvoDefs_MessageView: mv, ConvoDefs_DeletedMessageView: dv},
			Reaction:        reactionView(*e.reaction),
			RelatedProfiles: h.related(e.msg.sender, e.reaction.sender),
		}}
	}
}
