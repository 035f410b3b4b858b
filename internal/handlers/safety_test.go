package handlers

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	appbsky "github.com/bluesky-social/indigo/api/bsky"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/handlers/dm"
	"github.com/skydm/skydm/internal/lex/chat"
)

func TestReportAMessageFromItsActions(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 2, 0) // c1-m001 from Bob, c1-m000 mine

	page := a.get("/convos/c1?sel=c1-m001")
	href, ok := testid(page.doc, "report").Attr("href")
	if !ok || href != "/convos/c1/report?message=c1-m001&sender="+url.QueryEscape(dmBob) {
		t.Fatalf("Report link of Bob's message = %q, %v", href, ok)
	}
	if n := testid(a.get("/convos/c1?sel=c1-m000").doc, "report").Length(); n != 0 {
		t.Errorf("own message offers Report (%d links)", n)
	}

	form := a.get(href)
	if form.status != http.StatusOK || text(form.doc.Find("h1")) != "Report this message" {
		t.Fatalf("report form: %d %q", form.status, text(form.doc.Find("h1")))
	}
	if n := form.doc.Find(`input[name="reason_type"]`).Length(); n != 6 {
		t.Errorf("%d reasons offered, want 6", n)
	}
	if !strings.Contains(text(form.doc.Find("main")), "Your report will be sent to Bluesky's moderation service.") {
		t.Errorf("form does not say where the report goes: %q", text(form.doc.Find("main")))
	}

	// No reason: the form again, with the text kept, and nothing sent.
	res := a.post("/convos/c1/report", url.Values{"message": {"c1-m001"}, "sender": {dmBob}, "details": {"he keeps sending links"}})
	if res.status != http.StatusBadRequest || text(testid(res.doc, "error")) != "Choose why you are reporting this." ||
		testid(res.doc, "details").Text() != "he keeps sending links" {
		t.Fatalf("no reason: %d error %q details %q", res.status, text(testid(res.doc, "error")), testid(res.doc, "details").Text())
	}
	res = a.post("/convos/c1/report", url.Values{"message": {"c1-m001"}, "sender": {dmBob}, "reason_type": {"spam"}})
	if res.status != http.StatusBadRequest {
		t.Errorf("unknown reason type: %d, want 400", res.status)
	}
	if n := len(a.chat.safety().reports); n != 0 {
		t.Fatalf("%d reports sent for bad input", n)
	}

	res = a.post("/convos/c1/report", url.Values{"message": {"c1-m001"}, "sender": {dmBob},
		"reason_type": {chatproxy.ReasonTypeSpam}, "details": {"  he keeps sending links  "}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/convos/c1/report?sent=1#notice" {
		t.Fatalf("send: %d %q", res.status, res.header.Get("Location"))
	}
	want := chatproxy.Report{ReasonType: chatproxy.ReasonTypeSpam, Reason: "he keeps sending links", DID: dmBob, ConvoID: "c1", MessageID: "c1-m001"}
	if got := a.chat.safety().reports; len(got) != 1 || got[0] != want {
		t.Fatalf("reports %+v, want [%+v]", got, want)
	}
	thanks := a.get("/convos/c1/report?sent=1")
	if got := text(testid(thanks.doc, "notice")); got != "Thanks, your report was sent to Bluesky's moderation service." {
		t.Errorf("thanks = %q", got)
	}
}

func TestReportRefusesAMessageOfSomeoneNotInTheConversation(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 2, 0)
	for _, sender := range []string{dmCarol, dmAlice} {
		res := a.post("/convos/c1/report", url.Values{"message": {"c1-m001"}, "sender": {sender}, "reason_type": {chatproxy.ReasonTypeSpam}})
		if res.status != http.StatusNotFound {
			t.Errorf("sender %s: %d, want 404", sender, res.status)
		}
	}
	if n := len(a.chat.safety().reports); n != 0 {
		t.Errorf("%d reports sent", n)
	}
}

func TestReportAConversationNamesTheOtherMember(t *testing.T) {
	a := newDMApp(t, func(d *DMs) { d.ModerationName = "the sandbox's moderation service" })
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 1, 0)
	href, _ := testid(a.get("/convos/c1").doc, "report-convo").Attr("href")
	form := a.get(href)
	if text(form.doc.Find("h1")) != "Report this conversation" || form.doc.Find(`input[name="message"]`).Length() != 0 {
		t.Fatalf("conversation report form: %q", text(form.doc.Find("h1")))
	}
	a.post("/convos/c1/report", url.Values{"reason_type": {chatproxy.ReasonTypeRude}})
	want := chatproxy.Report{ReasonType: chatproxy.ReasonTypeRude, DID: dmBob, ConvoID: "c1"}
	if got := a.chat.safety().reports; len(got) != 1 || got[0] != want {
		t.Fatalf("reports %+v, want [%+v]", got, want)
	}
	if got := text(testid(a.get("/convos/c1/report?sent=1").doc, "notice")); !strings.HasSuffix(got, "sent to the sandbox's moderation service.") {
		t.Errorf("thanks = %q", got)
	}
}

