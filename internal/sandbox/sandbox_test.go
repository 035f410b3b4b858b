package sandbox_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/skydm/skydm/internal/safebuf"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"

	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// startOwn starts a private network for tests that need to own one (its
// lifecycle, options). It skips or fails like testenv.Network.
func startOwn(t *testing.T, o sandbox.Options) (*sandbox.Network, time.Duration) {
	t.Helper()
	testenv.Network(t) // same skip/fail policy; also warms the install
	ctx := ctxFor(t, sandbox.DefaultStartTimeout)
	t0 := time.Now()
	n, err := sandbox.Start(ctx, o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	took := time.Since(t0)
	t.Cleanup(func() { _ = n.Close() })
	return n, took
}

// TestCloseLeavesNothing starts a network, checks its state file round-trips
// through Load, closes it and checks that the node process, the data
// directory and the state file are gone. It also reports start time and RSS.
func TestCloseLeavesNothing(t *testing.T) {
	state := filepath.Join(t.TempDir(), "sub", "state.json")
	var logs safebuf.Buffer
	n, took := startOwn(t, sandbox.Options{StateFile: state, SeedDemo: true, Faults: true,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	rss := vmRSS(t, n.PID)
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "sandbox PDS ready") {
			t.Logf("node: %s", line[strings.Index(line, "msg="):])
		}
	}
	t.Logf("Start (install check, node ready, devchat, 4 seeded accounts): %v; node VmRSS %s", took.Round(time.Millisecond), rss)

	loaded, err := sandbox.Load(state)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := n
	if loaded.PLCURL != want.PLCURL || loaded.PDSURL != want.PDSURL || loaded.ChatURL != want.ChatURL ||
		loaded.ChatDID != want.ChatDID || loaded.ChatServiceRef != want.ChatServiceRef || loaded.ReportServiceRef != want.ReportServiceRef ||
		loaded.CACertFile != want.CACertFile || loaded.ClientHost != want.ClientHost ||
		loaded.Faults != want.Faults || loaded.PID != want.PID || loaded.Chat != nil {
		t.Errorf("Load differs:\n got %+v\nwant %+v", loaded, n)
	}
	if fmt.Sprint(loaded.Accounts) != fmt.Sprint(n.Accounts) || len(loaded.Accounts) != 4 {
		t.Errorf("accounts differ:\n got %v\nwant %v", loaded.Accounts, n.Accounts)
	}
	ctx := ctxFor(t, 30*time.Second)
	if err := loaded.Ping(ctx); err != nil {
		t.Errorf("loaded network Ping: %v", err)
	}
	if _, err := loaded.Login(ctx, loaded.Accounts["alice"]); err != nil {
		t.Errorf("login through the loaded network: %v", err)
	}
	if err := loaded.ClearFaults(ctx); err != nil {
		t.Errorf("ClearFaults over HTTP: %v", err)
	}
	if err := loaded.Close(); err != nil {
		t.Errorf("Close of a loaded network: %v", err)
	}
	if err := n.Ping(ctx); err != nil {
		t.Fatalf("Close of the loaded copy stopped the network: %v", err)
	}

	dataDir := filepath.Dir(n.CACertFile)
	pid := n.PID
	t0 := time.Now()
	if err := n.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	t.Logf("Close: %v", time.Since(t0).Round(time.Millisecond))
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("node pid %d still exists after Close (kill 0: %v)", pid, err)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still has members after Close (kill 0: %v)", pid, err)
	}
	for _, p := range []string{dataDir, state} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after Close (stat: %v)", p, err)
		}
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := n.Ping(ctx); err == nil {
		t.Errorf("PDS still answers after Close")
	}
}

// TestStartPortTaken checks that a taken port gives ErrPortInUse naming the
// service and port, quickly and without starting node.
func TestStartPortTaken(t *testing.T) {
	testenv.Network(t) // skip/fail policy; warm install
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name string
		opts sandbox.Options
		what string
	}{
		{"PDS port taken", sandbox.Options{PDSPort: port}, "PDS"},
		{"PLC port taken", sandbox.Options{PLCPort: port}, "PLC"},
		{"chat port taken", sandbox.Options{ChatPort: port}, "chat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t0 := time.Now()
			n, err := sandbox.Start(ctxFor(t, time.Minute), tt.opts)
			if err == nil {
				n.Close()
				t.Fatal("Start succeeded on a taken port")
			}
			if !errors.Is(err, sandbox.ErrPortInUse) || !strings.Contains(err.Error(), tt.what+" port "+strconv.Itoa(port)) {
				t.Fatalf("err = %v; want ErrPortInUse naming %s port %d", err, tt.what, port)
			}
			t.Logf("%v after %v", err, time.Since(t0).Round(time.Millisecond))
		})
	}
}

