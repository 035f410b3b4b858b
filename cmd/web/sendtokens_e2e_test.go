package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/skydm/skydm/internal/pgtest"
	"github.com/skydm/skydm/internal/testenv"
)

// Two instances of the program on one database (both backends) against the
// sandbox: a send form spent on one is spent on the other, counted as
// sendMessage calls at devchat and as messages in the conversation.
func TestE2ESendFormReplayedOnAnotherInstanceSendsNothing(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		n := testenv.Network(t)
		alice, bob := testenv.NewAccount(t, n), testenv.NewAccount(t, n)
		dmFollowEachOther(t, n, alice, bob)
		convo := dmConvoWith(t, n, testenv.PasswordSession(t, n, alice), bob)
		env := sandboxEnv(t, n)
		env["SKYDM_DB"] = pgtest.DSN(t)
		baseA, _ := startRun(t, nil, env)
		baseB, _ := startRun(t, nil, env)
		a := newBrowserClient(t, baseA)
		signInHTTP(t, a, alice)
		b := &browserClient{t: t, c: a.c, base: baseB} // the same browser, sent to B by the load balancer
		path := "/convos/" + convo + "/messages"
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sends := func() int {
			t.Helper()
			c, err := n.Calls(ctx, "chat.bsky.convo.sendMessage")
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		formToken := func(c *browserClient) string {
			t.Helper()
			res, page := c.get(c.base + "/convos/" + convo)
			tok := page.Find(`[data-testid="composer"] input[name="token"]`).AttrOr("value", "")
			if res.StatusCode != http.StatusOK || tok == "" {
				t.Fatalf("conversation page on %s: %d, token %q", c.base, res.StatusCode, tok)
			}
			return tok
		}
		onPage := func(text string) int {
			t.Helper()
			_, page := b.get(baseB + "/convos/" + convo)
			return page.Find(`[data-testid="messages"] li[id^="m-"]`).FilterFunction(func(_ int, li *goquery.Selection) bool {
				return strings.Contains(dmText(li), text)
			}).Length()
		}

		before := sends()
		form := url.Values{"token": {formToken(a)}, "text": {"sent through A, replayed on B"}}
		postRedirect(t, a, path, form)
		postRedirect(t, b, path, form) // a replay answers as on A: back to the conversation
		if got := sends() - before; got != 1 {
			t.Errorf("sendMessage reached devchat %d times for one form sent on A and replayed on B, want 1", got)
		}
		if got := onPage("sent through A, replayed on B"); got != 1 {
			t.Errorf("the message is in the conversation %d times, want once", got)
		}

		before = sends()
		form = url.Values{"token": {formToken(b)}, "text": {"submitted on both at once"}}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 6 {
			c := []*browserClient{a, b}[i%2]
			wg.Go(func() {
				<-start
				if res, _ := c.post(path, form); res.StatusCode != http.StatusSeeOther {
					t.Errorf("submit on %s: %d, want 303", c.base, res.StatusCode)
				}
			})
		}
		close(start)
		wg.Wait()
		if got := sends() - before; got != 1 {
			t.Errorf("sendMessage reached devchat %d times for one form submitted 6 times on two instances, want 1", got)
		}
		if got := onPage("submitted on both at once"); got != 1 {
			t.Errorf("the message is in the conversation %d times, want once", got)
		}
	})
}
