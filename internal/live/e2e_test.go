package live

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestLiveMessageThroughSandbox: with alice's page open on a conversation,
// bob sends her a message through his PDS and devchat; alice's stream gets
// the message event within 6 s, with the default intervals, over a real
// getLog LogSource (alice's password session proxied through her PDS).
func TestLiveMessageThroughSandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the sandbox network")
	}
	n := testenv.Network(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	alice, bob := testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	aliceAPI, bobAPI := testenv.PasswordSession(t, n, alice), testenv.PasswordSession(t, n, bob)
	if err := sandbox.Follow(ctx, aliceAPI, bob.DID); err != nil {
		t.Fatal(err)
	}
	if err := sandbox.Follow(ctx, bobAPI, alice.DID); err != nil {
		t.Fatal(err)
	}
	bobChat := bobAPI.WithService(n.ChatServiceRef)
	convo, err := chat.ConvoGetConvoForMembers(ctx, bobChat, []string{alice.DID})
	if err != nil {
		t.Fatalf("bob getConvoForMembers: %v", err)
	}

	aliceChat := aliceAPI.WithService(n.ChatServiceRef)
	src := &countingSource{LogSource: LogSourceFunc(func(ctx context.Context, _ User, cursor string) (*chat.ConvoGetLog_Output, error) {
		return chat.ConvoGetLog(ctx, aliceChat, cursor)
	})}
	h := New(Config{Source: src})
	runHub(t, h)
	me := User{DID: syntax.DID(alice.DID), SessionID: "password"}
	srv := httptest.NewServer(h.Handler(func(*http.Request) (User, bool) { return me, true }, nil))
	t.Cleanup(srv.Close) // after the stream's own cleanup closes it

	c := connect(t, srv, "", "?convo="+convo.Convo.Id, "")
	waitFor(t, "alice's poller at the current cursor", func() bool { return src.calls.Load() >= 1 })

	t0 := time.Now()
	sent, err := chat.ConvoSendMessage(ctx, bobChat, &chat.ConvoSendMessage_Input{
		ConvoId: convo.Convo.Id,
		Message: &chat.ConvoDefs_MessageInput{Text: "hi alice, live"},
	})
	if err != nil {
		t.Fatalf("bob sendMessage: %v", err)
	}
	deadline := time.After(6 * time.Second)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.Name != "message" {
				continue
			}
			var data struct {
				ConvoID string `json:"convoId"`
				Log     struct {
					Message struct{ ID, Text string }
				}
			}
			if err := json.Unmarshal([]byte(ev.Data), &data); err != nil {
				t.Fatal(err)
			}
			if data.ConvoID != convo.Convo.Id || data.Log.Message.ID != sent.Id || data.Log.Message.Text != "hi alice, live" || ev.ID == "" {
				t.Fatalf("message event %+v", ev)
			}
			t.Logf("bob's message reached alice's page in %v (%d getLog calls)", time.Since(t0).Round(time.Millisecond), src.calls.Load())
			return
		case <-deadline:
			t.Fatalf("no message event within 6 s (%d getLog calls)", src.calls.Load())
		}
	}
}

// countingSource counts the calls made through it.
type countingSource struct {
	LogSource
	calls atomic.Int64
}

func (c *countingSource) GetLog(ctx context.Context, user User, cursor string) (*chat.ConvoGetLog_Output, error) {
	defer c.calls.Add(1)
	return c.LogSource.GetLog(ctx, user, cursor)
}
