package oauth

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
	"github.com/skydm/skydm/internal/websession"
)

// openDBAt opens (a new handle on) the database file at path.
func openDBAt(t *testing.T, path string) *sql.DB {
	t.Helper()
	d, err := db.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// lockDB takes SQLite's write lock on the file at path from another
// connection, as a long write or a stuck process does; the returned func
// releases it.
func lockDB(t *testing.T, path string) func() {
	t.Helper()
	tx, err := openDBAt(t, path).BeginTx(context.Background(), nil) // BEGIN IMMEDIATE (_txlock)
	if err != nil {
		t.Fatal(err)
	}
	return func() { tx.Rollback() }
}

// refreshWhileLocked waits out s's access token for acct, then makes a
// call while the database is write-locked, so the refresh succeeds at the
// PDS and saving its tokens fails. It returns the func releasing the lock.
func refreshWhileLocked(t *testing.T, ctx context.Context, s *Service, path string, acct websession.Account) func() {
	t.Helper()
	ls, err := s.liveSession(ctx, acct.DID, acct.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := ls.sess.GetHostAccessData()
	for exp := jwtExpiry(t, tok); time.Now().Before(exp.Add(time.Second)); { // polling a deadline
		time.Sleep(100 * time.Millisecond)
	}
	unlock := lockDB(t, path)
	api, _ := s.APIClient(ctx, acct)
	if _, err := getSessionDID(ctx, api); err != nil {
		unlock()
		t.Fatalf("call with an expired token: %v", err)
	}
	if ls.tr.Refreshes() == 0 {
		t.Fatal("no refresh happened")
	}
	if stored, err := s.store.GetSession(ctx, acct.DID, acct.SessionID); err != nil || stored.RefreshToken == ls.sess.Data.RefreshToken {
		t.Fatalf("the save was meant to fail under the lock (err %v)", err)
	}
	return unlock
}

// restartedCallWorks opens the database again as a restarted process
// would, waits out the stored access token and makes a call: it refreshes
// with the stored refresh token. Had the store kept a spent one, the PDS
// deletes the session on the replay and the call fails.
func restartedCallWorks(t *testing.T, ctx context.Context, n *sandbox.Network, path string, acct websession.Account) *Service {
	t.Helper()
	s := sandboxServiceOn(t, n, openDBAt(t, path))
	stored, err := s.store.GetSession(ctx, acct.DID, acct.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	for exp := jwtExpiry(t, stored.AccessToken); time.Now().Before(exp.Add(time.Second)); {
		time.Sleep(100 * time.Millisecond)
	}
	api, err := s.APIClient(ctx, acct)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := getSessionDID(ctx, api); err != nil {
		t.Fatalf("after the restart the session is gone (the PDS saw a spent refresh token): %v", err)
	}
	return s
}

// TestSandboxRotatedTokensSurviveALockedDatabase: a refresh whose save
// fails because the database is write-locked keeps the session, both when
// the lock is released while running (the background retry saves) and when
// it is released only at shutdown (Close saves); after each restart on the
// same database the PDS accepts the stored refresh token.
func TestSandboxRotatedTokensSurviveALockedDatabase(t *testing.T) {
	testenv.Network(t) // skip/fail policy and the install
	if os.Getenv("SKYDM_SANDBOX_STATE") != "" {
		t.Skip("SKYDM_SANDBOX_STATE set: this test starts its own sandbox with short-lived tokens")
	}
	ctx := e2eCtx(t, 4*time.Minute)
	// Tokens outlive the 5 s busy_timeout the failing save waits out, so
	// the token a refresh got is still valid when the call is retried.
	n, err := sandbox.Start(ctx, sandbox.Options{AccessTokenTTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	user := testenv.NewAccount(t, n)
	path := t.TempDir() + "/skydm.db"

	s1 := sandboxServiceOn(t, n, openDBAt(t, path))
	s1.saveRetryMin = 100 * time.Millisecond
	acct, err := signIn(t, ctx, s1, user.Handle, user.Handle, user.Password, true)
	if err != nil {
		t.Fatal(err)
	}

	// The lock goes away while skydm runs: the retry saves the tokens.
	refreshWhileLocked(t, ctx, s1, path, acct)()
	ls, _ := s1.liveSession(ctx, acct.DID, acct.SessionID)
	if !storedRefreshIs(t, s1, ls.sess, 30*time.Second) {
		t.Fatal("rotated tokens not saved after the lock was released")
	}
	s2 := restartedCallWorks(t, ctx, n, path, acct)

	// The lock lasts until shutdown: Close saves the tokens.
	s2.saveRetryMin = time.Hour
	refreshWhileLocked(t, ctx, s2, path, acct)()
	if err := s2.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	restartedCallWorks(t, ctx, n, path, acct)
}
