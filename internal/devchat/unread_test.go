package devchat

import (
	"fmt"
	"testing"

	"github.com/skydm/skydm/internal/lex/chat"
)

func (e *env) unreadCounts(u *user) *chat.ConvoGetUnreadCounts_Output {
	e.t.Helper()
	return ok[chat.ConvoGetUnreadCounts_Output](e.t, e.query(u, "chat.bsky.convo.getUnreadCounts", nil))
}

func TestUnreadCountsAreCappedAt100(t *testing.T) {
	e := newEnv(t, false)
	bob := e.user("bob")
	var convos []string
	for i := range 101 {
		u := e.user(fmt.Sprintf("sender%03d", i))
		c := e.open(u, bob)
		e.send(u, c.Id, "hello")
		convos = append(convos, c.Id)
	}
	if got := e.unreadCounts(bob); got.UnreadRequestConvos != 100 || got.UnreadAcceptedConvos != 0 {
		t.Fatalf("101 unread requests counted as %+v, want 100 requests (more than 99)", got)
	}
	for _, id := range convos[:99] {
		e.proc(bob, "chat.bsky.convo.acceptConvo", map[string]string{"convoId": id})
	}
	if got := e.unreadCounts(bob); got.UnreadAcceptedConvos != 99 || got.UnreadRequestConvos != 2 {
		t.Fatalf("after accepting 99: %+v, want 99 accepted and 2 requests", got)
	}
}

func TestUnreadCountsLeaveOutDirectConvosAcrossABlock(t *testing.T) {
	e := newEnv(t, false)
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	for _, u := range []*user{alice, carol} {
		c := e.open(u, bob)
		e.send(u, c.Id, "hello")
	}
	if got := e.unreadCounts(bob); got.UnreadRequestConvos != 2 {
		t.Fatalf("before any block: %+v", got)
	}
	e.recs.block(bob.did, alice.did) // bob blocks alice
	e.recs.block(carol.did, bob.did) // carol blocks bob
	if got := e.unreadCounts(bob); got.UnreadRequestConvos != 0 || got.UnreadAcceptedConvos != 0 {
		t.Fatalf("with blocks both ways: %+v, want nothing counted", got)
	}
}

func TestUnreadCountsStillCountWhenBlocksCannotBeRead(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	e.send(alice, c.Id, "hello")
	e.recs.fail(alice.did, fmt.Errorf("connection refused"))
	if got := e.unreadCounts(bob); got.UnreadRequestConvos != 1 {
		t.Fatalf("with alice's repo unreadable: %+v, want her convo counted", got)
	}
}
