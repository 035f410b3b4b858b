package devchat

import (
	"net/http"
	"testing"

	"github.com/skydm/skydm/internal/lex/chat"
)

// Replies and blocks in group convos (the group methods are groups.go's).

func TestGroupReplyToAMessageFromBeforeTheViewerJoined(t *testing.T) {
	e := newEnv(t, false)
	us := e.invitable("alice", "bob", "carol")
	alice, bob, carol := us[0], us[1], us[2]
	c := e.createGroup(alice, "trip", bob)
	before := e.send(alice, c.Id, "flights are booked")
	ok[chat.GroupAddMembers_Output](t, e.proc(alice, "chat.bsky.group.addMembers", map[string]any{"convoId": c.Id, "members": dids(carol)}))
	ok[chat.ConvoDefs_MessageView](t, e.reply(bob, c.Id, before.Id, "which airline?"))

	if got := parentText(t, e.messages(alice, c.Id).Messages[0].ConvoDefs_MessageView); got != "flights are booked" {
		t.Errorf("alice's parent = %q", got)
	}
	got := e.messages(carol, c.Id).Messages[0].ConvoDefs_MessageView
	if got == nil || got.ReplyTo == nil || got.ReplyTo.ConvoDefs_MessageBeforeUserJoinedGroupView == nil {
		t.Fatalf("carol, who joined after the parent, sees %+v", got)
	}
	wantErr(t, e.reply(carol, c.Id, before.Id, "me too"), http.StatusBadRequest, "ReplyTargetNotFound", "not found")
}

func TestGroupSystemMessagesCannotBeRepliedTo(t *testing.T) {
	e := newEnv(t, false)
	us := e.invitable("alice", "bob", "carol")
	alice, bob, carol := us[0], us[1], us[2]
	c := e.createGroup(alice, "trip", bob)
	ok[chat.GroupAddMembers_Output](t, e.proc(alice, "chat.bsky.group.addMembers", map[string]any{"convoId": c.Id, "members": dids(carol)}))
	var system string
	for _, m := range e.messages(alice, c.Id).Messages {
		if m.ConvoDefs_SystemMessageView != nil {
			system = m.ConvoDefs_SystemMessageView.Id
		}
	}
	if system == "" {
		t.Fatal("no system message to reply to")
	}
	wantErr(t, e.reply(alice, c.Id, system, "welcome!"), http.StatusBadRequest, "ReplyTargetNotFound", "not found")
}

func TestGroupCreateAndAddRefuseEitherBlock(t *testing.T) {
	e := newEnv(t, false)
	us := e.invitable("alice", "bob", "carol", "dave")
	alice, bob, carol, dave := us[0], us[1], us[2], us[3]
	e.recs.block(alice.did, carol.did) // alice blocks carol
	e.recs.block(dave.did, alice.did)  // dave blocks alice
	wantErr(t, e.proc(alice, "chat.bsky.group.createGroup", map[string]any{"name": "g", "members": dids(bob, carol)}),
		http.StatusBadRequest, "BlockedActor", blockMessage)
	c := e.createGroup(alice, "g", bob)
	wantErr(t, e.proc(alice, "chat.bsky.group.addMembers", map[string]any{"convoId": c.Id, "members": dids(dave)}),
		http.StatusBadRequest, "BlockedSubject", blockMessage)
}