// TestAccessTokenTTL checks that AccessTokenTTL makes the PDS issue
// short-lived OAuth access tokens, that an expired one is refused with 401
// WWW-Authenticate error="invalid_token", and that indigo's ClientSession
// then refreshes by itself.
func TestAccessTokenTTL(t *testing.T) {
	const ttl = 2 * time.Second
	n, _ := startOwn(t, sandbox.Options{AccessTokenTTL: ttl})
	ctx := ctxFor(t, time.Minute)
	acct, err := n.CreateAccount(ctx, "ttl.test", "")
	if err != nil {
		t.Fatal(err)
	}
	sess := testenv.OAuthSession(t, n, acct, "atproto transition:generic")
	first := sess.Data.AccessToken
	exp := jwtExp(t, first)
	if life := time.Until(exp); life > ttl+time.Second || life < -time.Second {
		t.Fatalf("access token expires in %v, want about %v", life, ttl)
	}

	// Poll the raw token until the PDS refuses it as expired.
	var status int
	var wwwAuth string
	deadline := time.Now().Add(ttl + 5*time.Second)
	for time.Now().Before(deadline) {
		status, wwwAuth = rawGetSession(t, ctx, n, sess)
		if status == http.StatusUnauthorized && strings.Contains(wwwAuth, `error="invalid_token"`) {
			break
		}
		if status != http.StatusOK && !strings.Contains(wwwAuth, "use_dpop_nonce") {
			t.Fatalf("getSession with a fresh token: %d %s", status, wwwAuth)
		}
		time.Sleep(100 * time.Millisecond) // polling the clock, not synchronising
	}
	if status != http.StatusUnauthorized {
		t.Fatalf("token still accepted %v after its expiry", time.Since(exp))
	}
	t.Logf("expired token: HTTP %d WWW-Authenticate: %s", status, wwwAuth)

	// indigo's ClientSession sees invalid_token and refreshes.
	if err := sess.APIClient().Get(ctx, "com.atproto.server.getSession", nil, nil); err != nil {
		t.Fatalf("getSession through ClientSession after expiry: %v", err)
	}
	if sess.Data.AccessToken == first {
		t.Fatal("ClientSession did not refresh the access token")
	}
}

// TestConfidentialClientTLS serves an https client_id on ClientHost with a
// certificate from TLSCert and checks the PDS fetches and trusts it: PAR as a
// private_key_jwt client succeeds only if the PDS resolved the name to
// 127.0.0.1, verified our certificate and read the metadata.
func TestConfidentialClientTLS(t *testing.T) {
	n := testenv.Network(t)
	if n.CACertFile == "" {
		t.Skip("attached network without a CA")
	}
	cert, err := n.TLSCert()
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(n.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: n.ClientHost}); err != nil {
		t.Fatalf("leaf does not verify against the CA: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + n.ClientHost + ":" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	clientID := base + "/oauth-client-metadata.json"
	scopes := []string{"atproto", "transition:chat.bsky"}
	cfg := atoauth.NewPublicConfig(clientID, base+"/callback", scopes)
	key, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.SetClientSecret(key, "k1"); err != nil {
		t.Fatal(err)
	}
	meta := cfg.ClientMetadata()
	jwks := cfg.PublicJWKS()
	meta.JWKS = &jwks
	fetched := make(chan string, 4)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fetched <- r.URL.Path
			if r.URL.Path != "/oauth-client-metadata.json" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(meta)
		}),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	defer srv.Close()

	ctx := ctxFor(t, 30*time.Second)
	asMeta := fetchASMeta(t, ctx, n)
	app := atoauth.NewClientApp(&cfg, atoauth.NewMemStore())
	app.Client = n.HTTPClient()
	info, err := app.SendAuthRequest(ctx, asMeta, scopes, "")
	if err != nil {
		t.Fatalf("PAR as confidential client %s: %v", clientID, err)
	}
	if info.RequestURI == "" {
		t.Fatal("PAR returned no request_uri")
	}
	select {
	case p := <-fetched:
		if p != "/oauth-client-metadata.json" {
			t.Errorf("PDS fetched %s", p)
		}
	default:
		t.Error("PAR succeeded but the PDS never fetched the client metadata")
	}
}

func vmRSS(t *testing.T, pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func jwtExp(t *testing.T, token string) time.Time {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWT")
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	return time.Unix(claims.Exp, 0)
}

// rawGetSession calls getSession with the session's current token and a
// fresh DPoP proof, without indigo's retry/refresh logic.
func rawGetSession(t *testing.T, ctx context.Context, n *sandbox.Network, sess *atoauth.ClientSession) (int, string) {
	t.Helper()
	u := n.PDSURL + "/xrpc/com.atproto.server.getSession"
	for range 2 {
		proof, err := sess.NewHostDPoP(http.MethodGet, u)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		tok, _ := sess.GetHostAccessData()
		req.Header.Set("Authorization", "DPoP "+tok)
		req.Header.Set("DPoP", proof)
		resp, err := n.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		www := resp.Header.Get("WWW-Authenticate")
		if nonce := resp.Header.Get("DPoP-Nonce"); resp.StatusCode == http.StatusUnauthorized && strings.Contains(www, "use_dpop_nonce") && nonce != "" {
			sess.UpdateHostDPoPNonce(ctx, nonce)
			continue
		}
		return resp.StatusCode, www
	}
	return 0, "use_dpop_nonce twice"
}

func fetchASMeta(t *testing.T, ctx context.Context, n *sandbox.Network) *atoauth.AuthServerMetadata {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.PDSURL+"/.well-known/oauth-authorization-server", nil)
	resp, err := n.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m atoauth.AuthServerMetadata
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return &m
}
