package devchat

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/skydm/skydm/internal/lex/chat"
)

// lockStatus returns u's view of a group's lock status and moderation flag.
func (e *env) lockStatus(u *user, id string) (string, bool) {
	e.t.Helper()
	g := e.convo(u, id).Kind.ConvoDefs_GroupConvo
	return *g.LockStatus, g.LockStatusModerationOverride
}

// wantRefusesContent checks that nothing can be added to a locked group.
func wantRefusesContent(t *testing.T, e *env, owner, member *user, id, msgID string) {
	t.Helper()
	wantErr(t, e.proc(member, "chat.bsky.convo.sendMessage", map[string]any{"convoId": id, "message": map[string]any{"text": "hi"}}),
		http.StatusBadRequest, "ConvoLocked", "locked")
	wantErr(t, e.proc(owner, "chat.bsky.convo.sendMessageBatch", map[string]any{"items": []any{map[string]any{"convoId": id, "message": map[string]any{"text": "hi"}}}}),
		http.StatusBadRequest, "ConvoLocked", "locked")
	wantErr(t, e.proc(member, "chat.bsky.convo.addReaction", map[string]any{"convoId": id, "messageId": msgID, "value": "👍"}),
		http.StatusBadRequest, "ReactionNotAllowed", "locked")
	wantErr(t, e.proc(owner, "chat.bsky.group.editGroup", map[string]any{"convoId": id, "name": "new"}),
		http.StatusBadRequest, "ConvoLocked", "locked")
	wantErr(t, e.proc(owner, "chat.bsky.group.addMembers", map[string]any{"convoId": id, "members": []string{"did:plc:zed"}}),
		http.StatusBadRequest, "ConvoLocked", "locked")
}

func TestLockedGroupTakesNoContentUntilUnlocked(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	bob := e.invitable("bob")[0]
	c := e.createGroup(alice, "g", bob)
	m := e.send(bob, c.Id, "before the lock")
	ok[chat.ConvoAddReaction_Output](t, e.proc(bob, "chat.bsky.convo.addReaction", map[string]any{"convoId": c.Id, "messageId": m.Id, "value": "👀"}))

	wantErr(t, e.proc(bob, "chat.bsky.convo.lockConvo", map[string]any{"convoId": c.Id}), http.StatusBadRequest, "InsufficientRole", "owner")
	locked := ok[chat.ConvoLockConvo_Output](t, e.proc(alice, "chat.bsky.convo.lockConvo", map[string]any{"convoId": c.Id}))
	if g := locked.Convo.Kind.ConvoDefs_GroupConvo; *g.LockStatus != lockLocked || g.LockStatusModerationOverride {
		t.Fatalf("after lockConvo: %+v", g)
	}
	wantErr(t, e.proc(alice, "chat.bsky.convo.lockConvo", map[string]any{"convoId": c.Id}), http.StatusBadRequest, "ConvoLocked", "already")
	wantRefusesContent(t, e, alice, bob, c.Id, m.Id)
	// Taking a reaction back adds nothing, so it is allowed.
	ok[chat.ConvoRemoveReaction_Output](t, e.proc(bob, "chat.bsky.convo.removeReaction", map[string]any{"convoId": c.Id, "messageId": m.Id, "value": "👀"}))
	if ids, _ := e.list(bob, url.Values{"lockStatus": {"locked"}}); len(ids) != 1 {
		t.Errorf("lockStatus=locked = %v", ids)
	}
	if ids, _ := e.list(bob, url.Values{"lockStatus": {"unlocked"}}); len(ids) != 0 {
		t.Errorf("lockStatus=unlocked = %v", ids)
	}

	wantErr(t, e.proc(bob, "chat.bsky.convo.unlockConvo", map[string]any{"convoId": c.Id}), http.StatusBadRequest, "InsufficientRole", "owner")
	ok[chat.ConvoUnlockConvo_Output](t, e.proc(alice, "chat.bsky.convo.unlockConvo", map[string]any{"convoId": c.Id}))
	if st, _ := e.lockStatus(bob, c.Id); st != lockUnlocked {
		t.Fatalf("after unlockConvo: %s", st)
	}
	e.send(bob, c.Id, "after the unlock")
	if got := describe(e.messages(bob, c.Id)); got != "add:bob/standard/by:alice before the lock lock/by:alice unlock/by:alice after the unlock" {
		t.Errorf("history = %s", got)
	}
}

