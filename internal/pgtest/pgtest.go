// Package pgtest starts a real Postgres (Debian's postgresql package) for
// tests: one server per test binary, a fresh database per test.
package pgtest

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/skydm/skydm/internal/pgserver"
	"github.com/skydm/skydm/internal/testenv"
)

// missing is the skip line (internal/testenv) when no Postgres is installed.
const missing = "Postgres not installed: apt-get install postgresql (Debian; .ci/run does it)"

// dirPrefix names the temporary directories of servers, so that one left
// by a test binary that died is wiped by the next (pgserver.Sweep).
const dirPrefix = "skydm-pgtest-"

var (
	once   sync.Once
	srv    *pgserver.Server
	srvErr error
	seq    atomic.Int64
)

// URL returns the URL of a new, empty database on this binary's Postgres
// server (started on first use, stopped by testenv.Main), dropped when t
// ends. When Postgres is not installed it fails t under CI=true and skips
// it otherwise (recorded like every missing tool, internal/testenv); when
// the server does not start it fails t.
func URL(t testing.TB) string {
	t.Helper()
	ensure(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), seq.Add(1))
	if err := srv.Exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Exec(`DROP DATABASE ` + name + ` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	return srv.URL(name)
}

// ensure starts this binary's server once, or skips or fails t (see URL)
// when it cannot. Each calls it outside the test function, so that the
// server is never started inside a testing/synctest bubble (its process
// and the goroutine waiting for it would belong to that bubble).
func ensure(t testing.TB) {
	t.Helper()
	once.Do(func() {
		srv, srvErr = pgserver.Start(dirPrefix)
		if srv != nil {
			testenv.AtExit(srv.Stop)
		}
	})
	var nf pgserver.NotInstalledError
	if errors.As(srvErr, &nf) {
		testenv.SkipMissing(t, missing, string(nf))
	}
	if srvErr != nil {
		t.Fatalf("pgtest: %v", srvErr)
	}
}
