package notify_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/atid"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/projects"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// Load through the real sandbox: the PDS (records, service-auth proxying)
// and devchat, not the in-memory chat service of worker_test.go.

// loadAccount is a sandbox account with its password session.
type loadAccount struct {
	acct sandbox.Account
	did  syntax.DID
	api  *atclient.APIClient
}

func newLoadAccount(tb testing.TB, n *sandbox.Network) loadAccount {
	tb.Helper()
	a := testenv.NewAccount(tb, n)
	return loadAccount{acct: a, did: syntax.DID(a.DID), api: testenv.PasswordSession(tb, n, a)}
}

// newLoadAccounts creates k fresh accounts (testenv.NewAccount) with
// their password sessions.
func newLoadAccounts(tb testing.TB, n *sandbox.Network, k int) []loadAccount {
	tb.Helper()
	out := make([]loadAccount, k)
	for i := range out {
		out[i] = newLoadAccount(tb, n)
	}
	return out
}

// allowAll writes the account's chat declaration so that anyone may start
// a convo with it (devchat otherwise gates on the owner following).
func allowAll(tb testing.TB, a loadAccount) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	decl := map[string]any{"$type": "chat.bsky.actor.declaration", "allowIncoming": "all"}
	if err := sandbox.PutRecord(ctx, a.api, "chat.bsky.actor.declaration", "self", decl); err != nil {
		tb.Fatal(err)
	}
}

