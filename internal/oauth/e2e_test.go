package oauth

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/atid"
	"github.com/skydm/skydm/internal/safehttp"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
	"github.com/skydm/skydm/internal/websession"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func e2eCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// sandboxService is a Service wired to a sandbox network as cmd/web does in
// sandbox mode.
func sandboxService(t *testing.T, n *sandbox.Network, mods ...func(*Config)) *Service {
	t.Helper()
	return sandboxServiceOn(t, n, openDB(t), mods...)
}

// sandboxServiceOn is sandboxService on a given database.
func sandboxServiceOn(t *testing.T, n *sandbox.Network, sqlDB *sql.DB, mods ...func(*Config)) *Service {
	t.Helper()
	client := safehttp.NewClient(safehttp.Options{AllowPrivate: true, AllowHTTP: true})
	cfg := Config{
		PublicURL:     "http://127.0.0.1:18080",
		Sandbox:       true,
		EncryptionKey: testKey(),
		Directory:     atid.NewSandbox(n.PLCURL, n.PDSURL, client),
		HTTPClient:    client,
	}
	for _, m := range mods {
		m(&cfg)
	}
	s, err := New(cfg, sqlDB)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signIn runs StartLogin → the PDS's sign-in and consent → FinishLogin.
func signIn(t *testing.T, ctx context.Context, s *Service, identifier, user, pass string, approve bool) (websession.Account, error) {
	t.Helper()
	rec := httptest.NewRecorder()
	t0 := time.Now()
	authURL, err := s.StartLogin(ctx, rec, httptest.NewRequest("POST", s.publicURL+"/login", nil), identifier)
	if err != nil {
		t.Fatalf("StartLogin(%s): %v", identifier, err)
	}
	t1 := time.Now()
	redirect, err := testenv.CompleteAuthorize(ctx, authURL, user, pass, approve)
	if err != nil {
		t.Fatalf("CompleteAuthorize: %v", err)
	}
	t2 := time.Now()
	defer func() {
		t.Logf("StartLogin %v, PDS sign-in+consent (testenv) %v, FinishLogin %v",
			t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond), time.Since(t2).Round(time.Millisecond))
	}()
	if !strings.HasPrefix(redirect, s.publicURL+CallbackPath+"?") {
		t.Fatalf("redirect %s does not go to our callback", redirect)
	}
	cb := httptest.NewRequest("GET", redirect, nil)
	for _, c := range rec.Result().Cookies() {
		cb.AddCookie(c)
	}
	return s.FinishLogin(ctx, httptest.NewRecorder(), cb)
}

func getSessionDID(ctx context.Context, api *atclient.APIClient) (string, error) {
	var out struct {
		DID string `json:"did"`
	}
	err := api.Get(ctx, "com.atproto.server.getSession", nil, &out)
	return out.DID, err
}

