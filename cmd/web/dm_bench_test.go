package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/atid"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/oauth"
	"github.com/skydm/skydm/internal/testenv"
)

// BenchmarkE2EConvoPageVsDirectCalls measures, against the sandbox, the
// median time of GET /convos/{id} (a conversation of 60 messages, a page
// of 50) and the median time of the same two upstream calls the handler
// makes (getConvo and getMessages, in parallel) made directly with the
// same OAuth session (the app's own, read from its database). It reports
// both and their ratio (target: at most 1.15). Page and direct calls
// alternate so drift in the sandbox affects both alike.
func BenchmarkE2EConvoPageVsDirectCalls(b *testing.B) {
	n := testenv.Network(b)
	alice, bob := testenv.NewAccount(b, n), testenv.NewAccount(b, n)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dmFollowEachOther(b, n, alice, bob)
	ac := chatproxy.New(testenv.PasswordSession(b, n, alice), n.ChatServiceRef)
	bc := chatproxy.New(testenv.PasswordSession(b, n, bob), n.ChatServiceRef)
	convo, err := ac.GetConvoForMembers(ctx, []string{bob.DID})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 60 {
		c := ac
		if i%2 == 1 {
			c = bc
		}
		if _, err := c.SendMessage(ctx, convo.Id, chatproxy.MessageInput{Text: fmt.Sprintf("Message %d: shall we meet tomorrow at the usual place? https://example.com/%d", i, i)}); err != nil {
			b.Fatal(err)
		}
	}

	env := sandboxEnv(b, n)
	base, _ := startRun(b, nil, env)
	client := newBrowserClient(b, base)
	signInHTTP(b, client, alice)
	page := base + "/convos/" + convo.Id

	// The app's own session of alice, through the app's database.
	sqlDB, err := db.Open(ctx, env["SKYDM_DB"])
	if err != nil {
		b.Fatal(err)
	}
	defer sqlDB.Close()
	key, _ := base64.StdEncoding.DecodeString(env["SKYDM_ENCRYPTION_KEY"])
	svc, err := oauth.New(oauth.Config{
		PublicURL: base, Sandbox: true, EncryptionKey: key,
		Directory: atid.NewSandbox(n.PLCURL, n.PDSURL, n.HTTPClient()),
		Logger:    slog.New(slog.DiscardHandler),
	}, sqlDB)
	if err != nil {
		b.Fatal(err)
	}
	sess, err := svc.SessionForDID(ctx, syntax.DID(alice.DID))
	if err != nil {
		b.Fatal(err)
	}
	direct := chatproxy.New(sess.APIClient(), n.ChatServiceRef)

	getPage := func() {
		req, _ := http.NewRequest(http.MethodGet, page, nil)
		res, err := client.c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d", page, res.StatusCode)
		}
	}
	calls := func() {
		var wg sync.WaitGroup
		var msgErr error
		wg.Go(func() { _, msgErr = direct.GetMessages(ctx, convo.Id, "", 50) })
		_, err := direct.GetConvo(ctx, convo.Id)
		wg.Wait()
		if err != nil || msgErr != nil {
			b.Fatal(err, msgErr)
		}
	}
	for range 5 { // warm up: connections, the first view's updateRead
		getPage()
		calls()
	}
	var pageTimes, callTimes []time.Duration
	for b.Loop() {
		t0 := time.Now()
		getPage()
		t1 := time.Now()
		calls()
		pageTimes, callTimes = append(pageTimes, t1.Sub(t0)), append(callTimes, time.Since(t1))
	}
	med := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	p, c := med(pageTimes), med(callTimes)
	b.ReportMetric(float64(p.Microseconds())/1e3, "page-ms")
	b.ReportMetric(float64(c.Microseconds())/1e3, "direct-ms")
	b.ReportMetric(float64(p)/float64(c), "ratio")
}
