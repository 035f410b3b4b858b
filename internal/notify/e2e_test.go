package notify_test

import (
	"context"
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
	"github.com/skydm/skydm/internal/devchat"
	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/projects"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// sessionSender is the notify.Sender of these tests: chatproxy clients over
// the sandbox's password sessions, one per signed-in account. (The web app
// adapts internal/oauth the same way.)
type sessionSender struct {
	ref     string
	mu      sync.Mutex
	clients map[syntax.DID]*chatproxy.Client
}

func (s *sessionSender) signIn(did syntax.DID, api *atclient.APIClient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[did] = chatproxy.New(api, s.ref)
}

func (s *sessionSender) Chat(_ context.Context, did syntax.DID) (notify.Chat, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.clients[did]
	if c == nil {
		return nil, &apperr.Error{Code: apperr.Unauthorized, Reason: chatproxy.ReasonSessionExpired, Message: "not signed in"}
	}
	return c, nil
}

// TestDeliveryThroughTheSandbox files change requests with real records in
// the sandbox PDS and delivers their DMs through the real PDS to devchat:
// the happy path, the follow gate, 503 ×3, 429 with a reset 2 s ahead, and a
// hung sendMessage.
func TestDeliveryThroughTheSandbox(t *testing.T) {
	n := testenv.Network(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	sdb, err := db.Open(ctx, filepath.Join(t.TempDir(), "skydm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()

	owner, requester, gated := testenv.NewAccount(t, n), testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	ownerAPI := testenv.PasswordSession(t, n, owner)
	requesterAPI := testenv.PasswordSession(t, n, requester)
	gatedAPI := testenv.PasswordSession(t, n, gated)
	ownerDID, requesterDID, gatedDID := syntax.DID(owner.DID), syntax.DID(requester.DID), syntax.DID(gated.DID)
	// devchat gates new convos as Bluesky does by default: the owner must
	// follow the requester. The gated account follows nobody.
	if err := sandbox.Follow(ctx, ownerAPI, requester.DID); err != nil {
		t.Fatal(err)
	}

	senders := &sessionSender{ref: n.ChatServiceRef, clients: map[syntax.DID]*chatproxy.Client{}}
	senders.signIn(requesterDID, requesterAPI)
	w, err := notify.New(notify.Config{
		DB: sdb, Sender: senders,
		Directory:    atid.NewSandbox(n.PLCURL, n.PDSURL, n.HTTPClient()),
		PollInterval: 20 * time.Millisecond,
		BaseBackoff:  100 * time.Millisecond,
		CallTimeout:  3 * time.Second,
		// The PDS drops devchat's Retry-After / ratelimit-reset from
		// proxied errors, so a 429 waits RateLimitWait.
		RateLimitWait: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := projects.NewService(projects.Config{DB: sdb, BaseURL: "http://127.0.0.1:8080", OnEnqueue: w.Wake})
	if err != nil {
		t.Fatal(err)
	}
	start(t, w)

	waitState := func(t *testing.T, id int64, want notify.State) notify.Status {
		t.Helper()
		var s notify.Status
		waitFor(t, string(want), func() bool {
			var err error
			s, err = notify.StatusByID(ctx, sdb, id)
			if err != nil {
				t.Fatal(err)
			}
			return s.State == want
		})
		return s
	}
	file := func(t *testing.T, p projects.Project, title string) projects.ChangeRequest {
		t.Helper()
		c, err := svc.FileChangeRequest(ctx, requesterAPI, requesterDID, p.URI.String(),
			projects.ChangeRequestInput{Title: title, Body: "Details of " + title})
		if err != nil {
			t.Fatalf("FileChangeRequest: %v", err)
		}
		if _, ok := c.Notification(); !ok {
			t.Fatal("no DM queued")
		}
		return c
	}
	// dms returns the owner's view of the DMs carrying marker.
	dms := func(t *testing.T, api *atclient.APIClient, convoID, marker string) []chatproxy.MessageItem {
		t.Helper()
		page, err := chatproxy.New(api, n.ChatServiceRef).GetMessages(ctx, convoID, "", 100)
		if err != nil {
			t.Fatalf("getMessages as the owner: %v", err)
		}
		var out []chatproxy.MessageItem
		for _, m := range page.Messages {
			if m.Message != nil && strings.Contains(m.Message.Text, marker) {
				out = append(out, m)
			}
		}
		return out
	}

	bobProject, err := svc.CreateProject(ctx, ownerAPI, ownerDID, projects.ProjectInput{Name: "Widgets"})
	if err != nil {
		t.Fatalf("CreateProject: %v", err)
	}

	t.Run("the owner receives one DM with a link to the change request", func(t *testing.T) {
		c := file(t, bobProject, "Faster widgets")
		n0, _ := c.Notification()
		s := waitState(t, n0.ID, notify.StateSent)
		got := dms(t, ownerAPI, s.ConvoID, notify.DeliveryMarker(c.URI, ownerDID))
		if len(got) != 1 {
			t.Fatalf("the owner sees %d DMs for the change request, want 1", len(got))
		}
		m := got[0].Message
		link := "http://127.0.0.1:8080" + c.Path()
		if got[0].SenderDID() != requester.DID || !strings.Contains(m.Text, "“Widgets”") || !strings.Contains(m.Text, "“Faster widgets”") {
			t.Errorf("DM %q from %s", m.Text, got[0].SenderDID())
		}
		if len(m.Facets) != 1 || m.Facets[0].Features[0].RichtextFacet_Link == nil ||
			m.Facets[0].Features[0].RichtextFacet_Link.Uri != link ||
			m.Text[m.Facets[0].Index.ByteStart:m.Facets[0].Index.ByteEnd] != link {
			t.Errorf("facets %+v do not link %q", m.Facets, link)
		}
	})

	t.Run("a gated owner: not delivered with the reason, delivered on retry after following", func(t *testing.T) {
		p, err := svc.CreateProject(ctx, gatedAPI, gatedDID, projects.ProjectInput{Name: "Gadgets"})
		if err != nil {
			t.Fatal(err)
		}
		c := file(t, p, "Shinier gadgets")
		n0, _ := c.Notification()
		s := waitState(t, n0.ID, notify.StateNotDelivered)
		if s.ReasonCode != chatproxy.ReasonNotFollowedBySender ||
			s.Reason != gated.Handle+" only accepts DMs from accounts they follow." ||
			s.Fix != "Ask them to follow you, or to allow DMs from everyone, then retry." {
			t.Fatalf("not delivered with %q / %q / %q", s.ReasonCode, s.Reason, s.Fix)
		}
		if err := sandbox.Follow(ctx, gatedAPI, requester.DID); err != nil {
			t.Fatal(err)
		}
		if err := w.Retry(ctx, n0.ID, gatedDID); err != nil {
			t.Fatalf("Retry by the owner: %v", err)
		}
		s = waitState(t, n0.ID, notify.StateSent)
		if got := dms(t, gatedAPI, s.ConvoID, notify.DeliveryMarker(c.URI, gatedDID)); len(got) != 1 {
			t.Fatalf("the owner sees %d DMs, want 1", len(got))
		}
	})

	t.Run("503 three times, then one DM", func(t *testing.T) {
		const send = "chat.bsky.convo.sendMessage"
		t.Cleanup(func() { n.ClearFaults(context.Background()) })
		calls0, err := n.Calls(ctx, send)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.InjectFault(ctx, devchat.Fault{Method: send, Status: 503, Count: 3}); err != nil {
			t.Fatal(err)
		}
		c := file(t, bobProject, "Sturdier widgets")
		n0, _ := c.Notification()
		s := waitState(t, n0.ID, notify.StateSent)
		calls, _ := n.Calls(ctx, send)
		if calls-calls0 != 4 || s.Attempts != 4 {
			t.Errorf("sendMessage calls %d, attempts %d; want 4 and 4", calls-calls0, s.Attempts)
		}
		if got := dms(t, ownerAPI, s.ConvoID, notify.DeliveryMarker(c.URI, ownerDID)); len(got) != 1 {
			t.Fatalf("the owner sees %d DMs, want exactly 1", len(got))
		}
	})

	t.Run("429 (reset 2 s ahead, which the PDS does not pass on): waits, then one DM", func(t *testing.T) {
		const send = "chat.bsky.convo.sendMessage"
		t.Cleanup(func() { n.ClearFaults(context.Background()) })
		if err := n.InjectFault(ctx, devchat.Fault{Method: send, Status: 429, Count: 1, RatelimitReset: time.Now().Add(2 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		calls0, _ := n.Calls(ctx, send)
		c := file(t, bobProject, "Quieter widgets")
		n0, _ := c.Notification()
		var limited notify.Status
		waitFor(t, "the rate-limited attempt", func() bool {
			limited, _ = notify.StatusByID(ctx, sdb, n0.ID)
			return limited.ReasonCode == chatproxy.ReasonRateLimited || limited.State == notify.StateSent
		})
		if limited.State != notify.StateQueued || limited.NextAttemptAt.Sub(limited.UpdatedAt) < 2*time.Second {
			t.Errorf("after the 429: %s, next attempt %v after the failure; want queued, ≥ 2s",
				limited.State, limited.NextAttemptAt.Sub(limited.UpdatedAt))
		}
		s := waitState(t, n0.ID, notify.StateSent)
		if s.SentAt.Before(limited.NextAttemptAt) {
			t.Errorf("sent at %v, before the next attempt was due (%v)", s.SentAt, limited.NextAttemptAt)
		}
		calls, _ := n.Calls(ctx, send)
		if calls-calls0 != 2 {
			t.Errorf("sendMessage calls = %d, want 2", calls-calls0)
		}
		if got := dms(t, ownerAPI, s.ConvoID, notify.DeliveryMarker(c.URI, ownerDID)); len(got) != 1 {
			t.Fatalf("the owner sees %d DMs, want exactly 1", len(got))
		}
	})

	t.Run("a hung sendMessage times out, is retried, and sends one DM", func(t *testing.T) {
		const send = "chat.bsky.convo.sendMessage"
		t.Cleanup(func() { n.ClearFaults(context.Background()) })
		if err := n.InjectFault(ctx, devchat.Fault{Method: send, Hang: true, Count: 1}); err != nil {
			t.Fatal(err)
		}
		c := file(t, bobProject, "Calmer widgets")
		n0, _ := c.Notification()
		s := waitState(t, n0.ID, notify.StateSent)
		if s.Attempts != 2 {
			t.Errorf("attempts = %d, want 2", s.Attempts)
		}
		if got := dms(t, ownerAPI, s.ConvoID, notify.DeliveryMarker(c.URI, ownerDID)); len(got) != 1 {
			t.Fatalf("the owner sees %d DMs, want exactly 1", len(got))
		}
	})
}
