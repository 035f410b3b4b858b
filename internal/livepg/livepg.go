// Package livepg is live.Cluster on Postgres: one getLog poller per user across instances.
//
// The lease is a row (live_leases) with an expiry in the database's clock,
// renewed by its holder every Tick and taken over by another instance once
// it is past: one statement per tick renews or takes every lease an
// instance wants, over the ordinary connection pool. (An advisory lock
// would pin one connection per user, or lose every user's lock at once
// with one connection; db.Lock also waits rather than tries.) A stopping
// instance gives its leases up at once; one that dies loses them after TTL.
// The holder publishes each getLog answer's entries (live_events) and the
// cursor after them (live_leases.log_cursor) in one transaction with a
// NOTIFY on channel skydm_live; the other instances LISTEN and read the new
// entries, and the next holder continues from the published cursor.
package livepg

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/jackc/pgx/v5"

	"github.com/skydm/skydm/internal/live"
)

// channel is the NOTIFY channel; a payload is "<did> <rev>".
const channel = "skydm_live"

// Defaults of Options' zero values.
const (
	DefaultTick = time.Second
	DefaultTTL  = 5 * time.Second
	DefaultKeep = 5 * time.Minute
)

// ErrNotHolder is Publish's error when another instance holds the lease.
var ErrNotHolder = errors.New("livepg: another instance holds the lease")

// Options tune a Cluster; zero values take the Default* of the same name.
type Options struct {
	Tick   time.Duration // how often leases are renewed, taken and given up
	TTL    time.Duration // how long a lease outlives its holder's last renewal
	Keep   time.Duration // how long published entries are kept
	Logger *slog.Logger  // nil → discard
}

// Cluster is live.Cluster on one Postgres database. Create it with New.
type Cluster struct {
	db   *sql.DB
	dsn  string
	id   string // this instance's holder id
	opts Options
	log  *slog.Logger
}

var _ live.Cluster = (*Cluster)(nil)

// New returns a Cluster on sdb, migrated (db.Migrate), whose URL dsn it
// also uses for its LISTEN connection.
func New(sdb *sql.DB, dsn string, opts Options) *Cluster {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&opts.Tick, DefaultTick)
	def(&opts.TTL, DefaultTTL)
	def(&opts.Keep, DefaultKeep)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &Cluster{db: sdb, dsn: dsn, id: hex.EncodeToString(b), opts: opts, log: opts.Logger}
}

