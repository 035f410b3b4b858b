package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// ErrBackupExists is returned (wrapped) by Backup when the backup file
// already exists: a backup never overwrites anything.
var ErrBackupExists = errors.New("backup file already exists")

// Backup writes a consistent copy of the database at srcPath to the new file
// destPath while skydm may be running and writing. The database is more than
// its one file: in WAL mode the newest commits live in srcPath-wal until a
// checkpoint, so a plain copy of srcPath loses them. Backup uses SQLite's
// VACUUM INTO, which reads one snapshot (every transaction committed when it
// starts, WAL included) without blocking writers, into a temporary file next
// to destPath (mode 0600: it holds the encrypted tokens); it then checks the
// copy with PRAGMA integrity_check, syncs it, and links it to destPath,
// which fails rather than replace a file that appeared meanwhile.
//
// Backup neither creates nor migrates srcPath. It returns an error naming
// the path when srcPath holds no database, when destPath (or anything at
// that name) exists (wrapping ErrBackupExists), when its directory does not
// exist, or when the copy or its check fails; it then leaves no file behind.
func Backup(ctx context.Context, srcPath, destPath string) (err error) {
	if DialectOfDSN(srcPath) == Postgres {
		return errors.New("db: backup: skydm backs up SQLite files; back a Postgres database up with pg_dump")
	}
	if destPath == "" {
		return errors.New("db: backup: no backup file given")
	}
	if fi, err := os.Stat(srcPath); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("db: backup: no database at %s", srcPath)
	}
	if _, err := os.Lstat(destPath); err == nil {
		return fmt.Errorf("db: backup: %s: %w; a backup never overwrites a file, choose a new name", destPath, ErrBackupExists)
	}
	dir := filepath.Dir(destPath)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("db: backup: directory %s does not exist", dir)
	}

	// VACUUM INTO accepts an empty file: CreateTemp reserves the name with
	// mode 0600.
	tmpf, err := os.CreateTemp(dir, "."+filepath.Base(destPath)+".partial-*")
	if err != nil {
		return fmt.Errorf("db: backup: %w", err)
	}
	tmp := tmpf.Name()
	tmpf.Close()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()

	src, err := open(ctx, srcPath)
	if err != nil {
		return fmt.Errorf("db: backup: %w", err)
	}
	defer src.Close()
	if _, err := src.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return fmt.Errorf("db: backup of %s: %w", srcPath, err)
	}
	if err := checkIntegrity(ctx, tmp); err != nil {
		return fmt.Errorf("db: backup of %s: the copy failed its check: %w", srcPath, err)
	}
	// SQLite does not fsync what VACUUM INTO writes.
	if err := syncFile(tmp); err != nil {
		return fmt.Errorf("db: backup: %w", err)
	}
	if err := os.Link(tmp, destPath); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("db: backup: %s: %w; a backup never overwrites a file, choose a new name", destPath, ErrBackupExists)
		}
		return fmt.Errorf("db: backup: %w", err)
	}
	os.Remove(tmp)
	if d, err := os.Open(dir); err == nil { // make the new name durable
		d.Sync()
		d.Close()
	}
	return nil
}

// checkIntegrity opens the finished copy read-only (immutable: nothing else
// has it open, and no -wal or -shm file is made) and runs integrity_check.
func checkIntegrity(ctx context.Context, path string) error {
	sdb, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro&immutable=1")
	if err != nil {
		return err
	}
	defer sdb.Close()
	var res string
	if err := sdb.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return fmt.Errorf("integrity_check: %s", res)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Check looks at the existing database dsn names without creating or
// migrating it (skydm may be running on it): for a SQLite file PRAGMA
// quick_check, for Postgres that it answers; then how many of the embedded
// migrations it has (the rest are applied at start). It returns an error
// naming the database (Postgres: without its password) when there is no
// database there, it cannot be read, or quick_check finds damage.
func Check(ctx context.Context, dsn string) (applied, known int, err error) {
	d, path := DialectOfDSN(dsn), Redact(dsn)
	if fi, err := os.Stat(dsn); d == SQLite && (err != nil || !fi.Mode().IsRegular()) {
		return 0, 0, fmt.Errorf("db: no database at %s", path)
	}
	ms, err := Migrations(d)
	if err != nil {
		return 0, 0, err
	}
	var sdb *sql.DB
	if d == Postgres {
		sdb, err = openPostgres(ctx, dsn)
	} else {
		sdb, err = open(ctx, dsn)
	}
	if err != nil {
		return 0, 0, err
	}
	defer sdb.Close()
	if d == SQLite {
		var res string
		if err := sdb.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&res); err != nil {
			return 0, 0, fmt.Errorf("db: %s: quick_check: %w", path, err)
		}
		if res != "ok" {
			return 0, 0, fmt.Errorf("db: %s is damaged: quick_check: %s", path, res)
		}
	}
	// A database made by this or an older skydm has schema_migrations;
	// count only the versions this binary knows.
	for _, m := range ms {
		var n int
		if err := sdb.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
			return 0, 0, fmt.Errorf("db: %s is not a skydm database: %w", path, err)
		}
		applied += n
	}
	return applied, len(ms), nil
}
