package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// writeTLS writes a certificate for the sandbox's client host, signed by
// the CA the PDS trusts, and returns the cert and key file paths.
func writeTLS(t *testing.T, n *sandbox.Network) (certFile, keyFile string) {
	t.Helper()
	cert, err := n.TLSCert(n.ClientHost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	var certPEM []byte
	for _, der := range cert.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// clientHostTransport reaches the sandbox's client host on 127.0.0.1 and
// trusts the sandbox CA, as a browser with a hosts entry would.
func clientHostTransport(t *testing.T, n *sandbox.Network) *http.Transport {
	t.Helper()
	caPEM, err := os.ReadFile(n.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate in " + n.CACertFile)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err == nil && host == n.ClientHost {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		},
	}
}

// TestE2EConfidentialClientOverHTTPS runs the production client mode against
// the sandbox: https with a certificate from the sandbox CA, a client key,
// metadata and JWKS served by us and fetched by the PDS (private_key_jwt).
func TestE2EConfidentialClientOverHTTPS(t *testing.T) {
	n := testenv.Network(t)
	acct := testenv.NewAccount(t, n)
	certFile, keyFile := writeTLS(t, n)
	env := sandboxEnv(t, n)
	env["SKYDM_CLIENT_KEY"] = p256Key(t)
	env["SKYDM_PUBLIC_URL"] = "https://" + n.ClientHost + ":0" // port 0: the listening port
	env["SKYDM_TLS_CERT"], env["SKYDM_TLS_KEY"] = certFile, keyFile
	base, _ := startRun(t, nil, env)
	if !strings.HasPrefix(base, "https://"+n.ClientHost+":") || strings.HasSuffix(base, ":0") {
		t.Fatalf("public URL %q", base)
	}
	b := newBrowserClient(t, base)
	b.c.Transport = clientHostTransport(t, n)

	res, _ := b.get(base + "/oauth-client-metadata.json")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("metadata: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var meta struct {
		ClientID   string `json:"client_id"`
		AuthMethod string `json:"token_endpoint_auth_method"`
		JWKSURI    string `json:"jwks_uri"`
	}
	mres, err := b.c.Get(base + "/oauth-client-metadata.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(mres.Body).Decode(&meta); err != nil {
		t.Fatal(err)
	}
	mres.Body.Close()
	if meta.ClientID != base+"/oauth-client-metadata.json" || meta.AuthMethod != "private_key_jwt" {
		t.Errorf("metadata %+v", meta)
	}
	if res, _ := b.get(base + "/oauth/jwks.json"); res.StatusCode != 200 {
		t.Errorf("jwks: %d", res.StatusCode)
	}
	if hsts := res.Header.Get("Strict-Transport-Security"); hsts != "" {
		t.Errorf("HSTS in the sandbox: %q", hsts)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	callback, err := testenv.CompleteAuthorize(ctx, startLogin(t, b, acct.Handle), acct.Handle, acct.Password, true)
	if err != nil {
		t.Fatalf("CompleteAuthorize: %v", err)
	}
	if !strings.HasPrefix(callback, base+"/oauth/callback?") {
		t.Fatalf("PDS redirected to %q", callback)
	}
	res, doc := b.get(callback)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %d %s", res.StatusCode, doc.Find(`[data-testid="error-message"]`).Text())
	}
	sawSession := false
	for _, c := range res.Cookies() {
		if c.MaxAge >= 0 && c.Value != "" {
			sawSession = sawSession || strings.Contains(c.Name, "session")
			if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || !c.HttpOnly {
				t.Errorf("cookie %q is not __Host-, Secure and HttpOnly", c.Name)
			}
		}
	}
	if !sawSession {
		t.Errorf("callback set no session cookie: %v", res.Cookies())
	}
	_, doc = b.get(base + "/")
	if got := strings.TrimSpace(doc.Find(`[data-testid="current-handle"]`).Text()); got != acct.Handle {
		t.Fatalf("header shows %q, want %q", got, acct.Handle)
	}
	res, _ = b.post("/oauth/logout", url.Values{})
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("logout: %d", res.StatusCode)
	}
}
