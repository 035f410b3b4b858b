package lexval

import (
	"net/url"
	"strings"
	"testing"
)

func TestOutputFollowsTheLexicon(t *testing.T) {
	const m = "chat.bsky.convo.getUnreadCounts"
	if err := Output(m, []byte(`{"unreadAcceptedConvos":3,"unreadRequestConvos":0}`)); err != nil {
		t.Fatalf("valid output refused: %v", err)
	}
	for name, body := range map[string]string{
		"missing required": `{"unreadAcceptedConvos":3}`,
		"wrong type":       `{"unreadAcceptedConvos":"3","unreadRequestConvos":0}`,
		"not an object":    `[1,2]`,
	} {
		if err := Output(m, []byte(body)); err == nil {
			t.Errorf("%s: %s accepted", name, body)
		}
	}
}

func TestNestedRefsAndUnionsAreChecked(t *testing.T) {
	const m = "chat.bsky.convo.sendMessage"
	good := `{"id":"m1","rev":"2222222222222","text":"hi","sender":{"did":"did:plc:abc"},"sentAt":"2026-06-01T10:00:00.000Z"}`
	if err := Output(m, []byte(good)); err != nil {
		t.Fatalf("valid messageView refused: %v", err)
	}
	bad := map[string]string{
		"sender not a DID":      strings.Replace(good, `did:plc:abc`, `alice`, 1),
		"sentAt not a datetime": strings.Replace(good, `2026-06-01T10:00:00.000Z`, `yesterday`, 1),
		"replyTo deletedMessageView missing its id": strings.Replace(good, `"text":"hi"`,
			`"text":"hi","replyTo":{"$type":"chat.bsky.convo.defs#deletedMessageView","rev":"2222222222222","sender":{"did":"did:plc:abc"},"sentAt":"2026-06-01T10:00:00.000Z"}`, 1),
		"replyTo messageView missing its sender": strings.Replace(good, `"text":"hi"`,
			`"text":"hi","replyTo":{"$type":"chat.bsky.convo.defs#messageView","id":"p","rev":"2222222222222","text":"x","sentAt":"2026-06-01T10:00:00.000Z"}`, 1),
	}
	for name, body := range bad {
		if err := Output(m, []byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestInputGroupNameLimit(t *testing.T) {
	const m = "chat.bsky.group.createGroup"
	if err := Input(m, []byte(`{"name":"Weekend plans","members":["did:plc:abc"]}`)); err != nil {
		t.Fatalf("valid input refused: %v", err)
	}
	long := strings.Repeat("é", 51)
	if err := Input(m, []byte(`{"name":"`+long+`","members":[]}`)); err == nil {
		t.Error("a 51-grapheme name accepted")
	}
}

func TestParams(t *testing.T) {
	const m = "chat.bsky.convo.getMessages"
	if err := Params(m, url.Values{"convoId": {"c1"}, "limit": {"50"}}); err != nil {
		t.Fatalf("valid params refused: %v", err)
	}
	for name, q := range map[string]url.Values{
		"limit over the maximum": {"convoId": {"c1"}, "limit": {"101"}},
		"limit not a number":     {"convoId": {"c1"}, "limit": {"many"}},
		"missing convoId":        {"limit": {"5"}},
		"unknown parameter":      {"convoId": {"c1"}, "around": {"m1"}},
	} {
		if err := Params(m, q); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestErrorNames(t *testing.T) {
	if err := Error("chat.bsky.convo.sendMessage", "ReplyTargetNotFound"); err != nil {
		t.Fatal(err)
	}
	if err := Error("chat.bsky.convo.sendMessage", "NoSuchError"); err == nil {
		t.Fatal("an undeclared error name accepted")
	}
}
