package chatproxy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/lex/chat"
)

// A reply carries message.replyTo.messageId to sendMessage, and the stored
// message comes back with its quoted parent.
func TestSendMessageCarriesReplyTo(t *testing.T) {
	var got map[string]any
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Errorf("body: %v", err)
		}
		m := messageJSON("m2")
		parent := messageJSON("m1")
		m["replyTo"] = parent
		writeJSON(w, 200, m)
	})
	out, err := f.client().SendMessage(context.Background(), "c1", chatproxy.MessageInput{Text: "yes", ReplyTo: "m1"})
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := got["message"].(map[string]any)
	ref, _ := msg["replyTo"].(map[string]any)
	if ref["messageId"] != "m1" {
		t.Fatalf("sent message %v, want replyTo.messageId m1", msg)
	}
	if out.ReplyTo == nil || out.ReplyTo.ConvoDefs_MessageView == nil || out.ReplyTo.ConvoDefs_MessageView.Id != "m1" {
		t.Fatalf("reply came back without its parent: %+v", out.ReplyTo)
	}
}

// A message that is not a reply sends no replyTo at all.
func TestSendMessageWithoutReplyHasNoReplyTo(t *testing.T) {
	var got struct {
		Message chat.ConvoDefs_MessageInput `json:"message"`
	}
	var raw map[string]map[string]any
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		var b json.RawMessage
		_ = json.NewDecoder(r.Body).Decode(&b)
		_ = json.Unmarshal(b, &got)
		_ = json.Unmarshal(b, &raw)
		writeJSON(w, 200, messageJSON("m2"))
	})
	if _, err := f.client().SendMessage(context.Background(), "c1", chatproxy.MessageInput{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["message"]["replyTo"]; ok || got.Message.ReplyTo != nil {
		t.Fatalf("replyTo sent for a plain message: %v", raw["message"])
	}
}

// ReplyTargetNotFound is its own reason with a sentence a person reads,
// never the upstream text.
func TestReplyTargetNotFound(t *testing.T) {
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, xrpcErr("ReplyTargetNotFound", "reply target not found"+secret))
	})
	_, err := f.client().SendMessage(context.Background(), "c1", chatproxy.MessageInput{Text: "yes", ReplyTo: "nope"})
	if apperr.ReasonOf(err) != chatproxy.ReasonReplyTargetNotFound || apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("reason %q code %v", apperr.ReasonOf(err), apperr.CodeOf(err))
	}
	if msg := apperr.MessageOf(err); msg != "The message you replied to is no longer there." {
		t.Fatalf("message %q", msg)
	}
}
