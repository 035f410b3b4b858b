package projects

import (
	"context"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/pgtest"
)

// sessions is a projects.Sessions over the fake PDS; DIDs in gone have no
// session.
type sessions struct {
	pds  *fakePDS
	gone map[syntax.DID]bool
}

func (s *sessions) APIClientForDID(_ context.Context, did syntax.DID) (*atclient.APIClient, error) {
	if s.gone[did] {
		return nil, apperr.New(apperr.Unauthorized, "signed out")
	}
	return s.pds.client(), nil
}

// cutOff records an intent as FileChangeRequest does and stops there, as a
// process killed before its PDS write would; written puts the record in the
// repository too (killed after the write, before the commit).
func (f *fixture) cutOff(t *testing.T, p Project, title string, written bool) intent {
	t.Helper()
	in := intent{
		requester: alice, rkey: syntax.RecordKey(f.svc.tids.Next().String()), collection: f.svc.cols.ChangeRequest,
		projectURI: p.URI,
		record: ChangeRequestRecord{Type: f.svc.cols.ChangeRequest.String(), Title: title, Body: "B",
			CreatedAt: datetime(f.svc.now())},
	}
	if err := f.svc.store.insertIntent(context.Background(), in, f.svc.now()); err != nil {
		t.Fatal(err)
	}
	if written {
		f.pds.put(in.uri(), map[string]any{"$type": in.record.Type, "title": title})
	}
	return in
}

func (f *fixture) intents(t *testing.T, state string) int {
	t.Helper()
	var n int
	if err := f.db.QueryRow(`SELECT count(*) FROM change_request_intents WHERE state = ?`, state).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReconcileFinishesAWrittenRequestExactlyOnceAndDropsAnAbsentOne(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
		f := newFixture(t, func(c *Config) {
			c.Now = func() time.Time { return now }
			c.SettleTime = time.Minute
		})
		f.svc.cfg.Sessions = &sessions{pds: f.pds}
		p := f.project(t, bob, "Widgets")
		written := f.cutOff(t, p, "Written", true)
		f.cutOff(t, p, "Never written", false)

		// Twice: the second pass must not index or queue anything again.
		for range 2 {
			if _, err := f.svc.Reconcile(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if got := f.rows(t, "change_requests"); got != 1 {
			t.Fatalf("change requests indexed: %d, want 1", got)
		}
		if got := f.rows(t, "outbox"); got != 1 {
			t.Fatalf("DMs queued: %d, want 1", got)
		}
		c, err := f.svc.store.ChangeRequest(context.Background(), alice, written.rkey)
		if err != nil || c.Title != "Written" || c.CID == "" || len(c.Notifications) != 1 {
			t.Fatalf("indexed %+v, %v", c, err)
		}
		// The absent one is kept while a dead process's write might still land…
		if got := f.intents(t, intentPending); got != 1 {
			t.Fatalf("pending intents within the settle time: %d, want 1", got)
		}
		// …and dropped after.
		now = now.Add(time.Minute)
		if _, err := f.svc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got, filed := f.intents(t, intentPending), f.intents(t, intentFiled); got != 0 || filed != 1 {
			t.Fatalf("pending %d, filed %d; want 0 and 1", got, filed)
		}
		if got := f.rows(t, "change_requests"); got != 1 {
			t.Fatalf("change requests indexed: %d, want 1", got)
		}
	})
}

func TestReconcileKeepsAnIntentUntilItsRequesterSignsIn(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
		f := newFixture(t, func(c *Config) { c.Now = func() time.Time { return now } })
		ss := &sessions{pds: f.pds, gone: map[syntax.DID]bool{alice: true}}
		f.svc.cfg.Sessions = ss
		p := f.project(t, bob, "Widgets")
		f.cutOff(t, p, "Written", true)
		f.cutOff(t, p, "Never written", false)
		now = now.Add(time.Hour)
		if _, err := f.svc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := f.intents(t, intentPending); got != 2 || f.rows(t, "change_requests") != 0 {
			t.Fatalf("without a session: %d pending, %d indexed; want 2 and 0", got, f.rows(t, "change_requests"))
		}
		ss.gone = nil // alice signs in again
		if _, err := f.svc.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := f.intents(t, intentPending); got != 0 || f.rows(t, "change_requests") != 1 || f.rows(t, "outbox") != 1 {
			t.Fatalf("after sign-in: %d pending, %d indexed, %d queued; want 0, 1, 1", got, f.rows(t, "change_requests"), f.rows(t, "outbox"))
		}
	})
}

func TestFilingWritesWithTheRkeyItRecordedAndLeavesNoPendingIntent(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		f := newFixture(t, nil)
		p := f.project(t, bob, "Widgets")
		c, err := f.svc.FileChangeRequest(context.Background(), f.pds.client(), alice, p.URI.String(), ChangeRequestInput{Title: "T", Body: "B"})
		if err != nil {
			t.Fatal(err)
		}
		var rkey string
		if err := f.db.QueryRow(`SELECT rkey FROM change_request_intents WHERE state = 'filed'`).Scan(&rkey); err != nil {
			t.Fatal(err)
		}
		if rkey != c.Rkey.String() || f.pds.record(c.URI) == nil {
			t.Fatalf("intent rkey %q, filed %s", rkey, c.URI)
		}
		if _, err := syntax.ParseTID(rkey); err != nil {
			t.Errorf("rkey %q is not a TID: %v", rkey, err)
		}
		// A refused write (4xx) leaves no intent behind; an unknown outcome
		// (5xx) is deleted again and leaves none either.
		for _, st := range []int{400, 503} {
			f.pds.failNext(st)
			if _, err := f.svc.FileChangeRequest(context.Background(), f.pds.client(), alice, p.URI.String(), ChangeRequestInput{Title: "T", Body: "B"}); err == nil {
				t.Fatalf("%d: no error", st)
			}
			if got := f.intents(t, intentPending); got != 0 {
				t.Errorf("%d: %d pending intents left", st, got)
			}
		}
	})
}
