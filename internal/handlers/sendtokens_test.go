package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/handlers/dm"
	"github.com/skydm/skydm/internal/pgtest"
	"github.com/skydm/skydm/internal/sendtokens"
	"github.com/skydm/skydm/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// twoInstances are two apps on one database (each with its own connection
// pool and token store, the same token key) over one chat service, both
// signed in as alice: two instances behind a load balancer.
func twoInstances(t *testing.T) (a, b *dmApp, fc *fakeChat) {
	t.Helper()
	dsn := pgtest.DSN(t)
	fc = newFakeChat(dmAlice)
	fc.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 1, 0)
	instance := func() *dmApp {
		sdb, err := db.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sdb.Close() })
		return newDMApp(t, func(d *DMs) {
			d.Chats, d.Now = fakeChats{c: fc}, func() time.Time { return fc.now }
			d.TokenKey = bytes.Repeat([]byte("k"), 32)
			d.Tokens = sendtokens.New(sdb, nil, nil)
		})
	}
	return instance(), instance(), fc
}

func TestSendTokenSpentOnOneInstanceIsSpentOnAll(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		a, b, fc := twoInstances(t)

		// A form rendered by A, sent through A, then replayed on B: sent
		// once, and B answers as a replay on A would.
		form := url.Values{"token": {a.token("c1")}, "text": {"once only"}}
		j := a.postJSON("/convos/c1/messages", form)
		var first dm.SendReply
		if err := json.Unmarshal([]byte(j.body), &first); err != nil || j.status != http.StatusOK || first.ID == "" {
			t.Fatalf("send on A: %d %q (%v)", j.status, j.body, err)
		}
		if res := b.post("/convos/c1/messages", form); res.status != http.StatusSeeOther {
			t.Errorf("replay on B without JavaScript: %d, want 303 back to the conversation", res.status)
		}
		j = b.postJSON("/convos/c1/messages", form)
		var replay dm.SendReply
		if err := json.Unmarshal([]byte(j.body), &replay); err != nil || j.status != http.StatusOK ||
			replay.ID != first.ID || replay.Error != "" || replay.Token == "" {
			t.Errorf("replay on B as JSON: %d %q (%v), want the first message's id %q and a fresh token", j.status, j.body, err, first.ID)
		}
		if n := fc.count("SendMessage"); n != 1 {
			t.Fatalf("sendMessage called %d times, want 1 (sent %q)", n, fc.sentTexts())
		}

		// A form whose send failed on B may be sent again on A.
		form = url.Values{"token": {b.token("c1")}, "text": {"second try"}}
		fc.setFail("SendMessage", errFakeUnavailable)
		if res := b.post("/convos/c1/messages", form); res.status != http.StatusServiceUnavailable {
			t.Fatalf("failed send on B: %d", res.status)
		}
		fc.setFail("SendMessage", nil)
		if res := a.post("/convos/c1/messages", form); res.status != http.StatusSeeOther {
			t.Fatalf("retry on A: %d", res.status)
		}
		if got := fc.sentTexts(); len(got) != 2 || got[1] != "second try" {
			t.Fatalf("sent %q, want the retried message once", got)
		}

		// One form submitted many times at once on both instances: one
		// claim wins and sends (held upstream until the others answered);
		// the others answer without sending.
		release := make(chan struct{})
		fc.mu.Lock()
		fc.block["SendMessage"] = release
		fc.mu.Unlock()
		form = url.Values{"token": {a.token("c1")}, "text": {"clicked everywhere"}}
		const submits = 8
		start := make(chan struct{})
		results := make(chan int, submits)
		for i := range submits {
			inst := []*dmApp{a, b}[i%2]
			go func() {
				<-start
				results <- inst.post("/convos/c1/messages", form).status
			}()
		}
		close(start)
		for i := range submits - 1 {
			select {
			case st := <-results:
				if st != http.StatusSeeOther {
					t.Errorf("repeated submit %d answered %d", i+1, st)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("only %d of %d repeated submits answered while one was sending", i, submits-1)
			}
		}
		close(release)
		if st := <-results; st != http.StatusSeeOther {
			t.Errorf("the submit that sent answered %d", st)
		}
		if got := fc.sentTexts(); len(got) != 3 || got[2] != "clicked everywhere" {
			t.Fatalf("sent %q, want the last message once", got)
		}
	})
}

// brokenTokenUses is a token store whose database is down.
type brokenTokenUses struct{}

func (brokenTokenUses) Claim(context.Context, string, time.Time) (sendtokens.Use, bool, error) {
	return sendtokens.Use{}, false, errors.New("connection refused")
}
func (brokenTokenUses) Finish(context.Context, string, string) error { return nil }

func TestSendWhoseTokenCannotBeSpentSendsNothingAndKeepsTheDraft(t *testing.T) {
	a := newDMApp(t, func(d *DMs) { d.Tokens = brokenTokenUses{} })
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 1, 0)
	res := a.post("/convos/c1/messages", url.Values{"token": {a.token("c1")}, "text": {"keep me"}})
	if res.status != http.StatusServiceUnavailable || testid(res.doc, "draft").Text() != "keep me" {
		t.Errorf("status %d, draft %q: want 503 with the draft kept", res.status, testid(res.doc, "draft").Text())
	}
	if strings.Contains(res.body, "connection refused") {
		t.Errorf("the database's error reached the page")
	}
	if n := a.chat.count("SendMessage"); n != 0 {
		t.Errorf("sendMessage called %d times", n)
	}
}
