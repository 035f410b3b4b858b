package handlers

import (
	"net/http"

	"github.com/PuerkitoBio/goquery"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
)

func TestGroupConvoPageShowsNameMembersSendersAndSystemLines(t *testing.T) {
	a := newGroupViewApp(t)
	a.group.weekendPlans(t, "unlocked")
	res := a.get("/convos/g1")
	if res.status != http.StatusOK {
		t.Fatalf("status %d", res.status)
	}
	if got := text(testid(res.doc, "convo-title")); got != "Weekend plans" {
		t.Errorf("title %q", got)
	}
	if got := res.doc.Find("title").Text(); !strings.Contains(got, "Weekend plans") {
		t.Errorf("<title> %q", got)
	}
	link := testid(res.doc, "group-members-link")
	if href, _ := link.Attr("href"); href != "/convos/g1/members" || text(link) != "3 members" {
		t.Errorf("members link %q → %q", text(link), href)
	}
	if _, ok := testid(res.doc, "messages").Attr("data-group"); !ok {
		t.Error("message list not marked data-group")
	}
	byID := func(id string) string { return "#m-" + id }
	m2, m3 := res.doc.Find(byID("m2")), res.doc.Find(byID("m3"))
	if got := text(m2.Find(".bubble > .sender")); got != "Bob" {
		t.Errorf("bob's first message sender %q", got)
	}
	if src, _ := m2.Find(".msg-av img").Attr("src"); src != "https://cdn.example/bob.jpg" {
		t.Errorf("bob's avatar %q", src)
	}
	if _, cont := m3.Attr("data-cont"); !cont || m3.Find(".msg-av").Length() != 0 {
		t.Errorf("bob's second message in a row: data-cont %v, avatar %d", cont, m3.Find(".msg-av").Length())
	}
	if m4 := res.doc.Find(byID("m4")); text(m4.Find(".bubble > .sender")) != "Carol" || m4.Find(".msg-av [data-testid=avatar-initials]").Text() != "C" {
		t.Errorf("carol's message: sender %q, avatar %q", text(m4.Find(".bubble > .sender")), m4.Find(".msg-av").Text())
	}
	if own := res.doc.Find(byID("m5")); own.Find(".msg-av").Length() != 0 {
		t.Error("own message has an avatar")
	}
	var lines []string
	testid(res.doc, "message-system").Each(func(_ int, s *goquery.Selection) { lines = append(lines, systemLine(s)) })
	want := []string{"You added Carol", "The group was renamed to “Weekend plans”"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("system lines %q, want %q", lines, want)
	}
	if testid(res.doc, "composer").Length() != 1 || testid(res.doc, "composer-locked").Length() != 0 {
		t.Error("an unlocked group has no composer")
	}
	// Names come with the messages (relatedProfiles): two upstream calls, no member list.
	if n, m := a.chat.count("GetConvo")+a.chat.count("GetMessages"), a.chat.count("GetConvoMembers")+a.chat.count("ListConvos"); n != 2 || m != 0 {
		t.Errorf("upstream calls: %d convo+messages, %d others; want 2 and 0", n, m)
	}
}

