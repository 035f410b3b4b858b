package handlers

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/chatproxy"
)

// newGroupBench is a dmBench over a groupFake.
func newGroupBench(tb testing.TB) (*dmBench, *groupFake) {
	tb.Helper()
	g := &groupFake{fakeChat: newFakeChat(dmAlice), pages: map[string]*chatproxy.MessagePage{}}
	return newBench(tb, g.fakeChat, groupChats{g}, nil), g
}

// upstreamCalls is how many chat calls f has answered.
func upstreamCalls(f *fakeChat) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// benchCalls runs f as benchMedian does and reports the upstream calls
// each run made.
func benchCalls(b *testing.B, fc *fakeChat, f func()) {
	before := upstreamCalls(fc)
	runs := 0
	benchMedian(b, func() { f(); runs++ })
	b.ReportMetric(float64(upstreamCalls(fc)-before)/float64(runs), "upstream-calls/op")
}

// BenchmarkGroupConvoPage100 serves a group conversation page of 100
// messages (some of them system messages) from 50 members through the
// whole handler chain. Targets: median under 300 µs; 2 upstream calls
// (getConvo and getMessages, in parallel: loadConvo, as
// TestConvoPageFetchesConvoAndMessagesInParallel shows).
func BenchmarkGroupConvoPage100(b *testing.B) {
	d, g := newGroupBench(b)
	g.bigGroup(b, "3lbxg2cz6ok2a", 50, 100)
	rec := d.get("/convos/3lbxg2cz6ok2a")
	if body := rec.Body.String(); rec.Code != http.StatusOK || strings.Count(body, `data-testid="message"`) != 100 ||
		strings.Count(body, `class="msg-av"`) < 40 || !strings.Contains(body, "You added Member ") {
		b.Fatalf("group page: %d, %d messages, %d avatars", rec.Code, strings.Count(body, `data-testid="message"`), strings.Count(body, `class="msg-av"`))
	}
	benchCalls(b, g.fakeChat, func() { d.serve("/convos/3lbxg2cz6ok2a") })
}

// BenchmarkInboxPage50Mixed serves an inbox of 50 conversations, every
// other one a group, with the unread counts cached. Targets: median
// under 200 µs; 1 upstream call (listConvos).
func BenchmarkInboxPage50Mixed(b *testing.B) {
	d, g := newGroupBench(b)
	at := g.now.Add(-time.Hour)
	for i := 0; i < 50; i++ {
		p := profile(fmt.Sprintf("did:plc:user%020d", i), fmt.Sprintf("user%d.test", i), fmt.Sprintf("User %d", i))
		if i%3 == 0 {
			p.Avatar = ptr(fmt.Sprintf("https://cdn.bsky.app/img/avatar/plain/did:plc:user%03d/bafk@jpeg", i))
		}
		if i%2 == 0 {
			g.addConvo(fmt.Sprintf("3lbxq%03dz6ok2", i), p, "accepted", 1, i%4)
			continue
		}
		members := []any{jsonProfile(dmAlice, "alice.test", "Alice", "", "owner", "")}
		for j := 0; j < 4; j++ {
			members = append(members, jsonProfile(fmt.Sprintf("did:plc:m%03d%017d", i, j), fmt.Sprintf("m%d-%d.test", i, j), fmt.Sprintf("Member %d", j),
				"https://cdn.bsky.app/img/avatar/plain/x/bafk@jpeg", "standard", ""))
		}
		last := jsonMessage(fmt.Sprintf("3lbxm%03dz6ok", i), fmt.Sprintf("did:plc:m%03d%017d", i, 1), "See you all on Saturday at the usual place 👋🏽", at)
		if i%5 == 0 {
			last = jsonSystem(fmt.Sprintf("3lbxs%03dz6ok", i), "systemMessageDataAddMember", at,
				map[string]any{"member": ref(fmt.Sprintf("did:plc:m%03d%017d", i, 2)), "role": "standard", "addedBy": ref(dmAlice)})
		}
		g.addGroup(b, jsonGroupConvo(fmt.Sprintf("3lbxg%03dz6ok2", i), fmt.Sprintf("Group number %d", i), "accepted", "unlocked", false, 12, members, last), []any{last}, members)
	}
	rec := d.get("/")
	if body := rec.Body.String(); rec.Code != http.StatusOK || strings.Count(body, `data-testid="convo-row"`) != 50 ||
		strings.Count(body, `data-testid="group-avatar"`) != 25 {
		b.Fatalf("inbox: %d", rec.Code)
	}
	benchCalls(b, g.fakeChat, func() { d.serve("/") })
}
