package oauth

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/pgtest"
)

func newTestStore(t testing.TB, clock *fakeClock) (*Store, *harness) {
	t.Helper()
	h := &harness{t: t, db: openDB(t), clock: clock}
	s, err := NewStore(h.db, testKey(), StoreOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s, h
}

func sampleAuthRequest(state string) atoauth.AuthRequestData {
	did := syntax.DID("did:plc:alice0000000000000000000")
	return atoauth.AuthRequestData{
		State: state, AuthServerURL: "https://pds.example", AccountDID: &did,
		Scopes: []string{"atproto", "transition:chat.bsky"}, RequestURI: "urn:req-1",
		AuthServerTokenEndpoint: "https://pds.example/oauth/token", AuthServerRevocationEndpoint: "https://pds.example/oauth/revoke",
		PKCEVerifier: "pkce-verifier-SECRET", DPoPAuthServerNonce: "n1", DPoPPrivateKeyMultibase: "zDPoPKEYSECRET",
	}
}

func sampleSession(t testing.TB, id string) atoauth.ClientSessionData {
	k, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		t.Fatal(err)
	}
	return atoauth.ClientSessionData{
		AccountDID: "did:plc:alice0000000000000000000", SessionID: id,
		HostURL: "https://pds.example", AuthServerURL: "https://pds.example",
		AuthServerTokenEndpoint: "https://pds.example/oauth/token", Scopes: []string{"atproto", "transition:chat.bsky"},
		AccessToken: "ACCESS-TOKEN-SECRET", RefreshToken: "REFRESH-TOKEN-SECRET",
		DPoPAuthServerNonce: "n1", DPoPHostNonce: "n2", DPoPPrivateKeyMultibase: k.Multibase(),
	}
}

func TestAuthRequestIsCreateOnly(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		s, _ := newTestStore(t, &fakeClock{now: time.Now()})
		ctx := context.Background()
		if err := s.SaveAuthRequestInfo(ctx, sampleAuthRequest("st1")); err != nil {
			t.Fatal(err)
		}
		second := sampleAuthRequest("st1")
		second.AuthServerURL = "https://evil.example"
		if err := s.SaveAuthRequestInfo(ctx, second); !errors.Is(err, ErrAuthRequestExists) {
			t.Fatalf("second save = %v, want ErrAuthRequestExists", err)
		}
		got, err := s.GetAuthRequestInfo(ctx, "st1")
		if err != nil {
			t.Fatal(err)
		}
		if got.AuthServerURL != "https://pds.example" || got.PKCEVerifier != "pkce-verifier-SECRET" ||
			got.DPoPPrivateKeyMultibase != "zDPoPKEYSECRET" || got.AccountDID.String() != "did:plc:alice0000000000000000000" ||
			len(got.Scopes) != 2 || got.AuthServerRevocationEndpoint == "" {
			t.Fatalf("round trip: %+v", got)
		}
	})
}

func TestAuthRequestLifecycle(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		tests := []struct {
			name    string
			advance time.Duration
			consume int // consumes before the checked one
			want    error
		}{
			{"fresh request is returned", 0, 0, nil},
			{"request just before ten minutes is returned", 10*time.Minute - time.Second, 0, nil},
			{"expired request is expired", 10*time.Minute + time.Second, 0, ErrAuthRequestExpired},
			{"consumed request is used", 0, 1, ErrAuthRequestUsed},
			{"consumed request stays used when retried", 0, 3, ErrAuthRequestUsed},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				clock := &fakeClock{now: time.Now()}
				s, _ := newTestStore(t, clock)
				ctx := context.Background()
				if err := s.SaveAuthRequestInfo(ctx, sampleAuthRequest("st")); err != nil {
					t.Fatal(err)
				}
				for range tt.consume {
					s.ConsumeAuthRequest(ctx, "st")
				}
				clock.Add(tt.advance)
				_, err := s.ConsumeAuthRequest(ctx, "st")
				if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
					t.Fatalf("Consume = %v, want %v", err, tt.want)
				}
				_, gerr := s.GetAuthRequestInfo(ctx, "st")
				if !errors.Is(gerr, ErrNotFound) {
					t.Fatalf("Get after consume/expiry = %v, want ErrNotFound", gerr)
				}
			})
		}
		s, _ := newTestStore(t, &fakeClock{now: time.Now()})
		if _, err := s.ConsumeAuthRequest(context.Background(), "unknown"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown = %v", err)
		}
	})
}

