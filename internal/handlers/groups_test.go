package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/lex/chat"
)

// A group is created with its name and the members typed (the owner left
// out: the service adds them), and the owner lands in it.
func TestNewGroupCreatesAndOpensIt(t *testing.T) {
	a := newDMApp(t)
	if res := a.get("/"); testid(res.doc, "new-group").AttrOr("href", "") != "/convos/new-group" {
		t.Fatal("the inbox has no New group link")
	}
	if res := a.get("/convos/new-group"); res.status != http.StatusOK || testid(res.doc, "new-group-form").Length() != 1 {
		t.Fatalf("GET /convos/new-group: %d", res.status)
	}
	res := a.post("/convos/new-group", url.Values{"name": {"  Weekend plans "}, "members": {"bob.test, @Carol.test\nalice.test\n\nbob.test"}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/convos/group-1#latest" {
		t.Fatalf("POST: %d %q\n%s", res.status, res.header.Get("Location"), res.body)
	}
	got := a.chat.createdGroups()
	if len(got) != 1 || got[0].Name != "Weekend plans" || strings.Join(got[0].Members, " ") != dmBob+" "+dmCarol {
		t.Fatalf("created %+v", got)
	}
}

// Bad input: a clear message, the draft kept, and nothing created.
func TestNewGroupBadInputCreatesNothing(t *testing.T) {
	var many []string
	for i := range 101 {
		many = append(many, fmt.Sprintf("user%d.test", i))
	}
	for _, tc := range []struct {
		name, groupName, members, want string
	}{
		{"name of 51 graphemes", strings.Repeat("👍🏽", 51), "bob.test", "Group names can be at most 50 characters; this one has 51."},
		{"empty name", "   ", "bob.test", "Give the group a name."},
		{"name of 50 graphemes over 500 bytes", strings.Repeat("👩‍👩‍👧", 50), "bob.test", "That name is too long to store"},
		{"101 members", "Big", strings.Join(many, "\n"), "You listed 101 people, but only 99 more can join: a group has at most 100 members, you included."},
		{"no members", "Alone", " , ", "Add at least one member"},
		{"unknown handle", "Plans", "bob.test, nobody.test", "nobody.test: We could not find nobody.test. Check the handle and try again."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newDMApp(t)
			res := a.post("/convos/new-group", url.Values{"name": {tc.groupName}, "members": {tc.members}})
			if res.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", res.status)
			}
			form := testid(res.doc, "new-group-form")
			if text := strings.Join(strings.Fields(form.Text()), " "); !strings.Contains(text, tc.want) {
				t.Errorf("form says %q, want %q", text, tc.want)
			}
			if v := testid(res.doc, "group-name").AttrOr("value", ""); v != tc.groupName {
				t.Errorf("name kept as %q, want %q", v, tc.groupName)
			}
			if v := testid(res.doc, "members").Text(); v != tc.members {
				t.Errorf("members kept as %q", v)
			}
			if n := a.chat.count("CreateGroup"); n != 0 || len(a.chat.createdGroups()) != 0 {
				t.Errorf("CreateGroup called %d times", n)
			}
		})
	}
}

// Each member who cannot be added gets the reason next to their handle
// before anything is created; the others are not listed.
func TestNewGroupRefusedMembersAreNamed(t *testing.T) {
	a := newDMApp(t)
	a.chat.setRefusal(dmCarol, chatproxy.ReasonNotFollowedBySender)
	res := a.post("/convos/new-group", url.Values{"name": {"Plans"}, "members": {"bob.test\ncarol.test"}})
	if res.status != http.StatusBadRequest {
		t.Fatalf("status %d", res.status)
	}
	refused := testid(res.doc, "refused-member")
	if refused.Length() != 1 || !strings.Contains(refused.Text(), "carol.test") ||
		testid(res.doc, "refused-reason").Text() != "carol.test only accepts group invitations from people they follow." {
		t.Fatalf("refused: %q", refused.Text())
	}
	if testid(res.doc, "members").AttrOr("aria-invalid", "") != "true" {
		t.Error("the members field is not marked invalid")
	}
	if n := a.chat.count("CreateGroup"); n != 0 {
		t.Fatalf("CreateGroup called %d times", n)
	}
}