func TestEverySystemMessageVariantIsWordedAndAnUnknownOneIsNeutral(t *testing.T) {
	a := newGroupViewApp(t)
	at := a.chat.now.Add(-time.Hour)
	cases := []struct {
		variant string
		fields  map[string]any
		want    string
	}{
		{"systemMessageDataAddMember", map[string]any{"member": ref(dmCarol), "role": "standard", "addedBy": ref(dmBob)}, "Bob added Carol"},
		{"systemMessageDataAddMember", map[string]any{"member": ref(dmAlice), "role": "standard", "addedBy": ref(dmBob)}, "Bob added you"},
		{"systemMessageDataRemoveMember", map[string]any{"member": ref(dmCarol), "removedBy": ref(dmAlice)}, "You removed Carol"},
		{"systemMessageDataMemberJoin", map[string]any{"member": ref(dmCarol), "role": "standard"}, "Carol joined the group with its link"},
		{"systemMessageDataMemberJoin", map[string]any{"member": ref(dmCarol), "role": "standard", "approvedBy": ref(dmAlice)}, "Carol joined the group, approved by you"},
		{"systemMessageDataMemberLeave", map[string]any{"member": ref(dmBob)}, "Bob left the group"},
		{"systemMessageDataLockConvo", map[string]any{"lockedBy": ref(dmBob)}, "Bob locked the group"},
		{"systemMessageDataUnlockConvo", map[string]any{"unlockedBy": ref(dmBob)}, "Bob unlocked the group"},
		{"systemMessageDataLockConvoPermanently", map[string]any{"lockedBy": ref(dmBob)}, "Bob locked the group permanently"},
		{"systemMessageDataEditGroup", map[string]any{"oldName": "Plans", "newName": "Weekend <b>plans</b>"}, "The group was renamed to “Weekend <b>plans</b>”"},
		{"systemMessageDataEditGroup", map[string]any{}, "The group’s details were changed"},
		{"systemMessageDataCreateJoinLink", nil, "A join link was created for the group"},
		{"systemMessageDataEditJoinLink", nil, "The group’s join link settings were changed"},
		{"systemMessageDataEnableJoinLink", nil, "The group’s join link was turned on"},
		{"systemMessageDataDisableJoinLink", nil, "The group’s join link was turned off"},
		{"systemMessageDataAddMember", map[string]any{"member": ref("did:plc:stranger000000000000000"), "role": "standard", "addedBy": ref(dmBob)}, "Bob added someone"},
		{"systemMessageDataSomethingNew", map[string]any{"whatever": 1}, "Conversation updated"},
	}
	var msgs []any
	for i := len(cases) - 1; i >= 0; i-- {
		msgs = append(msgs, jsonSystem("s"+string(rune('a'+i)), cases[i].variant, at.Add(time.Duration(i)*time.Minute), cases[i].fields))
	}
	people := []any{jsonProfile(dmAlice, "alice.test", "Alice", "", "owner", ""), jsonProfile(dmBob, "bob.test", "Bob", "", "standard", ""),
		jsonProfile(dmCarol, "carol.test", "Carol", "", "standard", "")}
	a.group.addGroup(t, jsonGroupConvo("g2", "Every variant", "accepted", "unlocked", false, 3, people, msgs[0]), msgs, people)
	res := a.get("/convos/g2")
	if res.status != http.StatusOK {
		t.Fatalf("status %d", res.status)
	}
	got := testid(res.doc, "message-system")
	if got.Length() != len(cases) {
		t.Fatalf("%d system lines, want %d", got.Length(), len(cases))
	}
	for i, c := range cases {
		line := systemLine(got.Eq(i))
		if line != c.want {
			t.Errorf("%s: %q, want %q", c.variant, line, c.want)
		}
	}
	if strings.Contains(res.body, "<b>plans") {
		t.Error("a group name was not escaped")
	}
}

func TestLockedGroupSaysWhyInsteadOfTheComposer(t *testing.T) {
	a := newGroupViewApp(t)
	a.group.weekendPlans(t, "locked")
	res := a.get("/convos/g1")
	if res.status != http.StatusOK {
		t.Fatalf("status %d", res.status)
	}
	if testid(res.doc, "composer").Length() != 0 {
		t.Error("a locked group still has a composer")
	}
	if got := text(testid(res.doc, "locked-text")); got != "You locked this group. No new messages can be sent." {
		t.Errorf("locked line %q", got)
	}
	if href, _ := testid(res.doc, "skip").Attr("href"); href != "#composer-locked" {
		t.Errorf("skip link %q", href)
	}

	a.group.mu.Lock()
	a.group.convos[0].Kind.ConvoDefs_GroupConvo.LockStatusModerationOverride = true
	a.group.mu.Unlock()
	res = a.get("/convos/g1")
	if got := text(testid(res.doc, "locked-text")); got != "This group was locked by Bluesky moderation. No new messages can be sent." {
		t.Errorf("moderation lock %q", got)
	}
}

func TestSendThatMeetsConvoLockedSaysSoAndKeepsTheDraft(t *testing.T) {
	a := newGroupViewApp(t)
	g := a.group.weekendPlans(t, "unlocked")
	tok := a.token("g1")
	// Meanwhile bob… no, alice on another device locks the group.
	a.group.mu.Lock()
	g.Kind.ConvoDefs_GroupConvo.LockStatus = ptr("locked")
	a.group.mu.Unlock()
	a.chat.setFail("SendMessage", &apperr.Error{Code: apperr.Conflict, Reason: chatproxy.ReasonConvoLocked,
		Message: "This conversation is locked. No new messages can be sent."})
	res := a.post("/convos/g1/messages", url.Values{"token": {tok}, "text": {"my unsent words"}})
	if res.status != http.StatusConflict {
		t.Fatalf("status %d", res.status)
	}
	if got := text(testid(res.doc, "error")); got != "This conversation is locked. No new messages can be sent." {
		t.Errorf("error %q", got)
	}
	if got := testid(res.doc, "draft").Text(); got != "my unsent words" {
		t.Errorf("draft %q", got)
	}
	if testid(res.doc, "composer-locked").Length() != 1 {
		t.Error("no locked line after the send met the lock")
	}
}

