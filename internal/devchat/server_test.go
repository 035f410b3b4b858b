package devchat

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/bluesky-social/indigo/atproto/identity"
)

func TestNewRefusesBadConfig(t *testing.T) {
	dir := identity.NewMockDirectory()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no directory", Config{Endpoint: testEndpoint}},
		{"relative endpoint", Config{Endpoint: "localhost:2590", Directory: dir}},
		{"endpoint with path", Config{Endpoint: "http://localhost:2590/chat", Directory: dir}},
		{"ftp endpoint", Config{Endpoint: "ftp://localhost:2590", Directory: dir}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestDIDDocumentNamesTheChatService(t *testing.T) {
	e := newEnv(t, false)
	if got, want := e.srv.DID().String(), "did:web:localhost%3A2590"; got != want {
		t.Errorf("DID = %s, want %s", got, want)
	}
	if got, want := e.srv.ServiceRef(), "did:web:localhost%3A2590#bsky_chat"; got != want {
		t.Errorf("ServiceRef = %s, want %s", got, want)
	}
	res, err := e.ts.Client().Get(e.ts.URL + "/.well-known/did.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var doc identity.DIDDocument
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	ident := identity.ParseIdentity(&doc)
	if doc.DID != e.srv.DID() || ident.GetServiceEndpoint("bsky_chat") != testEndpoint {
		t.Fatalf("did.json = %s", b)
	}
	if doc.Service[0].Type != "BskyChatService" || doc.Service[0].ID != "#bsky_chat" {
		t.Fatalf("service entry = %+v", doc.Service[0])
	}
}

func TestUnknownMethodIs501AndWrongVerbIs400(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	wantErr(t, e.query(alice, "chat.bsky.convo.noSuchMethod", nil), http.StatusNotImplemented, "MethodNotImplemented", "")
	r, err := e.raw(context.Background(), http.MethodGet, "chat.bsky.convo.sendMessage", "Bearer "+e.token(alice, "chat.bsky.convo.sendMessage"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, r, http.StatusBadRequest, "InvalidRequest", "expected POST")
}

func TestMalformedInputIsInvalidRequest(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	tests := []struct {
		name    string
		method  string
		body    any
		wantMsg string
	}{
		{"bad JSON", "chat.bsky.convo.sendMessage", []byte(`{"convoId":`), "valid JSON"},
		{"missing convoId", "chat.bsky.convo.sendMessage", map[string]any{"message": map[string]string{"text": "hi"}}, `"convoId"`},
		{"missing message", "chat.bsky.convo.sendMessage", map[string]any{"convoId": "x"}, `"message"`},
		{"missing convoId on accept", "chat.bsky.convo.acceptConvo", map[string]any{}, `"convoId"`},
		{"missing messageId", "chat.bsky.convo.deleteMessageForSelf", map[string]any{"convoId": "x"}, `"messageId"`},
		{"bad updateAllRead status", "chat.bsky.convo.updateAllRead", map[string]any{"status": "spam"}, "status"},
		{"too many batch items", "chat.bsky.convo.sendMessageBatch", map[string]any{"items": make([]map[string]any, 101)}, "100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, e.proc(alice, tc.method, tc.body), http.StatusBadRequest, "InvalidRequest", tc.wantMsg)
		})
	}
	t.Run("wrong content type", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/xrpc/chat.bsky.convo.acceptConvo", nil)
		req.Header.Set("Authorization", "Bearer "+e.token(alice, "chat.bsky.convo.acceptConvo"))
		req.Header.Set("Content-Type", "text/plain")
		res, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		wantErr(t, resp{status: res.StatusCode, body: b}, http.StatusBadRequest, "InvalidRequest", "Content-Type")
	})
}
