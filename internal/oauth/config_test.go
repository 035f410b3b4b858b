package oauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/url"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/identity"
)

func TestNewValidatesConfig(t *testing.T) {
	p256, _ := atcrypto.GeneratePrivateKeyP256()
	k256, _ := atcrypto.GeneratePrivateKeyK256()
	dir := identity.NewMockDirectory()
	base := func() Config {
		return Config{PublicURL: "http://127.0.0.1:8080", Sandbox: true, EncryptionKey: testKey(), Directory: dir}
	}
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"loopback client in sandbox", func(c *Config) {}, true},
		{"loopback client outside sandbox refused", func(c *Config) { c.Sandbox = false }, false},
		{"loopback client on localhost refused", func(c *Config) { c.PublicURL = "http://localhost:8080" }, false},
		{"loopback client without port refused", func(c *Config) { c.PublicURL = "http://127.0.0.1" }, false},
		{"confidential client", func(c *Config) { c.Sandbox = false; c.PublicURL = "https://skydm.example"; c.ClientKey = p256 }, true},
		{"confidential client over http refused", func(c *Config) { c.PublicURL = "http://skydm.example"; c.ClientKey = p256 }, false},
		{"confidential client on an IP refused", func(c *Config) { c.PublicURL = "https://10.0.0.1"; c.ClientKey = p256 }, false},
		{"k256 client key refused", func(c *Config) { c.PublicURL = "https://skydm.example"; c.ClientKey = k256 }, false},
		{"short encryption key refused", func(c *Config) { c.EncryptionKey = []byte("short") }, false},
		{"scopes without atproto refused", func(c *Config) { c.Scopes = []string{"transition:generic"} }, false},
		{"no directory refused", func(c *Config) { c.Directory = nil }, false},
		{"public URL with path refused", func(c *Config) { c.PublicURL = "http://127.0.0.1:8080/app" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mod(&c)
			_, err := New(c, openDB(t))
			if (err == nil) != tt.ok {
				t.Fatalf("New = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestClientMetadata(t *testing.T) {
	key, _ := atcrypto.GeneratePrivateKeyP256()
	t.Run("confidential", func(t *testing.T) {
		s, err := New(Config{PublicURL: "https://skydm.example/", ClientKey: key, ClientKeyID: "k1",
			EncryptionKey: testKey(), Directory: identity.NewMockDirectory()}, openDB(t))
		if err != nil {
			t.Fatal(err)
		}
		m := s.ClientMetadata()
		if err := m.Validate("https://skydm.example/oauth-client-metadata.json"); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(m)
		var raw map[string]any
		json.Unmarshal(b, &raw)
		want := map[string]any{
			"client_id":                       "https://skydm.example/oauth-client-metadata.json",
			"application_type":                "web",
			"token_endpoint_auth_method":      "private_key_jwt",
			"token_endpoint_auth_signing_alg": "ES256",
			"dpop_bound_access_tokens":        true,
			"jwks_uri":                        "https://skydm.example/oauth/jwks.json",
			"scope":                           "atproto transition:generic transition:chat.bsky",
		}
		for k, v := range want {
			if raw[k] != v {
				t.Errorf("%s = %v, want %v", k, raw[k], v)
			}
		}
		if ru := raw["redirect_uris"].([]any); len(ru) != 1 || ru[0] != "https://skydm.example/oauth/callback" {
			t.Errorf("redirect_uris %v", ru)
		}
		if !m.IsConfidential() {
			t.Error("metadata not confidential")
		}
		j := s.JWKS()
		if len(j.Keys) != 1 || *j.Keys[0].KeyID != "k1" || j.Keys[0].Curve != "P-256" || j.Keys[0].Use != "sig" {
			t.Fatalf("JWKS %+v", j)
		}
		jb, _ := json.Marshal(j)
		if strings.Contains(string(jb), `"d"`) {
			t.Fatal("JWKS contains private key material")
		}
	})
	t.Run("loopback", func(t *testing.T) {
		s, err := New(Config{PublicURL: "http://127.0.0.1:9090", Sandbox: true, EncryptionKey: testKey(),
			Directory: identity.NewMockDirectory()}, openDB(t))
		if err != nil {
			t.Fatal(err)
		}
		u, err := url.Parse(s.ClientID())
		if err != nil || u.Scheme != "http" || u.Host != "localhost" || u.Path != "" {
			t.Fatalf("client id %s", s.ClientID())
		}
		if u.Query().Get("redirect_uri") != "http://127.0.0.1:9090/oauth/callback" ||
			u.Query().Get("scope") != "atproto transition:generic transition:chat.bsky" {
			t.Fatalf("client id %s", s.ClientID())
		}
		if len(s.JWKS().Keys) != 0 {
			t.Fatal("loopback client has keys")
		}
	})
}

func TestKeys(t *testing.T) {
	s, err := GenerateClientKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseClientKey(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := k.(*atcrypto.PrivateKeyP256); !ok {
		t.Fatalf("%T", k)
	}
	// PEM (PKCS#8 and SEC 1) from openssl-style tooling.
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p8, _ := x509.MarshalPKCS8PrivateKey(ec)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	for _, p := range []string{
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})),
	} {
		if _, err := ParseClientKey(p); err != nil {
			t.Fatalf("PEM: %v", err)
		}
	}
	k256, _ := atcrypto.GeneratePrivateKeyK256()
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384, _ := x509.MarshalPKCS8PrivateKey(ec384)
	for _, bad := range []string{"", "nonsense", k256.Multibase(), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p384}))} {
		if _, err := ParseClientKey(bad); err == nil {
			t.Fatalf("ParseClientKey(%.20q) accepted", bad)
		}
	}
	ek, err := GenerateEncryptionKey()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := ParseEncryptionKey(ek); err != nil || len(b) != 32 {
		t.Fatalf("ParseEncryptionKey = %d bytes, %v", len(b), err)
	}
	for _, bad := range []string{"", "c2hvcnQ=", "!!!not base64!!!"} {
		if _, err := ParseEncryptionKey(bad); err == nil {
			t.Fatalf("ParseEncryptionKey(%q) accepted", bad)
		} else if strings.Contains(err.Error(), bad) && bad != "" {
			t.Fatal("error echoes the key")
		}
	}
	kid1, _ := KeyID(k)
	kid2, _ := KeyID(k)
	if kid1 == "" || kid1 != kid2 {
		t.Fatal("KeyID not stable")
	}
}
