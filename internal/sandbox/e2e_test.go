package sandbox_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestChatThroughPDS drives chat.bsky through the real PDS's atproto-proxy to
// devchat with password sessions: a message to a mutual follow lands as a
// request with one unread message, accepting it makes it accepted, and an
// account that only accepts chats from people it follows refuses.
func TestChatThroughPDS(t *testing.T) {
	n := testenv.Network(t)
	ctx := ctxFor(t, 60*time.Second)
	t0 := time.Now()

	// Fresh accounts shaped like the demo ones: alice <-> bob follow each
	// other; carol allows incoming chats from accounts she follows (none).
	alice, bob, carol := testenv.NewAccount(t, n), testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	aliceAPI := testenv.PasswordSession(t, n, alice)
	bobAPI := testenv.PasswordSession(t, n, bob)
	carolAPI := testenv.PasswordSession(t, n, carol)
	must(t, sandbox.Follow(ctx, aliceAPI, bob.DID))
	must(t, sandbox.Follow(ctx, bobAPI, alice.DID))
	must(t, sandbox.PutRecord(ctx, carolAPI, "chat.bsky.actor.declaration", "self",
		map[string]any{"$type": "chat.bsky.actor.declaration", "allowIncoming": "following"}))
	t.Logf("3 accounts + records: %v", time.Since(t0).Round(time.Millisecond))

	aliceChat := aliceAPI.WithService(n.ChatServiceRef)
	bobChat := bobAPI.WithService(n.ChatServiceRef)

	t1 := time.Now()
	convo, err := chat.ConvoGetConvoForMembers(ctx, aliceChat, []string{bob.DID})
	if err != nil {
		t.Fatalf("alice getConvoForMembers(bob): %v", err)
	}
	msg, err := chat.ConvoSendMessage(ctx, aliceChat, &chat.ConvoSendMessage_Input{
		ConvoId: convo.Convo.Id,
		Message: &chat.ConvoDefs_MessageInput{Text: "hello bob"},
	})
	if err != nil {
		t.Fatalf("alice sendMessage: %v", err)
	}
	if msg.Text != "hello bob" || msg.Sender == nil || msg.Sender.Did != alice.DID {
		t.Fatalf("sendMessage returned %+v", msg)
	}

	list, err := chat.ConvoListConvos(ctx, bobChat, "", "", 0, "", "", "")
	if err != nil {
		t.Fatalf("bob listConvos: %v", err)
	}
	got := findConvo(list.Convos, convo.Convo.Id)
	if got == nil {
		t.Fatalf("bob's listConvos lacks convo %s: %+v", convo.Convo.Id, list.Convos)
	}
	if got.Status == nil || *got.Status != "request" || got.UnreadCount != 1 {
		t.Fatalf("bob sees status %v unread %d, want request/1", deref(got.Status), got.UnreadCount)
	}

	if _, err := chat.ConvoAcceptConvo(ctx, bobChat, &chat.ConvoAcceptConvo_Input{ConvoId: convo.Convo.Id}); err != nil {
		t.Fatalf("bob acceptConvo: %v", err)
	}
	after, err := chat.ConvoGetConvo(ctx, bobChat, convo.Convo.Id)
	if err != nil {
		t.Fatalf("bob getConvo: %v", err)
	}
	if after.Convo.Status == nil || *after.Convo.Status != "accepted" {
		t.Fatalf("after accept bob sees status %v, want accepted", deref(after.Convo.Status))
	}

	_, err = chat.ConvoGetConvoForMembers(ctx, aliceChat, []string{carol.DID})
	if name := apiErrorName(err); name != "NotFollowedBySender" {
		t.Fatalf("alice -> carol: err %v (name %q), want NotFollowedBySender", err, name)
	}
	t.Logf("chat calls through the PDS proxy: %v", time.Since(t1).Round(time.Millisecond))
}