// devchatWorker returns a worker over sdb whose Sender is the password
// sessions of senders through the PDS to devchat.
func devchatWorker(tb testing.TB, n *sandbox.Network, sdb *sql.DB, senders []loadAccount) *notify.Worker {
	tb.Helper()
	s := &sessionSender{ref: n.ChatServiceRef, clients: map[syntax.DID]*chatproxy.Client{}}
	for _, a := range senders {
		s.signIn(a.did, a.api)
	}
	w, err := notify.New(notify.Config{
		DB: sdb, Sender: s,
		Directory:    atid.NewSandbox(n.PLCURL, n.PDSURL, n.HTTPClient()),
		Concurrency:  16,
		PollInterval: 20 * time.Millisecond,
		BaseBackoff:  100 * time.Millisecond,
		CallTimeout:  10 * time.Second,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return w
}

// outboxCounts returns the number of outbox rows per state.
func outboxCounts(ctx context.Context, sdb *sql.DB) (map[notify.State]int, error) {
	rows, err := sdb.QueryContext(ctx, `SELECT state, count(*) FROM outbox GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[notify.State]int{}
	for rows.Next() {
		var s string
		var c int
		if err := rows.Scan(&s, &c); err != nil {
			return nil, err
		}
		out[notify.State(s)] = c
	}
	return out, rows.Err()
}

// waitAllSent polls the outbox until want rows are sent, failing at the
// deadline or as soon as a row ends undelivered. It returns the counts.
func waitAllSent(tb testing.TB, sdb *sql.DB, want int, deadline time.Duration) map[notify.State]int {
	tb.Helper()
	end := time.Now().Add(deadline)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := outboxCounts(context.Background(), sdb)
		if err != nil {
			tb.Fatal(err)
		}
		if c[notify.StateSent] >= want {
			return c
		}
		if c[notify.StateNotDelivered]+c[notify.StateGivenUp]+c[notify.StateParkedAuth] > 0 || time.Now().After(end) {
			tb.Fatalf("outbox after %v: %v; want %d sent", deadline, c, want)
		}
		<-tick.C
	}
}

// TestSandbox200ConcurrentChangeRequests files 200 change requests at once
// (20 by each of 10 requesters) on one owner's project through
// projects.Service with real records in the sandbox PDS, while one worker
// delivers their DMs through the PDS to devchat. No caller sees an error
// (no SQLITE_BUSY escapes; a filing the PDS was too slow for is retried, as
// its message asks), and the owner's convos hold exactly 200 DMs, each with
// its own delivery marker.
func TestSandbox200ConcurrentChangeRequests(t *testing.T) {
	const requesters, perRequester = 10, 20
	const total = requesters * perRequester
	n := testenv.Network(t)
	t0 := time.Now()
	// A deadline for eventual delivery, not a speed target: on a loaded
	// machine 200 DMs through the PDS can take minutes (BenchmarkDeliveryDevchat
	// measures speed).
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	sdb, err := db.Open(ctx, filepath.Join(t.TempDir(), "skydm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()

	// Accounts are made in parallel subtests: testenv.NewAccount may fail
	// the test, which only the test's own goroutine may do.
	accts := make([]loadAccount, requesters+1)
	t.Run("accounts", func(t *testing.T) {
		for i := range accts {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				accts[i] = newLoadAccount(t, n)
			})
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	owner, reqs := accts[0], accts[1:]
	allowAll(t, owner)

	w := devchatWorker(t, n, sdb, reqs)
	svc, err := projects.NewService(projects.Config{DB: sdb, BaseURL: "http://127.0.0.1:8080", OnEnqueue: w.Wake})
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.CreateProject(ctx, owner.api, owner.did, projects.ProjectInput{Name: "Widgets"})
	if err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	start(t, w)
	setup := time.Since(t0)

	// File all 200 at once while the worker delivers.
	t1 := time.Now()
	var (
		mu      sync.Mutex
		markers = map[string]syntax.ATURI{} // delivery marker → change request
		errs    []error
		wg      sync.WaitGroup
	)
	for i, r := range reqs {
		for j := 0; j < perRequester; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				in := projects.ChangeRequestInput{Title: fmt.Sprintf("Change %d.%d", i, j), Body: "Load test"}
				c, err := svc.FileChangeRequest(ctx, r.api, r.did, p.URI.String(), in)
				// On a loaded machine the PDS can be too slow for a filing's
				// deadline. The person is told "Nothing was saved. Please try
				// again", and does: a retry must then file exactly one (the
				// counts below would show a filing saved twice).
				for try := 0; try < 3 && apperr.CodeOf(err) == apperr.Unavailable; try++ {
					c, err = svc.FileChangeRequest(ctx, r.api, r.did, p.URI.String(), in)
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, fmt.Errorf("requester %d #%d: %w", i, j, err))
					return
				}
				if _, ok := c.Notification(); !ok {
					errs = append(errs, fmt.Errorf("requester %d #%d: no DM queued", i, j))
					return
				}
				markers[notify.DeliveryMarker(c.URI, owner.did)] = c.URI
			}()
		}
	}
	wg.Wait()
	filed := time.Since(t1)
	for _, err := range errs {
		t.Errorf("FileChangeRequest: %v", err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	if len(markers) != total {
		t.Fatalf("%d distinct delivery markers, want %d", len(markers), total)
	}

	end, _ := ctx.Deadline()
	counts := waitAllSent(t, sdb, total, time.Until(end)-15*time.Second)
	delivered := time.Since(t1)
	var crs, rows int
	if err := sdb.QueryRowContext(ctx, `SELECT count(*) FROM change_requests`).Scan(&crs); err != nil {
		t.Fatal(err)
	}
	if err := sdb.QueryRowContext(ctx, `SELECT count(*) FROM outbox`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if crs != total || rows != total || counts[notify.StateSent] != total {
		t.Fatalf("change_requests %d, outbox rows %d (%v); want %d, all sent", crs, rows, counts, total)
	}

	// The owner's view: every convo the DMs went to, read to the end.
	convos := map[string]bool{}
	q, err := sdb.QueryContext(ctx, `SELECT DISTINCT convo_id FROM outbox`)
	if err != nil {
		t.Fatal(err)
	}
	for q.Next() {
		var id string
		if err := q.Scan(&id); err != nil {
			t.Fatal(err)
		}
		convos[id] = true
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if len(convos) != requesters {
		t.Errorf("DMs went to %d convos, want %d (one per requester)", len(convos), requesters)
	}
	ownerChat := chatproxy.New(owner.api, n.ChatServiceRef)
	seen := map[string]int{}
	var msgs int
	for id := range convos {
		cursor := ""
		for {
			page, err := ownerChat.GetMessages(ctx, id, cursor, 100)
			if err != nil {
				t.Fatalf("getMessages %s as the owner: %v", id, err)
			}
			for _, m := range page.Messages {
				if m.Message == nil {
					continue
				}
				msgs++
				for mk := range markers {
					if strings.Contains(m.Message.Text, mk) {
						seen[mk]++
					}
				}
			}
			if page.Cursor == "" || len(page.Messages) == 0 {
				break
			}
			cursor = page.Cursor
		}
	}
	for mk, c := range seen {
		if c != 1 {
			t.Errorf("marker %s (%s) in %d DMs, want 1", mk, markers[mk], c)
		}
	}
	if msgs != total || len(seen) != total {
		t.Fatalf("the owner sees %d DMs carrying %d distinct markers; want %d and %d", msgs, len(seen), total, total)
	}
	t.Logf("setup %v; 200 filed in %v; all sent %v after filing began (%.0f DMs/s end to end)",
		setup.Round(time.Millisecond), filed.Round(time.Millisecond), delivered.Round(time.Millisecond),
		float64(total)/delivered.Seconds())
}

// BenchmarkDeliveryDevchat measures delivery throughput (DMs/s) of one
// worker through the sandbox PDS to devchat, with one and with ten
// senders. b.N DMs are queued in a fresh database first; the timer covers
// their delivery only (until every row is sent).
func BenchmarkDeliveryDevchat(b *testing.B) {
	n := testenv.Network(b)
	for _, k := range []int{1, 10} {
		b.Run(fmt.Sprintf("senders=%d", k), func(b *testing.B) {
			benchDeliveryDevchat(b, n, k)
		})
	}
}

// devchatBenchAccounts caches, per sender count, the accounts of
// BenchmarkDeliveryDevchat across its runs (b.N = 1, then the real N).
var devchatBenchAccounts sync.Map // int → []loadAccount (owner first)

func benchDeliveryDevchat(b *testing.B, n *sandbox.Network, senders int) {
	var accts []loadAccount
	if v, ok := devchatBenchAccounts.Load(senders); ok {
		accts = v.([]loadAccount)
	} else {
		accts = newLoadAccounts(b, n, senders+1)
		allowAll(b, accts[0])
		devchatBenchAccounts.Store(senders, accts)
	}
	owner, from := accts[0], accts[1:]

	ctx := context.Background()
	sdb, err := db.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer sdb.Close()
	clock := syntax.NewTIDClock(0)
	now := time.Now()
	for i := 0; i < b.N; i++ {
		s := from[i%senders].did
		rkey := clock.Next().String()
		subject := syntax.ATURI(fmt.Sprintf("at://%s/dev.skydm.changeRequest/%s", s, rkey))
		msg, err := notify.ChangeRequestMessage(notify.MessageParams{ProjectName: "Widgets", Title: fmt.Sprint("Change ", i),
			URL: fmt.Sprintf("http://127.0.0.1:8080/change-requests/%s/%s", s, rkey), SubjectURI: subject, RecipientDID: owner.did})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := notify.Enqueue(ctx, sdb, notify.Delivery{SubjectURI: subject, RequesterDID: s, SenderDID: s,
			RecipientDID: owner.did, Message: msg}, now); err != nil {
			b.Fatal(err)
		}
	}
	w := devchatWorker(b, n, sdb, from)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)

	b.ResetTimer()
	t0 := time.Now()
	go func() { done <- w.Run(runCtx) }()
	waitAllSent(b, sdb, b.N, 2*time.Minute)
	elapsed := time.Since(t0)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "DMs/s")
}
