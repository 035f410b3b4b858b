package devchat

import (
	"net/http"
	"slices"
	"testing"

	"github.com/skydm/skydm/internal/lex/chat"
)

func TestReactions(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	m := e.send(alice, c.Id, "react to me")
	body := func(v string) map[string]string {
		return map[string]string{"convoId": c.Id, "messageId": m.Id, "value": v}
	}
	add := func(v string) resp { return e.proc(bob, "chat.bsky.convo.addReaction", body(v)) }
	remove := func(v string) resp { return e.proc(bob, "chat.bsky.convo.removeReaction", body(v)) }
	values := func(mv *chat.ConvoDefs_MessageView) []string {
		var out []string
		for _, r := range mv.Reactions {
			out = append(out, r.Value)
		}
		return out
	}

	got := ok[chat.ConvoAddReaction_Output](t, add("👍"))
	if !slices.Equal(values(got.Message), []string{"👍"}) || got.Message.Reactions[0].Sender.Did != bob.did.String() {
		t.Fatalf("after add: %+v", got.Message.Reactions)
	}
	if got := ok[chat.ConvoAddReaction_Output](t, add("👍")); len(got.Message.Reactions) != 1 {
		t.Fatalf("adding twice is not idempotent: %v", values(got.Message))
	}
	if lr := e.convo(alice, c.Id).LastReaction; lr == nil || lr.ConvoDefs_MessageAndReactionView.Reaction.Value != "👍" {
		t.Errorf("lastReaction = %+v", lr)
	}
	if got := ok[chat.ConvoRemoveReaction_Output](t, remove("👍")); len(got.Message.Reactions) != 0 {
		t.Fatalf("after remove: %v", values(got.Message))
	}
	if got := ok[chat.ConvoRemoveReaction_Output](t, remove("👍")); len(got.Message.Reactions) != 0 {
		t.Fatalf("removing twice is not idempotent: %v", values(got.Message))
	}

	tests := []struct {
		name, value      string
		status           int
		wantName, wantIn string
	}{
		{"two graphemes", "👍👍", 400, "InvalidRequest", "1 grapheme"},
		{"letter", "a", 400, "ReactionInvalidValue", "emoji"},
		{"digit", "7", 400, "ReactionInvalidValue", "emoji"},
		{"too long", "👍" + string(make([]rune, 70)), 400, "InvalidRequest", "64"},
		{"empty", "", 400, "InvalidRequest", `"value"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, add(tc.value), tc.status, tc.wantName, tc.wantIn) })
	}

	for _, v := range []string{"❤️", "🇫🇷", "1️⃣", "👍🏽", "👨‍👩‍👧"} {
		ok[chat.ConvoAddReaction_Output](t, add(v))
	}
	wantErr(t, add("🔥"), http.StatusBadRequest, "ReactionLimitReached", "5")
	if got := ok[chat.ConvoAddReaction_Output](t, add("❤️")); len(got.Message.Reactions) != 5 {
		t.Errorf("re-adding an existing reaction at the limit: %v", values(got.Message))
	}
	if got := ok[chat.ConvoAddReaction_Output](t, e.proc(alice, "chat.bsky.convo.addReaction", body("🔥"))); len(got.Message.Reactions) != 6 {
		t.Errorf("the limit is per user: %v", values(got.Message))
	}

	ok[chat.ConvoDefs_DeletedMessageView](t, e.proc(bob, "chat.bsky.convo.deleteMessageForSelf", map[string]string{"convoId": c.Id, "messageId": m.Id}))
	wantErr(t, remove("❤️"), http.StatusBadRequest, "ReactionMessageDeleted", "")
	wantErr(t, add("🎉"), http.StatusBadRequest, "ReactionMessageDeleted", "")
	wantErr(t, e.proc(bob, "chat.bsky.convo.addReaction", map[string]string{"convoId": c.Id, "messageId": "nope", "value": "🎉"}), http.StatusBadRequest, "InvalidRequest", "Message not found")
}
