package devchat

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/skydm/skydm/internal/lex/chat"
)

// createLink makes the group's join link as owner.
func (e *env) createLink(owner *user, convoID, rule string, approval bool) *chat.GroupDefs_JoinLinkView {
	e.t.Helper()
	return ok[chat.GroupCreateJoinLink_Output](e.t, e.proc(owner, "chat.bsky.group.createJoinLink", map[string]any{
		"convoId": convoID, "joinRule": rule, "requireApproval": approval,
	})).JoinLink
}

// previews answers getJoinLinkPreviews for codes as u (nil: unauthenticated).
func (e *env) previews(u *user, codes ...string) []*chat.GroupGetJoinLinkPreviews_Output_JoinLinkPreviews_Elem {
	e.t.Helper()
	const method = "chat.bsky.group.getJoinLinkPreviews"
	params := url.Values{"codes": codes}
	var r resp
	if u == nil {
		var err error
		if r, err = e.raw(context.Background(), http.MethodGet, method, "", params, nil); err != nil {
			e.t.Fatal(err)
		}
	} else {
		r = e.query(u, method, params)
	}
	return ok[chat.GroupGetJoinLinkPreviews_Output](e.t, r).JoinLinkPreviews
}

// requestJoin asks to join through code as u.
func (e *env) requestJoin(u *user, code string) resp {
	e.t.Helper()
	return e.proc(u, "chat.bsky.group.requestJoin", map[string]any{"code": code})
}

// groupMessages returns u's getMessages for a convo, oldest first.
func (e *env) groupMessages(u *user, convoID string) []*chat.ConvoGetMessages_Output_Messages_Elem {
	e.t.Helper()
	out := ok[chat.ConvoGetMessages_Output](e.t, e.query(u, "chat.bsky.convo.getMessages", url.Values{"convoId": {convoID}}))
	slices.Reverse(out.Messages)
	return out.Messages
}

// systemTypes names the system messages in msgs ("createJoinLink", ...).
func systemTypes(msgs []*chat.ConvoGetMessages_Output_Messages_Elem) []string {
	var out []string
	for _, m := range msgs {
		if m.ConvoDefs_SystemMessageView == nil {
			continue
		}
		b, _ := json.Marshal(m.ConvoDefs_SystemMessageView.Data)
		var v struct {
			Type string `json:"$type"`
		}
		_ = json.Unmarshal(b, &v)
		out = append(out, strings.TrimPrefix(v.Type, "chat.bsky.convo.defs#systemMessageData"))
	}
	return out
}

// lastSystem is the newest system message in u's view of a convo.
func (e *env) lastSystem(u *user, convoID string) *chat.ConvoDefs_SystemMessageView_Data {
	e.t.Helper()
	msgs := e.groupMessages(u, convoID)
	for i := len(msgs) - 1; i >= 0; i-- {
		if sm := msgs[i].ConvoDefs_SystemMessageView; sm != nil {
			return sm.Data
		}
	}
	e.t.Fatalf("no system message in %s", convoID)
	return nil
}

// logsSince returns the $types of u's getLog events after cursor.
func (e *env) logsSince(u *user, cursor string) ([]string, *chat.ConvoGetLog_Output) {
	e.t.Helper()
	out := getLog(e.t, e, u, cursor)
	return logTypes(out), out
}

func groupKind(t *testing.T, c *chat.ConvoDefs_ConvoView) *chat.ConvoDefs_GroupConvo {
	t.Helper()
	if c.Kind == nil || c.Kind.ConvoDefs_GroupConvo == nil {
		t.Fatalf("convo %s is not a group: %+v", c.Id, c.Kind)
	}
	return c.Kind.ConvoDefs_GroupConvo
}

