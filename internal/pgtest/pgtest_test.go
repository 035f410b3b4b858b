package pgtest_test

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"syscall"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/skydm/skydm/internal/pgtest"
	"github.com/skydm/skydm/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func open(t *testing.T, url string) *sql.DB {
	t.Helper()
	d, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// Each test gets its own empty database on one shared server, run as an
// unprivileged user on 127.0.0.1.
func TestURLGivesAFreshDatabaseEachCall(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.URL(t), pgtest.URL(t)
	if a == b || !strings.HasPrefix(a, "postgres://skydm@127.0.0.1:") {
		t.Fatalf("urls %q %q", a, b)
	}
	da, db := open(t, a), open(t, b)
	if _, err := da.ExecContext(ctx, `CREATE TABLE x (v int)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'x'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("second database sees the first's table: n=%d err=%v", n, err)
	}
	var user, dataDir string
	if err := da.QueryRowContext(ctx, `SELECT current_user, current_setting('data_directory')`).Scan(&user, &dataDir); err != nil {
		t.Fatal(err)
	}
	if user != "skydm" {
		t.Fatalf("connected as %q", user)
	}
	fi, err := os.Stat(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid == 0 {
		t.Fatalf("data directory %s owned by root: postgres must run unprivileged", dataDir)
	}
}

// Each runs the same test on both backends, and DSN follows it into
// nested subtests.
func TestEachRunsBothBackends(t *testing.T) {
	var seen []pgtest.Backend
	pgtest.Each(t, func(t *testing.T) {
		seen = append(seen, pgtest.BackendOf(t))
		t.Run("nested", func(t *testing.T) {
			dsn := pgtest.DSN(t)
			if pgtest.BackendOf(t) == pgtest.Postgres != strings.HasPrefix(dsn, "postgres://") {
				t.Fatalf("%s: DSN %q", pgtest.BackendOf(t), dsn)
			}
		})
	})
	if len(seen) != 2 || seen[0] != pgtest.SQLite || seen[1] != pgtest.Postgres {
		t.Fatalf("backends %v", seen)
	}
	if pgtest.BackendOf(t) != pgtest.SQLite {
		t.Fatal("outside Each is not SQLite")
	}
}
