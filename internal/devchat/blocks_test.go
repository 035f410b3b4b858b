package devchat

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

// block records that who blocks whom; it returns the record key, for unblock.
func (f *fakeRecords) block(who, whom syntax.DID) string {
	rkey := syntax.NewTIDNow(0).String()
	f.put(who, collBlock, rkey, map[string]string{"$type": "app.bsky.graph.block", "subject": whom.String(), "createdAt": "2026-01-01T00:00:00Z"})
	return rkey
}

func TestGetConvoForMembersRefusesEitherBlock(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	e.recs.block(alice.did, bob.did)
	members := func(u *user) url.Values { return url.Values{"members": {u.did.String()}} }
	wantErr(t, e.query(alice, "chat.bsky.convo.getConvoForMembers", members(bob)), http.StatusBadRequest, "BlockedActor", blockMessage)
	wantErr(t, e.query(bob, "chat.bsky.convo.getConvoForMembers", members(alice)), http.StatusBadRequest, "BlockedSubject", blockMessage)
}

func TestConvoAvailabilityIsFalseAcrossABlock(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	e.send(alice, c.Id, "hi")
	rkey := e.recs.block(bob.did, alice.did)
	for _, u := range []struct{ who, other *user }{{alice, bob}, {bob, alice}} {
		out := ok[chat.ConvoGetConvoAvailability_Output](t, e.query(u.who, "chat.bsky.convo.getConvoAvailability", url.Values{"members": {u.other.did.String()}}))
		if out.CanChat || out.Convo == nil || out.Convo.Id != c.Id {
			t.Errorf("%s: canChat %v convo %v, want false and the existing convo", u.who.handle, out.CanChat, out.Convo)
		}
	}
	e.recs.del(bob.did, collBlock, rkey)
	if out := ok[chat.ConvoGetConvoAvailability_Output](t, e.query(alice, "chat.bsky.convo.getConvoAvailability", url.Values{"members": {bob.did.String()}})); !out.CanChat {
		t.Error("canChat stays false after the unblock")
	}
}

func TestSendingIntoADirectConvoAcrossABlockIsRefused(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	e.send(alice, c.Id, "hi")
	e.proc(bob, "chat.bsky.convo.acceptConvo", map[string]string{"convoId": c.Id})
	e.recs.block(alice.did, bob.did)

	for _, u := range []*user{alice, bob} {
		r := e.proc(u, "chat.bsky.convo.sendMessage", map[string]any{"convoId": c.Id, "message": map[string]any{"text": "still there?"}})
		wantErr(t, r, http.StatusBadRequest, "InvalidRequest", blockMessage)
		r = e.proc(u, "chat.bsky.convo.sendMessageBatch", map[string]any{"items": []any{map[string]any{"convoId": c.Id, "message": map[string]any{"text": "batch"}}}})
		wantErr(t, r, http.StatusBadRequest, "InvalidRequest", blockMessage)
	}
	// The history stays readable for both.
	for _, u := range []*user{alice, bob} {
		if msgs := e.messages(u, c.Id).Messages; len(msgs) != 1 || msgs[0].ConvoDefs_MessageView.Text != "hi" {
			t.Errorf("%s's history after the block: %+v", u.handle, msgs)
		}
	}
}

// TestProfilesCarryTheViewersBlocks: as Bluesky's service does, every
// profile in an answer says whether the viewer blocks that person (the
// block record's URI) and whether that person blocks the viewer.
func TestProfilesCarryTheViewersBlocks(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	e.send(alice, c.Id, "hi")
	member := func(u *user, of syntax.DID) *chat.ActorDefs_ProfileViewBasic {
		t.Helper()
		for _, m := range e.convo(u, c.Id).Members {
			if m.Did == of.String() {
				return m
			}
		}
		t.Fatalf("%s's view of the convo has no member %s", u.handle, of)
		return nil
	}
	if v := member(alice, bob.did).Viewer; v == nil || v.Blocking != nil || v.BlockedBy == nil || *v.BlockedBy {
		t.Fatalf("before any block alice sees bob's viewer state %+v, want not blocking, not blocked by", v)
	}
	rkey := e.recs.block(alice.did, bob.did)
	want := "at://" + alice.did.String() + "/app.bsky.graph.block/" + rkey
	if v := member(alice, bob.did).Viewer; v == nil || v.Blocking == nil || *v.Blocking != want {
		t.Errorf("alice blocks bob: her view of bob %+v, want blocking %s", v, want)
	}
	if v := member(bob, alice.did).Viewer; v == nil || v.BlockedBy == nil || !*v.BlockedBy || v.Blocking != nil {
		t.Errorf("alice blocks bob: his view of alice %+v, want blockedBy", v)
	}
	if v := member(alice, alice.did).Viewer; v != nil {
		t.Errorf("the viewer's own profile has a viewer state %+v", v)
	}
}
