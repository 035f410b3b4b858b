package notify_test

import (
	"context"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/notify/notifytest"
	"github.com/skydm/skydm/internal/pgtest"
)

// Two workers on one database, as two skydm instances sharing Postgres (or
// two processes on one SQLite file), deliver every row exactly once.
func TestTwoWorkersOnOneDatabaseDeliverEachRowOnce(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			e := newEnv(t, func(c *notify.Config) { c.Concurrency = 4 })
			w2, err := notify.New(e.cfg)
			if err != nil {
				t.Fatal(err)
			}
			start(t, e.w)
			start(t, w2)
			const n = 200
			var ids []int64
			for i := range n {
				sender := syntax.DID("did:plc:user" + string(rune('a'+i%10)))
				ids = append(ids, e.enqueue(sender, bob))
				w2.Wake()
			}
			for _, id := range ids {
				e.waitState(id, notify.StateSent)
			}
			e.assertSentOnce(n)
		})
	})
}

// On Postgres a lease skips the rows another instance's transaction has
// locked (FOR UPDATE SKIP LOCKED) and delivers the rest meanwhile, instead
// of waiting for that transaction. Not in a synctest bubble: a worker
// blocked on a row lock waits on the network, which would stop the
// bubble's clock, and the test would hang instead of failing.
func TestLeaseSkipsRowsAnotherInstanceHasLocked(t *testing.T) {
	pgtest.On(t, pgtest.Postgres, func(t *testing.T) {
		e := newEnv(t, nil)
		locked, free := e.enqueue(alice, bob), e.enqueue(carol, bob)
		ctx := context.Background()
		tx, err := e.cfg.DB.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		var id int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM outbox WHERE id = ? FOR UPDATE`, locked).Scan(&id); err != nil {
			t.Fatal(err)
		}
		start(t, e.w)
		e.waitState(free, notify.StateSent)
		if s := e.status(locked); s.State != notify.StateQueued {
			t.Fatalf("the locked row is %s, want queued (skipped) while locked", s.State)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		e.waitState(locked, notify.StateSent)
		if n := len(e.chat.AllMessages()); n != 2 {
			t.Fatalf("%d DMs, want 2", n)
		}
	})
}

// assertSentOnce checks that the chat service got n DMs, n sends, and no
// text twice.
func (e *env) assertSentOnce(n int) {
	e.t.Helper()
	all := e.chat.AllMessages()
	seen := map[string]bool{}
	for _, m := range all {
		if seen[m.Text] {
			e.t.Errorf("duplicate DM %q", m.Text)
		}
		seen[m.Text] = true
	}
	if len(all) != n || e.chat.Calls(notifytest.MethodSend, "") != n {
		e.t.Fatalf("DMs %d, sends %d; want %d each", len(all), e.chat.Calls(notifytest.MethodSend, ""), n)
	}
}