// Run renews, takes and gives up leases every Tick and listens for the
// other instances' entries until ctx is done; then it gives up every lease
// it holds, so that another instance takes over within a tick.
func (c *Cluster) Run(ctx context.Context, m live.Members) error {
	listened := make(chan struct{})
	go func() {
		defer close(listened)
		c.listen(ctx, m)
	}()
	defer func() {
		<-listened
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := c.release(rctx, nil); err != nil {
			c.log.Warn("livepg: giving up leases failed", "err", err)
		}
	}()
	t := time.NewTicker(c.opts.Tick)
	defer t.Stop()
	var (
		held      = map[syntax.DID]bool{}
		lastOK    = time.Now()
		lastPrune time.Time
	)
	for {
		now, err := c.tick(ctx, m, held)
		switch {
		case err == nil:
			lastOK = now
		case ctx.Err() != nil:
			return nil
		default:
			c.log.Warn("livepg: leases", "err", err)
			if time.Since(lastOK) > c.opts.TTL {
				clear(held) // expired by now: another instance may poll
				m.Lead(held)
			}
		}
		if time.Since(lastPrune) > c.opts.Keep/4 {
			lastPrune = time.Now()
			if _, err := c.db.ExecContext(ctx, `DELETE FROM live_events WHERE created_at < clock_timestamp() - ?1 * interval '1 millisecond'`,
				c.opts.Keep.Milliseconds()); err != nil && ctx.Err() == nil {
				c.log.Warn("livepg: pruning events", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// tick gives up the leases of users no longer wanted, renews or takes
// those of the wanted ones, and tells m which it holds (held, updated).
func (c *Cluster) tick(ctx context.Context, m live.Members, held map[syntax.DID]bool) (time.Time, error) {
	now := time.Now()
	want := m.Want()
	if want == nil {
		want = []syntax.DID{} // JSON [], not null
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		return now, err
	}
	wanted := make(map[syntax.DID]bool, len(want))
	for _, did := range want {
		wanted[did] = true
	}
	for did := range held {
		if !wanted[did] {
			if err := c.release(ctx, wantJSON); err != nil {
				return now, err
			}
			break
		}
	}
	got := map[syntax.DID]bool{}
	if len(want) > 0 {
		rows, err := c.db.QueryContext(ctx, `
			INSERT INTO live_leases (user_did, holder, expires_at)
			SELECT v, ?1, clock_timestamp() + ?2 * interval '1 millisecond'
			FROM (SELECT v::TEXT AS v FROM json_array_elements_text(?3::json) AS v) AS want
			ON CONFLICT (user_did) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at,
				log_cursor = CASE WHEN live_leases.holder = excluded.holder THEN live_leases.log_cursor END
			WHERE live_leases.holder = excluded.holder OR live_leases.expires_at < clock_timestamp()
			RETURNING user_did`, c.id, c.opts.TTL.Milliseconds(), string(wantJSON))
		if err != nil {
			return now, err
		}
		defer rows.Close()
		for rows.Next() {
			var did string
			if err := rows.Scan(&did); err != nil {
				return now, err
			}
			got[syntax.DID(did)] = true
		}
		if err := rows.Err(); err != nil {
			return now, err
		}
	}
	clear(held)
	for did := range got {
		held[did] = true
	}
	m.Lead(held)
	return now, nil
}

// release gives up this instance's leases of users not in the JSON array
// keep (nil: every lease) and their cursors: pages elsewhere have theirs,
// and new ones wait for the next holder's first answer.
func (c *Cluster) release(ctx context.Context, keep []byte) error {
	if keep == nil {
		keep = []byte("[]")
	}
	_, err := c.db.ExecContext(ctx, `
		UPDATE live_leases SET expires_at = '-infinity', log_cursor = NULL
		WHERE holder = ?1 AND user_did NOT IN (SELECT v::TEXT FROM json_array_elements_text(?2::json) AS v)`,
		c.id, string(keep))
	return err
}

// Publish records entries and cursor for did and notifies the other
// instances, in one transaction; ErrNotHolder when another instance holds
// did's lease now. It notifies when there are entries or the cursor moved
// (the first answer: followers wait for it).
func (c *Cluster) Publish(ctx context.Context, did syntax.DID, cursor string, entries []live.Entry) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var old sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT log_cursor FROM live_leases WHERE user_did = ?1 AND holder = ?2 FOR UPDATE`,
		string(did), c.id).Scan(&old)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotHolder
	} else if err != nil {
		return err
	}
	moved := !old.Valid || cursor > old.String
	if moved {
		if _, err := tx.ExecContext(ctx, `UPDATE live_leases SET log_cursor = ?3 WHERE user_did = ?1 AND holder = ?2`,
			string(did), c.id, cursor); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if _, err := tx.ExecContext(ctx, `INSERT INTO live_events (user_did, rev, payload) VALUES (?1, ?2, ?3)
			ON CONFLICT (user_did, rev) DO NOTHING`, string(did), e.Rev, string(e.JSON)); err != nil {
			return err
		}
	}
	if moved || len(entries) > 0 {
		if _, err := tx.ExecContext(ctx, `SELECT pg_notify(?1, ?2)`, channel, string(did)+" "+cursor); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Since returns did's entries published after after and the published
// cursor, or live.ErrUnpublished. The cursor is read first: entries
// published meanwhile come along, none before it is left out.
func (c *Cluster) Since(ctx context.Context, did syntax.DID, after string) ([]live.Entry, string, error) {
	var cursor sql.NullString
	err := c.db.QueryRowContext(ctx, `SELECT log_cursor FROM live_leases WHERE user_did = ?1`, string(did)).Scan(&cursor)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !cursor.Valid {
		return nil, "", live.ErrUnpublished
	} else if err != nil {
		return nil, "", err
	}
	rows, err := c.db.QueryContext(ctx, `SELECT rev, payload FROM live_events WHERE user_did = ?1 AND rev > ?2 ORDER BY rev`,
		string(did), after)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []live.Entry
	for rows.Next() {
		var e live.Entry
		var payload string
		if err := rows.Scan(&e.Rev, &payload); err != nil {
			return nil, "", err
		}
		e.JSON = []byte(payload)
		out = append(out, e)
	}
	return out, cursor.String, rows.Err()
}

// listen tells m of every NOTIFY on channel until ctx is done, over a
// connection of its own, reconnecting after a Tick when it fails; after a
// reconnect every wanted user is told (notifications may have been missed).
func (c *Cluster) listen(ctx context.Context, m live.Members) {
	for first := true; ; first = false {
		err := c.listenOnce(ctx, m, !first)
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("livepg: listening failed", "err", err)
		t := time.NewTimer(c.opts.Tick)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (c *Cluster) listenOnce(ctx context.Context, m live.Members, again bool) error {
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return err
	}
	if again {
		for _, did := range m.Want() {
			m.Published(did)
		}
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		did, _, _ := strings.Cut(n.Payload, " ")
		m.Published(syntax.DID(did))
	}
}