// A refusal only the chat service could see comes back on the form, with
// the draft, worded for groups.
func TestNewGroupServiceRefusalKeepsTheDraft(t *testing.T) {
	a := newDMApp(t)
	a.chat.setFail("CreateGroup", chatproxy.MemberRefusal(chatproxy.ReasonUserForbidsGroups, "bob.test"))
	res := a.post("/convos/new-group", url.Values{"name": {"Plans"}, "members": {"bob.test"}})
	if res.status != http.StatusForbidden || testid(res.doc, "error").Text() != "bob.test does not accept group invitations." {
		t.Fatalf("status %d error %q", res.status, testid(res.doc, "error").Text())
	}
	if testid(res.doc, "group-name").AttrOr("value", "") != "Plans" || testid(res.doc, "members").Text() != "bob.test" {
		t.Error("draft lost")
	}
}

// newGroupApp is a DM app whose viewer, alice, is in group g1 ("Weekend
// plans") with bob and carol; owner owns it.
func newGroupApp(t *testing.T, owner string) *dmApp {
	a := newDMApp(t)
	people := []struct{ did, handle, name string }{{dmAlice, "alice.test", "Alice"}, {dmBob, "bob.test", "Bob"}, {dmCarol, "carol.test", "Carol"}}
	var ms []*chat.ActorDefs_ProfileViewBasic
	for _, p := range people {
		role := "standard"
		if p.did == owner {
			role = "owner"
		}
		m := groupMember(p.did, p.handle, p.name, role)
		if p.did == owner {
			ms = append([]*chat.ActorDefs_ProfileViewBasic{m}, ms...)
		} else {
			ms = append(ms, m)
		}
	}
	a.chat.addGroupWith("g1", "Weekend plans", ms...)
	return a
}

func testidIn(s *goquery.Selection, id string) string {
	return strings.TrimSpace(s.Find(`[data-testid="` + id + `"]`).Text())
}

// The members page lists everyone with their role and the count; the
// owner gets the owner's actions, and the join link and requests slots.
func TestMembersPageForTheOwner(t *testing.T) {
	a := newGroupApp(t, dmAlice)
	res := a.get("/convos/g1/members")
	if res.status != http.StatusOK {
		t.Fatalf("status %d", res.status)
	}
	if got := testid(res.doc, "member-count").Text(); !strings.Contains(got, "3 members") {
		t.Errorf("count %q", got)
	}
	var rows []string
	testid(res.doc, "member").Each(func(_ int, s *goquery.Selection) {
		rows = append(rows, testidIn(s, "member-handle")+" "+testidIn(s, "member-role"))
	})
	if strings.Join(rows, ", ") != "@alice.test Owner, @bob.test Member, @carol.test Member" {
		t.Errorf("members %q", rows)
	}
	for _, id := range []string{"add-members-form", "rename-form", "lock", "join-requests", "join-link", "owner-leave-hint"} {
		if testid(res.doc, id).Length() == 0 {
			t.Errorf("no %s for the owner", id)
		}
	}
	if testid(res.doc, "remove-member").Length() != 2 || testid(res.doc, "leave").Length() != 0 {
		t.Error("the owner can remove the two others and must lock before leaving")
	}
	if href := testid(res.doc, "join-link").AttrOr("href", ""); href != "/convos/g1/link" {
		t.Errorf("join link %q", href)
	}
}

