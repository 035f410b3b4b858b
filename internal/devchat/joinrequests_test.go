package devchat

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/skydm/skydm/internal/lex/chat"
)

func TestRequestJoinWithoutApprovalJoinsAtOnce(t *testing.T) {
	e := newEnv(t, false)
	alice, bob, carol := e.user("alice"), e.invitable("bob")[0], e.user("carol")
	g := e.createGroup(alice, "Weekend plans", bob)
	l := e.createLink(alice, g.Id, "anyone", false)
	aliceCursor := *getLog(t, e, alice, "").Cursor

	out := ok[chat.GroupRequestJoin_Output](t, e.requestJoin(carol, l.Code))
	if out.Status != "joined" || out.Convo == nil || out.Convo.Id != g.Id || *out.Convo.Status != "accepted" {
		t.Fatalf("requestJoin = %+v", out)
	}
	if n := groupKind(t, e.convo(alice, g.Id)).MemberCount; n != 3 {
		t.Fatalf("memberCount = %d, want 3", n)
	}
	d := e.lastSystem(alice, g.Id).ConvoDefs_SystemMessageDataMemberJoin
	if d == nil || d.Member.Did != carol.did.String() || *d.Role != "standard" || d.ApprovedBy != nil {
		t.Fatalf("memberJoin = %+v", d)
	}
	if types, _ := e.logsSince(carol, ""); !slices.Contains(types, "logBeginConvo") || !slices.Contains(types, "logMemberJoin") {
		t.Fatalf("carol's log = %v", types)
	}
	types, lg := e.logsSince(alice, aliceCursor)
	if !slices.Equal(types, []string{"logMemberJoin"}) {
		t.Fatalf("alice's log = %v", types)
	}
	if mj := lg.Logs[0].ConvoDefs_LogMemberJoin; len(mj.RelatedProfiles) == 0 || mj.RelatedProfiles[0].Did != carol.did.String() {
		t.Fatalf("logMemberJoin = %+v", mj)
	}
	// Asking again as a member changes nothing.
	if again := ok[chat.GroupRequestJoin_Output](t, e.requestJoin(carol, l.Code)); again.Status != "joined" {
		t.Fatalf("second requestJoin = %+v", again)
	}
	if n := groupKind(t, e.convo(alice, g.Id)).MemberCount; n != 3 {
		t.Fatalf("memberCount after asking twice = %d", n)
	}
}

