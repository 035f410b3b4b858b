package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5/stdlib"
)

// openPostgres opens the Postgres database at the URL dsn through pgx's
// database/sql driver, wrapped so that the stores' SQLite placeholders are
// rebound (Dialect.Rebind) on every query, and pings it, without migrating.
func openPostgres(ctx context.Context, dsn string) (*sql.DB, error) {
	inner, err := stdlib.GetDefaultDriver().(driver.DriverContext).OpenConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("db: open %s: %w", Redact(dsn), err)
	}
	sdb := sql.OpenDB(pgConnector{inner})
	sdb.SetMaxIdleConns(8)
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("db: open %s: %w", Redact(dsn), err)
	}
	return sdb, nil
}

// Redact is dsn as it may be shown: a path as it is, a Postgres URL
// without its password.
func Redact(dsn string) string {
	if DialectOfDSN(dsn) == SQLite {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "the Postgres URL"
	}
	return u.Redacted()
}

// pgDriver is pgx's driver with rebinding connections; DialectOf knows a
// Postgres database by it.
type pgDriver struct{}

func (pgDriver) Open(dsn string) (driver.Conn, error) {
	c, err := stdlib.GetDefaultDriver().Open(dsn)
	if err != nil {
		return nil, err
	}
	return &pgConn{c.(*stdlib.Conn)}, nil
}

type pgConnector struct{ inner driver.Connector }

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &pgConn{conn.(*stdlib.Conn)}, nil
}

func (pgConnector) Driver() driver.Driver { return pgDriver{} }

// pgConn is a pgx connection whose query methods rebind placeholders; the
// rest (transactions, pings, session reset, value checks) is pgx's own.
type pgConn struct{ *stdlib.Conn }

func (c *pgConn) Prepare(q string) (driver.Stmt, error) { return c.Conn.Prepare(Postgres.Rebind(q)) }

func (c *pgConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.Conn.PrepareContext(ctx, Postgres.Rebind(q))
}

func (c *pgConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.ExecContext(ctx, Postgres.Rebind(q), args)
}

func (c *pgConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.Conn.QueryContext(ctx, Postgres.Rebind(q), args)
}
