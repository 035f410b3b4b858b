// Package testenv gives tests a running sandbox network (internal/sandbox)
// and helpers to act as its users: fresh accounts, password sessions, the
// PDS's own OAuth sign-in and consent driven over plain HTTP, and a DPoP-bound
// OAuth session for calling the PDS directly.
//
// One network is shared by all tests of a test binary. Use it as
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
//	func TestX(t *testing.T) {
//		n := testenv.Network(t)
//		alice := testenv.NewAccount(t, n)
//		…
//	}
//
// With SKYDM_SANDBOX_STATE=<state file> tests attach to a sandbox already running
// (`make sandbox`) instead of starting one. Under CI=true a sandbox that cannot
// start fails the test; elsewhere a test is skipped only when Node/npm is not
// available to install the sandbox.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/sandbox"
)

// shared is the one network of this test binary. A package variable is the
// point here: sync.Once makes every test of the binary share one sandbox.
var shared struct {
	once sync.Once
	n    *sandbox.Network
	err  error
	took time.Duration
}

// Network returns the test binary's shared sandbox, starting it on first use
// (or attaching to SKYDM_SANDBOX_STATE). When it cannot start, the test fails with
// the reason (always under CI=true), or is skipped when Node/npm is missing.
// Set SKYDM_SANDBOX_LOG=1 to copy node's output to stderr.
func Network(t testing.TB) *sandbox.Network {
	t.Helper()
	shared.once.Do(func() {
		t0 := time.Now()
		shared.n, shared.err = open()
		shared.took = time.Since(t0)
	})
	if shared.err != nil {
		if errors.Is(shared.err, sandbox.ErrNodeUnavailable) && os.Getenv("CI") != "true" {
			t.Skipf("sandbox unavailable (Node 22 cannot be installed here: npm is missing): %v", shared.err)
		}
		t.Fatalf("sandbox: %v", shared.err)
	}
	return shared.n
}

func open() (*sandbox.Network, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sandbox.DefaultStartTimeout)
	defer cancel()
	if path := os.Getenv("SKYDM_SANDBOX_STATE"); path != "" {
		n, err := sandbox.Load(path)
		if err != nil {
			return nil, err
		}
		if err := n.Ping(ctx); err != nil {
			return nil, fmt.Errorf("SKYDM_SANDBOX_STATE=%s is not answering: %w", path, err)
		}
		return n, nil
	}
	var log io.Writer
	if os.Getenv("SKYDM_SANDBOX_LOG") == "1" {
		log = os.Stderr
	}
	return sandbox.Start(ctx, sandbox.Options{
		PLCPort: 0, PDSPort: 0, ChatPort: 0,
		Faults:   true,
		SeedDemo: true,
		Log:      log,
	})
}

// StartupTime reports how long the shared network took to start (or attach);
// zero before Network was first called.
func StartupTime() time.Duration { return shared.took }

// atExit holds what Main runs after the tests (AtExit).
var atExit struct {
	mu  sync.Mutex
	fns []func() error
}

// AtExit registers fn to run when Main ends, after the tests, newest first:
// the harness packages beside this one stop their servers with it. An
// error from fn fails the run.
func AtExit(fn func() error) {
	atExit.mu.Lock()
	defer atExit.mu.Unlock()
	atExit.fns = append(atExit.fns, fn)
}

// Main runs the tests, then stops the shared network (if this binary started
// one) and whatever AtExit registered, and exits with the tests' status.
// Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	atExit.mu.Lock()
	for i := len(atExit.fns) - 1; i >= 0; i-- {
		if err := atExit.fns[i](); err != nil {
			fmt.Fprintln(os.Stderr, "testenv:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	atExit.mu.Unlock()
	if shared.n != nil {
		if err := shared.n.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: stopping the sandbox:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// NewAccount creates a fresh account with a unique handle ("t<hex>.test") and
// a generated password, failing the test when the PDS refuses.
func NewAccount(t testing.TB, n *sandbox.Network) sandbox.Account {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acct, err := n.CreateAccount(ctx, "t"+hex.EncodeToString(b)+".test", "")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return acct
}

// PasswordSession logs acct in with a legacy password session
// (com.atproto.server.createSession), failing the test when that fails. The
// client refreshes its token by itself.
func PasswordSession(t testing.TB, n *sandbox.Network, acct sandbox.Account) *atclient.APIClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := n.Login(ctx, acct)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return c
}
