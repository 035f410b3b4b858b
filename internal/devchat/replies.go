package devchat

import "github.com/skydm/skydm/internal/lex/chat"

// Replies (chat.bsky.convo.defs#replyRef): a message may name another
// message of the same convo as the one it answers. Views embed that parent
// one level deep, as the viewer may see it.

// findParent resolves d.replyTo to a message of c in the sender's history,
// or answers ReplyTargetNotFound (an unknown id, another convo's message, a
// system message, or one from before the sender's history began). Requires
// Server.mu.
func (d *draft) findParent(c *convo, ms *memberState) error {
	d.parent = nil
	if d.replyTo == "" {
		return nil
	}
	p, ok := c.byID[d.replyTo]
	if !ok || p.system != nil || !ms.sees(p) {
		return badRequest("ReplyTargetNotFound", "the message replied to was not found in this convo")
	}
	d.parent = p
	return nil
}

// reply sets v.ReplyTo to m's parent as the member ms sees it: a
// messageView without its own replyTo, a deletedMessageView when ms deleted
// it, or a messageBeforeUserJoinedGroupView when it is not in ms's history.
// It does nothing for a deleted view (v nil) or a message that replies to
// nothing. Requires Server.mu.
func (h *hydrator) reply(v *chat.ConvoDefs_MessageView, m *message, ms *memberState) {
	if v == nil || m.replyTo == nil {
		return
	}
	p := m.replyTo
	switch {
	case ms != nil && !ms.sees(p):
		v.ReplyTo = &chat.ConvoDefs_MessageView_ReplyTo{ConvoDefs_MessageBeforeUserJoinedGroupView: &chat.ConvoDefs_MessageBeforeUserJoinedGroupView{}}
	case ms != nil && ms.hidden[p.id]:
		v.ReplyTo = &chat.ConvoDefs_MessageView_ReplyTo{ConvoDefs_DeletedMessageView: deletedView(p)}
	default:
		pv, _ := h.message(p, false)
		v.ReplyTo = &chat.ConvoDefs_MessageView_ReplyTo{ConvoDefs_MessageView: pv}
	}
}
