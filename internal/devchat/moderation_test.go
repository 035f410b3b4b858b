package devchat

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/lex/chat"
)

// modQueries are the chat.bsky.moderation queries with params that would
// be valid for a moderator.
func modQueries(convoID, msgID, actor string) map[string]url.Values {
	return map[string]url.Values{
		"chat.bsky.moderation.getActorMetadata":  {"actor": {actor}},
		"chat.bsky.moderation.getMessageContext": {"messageId": {msgID}},
		"chat.bsky.moderation.getConvo":          {"convoId": {convoID}},
		"chat.bsky.moderation.getConvos":         {"convoIds": {convoID}},
		"chat.bsky.moderation.getConvoMembers":   {"convoId": {convoID}},
	}
}

func TestModerationIsForConfiguredModeratorsOnly(t *testing.T) {
	e := newEnv(t, false)
	mod, alice, bob := e.moderator(), e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	m := e.send(alice, c.Id, "hi")

	for method, params := range modQueries(c.Id, m.Id, alice.did.String()) {
		// A member of the convo is no moderator.
		wantErr(t, e.query(alice, method, params), http.StatusUnauthorized, "UntrustedIss", "not a moderation service")
		ok[map[string]any](t, e.query(mod, method, params))
	}
	wantErr(t, e.proc(bob, "chat.bsky.moderation.updateActorAccess", map[string]any{"actor": alice.did.String(), "allowAccess": false}),
		http.StatusUnauthorized, "UntrustedIss", "not a moderation service")
	if st := ok[chat.ActorGetStatus_Output](t, e.query(alice, "chat.bsky.actor.getStatus", nil)); st.ChatDisabled {
		t.Fatal("a non-moderator's updateActorAccess disabled alice")
	}
}

func TestModerationConvoViews(t *testing.T) {
	e := newEnv(t, false)
	mod, alice, bob := e.moderator(), e.user("alice"), e.user("bob")
	members := e.invitable("carol", "dave")
	direct := e.open(alice, bob)
	g := e.createGroup(alice, "Book club", members...)

	got := ok[chat.ModerationGetConvo_Output](t, e.query(mod, "chat.bsky.moderation.getConvo", url.Values{"convoId": {g.Id}})).Convo
	k := got.Kind.ModerationDefs_GroupConvo
	if got.Id != g.Id || k == nil || k.Name != "Book club" || k.MemberCount != 3 || k.MemberLimit != groupMemberLimit || *k.LockStatus != lockUnlocked || k.JoinRequestCount != 0 {
		t.Fatalf("moderation view of the group: %+v %+v", got, k)
	}
	d := ok[chat.ModerationGetConvo_Output](t, e.query(mod, "chat.bsky.moderation.getConvo", url.Values{"convoId": {direct.Id}})).Convo
	if d.Kind.ModerationDefs_DirectConvo == nil {
		t.Fatalf("direct convo's kind: %+v", d.Kind)
	}
	wantErr(t, e.query(mod, "chat.bsky.moderation.getConvo", url.Values{"convoId": {"nope"}}), http.StatusBadRequest, "InvalidConvo", "")

	list := ok[chat.ModerationGetConvos_Output](t, e.query(mod, "chat.bsky.moderation.getConvos",
		url.Values{"convoIds": {g.Id, "unknown", direct.Id}})).Convos
	if len(list) != 2 || list[0].Id != g.Id || list[1].Id != direct.Id {
		t.Fatalf("getConvos must keep order and omit unknown ids: %+v", list)
	}

	page := ok[chat.ModerationGetConvoMembers_Output](t, e.query(mod, "chat.bsky.moderation.getConvoMembers",
		url.Values{"convoId": {g.Id}, "limit": {"2"}}))
	if len(page.Members) != 2 || page.Members[0].Did != alice.did.String() || page.Cursor == nil {
		t.Fatalf("first page: %+v", page)
	}
	if role := page.Members[0].Kind.ActorDefs_GroupConvoMember.Role; *role != roleOwner {
		t.Fatalf("owner's role %q", *role)
	}
	rest := ok[chat.ModerationGetConvoMembers_Output](t, e.query(mod, "chat.bsky.moderation.getConvoMembers",
		url.Values{"convoId": {g.Id}, "cursor": {*page.Cursor}}))
	if len(rest.Members) != 1 || rest.Members[0].Did != members[1].did.String() || rest.Cursor != nil {
		t.Fatalf("second page: %+v", rest)
	}
	wantErr(t, e.query(mod, "chat.bsky.moderation.getConvoMembers", url.Values{"convoId": {"nope"}}), http.StatusBadRequest, "InvalidConvo", "")
}