func TestCreateJoinLinkIsOwnerOnlyAndOneEnabledPerGroup(t *testing.T) {
	e := newEnv(t, false)
	alice, bob, carol := e.user("alice"), e.invitable("bob")[0], e.user("carol")
	g := e.createGroup(alice, "Weekend plans", bob)
	bobCursor := *getLog(t, e, bob, "").Cursor

	wantErr(t, e.proc(bob, "chat.bsky.group.createJoinLink", map[string]any{"convoId": g.Id, "joinRule": "anyone"}),
		http.StatusBadRequest, "InsufficientRole", "")
	wantErr(t, e.proc(carol, "chat.bsky.group.createJoinLink", map[string]any{"convoId": g.Id, "joinRule": "anyone"}),
		http.StatusBadRequest, "InvalidConvo", "")
	direct := e.open(alice, carol)
	wantErr(t, e.proc(alice, "chat.bsky.group.createJoinLink", map[string]any{"convoId": direct.Id, "joinRule": "anyone"}),
		http.StatusBadRequest, "InvalidConvo", "")
	wantErr(t, e.proc(alice, "chat.bsky.group.createJoinLink", map[string]any{"convoId": g.Id, "joinRule": "everyone"}),
		http.StatusBadRequest, "InvalidRequest", "joinRule")

	l := ok[chat.GroupCreateJoinLink_Output](t, e.proc(alice, "chat.bsky.group.createJoinLink", map[string]any{"convoId": g.Id, "joinRule": "followedByOwner"})).JoinLink
	if l.Code == "" || *l.EnabledStatus != "enabled" || *l.JoinRule != "followedByOwner" || l.RequireApproval {
		t.Fatalf("join link = %+v", l)
	}
	wantErr(t, e.proc(alice, "chat.bsky.group.createJoinLink", map[string]any{"convoId": g.Id, "joinRule": "anyone"}),
		http.StatusBadRequest, "EnabledJoinLinkAlreadyExists", "")

	for _, u := range []*user{alice, bob} {
		if jl := groupKind(t, e.convo(u, g.Id)).JoinLink; jl == nil || jl.Code != l.Code {
			t.Fatalf("%s's groupConvo.joinLink = %+v, want code %s", u.handle, jl, l.Code)
		}
	}
	if got := systemTypes(e.groupMessages(bob, g.Id)); !slices.Contains(got, "CreateJoinLink") {
		t.Fatalf("bob's system messages = %v", got)
	}
	if types, _ := e.logsSince(bob, bobCursor); !slices.Contains(types, "logCreateJoinLink") {
		t.Fatalf("bob's log = %v", types)
	}

	// A second group gets its own link with a different code.
	other := e.createGroup(alice, "Other", bob)
	if l2 := e.createLink(alice, other.Id, "anyone", false); l2.Code == l.Code {
		t.Fatal("two groups share a join code")
	}
}

func TestEditEnableAndDisableJoinLink(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.invitable("bob")[0]
	g := e.createGroup(alice, "Weekend plans", bob)
	for _, m := range []string{"editJoinLink", "enableJoinLink", "disableJoinLink"} {
		wantErr(t, e.proc(alice, "chat.bsky.group."+m, map[string]any{"convoId": g.Id}), http.StatusBadRequest, "NoJoinLink", "")
	}
	l := e.createLink(alice, g.Id, "anyone", false)
	for _, m := range []string{"editJoinLink", "enableJoinLink", "disableJoinLink"} {
		wantErr(t, e.proc(bob, "chat.bsky.group."+m, map[string]any{"convoId": g.Id}), http.StatusBadRequest, "InsufficientRole", "")
	}
	cursor := *getLog(t, e, bob, "").Cursor

	ed := ok[chat.GroupEditJoinLink_Output](t, e.proc(alice, "chat.bsky.group.editJoinLink", map[string]any{
		"convoId": g.Id, "requireApproval": true, "joinRule": "followedByOwner",
	})).JoinLink
	if ed.Code != l.Code || !ed.RequireApproval || *ed.JoinRule != "followedByOwner" || ed.CreatedAt != l.CreatedAt {
		t.Fatalf("edited = %+v (was %+v)", ed, l)
	}
	// Fields left out keep their value.
	ed = ok[chat.GroupEditJoinLink_Output](t, e.proc(alice, "chat.bsky.group.editJoinLink", map[string]any{"convoId": g.Id, "joinRule": "anyone"})).JoinLink
	if !ed.RequireApproval || *ed.JoinRule != "anyone" {
		t.Fatalf("partial edit = %+v", ed)
	}
	wantErr(t, e.proc(alice, "chat.bsky.group.enableJoinLink", map[string]any{"convoId": g.Id}), http.StatusBadRequest, "LinkAlreadyEnabled", "")

	dis := ok[chat.GroupDisableJoinLink_Output](t, e.proc(alice, "chat.bsky.group.disableJoinLink", map[string]any{"convoId": g.Id})).JoinLink
	if *dis.EnabledStatus != "disabled" || dis.Code != l.Code {
		t.Fatalf("disabled = %+v", dis)
	}
	if jl := groupKind(t, e.convo(bob, g.Id)).JoinLink; jl == nil || *jl.EnabledStatus != "disabled" {
		t.Fatalf("bob sees joinLink %+v", jl)
	}
	wantErr(t, e.proc(alice, "chat.bsky.group.disableJoinLink", map[string]any{"convoId": g.Id}), http.StatusBadRequest, "NoJoinLink", "")
	en := ok[chat.GroupEnableJoinLink_Output](t, e.proc(alice, "chat.bsky.group.enableJoinLink", map[string]any{"convoId": g.Id})).JoinLink
	if *en.EnabledStatus != "enabled" || en.Code != l.Code || !en.RequireApproval {
		t.Fatalf("re-enabled = %+v", en)
	}

	want := []string{"EditJoinLink", "EditJoinLink", "DisableJoinLink", "EnableJoinLink"}
	if got := systemTypes(e.groupMessages(bob, g.Id)); !slices.Equal(got[len(got)-4:], want) {
		t.Fatalf("system messages = %v, want ending %v", got, want)
	}
	types, _ := e.logsSince(bob, cursor)
	if got := strings.Join(types, ","); got != "logEditJoinLink,logEditJoinLink,logDisableJoinLink,logEnableJoinLink" {
		t.Fatalf("bob's log = %s", got)
	}

	// Creating a link while the old one is disabled replaces it: the old code is gone.
	e.proc(alice, "chat.bsky.group.disableJoinLink", map[string]any{"convoId": g.Id})
	fresh := e.createLink(alice, g.Id, "anyone", false)
	if fresh.Code == l.Code {
		t.Fatal("new link reuses the old code")
	}
	if p := e.previews(alice, l.Code)[0]; p.GroupDefs_InvalidJoinLinkPreviewView == nil {
		t.Fatalf("replaced code preview = %+v", p)
	}
}

