package projects

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// BenchmarkEnqueue measures what filing costs skydm once the record exists
// in the requester's repo: composing the DM and the one SQLite transaction
// that writes the change request row and its outbox row. It reports the
// median besides the mean.
func BenchmarkEnqueue(b *testing.B) {
	f := newFixture(b, nil)
	p := f.project(b, bob, "Widgets")
	ctx := context.Background()
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		rkey := syntax.RecordKey(fmt.Sprintf("3k%011d", i))
		c := ChangeRequest{
			URI: syntax.ATURI(fmt.Sprintf("at://%s/dev.skydm.changeRequest/%s", alice, rkey)), CID: "bafyreiabc",
			RequesterDID: alice, Rkey: rkey, ProjectURI: p.URI, ProjectCID: p.CID, ProjectName: p.Name, OwnerDID: bob,
			Title: "Make widgets faster", Body: "Details of the change.", CreatedAt: t0, IndexedAt: t0, State: "open",
		}
		d, err := f.svc.delivery(c, "")
		if err != nil {
			b.Fatal(err)
		}
		if err := f.svc.store.insertChangeRequest(ctx, c, d); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds()), "median-ns/op")
}

// BenchmarkFileChangeRequest is the whole FileChangeRequest path,
// including the createRecord round trip to an in-process fake PDS over
// loopback HTTP.
func BenchmarkFileChangeRequest(b *testing.B) {
	f := newFixture(b, nil)
	p := f.project(b, bob, "Widgets")
	ctx := context.Background()
	client := f.pds.client()
	durations := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := f.svc.FileChangeRequest(ctx, client, alice, p.URI.String(), ChangeRequestInput{Title: "T", Body: "B"}); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds()), "median-ns/op")
}
