package devchat

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/skydm/skydm/internal/lex/chat"
)

func TestLateAddedMemberSeesOnlyWhatFollowsTheirJoining(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	in := e.invitable("bob", "carol")
	bob, carol := in[0], in[1]
	c := e.createGroup(alice, "g", bob)
	early := e.send(bob, c.Id, "before carol")

	wantErr(t, e.proc(bob, "chat.bsky.group.addMembers", map[string]any{"convoId": c.Id, "members": dids(carol)}),
		http.StatusBadRequest, "InsufficientRole", "owner")
	ok[chat.GroupAddMembers_Output](t, e.proc(alice, "chat.bsky.group.addMembers", map[string]any{"convoId": c.Id, "members": dids(carol)}))
	e.send(bob, c.Id, "after carol")

	if got := describe(e.messages(carol, c.Id)); got != "add:carol/standard/by:alice after carol" {
		t.Errorf("carol's history = %s", got)
	}
	if got := describe(e.messages(bob, c.Id)); got != "add:bob/standard/by:alice before carol add:carol/standard/by:alice after carol" {
		t.Errorf("bob's history = %s", got)
	}
	wantErr(t, e.proc(carol, "chat.bsky.convo.addReaction", map[string]any{"convoId": c.Id, "messageId": early.Id, "value": "👍"}),
		http.StatusBadRequest, "InvalidRequest", "not found")
	cv := e.convo(carol, c.Id)
	if *cv.Status != statusRequest || cv.UnreadCount != 1 {
		t.Errorf("carol's view: status %s unread %d", *cv.Status, cv.UnreadCount)
	}
}

func TestAddMembersChecksInvitesAndIgnoresMembers(t *testing.T) {
	e := newEnv(t, false)
	alice, dave := e.user("alice"), e.user("dave")
	bob := e.invitable("bob")[0]
	e.setGroupInvites(dave, "none")
	c := e.createGroup(alice, "g", bob)

	wantErr(t, e.proc(alice, "chat.bsky.group.addMembers", map[string]any{"convoId": c.Id, "members": dids(dave)}),
		http.StatusBadRequest, "UserForbidsGroups", dave.did.String())
	wantErr(t, e.proc(alice, "chat.bsky.group.addMembers", map[string]any{"convoId": c.Id, "members": []string{}}),
		http.StatusBadRequest, "InvalidRequest", "members")
	again := ok[chat.GroupAddMembers_Output](t, e.proc(alice, "chat.bsky.group.addMembers", map[string]any{"convoId": c.Id, "members": dids(bob)}))
	if len(again.AddedMembers) != 0 || again.Convo.Kind.ConvoDefs_GroupConvo.MemberCount != 2 {
		t.Errorf("re-adding a member: added %d, count %d", len(again.AddedMembers), again.Convo.Kind.ConvoDefs_GroupConvo.MemberCount)
	}
	direct := e.open(alice, bob)
	wantErr(t, e.proc(alice, "chat.bsky.group.addMembers", map[string]any{"convoId": direct.Id, "members": dids(dave)}),
		http.StatusBadRequest, "InvalidConvo", "not a group")
	if got := describe(e.messages(alice, c.Id)); got != "add:bob/standard/by:alice" {
		t.Errorf("history = %s", got)
	}
}