func TestInboxShowsGroupsWithNameSenderAndQuietSystemLines(t *testing.T) {
	a := newGroupViewApp(t)
	a.chat.addConvo("c1", profile(dmCarol, "carol.test", "Carol"), "accepted", 1, 0)
	a.group.weekendPlans(t, "locked") // last: "You locked the group"
	at := a.chat.now.Add(-time.Minute)
	people := []any{jsonProfile(dmAlice, "alice.test", "Alice", "", "owner", ""), jsonProfile(dmBob, "bob.test", "Bob", "https://cdn.example/bob.jpg", "standard", "")}
	x1 := jsonMessage("x1", dmBob, "see you", at)
	a.group.addGroup(t, jsonGroupConvo("g3", "Book club", "accepted", "unlocked", false, 7, people, x1), []any{x1}, people)
	res := a.get("/")
	if res.status != http.StatusOK {
		t.Fatalf("status %d", res.status)
	}
	rows := map[string]string{}
	previews := map[string]string{}
	res.doc.Find(`[data-testid="convo-row"]`).Each(func(_ int, s *goquery.Selection) {
		id, _ := s.Attr("data-id")
		rows[id] = text(s.Find(`[data-testid="convo-names"] bdi`).First())
		previews[id] = text(s.Find(`[data-testid="convo-preview"]`))
	})
	if rows["g3"] != "Book club" || previews["g3"] != "Bob: see you" {
		t.Errorf("group row %q / %q", rows["g3"], previews["g3"])
	}
	if rows["g1"] != "Weekend plans" || previews["g1"] != "You locked the group" {
		t.Errorf("locked group row %q / %q", rows["g1"], previews["g1"])
	}
	g1 := res.doc.Find(`[data-id="g1"]`)
	if _, quiet := g1.Find(`[data-testid="convo-preview"]`).Attr("data-quiet"); !quiet || g1.Find(`[data-testid="group-locked"]`).Length() != 1 {
		t.Errorf("system preview quiet %v, lock mark %d", quiet, g1.Find(`[data-testid="group-locked"]`).Length())
	}
	if av := res.doc.Find(`[data-id="g3"] [data-testid="group-avatar"] img`); av.Length() != 1 {
		t.Errorf("group avatar: %d pictures", av.Length())
	}
	if rows["c1"] != "Carol" || previews["c1"] != "Message 0 of c1" {
		t.Errorf("direct row changed: %q / %q", rows["c1"], previews["c1"])
	}
}

func TestGroupInvitationIsARequestWithItsInviterAndCanBeAccepted(t *testing.T) {
	a := newGroupViewApp(t)
	people := []any{jsonProfile(dmAlice, "alice.test", "Alice", "", "standard", dmBob), jsonProfile(dmBob, "bob.test", "Bob", "", "owner", "")}
	at := a.chat.now.Add(-time.Minute)
	added := jsonSystem("s1", "systemMessageDataAddMember", at, map[string]any{"member": ref(dmAlice), "role": "standard", "addedBy": ref(dmBob)})
	a.group.addGroup(t, jsonGroupConvo("g4", "Secret club", "request", "unlocked", false, 2, people, added), []any{added}, people)

	res := a.get("/requests")
	row := res.doc.Find(`[data-id="g4"]`)
	if text(row.Find(`[data-testid="convo-names"] bdi`).First()) != "Secret club" || text(row.Find(`[data-testid="group-invite"]`)) != "Bob added you to this group" {
		t.Fatalf("request row %q", text(row))
	}
	if _, hidden := row.Find(`[data-testid="convo-preview"]`).Attr("hidden"); !hidden {
		t.Errorf("the invitation's system line %q repeats the invitation", text(row.Find(`[data-testid="convo-preview"]`)))
	}
	res = a.get("/convos/g4")
	banner := testid(res.doc, "request-banner")
	if !strings.Contains(text(banner), "Group invitation") || !strings.Contains(text(banner), "Bob added you to this group") {
		t.Errorf("banner %q", text(banner))
	}
	res = a.post("/convos/g4/accept", nil)
	if res.status != http.StatusSeeOther || a.chat.count("AcceptConvo") != 1 {
		t.Fatalf("accept: %d, %d calls", res.status, a.chat.count("AcceptConvo"))
	}
	a.group.mu.Lock()
	status := ptrValue(a.group.find("g4").Status)
	a.group.mu.Unlock()
	if status != "accepted" {
		t.Errorf("status after accept %q", status)
	}
}

// systemLine is a system message's words, without its time.
func systemLine(s *goquery.Selection) string {
	return strings.Split(text(s), " · ")[0]
}