func TestSandboxLoopbackClient(t *testing.T) {
	n := testenv.Network(t)
	ctx := e2eCtx(t, 2*time.Minute)
	alice := n.Accounts["alice"]
	s := sandboxService(t, n)

	t0 := time.Now()
	acct, err := signIn(t, ctx, s, "@Alice.Test", alice.Handle, alice.Password, true)
	if err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	t.Logf("sign-in round trip (StartLogin + PDS sign-in/consent + FinishLogin): %v", time.Since(t0).Round(time.Millisecond))
	if acct.DID.String() != alice.DID || acct.Handle != alice.Handle || !acct.HasChatScope {
		t.Fatalf("account %+v", acct)
	}
	api, err := s.APIClient(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if did, err := getSessionDID(ctx, api); err != nil || did != alice.DID {
		t.Fatalf("getSession: %q %v", did, err)
	}
	if _, err := chat.ConvoListConvos(ctx, api.WithService(n.ChatServiceRef), "", "", 0, "", "", ""); err != nil {
		t.Fatalf("chat listConvos: %v", err)
	}

	t.Run("did and pds url identifiers", func(t *testing.T) {
		for _, id := range []string{alice.DID, n.PDSURL} {
			a, err := signIn(t, ctx, s, id, alice.Handle, alice.Password, true)
			if err != nil || a.DID.String() != alice.DID {
				t.Fatalf("sign-in with %s: %+v %v", id, a, err)
			}
		}
	})

	t.Run("session revoked elsewhere ends as SessionExpired", func(t *testing.T) {
		other, err := signIn(t, ctx, s, alice.Handle, alice.Handle, alice.Password, true)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := s.Session(ctx, other.DID, other.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		// Revoke at the PDS behind the Service's back (as a user removing
		// the app from their account settings would).
		if err := sess.RevokeSession(ctx); err != nil {
			t.Fatal(err)
		}
		api, _ := s.APIClient(ctx, other)
		_, err = getSessionDID(ctx, api)
		if apperr.ReasonOf(err) != ReasonSessionExpired || apperr.CodeOf(err) != apperr.Unauthorized {
			t.Fatalf("API call on a revoked session = %v", err)
		}
		if _, err := s.store.GetSession(ctx, other.DID, other.SessionID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoked session still stored: %v", err)
		}
		if _, err := getSessionDID(ctx, api); err != nil && apperr.ReasonOf(err) != ReasonSessionExpired {
			t.Fatalf("second call = %v", err)
		}
	})

	t.Run("logout revokes the token at the PDS", func(t *testing.T) {
		sess, err := s.Session(ctx, acct.DID, acct.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		data := *sess.Data
		if err := s.Logout(ctx, acct.DID, acct.SessionID); err != nil {
			t.Fatal(err)
		}
		status, body := rawGetSession(t, ctx, n, &data)
		if status != http.StatusUnauthorized {
			t.Fatalf("old access token after logout: HTTP %d %s", status, body)
		}
		if _, err := s.Session(ctx, acct.DID, acct.SessionID); apperr.ReasonOf(err) != ReasonSessionExpired {
			t.Fatalf("Session after logout = %v", err)
		}
	})
}

// rawGetSession calls getSession with d's access token and a fresh DPoP
// proof, with no refresh logic, and returns the status and body.
func rawGetSession(t *testing.T, ctx context.Context, n *sandbox.Network, d *atoauth.ClientSessionData) (int, string) {
	t.Helper()
	key, err := atcrypto.ParsePrivateMultibase(d.DPoPPrivateKeyMultibase)
	if err != nil {
		t.Fatal(err)
	}
	bare := &atoauth.ClientSession{Config: &atoauth.ClientConfig{}, Data: d, DPoPPrivateKey: key}
	u := n.PDSURL + "/xrpc/com.atproto.server.getSession"
	var status int
	var body string
	for range 2 { // once more if the PDS wants a newer nonce
		proof, err := bare.NewHostDPoP("GET", u)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		req.Header.Set("Authorization", "DPoP "+d.AccessToken)
		req.Header.Set("DPoP", proof)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		buf := make([]byte, 4096)
		m, _ := resp.Body.Read(buf)
		b.Write(buf[:m])
		resp.Body.Close()
		status, body = resp.StatusCode, b.String()
		if nonce := resp.Header.Get("DPoP-Nonce"); status == 401 && strings.Contains(resp.Header.Get("WWW-Authenticate"), "use_dpop_nonce") && nonce != "" {
			d.DPoPHostNonce = nonce
			continue
		}
		break
	}
	return status, body
}

func TestSandboxScopesAndDenial(t *testing.T) {
	n := testenv.Network(t)
	ctx := e2eCtx(t, 2*time.Minute)
	user := testenv.NewAccount(t, n)

	t.Run("token without chat scope", func(t *testing.T) {
		s := sandboxService(t, n, func(c *Config) { c.Scopes = []string{ScopeAtproto, ScopeGeneric} })
		acct, err := signIn(t, ctx, s, user.Handle, user.Handle, user.Password, true)
		if err != nil {
			t.Fatal(err)
		}
		if acct.HasChatScope {
			t.Fatal("HasChatScope true without transition:chat.bsky")
		}
		api, _ := s.APIClient(ctx, acct)
		if _, err := getSessionDID(ctx, api); err != nil {
			t.Fatalf("getSession: %v", err)
		}
		_, err = chat.ConvoListConvos(ctx, api.WithService(n.ChatServiceRef), "", "", 0, "", "", "")
		var apiErr *atclient.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden {
			t.Fatalf("chat without scope: %v", err)
		}
	})

	t.Run("user denies", func(t *testing.T) {
		s := sandboxService(t, n)
		_, err := signIn(t, ctx, s, user.Handle, user.Handle, user.Password, false)
		if apperr.ReasonOf(err) != ReasonAccessDenied {
			t.Fatalf("denied sign-in = %v", err)
		}
	})

	t.Run("unknown handle", func(t *testing.T) {
		s := sandboxService(t, n)
		_, err := s.StartLogin(ctx, httptest.NewRecorder(), httptest.NewRequest("POST", "/login", nil), "nobody-here.test")
		if apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("unknown handle = %v", err)
		}
	})
}

// TestSandboxConcurrentExpiredTokenRefreshesOnce starts a network whose PDS
// issues 4-second access tokens, lets the token expire, then sends 50
// requests at once: exactly one refresh grant, all 50 succeed, and the PDS
// keeps the session (a replayed refresh token would have deleted it).
func TestSandboxConcurrentExpiredTokenRefreshesOnce(t *testing.T) {
	testenv.Network(t) // skip/fail policy and the install
	if os.Getenv("SKYDM_SANDBOX_STATE") != "" {
		t.Skip("SKYDM_SANDBOX_STATE set: this test starts its own sandbox with short-lived tokens")
	}
	ctx := e2eCtx(t, 3*time.Minute)
	const ttl = 4 * time.Second
	n, err := sandbox.Start(ctx, sandbox.Options{AccessTokenTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	user := testenv.NewAccount(t, n)
	s := sandboxService(t, n)
	acct, err := signIn(t, ctx, s, user.Handle, user.Handle, user.Password, true)
	if err != nil {
		t.Fatal(err)
	}
	api, _ := s.APIClient(ctx, acct)
	if _, err := getSessionDID(ctx, api); err != nil {
		t.Fatal(err)
	}
	ls, _ := s.liveSession(ctx, acct.DID, acct.SessionID)
	tok, _ := ls.sess.GetHostAccessData()
	exp := jwtExpiry(t, tok)
	for time.Now().Before(exp.Add(time.Second)) { // wait out the token (polling a deadline)
		time.Sleep(100 * time.Millisecond)
	}
	const N = 50
	errs := make([]error, N)
	var wg sync.WaitGroup
	for i := range N {
		wg.Go(func() { _, errs[i] = getSessionDID(ctx, api) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if got := ls.tr.Refreshes(); got != 1 {
		t.Fatalf("%d refresh grants for %d concurrent requests, want 1", got, N)
	}
	if tok2, _ := ls.sess.GetHostAccessData(); tok2 == tok {
		t.Fatal("access token unchanged")
	}
	stored, err := s.store.GetSession(ctx, acct.DID, acct.SessionID)
	if err != nil || stored.RefreshToken != ls.sess.Data.RefreshToken {
		t.Fatalf("rotated refresh token not persisted: %v", err)
	}
	if _, err := getSessionDID(ctx, api); err != nil {
		t.Fatalf("session gone after the refresh: %v", err)
	}
	t.Logf("token expired at %s; %d concurrent requests, %d refresh", exp.Format(time.TimeOnly), N, ls.tr.Refreshes())
}

func jwtExpiry(t *testing.T, tok string) time.Time {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	json.Unmarshal(b, &c)
	return time.Unix(c.Exp, 0)
}

// TestSandboxConfidentialClient serves the client metadata and JWKS over
// TLS as client.skydm.internal (resolved to 127.0.0.1 inside the PDS only,
// certificate from the sandbox CA) and signs in as a private_key_jwt client.
func TestSandboxConfidentialClient(t *testing.T) {
	n := testenv.Network(t)
	if n.CACertFile == "" {
		t.Skip("attached sandbox without a CA")
	}
	for _, inline := range []bool{false, true} {
		name := "jwks_uri"
		if inline {
			name = "inline jwks"
		}
		t.Run(name, func(t *testing.T) {
			ctx := e2eCtx(t, 2*time.Minute)
			cert, err := n.TLSCert(n.ClientHost)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			public := "https://" + n.ClientHost + ":" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			key, _ := atcrypto.GeneratePrivateKeyP256()
			s := sandboxService(t, n, func(c *Config) {
				c.PublicURL = public
				c.ClientKey = key
				c.InlineJWKS = inline
			})
			var mu sync.Mutex
			var fetched []string
			srv := &http.Server{
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					fetched = append(fetched, r.URL.Path)
					mu.Unlock()
					w.Header().Set("Content-Type", "application/json")
					switch r.URL.Path {
					case MetadataPath:
						json.NewEncoder(w).Encode(s.ClientMetadata())
					case JWKSPath:
						json.NewEncoder(w).Encode(s.JWKS())
					default:
						http.NotFound(w, r)
					}
				}),
				TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
			}
			go srv.ServeTLS(ln, "", "")
			t.Cleanup(func() { srv.Close() })

			user := testenv.NewAccount(t, n)
			t0 := time.Now()
			acct, err := signIn(t, ctx, s, user.Handle, user.Handle, user.Password, true)
			if err != nil {
				t.Fatalf("confidential sign-in: %v", err)
			}
			t.Logf("confidential sign-in round trip: %v", time.Since(t0).Round(time.Millisecond))
			mu.Lock()
			t.Logf("PDS fetched %v", fetched)
			sawJWKS := strings.Contains(strings.Join(fetched, " "), JWKSPath)
			mu.Unlock()
			if !inline && !sawJWKS {
				t.Error("PDS never fetched jwks_uri")
			}
			api, _ := s.APIClient(ctx, acct)
			if did, err := getSessionDID(ctx, api); err != nil || did != user.DID {
				t.Fatalf("getSession: %v", err)
			}
			if _, err := chat.ConvoListConvos(ctx, api.WithService(n.ChatServiceRef), "", "", 0, "", "", ""); err != nil {
				t.Fatalf("chat: %v", err)
			}
			// Refresh as a confidential client (client assertion on the
			// token endpoint).
			sess, _ := s.Session(ctx, acct.DID, acct.SessionID)
			if _, err := sess.RefreshTokens(ctx); err != nil {
				t.Fatalf("confidential refresh: %v", err)
			}
			if err := s.Logout(ctx, acct.DID, acct.SessionID); err != nil {
				t.Fatal(err)
			}
		})
	}
}
