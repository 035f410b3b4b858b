package demo_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/demo"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestSeed_demoAccountsGetHistoryReactionAndRequest runs Seed on the shared
// network's demo accounts (alice.test, bob.test, carol.test) and checks, as
// bob, what the demo shows.
func TestSeed_demoAccountsGetHistoryReactionAndRequest(t *testing.T) {
	n := testenv.Network(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := demo.Seed(ctx, n, nil); err != nil {
		t.Fatalf("Seed: %v", err)
	}
	c := demo.Cast{Alice: n.Accounts["alice"], Bob: n.Accounts["bob"], Carol: n.Accounts["carol"], Dave: n.Accounts["dave"]}
	checkSeeded(t, n, c)
	checkGroup(t, n, c)
}

// TestSeedCast_freshAccountsTwiceSeedOnce seeds fresh accounts (no follows,
// no declarations) and seeds them again: the second run adds nothing.
func TestSeedCast_freshAccountsTwiceSeedOnce(t *testing.T) {
	n := testenv.Network(t)
	c := demo.Cast{Alice: testenv.NewAccount(t, n), Bob: testenv.NewAccount(t, n), Carol: testenv.NewAccount(t, n), Dave: testenv.NewAccount(t, n)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := demo.SeedCast(ctx, n, c, nil); err != nil {
		t.Fatalf("SeedCast: %v", err)
	}
	first := checkSeeded(t, n, c)
	checkGroup(t, n, c)
	if err := demo.SeedCast(ctx, n, c, nil); err != nil {
		t.Fatalf("SeedCast again: %v", err)
	}
	if again := checkSeeded(t, n, c); again != first {
		t.Errorf("second run changed the alice↔bob history from %d to %d messages", first, again)
	}
	checkGroup(t, n, c) // still one group, one request
}

func TestSeed_withoutDemoAccountsSaysSo(t *testing.T) {
	n := &sandbox.Network{Accounts: map[string]sandbox.Account{}}
	err := demo.Seed(context.Background(), n, nil)
	if err == nil || !strings.Contains(err.Error(), "account (start it with SeedDemo)") {
		t.Fatalf("Seed on a network without demo accounts: got %v, want an error naming the missing account", err)
	}
}

// checkSeeded asserts, as bob, the accepted alice convo with its link and
// mention facets and bob's reaction, carol's pending request, and bob's
// declaration. It returns the number of messages in the alice convo.
func checkSeeded(t *testing.T, n *sandbox.Network, c demo.Cast) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bobAPI := testenv.PasswordSession(t, n, c.Bob)
	bob := chatproxy.New(bobAPI, n.ChatServiceRef)

	accepted, err := bob.ListConvos(ctx, chatproxy.ListConvosParams{Status: "accepted", Limit: 100})
	if err != nil {
		t.Fatalf("bob listConvos accepted: %v", err)
	}
	withAlice := findConvo(accepted.Convos, c.Alice.DID)
	if withAlice == nil {
		t.Fatalf("bob's accepted convos have none with alice (%s): %d convos", c.Alice.DID, len(accepted.Convos))
	}
	if st := deref(withAlice.Status); st != "accepted" {
		t.Errorf("alice convo status for bob = %q, want accepted", st)
	}

	page, err := bob.GetMessages(ctx, withAlice.Id, "", 100)
	if err != nil {
		t.Fatalf("bob getMessages: %v", err)
	}
	var msgs []*chat.ConvoDefs_MessageView
	for _, it := range page.Messages {
		if it.Message != nil {
			msgs = append(msgs, it.Message)
		}
	}
	if len(msgs) < 6 || len(msgs) > 10 {
		t.Errorf("alice↔bob has %d messages, want 6–10", len(msgs))
	}
	var fromAlice, fromBob, links, mentions, hearts int
	for _, m := range msgs {
		switch m.Sender.Did {
		case c.Alice.DID:
			fromAlice++
		case c.Bob.DID:
			fromBob++
		}
		for _, f := range m.Facets {
			if f.Index == nil || f.Index.ByteStart < 0 || f.Index.ByteStart > f.Index.ByteEnd || f.Index.ByteEnd > int64(len(m.Text)) {
				t.Errorf("facet with a bad range in %q: %+v", m.Text, f.Index)
				continue
			}
			covered := m.Text[f.Index.ByteStart:f.Index.ByteEnd]
			for _, feat := range f.Features {
				switch {
				case feat.RichtextFacet_Link != nil:
					if feat.RichtextFacet_Link.Uri == demo.LinkURL && covered == demo.LinkURL {
						links++
					} else {
						t.Errorf("link facet %q over %q, want %q over the same text", feat.RichtextFacet_Link.Uri, covered, demo.LinkURL)
					}
				case feat.RichtextFacet_Mention != nil:
					if feat.RichtextFacet_Mention.Did == c.Bob.DID && covered == "@"+c.Bob.Handle {
						mentions++
					} else {
						t.Errorf("mention facet of %s over %q, want bob %s over %q", feat.RichtextFacet_Mention.Did, covered, c.Bob.DID, "@"+c.Bob.Handle)
					}
				}
			}
		}
		for _, r := range m.Reactions {
			if r.Value == demo.Reaction && r.Sender != nil && r.Sender.Did == c.Bob.DID && m.Sender.Did == c.Alice.DID {
				hearts++
			}
		}
	}
	if fromAlice == 0 || fromBob == 0 {
		t.Errorf("messages from alice %d, from bob %d: want both ways", fromAlice, fromBob)
	}
	if links != 1 || mentions != 1 || hearts != 1 {
		t.Errorf("link facets %d, mention facets of bob %d, %s reactions from bob on alice's messages %d: want 1 each", links, mentions, demo.Reaction, hearts)
	}

	requests, err := bob.ListConvos(ctx, chatproxy.ListConvosParams{Status: "request", Limit: 100})
	if err != nil {
		t.Fatalf("bob listConvos request: %v", err)
	}
	withCarol := findConvo(requests.Convos, c.Carol.DID)
	if withCarol == nil {
		t.Fatalf("bob's requests have none from carol (%s): %d requests", c.Carol.DID, len(requests.Convos))
	}
	if st := deref(withCarol.Status); st != "request" || withCarol.UnreadCount != 1 {
		t.Errorf("carol convo for bob: status %q unread %d, want request with 1 unread", st, withCarol.UnreadCount)
	}

	var decl struct {
		Value struct {
			AllowIncoming string `json:"allowIncoming"`
		} `json:"value"`
	}
	if err := bobAPI.Get(ctx, "com.atproto.repo.getRecord", map[string]any{
		"repo": c.Bob.DID, "collection": "chat.bsky.actor.declaration", "rkey": "self",
	}, &decl); err != nil {
		t.Fatalf("reading bob's declaration: %v", err)
	}
	if decl.Value.AllowIncoming != "all" {
		t.Errorf("bob's allowIncoming = %q, want all", decl.Value.AllowIncoming)
	}
	return len(msgs)
}

// findConvo is the direct convo with did among convos.
func findConvo(convos []*chat.ConvoDefs_ConvoView, did string) *chat.ConvoDefs_ConvoView {
	for _, cv := range convos {
		if cv.Kind != nil && cv.Kind.ConvoDefs_GroupConvo != nil {
			continue
		}
		if slices.ContainsFunc(cv.Members, func(m *chat.ActorDefs_ProfileViewBasic) bool { return m.Did == did }) {
			return cv
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
