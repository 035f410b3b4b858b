package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/jackc/pgx/v5"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/devchat"
	"github.com/skydm/skydm/internal/metrics"
	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/pgtest"
	"github.com/skydm/skydm/internal/projects"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// listenAddrRE finds the address an instance listens on in its log (its
// stdout line names the public URL, which the instances share).
var listenAddrRE = regexp.MustCompile(`msg=listening url=\S+ addr=(\S+)`)

// buildWeb builds this command into a temporary directory and returns the
// binary's path.
func buildWeb(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "web")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cluster is several web processes on one Postgres database with the same
// secrets and the same public URL (the first one's, which names the
// loopback OAuth client all of them are), each with its own listener and
// its own metrics listener.
type cluster struct {
	procs   []*webProcess
	metrics []string // each process's metrics URL
}

// startCluster starts size web processes of bin with env (the secrets and
// the sandbox), on a new Postgres database.
func startCluster(t *testing.T, bin string, env map[string]string, size int) *cluster {
	t.Helper()
	env["SKYDM_DB"] = pgtest.URL(t)
	env["SKYDM_METRICS_ADDR"] = "127.0.0.1:0"
	c := &cluster{}
	for i := range size {
		p := startWeb(t, bin, env) // p.base is the public URL, the first's
		if i == 0 {
			env["SKYDM_PUBLIC_URL"] = p.base
		}
		var m, a []string
		waitFor(t, "the listening and metrics log lines", 10*time.Second, func() bool {
			m, a = metricsLogRE.FindStringSubmatch(p.stderr.String()), listenAddrRE.FindStringSubmatch(p.stderr.String())
			return m != nil && a != nil
		})
		p.base = "http://" + a[1] // this instance's own listener
		c.procs, c.metrics = append(c.procs, p), append(c.metrics, m[1])
	}
	return c
}

// refreshGrants is the number of refresh grants the cluster's processes
// have sent to the auth server, summed over their metrics.
func (c *cluster) refreshGrants(t *testing.T) float64 {
	t.Helper()
	var sum float64
	for _, u := range c.metrics {
		s := scrapeMetrics(t, u)
		for _, outcome := range []string{"ok", "error"} {
			sum += s[metrics.Series(metrics.FullName(metrics.NameTokenRefreshes), metrics.LabelOutcome, outcome)]
		}
	}
	return sum
}

