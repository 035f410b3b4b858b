package handlers

import (
	"net/http"
	"net/url"
	"testing"
)

// TestOpeningAConversationDoesNotMarkItRead: GET /convos/{id} (a page
// view, a prefetch, a link from another site) makes no updateRead call;
// the conversation is marked read by POST /convos/{id}/read only, up to
// the newest message the page showed (the form's "message" field).
func TestOpeningAConversationDoesNotMarkItRead(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 4, 2)
	for _, h := range []http.Header{
		{},
		{"Sec-Purpose": {"prefetch"}},
		{"Sec-Fetch-Site": {"cross-site"}, "Referer": {"https://elsewhere.example/"}},
	} {
		req, err := http.NewRequest(http.MethodGet, a.srv.URL+"/convos/c1", nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header[k] = v
		}
		if res := a.do(req); res.status != http.StatusOK {
			t.Fatalf("GET with %v: %d", h, res.status)
		}
		if n := a.chat.count("UpdateRead"); n != 0 {
			t.Fatalf("GET /convos/c1 with %v made %d updateRead calls, want 0", h, n)
		}
	}

	doc := a.get("/convos/c1").doc
	form := doc.Find(`form[action="/convos/c1/read"]`)
	mid := form.Find(`input[name="message"]`).AttrOr("value", "")
	if mid != "c1-m003" {
		t.Fatalf("the Mark read form carries message %q, want the newest shown, c1-m003", mid)
	}
	// The page script's POST: 204, no redirect.
	if res := a.postJSON("/convos/c1/read", url.Values{"message": {mid}}); res.status != http.StatusNoContent {
		t.Fatalf("script POST /convos/c1/read: %d, want 204", res.status)
	}
	// The no-JS button: back to the page with a notice.
	if res := a.post("/convos/c1/read", url.Values{"message": {mid}}); res.status != http.StatusSeeOther || res.header.Get("Location") != "/convos/c1?notice=read#notice" {
		t.Fatalf("button POST /convos/c1/read: %d %q", res.status, res.header.Get("Location"))
	}
	a.chat.mu.Lock()
	defer a.chat.mu.Unlock()
	if len(a.chat.readUpTo) != 2 || a.chat.readUpTo[0] != mid || a.chat.readUpTo[1] != mid {
		t.Fatalf("updateRead calls up to %q, want two up to %q", a.chat.readUpTo, mid)
	}
}
