package handlers

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/lex/chat"
)

// validPreview is the preview of an approval link to "Weekend plans" owned
// by bob.
func validPreview(code string, approval bool) *chatproxy.JoinLinkPreview {
	return &chatproxy.JoinLinkPreview{GroupDefs_JoinLinkPreviewView: &chat.GroupDefs_JoinLinkPreviewView{
		Code: code, ConvoId: "g1", Name: "Weekend plans", Owner: profile(dmBob, "bob.test", "Bob"),
		MemberCount: 3, MemberLimit: 100, RequireApproval: approval, JoinRule: ptr("anyone")}}
}

func (a *dmApp) setPreview(code string, p *chatproxy.JoinLinkPreview) {
	j := a.chat.join()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.previews[code] = p
}

func joinText(res response, id string) string {
	return strings.Join(strings.Fields(testid(res.doc, id).Text()), " ")
}

func TestOwnerCreatesEditsTurnsOffAndOnTheInviteLink(t *testing.T) {
	a := newDMApp(t)
	a.chat.addGroup("g1", "Weekend plans", dmAlice, 0)

	res := a.get("/convos/g1/link")
	if res.status != http.StatusOK || testid(res.doc, "join-link-create-form").Length() != 1 || testid(res.doc, "join-link-url").Length() != 0 {
		t.Fatalf("no link yet: status %d, want the create form and no link\n%s", res.status, res.body)
	}
	res = a.post("/convos/g1/link", url.Values{"action": {"create"}, "who": {"followedByOwner:approval"}})
	if res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/convos/g1/link?notice=link-created") {
		t.Fatalf("create: %d %q", res.status, res.header.Get("Location"))
	}
	res = a.get("/convos/g1/link?notice=link-created")
	link, _ := testid(res.doc, "join-link-url").Attr("value")
	if want := a.srv.URL + "/join/code001"; link != want {
		t.Errorf("link to share %q, want %q", link, want)
	}
	if _, ok := testid(res.doc, "join-link-url").Attr("readonly"); !ok {
		t.Error("the link field is not read-only")
	}
	if _, ok := testid(res.doc, "who-followedByOwner:approval").Attr("checked"); !ok {
		t.Error("the link's rule is not the checked choice")
	}
	if !strings.Contains(joinText(res, "notice"), "Invite link created") {
		t.Errorf("notice %q", joinText(res, "notice"))
	}

	if res = a.post("/convos/g1/link", url.Values{"action": {"edit"}, "who": {"anyone"}}); res.status != http.StatusSeeOther {
		t.Fatalf("edit: %d %s", res.status, res.body)
	}
	if res = a.post("/convos/g1/link", url.Values{"action": {"disable"}}); res.status != http.StatusSeeOther {
		t.Fatalf("disable: %d", res.status)
	}
	res = a.get("/convos/g1/link")
	if h := strings.TrimSpace(res.doc.Find("h1").Text()); h != "Invite link turned off" || testid(res.doc, "join-link-enable").Length() != 1 {
		t.Fatalf("after disable: heading %q, enable buttons %d", h, testid(res.doc, "join-link-enable").Length())
	}
	if res = a.post("/convos/g1/link", url.Values{"action": {"enable"}}); res.status != http.StatusSeeOther {
		t.Fatalf("enable: %d", res.status)
	}
	res = a.get("/convos/g1/link")
	if _, ok := testid(res.doc, "who-anyone").Attr("checked"); !ok || testid(res.doc, "join-link-url").Length() != 1 {
		t.Errorf("after enable: the edited rule or the link is missing\n%s", res.body)
	}
	got := a.chat.join().settings
	want := []chatproxy.JoinLinkSettings{{JoinRule: "followedByOwner", RequireApproval: true}, {JoinRule: "anyone"}}
	if !slices.Equal(got, want) {
		t.Errorf("settings sent %+v, want %+v", got, want)
	}
}

