package devchat

import (
	"net/http"
	"testing"

	"github.com/skydm/skydm/internal/lex/chat"
)

// reply sends text into a convo as u, answering the message parentID.
func (e *env) reply(u *user, convoID, parentID, text string) resp {
	e.t.Helper()
	return e.proc(u, "chat.bsky.convo.sendMessage", map[string]any{
		"convoId": convoID, "message": map[string]any{"text": text, "replyTo": map[string]string{"messageId": parentID}},
	})
}

// parentText is the text of a view's embedded parent messageView, failing
// the test when the parent is not one or itself carries a replyTo.
func parentText(t *testing.T, v *chat.ConvoDefs_MessageView) string {
	t.Helper()
	if v == nil || v.ReplyTo == nil || v.ReplyTo.ConvoDefs_MessageView == nil {
		t.Fatalf("no messageView parent in %+v", v)
	}
	if v.ReplyTo.ConvoDefs_MessageView.ReplyTo != nil {
		t.Fatalf("parent %q embeds its own replyTo: more than one level", v.ReplyTo.ConvoDefs_MessageView.Text)
	}
	return v.ReplyTo.ConvoDefs_MessageView.Text
}

func TestReplyEmbedsItsParentOneLevelDeep(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	first := e.send(alice, c.Id, "lunch?")
	second := ok[chat.ConvoDefs_MessageView](t, e.reply(bob, c.Id, first.Id, "yes, noon"))
	if got := parentText(t, second); got != "lunch?" {
		t.Fatalf("sendMessage answer's parent = %q", got)
	}
	third := ok[chat.ConvoDefs_MessageView](t, e.reply(alice, c.Id, second.Id, "see you"))
	if got := parentText(t, third); got != "yes, noon" {
		t.Fatalf("parent of the reply to a reply = %q", got)
	}

	msgs := e.messages(bob, c.Id).Messages // newest first
	if got := parentText(t, msgs[0].ConvoDefs_MessageView); got != "yes, noon" {
		t.Errorf("getMessages: third's parent = %q", got)
	}
	if msgs[2].ConvoDefs_MessageView.ReplyTo != nil {
		t.Error("getMessages: the first message replies to nothing but has a replyTo")
	}
	var inLog []string
	for _, l := range getLog(t, e, bob, "").Logs {
		if cm := l.ConvoDefs_LogCreateMessage; cm != nil && cm.Message.ConvoDefs_MessageView.ReplyTo != nil {
			inLog = append(inLog, parentText(t, cm.Message.ConvoDefs_MessageView))
		}
	}
	if len(inLog) != 2 || inLog[0] != "lunch?" || inLog[1] != "yes, noon" {
		t.Errorf("getLog createMessage parents = %q", inLog)
	}
	if got := parentText(t, e.convo(alice, c.Id).LastMessage.ConvoDefs_MessageView); got != "yes, noon" {
		t.Errorf("convoView lastMessage parent = %q", got)
	}
}

func TestReplyTargetMustBeAMessageOfTheSameConvo(t *testing.T) {
	e := newEnv(t, false)
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	c := e.open(alice, bob)
	other := e.open(alice, carol)
	elsewhere := e.send(alice, other.Id, "for carol only")
	e.send(alice, c.Id, "hi bob")
	for name, target := range map[string]string{"unknown id": "3zzzzzzzzzzzz", "another convo's message": elsewhere.Id} {
		t.Run(name, func(t *testing.T) {
			wantErr(t, e.reply(bob, c.Id, target, "re"), http.StatusBadRequest, "ReplyTargetNotFound", "not found")
			r := e.proc(bob, "chat.bsky.convo.sendMessageBatch", map[string]any{"items": []any{
				map[string]any{"convoId": c.Id, "message": map[string]any{"text": "fine"}},
				map[string]any{"convoId": c.Id, "message": map[string]any{"text": "re", "replyTo": map[string]string{"messageId": target}}},
			}})
			if r.status != http.StatusBadRequest {
				t.Fatalf("batch with a bad reply target: %d %s", r.status, r.body)
			}
		})
	}
	if n := len(e.messages(bob, c.Id).Messages); n != 1 {
		t.Fatalf("bob's convo has %d messages after refused replies, want 1", n)
	}
}

func TestReplyParentDeletedForTheViewerIsADeletedView(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	first := e.send(alice, c.Id, "oops")
	e.reply(alice, c.Id, first.Id, "ignore that")
	ok[chat.ConvoDefs_DeletedMessageView](t, e.proc(bob, "chat.bsky.convo.deleteMessageForSelf", map[string]string{"convoId": c.Id, "messageId": first.Id}))

	got := e.messages(bob, c.Id).Messages[0].ConvoDefs_MessageView
	if got.ReplyTo == nil || got.ReplyTo.ConvoDefs_DeletedMessageView == nil || got.ReplyTo.ConvoDefs_DeletedMessageView.Id != first.Id {
		t.Fatalf("bob's view of the reply: replyTo %+v, want a deletedMessageView of %s", got.ReplyTo, first.Id)
	}
	if parentText(t, e.messages(alice, c.Id).Messages[0].ConvoDefs_MessageView) != "oops" {
		t.Fatal("alice, who deleted nothing, lost the parent")
	}
}

func TestReplyParentOutsideTheViewersHistoryIsAPlaceholder(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	old := e.send(alice, c.Id, "before you left")
	ok[chat.ConvoLeaveConvo_Output](t, e.proc(bob, "chat.bsky.convo.leaveConvo", map[string]string{"convoId": c.Id}))
	// bob's history now starts after his leave; alice still sees old.
	ok[chat.ConvoDefs_MessageView](t, e.reply(alice, c.Id, old.Id, "remember this?"))

	got := e.messages(bob, c.Id).Messages[0].ConvoDefs_MessageView
	if got.ReplyTo == nil || got.ReplyTo.ConvoDefs_MessageBeforeUserJoinedGroupView == nil {
		t.Fatalf("bob's view of a reply to a message he cannot see: replyTo %+v", got.ReplyTo)
	}
	wantErr(t, e.reply(bob, c.Id, old.Id, "what?"), http.StatusBadRequest, "ReplyTargetNotFound", "not found")
}
