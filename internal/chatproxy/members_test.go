package chatproxy_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
)

func TestGetConvoMembersReadsRolesAndMapsInvalidConvo(t *testing.T) {
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/xrpc/chat.bsky.convo.getConvoMembers" {
			t.Errorf("path %s", r.URL.Path)
		}
		if q.Get("convoId") == "gone" {
			writeJSON(w, 400, xrpcErr("InvalidConvo", "no"+secret))
			return
		}
		if q.Get("convoId") != "g1" || q.Get("cursor") != "k1" || q.Get("limit") != "100" {
			t.Errorf("query %v", q)
		}
		writeJSON(w, 200, map[string]any{"cursor": "k2", "members": []any{
			map[string]any{"did": aliceDID, "handle": "alice.test", "displayName": "Alice",
				"kind": map[string]any{"$type": "chat.bsky.actor.defs#groupConvoMember", "role": "owner"}},
			map[string]any{"did": carolDID, "handle": "carol.test",
				"kind": map[string]any{"$type": "chat.bsky.actor.defs#groupConvoMember", "role": "standard",
					"addedBy": map[string]any{"did": aliceDID, "handle": "alice.test"}}},
		}})
	})
	c := f.client()
	p, err := c.GetConvoMembers(context.Background(), "g1", "k1", 500)
	if err != nil {
		t.Fatal(err)
	}
	if p.Cursor != "k2" || len(p.Members) != 2 {
		t.Fatalf("page %+v", p)
	}
	k := p.Members[1].Kind
	if k == nil || k.ActorDefs_GroupConvoMember == nil || *k.ActorDefs_GroupConvoMember.Role != "standard" ||
		k.ActorDefs_GroupConvoMember.AddedBy.Did != aliceDID {
		t.Errorf("carol's kind %+v", k)
	}
	_, err = c.GetConvoMembers(context.Background(), "gone", "", 0)
	if apperr.ReasonOf(err) != chatproxy.ReasonConvoNotFound || apperr.MessageOf(err) == "" {
		t.Errorf("InvalidConvo: %v", err)
	}
}
