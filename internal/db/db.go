// Package db opens skydm's database, SQLite (modernc.org/sqlite, WAL,
// busy_timeout, BEGIN IMMEDIATE transactions, foreign keys) by default or
// Postgres (pgx) for several instances, and applies the embedded, ordered
// schema migrations in migrations/<dialect>/NNNN_name.sql.
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

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// Open opens the database dsn names and applies every pending migration:
// for a postgres:// (or postgresql://) URL the Postgres database there
// (see DialectOfDSN), otherwise the SQLite file at that path, created if
// needed, with WAL journaling, busy_timeout=5000, _txlock=immediate and
// foreign keys on. It returns an error, and closes the database, when it
// cannot be opened or a migration fails.
func Open(ctx context.Context, dsn string) (*sql.DB, error) {
	var (
		sdb *sql.DB
		err error
	)
	if DialectOfDSN(dsn) == Postgres {
		sdb, err = openPostgres(ctx, dsn)
	} else {
		sdb, err = open(ctx, dsn)
	}
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

// Migrations returns d's embedded migrations in the order they are applied
// (by file name). It returns an error if the embedded files cannot be read.
func Migrations(d Dialect) ([]Migration, error) {
	return readMigrations(migrationFiles, "migrations/"+d.String())
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
	ms, err := Migrations(DialectOf(sdb))
	if err != nil {
		return err
	}
	return apply(ctx, sdb, ms)
}

func apply(ctx context.Context, sdb *sql.DB, ms []Migration) error {
	d := DialectOf(sdb)
	if err := inMigrationTx(ctx, sdb, d, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, d.schemaMigrationsDDL())
		return err
	}); err != nil {
		return fmt.Errorf("db: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := inMigrationTx(ctx, sdb, d, func(tx *sql.Tx) error { return applyOne(ctx, tx, m) }); err != nil {
			return fmt.Errorf("db: migration %s: %w", m.Version, err)
		}
	}
	return nil
}

// inMigrationTx runs fn in a transaction that concurrent migrators (other
// processes starting together) take in turn, and commits it.
func inMigrationTx(ctx context.Context, sdb *sql.DB, d Dialect, fn func(*sql.Tx) error) error {
	tx, err := sdb.BeginTx(ctx, nil) // SQLite: BEGIN IMMEDIATE, the lock itself
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if lock := d.migrationLock(); lock != "" {
		if _, err := tx.ExecContext(ctx, lock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// applyOne applies m in tx unless schema_migrations records it.
func applyOne(ctx context.Context, tx *sql.Tx, m Migration) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		m.Version, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	return nil
}
