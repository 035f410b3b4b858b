package main

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/projects"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// killRounds is how many times TestKilledMidFilingEveryRequestEndsFiledOnceOrAbsent
// kills the web process (SKYDM_KILL_ROUNDS overrides it, for a quick look).
const killRounds = 20

// filing is one POST …/change-requests as the requester saw it.
type filing struct {
	title   string
	outcome string // "filed" (303), "refused" (another answer), "cut" (no answer: the process died)
}

// TestKilledMidFilingEveryRequestEndsFiledOnceOrAbsent: alice files change
// requests from four goroutines at once while the web process is SIGKILLed
// at a random instant, 20 times, each time restarted on the same database.
// Afterwards every change request in alice's repository is indexed by skydm
// and bob has exactly one DM with its marker; every filing that got its
// redirect is among them; no title is in the repository twice; skydm
// indexes nothing that is not in the repository; and no intent is left
// pending.
func TestKilledMidFilingEveryRequestEndsFiledOnceOrAbsent(t *testing.T) {
	rounds := killRounds
	if v, err := strconv.Atoi(os.Getenv("SKYDM_KILL_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	n := testenv.Network(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	bob, alice := testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	bobAPI, aliceAPI := testenv.PasswordSession(t, n, bob), testenv.PasswordSession(t, n, alice)
	if err := sandbox.Follow(ctx, bobAPI, alice.DID); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "web")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := sandboxEnv(t, n)
	env["SKYDM_OUTBOX_LEASE"] = "30s"
	// Hundreds of filings and their DMs in a few minutes: at the default
	// budget (2,700 per 5 minutes, for Bluesky's PDSes) the outbox would be
	// paced past the settle deadline below. This test is about crashes; the
	// sandbox PDS has no per-IP limit, and the budget has tests of its own.
	env["SKYDM_UPSTREAM_LIMIT"] = "100000"
	web := startWeb(t, bin, env)
	env["SKYDM_ADDR"] = strings.TrimPrefix(web.base, "http://") // the loopback client id names the port
	bobB, aliceB := newBrowserClient(t, web.base), newBrowserClient(t, web.base)
	signInHTTP(t, bobB, bob)
	signInHTTP(t, aliceB, alice)
	projectPath := postRedirect(t, bobB, "/projects", url.Values{"name": {"Kill widgets"}})

	var (
		mu      sync.Mutex
		filings []filing
		logs    []string
	)
	for round := range rounds {
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					title := fmt.Sprintf("kill r%02d g%d n%03d", round, g, i)
					outcome, err := fileOnce(aliceB, projectPath, title)
					if err != nil {
						return // the process is gone: connection refused
					}
					mu.Lock()
					filings = append(filings, filing{title, outcome})
					mu.Unlock()
					if outcome == "cut" {
						return
					}
				}
			})
		}
		// Kill at a random instant: with four filers, one is almost always
		// somewhere between its intent row, its PDS write and its commit.
		time.Sleep(time.Duration(100+mrand.IntN(1400)) * time.Millisecond) // the instant of the fault, not a wait for a condition
		if err := web.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-web.done
		wg.Wait()
		logs = append(logs, web.stderr.String())
		web = startWeb(t, bin, env)
	}

	// Settle: the restarted process finishes or drops every intent (an
	// absent record is dropped once its settle time has passed) and
	// delivers every DM (a killed delivery is retried after its lease).
	cols, _ := projects.CollectionsFor("")
	sdb, err := db.Open(ctx, env["SKYDM_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	bobChat := chatproxy.New(bobAPI, n.ChatServiceRef)
	var (
		repo    map[string]syntax.ATURI // title → uri
		markers map[string]int
		problem string
	)
	defer func() {
		if t.Failed() {
			t.Logf("last problem seen: %s (%d filings so far)", problem, len(filings))
		}
	}()
	waitFor(t, "every request indexed with one DM, or absent", 5*time.Minute, func() bool {
		repo, problem = repoChangeRequests(ctx, aliceAPI, cols.ChangeRequest)
		if problem != "" {
			return false
		}
		var pending int
		if err := sdb.QueryRowContext(ctx, `SELECT count(*) FROM change_request_intents WHERE state = 'pending'`).Scan(&pending); err != nil {
			problem = err.Error()
			return false
		}
		if pending > 0 {
			problem = fmt.Sprintf("%d intents still pending", pending)
			return false
		}
		indexed := map[syntax.ATURI]bool{}
		rows, err := sdb.QueryContext(ctx, `SELECT c.uri, o.state FROM change_requests c
			LEFT JOIN outbox o ON o.subject_uri = c.uri WHERE c.requester_did = ?`, alice.DID)
		if err != nil {
			problem = err.Error()
			return false
		}
		notSent := 0
		for rows.Next() {
			var uri string
			var state *string
			rows.Scan(&uri, &state)
			indexed[syntax.ATURI(uri)] = true
			if state == nil || *state != string(notify.StateSent) {
				notSent++
			}
		}
		rows.Close()
		if notSent > 0 {
			problem = fmt.Sprintf("%d DMs not sent yet", notSent)
			return false
		}
		for title, uri := range repo {
			if !indexed[uri] {
				problem = fmt.Sprintf("%q is in the repository but not indexed", title)
				return false
			}
			delete(indexed, uri)
		}
		if len(indexed) > 0 {
			t.Fatalf("skydm indexes %d change requests that are not in the repository", len(indexed))
		}
		markers, problem = markerCounts(ctx, bobChat, alice.DID)
		return problem == ""
	})

	var cut, filed, refused, cutIndexed, cutAbsent int
	for _, f := range filings {
		uri, inRepo := repo[f.title]
		switch f.outcome {
		case "filed":
			filed++
			if !inRepo {
				t.Errorf("%q got its redirect but is not in the repository", f.title)
			}
		case "refused":
			refused++
		case "cut":
			cut++
			if inRepo {
				cutIndexed++
			} else {
				cutAbsent++
			}
		}
		if inRepo {
			m := notify.DeliveryMarker(uri, syntax.DID(bob.DID))
			if markers[m] != 1 {
				t.Errorf("%q (%s): bob has %d DMs with its marker, want exactly 1", f.title, uri, markers[m])
			}
			res, _ := aliceB.get(web.base + projects.ChangeRequestPath(syntax.DID(alice.DID), uri.RecordKey()))
			if res.StatusCode != http.StatusOK {
				t.Errorf("%q: its page answers %d", f.title, res.StatusCode)
			}
		}
	}
	if len(repo) > len(filings) {
		t.Errorf("the repository holds %d change requests for %d filings", len(repo), len(filings))
	}
	finished, dropped := 0, 0
	for _, l := range append(logs, web.stderr.String()) {
		finished += strings.Count(l, "finished a change request cut off mid-filing")
		dropped += strings.Count(l, "dropped a change request that never reached the repository")
	}
	t.Logf("%d kills, %d filings: %d filed (redirect), %d refused, %d cut by the kill → %d ended indexed with one DM, %d absent from the repository; reconciler finished %d, dropped %d; repository holds %d",
		rounds, len(filings), filed, refused, cut, cutIndexed, cutAbsent, finished, dropped, len(repo))
	if cut == 0 {
		t.Errorf("no filing was cut by the kills: the test proved nothing")
	}
}

// fileOnce posts one change request. It returns an error only when the
// request never reached the server (connection refused: the process is
// gone), "cut" when the connection broke without an answer.
func fileOnce(b *browserClient, projectPath, title string) (string, error) {
	form := url.Values{"title": {title}, "body": {"Filed while the server may die."}}
	req, _ := http.NewRequest(http.MethodPost, b.base+projectPath+"/change-requests", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := b.c.Do(req)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "", err
	case err != nil:
		return "cut", nil
	}
	res.Body.Close()
	if res.StatusCode == http.StatusSeeOther {
		return "filed", nil
	}
	return "refused", nil
}

// repoChangeRequests lists the change requests in api's repository by
// title; problem says what is wrong ("" when nothing), such as a title
// present twice.
func repoChangeRequests(ctx context.Context, api *atclient.APIClient, col syntax.NSID) (map[string]syntax.ATURI, string) {
	out := map[string]syntax.ATURI{}
	cursor := ""
	for {
		var page struct {
			Cursor  string `json:"cursor"`
			Records []struct {
				URI   string `json:"uri"`
				Value struct {
					Title string `json:"title"`
				} `json:"value"`
			} `json:"records"`
		}
		params := map[string]any{"repo": api.AccountDID.String(), "collection": col.String(), "limit": 100}
		if cursor != "" {
			params["cursor"] = cursor
		}
		if err := api.Get(ctx, "com.atproto.repo.listRecords", params, &page); err != nil {
			return nil, "listRecords: " + err.Error()
		}
		for _, r := range page.Records {
			if _, dup := out[r.Value.Title]; dup {
				return nil, fmt.Sprintf("%q is in the repository twice", r.Value.Title)
			}
			out[r.Value.Title] = syntax.ATURI(r.URI)
		}
		if page.Cursor == "" || len(page.Records) == 0 {
			return out, ""
		}
		cursor = page.Cursor
	}
}

var markerRE = regexp.MustCompile(`\(skydm #[a-z0-9]+\)`)

// markerCounts counts, over every message from sender in the reader's
// convos, each delivery marker.
func markerCounts(ctx context.Context, reader *chatproxy.Client, sender string) (map[string]int, string) {
	out := map[string]int{}
	convos, err := reader.ListConvos(ctx, chatproxy.ListConvosParams{Limit: 100})
	if err != nil {
		return nil, "listConvos: " + err.Error()
	}
	for _, c := range convos.Convos {
		cursor := ""
		for {
			page, err := reader.GetMessages(ctx, c.Id, cursor, 100)
			if err != nil {
				return nil, "getMessages: " + err.Error()
			}
			for _, m := range page.Messages {
				if m.Message != nil && m.SenderDID() == sender {
					for _, mk := range markerRE.FindAllString(m.Message.Text, -1) {
						out[mk]++
					}
				}
			}
			if page.Cursor == "" || len(page.Messages) == 0 {
				break
			}
			cursor = page.Cursor
		}
	}
	return out, ""
}
