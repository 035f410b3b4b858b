package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/handlers/dm"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/internal/lex/lexval"
	"github.com/skydm/skydm/internal/websession"
)

// groupFake is a fakeChat that also holds group conversations, built from
// JSON shaped by the official lexicons (and checked against them with
// lexval): their getMessages pages carry system messages and
// relatedProfiles, which fakeChat's plain message lists do not.
type groupFake struct {
	*fakeChat
	pages map[string]*chatproxy.MessagePage // by convo id
}

func (g *groupFake) GetMessages(ctx context.Context, id, cursor string, limit int64) (*chatproxy.MessagePage, error) {
	g.mu.Lock()
	p := g.pages[id]
	g.mu.Unlock()
	if p == nil {
		return g.fakeChat.GetMessages(ctx, id, cursor, limit)
	}
	if err := g.enter(ctx, "GetMessages"); err != nil {
		return nil, err
	}
	return p, nil
}

func (g *groupFake) ForRecipient(string) dm.Chat { return g }

// groupChats hands every account the same groupFake.
type groupChats struct{ g *groupFake }

func (c groupChats) Chat(context.Context, websession.Account) (dm.Chat, error) { return c.g, nil }

// groupViewApp is a dmApp whose chat service also has group conversations.
type groupViewApp struct {
	*dmApp
	group *groupFake
}

func newGroupViewApp(t *testing.T, opts ...func(*DMs)) *groupViewApp {
	t.Helper()
	var g *groupFake
	withGroups := func(d *DMs) {
		g = &groupFake{fakeChat: d.Chats.(fakeChats).c, pages: map[string]*chatproxy.MessagePage{}}
		d.Chats = groupChats{g}
	}
	a := newDMApp(t, append([]func(*DMs){withGroups}, opts...)...)
	return &groupViewApp{dmApp: a, group: g}
}

// Lexicon-shaped JSON of the group fixtures.

// jsonProfile is a chat.bsky.actor.defs#profileViewBasic; role "" → no
// kind, addedBy "" → not added by anyone.
func jsonProfile(did, handle, name, avatar, role, addedBy string) map[string]any {
	p := map[string]any{"did": did, "handle": handle}
	if name != "" {
		p["displayName"] = name
	}
	if avatar != "" {
		p["avatar"] = avatar
	}
	if role != "" {
		k := map[string]any{"$type": "chat.bsky.actor.defs#groupConvoMember", "role": role}
		if addedBy != "" {
			k["addedBy"] = map[string]any{"did": addedBy, "handle": "adder.test"}
		}
		p["kind"] = k
	}
	return p
}

// jsonGroupConvo is a chat.bsky.convo.defs#convoView of kind groupConvo.
func jsonGroupConvo(id, name, status, lock string, moderation bool, memberCount int, members []any, last any) map[string]any {
	v := map[string]any{
		"id": id, "rev": "rev1", "members": members, "muted": false, "unreadCount": 0, "status": status,
		"kind": map[string]any{"$type": "chat.bsky.convo.defs#groupConvo", "createdAt": "2025-03-01T10:00:00.000Z",
			"lockStatus": lock, "lockStatusModerationOverride": moderation, "memberCount": memberCount, "memberLimit": 100, "name": name},
	}
	if last != nil {
		v["lastMessage"] = last
	}
	return v
}

func jsonMessage(id, sender, text string, at time.Time) map[string]any {
	return map[string]any{"$type": "chat.bsky.convo.defs#messageView", "id": id, "rev": "r" + id, "text": text,
		"sender": map[string]any{"did": sender}, "sentAt": at.UTC().Format(time.RFC3339)}
}

// jsonSystem is a systemMessageView whose data is of the named variant
// (e.g. "systemMessageDataAddMember") with fields as given (DIDs become
// systemMessageReferredUser objects by the caller).
func jsonSystem(id, variant string, at time.Time, fields map[string]any) map[string]any {
	data := map[string]any{"$type": "chat.bsky.convo.defs#" + variant}
	for k, v := range fields {
		data[k] = v
	}
	return map[string]any{"$type": "chat.bsky.convo.defs#systemMessageView", "id": id, "rev": "r" + id,
		"sentAt": at.UTC().Format(time.RFC3339), "data": data}
}

func ref(did string) map[string]any { return map[string]any{"did": did} }