// A member who is not the owner sees no owner actions, and the service's
// refusal of one (sent anyway) is a sentence with nothing changed.
func TestMembersPageForAMember(t *testing.T) {
	a := newGroupApp(t, dmBob)
	res := a.get("/convos/g1/members")
	for _, id := range []string{"add-members-form", "rename-form", "lock", "unlock", "remove-member", "join-requests", "join-link"} {
		if testid(res.doc, id).Length() != 0 {
			t.Errorf("a member sees %s", id)
		}
	}
	if testid(res.doc, "leave").Length() != 1 {
		t.Error("a member cannot leave")
	}
	res = a.post("/convos/g1/rename", url.Values{"name": {"Mine now"}})
	if res.status != http.StatusForbidden || testid(res.doc, "error").Text() != "Only the group's owner can do that." {
		t.Fatalf("rename by a member: %d %q", res.status, testid(res.doc, "error").Text())
	}
	res = a.post("/convos/g1/lock", nil)
	if res.status != http.StatusForbidden || testid(res.doc, "error").Text() != "Only the group's owner can do that." {
		t.Fatalf("lock by a member: %d %q", res.status, testid(res.doc, "error").Text())
	}
	if a.chat.find("g1").Kind.ConvoDefs_GroupConvo.LockStatus == nil || *a.chat.find("g1").Kind.ConvoDefs_GroupConvo.LockStatus != "unlocked" {
		t.Error("the group was locked")
	}
}

