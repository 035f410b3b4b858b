// Package db opens skydm's one SQLite database (modernc.org/sqlite, WAL,
// busy_timeout, BEGIN IMMEDIATE transactions, foreign keys) and applies the
// embedded, ordered schema migrations in migrations/NNNN_name.sql.
package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Open opens (creating if needed) the SQLite database at path with WAL
// journaling, busy_timeout=5000, _txlock=immediate and foreign keys on, then
// applies every pending migration. It returns an error, and closes the
// database, when the file cannot be opened or a migration fails.
func Open(ctx context.Context, path string) (*sql.DB, error) {
	sdb, err := open(ctx, path)
	if err != nil {
		return nil, err
	}
	if err := Migrate(ctx, sdb); err != nil {
		sdb.Close()
		return nil, err
	}
	return sdb, nil
}

// open opens the database at path with skydm's connection settings and
// pings it, without migrating.
func open(ctx context.Context, path string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("db: empty database path")
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	if err := pingBusy(ctx, sdb); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	return sdb, nil
}

// busyWait is how long open keeps trying a connection that SQLite answers
// SQLITE_BUSY, as long as busy_timeout would have waited.
const busyWait = 5 * time.Second

// pingBusy pings sdb, trying again while SQLite answers SQLITE_BUSY: a new
// file switching to WAL (the journal_mode pragma of every new connection)
// gets SQLITE_BUSY at once, without the busy handler, while another
// process or connection opens it at the same moment. Other errors, and
// the last busy one after busyWait, are returned.
func pingBusy(ctx context.Context, sdb *sql.DB) error {
	deadline := time.Now().Add(busyWait)
	for {
		err := sdb.PingContext(ctx)
		var se *sqlite.Error
		if err == nil || !errors.As(err, &se) || se.Code()&0xff != 5 /* SQLITE_BUSY */ || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond): // polling interval
		}
	}
}

// Migration is one embedded schema change.
type Migration struct {
	Version string // file name without .sql, e.g. "0001_oauth"
	SQL     string
}

// Migrations returns the embedded migrations in the order they are applied
// (by file name). It returns an error if the embedded files cannot be read.
func Migrations() ([]Migration, error) {
	return readMigrations(migrationFiles, "migrations")
}

func readMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("db: read migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("db: read migration %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: strings.TrimSuffix(e.Name(), ".sql"), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Migrate applies, in order, each embedded migration not yet recorded in
// the schema_migrations table; each runs in its own transaction together
// with its schema_migrations row, so it is applied exactly once even when
// two processes start together. It returns the first failure, naming the
// migration.
func Migrate(ctx context.Context, sdb *sql.DB) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	return apply(ctx, sdb, ms)
}

func apply(ctx context.Context, sdb *sql.DB, ms []Migration) error {
	if _, err := sdb.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    TEXT PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("db: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := applyOne(ctx, sdb, m); err != nil {
			return err
		}
	}
	return nil
}

func applyOne(ctx context.Context, sdb *sql.DB, m Migration) error {
	tx, err := sdb.BeginTx(ctx, nil) // BEGIN IMMEDIATE: serialises concurrent migrators
	if err != nil {
		return fmt.Errorf("db: migration %s: begin: %w", m.Version, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
		return fmt.Errorf("db: migration %s: %w", m.Version, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("db: migration %s: %w", m.Version, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		m.Version, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("db: migration %s: record: %w", m.Version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: migration %s: commit: %w", m.Version, err)
	}
	return nil
}
