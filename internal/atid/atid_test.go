package atid

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// fakeNet plays the sandbox PLC (GET /did:plc:...) and PDS
// (com.atproto.identity.resolveHandle) on one httptest server.
func fakeNet(t *testing.T, docs map[string]string, handles map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/xrpc/com.atproto.identity.resolveHandle" {
			did, ok := handles[r.URL.Query().Get("handle")]
			if !ok {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"InvalidRequest","message":"Unable to resolve handle"}`))
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]string{"did": did})
			return
		}
		did := strings.TrimPrefix(r.URL.Path, "/")
		aka, ok := docs[did]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id":          did,
			"alsoKnownAs": []string{"at://" + aka},
			"service": []map[string]string{{
				"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "http://localhost:2583",
			}},
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSandboxDirectory(t *testing.T) {
	const alice, mallory = "did:plc:aliceaaaaaaaaaaaaaaaaaaa", "did:plc:malloryaaaaaaaaaaaaaaaaa"
	srv := fakeNet(t,
		map[string]string{alice: "alice.test", mallory: "bob.test"}, // mallory's doc claims bob.test
		map[string]string{"alice.test": alice, "bob.test": "did:plc:bobbbbbbbbbbbbbbbbbbbbbb"},
	)
	dir := NewSandbox(srv.URL, srv.URL, &http.Client{Timeout: 5 * time.Second})
	ctx := context.Background()

	t.Run("handle resolves both ways", func(t *testing.T) {
		id, err := dir.LookupHandle(ctx, syntax.Handle("Alice.TEST"))
		if err != nil {
			t.Fatal(err)
		}
		if id.DID != alice || id.Handle != "alice.test" || id.PDSEndpoint() != "http://localhost:2583" {
			t.Fatalf("got %+v", id)
		}
	})
	t.Run("DID whose claimed handle points elsewhere gets handle.invalid", func(t *testing.T) {
		id, err := dir.LookupDID(ctx, syntax.DID(mallory))
		if err != nil {
			t.Fatal(err)
		}
		if id.Handle != syntax.HandleInvalid {
			t.Fatalf("handle = %s, want handle.invalid", id.Handle)
		}
	})
	t.Run("handle whose DID does not claim it is a mismatch", func(t *testing.T) {
		_, err := dir.LookupHandle(ctx, syntax.Handle("bob.test"))
		if err == nil {
			t.Fatal("want error")
		}
	})
	t.Run("unknown handle is not found", func(t *testing.T) {
		_, err := dir.LookupHandle(ctx, syntax.Handle("nobody.test"))
		if !errors.Is(err, identity.ErrHandleNotFound) {
			t.Fatalf("err = %v, want ErrHandleNotFound", err)
		}
	})
	t.Run("unknown DID is not found", func(t *testing.T) {
		_, err := dir.LookupDID(ctx, syntax.DID("did:plc:nobodyaaaaaaaaaaaaaaaaaa"))
		if !errors.Is(err, identity.ErrDIDNotFound) {
			t.Fatalf("err = %v, want ErrDIDNotFound", err)
		}
	})
	t.Run("did:web off localhost is refused without a request", func(t *testing.T) {
		_, err := dir.LookupDID(ctx, syntax.DID("did:web:example.com"))
		if !errors.Is(err, identity.ErrDIDResolutionFailed) {
			t.Fatalf("err = %v", err)
		}
	})
}