func TestJoinRequestsAwaitTheOwner(t *testing.T) {
	e := newEnv(t, false)
	alice, bob, carol, dave := e.user("alice"), e.invitable("bob")[0], e.user("carol"), e.user("dave")
	g := e.createGroup(alice, "Weekend plans", bob)
	l := e.createLink(alice, g.Id, "anyone", true)
	e.proc(alice, "chat.bsky.convo.updateAllRead", map[string]any{})
	aliceCursor := *getLog(t, e, alice, "").Cursor

	if out := ok[chat.GroupRequestJoin_Output](t, e.requestJoin(carol, l.Code)); out.Status != "pending" || out.Convo != nil {
		t.Fatalf("requestJoin = %+v", out)
	}
	if again := ok[chat.GroupRequestJoin_Output](t, e.requestJoin(carol, l.Code)); again.Status != "pending" {
		t.Fatalf("second requestJoin = %+v", again)
	}
	wantErr(t, e.query(carol, "chat.bsky.convo.getConvo", url.Values{"convoId": {g.Id}}), http.StatusBadRequest, "InvalidConvo", "")
	if types, _ := e.logsSince(carol, ""); !slices.Equal(types, []string{"logOutgoingJoinRequest"}) {
		t.Fatalf("carol's log = %v", types)
	}
	reqs := ok[chat.ConvoListConvoRequests_Output](t, e.query(carol, "chat.bsky.convo.listConvoRequests", nil)).Requests
	if len(reqs) != 1 || reqs[0].GroupDefs_JoinRequestConvoView == nil || reqs[0].GroupDefs_JoinRequestConvoView.Name != "Weekend plans" ||
		reqs[0].GroupDefs_JoinRequestConvoView.Viewer.RequestedAt == nil {
		t.Fatalf("carol's requests = %+v", reqs)
	}

	// The owner's unread join requests make the group unread.
	gk := groupKind(t, e.convo(alice, g.Id))
	if gk.JoinRequestCount == nil || *gk.JoinRequestCount != 1 || gk.UnreadJoinRequestCount == nil || *gk.UnreadJoinRequestCount != 1 {
		t.Fatalf("alice's groupConvo = %+v", gk)
	}
	if bk := groupKind(t, e.convo(bob, g.Id)); bk.JoinRequestCount != nil || bk.UnreadJoinRequestCount != nil {
		t.Fatalf("bob sees join request counts: %+v", bk)
	}
	if u := ok[chat.ConvoGetUnreadCounts_Output](t, e.query(alice, "chat.bsky.convo.getUnreadCounts", nil)); u.UnreadAcceptedConvos != 1 {
		t.Fatalf("alice's unread counts = %+v", u)
	}
	if ids, _ := e.list(alice, url.Values{"readState": {"unread"}}); !slices.Equal(ids, []string{g.Id}) {
		t.Fatalf("alice's unread convos = %v, want the group", ids)
	}
	wantErr(t, e.proc(bob, "chat.bsky.group.updateJoinRequestsRead", map[string]any{"convoId": g.Id}), http.StatusBadRequest, "InsufficientRole", "")
	ok[chat.GroupUpdateJoinRequestsRead_Output](t, e.proc(alice, "chat.bsky.group.updateJoinRequestsRead", map[string]any{"convoId": g.Id}))
	if gk := groupKind(t, e.convo(alice, g.Id)); *gk.JoinRequestCount != 1 || *gk.UnreadJoinRequestCount != 0 {
		t.Fatalf("after reading: %+v", gk)
	}
	if u := ok[chat.ConvoGetUnreadCounts_Output](t, e.query(alice, "chat.bsky.convo.getUnreadCounts", nil)); u.UnreadAcceptedConvos != 0 {
		t.Fatalf("alice's unread counts after reading = %+v", u)
	}
	if ids, _ := e.list(alice, url.Values{"readState": {"unread"}}); len(ids) != 0 {
		t.Fatalf("alice's unread convos after reading = %v", ids)
	}

	wantErr(t, e.query(bob, "chat.bsky.group.listJoinRequests", url.Values{"convoId": {g.Id}}), http.StatusBadRequest, "InsufficientRole", "")
	e.requestJoin(dave, l.Code)
	list := ok[chat.GroupListJoinRequests_Output](t, e.query(alice, "chat.bsky.group.listJoinRequests", url.Values{"convoId": {g.Id}}))
	if len(list.Requests) != 2 || list.Requests[0].RequestedBy.Did != dave.did.String() || list.Requests[0].ConvoId != g.Id ||
		list.Requests[1].RequestedBy.Handle != "carol.test" {
		t.Fatalf("join requests (newest first) = %+v", list.Requests)
	}
	page := ok[chat.GroupListJoinRequests_Output](t, e.query(alice, "chat.bsky.group.listJoinRequests", url.Values{"convoId": {g.Id}, "limit": {"1"}}))
	if len(page.Requests) != 1 || page.Cursor == nil {
		t.Fatalf("first page = %+v", page)
	}
	next := ok[chat.GroupListJoinRequests_Output](t, e.query(alice, "chat.bsky.group.listJoinRequests", url.Values{"convoId": {g.Id}, "limit": {"1"}, "cursor": {*page.Cursor}}))
	if len(next.Requests) != 1 || next.Requests[0].RequestedBy.Did != carol.did.String() || next.Cursor != nil {
		t.Fatalf("second page = %+v", next)
	}

	wantErr(t, e.proc(bob, "chat.bsky.group.approveJoinRequest", map[string]any{"convoId": g.Id, "member": carol.did.String()}), http.StatusBadRequest, "InsufficientRole", "")
	approved := ok[chat.GroupApproveJoinRequest_Output](t, e.proc(alice, "chat.bsky.group.approveJoinRequest", map[string]any{"convoId": g.Id, "member": carol.did.String()}))
	if approved.Convo.Id != g.Id || groupKind(t, approved.Convo).MemberCount != 3 || *groupKind(t, approved.Convo).JoinRequestCount != 1 {
		t.Fatalf("approve = %+v", approved.Convo)
	}
	if c := e.convo(carol, g.Id); *c.Status != "accepted" {
		t.Fatalf("carol's status = %s", *c.Status)
	}
	d := e.lastSystem(bob, g.Id).ConvoDefs_SystemMessageDataMemberJoin
	if d == nil || d.Member.Did != carol.did.String() || d.ApprovedBy == nil || d.ApprovedBy.Did != alice.did.String() {
		t.Fatalf("memberJoin = %+v", d)
	}
	wantErr(t, e.proc(alice, "chat.bsky.group.approveJoinRequest", map[string]any{"convoId": g.Id, "member": carol.did.String()}), http.StatusBadRequest, "InvalidRequest", "join request")

	types, lg := e.logsSince(alice, aliceCursor)
	want := []string{"logIncomingJoinRequest", "logReadJoinRequests", "logIncomingJoinRequest", "logApproveJoinRequest", "logMemberJoin"}
	if !slices.Equal(types, want) {
		t.Fatalf("alice's log = %v, want %v", types, want)
	}
	if in := lg.Logs[0].ConvoDefs_LogIncomingJoinRequest; in.Member.Handle != "carol.test" || in.ConvoId != g.Id {
		t.Fatalf("logIncomingJoinRequest = %+v", in)
	}
	if types, _ := e.logsSince(carol, ""); !slices.Contains(types, "logBeginConvo") {
		t.Fatalf("carol's log after approval = %v", types)
	}
}