func TestBlockAndUnblockFromTheConversation(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 1, 0)
	if testid(a.get("/convos/c1").doc, "draft").Length() != 1 {
		t.Fatal("no composer before blocking")
	}
	res := a.post("/convos/c1/block", url.Values{"member": {dmBob}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/convos/c1?notice=blocked#notice" {
		t.Fatalf("block: %d %q", res.status, res.header.Get("Location"))
	}
	if got := a.chat.safety().blocks; len(got) != 1 || got[0] != dmBob {
		t.Fatalf("blocks %v", got)
	}
	page := a.get("/convos/c1?notice=blocked")
	if got := text(testid(page.doc, "composer-blocked").Find("p")); got != "You have blocked Bob. Unblock to send messages." {
		t.Errorf("blocked composer says %q", got)
	}
	if testid(page.doc, "draft").Length() != 0 || testid(page.doc, "composer-unblock").Length() != 1 || testid(page.doc, "block").Length() != 0 {
		t.Error("blocked conversation still offers the composer or Block, or lacks Unblock")
	}
	// Blocking again is not a second record.
	a.post("/convos/c1/block", url.Values{"member": {dmBob}})
	if n := len(a.chat.safety().blocks); n != 1 {
		t.Errorf("%d block records after blocking twice", n)
	}

	res = a.post("/convos/c1/unblock", url.Values{"member": {dmBob}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/convos/c1?notice=unblocked#notice" {
		t.Fatalf("unblock: %d %q", res.status, res.header.Get("Location"))
	}
	if got := a.chat.safety().unblocks; len(got) != 1 || got[0] != dmBob+" at://"+dmAlice+"/app.bsky.graph.block/b1" {
		t.Errorf("unblocks %v (the viewer state's URI is passed on)", got)
	}
	if testid(a.get("/convos/c1").doc, "draft").Length() != 1 {
		t.Error("no composer after unblocking")
	}
	// The members page's form comes back to it.
	if res := a.post("/convos/c1/block", url.Values{"member": {dmBob}, "next": {"members"}}); res.header.Get("Location") != "/convos/c1/members?notice=blocked#notice" {
		t.Errorf("next=members: %q", res.header.Get("Location"))
	}
}

func TestBlockRefusesSomeoneNotInTheConversation(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 1, 0)
	for _, m := range []string{dmCarol, dmAlice, "bob.test", ""} {
		if res := a.post("/convos/c1/block", url.Values{"member": {m}}); res.status != http.StatusBadRequest {
			t.Errorf("member %q: %d, want 400", m, res.status)
		}
	}
	if n := len(a.chat.safety().blocks); n != 0 {
		t.Errorf("%d blocks created", n)
	}
}

func TestBlockedByTheOtherSideSaysSo(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 1, 0)
	yes := true
	a.chat.setViewer(dmBob, func(v *appbsky.ActorDefs_ViewerState) { v.BlockedBy = &yes })
	page := a.get("/convos/c1")
	if got := text(testid(page.doc, "composer-blocked")); got != "You can't message Bob." {
		t.Errorf("composer says %q", got)
	}
	if testid(page.doc, "draft").Length() != 0 {
		t.Error("composer still offered")
	}
}

