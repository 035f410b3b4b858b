package devchat

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/skydm/skydm/internal/lex/chat"
)

func getLog(t *testing.T, e *env, u *user, cursor string) *chat.ConvoGetLog_Output {
	t.Helper()
	params := url.Values{}
	if cursor != "" {
		params.Set("cursor", cursor)
	}
	out := ok[chat.ConvoGetLog_Output](t, e.query(u, "chat.bsky.convo.getLog", params))
	if out.Cursor == nil || *out.Cursor == "" {
		t.Fatal("getLog returned no cursor")
	}
	revs := []string{}
	for _, l := range out.Logs {
		revs = append(revs, logRev(l))
	}
	if !slices.IsSorted(revs) || len(slices.Compact(slices.Clone(revs))) != len(revs) {
		t.Fatalf("revs not strictly ascending: %v", revs)
	}
	if cursor != "" && len(revs) > 0 && revs[0] <= cursor {
		t.Fatalf("event %s not newer than cursor %s", revs[0], cursor)
	}
	return out
}

func TestGetLogCursorsReturnOnlyNewerEventsInRevOrder(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")

	empty := getLog(t, e, bob, "")
	if len(empty.Logs) != 0 {
		t.Fatalf("fresh log = %v", logTypes(empty))
	}

	c := e.open(alice, bob)
	m := e.send(alice, c.Id, "hi")
	first := getLog(t, e, bob, "")
	if got := strings.Join(logTypes(first), ","); got != "logBeginConvo,logCreateMessage" {
		t.Fatalf("bob's log = %s", got)
	}
	if create := first.Logs[1].ConvoDefs_LogCreateMessage; create.Rev != m.Rev || create.Message.ConvoDefs_MessageView.Text != "hi" ||
		len(create.RelatedProfiles) != 1 || create.RelatedProfiles[0].Handle != "alice.test" {
		t.Fatalf("logCreateMessage = %+v", create)
	}
	if again := getLog(t, e, bob, *first.Cursor); len(again.Logs) != 0 || *again.Cursor != *first.Cursor {
		t.Fatalf("replaying the latest cursor gave %v, cursor %s", logTypes(again), *again.Cursor)
	}
	if got := strings.Join(logTypes(getLog(t, e, alice, "")), ","); got != "logBeginConvo,logCreateMessage" {
		t.Fatalf("alice's log = %s", got)
	}

	reply := e.send(bob, c.Id, "hello")
	ok[chat.ConvoAddReaction_Output](t, e.proc(alice, "chat.bsky.convo.addReaction", map[string]string{"convoId": c.Id, "messageId": reply.Id, "value": "👍"}))
	ok[chat.ConvoRemoveReaction_Output](t, e.proc(alice, "chat.bsky.convo.removeReaction", map[string]string{"convoId": c.Id, "messageId": reply.Id, "value": "👍"}))
	e.send(alice, c.Id, "and?")
	ok[chat.ConvoUpdateRead_Output](t, e.proc(bob, "chat.bsky.convo.updateRead", map[string]string{"convoId": c.Id}))
	ok[chat.ConvoMuteConvo_Output](t, e.proc(bob, "chat.bsky.convo.muteConvo", map[string]string{"convoId": c.Id}))
	ok[chat.ConvoUnmuteConvo_Output](t, e.proc(bob, "chat.bsky.convo.unmuteConvo", map[string]string{"convoId": c.Id}))
	ok[chat.ConvoDefs_DeletedMessageView](t, e.proc(bob, "chat.bsky.convo.deleteMessageForSelf", map[string]string{"convoId": c.Id, "messageId": m.Id}))
	ok[chat.ConvoLeaveConvo_Output](t, e.proc(bob, "chat.bsky.convo.leaveConvo", map[string]string{"convoId": c.Id}))

	next := getLog(t, e, bob, *first.Cursor)
	want := "logAcceptConvo,logCreateMessage,logAddReaction,logRemoveReaction,logCreateMessage,logReadMessage,logMuteConvo,logUnmuteConvo,logDeleteMessage,logLeaveConvo"
	if got := strings.Join(logTypes(next), ","); got != want {
		t.Fatalf("newer events = %s\nwant           %s", got, want)
	}
	if add := next.Logs[2].ConvoDefs_LogAddReaction; add.Reaction.Value != "👍" || add.Message.ConvoDefs_MessageView.Id != reply.Id || len(add.RelatedProfiles) != 2 {
		t.Errorf("logAddReaction = %+v", add)
	}
	if del := next.Logs[8].ConvoDefs_LogDeleteMessage; del.Message.ConvoDefs_DeletedMessageView == nil {
		t.Errorf("logDeleteMessage carries %+v", del.Message)
	}
	// Alice saw the reply and her own reactions, not bob's per-member events.
	if got := strings.Join(logTypes(getLog(t, e, alice, *first.Cursor)), ","); got != "logCreateMessage,logAddReaction,logRemoveReaction,logCreateMessage" {
		t.Errorf("alice's newer events = %s", got)
	}
}

func TestGetLogPagesLongLogs(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	for i := range 150 {
		e.send(alice, c.Id, fmt.Sprintf("m%d", i))
	}
	newest := getLog(t, e, bob, "")
	if len(newest.Logs) != 100 || newest.Logs[99].ConvoDefs_LogCreateMessage.Message.ConvoDefs_MessageView.Text != "m149" {
		t.Fatalf("no-cursor page has %d events", len(newest.Logs))
	}
	// Walk from the very beginning by using a cursor older than everything.
	cursor := "2222222222222"
	total := 0
	for range 5 {
		page := getLog(t, e, bob, cursor)
		total += len(page.Logs)
		if len(page.Logs) == 0 {
			break
		}
		cursor = *page.Cursor
	}
	if total != 151 { // logBeginConvo + 150 messages
		t.Fatalf("walked %d events, want 151", total)
	}
	if cursor != *newest.Cursor {
		t.Errorf("walk ended at %s, newest page cursor is %s", cursor, *newest.Cursor)
	}
}