func TestGetAuthRequestExpiredIsNotFound(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		clock := &fakeClock{now: time.Now()}
		s, _ := newTestStore(t, clock)
		ctx := context.Background()
		s.SaveAuthRequestInfo(ctx, sampleAuthRequest("st"))
		clock.Add(DefaultAuthRequestTTL)
		if _, err := s.GetAuthRequestInfo(ctx, "st"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get expired = %v", err)
		}
	})
}

func TestSecretsAreEncryptedAtRest(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		s, h := newTestStore(t, &fakeClock{now: time.Now()})
		ctx := context.Background()
		sess := sampleSession(t, "sid1")
		if err := s.SaveSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveAuthRequestInfo(ctx, sampleAuthRequest("st1")); err != nil {
			t.Fatal(err)
		}
		secrets := [][]byte{[]byte("ACCESS-TOKEN-SECRET"), []byte("REFRESH-TOKEN-SECRET"),
			[]byte(sess.DPoPPrivateKeyMultibase), []byte("pkce-verifier-SECRET"), []byte("zDPoPKEYSECRET")}
		for _, q := range []string{
			`SELECT access_token, refresh_token, dpop_private_key FROM oauth_sessions`,
			`SELECT pkce_verifier, dpop_private_key, x'' FROM oauth_auth_requests`,
		} {
			var a, b, c []byte
			if err := h.db.QueryRow(q).Scan(&a, &b, &c); err != nil {
				t.Fatal(err)
			}
			for _, col := range [][]byte{a, b, c} {
				for _, sec := range secrets {
					if bytes.Contains(col, sec) {
						t.Fatalf("plaintext secret %q found in a stored column", sec)
					}
				}
			}
		}
		// The whole database file must not contain them either.
		var dump []byte
		rows, _ := h.db.Query(`SELECT * FROM oauth_sessions`)
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			for _, v := range vals {
				switch x := v.(type) {
				case []byte:
					dump = append(dump, x...)
				case string:
					dump = append(dump, x...)
				}
			}
		}
		rows.Close()
		for _, sec := range secrets {
			if bytes.Contains(dump, sec) {
				t.Fatalf("plaintext %q in session row", sec)
			}
		}
		// Each value gets its own nonce: saving the same token twice gives
		// different ciphertexts.
		var c1, c2 []byte
		h.db.QueryRow(`SELECT access_token FROM oauth_sessions`).Scan(&c1)
		s.SaveSession(ctx, sess)
		h.db.QueryRow(`SELECT access_token FROM oauth_sessions`).Scan(&c2)
		if bytes.Equal(c1, c2) {
			t.Fatal("same ciphertext twice: nonce reused")
		}
	})
}

func TestWrongKeyOrMovedCiphertextFailsCleanly(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		s, h := newTestStore(t, &fakeClock{now: time.Now()})
		ctx := context.Background()
		s.SaveSession(ctx, sampleSession(t, "sid1"))
		s.SaveSession(ctx, sampleSession(t, "sid2"))
		s.SaveAuthRequestInfo(ctx, sampleAuthRequest("st1"))

		other := testKey()
		other[0] ^= 0xff
		wrong, err := NewStore(h.db, other, StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := wrong.GetSession(ctx, "did:plc:alice0000000000000000000", "sid1"); !errors.Is(err, ErrDecrypt) || got != nil {
			t.Fatalf("wrong key GetSession = %v, %v", got, err)
		}
		if _, err := wrong.GetAuthRequestInfo(ctx, "st1"); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("wrong key GetAuthRequestInfo = %v", err)
		}
		// Ciphertext copied from another row or column does not decrypt: the
		// additional data binds it to DID, session id and column.
		if _, err := h.db.Exec(`UPDATE oauth_sessions SET access_token = (SELECT access_token FROM oauth_sessions WHERE session_id = 'sid2') WHERE session_id = 'sid1'`); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSession(ctx, "did:plc:alice0000000000000000000", "sid1"); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("moved ciphertext = %v", err)
		}
		if _, err := h.db.Exec(`UPDATE oauth_sessions SET refresh_token = access_token WHERE session_id = 'sid2'`); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSession(ctx, "did:plc:alice0000000000000000000", "sid2"); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("column-swapped ciphertext = %v", err)
		}
		if _, err := NewStore(h.db, []byte("short"), StoreOptions{}); err == nil {
			t.Fatal("short key accepted")
		}
	})
}