func TestRejectAndWithdrawJoinRequests(t *testing.T) {
	e := newEnv(t, false)
	alice, bob, carol := e.user("alice"), e.invitable("bob")[0], e.user("carol")
	g := e.createGroup(alice, "Weekend plans", bob)
	l := e.createLink(alice, g.Id, "anyone", true)

	wantErr(t, e.proc(carol, "chat.bsky.group.withdrawJoinRequest", map[string]any{"convoId": g.Id}), http.StatusBadRequest, "InvalidJoinRequest", "")
	e.requestJoin(carol, l.Code)
	aliceCursor := *getLog(t, e, alice, "").Cursor
	carolCursor := *getLog(t, e, carol, "").Cursor
	ok[chat.GroupWithdrawJoinRequest_Output](t, e.proc(carol, "chat.bsky.group.withdrawJoinRequest", map[string]any{"convoId": g.Id}))
	if list := ok[chat.GroupListJoinRequests_Output](t, e.query(alice, "chat.bsky.group.listJoinRequests", url.Values{"convoId": {g.Id}})); len(list.Requests) != 0 {
		t.Fatalf("requests after withdrawal = %+v", list.Requests)
	}
	if types, _ := e.logsSince(alice, aliceCursor); !slices.Equal(types, []string{"logWithdrawIncomingJoinRequest"}) {
		t.Fatalf("alice's log = %v", types)
	}
	if types, _ := e.logsSince(carol, carolCursor); !slices.Equal(types, []string{"logWithdrawOutgoingJoinRequest"}) {
		t.Fatalf("carol's log = %v", types)
	}

	e.requestJoin(carol, l.Code)
	aliceCursor = *getLog(t, e, alice, "").Cursor
	wantErr(t, e.proc(bob, "chat.bsky.group.rejectJoinRequest", map[string]any{"convoId": g.Id, "member": carol.did.String()}), http.StatusBadRequest, "InsufficientRole", "")
	ok[chat.GroupRejectJoinRequest_Output](t, e.proc(alice, "chat.bsky.group.rejectJoinRequest", map[string]any{"convoId": g.Id, "member": carol.did.String()}))
	if types, _ := e.logsSince(alice, aliceCursor); !slices.Equal(types, []string{"logRejectJoinRequest"}) {
		t.Fatalf("alice's log = %v", types)
	}
	if gk := groupKind(t, e.convo(alice, g.Id)); *gk.JoinRequestCount != 0 || groupKind(t, e.convo(alice, g.Id)).MemberCount != 2 {
		t.Fatalf("after rejecting: %+v", gk)
	}
	wantErr(t, e.proc(carol, "chat.bsky.group.withdrawJoinRequest", map[string]any{"convoId": g.Id}), http.StatusBadRequest, "InvalidJoinRequest", "")
	wantErr(t, e.proc(alice, "chat.bsky.group.rejectJoinRequest", map[string]any{"convoId": g.Id, "member": carol.did.String()}), http.StatusBadRequest, "InvalidRequest", "join request")
	// Rejected people may ask again.
	if out := ok[chat.GroupRequestJoin_Output](t, e.requestJoin(carol, l.Code)); out.Status != "pending" {
		t.Fatalf("asking again = %+v", out)
	}
	// Being added by the owner answers the request.
	e.setGroupInvites(carol, "all")
	ok[chat.GroupAddMembers_Output](t, e.proc(alice, "chat.bsky.group.addMembers", map[string]any{"convoId": g.Id, "members": []string{carol.did.String()}}))
	if list := ok[chat.GroupListJoinRequests_Output](t, e.query(alice, "chat.bsky.group.listJoinRequests", url.Values{"convoId": {g.Id}})); len(list.Requests) != 0 {
		t.Fatalf("requests after adding carol = %+v", list.Requests)
	}
}

