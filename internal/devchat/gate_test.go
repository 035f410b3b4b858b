package devchat

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/skydm/skydm/internal/lex/chat"
)

func TestFollowGateOnNewConvos(t *testing.T) {
	const (
		notFollowed = "recipient requires incoming messages to come from someone they follow"
		disabled    = "recipient has disabled incoming messages"
	)
	tests := []struct {
		allow    string // "" = no declaration record
		follows  bool   // recipient follows the sender
		wantName string // "" = allowed
		wantMsg  string
	}{
		{"all", false, "", ""},
		{"all", true, "", ""},
		{"following", true, "", ""},
		{"following", false, "NotFollowedBySender", notFollowed},
		{"", true, "", ""},
		{"", false, "NotFollowedBySender", notFollowed},
		{"everyone-ish", false, "NotFollowedBySender", notFollowed}, // unknown value acts as following
		{"none", true, "MessagesDisabled", disabled},
		{"none", false, "MessagesDisabled", disabled},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("declaration %q follows %v", tc.allow, tc.follows), func(t *testing.T) {
			e := newEnv(t, false)
			alice, bob := e.user("alice"), e.user("bob")
			e.recs.setAllowIncoming(bob.did, tc.allow)
			if tc.follows {
				e.recs.follow(bob.did, alice.did)
			}
			e.recs.follow(bob.did, "did:plc:someoneelse")
			e.recs.follow(alice.did, bob.did) // the sender following the recipient does not matter

			avail := ok[chat.ConvoGetConvoAvailability_Output](t, e.query(alice, "chat.bsky.convo.getConvoAvailability", url.Values{"members": {bob.did.String()}}))
			if avail.CanChat != (tc.wantName == "") || avail.Convo != nil {
				t.Errorf("getConvoAvailability = canChat %v convo %v", avail.CanChat, avail.Convo)
			}
			r := e.query(alice, "chat.bsky.convo.getConvoForMembers", url.Values{"members": {bob.did.String()}})
			if tc.wantName == "" {
				ok[chat.ConvoGetConvoForMembers_Output](t, r)
				return
			}
			wantErr(t, r, http.StatusBadRequest, tc.wantName, tc.wantMsg)
			if _, m := r.xerr(); m != tc.wantMsg {
				t.Errorf("message %q, want exactly %q", m, tc.wantMsg)
			}
			if ids, _ := e.list(alice, nil); len(ids) != 0 {
				t.Errorf("a refused convo was created: %v", ids)
			}
		})
	}
}

func TestFollowGatePagesThroughFollows(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	e.recs.setAllowIncoming(bob.did, "following")
	for i := range 250 {
		e.recs.put(bob.did, collFollow, fmt.Sprintf("a%04d", i), map[string]string{"subject": fmt.Sprintf("did:plc:other%d", i)})
	}
	e.recs.put(bob.did, collFollow, "z0000", map[string]string{"subject": alice.did.String()})
	e.open(alice, bob)
	if e.recs.lists < 3 {
		t.Errorf("listRecords called %d times, want paging", e.recs.lists)
	}
}

func TestFollowGateRefusesUnknownRecipientsAndUnreadableRepos(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	wantErr(t, e.query(alice, "chat.bsky.convo.getConvoForMembers", url.Values{"members": {"did:plc:nobody"}}),
		http.StatusBadRequest, "RecipientNotFound", "recipient does not exist")
	e.recs.fail(bob.did, fmt.Errorf("connection refused"))
	wantErr(t, e.query(alice, "chat.bsky.convo.getConvoForMembers", url.Values{"members": {bob.did.String()}}),
		http.StatusBadGateway, "UpstreamFailure", "declaration")
}

func TestSendingToAnUnacceptedConvoRechecksTheGate(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	e.send(alice, c.Id, "hi")

	e.recs.setAllowIncoming(bob.did, "none")
	msg := map[string]any{"convoId": c.Id, "message": map[string]string{"text": "hello?"}}
	wantErr(t, e.proc(alice, "chat.bsky.convo.sendMessage", msg), http.StatusBadRequest, "InvalidRequest", "recipient has disabled incoming messages")
	wantErr(t, e.proc(alice, "chat.bsky.convo.sendMessageBatch", map[string]any{"items": []any{msg}}), http.StatusBadRequest, "InvalidRequest", "recipient has disabled incoming messages")
	if avail := ok[chat.ConvoGetConvoAvailability_Output](t, e.query(alice, "chat.bsky.convo.getConvoAvailability", url.Values{"members": {bob.did.String()}})); avail.CanChat || avail.Convo == nil || avail.Convo.Id != c.Id {
		t.Errorf("availability = canChat %v convo %v", avail.CanChat, avail.Convo)
	}
	// The recipient can still answer, and that accepts the convo.
	e.send(bob, c.Id, "sure")
	e.send(alice, c.Id, "accepted convos are not gated")
	if avail := ok[chat.ConvoGetConvoAvailability_Output](t, e.query(alice, "chat.bsky.convo.getConvoAvailability", url.Values{"members": {bob.did.String()}})); !avail.CanChat {
		t.Error("availability after accept: canChat false")
	}
}
