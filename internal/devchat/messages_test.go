package devchat

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rivo/uniseg"
	"github.com/skydm/skydm/internal/lex/chat"
)

func TestMessageTextLimits(t *testing.T) {
	// One grapheme of 9001 bytes: "a" and 4500 combining acute accents.
	heavy := "a" + strings.Repeat("\u0301", 4500)
	tests := []struct {
		name      string
		text      string
		graphemes int
		bytes     int
		wantMsg   string // "" = accepted
	}{
		{"1000 graphemes", strings.Repeat("a", 1000), 1000, 1000, ""},
		{"1001 graphemes", strings.Repeat("a", 1001), 1001, 1001, "longer than 1000 graphemes"},
		{"1000 emoji graphemes of 4 bytes", strings.Repeat("😀", 1000), 1000, 4000, ""},
		{"10000 bytes", strings.Repeat("a", 999) + heavy, 1000, 10000, ""},
		{"10001 bytes", strings.Repeat("a", 998) + "a" + strings.Repeat("\u0301", 4501), 999, 10001, "longer than 10000 characters"},
		{"empty", "", 0, 0, "must not be empty"},
		{"blank", "  \n ", 4, 4, "must not be empty"},
	}
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if g := uniseg.GraphemeClusterCount(tc.text); g != tc.graphemes || len(tc.text) != tc.bytes {
				t.Fatalf("test text has %d graphemes / %d bytes, want %d / %d", g, len(tc.text), tc.graphemes, tc.bytes)
			}
			r := e.proc(alice, "chat.bsky.convo.sendMessage", map[string]any{"convoId": c.Id, "message": map[string]any{"text": tc.text}})
			if tc.wantMsg == "" {
				if got := ok[chat.ConvoDefs_MessageView](t, r); got.Text != tc.text {
					t.Error("text changed")
				}
				return
			}
			wantErr(t, r, http.StatusBadRequest, "InvalidRequest", tc.wantMsg)
		})
	}
	t.Run("batch item paths", func(t *testing.T) {
		r := e.proc(alice, "chat.bsky.convo.sendMessageBatch", map[string]any{"items": []any{
			map[string]any{"convoId": c.Id, "message": map[string]any{"text": "fine"}},
			map[string]any{"convoId": c.Id, "message": map[string]any{"text": strings.Repeat("a", 1001)}},
		}})
		wantErr(t, r, http.StatusBadRequest, "InvalidRequest", "Input/items/1/message/text")
	})
}