// Removing a member goes through a confirmation page; removing the owner
// is refused before the service is asked.
func TestRemoveMember(t *testing.T) {
	a := newGroupApp(t, dmAlice)
	res := a.get("/convos/g1/members?remove=" + url.QueryEscape(dmCarol))
	confirm := testid(res.doc, "confirm-remove")
	if confirm.Length() != 1 || !strings.Contains(confirm.Text(), "Remove Carol from the group?") {
		t.Fatalf("confirm step: %q", confirm.Text())
	}
	if n := a.chat.count("RemoveMembers"); n != 0 {
		t.Fatal("GET removed someone")
	}
	res = a.post("/convos/g1/members/remove", url.Values{"member": {dmCarol}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/convos/g1/members?notice=removed" {
		t.Fatalf("remove: %d %q", res.status, res.header.Get("Location"))
	}
	if len(a.chat.groupMembers("g1")) != 2 {
		t.Fatal("carol is still a member")
	}

	res = a.post("/convos/g1/members/remove", url.Values{"member": {dmAlice}})
	if res.status != http.StatusBadRequest || testid(res.doc, "error").Text() != "The group's owner can't be removed from it. Nothing was changed." {
		t.Fatalf("remove owner: %d %q", res.status, testid(res.doc, "error").Text())
	}
	if n := a.chat.count("RemoveMembers"); n != 1 || len(a.chat.groupMembers("g1")) != 2 {
		t.Fatalf("RemoveMembers called %d times", n)
	}
}

// Rename keeps the draft on bad input; lock and unlock say what happened;
// an unlock moderation holds is a sentence.
func TestRenameLockUnlock(t *testing.T) {
	a := newGroupApp(t, dmAlice)
	long := strings.Repeat("x", 51)
	res := a.post("/convos/g1/rename", url.Values{"name": {long}})
	if res.status != http.StatusBadRequest || testid(res.doc, "rename-name").AttrOr("value", "") != long ||
		!strings.Contains(testid(res.doc, "rename-error").Text(), "at most 50 characters") {
		t.Fatalf("rename 51: %d %q", res.status, testid(res.doc, "rename-error").Text())
	}
	if n := a.chat.count("EditGroup"); n != 0 {
		t.Fatal("EditGroup called")
	}
	if res = a.post("/convos/g1/rename", url.Values{"name": {"Trip"}}); res.status != http.StatusSeeOther {
		t.Fatalf("rename: %d", res.status)
	}
	res = a.get("/convos/g1/members?notice=renamed")
	if testid(res.doc, "group-name").Text() != "Trip" {
		t.Errorf("name %q", testid(res.doc, "group-name").Text())
	}
	if res = a.post("/convos/g1/lock", nil); res.header.Get("Location") != "/convos/g1/members?notice=locked" {
		t.Fatalf("lock: %d %q", res.status, res.header.Get("Location"))
	}
	res = a.get("/convos/g1/members")
	if testid(res.doc, "unlock").Length() != 1 || testid(res.doc, "leave").Length() != 1 {
		t.Error("a locked group offers unlock, and the owner may leave it")
	}
	a.chat.find("g1").Kind.ConvoDefs_GroupConvo.LockStatusModerationOverride = true
	res = a.post("/convos/g1/unlock", nil)
	if testid(res.doc, "error").Text() != "This group was locked by Bluesky's moderators, so it can't be unlocked." {
		t.Fatalf("unlock under moderation: %d %q", res.status, testid(res.doc, "error").Text())
	}
}

// Adding members checks each as creating does: the refused are named and
// nobody is added; otherwise all are.
func TestAddMembers(t *testing.T) {
	a := newDMApp(t)
	a.chat.addGroupWith("g1", "Duo", groupMember(dmAlice, "alice.test", "Alice", "owner"))
	a.chat.setRefusal(dmCarol, chatproxy.ReasonUserForbidsGroups)
	res := a.post("/convos/g1/members/add", url.Values{"members": {"bob.test, carol.test"}})
	if res.status != http.StatusBadRequest || testid(res.doc, "refused-reason").Text() != "carol.test does not accept group invitations." ||
		testid(res.doc, "members").Text() != "bob.test, carol.test" {
		t.Fatalf("add refused: %d %q", res.status, testid(res.doc, "refused-reason").Text())
	}
	if n := a.chat.count("AddMembers"); n != 0 {
		t.Fatal("AddMembers called")
	}
	res = a.post("/convos/g1/members/add", url.Values{"members": {"bob.test"}})
	if res.status != http.StatusSeeOther || len(a.chat.groupMembers("g1")) != 2 {
		t.Fatalf("add: %d, members %d", res.status, len(a.chat.groupMembers("g1")))
	}
}

// A direct conversation has no members page; a group of more than a page
// of members links to the next page.
func TestMembersPageKindsAndPages(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 1, 0)
	if res := a.get("/convos/c1/members"); res.status != http.StatusNotFound ||
		!strings.Contains(res.body, "This conversation is not a group, so it has no members page.") {
		t.Fatalf("direct convo: %d", res.status)
	}
	ms := []*chat.ActorDefs_ProfileViewBasic{groupMember(dmAlice, "alice.test", "Alice", "owner")}
	for i := range 119 {
		ms = append(ms, groupMember(fmt.Sprintf("did:plc:m%03d", i), fmt.Sprintf("m%03d.test", i), "", "standard"))
	}
	a.chat.addGroupWith("big", "Big", ms...)
	res := a.get("/convos/big/members")
	more := testid(res.doc, "more-members").AttrOr("href", "")
	if testid(res.doc, "member").Length() != 100 || more == "" || !strings.Contains(testid(res.doc, "member-count").Text(), "120 members") {
		t.Fatalf("first page: %d members, more %q", testid(res.doc, "member").Length(), more)
	}
	res = a.get(more)
	if testid(res.doc, "member").Length() != 20 || testid(res.doc, "more-members").Length() != 0 {
		t.Fatalf("second page: %d members", testid(res.doc, "member").Length())
	}
}

// An account getStatus says may not create groups is told on the form, and
// nothing is created when it posts anyway.
func TestNewGroupWhenTheAccountCannotCreateGroups(t *testing.T) {
	a := newDMApp(t)
	a.chat.mu.Lock()
	a.chat.groups().status.CanCreateGroups = false
	a.chat.groups().status.GroupMemberLimit = 50
	a.chat.mu.Unlock()
	const want = "Your account can't create group chats yet. Please try again later."
	res := a.get("/convos/new-group")
	if got := testid(res.doc, "error").Text(); got != want || !strings.Contains(res.body, "up to 50 members") {
		t.Fatalf("GET says %q", got)
	}
	res = a.post("/convos/new-group", url.Values{"name": {"Plans"}, "members": {"bob.test"}})
	if res.status != http.StatusForbidden || testid(res.doc, "error").Text() != want || a.chat.count("CreateGroup") != 0 {
		t.Fatalf("POST: %d %q", res.status, testid(res.doc, "error").Text())
	}
}
