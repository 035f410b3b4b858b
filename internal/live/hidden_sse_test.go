package live

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// pageCounts returns alice's connected pages and how many are visible.
func pageCounts(h *Hub) (pages, visible int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u := h.users[alice]; u != nil {
		return len(u.subs), u.visible
	}
	return 0, 0
}

func TestSSEHiddenQueryMarksTheSubscription(t *testing.T) {
	src := newFakeSource()
	h, srv := startSSE(t, src, Config{BackgroundInterval: time.Hour}, nil)
	connect(t, srv, alice, "?convo=c1&hidden=1", "")
	waitFor(t, "a hidden page", func() bool { p, v := pageCounts(h); return p == 1 && v == 0 })
	connect(t, srv, alice, "?convo=c1&hidden=0", "")
	connect(t, srv, alice, "", "")
	waitFor(t, "two visible pages and the hidden one", func() bool { p, v := pageCounts(h); return p == 3 && v == 2 })

	for _, q := range []string{"?hidden=yes", "?hidden=true", "?hidden=1&hidden=1", "?hidden="} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/events"+q, nil)
		req.Header.Set("X-Test-DID", string(alice))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("/events%s: status %d, want 400", q, resp.StatusCode)
		}
	}
}

// A new EventSource sends no Last-Event-ID, so the page passes the last id
// it saw as ?lastEventId=; the header, sent by the browser's own reconnects
// of that EventSource, is newer and wins.
func TestSSELastEventIDQueryResumesLikeTheHeader(t *testing.T) {
	src := newFakeSource()
	_, srv := startSSE(t, src, Config{}, nil)
	first := connect(t, srv, alice, "", "")
	waitFor(t, "first poll", func() bool { return src.callCount(alice) >= 1 })
	var r []string
	for i := range 4 {
		r = append(r, src.message(alice, "c1", "x"))
		if ev := first.next(t); ev.ID != r[i] {
			t.Fatalf("event %d id %q, want %q", i, ev.ID, r[i])
		}
	}

	q := connect(t, srv, alice, "?hidden=1&lastEventId="+url.QueryEscape(r[1]), "")
	if got := []string{q.next(t).ID, q.next(t).ID}; got[0] != r[2] || got[1] != r[3] {
		t.Fatalf("?lastEventId=%s replayed %v, want %v", r[1], got, r[2:])
	}
	both := connect(t, srv, alice, "?lastEventId="+url.QueryEscape(r[0]), r[2])
	if ev := both.next(t); ev.ID != r[3] {
		t.Fatalf("header %s and query %s: first event %q, want %q (the header wins)", r[2], r[0], ev.ID, r[3])
	}

	// Validated like the header: an id that cannot be an SSE id is no
	// position at all (the stream starts at the head, no replay, no resync).
	bad := connect(t, srv, alice, "?lastEventId="+url.QueryEscape(r[0]+"\n"+strings.Repeat("x", 300)), "")
	more := src.message(alice, "c1", "y")
	if ev := bad.next(t); ev.ID != more || ev.Name != "message" {
		t.Fatalf("unsafe ?lastEventId: first event %+v, want the new message %q", ev, more)
	}
}

// A stream opened without a position learns it as soon as the poller has
// one, in a "position" event, so the page can resume from it even when no
// event has come yet.
func TestSSEStreamWithoutLastEventIDIsToldItsPosition(t *testing.T) {
	src := newFakeSource()
	head := src.message(alice, "c1", "history")
	_, srv := startSSE(t, src, Config{}, nil)
	c := connect(t, srv, alice, "?convo=c1", "")
	if ev := c.nextAny(t); ev.Name != "position" || ev.ID != head || ev.Data != "{}" {
		t.Fatalf("first event %+v, want position %q", ev, head)
	}
	// Told once; a page that resumes is not told again.
	rev := src.message(alice, "c1", "new")
	if ev := c.nextAny(t); ev.ID != rev || ev.Name != "message" {
		t.Fatalf("then %+v, want message %q", ev, rev)
	}
	resumed := connect(t, srv, alice, "?convo=c1", head)
	if ev := resumed.nextAny(t); ev.ID != rev || ev.Name != "message" {
		t.Fatalf("resumed stream's first event %+v, want message %q", ev, rev)
	}
}