func TestRemoveMembersIsForTheOwnerAndNeverRemovesTheOwner(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	in := e.invitable("bob", "carol")
	bob, carol := in[0], in[1]
	c := e.createGroup(alice, "g", bob, carol)
	e.send(carol, c.Id, "carol was here")

	remove := func(by *user, who ...*user) resp {
		return e.proc(by, "chat.bsky.group.removeMembers", map[string]any{"convoId": c.Id, "members": dids(who...)})
	}
	wantErr(t, remove(bob, carol), http.StatusBadRequest, "InsufficientRole", "owner")
	wantErr(t, remove(alice, alice), http.StatusBadRequest, "InvalidRequest", "owner cannot be removed")
	wantErr(t, remove(alice, carol, alice), http.StatusBadRequest, "InvalidRequest", "owner cannot be removed")
	if n := e.convo(alice, c.Id).Kind.ConvoDefs_GroupConvo.MemberCount; n != 3 {
		t.Fatalf("a refused removal removed someone: %d members", n)
	}
	out := ok[chat.GroupRemoveMembers_Output](t, remove(alice, carol))
	if got := memberRoles(out.Convo.Members); got != "alice=owner bob=standard(alice)" {
		t.Errorf("members after removal = %s", got)
	}
	wantErr(t, e.query(carol, "chat.bsky.convo.getMessages", url.Values{"convoId": {c.Id}}), http.StatusBadRequest, "InvalidConvo", "")
	if ids, _ := e.list(carol, nil); len(ids) != 0 {
		t.Errorf("carol still lists %v", ids)
	}
	wantErr(t, e.proc(carol, "chat.bsky.convo.sendMessage", map[string]any{"convoId": c.Id, "message": map[string]any{"text": "let me in"}}),
		http.StatusBadRequest, "InvalidConvo", "")

	// Added again, carol starts afresh: nothing from before shows.
	ok[chat.GroupAddMembers_Output](t, e.proc(alice, "chat.bsky.group.addMembers", map[string]any{"convoId": c.Id, "members": dids(carol)}))
	if got := describe(e.messages(carol, c.Id)); got != "add:carol/standard/by:alice" {
		t.Errorf("carol's history after re-adding = %s", got)
	}
}

func TestGetConvoMembersPagesThroughMembersWithRoles(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	others := e.invitable("m1", "m2", "m3", "m4", "m5", "m6")
	c := e.createGroup(alice, "g", others...)

	var got []string
	cursor := ""
	for page := 0; ; page++ {
		params := url.Values{"convoId": {c.Id}, "limit": {"3"}}
		if cursor != "" {
			params.Set("cursor", cursor)
		}
		out := ok[chat.ConvoGetConvoMembers_Output](t, e.query(others[5], "chat.bsky.convo.getConvoMembers", params))
		if len(out.Members) > 3 || page > 3 {
			t.Fatalf("page %d has %d members", page, len(out.Members))
		}
		got = append(got, memberRoles(out.Members))
		if out.Cursor == nil {
			break
		}
		cursor = *out.Cursor
	}
	want := "alice=owner m1=standard(alice) m2=standard(alice)|m3=standard(alice) m4=standard(alice) m5=standard(alice)|m6=standard(alice)"
	if strings.Join(got, "|") != want {
		t.Errorf("pages = %s", strings.Join(got, "|"))
	}
	// convoView lists the first five members and the viewer, not everyone.
	if v := memberRoles(e.convo(others[5], c.Id).Members); v != "alice=owner m1=standard(alice) m2=standard(alice) m3=standard(alice) m4=standard(alice) m6=standard(alice)" {
		t.Errorf("m6's convoView members = %s", v)
	}
	direct := e.open(alice, others[0])
	if v := memberRoles(ok[chat.ConvoGetConvoMembers_Output](t, e.query(alice, "chat.bsky.convo.getConvoMembers", url.Values{"convoId": {direct.Id}})).Members); v != "alice=direct m1=direct" {
		t.Errorf("direct members = %s", v)
	}
	outsider := e.user("zed")
	wantErr(t, e.query(outsider, "chat.bsky.convo.getConvoMembers", url.Values{"convoId": {c.Id}}), http.StatusBadRequest, "InvalidConvo", "")
}

