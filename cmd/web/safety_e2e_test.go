package main

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// safetyBlocks returns the subjects of acct's app.bsky.graph.block
// records, read from the sandbox PDS.
func safetyBlocks(t *testing.T, api *atclient.APIClient, acct sandbox.Account) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out struct {
		Records []struct {
			Value struct {
				Type      string `json:"$type"`
				Subject   string `json:"subject"`
				CreatedAt string `json:"createdAt"`
			} `json:"value"`
		} `json:"records"`
	}
	if err := api.Get(ctx, "com.atproto.repo.listRecords", map[string]any{"repo": acct.DID, "collection": "app.bsky.graph.block"}, &out); err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, r := range out.Records {
		if r.Value.Type != "app.bsky.graph.block" || r.Value.CreatedAt == "" {
			t.Errorf("block record %+v", r.Value)
		}
		subjects = append(subjects, r.Value.Subject)
	}
	return subjects
}

// safetyDeclaration reads acct's chat declaration from the sandbox PDS.
func safetyDeclaration(t *testing.T, api *atclient.APIClient, acct sandbox.Account) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out struct {
		Value map[string]any `json:"value"`
	}
	if err := api.Get(ctx, "com.atproto.repo.getRecord", map[string]any{"repo": acct.DID, "collection": "chat.bsky.actor.declaration", "rkey": "self"}, &out); err != nil {
		t.Fatal(err)
	}
	return out.Value
}

