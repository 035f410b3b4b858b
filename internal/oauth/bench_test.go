package oauth

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/pgtest"
)

// BenchmarkDPoPRequest measures one XRPC call through the live session
// (DPoP proof signed per request, ES256) against an in-process server, next
// to the same HTTP round trip without auth and the proof signing alone.
func BenchmarkDPoPRequest(b *testing.B) {
	h := newHarness(b)
	acct := h.login()
	ctx := context.Background()
	api, err := h.svc.APIClient(ctx, acct)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("dpop-signed getSession", func(b *testing.B) {
		for b.Loop() {
			if err := api.Get(ctx, "com.atproto.server.getSession", nil, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plain round trip baseline", func(b *testing.B) {
		c := h.svc.httpClient
		for b.Loop() {
			resp, err := c.Get(h.fake.origin + "/.well-known/oauth-protected-resource")
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	b.Run("proof signing only", func(b *testing.B) {
		sess, _ := h.svc.Session(ctx, acct.DID, acct.SessionID)
		for b.Loop() {
			if _, err := sess.NewHostDPoP(http.MethodGet, h.fake.origin+"/xrpc/com.atproto.server.getSession"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStoreSave runs on both stores (pgtest.EachB): a pair to compare.
func BenchmarkStoreSave(b *testing.B) {
	pgtest.EachB(b, func(b *testing.B) {
		s, _ := newTestStore(b, &fakeClock{now: time.Now()})
		sess := sampleSession(b, "s")
		ctx := context.Background()
		i := 0
		for b.Loop() {
			sess.SessionID = fmt.Sprintf("s%d", i%1000) // mix of inserts and upserts
			i++
			if err := s.SaveSession(ctx, sess); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "saves/s")
	})
}

// BenchmarkStoreGet runs on both stores (pgtest.EachB): a pair to compare.
func BenchmarkStoreGet(b *testing.B) {
	pgtest.EachB(b, func(b *testing.B) {
		s, _ := newTestStore(b, &fakeClock{now: time.Now()})
		sess := sampleSession(b, "s")
		ctx := context.Background()
		for i := range 1000 {
			sess.SessionID = fmt.Sprintf("s%d", i)
			s.SaveSession(ctx, sess)
		}
		i := 0
		for b.Loop() {
			if _, err := s.GetSession(ctx, sess.AccountDID, fmt.Sprintf("s%d", i%1000)); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
	})
}

func BenchmarkStoreGetParallel(b *testing.B) {
	s, h := newTestStore(b, &fakeClock{now: time.Now()})
	h.db.SetMaxOpenConns(8)
	sess := sampleSession(b, "s")
	ctx := context.Background()
	for i := range 1000 {
		sess.SessionID = fmt.Sprintf("s%d", i)
		s.SaveSession(ctx, sess)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.GetSession(ctx, sess.AccountDID, fmt.Sprintf("s%d", i%1000)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}