// mustLex marshals v, checks it as the output of nsid against the official
// lexicons, and decodes it into out.
func mustLex(tb testing.TB, nsid string, v, out any) {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	if err := lexval.Output(nsid, b); err != nil {
		tb.Fatalf("fixture is not a valid %s output: %v", nsid, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		tb.Fatal(err)
	}
}

// addGroup adds a group convo (a convoView as getConvo answers it) and its
// messages (newest first, as getMessages answers) with relatedProfiles.
func (g *groupFake) addGroup(tb testing.TB, convo map[string]any, msgs []any, related []any) *chat.ConvoDefs_ConvoView {
	tb.Helper()
	var c chat.ConvoGetConvo_Output
	mustLex(tb, "chat.bsky.convo.getConvo", map[string]any{"convo": convo}, &c)
	var raw struct {
		Messages        []json.RawMessage                  `json:"messages"`
		RelatedProfiles []*chat.ActorDefs_ProfileViewBasic `json:"relatedProfiles"`
	}
	mustLex(tb, "chat.bsky.convo.getMessages", map[string]any{"messages": msgs, "relatedProfiles": related}, &raw)
	page := &chatproxy.MessagePage{RelatedProfiles: raw.RelatedProfiles}
	for _, m := range raw.Messages {
		var e chat.ConvoGetMessages_Output_Messages_Elem
		if err := json.Unmarshal(m, &e); err != nil {
			tb.Fatal(err)
		}
		var common struct{ ID, Rev, SentAt, Type string }
		_ = json.Unmarshal(m, &common)
		page.Messages = append(page.Messages, chatproxy.MessageItem{ID: common.ID, Rev: common.Rev, SentAt: common.SentAt,
			Message: e.ConvoDefs_MessageView, Deleted: e.ConvoDefs_DeletedMessageView, System: e.ConvoDefs_SystemMessageView})
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.convos = append([]*chat.ConvoDefs_ConvoView{c.Convo}, g.convos...)
	g.pages[c.Convo.Id] = page
	return c.Convo
}

// weekendPlans adds the group "Weekend plans" (owner alice, the viewer;
// bob; carol) with a history: carol added by alice, two runs of messages,
// a rename, and optionally a lock by alice.
func (g *groupFake) weekendPlans(tb testing.TB, lock string) *chat.ConvoDefs_ConvoView {
	tb.Helper()
	t0 := g.now.Add(-time.Hour)
	alice := jsonProfile(dmAlice, "alice.test", "Alice", "", "owner", "")
	bob := jsonProfile(dmBob, "bob.test", "Bob", "https://cdn.example/bob.jpg", "standard", dmAlice)
	carol := jsonProfile(dmCarol, "carol.test", "Carol", "", "standard", dmAlice)
	msgs := []any{}
	if lock != "unlocked" {
		msgs = append(msgs, jsonSystem("s3", "systemMessageDataLockConvo", t0.Add(9*time.Minute), map[string]any{"lockedBy": ref(dmAlice)}))
	}
	msgs = append(msgs,
		jsonMessage("m5", dmAlice, "See you all there", t0.Add(8*time.Minute)),
		jsonMessage("m4", dmCarol, "Count me in", t0.Add(7*time.Minute)),
		jsonSystem("s2", "systemMessageDataEditGroup", t0.Add(6*time.Minute), map[string]any{"oldName": "Plans", "newName": "Weekend plans"}),
		jsonMessage("m3", dmBob, "Saturday works", t0.Add(3*time.Minute)),
		jsonMessage("m2", dmBob, "Hi all", t0.Add(2*time.Minute)),
		jsonSystem("s1", "systemMessageDataAddMember", t0.Add(time.Minute), map[string]any{"member": ref(dmCarol), "role": "standard", "addedBy": ref(dmAlice)}),
		jsonMessage("m1", dmAlice, "Welcome!", t0),
	)
	last := msgs[0]
	return g.addGroup(tb, jsonGroupConvo("g1", "Weekend plans", "accepted", lock, false, 3, []any{alice, bob, carol}, last),
		msgs, []any{alice, bob, carol})
}

// bigGroup adds group id with n messages from members senders (ids
// did:plc:member…), runs of two, every tenth a system message adding
// someone.
func (g *groupFake) bigGroup(tb testing.TB, id string, members, n int) {
	tb.Helper()
	var profiles []any
	for i := 0; i < members; i++ {
		did, role := fmt.Sprintf("did:plc:member%019d", i), "standard"
		if i == 0 {
			did, role = dmAlice, "owner"
		}
		profiles = append(profiles, jsonProfile(did, fmt.Sprintf("member%d.test", i), fmt.Sprintf("Member %d", i),
			fmt.Sprintf("https://cdn.bsky.app/img/avatar/plain/%s/bafkreiabcdefghij@jpeg", did), role, ""))
	}
	did := func(i int) string { return profiles[i%members].(map[string]any)["did"].(string) }
	var msgs []any
	for i := n - 1; i >= 0; i-- {
		at := g.now.Add(-time.Duration(n-i) * 7 * time.Minute)
		if i%10 == 9 {
			msgs = append(msgs, jsonSystem(fmt.Sprintf("3lbxs%03dz6ok", i), "systemMessageDataAddMember", at,
				map[string]any{"member": ref(did(i)), "role": "standard", "addedBy": ref(dmAlice)}))
			continue
		}
		msgs = append(msgs, jsonMessage(fmt.Sprintf("3lbxr%03dz6ok", i), did(i/2), fmt.Sprintf("Message %d: shall we meet tomorrow? 👋🏽 It's at the usual place.", i), at))
	}
	g.addGroup(tb, jsonGroupConvo(id, "Big group", "accepted", "unlocked", false, members, profiles[:10], msgs[0]), msgs, profiles)
}