// TestE2EBlockIsARecordInTheUsersRepository: alice blocks bob from their
// conversation, and the sandbox PDS holds an app.bsky.graph.block record
// of bob in alice's repository; unblocking deletes it (found by listing
// her block records, or through the viewer state when the chat service
// gives it).
func TestE2EBlockIsARecordInTheUsersRepository(t *testing.T) {
	n := testenv.Network(t)
	alice, bob := testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	dmFollowEachOther(t, n, alice, bob)
	aliceAPI := testenv.PasswordSession(t, n, alice)
	convo := dmConvoWith(t, n, aliceAPI, bob)
	base, _ := startRun(t, nil, sandboxEnv(t, n))
	b := newBrowserClient(t, base)
	signInHTTP(t, b, alice)

	res, _ := b.post("/convos/"+convo+"/block", url.Values{"member": {bob.DID}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/convos/"+convo+"?notice=blocked#notice" {
		t.Fatalf("block: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if got := safetyBlocks(t, aliceAPI, alice); len(got) != 1 || got[0] != bob.DID {
		t.Fatalf("alice's block records name %v, want [%s]", got, bob.DID)
	}
	res, _ = b.post("/convos/"+convo+"/unblock", url.Values{"member": {bob.DID}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("unblock: %d", res.StatusCode)
	}
	if got := safetyBlocks(t, aliceAPI, alice); len(got) != 0 {
		t.Errorf("block records after unblocking: %v", got)
	}
	// Someone who is not in the conversation is not blocked from it.
	carol := testenv.NewAccount(t, n)
	if res, _ := b.post("/convos/"+convo+"/block", url.Values{"member": {carol.DID}}); res.StatusCode != http.StatusBadRequest {
		t.Errorf("blocking a non-member: %d, want 400", res.StatusCode)
	}
	if got := safetyBlocks(t, aliceAPI, alice); len(got) != 0 {
		t.Errorf("block records after refusing: %v", got)
	}
}

// TestE2EGroupInvitesSettingIsSavedInTheDeclaration: "who may add me to
// groups" lands in alice's chat.bsky.actor.declaration beside
// allowIncoming, keeping the fields skydm does not edit.
func TestE2EGroupInvitesSettingIsSavedInTheDeclaration(t *testing.T) {
	n := testenv.Network(t)
	alice := testenv.NewAccount(t, n)
	aliceAPI := testenv.PasswordSession(t, n, alice)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sandbox.PutRecord(ctx, aliceAPI, "chat.bsky.actor.declaration", "self",
		map[string]any{"$type": "chat.bsky.actor.declaration", "allowIncoming": "following", "futureField": "kept"}); err != nil {
		t.Fatal(err)
	}
	base, _ := startRun(t, nil, sandboxEnv(t, n))
	b := newBrowserClient(t, base)
	signInHTTP(t, b, alice)

	res, _ := b.post("/settings/chat", url.Values{"allow_incoming": {"all"}, "allow_group_invites": {"none"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", res.StatusCode)
	}
	d := safetyDeclaration(t, aliceAPI, alice)
	if d["allowIncoming"] != "all" || d["allowGroupInvites"] != "none" || d["futureField"] != "kept" {
		t.Errorf("declaration %v", d)
	}
	_, doc := b.get(base + "/settings/chat")
	if _, ok := doc.Find(`[data-testid="groups-none"]`).Attr("checked"); !ok {
		t.Error("the settings page does not show no one may add alice to groups")
	}
	res, _ = b.post("/settings/chat", url.Values{"allow_incoming": {"all"}, "allow_group_invites": {"anyone"}})
	if res.StatusCode != http.StatusBadRequest || safetyDeclaration(t, aliceAPI, alice)["allowGroupInvites"] != "none" {
		t.Errorf("bad value: %d", res.StatusCode)
	}
}

// TestE2EChatNotificationPreferences: the settings page reads and writes
// chat.bsky.notification preferences through devchat. (Needs devchat's
// chat.bsky.notification.* from issue 10's devchat part.)
func TestE2EChatNotificationPreferences(t *testing.T) {
	n := testenv.Network(t)
	alice := testenv.NewAccount(t, n)
	base, _ := startRun(t, nil, sandboxEnv(t, n))
	b := newBrowserClient(t, base)
	signInHTTP(t, b, alice)
	if _, doc := b.get(base + "/settings/chat"); doc.Find(`[data-testid="notify-form"]`).Length() != 1 {
		t.Fatalf("no notification form: %q", dmText(doc.Find(`[data-testid="notify-error"]`)))
	}
	res, _ := b.post("/settings/chat/notifications", url.Values{"chat_include": {"follows"}, "chat_push": {"on"}, "chat_request_include": {"all"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", res.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := chatproxy.New(testenv.PasswordSession(t, n, alice), n.ChatServiceRef).GetNotificationPreferences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if *p.Chat != (chat.NotificationDefs_ChatPreference{Include: "follows", Push: true}) ||
		*p.ChatRequest != (chat.NotificationDefs_ChatPreference{Include: "all", Push: false}) {
		t.Errorf("devchat holds %+v %+v", p.Chat, p.ChatRequest)
	}
}

// TestE2EReportReachesTheModerationService: bob reports alice's message
// and the conversation through his PDS, which forwards createReport to
// the sandbox's moderation service (devchat's #atproto_labeler). (Needs
// devchat's labeler from issue 10's devchat part.)
func TestE2EReportReachesTheModerationService(t *testing.T) {
	n := testenv.Network(t)
	alice, bob := testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	dmFollowEachOther(t, n, alice, bob)
	aliceAPI := testenv.PasswordSession(t, n, alice)
	convo := dmConvoWith(t, n, aliceAPI, bob)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msg, err := chatproxy.New(aliceAPI, n.ChatServiceRef).SendMessage(ctx, convo, chatproxy.MessageInput{Text: "buy cheap followers"})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := startRun(t, nil, sandboxEnv(t, n))
	b := newBrowserClient(t, base)
	signInHTTP(t, b, bob)

	_, doc := b.get(base + "/convos/" + convo + "?sel=" + msg.Id)
	href, ok := doc.Find(`[data-testid="report"]`).Attr("href")
	if !ok {
		t.Fatal("no Report action on alice's message")
	}
	if _, form := b.get(base + href); form.Find(`[data-testid="report-form"]`).Length() != 1 {
		t.Fatal("no report form")
	}
	for _, f := range []url.Values{
		{"message": {msg.Id}, "sender": {alice.DID}, "reason_type": {chatproxy.ReasonTypeSpam}, "details": {"spam"}},
		{"reason_type": {chatproxy.ReasonTypeRude}},
	} {
		res, page := b.post("/convos/"+convo+"/report", f)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/convos/"+convo+"/report?sent=1#notice" {
			t.Fatalf("report %v: %d %q %q", f, res.StatusCode, res.Header.Get("Location"), dmText(page.Find(`[data-testid="error"]`)))
		}
	}
	_, thanks := b.get(base + "/convos/" + convo + "/report?sent=1")
	if got := dmText(thanks.Find(`[data-testid="notice"]`)); got != "Thanks, your report was sent to the sandbox's moderation service (devchat)." {
		t.Errorf("thanks = %q", got)
	}
}