func TestModerationLockCannotBeUnlockedByTheOwner(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	bob := e.invitable("bob")[0]
	c := e.createGroup(alice, "g", bob)
	m := e.send(alice, c.Id, "hi")

	if !e.srv.SetModerationLock(c.Id, true) {
		t.Fatal("SetModerationLock did not find the group")
	}
	if st, mod := e.lockStatus(bob, c.Id); st != lockLocked || !mod {
		t.Fatalf("moderation-locked group shows %s, override %v", st, mod)
	}
	wantRefusesContent(t, e, alice, bob, c.Id, m.Id)
	wantErr(t, e.proc(alice, "chat.bsky.convo.unlockConvo", map[string]any{"convoId": c.Id}), http.StatusBadRequest, "ConvoLockedByModeration", "moderation")

	e.srv.SetModerationLock(c.Id, false)
	if st, mod := e.lockStatus(bob, c.Id); st != lockUnlocked || mod {
		t.Fatalf("after lifting: %s, override %v", st, mod)
	}
	e.send(bob, c.Id, "back")
	if e.srv.SetModerationLock(e.open(alice, bob).Id, true) {
		t.Error("SetModerationLock locked a direct convo")
	}
}

func TestOwnerLeavesOnlyALockedGroupWhichThenStaysLocked(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	bob := e.invitable("bob")[0]
	c := e.createGroup(alice, "g", bob)

	wantErr(t, e.proc(alice, "chat.bsky.convo.leaveConvo", map[string]any{"convoId": c.Id}), http.StatusBadRequest, "OwnerCannotLeave", "locking")
	ok[chat.ConvoLockConvo_Output](t, e.proc(alice, "chat.bsky.convo.lockConvo", map[string]any{"convoId": c.Id}))
	ok[chat.ConvoLeaveConvo_Output](t, e.proc(alice, "chat.bsky.convo.leaveConvo", map[string]any{"convoId": c.Id}))
	if ids, _ := e.list(alice, nil); len(ids) != 0 {
		t.Errorf("alice still lists %v", ids)
	}
	if st, _ := e.lockStatus(bob, c.Id); st != lockPermanently {
		t.Errorf("lock status after the owner left = %s", st)
	}
	if got := describe(e.messages(bob, c.Id)); got != "add:bob/standard/by:alice lock/by:alice lockPermanently/by:alice leave:alice" {
		t.Errorf("history = %s", got)
	}
	if got := logTypes(getLog(t, e, bob, "")); got[len(got)-2] != "logLockConvoPermanently" || got[len(got)-1] != "logMemberLeave" {
		t.Errorf("bob's log = %v", got)
	}
	wantErr(t, e.proc(bob, "chat.bsky.convo.sendMessage", map[string]any{"convoId": c.Id, "message": map[string]any{"text": "hi"}}),
		http.StatusBadRequest, "ConvoLocked", "locked")
}

func TestUnreadCountsSkipLockedGroupsAndGroupsOnRequest(t *testing.T) {
	e := newEnv(t, false)
	alice, carol := e.user("alice"), e.user("carol")
	bob := e.invitable("bob")[0]
	g := e.createGroup(alice, "g", bob)
	e.send(bob, g.Id, "hi group")
	e.send(carol, e.open(carol, alice).Id, "hi direct")

	counts := func(params url.Values) unreadCountsOutput {
		return *ok[unreadCountsOutput](t, e.query(alice, "chat.bsky.convo.getUnreadCounts", params))
	}
	if got := counts(nil); got.UnreadAcceptedConvos != 1 || got.UnreadRequestConvos != 1 {
		t.Errorf("counts = %+v, want the group (accepted) and carol (request)", got)
	}
	if got := counts(url.Values{"includeGroupChats": {"false"}}); got.UnreadAcceptedConvos != 0 || got.UnreadRequestConvos != 1 {
		t.Errorf("includeGroupChats=false: %+v", got)
	}
	ok[chat.ConvoLockConvo_Output](t, e.proc(alice, "chat.bsky.convo.lockConvo", map[string]any{"convoId": g.Id}))
	if got := counts(nil); got.UnreadAcceptedConvos != 0 {
		t.Errorf("a locked group is counted: %+v", got)
	}
}
