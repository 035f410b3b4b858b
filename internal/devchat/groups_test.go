package devchat

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

// setGroupInvites writes u's chat declaration with allowIncoming "all" and
// the given allowGroupInvites ("" leaves it unset).
func (e *env) setGroupInvites(u *user, allow string) {
	rec := map[string]string{"$type": "chat.bsky.actor.declaration", "allowIncoming": "all"}
	if allow != "" {
		rec["allowGroupInvites"] = allow
	}
	e.recs.put(u.did, collDeclaration, "self", rec)
}

// invitable creates users who accept group invitations from anyone.
func (e *env) invitable(names ...string) []*user {
	var out []*user
	for _, n := range names {
		u := e.user(n)
		e.setGroupInvites(u, "all")
		out = append(out, u)
	}
	return out
}

func dids(us ...*user) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.did.String())
	}
	return out
}

// createGroup creates a group as owner and returns the owner's view.
func (e *env) createGroup(owner *user, name string, members ...*user) *chat.ConvoDefs_ConvoView {
	e.t.Helper()
	return ok[chat.GroupCreateGroup_Output](e.t, e.proc(owner, "chat.bsky.group.createGroup", map[string]any{
		"name": name, "members": dids(members...),
	})).Convo
}

// messages returns u's getMessages answer, newest first.
func (e *env) messages(u *user, convoID string) *chat.ConvoGetMessages_Output {
	e.t.Helper()
	return ok[chat.ConvoGetMessages_Output](e.t, e.query(u, "chat.bsky.convo.getMessages", url.Values{"convoId": {convoID}}))
}

// describe renders messages oldest first, one word each: the text of a
// message, or the system message's data type and referred DIDs' names.
func describe(out *chat.ConvoGetMessages_Output) string {
	var parts []string
	for i := len(out.Messages) - 1; i >= 0; i-- {
		m := out.Messages[i]
		switch {
		case m.ConvoDefs_MessageView != nil:
			parts = append(parts, m.ConvoDefs_MessageView.Text)
		case m.ConvoDefs_SystemMessageView != nil:
			parts = append(parts, describeSystem(m.ConvoDefs_SystemMessageView))
		default:
			parts = append(parts, "deleted")
		}
	}
	return strings.Join(parts, " ")
}

func name(did string) string { return strings.TrimPrefix(did, "did:plc:") }

func describeSystem(v *chat.ConvoDefs_SystemMessageView) string {
	d := v.Data
	switch {
	case d.ConvoDefs_SystemMessageDataAddMember != nil:
		x := d.ConvoDefs_SystemMessageDataAddMember
		return "add:" + name(x.Member.Did) + "/" + *x.Role + "/by:" + name(x.AddedBy.Did)
	case d.ConvoDefs_SystemMessageDataRemoveMember != nil:
		x := d.ConvoDefs_SystemMessageDataRemoveMember
		return "remove:" + name(x.Member.Did) + "/by:" + name(x.RemovedBy.Did)
	case d.ConvoDefs_SystemMessageDataMemberLeave != nil:
		return "leave:" + name(d.ConvoDefs_SystemMessageDataMemberLeave.Member.Did)
	case d.ConvoDefs_SystemMessageDataLockConvo != nil:
		return "lock/by:" + name(d.ConvoDefs_SystemMessageDataLockConvo.LockedBy.Did)
	case d.ConvoDefs_SystemMessageDataUnlockConvo != nil:
		return "unlock/by:" + name(d.ConvoDefs_SystemMessageDataUnlockConvo.UnlockedBy.Did)
	case d.ConvoDefs_SystemMessageDataLockConvoPermanently != nil:
		return "lockPermanently/by:" + name(d.ConvoDefs_SystemMessageDataLockConvoPermanently.LockedBy.Did)
	case d.ConvoDefs_SystemMessageDataEditGroup != nil:
		x := d.ConvoDefs_SystemMessageDataEditGroup
		return "rename:" + *x.OldName + "->" + *x.NewName
	}
	return "system?"
}

