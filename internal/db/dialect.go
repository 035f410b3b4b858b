package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect is one of the SQL databases skydm stores its state in. Every
// difference between them that the stores meet is answered here: the
// placeholders (stores write SQLite's ? and ?N; on Postgres the driver
// rebinds them to $N, see Rebind), the migration set (migrations/<dialect>,
// same numbering, same tables: BLOB/BYTEA, INTEGER/BIGINT, rowid/identity),
// how concurrent migrators are serialised (BEGIN IMMEDIATE, or an advisory
// lock), the one table function the outbox lease uses (JSONValues), and
// its row locks (SkipLocked).
// Row locking needs no store changes: a single UPDATE … WHERE on a row
// another transaction holds waits and re-checks its WHERE on both.
type Dialect uint8

const (
	// SQLite is the embedded default: a file path.
	SQLite Dialect = iota
	// Postgres is chosen by a postgres:// or postgresql:// URL.
	Postgres
)

// String is the dialect's name, which is also its migrations directory.
func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// DialectOfDSN is the dialect a database setting names: Postgres for a
// postgres:// or postgresql:// URL, SQLite (a file path) otherwise.
func DialectOfDSN(dsn string) Dialect {
	l := strings.ToLower(dsn)
	if strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://") {
		return Postgres
	}
	return SQLite
}

// DialectOf is the dialect of a database Open returned.
func DialectOf(sdb *sql.DB) Dialect {
	if _, ok := sdb.Driver().(pgDriver); ok {
		return Postgres
	}
	return SQLite
}

// JSONValues is a subquery yielding the elements of the JSON array bound
// to param (e.g. "?3") as rows of sqlType ("TEXT" or "BIGINT"), for
// `x IN (…)` with a list of any length in one parameter.
func (d Dialect) JSONValues(param, sqlType string) string {
	if d == Postgres {
		return fmt.Sprintf("SELECT v::%s FROM json_array_elements_text(%s::json) AS v", sqlType, param)
	}
	return "SELECT value FROM json_each(" + param + ")"
}

// SkipLocked ends a SELECT whose rows a statement is about to take: on
// Postgres it locks them and skips rows another transaction has locked
// (" FOR UPDATE SKIP LOCKED"), so that instances leasing at once take
// different rows without waiting; SQLite has one writer and needs nothing.
func (d Dialect) SkipLocked() string {
	if d == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// schemaMigrationsDDL creates the table recording applied migrations.
func (d Dialect) schemaMigrationsDDL() string {
	typ, strict := "INTEGER", " STRICT"
	if d == Postgres {
		typ, strict = "BIGINT", ""
	}
	return `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    TEXT PRIMARY KEY,
		applied_at ` + typ + ` NOT NULL
	)` + strict
}

// migrationLock is the statement that, first in a transaction, makes
// concurrent migrators take turns until it ends, or "" when beginning
// the transaction does that already (SQLite's BEGIN IMMEDIATE).
func (d Dialect) migrationLock() string {
	if d == Postgres {
		return `SELECT pg_advisory_xact_lock(7251000011)` // skydm's migration lock; any fixed key
	}
	return ""
}

// rebound caches Rebind's answers: the stores' queries are constants.
var rebound sync.Map // string → string

// Rebind turns a query written with SQLite's placeholders (? numbered in
// order, and ?N) into d's: unchanged for SQLite, $N for Postgres. Question
// marks inside quotes and -- comments are left alone.
func (d Dialect) Rebind(q string) string {
	if d != Postgres || !strings.Contains(q, "?") {
		return q
	}
	if r, ok := rebound.Load(q); ok {
		return r.(string)
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(q[i+1:], c)
			if j < 0 {
				j = len(q) - i - 1
			}
			b.WriteString(q[i : i+j+2])
			i += j + 1
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			b.WriteString(q[i : i+j])
			i += j - 1
		case c == '?':
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			b.WriteByte('$')
			if j > i+1 {
				b.WriteString(q[i+1 : j])
			} else {
				n++
				b.WriteString(strconv.Itoa(n))
			}
			i = j - 1
		default:
			b.WriteByte(c)
		}
	}
	r := b.String()
	rebound.Store(q, r)
	return r
}

// Retryable reports whether err is a transaction's failure that trying the
// same transaction again can cure: SQLite's SQLITE_BUSY or SQLITE_LOCKED,
// Postgres's serialization failure (40001) or deadlock (40P01).
func Retryable(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// Lock takes the lock named key for every process on the database and
// returns the function that gives it back: on Postgres a session advisory
// lock on a connection of its own (so a process that dies frees it with
// its connection), which waits while another process holds it, until ctx
// ends. On SQLite it takes nothing: its BEGIN IMMEDIATE transactions are
// the only cross-process lock there.
func Lock(ctx context.Context, sdb *sql.DB, key string) (unlock func(), err error) {
	if DialectOf(sdb) != Postgres {
		return func() {}, nil
	}
	conn, err := sdb.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtextextended(?, 0))`, key); err != nil {
		conn.Close()
		return nil, err
	}
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(uctx, `SELECT pg_advisory_unlock(hashtextextended(?, 0))`, key); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // drop the connection, and the lock with it
		}
		conn.Close()
	}, nil
}