func TestGetJoinLinkPreviewsMatchCodesOneToOne(t *testing.T) {
	e := newEnv(t, false)
	alice, bob, carol := e.user("alice"), e.invitable("bob")[0], e.user("carol")
	g := e.createGroup(alice, "Weekend plans", bob)
	live := e.createLink(alice, g.Id, "anyone", true)
	g2 := e.createGroup(alice, "Old", bob)
	off := e.createLink(alice, g2.Id, "anyone", false)
	e.proc(alice, "chat.bsky.group.disableJoinLink", map[string]any{"convoId": g2.Id})

	got := e.previews(nil, "nope", live.Code, off.Code, live.Code)
	if len(got) != 4 {
		t.Fatalf("%d previews for 4 codes", len(got))
	}
	if p := got[0].GroupDefs_InvalidJoinLinkPreviewView; p == nil || p.Code != "nope" {
		t.Fatalf("previews[0] = %+v", got[0])
	}
	if p := got[2].GroupDefs_DisabledJoinLinkPreviewView; p == nil || p.Code != off.Code {
		t.Fatalf("previews[2] = %+v", got[2])
	}
	p := got[1].GroupDefs_JoinLinkPreviewView
	if p == nil || p.Code != live.Code || p.ConvoId != g.Id || p.Name != "Weekend plans" || p.Owner.Handle != "alice.test" ||
		p.MemberCount != 2 || p.MemberLimit != 100 || !p.RequireApproval || *p.JoinRule != "anyone" || p.Convo != nil || p.Viewer != nil {
		t.Fatalf("unauthenticated preview = %+v", p)
	}
	if got[3].GroupDefs_JoinLinkPreviewView == nil {
		t.Fatal("a repeated code is not previewed again")
	}

	// Members see the convo; a requester sees when they asked.
	if p := e.previews(bob, live.Code)[0].GroupDefs_JoinLinkPreviewView; p.Convo == nil || p.Convo.Id != g.Id {
		t.Fatalf("member's preview = %+v", p)
	}
	if p := e.previews(carol, live.Code)[0].GroupDefs_JoinLinkPreviewView; p.Convo != nil || (p.Viewer != nil && p.Viewer.RequestedAt != nil) {
		t.Fatalf("outsider's preview = %+v", p)
	}
	e.requestJoin(carol, live.Code)
	if p := e.previews(carol, live.Code)[0].GroupDefs_JoinLinkPreviewView; p.Convo != nil || p.Viewer == nil || p.Viewer.RequestedAt == nil {
		t.Fatalf("requester's preview = %+v", p)
	}

	wantErr(t, e.query(bob, "chat.bsky.group.getJoinLinkPreviews", nil), http.StatusBadRequest, "InvalidRequest", "codes")
	many := url.Values{}
	for i := range 51 {
		many.Add("codes", fmt.Sprint("c", i))
	}
	wantErr(t, e.query(bob, "chat.bsky.group.getJoinLinkPreviews", many), http.StatusBadRequest, "InvalidRequest", "50")
}

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
	if u := ok[unreadCountsOutput](t, e.query(alice, "chat.bsky.convo.getUnreadCounts", nil)); u.UnreadAcceptedConvos != 1 {
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
	if u := ok[unreadCountsOutput](t, e.query(alice, "chat.bsky.convo.getUnreadCounts", nil)); u.UnreadAcceptedConvos != 0 {
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

func TestJoinLinkEmbedShowsTheLivePreview(t *testing.T) {
	e := newEnv(t, false)
	alice, bob, carol := e.user("alice"), e.invitable("bob")[0], e.user("carol")
	g := e.createGroup(alice, "Weekend plans", bob)
	l := e.createLink(alice, g.Id, "anyone", false)
	dm := e.open(alice, carol)
	sent := ok[chat.ConvoDefs_MessageView](t, e.proc(alice, "chat.bsky.convo.sendMessage", map[string]any{"convoId": dm.Id, "message": map[string]any{
		"text": "come join", "embed": map[string]any{"$type": "chat.bsky.embed.joinLink", "code": l.Code},
	}}))
	if sent.Embed == nil || sent.Embed.EmbedJoinLink_View == nil {
		t.Fatalf("sent embed = %+v", sent.Embed)
	}
	if p := sent.Embed.EmbedJoinLink_View.JoinLinkPreview.GroupDefs_JoinLinkPreviewView; p == nil || p.Name != "Weekend plans" || p.Convo == nil || p.Convo.Id != g.Id {
		t.Fatalf("alice's (the owner's) preview = %+v", sent.Embed.EmbedJoinLink_View.JoinLinkPreview)
	}
	embedOf := func(u *user, convoID ...string) *chat.EmbedJoinLink_View_JoinLinkPreview {
		t.Helper()
		id := dm.Id
		if len(convoID) > 0 {
			id = convoID[0]
		}
		msgs := e.groupMessages(u, id)
		mv := msgs[len(msgs)-1].ConvoDefs_MessageView
		if mv == nil || mv.Embed == nil || mv.Embed.EmbedJoinLink_View == nil {
			t.Fatalf("message = %+v", mv)
		}
		return mv.Embed.EmbedJoinLink_View.JoinLinkPreview
	}
	if p := embedOf(carol).GroupDefs_JoinLinkPreviewView; p == nil || p.Convo != nil || p.Viewer != nil {
		t.Fatalf("carol, not a member, sees %+v", p)
	}
	// A member sees the group in the preview, also when the link is shared
	// in the group itself (whose last message then embeds it again).
	ok[chat.ConvoDefs_MessageView](t, e.proc(alice, "chat.bsky.convo.sendMessage", map[string]any{"convoId": g.Id, "message": map[string]any{
		"text": "our link", "embed": map[string]any{"$type": "chat.bsky.embed.joinLink", "code": l.Code},
	}}))
	inGroup := embedOf(bob, g.Id).GroupDefs_JoinLinkPreviewView
	if inGroup == nil || inGroup.Convo == nil || inGroup.Convo.Id != g.Id {
		t.Fatalf("bob's preview in the group = %+v", inGroup)
	}
	nested := inGroup.Convo.LastMessage.ConvoDefs_MessageView.Embed.EmbedJoinLink_View.JoinLinkPreview.GroupDefs_JoinLinkPreviewView
	if nested == nil || nested.Convo != nil {
		t.Fatalf("the preview inside the preview's convo = %+v, want one without a convo", nested)
	}
	e.proc(alice, "chat.bsky.group.editJoinLink", map[string]any{"convoId": g.Id, "requireApproval": true})
	e.requestJoin(carol, l.Code)
	if p := embedOf(carol).GroupDefs_JoinLinkPreviewView; p == nil || p.Viewer == nil || p.Viewer.RequestedAt == nil {
		t.Fatalf("carol, who asked to join, sees %+v", p)
	}
	e.proc(alice, "chat.bsky.group.disableJoinLink", map[string]any{"convoId": g.Id})
	if p := embedOf(carol).GroupDefs_DisabledJoinLinkPreviewView; p == nil || p.Code != l.Code {
		t.Fatalf("after disabling, carol sees %+v", embedOf(carol))
	}
	bad := ok[chat.ConvoDefs_MessageView](t, e.proc(carol, "chat.bsky.convo.sendMessage", map[string]any{"convoId": dm.Id, "message": map[string]any{
		"text": "", "embed": map[string]any{"$type": "chat.bsky.embed.joinLink", "code": "nope"},
	}}))
	if p := bad.Embed.EmbedJoinLink_View.JoinLinkPreview.GroupDefs_InvalidJoinLinkPreviewView; p == nil || p.Code != "nope" {
		t.Fatalf("unknown code embed = %+v", bad.Embed)
	}
	wantErr(t, e.proc(carol, "chat.bsky.convo.sendMessage", map[string]any{"convoId": dm.Id, "message": map[string]any{
		"text": "x", "embed": map[string]any{"$type": "chat.bsky.embed.joinLink", "code": ""},
	}}), http.StatusBadRequest, "InvalidRequest", "code")
}
