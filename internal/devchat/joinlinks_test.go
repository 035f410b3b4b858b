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
