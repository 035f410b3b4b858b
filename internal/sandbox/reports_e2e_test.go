package sandbox_test

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/devchat"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// TestReportThroughPDS sends com.atproto.moderation.createReport the way
// Bluesky's app reports a chat message: to the account's own PDS with
// "atproto-proxy: <devchat DID>#atproto_labeler". The PDS resolves that
// service in devchat's DID document and forwards the report with a service
// token; devchat records it.
func TestReportThroughPDS(t *testing.T) {
	n := testenv.Network(t)
	if n.Chat == nil { // attached to a sandbox of another process
		if os.Getenv("CI") == "true" {
			t.Fatal("devchat is not in-process: its reports cannot be read")
		}
		t.Skip("devchat is not in-process (SKYDM_SANDBOX_STATE): its reports cannot be read")
	}
	ctx := ctxFor(t, 60*time.Second)
	alice, bob := testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	aliceAPI := testenv.PasswordSession(t, n, alice)
	bobAPI := testenv.PasswordSession(t, n, bob)
	must(t, sandbox.Follow(ctx, aliceAPI, bob.DID)) // alice accepts chats from bob

	bobChat := bobAPI.WithService(n.ChatServiceRef)
	convo, err := chat.ConvoGetConvoForMembers(ctx, bobChat, []string{alice.DID})
	must(t, err)
	msg, err := chat.ConvoSendMessage(ctx, bobChat, &chat.ConvoSendMessage_Input{
		ConvoId: convo.Convo.Id, Message: &chat.ConvoDefs_MessageInput{Text: "cheap followers here"},
	})
	must(t, err)

	if n.ReportServiceRef != n.Chat.LabelerServiceRef() {
		t.Fatalf("ReportServiceRef = %q, want devchat's %q", n.ReportServiceRef, n.Chat.LabelerServiceRef())
	}
	labeler := aliceAPI.WithService(n.ReportServiceRef)
	var out comatproto.ModerationCreateReport_Output
	must(t, labeler.Post(ctx, syntax.NSID("com.atproto.moderation.createReport"), map[string]any{
		"reasonType": "com.atproto.moderation.defs#reasonSpam",
		"reason":     "spam in my DMs",
		"subject": map[string]string{
			"$type": "chat.bsky.convo.defs#messageRef", "did": bob.DID, "convoId": convo.Convo.Id, "messageId": msg.Id,
		},
	}, &out))
	if out.ReportedBy != alice.DID || out.Id == 0 {
		t.Fatalf("createReport answered %+v", out)
	}
	// indigo's typed call works too (a repoRef subject).
	reason := "com.atproto.moderation.defs#reasonSpam"
	repo, err := comatproto.ModerationCreateReport(ctx, labeler, &comatproto.ModerationCreateReport_Input{
		ReasonType: &reason,
		Subject:    &comatproto.ModerationCreateReport_Input_Subject{AdminDefs_RepoRef: &comatproto.AdminDefs_RepoRef{Did: bob.DID}},
	})
	must(t, err)

	var mine []devchat.Report
	for _, r := range n.Chat.Reports() {
		if r.ReportedBy == syntax.DID(alice.DID) {
			mine = append(mine, r)
		}
	}
	if len(mine) != 2 || mine[0].ID != out.Id || mine[1].ID != repo.Id {
		t.Fatalf("devchat recorded %+v for alice, want reports %d and %d", mine, out.Id, repo.Id)
	}
	var subj map[string]string
	if err := json.Unmarshal(mine[0].Subject, &subj); err != nil || subj["messageId"] != msg.Id || subj["did"] != bob.DID {
		t.Fatalf("the message report's subject = %s", mine[0].Subject)
	}
}
