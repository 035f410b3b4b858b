package devchat

import "github.com/skydm/skydm/internal/lex/chat"

// getLog events about join requests. They carry no system message: only
// the owner (incoming, approve, reject, read) or the requester (outgoing,
// withdraw) gets them.
const (
	logIncomingJoinRequest logKind = 100 + iota // numbered apart from log.go's kinds
	logApproveJoinRequest
	logRejectJoinRequest
	logOutgoingJoinRequest
	logWithdrawIncomingJoinRequest
	logWithdrawOutgoingJoinRequest
	logReadJoinRequests
)

// joinLogView renders a join-request event, or nil when e is not one.
// logEntry.subject is the prospective member.
func (h *hydrator) joinLogView(e logEntry) *chat.ConvoGetLog_Output_Logs_Elem {
	switch e.kind {
	case logIncomingJoinRequest:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogIncomingJoinRequest: &chat.ConvoDefs_LogIncomingJoinRequest{ConvoId: e.convoID, Rev: e.rev, Member: h.profile(e.subject)}}
	case logApproveJoinRequest:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogApproveJoinRequest: &chat.ConvoDefs_LogApproveJoinRequest{ConvoId: e.convoID, Rev: e.rev, Member: h.profile(e.subject)}}
	case logRejectJoinRequest:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogRejectJoinRequest: &chat.ConvoDefs_LogRejectJoinRequest{ConvoId: e.convoID, Rev: e.rev, Member: h.profile(e.subject)}}
	case logOutgoingJoinRequest:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogOutgoingJoinRequest: &chat.ConvoDefs_LogOutgoingJoinRequest{ConvoId: e.convoID, Rev: e.rev}}
	case logWithdrawIncomingJoinRequest:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogWithdrawIncomingJoinRequest: &chat.ConvoDefs_LogWithdrawIncomingJoinRequest{ConvoId: e.convoID, Rev: e.rev, Member: h.profile(e.subject)}}
	case logWithdrawOutgoingJoinRequest:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogWithdrawOutgoingJoinRequest: &chat.ConvoDefs_LogWithdrawOutgoingJoinRequest{ConvoId: e.convoID, Rev: e.rev}}
	case logReadJoinRequests:
		return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogReadJoinRequests: &chat.ConvoDefs_LogReadJoinRequests{ConvoId: e.convoID, Rev: e.rev}}
	}
	return nil
}
