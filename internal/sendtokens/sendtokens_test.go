package sendtokens_test

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/pgtest"
	"github.com/skydm/skydm/internal/sendtokens"
	"github.com/skydm/skydm/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	sdb, err := db.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	return sdb
}

func TestClaimFinishAndExpiry(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		ctx := context.Background()
		now := time.UnixMilli(1_000_000)
		s := sendtokens.New(open(t, pgtest.DSN(t)), func() time.Time { return now }, nil)
		exp := now.Add(time.Hour)

		if _, ok, err := s.Claim(ctx, "nonce-1\x00\xff", exp); err != nil || !ok {
			t.Fatalf("first claim: ok %v err %v", ok, err)
		}
		if prev, ok, err := s.Claim(ctx, "nonce-1\x00\xff", exp); err != nil || ok || prev.Sent {
			t.Errorf("claim while sending: ok %v prev %+v err %v, want refused, still sending", ok, prev, err)
		}
		if err := s.Finish(ctx, "nonce-1\x00\xff", "m1"); err != nil {
			t.Fatal(err)
		}
		if prev, ok, err := s.Claim(ctx, "nonce-1\x00\xff", exp); err != nil || ok || !prev.Sent || prev.MessageID != "m1" {
			t.Errorf("claim after sending: ok %v prev %+v err %v, want refused with m1", ok, prev, err)
		}
		// The nonce is bytes: one differing only past a NUL is another token.
		if _, ok, err := s.Claim(ctx, "nonce-1\x00\xfe", exp); err != nil || !ok {
			t.Errorf("another nonce: ok %v err %v", ok, err)
		}

		if _, ok, _ := s.Claim(ctx, "nonce-2", now.Add(2*time.Hour)); !ok {
			t.Fatal("claim nonce-2 refused")
		}
		if err := s.Finish(ctx, "nonce-2", ""); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.Claim(ctx, "nonce-2", now.Add(2*time.Hour)); err != nil || !ok {
			t.Errorf("a token whose send failed: ok %v err %v, want it usable again", ok, err)
		}

		now = exp // nonce-1's tokens expire; nonce-2's is an hour off
		if n, err := s.DeleteExpired(ctx); err != nil || n != 2 {
			t.Errorf("DeleteExpired: %d rows, %v; want the 2 expired", n, err)
		}
		if prev, ok, _ := s.Claim(ctx, "nonce-2", now.Add(time.Hour)); ok || prev.Sent {
			t.Errorf("nonce-2 after collecting: ok %v prev %+v, want still sending", ok, prev)
		}
	})
}

func TestConcurrentClaimsOnTwoPoolsOneWins(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		dsn := pgtest.DSN(t)
		stores := []*sendtokens.Store{sendtokens.New(open(t, dsn), nil, nil), sendtokens.New(open(t, dsn), nil, nil)}
		exp := time.Now().Add(time.Hour)
		for round := range 20 {
			nonce := string([]byte{byte(round), 'n'})
			var wins atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range 10 {
				wg.Go(func() {
					<-start
					_, ok, err := stores[i%2].Claim(context.Background(), nonce, exp)
					if err != nil {
						t.Error(err)
					}
					if ok {
						wins.Add(1)
					}
				})
			}
			close(start)
			wg.Wait()
			if n := wins.Load(); n != 1 {
				t.Fatalf("round %d: %d claims won, want 1", round, n)
			}
		}
	})
}
