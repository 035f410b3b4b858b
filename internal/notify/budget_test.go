package notify_test

import (
	"context"
	"sync"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/budget"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/notify"
)

// markSender records whether the worker's contexts are budget.Background.
type markSender struct {
	notify.Sender
	mu    sync.Mutex
	marks []bool
}

func (m *markSender) note(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.marks = append(m.marks, budget.IsBackground(ctx))
}

func (m *markSender) Chat(ctx context.Context, did syntax.DID) (notify.Chat, error) {
	m.note(ctx)
	c, err := m.Sender.Chat(ctx, did)
	if err != nil {
		return nil, err
	}
	return markChat{c, m}, nil
}

type markChat struct {
	notify.Chat
	m *markSender
}

func (c markChat) SendMessage(ctx context.Context, convoID string, msg chatproxy.MessageInput) (*chat.ConvoDefs_MessageView, error) {
	c.m.note(ctx)
	return c.Chat.SendMessage(ctx, convoID, msg)
}

// TestDeliveriesAreBackgroundWork: the outbox's calls leave the upstream
// budget's reserve to pages and sends people wait for.
func TestDeliveriesAreBackgroundWork(t *testing.T) {
	bubble(t, func(t *testing.T) {
		var ms *markSender
		e := newEnv(t, func(c *notify.Config) {
			ms = &markSender{Sender: c.Sender}
			c.Sender = ms
		})
		start(t, e.w)
		e.waitState(e.enqueue(alice, bob), notify.StateSent)
		ms.mu.Lock()
		defer ms.mu.Unlock()
		if len(ms.marks) < 2 {
			t.Fatalf("%d calls recorded; want the session and the send", len(ms.marks))
		}
		for i, bg := range ms.marks {
			if !bg {
				t.Errorf("call %d of the delivery is not marked budget.Background", i)
			}
		}
	})
}