func TestInviteLinkRefusalsKeepTheChoiceAndCreateNothing(t *testing.T) {
	a := newDMApp(t)
	a.chat.addGroup("g1", "Weekend plans", dmAlice, 0)
	res := a.post("/convos/g1/link", url.Values{"action": {"create"}, "who": {"everyone-ever"}})
	if res.status != http.StatusBadRequest || joinText(res, "error") != "Choose who can join, and how." {
		t.Fatalf("bad choice: %d %q", res.status, joinText(res, "error"))
	}
	if n := a.chat.count("createJoinLink"); n != 0 {
		t.Errorf("createJoinLink called %d times for a bad choice", n)
	}
	// One enabled link per group: the service's answer is shown.
	a.post("/convos/g1/link", url.Values{"action": {"create"}, "who": {"anyone"}})
	res = a.post("/convos/g1/link", url.Values{"action": {"create"}, "who": {"followedByOwner"}})
	if res.status != http.StatusConflict || joinText(res, "error") != "This group already has a join link. Turn it off before making a new one." {
		t.Fatalf("second link: %d %q", res.status, joinText(res, "error"))
	}
	if _, ok := testid(res.doc, "who-followedByOwner").Attr("checked"); !ok {
		t.Error("the refused choice was not kept")
	}
}

func TestInviteLinkPageOfADirectConversationSaysNoGroup(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 1, 0)
	res := a.get("/convos/c1/link")
	if res.status != http.StatusNotFound || !strings.Contains(res.body, "not a group") {
		t.Fatalf("status %d\n%s", res.status, res.body)
	}
}

func TestJoinPageShowsThePreviewAndEveryState(t *testing.T) {
	a := newDMApp(t)
	a.setPreview("valid12", validPreview("valid12", true))
	a.setPreview("off1234", &chatproxy.JoinLinkPreview{GroupDefs_DisabledJoinLinkPreviewView: &chat.GroupDefs_DisabledJoinLinkPreviewView{Code: "off1234"}})
	member := validPreview("member1", false)
	member.GroupDefs_JoinLinkPreviewView.Convo = &chat.ConvoDefs_ConvoView{Id: "g1"}
	a.setPreview("member1", member)

	res := a.get("/join/valid12")
	if res.status != http.StatusOK || joinText(res, "join-name") != "Weekend plans" || joinText(res, "join-owner") != "Bob" ||
		!strings.HasPrefix(joinText(res, "join-members"), "3 members") || joinText(res, "join-submit") != "Ask to join" {
		t.Fatalf("valid: %d name %q owner %q members %q button %q", res.status, joinText(res, "join-name"), joinText(res, "join-owner"),
			joinText(res, "join-members"), joinText(res, "join-submit"))
	}
	if r := joinText(res, "join-rule"); r != "Anyone with the link can ask to join; Bob approves each request." {
		t.Errorf("rule %q", r)
	}
	res = a.get("/join/off1234")
	if res.status != http.StatusOK || testid(res.doc, "join-disabled").Length() != 1 || testid(res.doc, "join-form").Length() != 0 {
		t.Errorf("disabled: %d\n%s", res.status, res.body)
	}
	res = a.get("/join/nosuch1")
	if res.status != http.StatusNotFound || strings.TrimSpace(res.doc.Find("h1").Text()) != "This join link does not exist" || testid(res.doc, "join-form").Length() != 0 {
		t.Errorf("invalid: %d %q", res.status, res.doc.Find("h1").Text())
	}
	res = a.get("/join/member1")
	if href, _ := testid(res.doc, "join-open").Attr("href"); href != "/convos/g1" || testid(res.doc, "join-form").Length() != 0 {
		t.Errorf("member: open link %q\n%s", href, res.body)
	}
}

func TestJoiningGoesToTheGroupOrSaysTheRequestWasSent(t *testing.T) {
	a := newDMApp(t)
	a.setPreview("instant", validPreview("instant", false))
	a.setPreview("approve", validPreview("approve", true))
	j := a.chat.join()
	j.joinAs["instant"] = &chat.GroupRequestJoin_Output{Status: "joined", Convo: &chat.ConvoDefs_ConvoView{Id: "g1"}}
	j.joinAs["approve"] = &chat.GroupRequestJoin_Output{Status: "pending"}

	res := a.post("/join/instant", nil)
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/convos/g1#latest" {
		t.Fatalf("joined: %d %q", res.status, res.header.Get("Location"))
	}
	res = a.post("/join/approve", nil)
	loc := res.header.Get("Location")
	if res.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/join/approve?notice=requested") {
		t.Fatalf("pending: %d %q", res.status, loc)
	}
	res = a.get(loc)
	if joinText(res, "join-pending") != "Request sent; you'll be added when Bob approves." || testid(res.doc, "join-withdraw").Length() != 1 {
		t.Fatalf("pending page: %q\n%s", joinText(res, "join-pending"), res.body)
	}
	if res = a.post("/join/approve/withdraw", url.Values{"convo": {"g1"}}); res.status != http.StatusSeeOther {
		t.Fatalf("withdraw: %d", res.status)
	}
	if got := j.withdrawn; !slices.Equal(got, []string{"g1"}) {
		t.Errorf("withdrawn %v", got)
	}
}