func TestSendMessageKeepsFacetsAndRecordEmbeds(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	e.recs.put(bob.did, "app.bsky.feed.post", "3kpost", map[string]any{"$type": "app.bsky.feed.post", "text": "look at this", "createdAt": "2026-01-01T00:00:00Z"})
	c := e.open(alice, bob)
	facets := []any{map[string]any{
		"index":    map[string]int{"byteStart": 0, "byteEnd": 7},
		"features": []any{map[string]string{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com"}},
	}}
	embed := func(rkey string) map[string]any {
		return map[string]any{"$type": "app.bsky.embed.record", "record": map[string]string{
			"uri": "at://" + bob.did.String() + "/app.bsky.feed.post/" + rkey,
			"cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
		}}
	}
	sent := ok[chat.ConvoDefs_MessageView](t, e.proc(alice, "chat.bsky.convo.sendMessage", map[string]any{
		"convoId": c.Id, "message": map[string]any{"text": "example quote", "facets": facets, "embed": embed("3kpost")},
	}))
	e.proc(alice, "chat.bsky.convo.sendMessage", map[string]any{"convoId": c.Id, "message": map[string]any{"text": "", "embed": embed("3kgone")}})

	msgs := ok[chat.ConvoGetMessages_Output](t, e.query(bob, "chat.bsky.convo.getMessages", url.Values{"convoId": {c.Id}}))
	if len(msgs.Messages) != 2 {
		t.Fatalf("got %d messages", len(msgs.Messages))
	}
	gone, got := msgs.Messages[0].ConvoDefs_MessageView, msgs.Messages[1].ConvoDefs_MessageView
	if got.Id != sent.Id || len(got.Facets) != 1 || got.Facets[0].Features[0].RichtextFacet_Link.Uri != "https://example.com" {
		t.Fatalf("facets = %+v", got.Facets)
	}
	rec := got.Embed.EmbedRecord_View.Record.EmbedRecord_ViewRecord
	if rec == nil || rec.Author.Handle != "bob.test" || !strings.HasSuffix(rec.Uri, "/3kpost") {
		t.Fatalf("embed = %+v", got.Embed.EmbedRecord_View.Record)
	}
	b, _ := json.Marshal(rec.Value)
	if !strings.Contains(string(b), "look at this") {
		t.Errorf("embedded record value = %s", b)
	}
	if nf := gone.Embed.EmbedRecord_View.Record.EmbedRecord_ViewNotFound; nf == nil || !nf.NotFound {
		t.Errorf("missing record embed = %+v", gone.Embed.EmbedRecord_View.Record)
	}
	if len(msgs.RelatedProfiles) != 1 || msgs.RelatedProfiles[0].Handle != "alice.test" {
		t.Errorf("relatedProfiles = %+v", msgs.RelatedProfiles)
	}

	wantErr(t, e.proc(alice, "chat.bsky.convo.sendMessage", map[string]any{"convoId": c.Id, "message": map[string]any{
		"text": "x", "embed": map[string]any{"$type": "app.bsky.embed.images", "images": []any{}},
	}}), http.StatusBadRequest, "InvalidRequest", "app.bsky.embed.record")
}

func TestGetMessagesIsNewestFirstWithCursor(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	for i := range 7 {
		e.send(alice, c.Id, fmt.Sprintf("m%d", i))
	}
	var texts []string
	params := url.Values{"convoId": {c.Id}, "limit": {"3"}}
	for range 5 {
		out := ok[chat.ConvoGetMessages_Output](t, e.query(bob, "chat.bsky.convo.getMessages", params))
		for _, m := range out.Messages {
			texts = append(texts, m.ConvoDefs_MessageView.Text)
		}
		if out.Cursor == nil {
			break
		}
		params.Set("cursor", *out.Cursor)
	}
	if got := strings.Join(texts, ","); got != "m6,m5,m4,m3,m2,m1,m0" {
		t.Fatalf("pages = %s", got)
	}
}

func TestSendMessageBatchSendsAllOrNothing(t *testing.T) {
	e := newEnv(t, false)
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	cb, cc := e.open(alice, bob), e.open(alice, carol)
	out := ok[chat.ConvoSendMessageBatch_Output](t, e.proc(alice, "chat.bsky.convo.sendMessageBatch", map[string]any{"items": []any{
		map[string]any{"convoId": cb.Id, "message": map[string]any{"text": "to bob"}},
		map[string]any{"convoId": cc.Id, "message": map[string]any{"text": "to carol"}},
	}}))
	if len(out.Items) != 2 || out.Items[1].Text != "to carol" {
		t.Fatalf("batch = %+v", out.Items)
	}
	wantErr(t, e.proc(alice, "chat.bsky.convo.sendMessageBatch", map[string]any{"items": []any{
		map[string]any{"convoId": cb.Id, "message": map[string]any{"text": "again"}},
		map[string]any{"convoId": "3kzzzzzzzzzzz", "message": map[string]any{"text": "nowhere"}},
	}}), http.StatusBadRequest, "InvalidConvo", "")
	if got := e.convo(bob, cb.Id).LastMessage.ConvoDefs_MessageView.Text; got != "to bob" {
		t.Errorf("a failed batch sent %q", got)
	}
}

func TestDeleteMessageForSelfShowsADeletedViewToThatMemberOnly(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	m := e.send(bob, c.Id, "regrettable")
	e.send(alice, c.Id, "hmm")

	del := e.proc(alice, "chat.bsky.convo.deleteMessageForSelf", map[string]any{"convoId": c.Id, "messageId": m.Id})
	var dv struct {
		Type string `json:"$type"`
		Id   string `json:"id"`
	}
	if err := json.Unmarshal(del.body, &dv); err != nil || del.status != http.StatusOK {
		t.Fatalf("%d %s", del.status, del.body)
	}
	if dv.Type != "chat.bsky.convo.defs#deletedMessageView" || dv.Id != m.Id {
		t.Fatalf("deleteMessageForSelf = %s", del.body)
	}
	mine := ok[chat.ConvoGetMessages_Output](t, e.query(alice, "chat.bsky.convo.getMessages", url.Values{"convoId": {c.Id}}))
	if d := mine.Messages[1].ConvoDefs_DeletedMessageView; d == nil || d.Id != m.Id {
		t.Fatalf("alice sees %+v", mine.Messages[1])
	}
	theirs := ok[chat.ConvoGetMessages_Output](t, e.query(bob, "chat.bsky.convo.getMessages", url.Values{"convoId": {c.Id}}))
	if v := theirs.Messages[1].ConvoDefs_MessageView; v == nil || v.Text != "regrettable" {
		t.Fatalf("bob sees %+v", theirs.Messages[1])
	}
	wantErr(t, e.proc(alice, "chat.bsky.convo.deleteMessageForSelf", map[string]any{"convoId": c.Id, "messageId": "nope"}), http.StatusBadRequest, "InvalidRequest", "Message not found")
}
