package db

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/skydm/skydm/internal/pgtest"
)

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT a FROM t WHERE b = ? AND c = ?`:                `SELECT a FROM t WHERE b = $1 AND c = $2`,
		`UPDATE t SET a = ?1, b = ?2 WHERE c <= ?1`:            `UPDATE t SET a = $1, b = $2 WHERE c <= $1`,
		`SELECT '?' , "a?b", x -- what?` + "\n" + `FROM t = ?`: `SELECT '?' , "a?b", x -- what?` + "\n" + `FROM t = $1`,
		`SELECT v::bigint FROM t WHERE x IN (?10)`:             `SELECT v::bigint FROM t WHERE x IN ($10)`,
	} {
		if got := Postgres.Rebind(in); got != want {
			t.Errorf("Rebind(%q) = %q, want %q", in, got, want)
		}
		if got := SQLite.Rebind(in); got != in {
			t.Errorf("SQLite rebound %q to %q", in, got)
		}
	}
}

func TestDialectOfDSN(t *testing.T) {
	for dsn, want := range map[string]Dialect{
		"skydm.db": SQLite, "/var/lib/skydm/skydm.db": SQLite, "postgres.db": SQLite,
		"postgres://u@h/db": Postgres, "POSTGRESQL://u@h/db?sslmode=disable": Postgres,
	} {
		if got := DialectOfDSN(dsn); got != want {
			t.Errorf("DialectOfDSN(%q) = %v, want %v", dsn, got, want)
		}
	}
}

// Both migration sets have the same versions and, applied, the same
// tables with the same columns: one schema, two dialects.
func TestMigrationSetsMatch(t *testing.T) {
	ctx := context.Background()
	versions := map[Dialect][]string{}
	columns := map[Dialect][]string{}
	pgtest.Each(t, func(t *testing.T) {
		sdb, err := Open(ctx, pgtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		defer sdb.Close()
		d := DialectOf(sdb)
		if (d == Postgres) != (pgtest.BackendOf(t) == pgtest.Postgres) {
			t.Fatalf("DialectOf = %v on %s", d, pgtest.BackendOf(t))
		}
		ms, err := Migrations(d)
		if err != nil || len(ms) == 0 {
			t.Fatalf("migrations: %v %v", ms, err)
		}
		for _, m := range ms {
			versions[d] = append(versions[d], m.Version)
		}
		q := `SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table'`
		if d == Postgres {
			q = `SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = 'public'`
		}
		rows, err := sdb.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var c string
			rows.Scan(&c)
			columns[d] = append(columns[d], c)
		}
		slices.Sort(columns[d])
	})
	if !slices.Equal(versions[SQLite], versions[Postgres]) {
		t.Errorf("versions differ:\nsqlite   %v\npostgres %v", versions[SQLite], versions[Postgres])
	}
	if !slices.Equal(columns[SQLite], columns[Postgres]) || len(columns[SQLite]) < 10 {
		t.Errorf("columns differ:\nsqlite   %v\npostgres %v", columns[SQLite], columns[Postgres])
	}
}

// web check reads a Postgres database without migrating it, and never
// shows the URL's password; web backup sends Postgres users to pg_dump.
func TestCheckAndBackupOnPostgres(t *testing.T) {
	pgtest.On(t, pgtest.Postgres, func(t *testing.T) {
		ctx := context.Background()
		dsn := strings.Replace(pgtest.DSN(t), "postgres://skydm@", "postgres://skydm:s3cret@", 1)
		_, _, err := Check(ctx, dsn)
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "not a skydm database") {
			t.Fatalf("Check on an empty database = %v, want not a skydm database, without the password", err)
		}
		sdb, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		sdb.Close()
		applied, known, err := Check(ctx, dsn)
		if err != nil || applied != known || known == 0 {
			t.Fatalf("Check = %d of %d, %v", applied, known, err)
		}
		if err := Backup(ctx, dsn, filepath.Join(t.TempDir(), "b.db")); err == nil || !strings.Contains(err.Error(), "pg_dump") || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("Backup of Postgres = %v, want a pointer to pg_dump", err)
		}
	})
}
