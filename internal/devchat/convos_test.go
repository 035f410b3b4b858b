package devchat

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/skydm/skydm/internal/lex/chat"
)

func TestConvoIsARequestForTheRecipientUntilAccepted(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	e.recs.put(bob.did, collProfile, "self", map[string]any{"displayName": "Bob B", "avatar": map[string]any{"$type": "blob", "ref": map[string]string{"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"}, "mimeType": "image/jpeg", "size": 1}})

	c := e.open(alice, bob)
	if *c.Status != statusAccepted || len(c.Members) != 2 {
		t.Fatalf("starter's view: status %v members %d", *c.Status, len(c.Members))
	}
	for _, m := range c.Members {
		if m.Did == bob.did.String() {
			if m.Handle != "bob.test" || m.DisplayName == nil || *m.DisplayName != "Bob B" || m.Avatar == nil ||
				*m.Avatar != "http://pds.invalid/xrpc/com.atproto.sync.getBlob?cid=bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy&did=did%3Aplc%3Abob" {
				t.Errorf("bob's member view = %+v", m)
			}
		}
	}
	if ids, _ := e.list(bob, nil); len(ids) != 0 {
		t.Fatalf("recipient sees the convo before any message: %v", ids)
	}
	if again := e.open(alice, bob); again.Id != c.Id {
		t.Fatalf("getConvoForMembers made a second convo")
	}

	e.send(alice, c.Id, "hi")
	e.send(alice, c.Id, "are you there?")

	if ids, _ := e.list(bob, url.Values{"status": {"accepted"}}); len(ids) != 0 {
		t.Errorf("bob's accepted list = %v, want empty", ids)
	}
	ids, out := e.list(bob, url.Values{"status": {"request"}})
	if !slices.Equal(ids, []string{c.Id}) || *out.Convos[0].Status != statusRequest || out.Convos[0].UnreadCount != 2 {
		t.Fatalf("bob's requests = %v (%+v)", ids, out.Convos)
	}
	reqs := ok[chat.ConvoListConvoRequests_Output](t, e.query(bob, "chat.bsky.convo.listConvoRequests", nil))
	if len(reqs.Requests) != 1 || reqs.Requests[0].ConvoDefs_ConvoView.Id != c.Id {
		t.Errorf("listConvoRequests = %+v", reqs.Requests)
	}
	if got := e.convo(alice, c.Id); got.UnreadCount != 0 || got.LastMessage.ConvoDefs_MessageView.Text != "are you there?" {
		t.Errorf("alice's view: unread %d last %+v", got.UnreadCount, got.LastMessage)
	}
	counts := ok[chat.ConvoGetUnreadCounts_Output](t, e.query(bob, "chat.bsky.convo.getUnreadCounts", nil))
	if counts.UnreadRequestConvos != 1 || counts.UnreadAcceptedConvos != 0 {
		t.Errorf("unread counts = %+v", counts)
	}
	if ids, _ := e.list(bob, url.Values{"readState": {"unread"}}); len(ids) != 1 {
		t.Errorf("unread list = %v", ids)
	}

	read := ok[chat.ConvoUpdateRead_Output](t, e.proc(bob, "chat.bsky.convo.updateRead", map[string]any{"convoId": c.Id}))
	if read.Convo.UnreadCount != 0 {
		t.Errorf("unread after updateRead = %d", read.Convo.UnreadCount)
	}
	if ids, _ := e.list(bob, url.Values{"readState": {"unread"}}); len(ids) != 0 {
		t.Errorf("unread list after updateRead = %v", ids)
	}

	acc := ok[chat.ConvoAcceptConvo_Output](t, e.proc(bob, "chat.bsky.convo.acceptConvo", map[string]any{"convoId": c.Id}))
	if acc.Rev == nil {
		t.Error("first acceptConvo returned no rev")
	}
	if acc := ok[chat.ConvoAcceptConvo_Output](t, e.proc(bob, "chat.bsky.convo.acceptConvo", map[string]any{"convoId": c.Id})); acc.Rev != nil {
		t.Error("second acceptConvo returned a rev")
	}
	if ids, _ := e.list(bob, url.Values{"status": {"accepted"}}); !slices.Equal(ids, []string{c.Id}) {
		t.Errorf("bob's accepted list = %v", ids)
	}

	e.send(alice, c.Id, "one")
	e.send(alice, c.Id, "two")
	all := ok[chat.ConvoUpdateAllRead_Output](t, e.proc(bob, "chat.bsky.convo.updateAllRead", map[string]any{"status": "accepted"}))
	if all.UpdatedCount != 1 || e.convo(bob, c.Id).UnreadCount != 0 {
		t.Errorf("updateAllRead updated %d, unread now %d", all.UpdatedCount, e.convo(bob, c.Id).UnreadCount)
	}
}

func TestReplyingAcceptsTheRequest(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	e.send(alice, c.Id, "hi")
	if *e.convo(bob, c.Id).Status != statusRequest {
		t.Fatal("not a request before the reply")
	}
	e.send(bob, c.Id, "hello")
	if got := e.convo(bob, c.Id); *got.Status != statusAccepted || got.UnreadCount != 0 {
		t.Fatalf("after reply: status %s unread %d", *got.Status, got.UnreadCount)
	}
	if got := e.convo(alice, c.Id); got.UnreadCount != 1 {
		t.Errorf("alice unread = %d, want 1", got.UnreadCount)
	}
}