func TestModerationActorMetadataCountsDayMonthAll(t *testing.T) {
	e := newEnv(t, false)
	mod, alice, bob, carol := e.moderator(), e.user("alice"), e.user("bob"), e.user("carol")
	now := time.Now()
	e.srv.now = func() time.Time { return now.AddDate(0, 0, -40) } // before any request
	old := e.open(carol, alice)
	e.send(carol, old.Id, "long ago")
	e.send(alice, old.Id, "long ago too")
	e.srv.now = func() time.Time { return now.AddDate(0, 0, -3) }
	c := e.open(alice, bob)
	e.send(alice, c.Id, "this month")
	e.srv.now = time.Now
	e.send(alice, c.Id, "today")
	e.send(bob, c.Id, "today too")

	got := ok[chat.ModerationGetActorMetadata_Output](t, e.query(mod, "chat.bsky.moderation.getActorMetadata", url.Values{"actor": {alice.did.String()}}))
	want := map[string]chat.ModerationGetActorMetadata_Metadata{
		"day":   {MessagesSent: 1, MessagesReceived: 1, Convos: 1, ConvosStarted: 0},
		"month": {MessagesSent: 2, MessagesReceived: 1, Convos: 1, ConvosStarted: 1},
		"all":   {MessagesSent: 3, MessagesReceived: 2, Convos: 2, ConvosStarted: 1},
	}
	for name, g := range map[string]*chat.ModerationGetActorMetadata_Metadata{"day": got.Day, "month": got.Month, "all": got.All} {
		if *g != want[name] {
			t.Errorf("%s: got %+v, want %+v", name, *g, want[name])
		}
	}
}

// contextTexts renders a getMessageContext answer: message texts, and
// "sys" for a system message.
func contextTexts(out *chat.ModerationGetMessageContext_Output) string {
	var parts []string
	for _, m := range out.Messages {
		if m.ConvoDefs_MessageView != nil {
			parts = append(parts, m.ConvoDefs_MessageView.Text)
		} else {
			parts = append(parts, "sys")
		}
	}
	return strings.Join(parts, " ")
}

func TestModerationMessageContextBeforeAndAfter(t *testing.T) {
	e := newEnv(t, false)
	mod, alice, bob := e.moderator(), e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	var target string
	for _, text := range []string{"m1", "m2", "m3", "m4", "m5", "m6"} {
		m := e.send(alice, c.Id, text)
		if text == "m4" {
			target = m.Id
		}
	}
	// Deleted for bob alone: a moderator still sees it.
	ok[chat.ConvoDefs_DeletedMessageView](t, e.proc(bob, "chat.bsky.convo.deleteMessageForSelf", map[string]any{"convoId": c.Id, "messageId": target}))
	ctx := func(params url.Values) string {
		return contextTexts(ok[chat.ModerationGetMessageContext_Output](t, e.query(mod, "chat.bsky.moderation.getMessageContext", params)))
	}
	if got := ctx(url.Values{"convoId": {c.Id}, "messageId": {target}, "before": {"2"}, "after": {"1"}}); got != "m2 m3 m4 m5" {
		t.Fatalf("before=2 after=1: %q", got)
	}
	if got := ctx(url.Values{"messageId": {target}}); got != "m1 m2 m3 m4 m5 m6" { // defaults 5/5, convoId optional
		t.Fatalf("defaults: %q", got)
	}
	wantErr(t, e.query(mod, "chat.bsky.moderation.getMessageContext", url.Values{"messageId": {"nope"}}), http.StatusBadRequest, "InvalidRequest", "Message not found")

	// A group starts with system messages (members added): with no user
	// message before the target, the system messages just before it come
	// instead, capped by maxInterleavedSystemMessages.
	g := e.createGroup(alice, "G", e.invitable("carol", "dave")...)
	first := e.send(alice, g.Id, "hello")
	e.send(alice, g.Id, "again")
	if got := ctx(url.Values{"convoId": {g.Id}, "messageId": {first.Id}, "after": {"0"}}); got != "sys sys hello" {
		t.Fatalf("system messages before the first: %q", got)
	}
	if got := ctx(url.Values{"convoId": {g.Id}, "messageId": {first.Id}, "maxInterleavedSystemMessages": {"1"}}); got != "sys hello again" {
		t.Fatalf("capped at one: %q", got)
	}
}

