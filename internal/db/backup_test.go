package db

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rowsTable is a table the tests write to, next to the app's own tables.
const rowsTable = `CREATE TABLE rows (id INTEGER PRIMARY KEY, v TEXT NOT NULL) STRICT`

// openApp opens <tmp>/skydm.db as the app does (WAL, busy_timeout,
// immediate transactions, migrations), with the test table when withRows;
// it is closed when the test ends.
func openApp(t *testing.T, withRows bool) (sdb *sql.DB, dir, path string) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "skydm.db")
	sdb, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	if withRows {
		if _, err := sdb.Exec(rowsTable); err != nil {
			t.Fatal(err)
		}
	}
	return sdb, dir, path
}

// countRows returns count(*) and max(id) of the test table in sdb.
func countRows(t *testing.T, sdb *sql.DB) (n, max int64) {
	t.Helper()
	if err := sdb.QueryRow(`SELECT count(*), coalesce(max(id), 0) FROM rows`).Scan(&n, &max); err != nil {
		t.Fatalf("counting rows: %v", err)
	}
	return n, max
}

// integrity runs PRAGMA integrity_check on sdb and returns its answer.
func integrity(t *testing.T, sdb *sql.DB) string {
	t.Helper()
	var s string
	if err := sdb.QueryRow(`PRAGMA integrity_check`).Scan(&s); err != nil {
		t.Fatalf("integrity_check: %v", err)
	}
	return s
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an event
	}
}

func TestBackupWhileTheAppWritesIsConsistentAndHasTheNewestRows(t *testing.T) {
	ctx := context.Background()
	app, dir, src := openApp(t, true)

	// The app writes rows continuously, one committed transaction each;
	// committed is the id of the newest committed row.
	var committed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := int64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := app.Exec(`INSERT INTO rows (id, v) VALUES (?, ?)`, i, strings.Repeat("x", 200)); err != nil {
				t.Errorf("writer: %v", err)
				return
			}
			committed.Store(i)
		}
	})
	waitUntil(t, "the writer to commit 300 rows", func() bool { return committed.Load() >= 300 })

	dest := filepath.Join(dir, "backup.db")
	before := committed.Load()
	if err := Backup(ctx, src, dest); err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("Backup: %v", err)
	}
	after := committed.Load()
	waitUntil(t, "the writer to go on after the backup", func() bool { return committed.Load() > after+50 })
	close(stop)
	wg.Wait()

	// The backup opens as the app opens its database (migrations included).
	b, err := Open(ctx, dest)
	if err != nil {
		t.Fatalf("opening the backup as the app does: %v", err)
	}
	defer b.Close()
	if got := integrity(t, b); got != "ok" {
		t.Fatalf("integrity_check of the backup = %q", got)
	}
	n, max := countRows(t, b)
	if n != max {
		t.Errorf("backup holds %d rows but ids up to %d: not one snapshot", n, max)
	}
	if n < before {
		t.Errorf("backup holds %d rows; %d were committed before the backup began", n, before)
	}
	if n > after {
		t.Errorf("backup holds %d rows; only %d were committed when it ended", n, after)
	}
	ms, _ := Migrations(SQLite)
	var applied int
	b.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&applied)
	if applied != len(ms) {
		t.Errorf("backup has %d migrations recorded, want %d", applied, len(ms))
	}
	if fi, err := os.Stat(dest); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("backup file mode %v: it holds encrypted tokens, owner only", fi.Mode())
	}
	t.Logf("backup of a database being written: %d rows committed before, %d in the backup, %d when it ended", before, n, after)
}

// The bug the backup command exists for: the README called the database
// "one SQLite file", but while skydm runs, the newest commits live only in
// skydm.db-wal. A copy of skydm.db alone does not have them.
func TestPlainCopyOfTheDBFileAloneLosesRowsStillInTheWAL(t *testing.T) {
	ctx := context.Background()
	app, dir, src := openApp(t, true) // kept open: closing the last connection checkpoints the WAL
	for i := 1; i <= 50; i++ {
		if _, err := app.Exec(`INSERT INTO rows (id, v) VALUES (?, 'signed in')`, i); err != nil {
			t.Fatal(err)
		}
	}

	plain := filepath.Join(dir, "plain-copy.db")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, plain)
	if err != nil {
		t.Fatalf("opening the plain copy: %v", err)
	}
	defer c.Close()
	var tables int
	c.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'rows'`).Scan(&tables)
	var n int64
	if tables == 1 {
		n, _ = countRows(t, c)
	}
	if n == 50 {
		t.Fatalf("the plain copy has all 50 rows: the WAL was checkpointed, so this test shows nothing")
	}
	t.Logf("plain copy of skydm.db while the app runs: %d of 50 committed rows (table present: %v)", n, tables == 1)

	good := filepath.Join(dir, "backup.db")
	if err := Backup(ctx, src, good); err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if n, _ := countRows(t, b); n != 50 {
		t.Errorf("Backup at the same moment has %d of 50 rows", n)
	}
}

func TestBackupRefusesToOverwriteAndNamesWrongPaths(t *testing.T) {
	ctx := context.Background()
	_, dir, src := openApp(t, false)

	existing := filepath.Join(dir, "yesterday.db")
	if err := os.WriteFile(existing, []byte("yesterday's backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, src, dest string
		is              error
		says            []string
	}{
		{"an existing file is never overwritten", src, existing, ErrBackupExists, []string{existing, "already exists"}},
		{"a directory that does not exist is named", src, filepath.Join(dir, "no", "such", "dir", "b.db"), nil, []string{filepath.Join(dir, "no", "such", "dir"), "does not exist"}},
		{"a directory as the target is refused", src, dir, ErrBackupExists, []string{dir, "already exists"}},
		{"a missing database is named, not created", filepath.Join(dir, "typo.db"), filepath.Join(dir, "b.db"), nil, []string{filepath.Join(dir, "typo.db"), "no database"}},
		{"an empty target is refused", src, "", nil, []string{"backup file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Backup(ctx, tt.src, tt.dest)
			if err == nil {
				t.Fatal("Backup succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "yesterday's backup" {
		t.Errorf("the existing file was changed: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "typo.db")); !os.IsNotExist(err) {
		t.Errorf("backing up a missing database created it: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*partial*"))
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}
