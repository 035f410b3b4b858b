package live

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/budget"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// stampTransport records when each request left for the PDS: the
// counting proxy in front of the sandbox PDS, for one client (this
// instance).
type stampTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	at   []time.Time
}

func (s *stampTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.at = append(s.at, time.Now())
	s.mu.Unlock()
	return s.base.RoundTrip(req)
}

// maxIn is the most requests within any span of length w.
func (s *stampTransport) maxIn(w time.Duration) (best int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := 0
	for i := range s.at {
		for s.at[i].Sub(s.at[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// TestBudgetThroughSandbox is the shorter real run of the budget proof:
// 20 users with a conversation open poll the sandbox PDS (their password
// sessions, proxied to devchat) for 30 s through one budget of 60
// requests per 20 s (so that it binds), while alice sends bob a message
// every 2 s. Every send goes through, no 20-second span carries more than
// the limit, and the pacer stretched the 4 s interval to share what is
// left. The figures are logged.
func TestBudgetThroughSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the sandbox network")
	}
	const users = 20
	const limit, window = 60, 20 * time.Second
	n := testenv.Network(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	stamps := &stampTransport{base: http.DefaultTransport}
	b := budget.New(budget.Config{Limit: limit, Window: window})
	client := &http.Client{Transport: b.Transport(stamps), Timeout: 30 * time.Second}
	pacer := budget.NewPacer(b, 0)
	host := budget.HostOf(n.PDSURL)

	var accts []sandbox.Account
	chats := map[syntax.DID]chatAPI{}
	for range users {
		a := testenv.NewAccount(t, n)
		api := testenv.PasswordSession(t, n, a)
		accts = append(accts, a)
		chats[syntax.DID(a.DID)] = chatAPI{api: api, client: client, ref: n.ChatServiceRef}
	}
	alice, bob := chats[syntax.DID(accts[0].DID)], chats[syntax.DID(accts[1].DID)]
	if err := sandbox.Follow(ctx, alice.api, accts[1].DID); err != nil {
		t.Fatal(err)
	}
	if err := sandbox.Follow(ctx, bob.api, accts[0].DID); err != nil {
		t.Fatal(err)
	}
	convo, err := chat.ConvoGetConvoForMembers(ctx, alice.proxied(), []string{accts[1].DID})
	if err != nil {
		t.Fatalf("getConvoForMembers: %v", err)
	}
	// From here on every request goes through the budget.
	var mu sync.Mutex
	polls := map[syntax.DID]int{}
	src := LogSourceFunc(func(ctx context.Context, u User, cursor string) (*chat.ConvoGetLog_Output, error) {
		out, err := chat.ConvoGetLog(ctx, chats[u.DID].budgeted(), cursor)
		if err == nil {
			mu.Lock()
			polls[u.DID]++
			mu.Unlock()
		}
		return out, err
	})
	h := New(Config{Source: src, Pacer: pacerFunc(func(u User, base time.Duration) time.Duration {
		return pacer.Pace(u.DID.String(), base)
	})})
	runHub(t, h)
	for _, a := range accts {
		pacer.SetHost(a.DID, host)
		if _, err := h.subscribe(User{DID: syntax.DID(a.DID), SessionID: "password"}, true, false, ""); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now()
	var sendTimes []time.Duration
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for time.Since(start) < 30*time.Second {
		<-tick.C
		t0 := time.Now()
		_, err := chat.ConvoSendMessage(ctx, alice.budgeted(), &chat.ConvoSendMessage_Input{
			ConvoId: convo.Convo.Id, Message: &chat.ConvoDefs_MessageInput{Text: "budget"},
		})
		if err != nil {
			t.Fatalf("send at %s: %v", time.Since(start).Round(time.Second), err)
		}
		sendTimes = append(sendTimes, time.Since(t0))
	}
	elapsed := time.Since(start)
	if m := stamps.maxIn(window); m > limit {
		t.Errorf("%d requests reached the PDS within %s; the budget is %d", m, window, limit)
	}
	mu.Lock()
	counts := make([]int, 0, users)
	for _, c := range polls {
		counts = append(counts, c)
	}
	mu.Unlock()
	if len(counts) != users {
		t.Fatalf("%d of %d users polled", len(counts), users)
	}
	st := b.Snapshot()
	ps := pacer.Snapshot()
	if len(ps) != 1 || ps[0].Stretch <= 1 {
		t.Errorf("pacing %+v; want the 4 s interval stretched", ps)
	}
	slices.Sort(sendTimes)
	total := 0
	for _, c := range counts {
		total += c
	}
	t.Logf("%d users, %s real time, budget %d per %s: %d polls (%.1f s apart per user, stretch %.2f×), %d sends, slowest %s, max in a %s span %d; budget %+v",
		users, elapsed.Round(time.Second), limit, window, total, float64(users)*elapsed.Seconds()/float64(total), ps[0].Stretch,
		len(sendTimes), sendTimes[len(sendTimes)-1].Round(time.Millisecond), window, stamps.maxIn(window), st)
}

// chatAPI is one user's password session: unbudgeted for the set-up,
// budgeted for the run.
type chatAPI struct {
	api    *atclient.APIClient
	client *http.Client // through the budget
	ref    string
}

func (c chatAPI) proxied() *atclient.APIClient { return c.api.WithService(c.ref) }

func (c chatAPI) budgeted() *atclient.APIClient {
	p := c.api.WithService(c.ref)
	p.Client = c.client
	return p
}