func TestMuteAndUnmuteArePerMember(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	e.send(alice, c.Id, "hi")
	muted := ok[chat.ConvoMuteConvo_Output](t, e.proc(bob, "chat.bsky.convo.muteConvo", map[string]any{"convoId": c.Id}))
	if !muted.Convo.Muted || e.convo(alice, c.Id).Muted {
		t.Fatalf("bob muted %v, alice muted %v", muted.Convo.Muted, e.convo(alice, c.Id).Muted)
	}
	if counts := ok[chat.ConvoGetUnreadCounts_Output](t, e.query(bob, "chat.bsky.convo.getUnreadCounts", nil)); counts.UnreadRequestConvos != 0 {
		t.Errorf("muted convo counted as unread: %+v", counts)
	}
	unmuted := ok[chat.ConvoUnmuteConvo_Output](t, e.proc(bob, "chat.bsky.convo.unmuteConvo", map[string]any{"convoId": c.Id}))
	if unmuted.Convo.Muted {
		t.Fatal("still muted after unmuteConvo")
	}
}

func TestLeaveConvoHidesItUntilANewMessage(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	e.send(alice, c.Id, "old news")
	e.send(bob, c.Id, "ok")

	left := ok[chat.ConvoLeaveConvo_Output](t, e.proc(bob, "chat.bsky.convo.leaveConvo", map[string]any{"convoId": c.Id}))
	if left.ConvoId != c.Id || left.Rev == "" {
		t.Fatalf("leaveConvo = %+v", left)
	}
	if ids, _ := e.list(bob, nil); len(ids) != 0 {
		t.Fatalf("leaver still lists %v", ids)
	}
	wantErr(t, e.query(bob, "chat.bsky.convo.getConvo", url.Values{"convoId": {c.Id}}), http.StatusBadRequest, "InvalidConvo", "Convo not found")
	wantErr(t, e.proc(bob, "chat.bsky.convo.sendMessage", map[string]any{"convoId": c.Id, "message": map[string]string{"text": "x"}}), http.StatusBadRequest, "InvalidConvo", "")
	if ids, _ := e.list(alice, nil); !slices.Equal(ids, []string{c.Id}) {
		t.Fatalf("the other member lost the convo: %v", ids)
	}

	e.send(alice, c.Id, "fresh start")
	got := e.convo(bob, c.Id)
	if *got.Status != statusRequest || got.UnreadCount != 1 {
		t.Fatalf("after a new message the leaver has status %s unread %d", *got.Status, got.UnreadCount)
	}
	msgs := ok[chat.ConvoGetMessages_Output](t, e.query(bob, "chat.bsky.convo.getMessages", url.Values{"convoId": {c.Id}}))
	if len(msgs.Messages) != 1 || msgs.Messages[0].ConvoDefs_MessageView.Text != "fresh start" {
		t.Fatalf("leaver sees history from before leaving: %+v", msgs.Messages)
	}
}

func TestListConvosPagesByCursor(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	var want []string // most recent first
	for _, name := range []string{"u1", "u2", "u3", "u4", "u5"} {
		c := e.open(alice, e.user(name))
		e.send(alice, c.Id, "hi "+name)
		want = append([]string{c.Id}, want...)
	}
	var got []string
	params := url.Values{"limit": {"2"}}
	for page := 0; ; page++ {
		ids, out := e.list(alice, params)
		got = append(got, ids...)
		if out.Cursor == nil {
			if len(ids) != 1 {
				t.Errorf("last page has %d convos, want 1", len(ids))
			}
			break
		}
		if len(ids) != 2 || page > 3 {
			t.Fatalf("page %d has %d convos", page, len(ids))
		}
		params.Set("cursor", *out.Cursor)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged ids = %v, want %v", got, want)
	}
}

func TestListParamsAreChecked(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	tests := []struct {
		name    string
		method  string
		params  url.Values
		wantMsg string
	}{
		{"limit zero", "chat.bsky.convo.listConvos", url.Values{"limit": {"0"}}, "less than 1"},
		{"limit over 100", "chat.bsky.convo.listConvos", url.Values{"limit": {"101"}}, "greater than 100"},
		{"limit not a number", "chat.bsky.convo.listConvos", url.Values{"limit": {"ten"}}, "integer"},
		{"bad cursor", "chat.bsky.convo.listConvos", url.Values{"cursor": {"page-2"}}, "cursor"},
		{"unknown status", "chat.bsky.convo.listConvos", url.Values{"status": {"spam"}}, "status"},
		{"bad messages cursor", "chat.bsky.convo.getMessages", url.Values{"convoId": {"x"}, "cursor": {"!"}}, "cursor"},
		{"messages limit", "chat.bsky.convo.getMessages", url.Values{"convoId": {"x"}, "limit": {"101"}}, "greater than 100"},
		{"missing convoId", "chat.bsky.convo.getMessages", nil, `"convoId"`},
		{"missing members", "chat.bsky.convo.getConvoForMembers", nil, `"members"`},
		{"member not a DID", "chat.bsky.convo.getConvoForMembers", url.Values{"members": {"bob.test"}}, "valid did"},
		{"only the caller", "chat.bsky.convo.getConvoForMembers", url.Values{"members": {alice.did.String()}}, "other than the caller"},
		{"group", "chat.bsky.convo.getConvoForMembers", url.Values{"members": {"did:plc:b", "did:plc:c"}}, "direct"},
		{"too many members", "chat.bsky.convo.getConvoAvailability", url.Values{"members": make([]string, 11)}, "more than 10"},
		{"bad log cursor", "chat.bsky.convo.getLog", url.Values{"cursor": {"zzz"}}, "cursor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, e.query(alice, tc.method, tc.params), http.StatusBadRequest, "InvalidRequest", tc.wantMsg)
		})
	}
	wantErr(t, e.query(alice, "chat.bsky.convo.getConvo", url.Values{"convoId": {"3kzzzzzzzzzzz"}}), http.StatusBadRequest, "InvalidConvo", "Convo not found")
}
