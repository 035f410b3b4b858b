package devchat

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

func TestHTTPRecordSourceReadsFromTheMembersPDS(t *testing.T) {
	pds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		switch {
		case r.URL.Path == "/xrpc/com.atproto.repo.getRecord" && q.Get("rkey") == "self" && q.Get("repo") == "did:plc:bob":
			writeJSON(w, 200, map[string]any{"uri": "at://did:plc:bob/chat.bsky.actor.declaration/self", "cid": "bafyc", "value": map[string]string{"allowIncoming": "none"}})
		case r.URL.Path == "/xrpc/com.atproto.repo.getRecord" && q.Get("rkey") == "missing":
			writeJSON(w, 400, map[string]string{"error": "RecordNotFound", "message": "Could not locate record: at://did:plc:bob/x/missing"})
		case r.URL.Path == "/xrpc/com.atproto.repo.listRecords" && q.Get("cursor") == "":
			writeJSON(w, 200, map[string]any{"cursor": "c1", "records": []any{map[string]any{"uri": "at://did:plc:bob/app.bsky.graph.follow/1", "cid": "bafy1", "value": map[string]string{"subject": "did:plc:x"}}}})
		case r.URL.Path == "/xrpc/com.atproto.repo.listRecords" && q.Get("cursor") == "c1" && q.Get("limit") == "100":
			writeJSON(w, 200, map[string]any{"records": []any{}})
		default:
			writeJSON(w, 500, map[string]string{"error": "InternalServerError", "message": "nope"})
		}
	}))
	defer pds.Close()
	dir := identity.NewMockDirectory()
	dir.Insert(identity.Identity{DID: "did:plc:bob", Handle: "bob.test", Services: map[string]identity.ServiceEndpoint{
		"atproto_pds": {Type: "AtprotoPersonalDataServer", URL: pds.URL},
	}})
	src := NewHTTPRecordSource(dir, pds.Client())
	ctx := context.Background()

	rec, err := src.GetRecord(ctx, "did:plc:bob", collDeclaration, "self")
	if err != nil || rec.CID != "bafyc" || string(rec.Value) != `{"allowIncoming":"none"}` {
		t.Fatalf("GetRecord = %+v, %v", rec, err)
	}
	if _, err := src.GetRecord(ctx, "did:plc:bob", collDeclaration, "missing"); !errors.Is(err, ErrRecordNotFound) {
		t.Fatalf("missing record: %v, want ErrRecordNotFound", err)
	}
	if _, err := src.GetRecord(ctx, "did:plc:bob", collProfile, syntax.RecordKey("boom")); err == nil || errors.Is(err, ErrRecordNotFound) {
		t.Fatalf("server error: %v", err)
	}
	if _, err := src.GetRecord(ctx, "did:plc:nobody", collProfile, "self"); err == nil {
		t.Fatal("unresolvable DID: no error")
	}
	recs, next, err := src.ListRecords(ctx, "did:plc:bob", collFollow, "", 100)
	if err != nil || len(recs) != 1 || next != "c1" {
		t.Fatalf("ListRecords page 1 = %v %q %v", recs, next, err)
	}
	recs, next, err = src.ListRecords(ctx, "did:plc:bob", collFollow, "c1", 100)
	if err != nil || len(recs) != 0 || next != "" {
		t.Fatalf("ListRecords page 2 = %v %q %v", recs, next, err)
	}
}
