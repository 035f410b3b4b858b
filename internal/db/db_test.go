package db

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/skydm/skydm/internal/pgtest"
	"github.com/skydm/skydm/internal/testenv"
)

func TestOpenSetsPragmas(t *testing.T) {
	ctx := context.Background()
	sdb, err := Open(ctx, filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	// Several connections: every one must carry the settings.
	sdb.SetMaxOpenConns(4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			conn, err := sdb.Conn(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			var mode string
			var busy, fk int
			conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
			conn.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy)
			conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk)
			if mode != "wal" || busy != 5000 || fk != 1 {
				t.Errorf("journal_mode=%s busy_timeout=%d foreign_keys=%d", mode, busy, fk)
			}
		})
	}
	wg.Wait()
}

func TestMain(m *testing.M) { testenv.Main(m) }

func TestMigrationsAreAppliedOnce(t *testing.T) {
	pgtest.Each(t, testMigrationsAreAppliedOnce)
}

func testMigrationsAreAppliedOnce(t *testing.T) {
	ctx := context.Background()
	path := pgtest.DSN(t)
	for i := range 3 {
		sdb, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("open #%d: %v", i, err)
		}
		ms, _ := Migrations(DialectOf(sdb))
		var n int
		sdb.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n)
		if n != len(ms) || n == 0 {
			t.Fatalf("open #%d: %d rows in schema_migrations, want %d", i, n, len(ms))
		}
		if err := Migrate(ctx, sdb); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
		sdb.Close()
	}
}

func TestMigrationsRunInOrderAndFailAtomically(t *testing.T) {
	pgtest.Each(t, testMigrationsRunInOrderAndFailAtomically)
}

func testMigrationsRunInOrderAndFailAtomically(t *testing.T) {
	ctx := context.Background()
	sdb, err := Open(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	fsys := fstest.MapFS{
		"m/0002_b.sql":   {Data: []byte(`INSERT INTO t (v) VALUES ('b');`)},
		"m/0001_a.sql":   {Data: []byte(`CREATE TABLE t (v TEXT); INSERT INTO t (v) VALUES ('a');`)},
		"m/0003_c.sql":   {Data: []byte(`INSERT INTO t (v) VALUES ('c'); INSERT INTO nosuch VALUES (1);`)},
		"m/README.txt":   {Data: []byte(`ignored`)},
		"m/0004_d.sql":   {Data: []byte(`INSERT INTO t (v) VALUES ('d');`)},
		"m/dir/0005.sql": {Data: []byte(`nested files are ignored`)},
	}
	ms, err := readMigrations(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Version)
	}
	if strings.Join(names, ",") != "0001_a,0002_b,0003_c,0004_d" {
		t.Fatalf("order %v", names)
	}
	err = apply(ctx, sdb, ms)
	if err == nil || !strings.Contains(err.Error(), "0003_c") {
		t.Fatalf("apply = %v, want failure naming 0003_c", err)
	}
	var got []string
	rows, _ := sdb.Query(`SELECT v FROM t ORDER BY v`)
	for rows.Next() {
		var v string
		rows.Scan(&v)
		got = append(got, v)
	}
	rows.Close()
	if strings.Join(got, "") != "ab" {
		t.Fatalf("rows %v: the failed migration was not rolled back, or later ones ran", got)
	}
	var recorded int
	sdb.QueryRow(`SELECT count(*) FROM schema_migrations WHERE version LIKE '000%_%' AND version IN ('0003_c','0004_d')`).Scan(&recorded)
	if recorded != 0 {
		t.Fatal("failed migration recorded as applied")
	}
}

func TestConcurrentOpenMigratesOnce(t *testing.T) {
	pgtest.Each(t, testConcurrentOpenMigratesOnce)
}

func testConcurrentOpenMigratesOnce(t *testing.T) {
	ctx := context.Background()
	path := pgtest.DSN(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			sdb, err := Open(ctx, path)
			if err != nil {
				t.Error(err)
				return
			}
			sdb.Close()
		})
	}
	wg.Wait()
	sdb, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	ms, _ := Migrations(DialectOf(sdb))
	var n int
	sdb.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n)
	if n != len(ms) {
		t.Fatalf("%d rows, want %d", n, len(ms))
	}
}

func TestOpenRefusesEmptyPath(t *testing.T) {
	if _, err := Open(context.Background(), ""); err == nil {
		t.Fatal("empty path accepted")
	}
}