func TestJoinRefusalsAreShownInWords(t *testing.T) {
	refusals := map[string]error{
		"disable": errorWith(apperr.Forbidden, chatproxy.ReasonLinkDisabled, "This join link has been turned off by the group's owner."),
		"follows": errorWith(apperr.Forbidden, chatproxy.ReasonFollowRequired, "Only people Bob follows can join this group."),
		"fullgrp": errorWith(apperr.Conflict, chatproxy.ReasonMemberLimitReached, "The group is full."),
		"removed": errorWith(apperr.Forbidden, chatproxy.ReasonUserKicked, "You were removed from this group, so you can't join it again with this link."),
	}
	for code, e := range refusals {
		t.Run(code, func(t *testing.T) {
			a := newDMApp(t)
			a.setPreview(code, validPreview(code, false))
			a.chat.join().joinErr[code] = e
			res := a.post("/join/"+code, nil)
			if res.status == http.StatusSeeOther || joinText(res, "error") != apperr.MessageOf(e) {
				t.Fatalf("status %d error %q, want %q", res.status, joinText(res, "error"), apperr.MessageOf(e))
			}
			if joinText(res, "join-name") != "Weekend plans" {
				t.Error("the refusal page lost the group's preview")
			}
		})
	}
	t.Run("no such code", func(t *testing.T) {
		a := newDMApp(t)
		res := a.post("/join/nosuch1", nil)
		if res.status != http.StatusNotFound || joinText(res, "error") != "This join link does not exist." {
			t.Fatalf("status %d error %q", res.status, joinText(res, "error"))
		}
		if n := a.chat.count("requestJoin"); n != 0 {
			t.Errorf("requestJoin called %d times for a code that is no link", n)
		}
	})
}

func TestSignedOutJoinLinkSignsInAndComesBack(t *testing.T) {
	a := newDMApp(t)
	a.setPreview("valid12", validPreview("valid12", false))
	a.post("/oauth/logout", nil)
	res := a.get("/join/valid12")
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/signin" {
		t.Fatalf("signed out: %d %q", res.status, res.header.Get("Location"))
	}
	res = a.get("/oauth/callback?" + url.Values{"did": {dmAlice}, "handle": {"alice.test"}}.Encode())
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/join/valid12" {
		t.Fatalf("after sign-in: %d %q, want back to /join/valid12", res.status, res.header.Get("Location"))
	}
	if res = a.get("/join/valid12"); joinText(res, "join-name") != "Weekend plans" {
		t.Errorf("join page after sign-in: %d", res.status)
	}
	// The way back is used once.
	a.post("/oauth/logout", nil)
	if res = a.get("/oauth/callback?" + url.Values{"did": {dmAlice}, "handle": {"alice.test"}}.Encode()); res.header.Get("Location") != "/" {
		t.Errorf("second sign-in went to %q", res.header.Get("Location"))
	}
}