func TestModerationUpdateActorAccessDisablesChat(t *testing.T) {
	e := newEnv(t, false)
	mod, alice, bob := e.moderator(), e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	e.send(alice, c.Id, "before")
	access := func(allow bool) {
		t.Helper()
		r := e.proc(mod, "chat.bsky.moderation.updateActorAccess", map[string]any{"actor": alice.did.String(), "allowAccess": allow, "ref": "ticket-1"})
		ok[struct{}](t, r)
	}
	status := func() bool {
		return ok[chat.ActorGetStatus_Output](t, e.query(alice, "chat.bsky.actor.getStatus", nil)).ChatDisabled
	}

	access(false)
	if !status() {
		t.Fatal("getStatus does not say alice's chat is disabled")
	}
	wantErr(t, e.proc(alice, "chat.bsky.convo.sendMessage", map[string]any{"convoId": c.Id, "message": map[string]any{"text": "while disabled"}}),
		http.StatusBadRequest, "InvalidRequest", "disabled")
	wantErr(t, e.proc(alice, "chat.bsky.group.createGroup", map[string]any{"name": "G", "members": dids(bob)}),
		http.StatusBadRequest, "AccountSuspended", "disabled")
	e.send(bob, c.Id, "bob is not affected")
	if got := describe(e.messages(alice, c.Id)); !strings.Contains(got, "bob is not affected") {
		t.Fatalf("alice can still read: %q", got)
	}
	if strings.Contains(describe(e.messages(bob, c.Id)), "while disabled") {
		t.Fatal("a disabled actor's message was stored")
	}

	access(true)
	if status() {
		t.Fatal("getStatus still says disabled after allowAccess true")
	}
	e.send(alice, c.Id, "back")
}

// TestEveryChatLexiconMethodIsRouted: devchat answers every query,
// procedure and subscription of the vendored chat.bsky lexicons (none is
// MethodNotImplemented).
func TestEveryChatLexiconMethodIsRouted(t *testing.T) {
	e := newEnv(t, false)
	files, err := filepath.Glob("../../lexicons/official/chat/bsky/*/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no lexicons found: %v", err)
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var lex struct {
			ID   string `json:"id"`
			Defs struct {
				Main struct {
					Type string `json:"type"`
				} `json:"main"`
			} `json:"defs"`
		}
		if err := json.Unmarshal(b, &lex); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		switch lex.Defs.Main.Type {
		case "query", "procedure", "subscription":
			n++
			m, ok := e.srv.methods[lex.ID]
			if !ok {
				t.Errorf("%s is not implemented", lex.ID)
			} else if m.procedure != (lex.Defs.Main.Type == "procedure") {
				t.Errorf("%s is a %s, routed with procedure=%v", lex.ID, lex.Defs.Main.Type, m.procedure)
			}
		}
	}
	t.Logf("%d chat.bsky methods, all routed", n)
}
