package handlers

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/skydm/skydm/internal/handlers/dm"
	"github.com/skydm/skydm/internal/lex/chat"
)

// logEntry decodes one getLog entry from lexicon-shaped JSON, as the
// generated union does for the poller (an unknown $type gives an empty
// union).
func logEntry(t *testing.T, v map[string]any) *chat.ConvoGetLog_Output_Logs_Elem {
	t.Helper()
	b, _ := json.Marshal(v)
	var e chat.ConvoGetLog_Output_Logs_Elem
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return &e
}

// openEvents opens the live stream at path (/events?convo=…) as the
// signed-in browser.
func (a *dmApp) openEvents(path string) <-chan sseEvent {
	t := a.t
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.srv.URL+path, nil)
	res, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %d %q", path, res.StatusCode, res.Header.Get("Content-Type"))
	}
	return readEvents(t, res)
}

func TestLiveGroupEventsUpdateTheOpenPagesAndUnknownOnesAreSkipped(t *testing.T) {
	hub, src := startHub(t)
	a := newGroupViewApp(t, func(d *DMs) { d.Hub = hub })
	a.group.weekendPlans(t, "unlocked")
	page, inbox := a.openEvents("/events?convo=g1"), a.openEvents("/events")
	waitFor(t, "the poller's first call", func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return src.calls > 1
	})

	dave := map[string]any{"did": "did:plc:dave00000000000000000000", "handle": "dave.test", "displayName": "Dave"}
	sys := func(id, variant string, fields map[string]any) map[string]any {
		return jsonSystem(id, variant, a.chat.now, fields)
	}
	group := func(typ, rev string, msg map[string]any, related ...any) map[string]any {
		e := map[string]any{"$type": "chat.bsky.convo.defs#" + typ, "rev": rev, "convoId": "g1", "message": msg}
		if related != nil {
			e["relatedProfiles"] = related
		}
		return e
	}
	// A made-up event type first: the poller and the pages go on.
	src.push(logEntry(t, map[string]any{"$type": "chat.bsky.convo.defs#logTeleportConvo", "rev": "r10", "convoId": "g1", "where": "moon"}))
	src.push(logEntry(t, group("logAddMember", "r11", sys("s10", "systemMessageDataAddMember",
		map[string]any{"member": ref(dave["did"].(string)), "role": "standard", "addedBy": ref(dmAlice)}), dave)))
	src.push(logEntry(t, group("logEditGroup", "r12", sys("s11", "systemMessageDataEditGroup", map[string]any{"oldName": "Weekend plans", "newName": "Sunday <i>brunch</i>"}))))
	src.push(logEntry(t, group("logLockConvo", "r13", sys("s12", "systemMessageDataLockConvo", map[string]any{"lockedBy": ref(dmBob)}),
		jsonProfile(dmBob, "bob.test", "Bob", "", "", ""))))
	src.push(logEntry(t, group("logAddMember", "r14", sys("s13", "systemMessageDataFromTheFuture", nil), dave)))
	src.push(logEntry(t, map[string]any{"$type": "chat.bsky.convo.defs#logLeaveConvo", "rev": "r15", "convoId": "g1"}))

	groupEvent := func() (dm.LiveGroup, string) {
		t.Helper()
		ev := waitEvent(t, page, "group")
		var g dm.LiveGroup
		if err := json.Unmarshal([]byte(ev.data), &g); err != nil || g.ConvoID != "g1" {
			t.Fatalf("group event %q (%v)", ev.data, err)
		}
		doc, _ := goquery.NewDocumentFromReader(strings.NewReader(g.HTML))
		return g, systemLine(doc.Find(`[data-testid="message-system"]`))
	}
	if g, line := groupEvent(); line != "You added Dave" || g.ID != "s10" {
		t.Errorf("add member: %q (%+v)", line, g)
	}
	if g, line := groupEvent(); line != "The group was renamed to “Sunday <i>brunch</i>”" || g.Title != "Sunday <i>brunch</i>" || strings.Contains(g.HTML, "<i>") {
		t.Errorf("rename: %q, title %q, html %q", line, g.Title, g.HTML)
	}
	g, line := groupEvent()
	locked, _ := goquery.NewDocumentFromReader(strings.NewReader(g.Locked))
	if line != "Bob locked the group" || text(locked.Find(`[data-testid="locked-text"]`)) != "Bob locked this group. No new messages can be sent." {
		t.Errorf("lock: %q, locked line %q", line, g.Locked)
	}
	if _, line := groupEvent(); line != "Conversation updated" {
		t.Errorf("unknown variant: %q", line)
	}
	ev := waitEvent(t, page, "gone")
	if !strings.Contains(ev.data, `"convoId":"g1"`) {
		t.Errorf("gone %q", ev.data)
	}
	// The inbox refreshes the group's row for its events.
	ev = waitEvent(t, inbox, "convo")
	var c dm.LiveConvo
	if err := json.Unmarshal([]byte(ev.data), &c); err != nil || c.ID != "g1" || !strings.Contains(c.HTML, "Weekend plans") {
		t.Errorf("inbox row %q", ev.data)
	}
	// The conversation page says who was removed in its own words.
	res := a.get("/convos/g1")
	if got := res.doc.Find("[data-gone]").AttrOr("data-gone", ""); !strings.Contains(got, "removed from this group") {
		t.Errorf("data-gone %q", got)
	}
}
