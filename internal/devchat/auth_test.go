package devchat

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/auth"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

func TestServiceTokenFaultsAreRefusedWith401(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	otherKey, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	strangerKey, _ := atcrypto.GeneratePrivateKeyK256()
	const method = "chat.bsky.convo.listConvos"
	lxm := syntax.NSID(method)
	wrongLxm := syntax.NSID("chat.bsky.convo.sendMessage")
	sign := func(iss syntax.DID, aud string, ttl time.Duration, lxm *syntax.NSID, key atcrypto.PrivateKey) string {
		tok, err := auth.SignServiceAuth(iss, aud, ttl, lxm, key)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	aud := e.srv.DID().String()
	good := sign(alice.did, aud, time.Minute, &lxm, alice.key)
	parts := strings.Split(strings.TrimPrefix(good, "Bearer "), ".")

	tests := []struct {
		name     string
		authz    string
		wantName string
	}{
		{"missing header", "", "AuthMissing"},
		{"not a bearer token", "Basic YWxpY2U6cGFzcw==", "AuthMissing"},
		{"malformed token", "Bearer not-a-jwt", "BadJwt"},
		{"malformed payload", "Bearer " + parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("{nope")) + "." + parts[2], "BadJwt"},
		{"signed by another key", sign(alice.did, aud, time.Minute, &lxm, otherKey), "BadJwtSignature"},
		{"payload swapped under a valid signature", "Bearer " + parts[0] + "." + strings.Split(strings.TrimPrefix(sign(alice.did, aud, 2*time.Minute, &lxm, alice.key), "Bearer "), ".")[1] + "." + parts[2], "BadJwtSignature"},
		{"wrong aud", sign(alice.did, "did:web:api.bsky.chat", time.Minute, &lxm, alice.key), "BadJwtAudience"},
		{"aud with service fragment", sign(alice.did, aud+"#bsky_chat", time.Minute, &lxm, alice.key), "BadJwtAudience"},
		{"wrong lxm", sign(alice.did, aud, time.Minute, &wrongLxm, alice.key), "BadJwtLexiconMethod"},
		{"missing lxm", sign(alice.did, aud, time.Minute, nil, alice.key), "BadJwtLexiconMethod"},
		{"expired", sign(alice.did, aud, -2*time.Minute, &lxm, alice.key), "JwtExpired"},
		{"unknown issuer", sign("did:plc:stranger", aud, time.Minute, &lxm, strangerKey), "BadJwtIssuer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := e.raw(context.Background(), http.MethodGet, method, tc.authz, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantErr(t, r, http.StatusUnauthorized, tc.wantName, "")
		})
	}
	if n := e.srv.Calls(method); n != 0 {
		t.Errorf("Calls = %d after refused calls, want 0", n)
	}

	r, err := e.raw(context.Background(), http.MethodGet, method, good, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.status != http.StatusOK {
		t.Fatalf("valid ES256K token: %d %s", r.status, r.body)
	}
	if n := e.srv.Calls(method); n != 1 {
		t.Errorf("Calls = %d, want 1", n)
	}
}

func TestServiceTokenSignedWithP256IsAccepted(t *testing.T) {
	e := newEnv(t, false)
	key, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		t.Fatal(err)
	}
	u := e.userWithKey("pat", key, "all")
	if r := e.query(u, "chat.bsky.convo.listConvos", nil); r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
}