// Three instances on one Postgres, against a PDS that issues 4-second
// access tokens: once the token of a session signed in on the first has
// expired, 50 concurrent inbox loads spread over the three cause exactly
// one refresh grant at the PDS (summed over the three instances' metrics),
// all 50 succeed, and the session goes on working on each instance (a
// replayed refresh token would have made the PDS delete it).
func TestE2EClusterRefreshesAnExpiredSessionOnce(t *testing.T) {
	testenv.Network(t) // skip/fail policy and the install
	if os.Getenv("SKYDM_SANDBOX_STATE") != "" {
		t.Skip("SKYDM_SANDBOX_STATE set: this test starts its own sandbox with short-lived tokens")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const ttl = 4 * time.Second
	n, err := sandbox.Start(ctx, sandbox.Options{AccessTokenTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	user := testenv.NewAccount(t, n)
	c := startCluster(t, buildWeb(t), sandboxEnv(t, n), 3)

	b := newBrowserClient(t, c.procs[0].base) // one cookie jar: 127.0.0.1, whatever the port
	signInHTTP(t, b, user)
	signedIn := time.Now()
	inbox := func(i int) error {
		res, doc := b.get(c.procs[i%len(c.procs)].base + "/")
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("instance %d: inbox %d: %q", i%len(c.procs), res.StatusCode,
				doc.Find(`[data-testid="error-message"]`).Text())
		}
		return nil
	}
	for i := range c.procs {
		if err := inbox(i); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.refreshGrants(t); got != 0 {
		t.Fatalf("%v refresh grants before the token expired, want 0", got)
	}
	// The token was issued at sign-in; wait out its lifetime on the clock
	// (a refresh count of 1 below shows it did expire).
	<-time.After(time.Until(signedIn.Add(ttl + time.Second)))

	const N = 50
	errs := make([]error, N)
	var wg sync.WaitGroup
	for i := range N {
		wg.Go(func() { errs[i] = inbox(i) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	for i, u := range c.metrics { // each instance took its share and met the expired token
		var calls, expired float64
		for k, v := range scrapeMetrics(t, u) {
			if strings.Contains(k, `method="chat.bsky.convo.listConvos"`) {
				calls += v
				if strings.Contains(k, `status="401"`) {
					expired += v
				}
			}
		}
		if calls < float64(N/len(c.procs)) || expired < 1 {
			t.Errorf("instance %d: %v listConvos calls, %v answered 401; want at least %d, and 1", i, calls, expired, N/len(c.procs))
		}
	}
	if got := c.refreshGrants(t); got != 1 {
		t.Fatalf("%v refresh grants for %d concurrent requests over %d instances, want exactly 1", got, N, len(c.procs))
	}
	for i := range c.procs {
		if err := inbox(i); err != nil {
			t.Fatalf("after the refresh: %v", err)
		}
	}
	t.Logf("%d concurrent inbox loads over %d instances after the token expired: all 200, %v refresh grant", N, len(c.procs), c.refreshGrants(t))
}

// Three instances on one Postgres: 200 change requests filed across them
// become 200 DMs at devchat, each exactly once, although one instance is
// SIGKILLed while devchat holds the sendMessage calls of all three open
// (the dead one's leased rows are delivered by the others once its lease
// has run out, after checking for the delivery marker).
func TestE2EClusterDeliversEachChangeRequestOnceThroughAKill(t *testing.T) {
	n := testenv.Network(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const send = "chat.bsky.convo.sendMessage"
	t.Cleanup(func() { n.ClearFaults(context.Background()) })

	bob, alice := testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	bobAPI := testenv.PasswordSession(t, n, bob)
	if err := sandbox.Follow(ctx, bobAPI, alice.DID); err != nil {
		t.Fatal(err)
	}
	env := sandboxEnv(t, n)
	env["SKYDM_OUTBOX_LEASE"] = "30s"       // the shortest lease: a dead instance's rows are retried 30 s on
	env["SKYDM_OUTBOX_CALL_TIMEOUT"] = "5s" // the survivors' hung calls give up soon
	c := startCluster(t, buildWeb(t), env, 3)
	dbURL := env["SKYDM_DB"]
	bobB, aliceB := newBrowserClient(t, c.procs[0].base), newBrowserClient(t, c.procs[0].base)
	signInHTTP(t, bobB, bob)
	signInHTTP(t, aliceB, alice)
	projectPath := postRedirect(t, bobB, "/projects", url.Values{"name": {"Widgets"}})

	// sendMessage hangs: every instance's delivery is held open at devchat.
	if err := n.InjectFault(ctx, devchat.Fault{Method: send, Hang: true}); err != nil {
		t.Fatal(err)
	}
	const N = 200
	crPaths := make([]string, N)
	errs := make([]error, N)
	var wg sync.WaitGroup
	for w := range 6 { // two filers per instance
		wg.Go(func() {
			base := c.procs[w%3].base
			for i := w; i < N; i += 6 {
				crPaths[i], errs[i] = fileChangeRequest(aliceB.c, base, projectPath, fmt.Sprintf("Change %d", i))
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("change request %d: %v", i, err)
		}
	}

	// Each instance holds a leased row inside a hung sendMessage.
	owners := func() int {
		return pgCount(ctx, dbURL, `SELECT count(DISTINCT lease_owner) FROM outbox WHERE state = 'sending'`)
	}
	waitFor(t, "all three instances to hold a row in a hung sendMessage", deliveryDeadline, func() bool {
		return owners() == 3
	})
	victim := c.procs[2]
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	killedAt := time.Now()
	if err := n.ClearFaults(ctx); err != nil {
		t.Fatal(err)
	}

	sent := func() int { return pgCount(ctx, dbURL, `SELECT count(*) FROM outbox WHERE state = 'sent'`) }
	waitFor(t, "all 200 DMs to be marked sent", 4*time.Minute, func() bool { return sent() == N })
	t.Logf("all %d sent %s after the kill (lease 30s)", N, time.Since(killedAt).Round(100*time.Millisecond))

	// At devchat: each change request's marker in exactly one DM.
	cols, _ := projects.CollectionsFor("")
	reader := chatproxy.New(bobAPI, n.ChatServiceRef)
	texts := dmTextsFrom(ctx, t, reader, alice.DID)
	for i, p := range crPaths {
		rkey := p[strings.LastIndex(p, "/")+1:]
		uri := syntax.ATURI("at://" + alice.DID + "/" + cols.ChangeRequest.String() + "/" + rkey)
		marker := notify.DeliveryMarker(uri, syntax.DID(bob.DID))
		k := 0
		for _, text := range texts {
			if strings.Contains(text, marker) {
				k++
			}
		}
		if k != 1 {
			t.Errorf("change request %d (%s): %d DMs with its marker, want exactly 1", i, rkey, k)
		}
	}
	if len(texts) != N {
		t.Errorf("bob has %d DMs from alice, want %d", len(texts), N)
	}
	calls, _ := n.Calls(ctx, send)
	t.Logf("sendMessage calls: %d (hung ones included); DMs: %d", calls, len(texts))
}

// dmTextsFrom is the text of every message sender sent in reader's
// conversations with them, all pages.
func dmTextsFrom(ctx context.Context, t *testing.T, reader *chatproxy.Client, sender string) []string {
	t.Helper()
	_, convo, err := dmsFrom(ctx, reader, sender, "")
	if err != nil || convo == "" {
		t.Fatalf("no conversation with %s: %v", sender, err)
	}
	var out []string
	for cursor := ""; ; {
		page, err := reader.GetMessages(ctx, convo, cursor, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			if m.Message != nil && m.SenderDID() == sender {
				out = append(out, m.Message.Text)
			}
		}
		if page.Cursor == "" || len(page.Messages) == 0 {
			return out
		}
		cursor = page.Cursor
	}
}

// pgCount is the number query counts in the Postgres database at dbURL,
// or -1 when it cannot be read just now.
func pgCount(ctx context.Context, dbURL, query string) int {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return -1
	}
	defer conn.Close(ctx)
	var k int
	if err := conn.QueryRow(ctx, query).Scan(&k); err != nil {
		return -1
	}
	return k
}

// fileChangeRequest posts the change-request form to the instance at base
// with c's cookies and returns the new change request's path; it is safe
// to call from goroutines other than the test's.
func fileChangeRequest(c *http.Client, base, projectPath, title string) (string, error) {
	form := url.Values{"title": {title}, "body": {"Please."}}
	req, _ := http.NewRequest(http.MethodPost, base+projectPath+"/change-requests", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := c.Do(req)
	if err != nil {
		return "", err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("POST on %s: %d, want 303", base, res.StatusCode)
	}
	return res.Header.Get("Location"), nil
}