func TestSessionUpsertAndUpdateOnly(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		clock := &fakeClock{now: time.Now()}
		s, h := newTestStore(t, clock)
		ctx := context.Background()
		sess := sampleSession(t, "sid1")
		if err := s.UpdateSession(ctx, sess); !errors.Is(err, ErrNotFound) {
			t.Fatalf("UpdateSession of a missing row = %v", err)
		}
		if n := countRows(t, h, "oauth_sessions"); n != 0 {
			t.Fatal("UpdateSession created a row")
		}
		s.SaveSession(ctx, sess)
		var created1 int64
		h.db.QueryRow(`SELECT created_at FROM oauth_sessions`).Scan(&created1)
		clock.Add(time.Hour)
		sess.AccessToken, sess.RefreshToken = "A2", "R2"
		if err := s.SaveSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		sess.DPoPHostNonce = "n3"
		if err := s.UpdateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetSession(ctx, sess.AccountDID, "sid1")
		if err != nil {
			t.Fatal(err)
		}
		if got.AccessToken != "A2" || got.RefreshToken != "R2" || got.DPoPHostNonce != "n3" || got.HostURL != sess.HostURL {
			t.Fatalf("after upsert: %+v", got)
		}
		var created2, n int64
		h.db.QueryRow(`SELECT max(created_at), count(*) FROM oauth_sessions`).Scan(&created2, &n)
		if created2 != created1 || n != 1 {
			t.Fatalf("upsert changed created_at (%d→%d) or row count %d", created1, created2, n)
		}
		if err := s.DeleteSession(ctx, sess.AccountDID, "sid1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetSession(ctx, sess.AccountDID, "sid1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
		if err := s.DeleteSession(ctx, sess.AccountDID, "sid1"); err != nil {
			t.Fatalf("deleting twice: %v", err)
		}
	})
}

func TestExpiredRowsAreCollected(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		clock := &fakeClock{now: time.Now()}
		h := newHarness(t, func(c *Config) {})
		h.clock = clock
		s, err := NewStore(h.db, testKey(), StoreOptions{Now: clock.Now, SessionTTL: 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		h.svc.store = s
		h.svc.gcEvery = 10 * time.Millisecond
		ctx := context.Background()
		s.SaveAuthRequestInfo(ctx, sampleAuthRequest("old"))
		s.SaveSession(ctx, sampleSession(t, "old"))
		clock.Add(25 * time.Hour)
		s.SaveAuthRequestInfo(ctx, sampleAuthRequest("new"))
		s.SaveSession(ctx, sampleSession(t, "new"))
		if _, err := s.GetSession(ctx, "did:plc:alice0000000000000000000", "old"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired session = %v, want ErrNotFound", err)
		}

		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- h.svc.Run(runCtx) }()
		deadline := time.Now().Add(5 * time.Second)
		for countRows(t, h, "oauth_sessions") != 1 || countRows(t, h, "oauth_auth_requests") != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("expired rows not collected: %d sessions, %d requests",
					countRows(t, h, "oauth_sessions"), countRows(t, h, "oauth_auth_requests"))
			}
			time.Sleep(5 * time.Millisecond) // polling with a deadline
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		if _, err := s.GetSession(ctx, "did:plc:alice0000000000000000000", "new"); err != nil {
			t.Fatalf("fresh session collected: %v", err)
		}
	})
}