func TestListMutualGroups(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	in := e.invitable("bob", "carol")
	bob, carol := in[0], in[1]
	both := e.createGroup(alice, "both", bob, carol)
	e.createGroup(alice, "bob only", bob)
	e.open(alice, carol)

	out := ok[chat.GroupListMutualGroups_Output](t, e.query(carol, "chat.bsky.group.listMutualGroups", url.Values{"subject": {alice.did.String()}}))
	if len(out.Convos) != 1 || out.Convos[0].Id != both.Id {
		t.Fatalf("carol's mutual groups with alice = %+v", out.Convos)
	}
	out = ok[chat.GroupListMutualGroups_Output](t, e.query(alice, "chat.bsky.group.listMutualGroups", url.Values{"subject": {bob.did.String()}, "limit": {"1"}}))
	if len(out.Convos) != 1 || out.Cursor == nil {
		t.Fatalf("first page = %d convos, cursor %v", len(out.Convos), out.Cursor)
	}
	next := ok[chat.GroupListMutualGroups_Output](t, e.query(alice, "chat.bsky.group.listMutualGroups", url.Values{"subject": {bob.did.String()}, "limit": {"1"}, "cursor": {*out.Cursor}}))
	if len(next.Convos) != 1 || next.Convos[0].Id == out.Convos[0].Id {
		t.Fatalf("second page = %+v", next.Convos)
	}
	wantErr(t, e.query(alice, "chat.bsky.group.listMutualGroups", nil), http.StatusBadRequest, "InvalidRequest", "subject")
}

func TestEditGroupRenamesForTheOwnerOnly(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	bob := e.invitable("bob")[0]
	c := e.createGroup(alice, "old", bob)
	wantErr(t, e.proc(bob, "chat.bsky.group.editGroup", map[string]any{"convoId": c.Id, "name": "mine"}), http.StatusBadRequest, "InsufficientRole", "owner")
	wantErr(t, e.proc(alice, "chat.bsky.group.editGroup", map[string]any{"convoId": c.Id, "name": strings.Repeat("x", 51)}), http.StatusBadRequest, "InvalidRequest", "50 graphemes")
	out := ok[chat.GroupEditGroup_Output](t, e.proc(alice, "chat.bsky.group.editGroup", map[string]any{"convoId": c.Id, "name": "new"}))
	if out.Convo.Kind.ConvoDefs_GroupConvo.Name != "new" || e.convo(bob, c.Id).Kind.ConvoDefs_GroupConvo.Name != "new" {
		t.Errorf("name after editGroup = %s", out.Convo.Kind.ConvoDefs_GroupConvo.Name)
	}
	ok[chat.GroupEditGroup_Output](t, e.proc(alice, "chat.bsky.group.editGroup", map[string]any{"convoId": c.Id, "name": "new"}))
	if got := describe(e.messages(bob, c.Id)); got != "add:bob/standard/by:alice rename:old->new" {
		t.Errorf("history = %s (an unchanged name must not be announced)", got)
	}
}

func TestSystemMessagesTakeNoReactionsOrDeletesButCanBeRead(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	// bob takes no direct messages, but accepts group invitations: group
	// messages do not go through the direct-message gate.
	e.recs.put(bob.did, collDeclaration, "self", map[string]string{"$type": "chat.bsky.actor.declaration", "allowIncoming": "none", "allowGroupInvites": "all"})
	c := e.createGroup(alice, "g", bob)
	e.send(alice, c.Id, "hello")
	hist := e.messages(bob, c.Id)
	sys := hist.Messages[1].ConvoDefs_SystemMessageView
	if sys == nil {
		t.Fatalf("history = %s", describe(hist))
	}
	wantErr(t, e.proc(bob, "chat.bsky.convo.addReaction", map[string]any{"convoId": c.Id, "messageId": sys.Id, "value": "👍"}),
		http.StatusBadRequest, "ReactionNotAllowed", "system")
	wantErr(t, e.proc(bob, "chat.bsky.convo.deleteMessageForSelf", map[string]any{"convoId": c.Id, "messageId": sys.Id}),
		http.StatusBadRequest, "InvalidRequest", "system")
	ok[chat.ConvoUpdateRead_Output](t, e.proc(bob, "chat.bsky.convo.updateRead", map[string]any{"convoId": c.Id, "messageId": sys.Id}))
	lg := getLog(t, e, bob, "")
	last := lg.Logs[len(lg.Logs)-1].ConvoDefs_LogReadMessage
	if last == nil || last.Message.ConvoDefs_SystemMessageView == nil || last.Message.ConvoDefs_SystemMessageView.Id != sys.Id {
		t.Errorf("bob's log = %v", logTypes(lg))
	}
}
