package notify_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/notify/notifytest"
)

// BenchmarkDelivery measures delivery throughput (DMs/s) of one worker
// against the in-memory chat service, with one and with ten senders, and
// with no and with 5 ms of latency per chat call. b.N DMs are queued
// first; the timer covers their delivery only.
func BenchmarkDelivery(b *testing.B) {
	for _, lat := range []time.Duration{0, 5 * time.Millisecond} {
		for _, senders := range []int{1, 10} {
			b.Run(fmt.Sprintf("senders=%d/latency=%v", senders, lat), func(b *testing.B) {
				benchDelivery(b, senders, lat)
			})
		}
	}
}

func benchDelivery(b *testing.B, senders int, lat time.Duration) {
	ctx := context.Background()
	sdb, err := db.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer sdb.Close()
	owner := syntax.DID("did:plc:owner")
	now := time.Now()
	for i := 0; i < b.N; i++ {
		s := syntax.DID(fmt.Sprintf("did:plc:sender%02d", i%senders))
		subject := syntax.ATURI(fmt.Sprintf("at://%s/dev.skydm.changeRequest/3k%08d", s, i))
		msg, err := notify.ChangeRequestMessage(notify.MessageParams{ProjectName: "Widgets", Title: fmt.Sprint("Change ", i),
			URL: fmt.Sprintf("https://skydm.example/change-requests/%s/3k%08d", s, i), SubjectURI: subject, RecipientDID: owner})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := notify.Enqueue(ctx, sdb, notify.Delivery{SubjectURI: subject, RequesterDID: s, SenderDID: s,
			RecipientDID: owner, Message: msg}, now); err != nil {
			b.Fatal(err)
		}
	}
	chat := notifytest.NewServer(nil)
	chat.Latency = lat
	w, err := notify.New(notify.Config{DB: sdb, Sender: chat.Sender(), PollInterval: time.Millisecond, Concurrency: 16})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	tick := time.NewTicker(200 * time.Microsecond)
	defer tick.Stop()

	b.ResetTimer()
	start := time.Now()
	go func() { done <- w.Run(runCtx) }()
	for chat.Calls(notifytest.MethodSend, "") < b.N {
		<-tick.C
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	var sent int
	sdb.QueryRow(`SELECT count(*) FROM outbox WHERE state = 'sent'`).Scan(&sent)
	if sent != b.N || len(chat.AllMessages()) != b.N {
		b.Fatalf("sent %d rows, %d DMs; want %d", sent, len(chat.AllMessages()), b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "DMs/s")
}
