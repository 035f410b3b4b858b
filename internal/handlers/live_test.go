package handlers

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/handlers/dm"
	"github.com/skydm/skydm/internal/live"
)

// scriptedLog is a live.LogSource: the first call gives a cursor, later
// calls give the queued entries once.
type scriptedLog struct {
	mu    sync.Mutex
	queue []*chat.ConvoGetLog_Output_Logs_Elem
	calls int
}

func (l *scriptedLog) push(e *chat.ConvoGetLog_Output_Logs_Elem) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.queue = append(l.queue, e)
}

func (l *scriptedLog) GetLog(ctx context.Context, user live.User, cursor string) (*chat.ConvoGetLog_Output, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	out := &chat.ConvoGetLog_Output{Cursor: ptr("c" + string(rune('0'+l.calls)))}
	if cursor != "" {
		out.Logs, l.queue = l.queue, nil
	}
	return out, nil
}

func createMessage(convoID, rev string, m *chat.ConvoDefs_MessageView, related ...*chat.ActorDefs_ProfileViewBasic) *chat.ConvoGetLog_Output_Logs_Elem {
	return &chat.ConvoGetLog_Output_Logs_Elem{ConvoDefs_LogCreateMessage: &chat.ConvoDefs_LogCreateMessage{
		ConvoId: convoID, Rev: rev, RelatedProfiles: related,
		Message: &chat.ConvoDefs_LogCreateMessage_Message{ConvoDefs_MessageView: m}}}
}

// sseEvent is one event read from a stream.
type sseEvent struct{ id, name, data string }

// readEvents reads the stream into a channel until it ends.
func readEvents(t *testing.T, res *http.Response) <-chan sseEvent {
	out := make(chan sseEvent, 16)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data += line[6:]
			}
		}
	}()
	return out
}

func waitEvent(t *testing.T, events <-chan sseEvent, name string) sseEvent {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("stream ended before a %q event", name)
			}
			if ev.name == name {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %q event within 5s", name)
		}
	}
}

// startHub runs a live.Hub over a scriptedLog, polling every 20 ms, until
// the test ends.
func startHub(t *testing.T) (*live.Hub, *scriptedLog) {
	src := &scriptedLog{}
	hub := live.New(live.Config{Source: src, ConvoInterval: 20 * time.Millisecond, InboxInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	hubDone := make(chan error, 1)
	go func() { hubDone <- hub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-hubDone
	})
	return hub, src
}

func TestLiveUpdatesReachConversationAndInboxPagesAsRenderedHTML(t *testing.T) {
	hub, src := startHub(t)
	a := newDMApp(t, func(d *DMs) { d.Hub = hub })
	bob := profile(dmBob, "bob.test", "Bob <b>")
	a.chat.addConvo("c1", bob, "accepted", 1, 0)
	a.chat.addConvo("c2", profile(dmCarol, "carol.test", "Carol"), "accepted", 1, 0)

	convoPage := a.openEvents("/events?convo=c1")
	inbox := a.openEvents("/events")
	// Wait until the poller has taken its starting cursor.
	deadline := time.Now().Add(5 * time.Second)
	for {
		src.mu.Lock()
		n := src.calls
		src.mu.Unlock()
		if n > 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	msg := &chat.ConvoDefs_MessageView{Id: "m9", Rev: "r09", Text: "live <script>x</script>", SentAt: a.chat.now.Format(time.RFC3339),
		Sender: &chat.ConvoDefs_MessageViewSender{Did: dmBob}}
	a.chat.mu.Lock()
	a.chat.convos[0].LastMessage = &chat.ConvoDefs_ConvoView_LastMessage{ConvoDefs_MessageView: msg}
	a.chat.convos[0].UnreadCount = 1
	a.chat.mu.Unlock()
	src.push(createMessage("c1", "r09", msg, bob))

	ev := waitEvent(t, convoPage, "message")
	var m dm.LiveMessage
	if err := json.Unmarshal([]byte(ev.data), &m); err != nil || m.ConvoID != "c1" || m.ID != "m9" || ev.id != "r09" {
		t.Fatalf("message event %+v (%v)", ev, err)
	}
	doc, _ := goquery.NewDocumentFromReader(strings.NewReader(m.HTML))
	if li := doc.Find("li#m-m9"); li.Length() != 1 || text(li.Find(`[data-testid="message-text"]`)) != "live <script>x</script>" || doc.Find("script").Length() != 0 {
		t.Errorf("message html %q", m.HTML)
	}
	if got := text(doc.Find(".sender")); got != "Bob <b>" {
		t.Errorf("sender %q", got)
	}

	ev = waitEvent(t, inbox, "convo")
	var c dm.LiveConvo
	if err := json.Unmarshal([]byte(ev.data), &c); err != nil || c.ID != "c1" || c.UnreadTotal == nil {
		t.Fatalf("convo event %q (%v)", ev.data, err)
	}
	row, _ := goquery.NewDocumentFromReader(strings.NewReader(c.HTML))
	if r := row.Find(`[data-testid="convo-row"]`); r.AttrOr("data-id", "") != "c1" || text(r.Find(`[data-testid="convo-preview"]`)) != "live <script>x</script>" {
		t.Errorf("row html %q", c.HTML)
	}

	// The stream (a GET) marks nothing read: the page does, by POST, when it is seen.
	if n := a.chat.count("UpdateRead"); n != 0 {
		t.Errorf("%d updateRead calls from the live stream, want 0", n)
	}

	// A message in another conversation updates the totals only.
	other := &chat.ConvoDefs_MessageView{Id: "m10", Rev: "r10", Text: "hi", SentAt: a.chat.now.Format(time.RFC3339),
		Sender: &chat.ConvoDefs_MessageViewSender{Did: dmCarol}}
	src.push(createMessage("c2", "r10", other))
	ev = waitEvent(t, convoPage, "unread")
	var u dm.LiveUnread
	if err := json.Unmarshal([]byte(ev.data), &u); err != nil || !strings.Contains(ev.data, `"total":`) {
		t.Fatalf("unread event %q", ev.data)
	}
}

func TestLiveEventsNeedASessionWithDMAccess(t *testing.T) {
	hub := live.New(live.Config{Source: &scriptedLog{}})
	a := newDMApp(t, func(d *DMs) { d.Hub = hub })
	a.signIn(dmAlice, "alice.test", false)
	if res := a.get("/events"); res.status != http.StatusUnauthorized {
		t.Errorf("without DM access: %d, want 401", res.status)
	}
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