func TestOwnerApprovesRejectsAndReadsJoinRequests(t *testing.T) {
	a := newDMApp(t)
	a.chat.addGroup("g1", "Weekend plans", dmAlice, 2)
	j := a.chat.join()
	j.requests["g1"] = []*chat.GroupDefs_JoinRequestView{
		{ConvoId: "g1", RequestedBy: profile(dmCarol, "carol.test", "Carol"), RequestedAt: "2025-03-04T14:00:00Z"},
		{ConvoId: "g1", RequestedBy: profile("did:plc:dave0000000000000000000", "dave.test", ""), RequestedAt: "2025-03-04T14:05:00Z"},
	}
	res := a.get("/convos/g1/join-requests")
	if res.status != http.StatusOK || testid(res.doc, "join-request").Length() != 2 {
		t.Fatalf("list: %d\n%s", res.status, res.body)
	}
	if b := joinText(res, "join-requests-unread"); !strings.HasPrefix(b, "2 new") {
		t.Errorf("heading badge %q, want 2 new", b)
	}
	if res = a.get("/convos/g1/link"); !strings.HasPrefix(joinText(res, "join-requests-unread"), "2 new") {
		t.Errorf("link page badge %q", joinText(res, "join-requests-unread"))
	}
	if res = a.post("/convos/g1/join-requests/"+dmCarol+"/approve", nil); res.status != http.StatusSeeOther {
		t.Fatalf("approve: %d %s", res.status, res.body)
	}
	if res = a.post("/convos/g1/join-requests/did:plc:dave0000000000000000000/reject", nil); res.status != http.StatusSeeOther {
		t.Fatalf("reject: %d", res.status)
	}
	if res = a.postJSON("/convos/g1/join-requests/read", nil); res.status != http.StatusOK || !strings.Contains(res.body, `"ok":true`) {
		t.Fatalf("read: %d %s", res.status, res.body)
	}
	if !slices.Equal(j.approved, []string{"g1 " + dmCarol}) || !slices.Equal(j.rejected, []string{"g1 did:plc:dave0000000000000000000"}) ||
		!slices.Equal(j.read, []string{"g1"}) {
		t.Errorf("approved %v rejected %v read %v", j.approved, j.rejected, j.read)
	}
	// A full group: the owner is told, on the list.
	a.chat.setFail("approveJoinRequest", errorWith(apperr.Conflict, chatproxy.ReasonMemberLimitReached, "The group is full."))
	if res = a.post("/convos/g1/join-requests/"+dmCarol+"/approve", nil); res.status != http.StatusConflict || joinText(res, "error") != "The group is full." {
		t.Errorf("full: %d %q", res.status, joinText(res, "error"))
	}
	if res = a.post("/convos/g1/join-requests/not-a-did/approve", nil); res.status != http.StatusNotFound {
		t.Errorf("bad member: %d", res.status)
	}
}

func TestSendingAJoinLinkAttachesItsEmbed(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 1, 0)
	for _, tt := range []struct{ text, code string }{
		{"Join us: " + a.srv.URL + "/join/abc1234", "abc1234"},
		{"https://bsky.app/chat/Xy12345, see you there", "Xy12345"},
		{"see " + a.srv.URL + "/joinery/abc and https://bsky.app/chat/short", ""},
		{"just words", ""},
	} {
		res := a.post("/convos/c1/messages", url.Values{"text": {tt.text}, "token": {a.token("c1")}})
		if res.status != http.StatusSeeOther {
			t.Fatalf("send %q: %d", tt.text, res.status)
		}
		a.chat.mu.Lock()
		got := a.chat.sent[len(a.chat.sent)-1]
		a.chat.mu.Unlock()
		if got.JoinLinkCode != tt.code || got.Text != tt.text {
			t.Errorf("send %q: join code %q, want %q", tt.text, got.JoinLinkCode, tt.code)
		}
	}
}

func TestAJoinLinkInAMessageIsACard(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 0, 0)
	p := validPreview("abc1234", true).GroupDefs_JoinLinkPreviewView
	a.chat.mu.Lock()
	a.chat.msgs["c1"] = []*chat.ConvoDefs_MessageView{
		{Id: "m2", Rev: "r2", Sender: &chat.ConvoDefs_MessageViewSender{Did: dmBob}, SentAt: "2025-03-04T14:59:00Z", Text: "",
			Embed: &chat.ConvoDefs_MessageView_Embed{EmbedJoinLink_View: &chat.EmbedJoinLink_View{JoinLinkPreview: &chat.EmbedJoinLink_View_JoinLinkPreview{
				GroupDefs_DisabledJoinLinkPreviewView: &chat.GroupDefs_DisabledJoinLinkPreviewView{Code: "off1234"}}}}},
		{Id: "m1", Rev: "r1", Sender: &chat.ConvoDefs_MessageViewSender{Did: dmBob}, SentAt: "2025-03-04T14:58:00Z", Text: "come along",
			Embed: &chat.ConvoDefs_MessageView_Embed{EmbedJoinLink_View: &chat.EmbedJoinLink_View{JoinLinkPreview: &chat.EmbedJoinLink_View_JoinLinkPreview{
				GroupDefs_JoinLinkPreviewView: p}}}},
	}
	a.chat.mu.Unlock()
	res := a.get("/convos/c1")
	cards := testid(res.doc, "join-card")
	if cards.Length() != 2 {
		t.Fatalf("%d join cards\n%s", cards.Length(), res.body)
	}
	if href, _ := testid(res.doc, "join-card-link").Attr("href"); href != "/join/abc1234" || !strings.Contains(res.body, "Weekend plans") {
		t.Errorf("card link %q", href)
	}
	if testid(res.doc, "join-card-disabled").Length() != 1 || testid(res.doc, "message-unsupported").Length() != 0 {
		t.Errorf("a turned-off link's card is missing or shown as unsupported")
	}
}
