package devchat

import (
	"slices"
	"testing"
)

// TestGetLogProducesEveryEventTypeTheLexiconDeclares walks a convo through
// every change devchat logs; each answer is checked against the lexicon by
// the test client.
func TestGetLogProducesEveryEventTypeTheLexiconDeclares(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	first := e.send(alice, c.Id, "hi")
	e.proc(bob, "chat.bsky.convo.acceptConvo", map[string]string{"convoId": c.Id})
	e.proc(bob, "chat.bsky.convo.updateRead", map[string]string{"convoId": c.Id})
	e.reply(bob, c.Id, first.Id, "hello")
	e.proc(bob, "chat.bsky.convo.addReaction", map[string]string{"convoId": c.Id, "messageId": first.Id, "value": "👍"})
	e.proc(bob, "chat.bsky.convo.removeReaction", map[string]string{"convoId": c.Id, "messageId": first.Id, "value": "👍"})
	e.proc(bob, "chat.bsky.convo.muteConvo", map[string]string{"convoId": c.Id})
	e.proc(bob, "chat.bsky.convo.unmuteConvo", map[string]string{"convoId": c.Id})
	e.proc(bob, "chat.bsky.convo.deleteMessageForSelf", map[string]string{"convoId": c.Id, "messageId": first.Id})
	e.proc(bob, "chat.bsky.convo.leaveConvo", map[string]string{"convoId": c.Id})

	got := logTypes(getLog(t, e, bob, ""))
	for _, want := range []string{
		"logBeginConvo", "logAcceptConvo", "logCreateMessage", "logReadMessage", "logAddReaction",
		"logRemoveReaction", "logMuteConvo", "logUnmuteConvo", "logDeleteMessage", "logLeaveConvo",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("bob's log lacks %s: %v", want, got)
		}
	}
}
