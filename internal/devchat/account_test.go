package devchat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/skydm/skydm/internal/lex/chat"
)

// export returns u's exportAccountData answer, one decoded value per line.
func (e *env) export(u *user) []map[string]any {
	e.t.Helper()
	method := "chat.bsky.actor.exportAccountData"
	r, err := e.raw(context.Background(), http.MethodGet, method, "Bearer "+e.token(u, method), nil, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/jsonl" {
		e.t.Fatalf("export: %d %s: %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		var v map[string]any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			e.t.Fatalf("export line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, v)
	}
	return lines
}

func TestExportAccountDataIsTheHistoryAsJSONLines(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	first := e.send(alice, c.Id, "one")
	e.reply(bob, c.Id, first.Id, "two")
	gone := e.send(alice, c.Id, "three")
	e.proc(bob, "chat.bsky.convo.deleteMessageForSelf", map[string]string{"convoId": c.Id, "messageId": gone.Id})

	lines := e.export(bob)
	if members, _ := lines[0]["members"].([]any); len(members) != 2 || members[0].(map[string]any)["handle"] != "alice.test" {
		t.Errorf("exported convoView members = %v, want hydrated profiles", lines[0]["members"])
	}
	var got []string
	for _, l := range lines {
		typ := strings.TrimPrefix(l["$type"].(string), "chat.bsky.convo.defs#")
		if text, ok := l["text"].(string); ok {
			typ += ":" + text
		}
		if _, ok := l["replyTo"]; ok {
			typ += "(reply)"
		}
		got = append(got, typ)
	}
	want := "convoView,messageView:one,messageView:two(reply),deletedMessageView"
	if strings.Join(got, ",") != want {
		t.Fatalf("bob's export = %s, want %s", strings.Join(got, ","), want)
	}
	if lines := e.export(e.user("carol")); len(lines) != 0 {
		t.Fatalf("an account without chats exports %v", lines)
	}
}

func TestDeleteAccountDropsTheCallersChats(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	e.send(alice, c.Id, "hello")
	e.proc(bob, "chat.bsky.notification.putPreferences", map[string]any{"chat": map[string]any{"include": "follows", "push": false}})

	ok[chat.ActorDeleteAccount_Output](t, e.proc(bob, "chat.bsky.actor.deleteAccount", map[string]any{}))
	if ids, _ := e.list(bob, nil); len(ids) != 0 {
		t.Errorf("bob still lists %v", ids)
	}
	if logs := getLog(t, e, bob, "").Logs; len(logs) != 0 {
		t.Errorf("bob's log still has %d events", len(logs))
	}
	if p := e.prefs(bob); p.Chat.Include != "all" {
		t.Errorf("bob's preferences survived: %+v", *p.Chat)
	}
	if lines := e.export(bob); len(lines) != 0 {
		t.Errorf("bob's export after deletion: %v", lines)
	}
	if msgs := e.messages(alice, c.Id).Messages; len(msgs) != 1 {
		t.Errorf("alice's history changed: %d messages", len(msgs))
	}
}

// TestGetStatusAnswersTheLexicon: the test client checks the answer against
// chat.bsky.actor.getStatus's output schema.
func TestGetStatusAnswersTheLexicon(t *testing.T) {
	e := newEnv(t, false)
	out := ok[chat.ActorGetStatus_Output](t, e.query(e.user("alice"), "chat.bsky.actor.getStatus", nil))
	if out.ChatDisabled {
		t.Fatal("a fresh account has chat disabled")
	}
}