// memberRoles renders member views as name=role(addedBy), or name=past /
// name=direct.
func memberRoles(ms []*chat.ActorDefs_ProfileViewBasic) string {
	var parts []string
	for _, m := range ms {
		s := name(m.Did) + "="
		switch {
		case m.Kind == nil:
			s += "none"
		case m.Kind.ActorDefs_GroupConvoMember != nil:
			g := m.Kind.ActorDefs_GroupConvoMember
			s += *g.Role
			if g.AddedBy != nil {
				s += "(" + name(g.AddedBy.Did) + ")"
			}
		case m.Kind.ActorDefs_PastGroupConvoMember != nil:
			s += "past"
		case m.Kind.ActorDefs_DirectConvoMember != nil:
			s += "direct"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func TestCreateGroupMakesOwnerAcceptedAndOthersRequests(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	in := e.invitable("bob", "carol")
	bob, carol := in[0], in[1]

	c := e.createGroup(alice, "Climbing 🧗", bob, carol)
	g := c.Kind.ConvoDefs_GroupConvo
	if g == nil || g.Name != "Climbing 🧗" || g.MemberCount != 3 || g.MemberLimit != 100 || *g.LockStatus != lockUnlocked || g.LockStatusModerationOverride {
		t.Fatalf("groupConvo = %+v", g)
	}
	if *c.Status != statusAccepted {
		t.Errorf("owner's status = %s", *c.Status)
	}
	if got := memberRoles(c.Members); got != "alice=owner bob=standard(alice) carol=standard(alice)" {
		t.Errorf("members = %s", got)
	}
	if got := describe(e.messages(bob, c.Id)); got != "add:bob/standard/by:alice add:carol/standard/by:alice" {
		t.Errorf("bob's history = %s", got)
	}
	if again := e.createGroup(alice, "Climbing 🧗", bob, carol); again.Id == c.Id {
		t.Errorf("createGroup is not idempotent: it returned the same group")
	}

	reqs := ok[chat.ConvoListConvoRequests_Output](t, e.query(bob, "chat.bsky.convo.listConvoRequests", nil))
	if len(reqs.Requests) != 2 || reqs.Requests[1].ConvoDefs_ConvoView.Id != c.Id || *reqs.Requests[1].ConvoDefs_ConvoView.Status != statusRequest {
		t.Fatalf("bob's requests = %+v", reqs.Requests)
	}
	if ids, _ := e.list(alice, url.Values{"kind": {"direct"}}); len(ids) != 0 {
		t.Errorf("kind=direct lists groups: %v", ids)
	}
	if ids, _ := e.list(alice, url.Values{"kind": {"group"}}); len(ids) != 2 {
		t.Errorf("kind=group = %v", ids)
	}

	acc := ok[chat.ConvoAcceptConvo_Output](t, e.proc(bob, "chat.bsky.convo.acceptConvo", map[string]string{"convoId": c.Id}))
	if acc.Rev == nil || *e.convo(bob, c.Id).Status != statusAccepted {
		t.Errorf("bob could not accept the invitation: %+v", acc)
	}
	st := ok[chat.ActorGetStatus_Output](t, e.query(alice, "chat.bsky.actor.getStatus", nil))
	if !st.CanCreateGroups || st.GroupMemberLimit != 100 {
		t.Errorf("getStatus = %+v", st)
	}
}

func TestCreateGroupRefusesBadNames(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	bob := e.invitable("bob")[0]
	for _, tc := range []struct{ name, want string }{
		{"", "must not be empty"},
		{"   ", "must not be empty"},
		{strings.Repeat("é", 51), "50 graphemes"},
		{strings.Repeat("👩‍👩‍👧‍👦", 21), "500 characters"}, // 21 graphemes, 525 bytes
	} {
		r := e.proc(alice, "chat.bsky.group.createGroup", map[string]any{"name": tc.name, "members": dids(bob)})
		wantErr(t, r, http.StatusBadRequest, "InvalidRequest", tc.want)
	}
	e.createGroup(alice, strings.Repeat("é", 50), bob) // 50 graphemes is fine
	if ids, _ := e.list(alice, nil); len(ids) != 1 {
		t.Errorf("refused names created groups: %v", ids)
	}
}

func TestCreateGroupRefuses101Members(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	var names []string
	for i := range 100 {
		names = append(names, "m"+syntax.NewTIDFromInteger(uint64(i)).String())
	}
	members := e.invitable(names...)
	r := e.proc(alice, "chat.bsky.group.createGroup", map[string]any{"name": "big", "members": dids(members...)})
	wantErr(t, r, http.StatusBadRequest, "InvalidRequest", "at most 100 members")

	c := e.createGroup(alice, "full", members[:99]...) // 99 + the owner
	if c.Kind.ConvoDefs_GroupConvo.MemberCount != 100 {
		t.Errorf("memberCount = %d", c.Kind.ConvoDefs_GroupConvo.MemberCount)
	}
	wantErr(t, e.proc(alice, "chat.bsky.group.addMembers", map[string]any{"convoId": c.Id, "members": dids(members[99])}),
		http.StatusBadRequest, "MemberLimitReached", "at most 100")
}

func TestCreateGroupChecksEveryMembersGroupInvitePreference(t *testing.T) {
	e := newEnv(t, false)
	alice, bob, carol, dave := e.user("alice"), e.user("bob"), e.user("carol"), e.user("dave")
	e.setGroupInvites(bob, "all")
	e.setGroupInvites(carol, "following")
	e.setGroupInvites(dave, "none")
	before, _ := e.list(alice, nil)

	create := func(members ...string) resp {
		return e.proc(alice, "chat.bsky.group.createGroup", map[string]any{"name": "g", "members": members})
	}
	wantErr(t, create(bob.did.String(), carol.did.String()), http.StatusBadRequest, "NotFollowedBySender", carol.did.String())
	wantErr(t, create(bob.did.String(), dave.did.String()), http.StatusBadRequest, "UserForbidsGroups", dave.did.String())
	wantErr(t, create(bob.did.String(), "did:plc:nobody"), http.StatusBadRequest, "RecipientNotFound", "did:plc:nobody")
	wantErr(t, create("not-a-did"), http.StatusBadRequest, "InvalidRequest", "members/0")
	if after, _ := e.list(alice, nil); !slices.Equal(after, before) {
		t.Fatalf("refused createGroup calls created convos: %v", after)
	}
	for _, u := range []*user{bob, carol, dave} {
		if reqs := ok[chat.ConvoListConvoRequests_Output](t, e.query(u, "chat.bsky.convo.listConvoRequests", nil)); len(reqs.Requests) != 0 {
			t.Errorf("%s got a request from a refused createGroup", u.handle)
		}
	}

	e.recs.follow(carol.did, alice.did)
	e.createGroup(alice, "g", bob, carol)

	// Unset allowGroupInvites counts as "following".
	erin := e.user("erin")
	e.setGroupInvites(erin, "")
	wantErr(t, create(erin.did.String()), http.StatusBadRequest, "NotFollowedBySender", erin.did.String())
	e.recs.follow(erin.did, alice.did)
	e.createGroup(alice, "g2", erin)
}

func TestGroupLogEventsPerMember(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	in := e.invitable("bob", "carol")
	bob, carol := in[0], in[1]

	c := e.createGroup(alice, "g", bob)
	bobStart := *getLog(t, e, bob, "").Cursor
	aliceStart := *getLog(t, e, alice, "").Cursor
	if got := strings.Join(logTypes(getLog(t, e, bob, "")), ","); got != "logBeginConvo,logAddMember" {
		t.Errorf("bob's log after createGroup = %s", got)
	}
	add := ok[chat.GroupAddMembers_Output](t, e.proc(alice, "chat.bsky.group.addMembers", map[string]any{"convoId": c.Id, "members": dids(carol)}))
	if got := memberRoles(add.AddedMembers); got != "carol=standard(alice)" {
		t.Errorf("addedMembers = %s", got)
	}
	if got := strings.Join(logTypes(getLog(t, e, carol, "")), ","); got != "logBeginConvo,logAddMember" {
		t.Errorf("carol's log = %s", got)
	}
	lg := getLog(t, e, bob, bobStart)
	if got := strings.Join(logTypes(lg), ","); got != "logAddMember" {
		t.Fatalf("bob's log after addMembers = %s", got)
	}
	am := lg.Logs[0].ConvoDefs_LogAddMember
	if am.ConvoId != c.Id || describeSystem(am.Message) != "add:carol/standard/by:alice" || memberRoles(am.RelatedProfiles) != "carol=standard(alice) alice=owner" {
		t.Errorf("logAddMember = %s, related %s", describeSystem(am.Message), memberRoles(am.RelatedProfiles))
	}

	ok[chat.GroupEditGroup_Output](t, e.proc(alice, "chat.bsky.group.editGroup", map[string]any{"convoId": c.Id, "name": "renamed"}))
	ok[chat.GroupRemoveMembers_Output](t, e.proc(alice, "chat.bsky.group.removeMembers", map[string]any{"convoId": c.Id, "members": dids(carol)}))
	ok[chat.ConvoLeaveConvo_Output](t, e.proc(bob, "chat.bsky.convo.leaveConvo", map[string]any{"convoId": c.Id}))
	ok[chat.ConvoLockConvo_Output](t, e.proc(alice, "chat.bsky.convo.lockConvo", map[string]any{"convoId": c.Id}))
	ok[chat.ConvoUnlockConvo_Output](t, e.proc(alice, "chat.bsky.convo.unlockConvo", map[string]any{"convoId": c.Id}))

	if got := strings.Join(logTypes(getLog(t, e, alice, aliceStart)), ","); got != "logAddMember,logEditGroup,logRemoveMember,logMemberLeave,logLockConvo,logUnlockConvo" {
		t.Errorf("alice's log = %s", got)
	}
	// A removed or leaving member learns they are out, and nothing after.
	if got := strings.Join(logTypes(getLog(t, e, bob, bobStart)), ","); got != "logAddMember,logEditGroup,logRemoveMember,logLeaveConvo" {
		t.Errorf("bob's log = %s", got)
	}
	if got := strings.Join(logTypes(getLog(t, e, carol, "")), ","); got != "logBeginConvo,logAddMember,logEditGroup,logLeaveConvo" {
		t.Errorf("carol's log = %s", got)
	}
	for _, u := range []*user{bob, carol} {
		wantErr(t, e.query(u, "chat.bsky.convo.getConvo", url.Values{"convoId": {c.Id}}), http.StatusBadRequest, "InvalidConvo", "")
	}
	hist := e.messages(alice, c.Id)
	if got := describe(hist); got != "add:bob/standard/by:alice add:carol/standard/by:alice rename:g->renamed remove:carol/by:alice leave:bob lock/by:alice unlock/by:alice" {
		t.Errorf("alice's history = %s", got)
	}
	if got := memberRoles(hist.RelatedProfiles); got != "alice=owner bob=past carol=past" {
		t.Errorf("relatedProfiles = %s", got)
	}
	if last := e.convo(alice, c.Id).LastMessage; last.ConvoDefs_SystemMessageView == nil || describeSystem(last.ConvoDefs_SystemMessageView) != "unlock/by:alice" {
		t.Errorf("lastMessage = %+v", last)
	}
}
