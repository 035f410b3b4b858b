package handlers

import (
	"context"
	"strconv"
	"testing"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/handlers/dm"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/internal/websession"
)

// replyChat is fakeChat as a chat service that knows replies: getMessages
// pages (its limit, cursor = how many newer messages were skipped), and
// sendMessage refuses a replyTo it does not have (ReplyTargetNotFound) and
// embeds the parent in the stored reply.
type replyChat struct{ *fakeChat }

// replyChats hands every account the same replyChat.
type replyChats struct{ c replyChat }

func (f replyChats) Chat(context.Context, websession.Account) (dm.Chat, error) { return f.c, nil }

// newReplyApp is newDMApp over a replyChat.
func newReplyApp(t *testing.T) *dmApp {
	t.Helper()
	return newDMApp(t, func(d *DMs) { d.Chats = replyChats{replyChat{d.Chats.(fakeChats).c}} })
}

func (f replyChat) ForRecipient(string) dm.Chat { return f }

func (f replyChat) GetMessages(ctx context.Context, id, cursor string, limit int64) (*chatproxy.MessagePage, error) {
	all, err := f.fakeChat.GetMessages(ctx, id, "", 0)
	if err != nil {
		return nil, err
	}
	from, _ := strconv.Atoi(cursor)
	if limit <= 0 {
		limit = 50
	}
	to := min(from+int(limit), len(all.Messages))
	page := &chatproxy.MessagePage{Messages: all.Messages[min(from, to):to]}
	if to < len(all.Messages) {
		page.Cursor = strconv.Itoa(to)
	}
	return page, nil
}

func (f replyChat) SendMessage(ctx context.Context, id string, in chatproxy.MessageInput) (*chat.ConvoDefs_MessageView, error) {
	var parent *chat.ConvoDefs_MessageView
	if in.ReplyTo != "" {
		f.mu.Lock()
		for _, m := range f.msgs[id] {
			if m.Id == in.ReplyTo {
				parent = clone(m)
			}
		}
		f.mu.Unlock()
		if parent == nil {
			f.enter(ctx, "SendMessage")
			return nil, chatproxy.ReplyTargetNotFound()
		}
	}
	out, err := f.fakeChat.SendMessage(ctx, id, in)
	if err != nil || parent == nil {
		return out, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs[id][0].ReplyTo = &chat.ConvoDefs_MessageView_ReplyTo{ConvoDefs_MessageView: parent}
	out.ReplyTo = f.msgs[id][0].ReplyTo
	return out, nil
}