func TestRequestJoinRefusals(t *testing.T) {
	e := newEnv(t, false)
	alice, bob, carol := e.user("alice"), e.invitable("bob")[0], e.user("carol")

	t.Run("unknown code", func(t *testing.T) {
		wantErr(t, e.requestJoin(carol, "doesnotexist"), http.StatusBadRequest, "InvalidCode", "")
	})
	t.Run("disabled link", func(t *testing.T) {
		g := e.createGroup(alice, "Disabled", bob)
		l := e.createLink(alice, g.Id, "anyone", false)
		e.proc(alice, "chat.bsky.group.disableJoinLink", map[string]any{"convoId": g.Id})
		wantErr(t, e.requestJoin(carol, l.Code), http.StatusBadRequest, "LinkDisabled", "")
	})
	t.Run("followers of the owner only", func(t *testing.T) {
		g := e.createGroup(alice, "Followed", bob)
		l := e.createLink(alice, g.Id, "followedByOwner", false)
		e.recs.follow(carol.did, alice.did) // carol following alice is not enough
		wantErr(t, e.requestJoin(carol, l.Code), http.StatusBadRequest, "FollowRequired", "")
		e.recs.follow(alice.did, carol.did)
		if out := ok[chat.GroupRequestJoin_Output](t, e.requestJoin(carol, l.Code)); out.Status != "joined" {
			t.Fatalf("followed carol = %+v", out)
		}
	})
	t.Run("removed by the owner", func(t *testing.T) {
		g := e.createGroup(alice, "Kicked", bob)
		l := e.createLink(alice, g.Id, "anyone", false)
		ok[chat.GroupRemoveMembers_Output](t, e.proc(alice, "chat.bsky.group.removeMembers", map[string]any{"convoId": g.Id, "members": []string{bob.did.String()}}))
		wantErr(t, e.requestJoin(bob, l.Code), http.StatusBadRequest, "UserKicked", "")
	})
	t.Run("locked group", func(t *testing.T) {
		g := e.createGroup(alice, "Locked", bob)
		l := e.createLink(alice, g.Id, "anyone", true)
		ok[chat.ConvoLockConvo_Output](t, e.proc(alice, "chat.bsky.convo.lockConvo", map[string]any{"convoId": g.Id}))
		wantErr(t, e.requestJoin(carol, l.Code), http.StatusBadRequest, "ConvoLocked", "")
	})
	t.Run("full group", func(t *testing.T) {
		var members []*user
		for i := range 98 {
			members = append(members, e.invitable(fmt.Sprint("m", i))...)
		}
		g := e.createGroup(alice, "Full", members...) // 99 with alice
		l := e.createLink(alice, g.Id, "anyone", true)
		e.requestJoin(carol, l.Code)
		dave := e.user("dave")
		e.requestJoin(dave, l.Code)
		ok[chat.GroupApproveJoinRequest_Output](t, e.proc(alice, "chat.bsky.group.approveJoinRequest", map[string]any{"convoId": g.Id, "member": carol.did.String()}))
		wantErr(t, e.proc(alice, "chat.bsky.group.approveJoinRequest", map[string]any{"convoId": g.Id, "member": dave.did.String()}), http.StatusBadRequest, "MemberLimitReached", "")
		wantErr(t, e.requestJoin(e.user("erin"), l.Code), http.StatusBadRequest, "MemberLimitReached", "")
		if p := e.previews(nil, l.Code)[0].GroupDefs_JoinLinkPreviewView; p.MemberCount != 100 || p.MemberLimit != 100 {
			t.Fatalf("full preview = %+v", p)
		}
	})
}