func TestChatSettingsGroupInvitesAndNotifications(t *testing.T) {
	a := newDMApp(t)
	a.chat.decl = dm.Declaration{Value: map[string]any{"$type": "chat.bsky.actor.declaration", "allowIncoming": "all", "futureField": "kept"}, CID: "cid-0"}
	page := a.get("/settings/chat")
	for _, id := range []string{"allow-all", "groups-following", "chat-all", "chat-push", "chat_request-all", "chat_request-push"} {
		if _, ok := testid(page.doc, id).Attr("checked"); !ok {
			t.Errorf("%s not checked", id)
		}
	}
	res := a.post("/settings/chat", url.Values{"allow_incoming": {"all"}, "allow_group_invites": {"none"}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("save: %d", res.status)
	}
	saved := a.chat.saved[0]
	if saved.CID != "cid-0" || saved.Value["allowIncoming"] != "all" || saved.Value["allowGroupInvites"] != "none" || saved.Value["futureField"] != "kept" {
		t.Errorf("saved %+v", saved)
	}
	if _, ok := testid(a.get("/settings/chat").doc, "groups-none").Attr("checked"); !ok {
		t.Error("groups-none not checked after saving")
	}
	// A form without the field keeps it.
	a.post("/settings/chat", url.Values{"allow_incoming": {"following"}})
	if v := a.chat.saved[1].Value; v["allowGroupInvites"] != "none" || v["allowIncoming"] != "following" {
		t.Errorf("second save %+v", v)
	}
	res = a.post("/settings/chat", url.Values{"allow_incoming": {"all"}, "allow_group_invites": {"friends"}})
	if res.status != http.StatusBadRequest || len(a.chat.saved) != 2 || text(testid(res.doc, "error")) != "Choose who can add you to group chats." {
		t.Errorf("bad group value: %d, %d saves, %q", res.status, len(a.chat.saved), text(testid(res.doc, "error")))
	}

	res = a.post("/settings/chat/notifications", url.Values{"chat_include": {"follows"}, "chat_request_include": {"all"}, "chat_request_push": {"on"}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/settings/chat?notice=saved#notice" {
		t.Fatalf("notifications: %d %q", res.status, res.header.Get("Location"))
	}
	puts := a.chat.safety().puts
	if len(puts) != 1 || *puts[0].Chat != (chatPref{"follows", false}).lex() || *puts[0].ChatRequest != (chatPref{"all", true}).lex() {
		t.Fatalf("puts %+v", puts)
	}
	page = a.get("/settings/chat")
	if _, ok := testid(page.doc, "chat-follows").Attr("checked"); !ok {
		t.Error("chat-follows not checked after saving")
	}
	if _, ok := testid(page.doc, "chat-push").Attr("checked"); ok {
		t.Error("chat-push still checked")
	}
	res = a.post("/settings/chat/notifications", url.Values{"chat_include": {"everyone"}, "chat_request_include": {"all"}})
	if res.status != http.StatusBadRequest || len(a.chat.safety().puts) != 1 || text(testid(res.doc, "error")) != "Choose whose messages notify you." {
		t.Errorf("bad include: %d, %d puts, %q", res.status, len(a.chat.safety().puts), text(testid(res.doc, "error")))
	}
}

func TestChatSettingsWorkWhenNotificationPreferencesCannotBeRead(t *testing.T) {
	a := newDMApp(t)
	a.chat.setFail("GetNotificationPreferences", errFakeUnavailable)
	page := a.get("/settings/chat")
	if page.status != http.StatusOK || testid(page.doc, "settings-form").Length() != 1 {
		t.Fatalf("settings page: %d", page.status)
	}
	if got := text(testid(page.doc, "notify-error")); !strings.HasPrefix(got, "Your notification settings could not be loaded just now.") || testid(page.doc, "notify-form").Length() != 0 {
		t.Errorf("notify error %q", got)
	}
}

func TestReportInAGroupNamesItsOwnerAndTakesSendersItsViewOmits(t *testing.T) {
	a := newDMApp(t)
	g := a.chat.addConvo("g1", profile(dmBob, "bob.test", "Bob"), "accepted", 0, 0)
	owner := "owner"
	g.Members[1].Kind = &chat.ActorDefs_ProfileViewBasic_Kind{ActorDefs_GroupConvoMember: &chat.ActorDefs_GroupConvoMember{Role: &owner}}
	g.Kind = &chat.ConvoDefs_ConvoView_Kind{ConvoDefs_GroupConvo: &chat.ConvoDefs_GroupConvo{Name: "Weekend plans", MemberCount: 3}}

	form := a.get("/convos/g1/report")
	if text(form.doc.Find("h1")) != "Report this group" || !strings.Contains(text(form.doc.Find("main")), "In the group Weekend plans.") {
		t.Fatalf("group report form: %q", text(form.doc.Find("main")))
	}
	msgForm := a.get("/convos/g1/report?message=m9&sender=" + url.QueryEscape(dmCarol))
	if text(msgForm.doc.Find("h1")) != "Report this message" || !strings.Contains(text(msgForm.doc.Find("main")), "In the group Weekend plans.") {
		t.Fatalf("a group message's report form: %q", text(msgForm.doc.Find("main")))
	}
	a.post("/convos/g1/report", url.Values{"reason_type": {chatproxy.ReasonTypeOther}})
	// Carol is a member the group's view does not list.
	a.post("/convos/g1/report", url.Values{"message": {"m9"}, "sender": {dmCarol}, "reason_type": {chatproxy.ReasonTypeSpam}})
	if res := a.post("/convos/g1/report", url.Values{"message": {"m8"}, "sender": {dmAlice}, "reason_type": {chatproxy.ReasonTypeSpam}}); res.status != http.StatusNotFound {
		t.Errorf("reporting one's own message: %d, want 404", res.status)
	}
	want := []chatproxy.Report{
		{ReasonType: chatproxy.ReasonTypeOther, DID: dmBob, ConvoID: "g1"},
		{ReasonType: chatproxy.ReasonTypeSpam, DID: dmCarol, ConvoID: "g1", MessageID: "m9"},
	}
	if got := a.chat.safety().reports; !reflect.DeepEqual(got, want) {
		t.Errorf("reports %+v, want %+v", got, want)
	}
}
