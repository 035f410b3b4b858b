package dm

import (
	"context"
	"net/http"
	"strconv"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/internal/websession"
	"github.com/skydm/skydm/views"
)

// This file is replies (messageInput.replyTo): the quote a reply shows, the
// composer replying to a message (?reply=), and a conversation opened at a
// message (?at=).

// atSearchPages bounds how far back the pages look for a message that is
// not on the latest page (?at=, ?reply=): this many getMessages pages of
// messagesPageSize, 250 messages. Past it, ?at= shows the oldest page it
// reached with a "Keep looking further back" link that goes on from there,
// and ?reply= says the message is not there.
const atSearchPages = 5

// quote converts the parent a reply embeds (messageView.replyTo); nil for
// none or a kind skydm does not know.
func (c msgConv) quote(r *chat.ConvoDefs_MessageView_ReplyTo) *views.QuotedVM {
	switch {
	case r == nil:
		return nil
	case r.ConvoDefs_MessageView != nil:
		p := r.ConvoDefs_MessageView
		q := &views.QuotedVM{ID: p.Id, Text: chatproxy.MessageText(chatproxy.MessageItem{Message: p})}
		if p.Sender != nil {
			q.Own, q.SenderName = p.Sender.Did == c.viewer, c.name(p.Sender.Did)
		}
		return q
	case r.ConvoDefs_DeletedMessageView != nil:
		p := r.ConvoDefs_DeletedMessageView
		q := &views.QuotedVM{ID: p.Id, Deleted: true}
		if p.Sender != nil {
			q.Own, q.SenderName = p.Sender.Did == c.viewer, c.name(p.Sender.Did)
		}
		return q
	case r.ConvoDefs_MessageBeforeUserJoinedGroupView != nil:
		return &views.QuotedVM{BeforeJoined: true}
	}
	return nil
}

// quotesOnPage marks the quotes whose parent is among msgs, so they link
// to it in place.
func quotesOnPage(msgs []views.MessageVM) {
	var ids map[string]bool
	for _, m := range msgs {
		if m.ReplyTo != nil && m.ReplyTo.ID != "" {
			if ids == nil {
				ids = make(map[string]bool, len(msgs))
				for _, o := range msgs {
					ids[o.ID] = true
				}
			}
			m.ReplyTo.OnPage = ids[m.ReplyTo.ID]
		}
	}
}

// quoteNames adds to names, from the names seen on pages, the sender of m
// and of the message it replies to, where names does not have them yet: a
// message rendered on its own (sent, or arriving live) names its quote's
// sender like the page does.
func (s *Pages) quoteNames(names dmNames, m *chat.ConvoDefs_MessageView) {
	add := func(sd *chat.ConvoDefs_MessageViewSender) {
		if sd != nil && names[sd.Did] == "" {
			if n := s.dm.names.get(sd.Did); n != "" {
				names[sd.Did] = n
			}
		}
	}
	if m == nil {
		return
	}
	add(m.Sender)
	if r := m.ReplyTo; r != nil {
		switch {
		case r.ConvoDefs_MessageView != nil:
			add(r.ConvoDefs_MessageView.Sender)
		case r.ConvoDefs_DeletedMessageView != nil:
			add(r.ConvoDefs_DeletedMessageView.Sender)
		}
	}
}

// messagesAt is the page of messages a conversation shows: the one at
// cursor, or, for a GET with ?at=<message id>, the first page from cursor
// back that holds that message, looking at most atSearchPages pages back
// (the last one looked at when it is not found). It returns the cursor the
// page was fetched with.
func (s *Pages) messagesAt(ctx context.Context, r *http.Request, c Chat, id, cursor string) (*chatproxy.MessagePage, string, error) {
	at := ""
	if r.Method == http.MethodGet {
		at = r.URL.Query().Get("at")
	}
	page, err := c.GetMessages(ctx, id, cursor, messagesPageSize)
	if err != nil || !validID(at) {
		return page, cursor, err
	}
	for i := 1; i < atSearchPages && !pageHas(page, at) && page.Cursor != ""; i++ {
		next, err := c.GetMessages(ctx, id, page.Cursor, messagesPageSize)
		if err != nil {
			return nil, "", err
		}
		cursor, page = page.Cursor, next
	}
	return page, cursor, nil
}

func pageHas(p *chatproxy.MessagePage, id string) bool {
	for _, it := range p.Messages {
		if it.ID == id {
			return true
		}
	}
	return false
}

// openAt says on a page opened ?at=<id> (messagesAt) when the message is
// not on it: further back than one search looks (with the cursor to go
// on from), or not in the conversation.
func openAt(vm *views.ConvoVM, at string) {
	if !validID(at) {
		return
	}
	vm.At = at
	for _, m := range vm.Messages {
		if m.ID == at {
			return
		}
	}
	if vm.EarlierCursor != "" {
		vm.AtMore = vm.EarlierCursor
		vm.Notice = "That message is further back than the " + strconv.Itoa(atSearchPages*messagesPageSize) + " messages looked through. These are the oldest of them."
		return
	}
	vm.Notice = "That message is not in this conversation any more."
}

// replyTarget sets the composer of vm replying to message replyID: from
// the page, or looked for further back (atSearchPages). A message that is
// not there, is deleted, or cannot be shown sets ReplyMissing instead.
func (s *Pages) replyTarget(ctx context.Context, acct websession.Account, c Chat, vm *views.ConvoVM, replyID string) {
	if replyID == "" {
		return
	}
	canReply := func(m *views.MessageVM) {
		if m.Deleted || m.Unsupported || m.System {
			vm.ReplyMissing = true
			return
		}
		vm.ReplyTo = m
	}
	if !validID(replyID) {
		vm.ReplyMissing = true
		return
	}
	for i := range vm.Messages {
		if vm.Messages[i].ID == replyID {
			canReply(&vm.Messages[i])
			return
		}
	}
	conv := msgConv{viewer: acct.DID.String(), names: dmNames{}, links: s.dm.links, postBase: s.dm.cfg.PostBase}
	cursor := vm.EarlierCursor
	for i := 0; i < atSearchPages && cursor != ""; i++ {
		page, err := c.GetMessages(ctx, vm.ID, cursor, messagesPageSize)
		if err != nil {
			vm.Notice = "The message you are replying to could not be loaded just now."
			return
		}
		for _, it := range page.Messages {
			if it.ID == replyID {
				s.quoteNames(conv.names, it.Message)
				m := conv.item(it)
				canReply(&m)
				return
			}
		}
		cursor = page.Cursor
	}
	vm.ReplyMissing = true
}