// TestOAuthChatScope checks the PDS's scope enforcement on proxied chat calls
// with DPoP-bound OAuth tokens obtained through its own sign-in and consent.
func TestOAuthChatScope(t *testing.T) {
	n := testenv.Network(t)
	acct := testenv.NewAccount(t, n)
	tests := []struct {
		name      string
		scope     string
		wantError string // "" → success
	}{
		{"chat scope lists convos", "atproto transition:chat.bsky", ""},
		{"generic scope only gets ScopeMissingError", "atproto transition:generic", "ScopeMissingError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxFor(t, 60*time.Second)
			t0 := time.Now()
			sess := testenv.OAuthSession(t, n, acct, tt.scope)
			t.Logf("OAuth flow (PAR, sign-in, consent, token): %v", time.Since(t0).Round(time.Millisecond))
			api := sess.APIClient().WithService(n.ChatServiceRef)
			_, err := chat.ConvoListConvos(ctx, api, "", "", 0, "", "", "")
			if tt.wantError == "" {
				if err != nil {
					t.Fatalf("listConvos: %v", err)
				}
				return
			}
			var apiErr *atclient.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || apiErr.Name != tt.wantError {
				t.Fatalf("listConvos: err %v, want 403 %s", err, tt.wantError)
			}
		})
	}
}

// TestDemoAccountsSeeded checks what SeedDemo promises about alice, bob and
// carol (only on a network started here with SeedDemo, or attached to one).
func TestDemoAccountsSeeded(t *testing.T) {
	n := testenv.Network(t)
	t.Logf("shared network started (or attached) in %v", testenv.StartupTime().Round(time.Millisecond))
	ctx := ctxFor(t, 30*time.Second)
	c := atclient.NewAPIClient(n.PDSURL)
	c.Client = n.HTTPClient()
	for name, display := range map[string]string{"alice": "Alice", "bob": "Bob", "carol": "Carol"} {
		acct, ok := n.Accounts[name]
		if !ok {
			t.Fatalf("no %s in Accounts: %v", name, n.Accounts)
		}
		var rec struct {
			Value struct {
				DisplayName string `json:"displayName"`
			} `json:"value"`
		}
		err := c.Get(ctx, "com.atproto.repo.getRecord", map[string]any{"repo": acct.DID, "collection": "app.bsky.actor.profile", "rkey": "self"}, &rec)
		if err != nil || rec.Value.DisplayName != display {
			t.Errorf("%s profile: %+v, %v; want displayName %q", name, rec, err, display)
		}
		if _, err := n.Login(ctx, acct); err != nil {
			t.Errorf("%s cannot log in with the seeded password: %v", name, err)
		}
	}
	follows := func(who string) map[string]bool {
		var out struct {
			Records []struct {
				Value struct {
					Subject string `json:"subject"`
				} `json:"value"`
			} `json:"records"`
		}
		must(t, c.Get(ctx, "com.atproto.repo.listRecords", map[string]any{"repo": n.Accounts[who].DID, "collection": "app.bsky.graph.follow"}, &out))
		m := map[string]bool{}
		for _, r := range out.Records {
			m[r.Value.Subject] = true
		}
		return m
	}
	if !follows("alice")[n.Accounts["bob"].DID] || !follows("bob")[n.Accounts["alice"].DID] {
		t.Errorf("alice and bob do not follow each other")
	}
	if f := follows("carol"); len(f) != 0 {
		t.Errorf("carol follows %v, want nobody", f)
	}
	var decl struct {
		Value struct {
			AllowIncoming string `json:"allowIncoming"`
		} `json:"value"`
	}
	must(t, c.Get(ctx, "com.atproto.repo.getRecord", map[string]any{"repo": n.Accounts["carol"].DID, "collection": "chat.bsky.actor.declaration", "rkey": "self"}, &decl))
	if decl.Value.AllowIncoming != "following" {
		t.Errorf("carol allowIncoming %q, want following", decl.Value.AllowIncoming)
	}
}

func findConvo(cs []*chat.ConvoDefs_ConvoView, id string) *chat.ConvoDefs_ConvoView {
	for _, c := range cs {
		if c.Id == id {
			return c
		}
	}
	return nil
}

func apiErrorName(err error) string {
	var apiErr *atclient.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Name
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
