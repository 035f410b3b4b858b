package handlers

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/handlers/dm"
)

func text(s *goquery.Selection) string { return strings.Join(strings.Fields(s.Text()), " ") }

func TestInboxShowsConversationsWithUnreadTotalsInTitleNavAndTabs(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 3, 2)
	a.chat.addConvo("c2", profile(dmCarol, "carol.test", ""), "accepted", 1, 0)
	a.chat.addConvo("r1", profile("did:plc:dave000000000000000000", "dave.test", "Dave"), "request", 1, 1)

	res := a.get("/")
	if res.status != http.StatusOK {
		t.Fatalf("GET /: %d", res.status)
	}
	rows := testid(res.doc, "convo-row")
	if rows.Length() != 2 {
		t.Fatalf("%d rows, want the 2 accepted conversations", rows.Length())
	}
	if got := text(rows.First().Find(`[data-testid="convo-names"]`)); got != "Bob" {
		t.Errorf("first row names %q, want Bob", got)
	}
	if got := text(rows.Eq(1).Find(`[data-testid="convo-names"]`)); got != "carol.test" {
		t.Errorf("second row names %q, want the handle carol.test (no display name)", got)
	}
	if got := text(rows.First().Find(`[data-testid="convo-preview"]`)); got != "Message 2 of c1" {
		t.Errorf("preview %q", got)
	}
	if href, _ := rows.First().Find("a").Attr("href"); !strings.HasPrefix(href, "/convos/c1") {
		t.Errorf("row links to %q", href)
	}
	if got := text(testid(res.doc, "unread-total")); !strings.HasPrefix(got, ", 2") {
		t.Errorf("inbox tab unread %q, want 2", got)
	}
	if got := text(testid(res.doc, "request-count")); got != ", 1" {
		t.Errorf("requests tab count %q, want 1", got)
	}
	if got := text(res.doc.Find("title")); got != "(2) Messages · skydm" {
		t.Errorf("title %q", got)
	}
	if nav := testid(res.doc, "nav-unread"); text(nav) != "2" || nav.AttrOr("hidden", "none") != "none" {
		t.Errorf("nav badge %q hidden=%q", text(nav), nav.AttrOr("hidden", "none"))
	}

	req := a.get("/requests")
	if rows := testid(req.doc, "convo-row"); rows.Length() != 1 || rows.AttrOr("data-status", "") != "request" {
		t.Errorf("requests tab: %d rows", rows.Length())
	}
	if got := testid(a.get("/?unread=1").doc, "convo-row").Length(); got != 1 {
		t.Errorf("unread only: %d rows, want 1", got)
	}
}

func TestInboxCostsOneUpstreamCallOnceCountsAreCached(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 1, 1)
	a.get("/")
	if n := a.chat.count("ListConvos"); n != 2 {
		t.Fatalf("first inbox: %d listConvos calls, want 2 (list + counts)", n)
	}
	for i := 0; i < 3; i++ {
		a.get("/")
	}
	if n := a.chat.count("ListConvos"); n != 5 {
		t.Fatalf("three more inboxes: %d listConvos calls in all, want 5 (one each, counts cached)", n)
	}
}

func TestInboxUnavailableIsAReadable503WithRetry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *fakeChat)
	}{
		{"upstream 503", func(f *fakeChat) { f.setFail("ListConvos", errFakeUnavailable) }},
		{"upstream hangs", func(f *fakeChat) { f.block["ListConvos"] = make(chan struct{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newDMApp(t, func(d *DMs) { d.UpstreamTimeout = 300 * time.Millisecond })
			tc.setup(a.chat)
			start := time.Now()
			res := a.get("/?unread=1")
			if res.status != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503", res.status)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s", took)
			}
			if got := text(testid(res.doc, "error-message")); !strings.Contains(got, "not answering") {
				t.Errorf("message %q", got)
			}
			if href := testid(res.doc, "error-retry").AttrOr("href", ""); href != "/?unread=1" {
				t.Errorf("retry link %q, want the page itself", href)
			}
			if strings.Contains(res.body, "chat.bsky") || strings.Contains(res.body, "context deadline") {
				t.Errorf("the page shows the cause")
			}
		})
	}
}

func TestConvoPageFetchesConvoAndMessagesInParallel(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 4, 1)
	entered := make(chan string, 8)
	release := make(chan struct{})
	a.chat.mu.Lock()
	a.chat.entered = entered
	a.chat.block["GetConvo"], a.chat.block["GetMessages"] = release, release
	a.chat.mu.Unlock()

	done := make(chan response, 1)
	go func() { done <- a.get("/convos/c1") }()
	seen := map[string]bool{}
	deadline := time.After(5 * time.Second)
	for len(seen) < 2 {
		select {
		case m := <-entered:
			seen[m] = true
		case <-deadline:
			t.Fatalf("only %v started while the other was waiting: the calls are not parallel", seen)
		}
	}
	a.chat.mu.Lock()
	a.chat.entered = nil
	a.chat.mu.Unlock()
	close(release)
	res := <-done
	if res.status != http.StatusOK {
		t.Fatalf("status %d", res.status)
	}
	msgs := testid(res.doc, "message")
	if msgs.Length() != 4 {
		t.Fatalf("%d messages", msgs.Length())
	}
	if first := text(msgs.First().Find(`[data-testid="message-text"]`)); first != "Message 0 of c1" {
		t.Errorf("first message %q, want the oldest first", first)
	}
	_, own1 := msgs.Eq(1).Attr("data-own")
	_, own2 := msgs.Eq(2).Attr("data-own")
	if own1 || !own2 {
		t.Errorf("own marks: bob's message %v, alice's %v", own1, own2)
	}
	if got := text(testid(res.doc, "convo-title")); got != "Bob" {
		t.Errorf("title %q", got)
	}
	if n := a.chat.count("GetConvo") + a.chat.count("GetMessages") + a.chat.count("ListConvos") + a.chat.count("UpdateRead"); n != 2 {
		t.Errorf("%d upstream calls for the page, want 2", n)
	}
}

func TestSendRedirectsBackWithFacetsDetected(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "request", 1, 1)
	tok := a.token("c1")
	res := a.post("/convos/c1/messages", url.Values{"token": {tok}, "text": {"hi @bob.test\r\nsee https://example.com/x."}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/convos/c1#latest" {
		t.Fatalf("status %d location %q", res.status, res.header.Get("Location"))
	}
	a.chat.mu.Lock()
	sent := a.chat.sent
	a.chat.mu.Unlock()
	if len(sent) != 1 {
		t.Fatalf("%d sends", len(sent))
	}
	if sent[0].Text != "hi @bob.test\nsee https://example.com/x." {
		t.Errorf("sent %q (CRLF must become LF)", sent[0].Text)
	}
	var mention, link bool
	for _, f := range sent[0].Facets {
		for _, feat := range f.Features {
			if feat.RichtextFacet_Mention != nil && feat.RichtextFacet_Mention.Did == dmBob {
				mention = sent[0].Text[f.Index.ByteStart:f.Index.ByteEnd] == "@bob.test"
			}
			if feat.RichtextFacet_Link != nil && feat.RichtextFacet_Link.Uri == "https://example.com/x" {
				link = true
			}
		}
	}
	if !mention || !link {
		t.Errorf("facets: mention %v link %v", mention, link)
	}
	page := a.get("/convos/c1")
	if testid(page.doc, "request-banner").Length() != 0 {
		t.Errorf("replying did not take the conversation out of requests")
	}
	if got := testid(page.doc, "mention").AttrOr("href", ""); got != "https://bsky.app/profile/"+dmBob {
		t.Errorf("mention links to %q", got)
	}
}

func TestSendRateLimitedKeepsDraftAndSaysWhenToRetry(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 2, 0)
	a.chat.setFail("SendMessage", &apperr.Error{Code: apperr.RateLimited, Reason: chatproxy.ReasonRateLimited,
		Message: "Too many requests to the chat service. Please wait a moment and try again.", RetryAt: a.chat.now.Add(42 * time.Second)})
	draft := "are you there? <b>bold</b>"
	res := a.post("/convos/c1/messages", url.Values{"token": {a.token("c1")}, "text": {draft}})
	if res.status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", res.status)
	}
	if got := testid(res.doc, "draft").Text(); got != draft {
		t.Errorf("draft %q, want it kept", got)
	}
	msg := text(res.doc.Find(`[data-testid="composer"] [data-testid="error"]`))
	if !strings.Contains(msg, "try again in 42 seconds (at 15:00:42)") {
		t.Errorf("error %q does not say when to retry", msg)
	}
	if res.header.Get("Retry-After") != "42" {
		t.Errorf("Retry-After %q", res.header.Get("Retry-After"))
	}
	if testid(res.doc, "message").Length() != 2 {
		t.Errorf("the conversation is not shown around the composer")
	}

	j := a.postJSON("/convos/c1/messages", url.Values{"token": {a.token("c1")}, "text": {draft}})
	var reply dm.SendReply
	if err := json.Unmarshal([]byte(j.body), &reply); err != nil || j.status != http.StatusTooManyRequests {
		t.Fatalf("JSON: %d %q (%v)", j.status, j.body, err)
	}
	if !strings.Contains(reply.Error, "42 seconds") || reply.Token == "" {
		t.Errorf("JSON reply %+v", reply)
	}
}

func TestDoubleSubmitOfOneFormSendsOnce(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 1, 0)

	t.Run("one after the other", func(t *testing.T) {
		tok := a.token("c1")
		form := url.Values{"token": {tok}, "text": {"once"}}
		for i := 0; i < 2; i++ {
			if res := a.post("/convos/c1/messages", form); res.status != http.StatusSeeOther {
				t.Fatalf("submit %d: %d", i+1, res.status)
			}
		}
		if got := a.chat.sentTexts(); len(got) != 1 {
			t.Fatalf("sent %q, want once", got)
		}
	})
	t.Run("at the same time", func(t *testing.T) {
		release := make(chan struct{})
		a.chat.mu.Lock()
		a.chat.block["SendMessage"] = release
		a.chat.mu.Unlock()
		form := url.Values{"token": {a.token("c1")}, "text": {"twice clicked"}}
		results := make(chan int, 2)
		for range 2 {
			go func() { results <- a.post("/convos/c1/messages", form).status }()
		}
		// One submit is sending (held upstream); the other must come back
		// without waiting for it and without sending.
		select {
		case st := <-results:
			if st != http.StatusSeeOther {
				t.Errorf("the repeated submit answered %d", st)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the repeated submit waited for the first one")
		}
		close(release)
		if st := <-results; st != http.StatusSeeOther {
			t.Errorf("the first submit answered %d", st)
		}
		if got := a.chat.sentTexts(); len(got) != 2 || got[1] != "twice clicked" {
			t.Fatalf("sent %q, want the second message once", got)
		}
	})
	t.Run("a failed send may be retried with the same form", func(t *testing.T) {
		a.chat.mu.Lock()
		delete(a.chat.block, "SendMessage")
		a.chat.mu.Unlock()
		form := url.Values{"token": {a.token("c1")}, "text": {"retry me"}}
		a.chat.setFail("SendMessage", errFakeUnavailable)
		if res := a.post("/convos/c1/messages", form); res.status != http.StatusServiceUnavailable || testid(res.doc, "draft").Text() != "retry me" {
			t.Fatalf("failed send: %d, draft %q", res.status, testid(res.doc, "draft").Text())
		}
		a.chat.setFail("SendMessage", nil)
		if res := a.post("/convos/c1/messages", form); res.status != http.StatusSeeOther {
			t.Fatalf("retry: %d", res.status)
		}
		if got := a.chat.sentTexts(); got[len(got)-1] != "retry me" {
			t.Errorf("sent %q", got)
		}
	})
}

func TestSendWhoseAnswerWasLostIsNotSentTwice(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 2, 0)
	a.chat.mu.Lock()
	a.chat.lostAnswer = errFakeUnavailable // stored upstream, then a 5xx/timeout
	a.chat.mu.Unlock()
	res := a.post("/convos/c1/messages", url.Values{"token": {a.token("c1")}, "text": {"did this go?"}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("status %d, want 303: the message was stored, so the send succeeded", res.status)
	}
	j := a.postJSON("/convos/c1/messages", url.Values{"token": {a.token("c1")}, "text": {"and this?"}})
	var reply dm.SendReply
	if err := json.Unmarshal([]byte(j.body), &reply); err != nil || j.status != http.StatusOK || reply.ID == "" || reply.Error != "" {
		t.Fatalf("JSON: %d %q (%v), want the stored message", j.status, j.body, err)
	}
	if got := a.chat.sentTexts(); len(got) != 2 {
		t.Fatalf("sent %q, want each message once", got)
	}

	// A send that really failed, a minute later, still keeps the draft
	// and says so: the earlier message with the same text is not this one.
	a.chat.mu.Lock()
	a.chat.lostAnswer = nil
	a.chat.now = a.chat.now.Add(time.Minute)
	a.chat.mu.Unlock()
	a.chat.setFail("SendMessage", errFakeUnavailable)
	res = a.post("/convos/c1/messages", url.Values{"token": {a.token("c1")}, "text": {"and this?"}})
	if res.status != http.StatusServiceUnavailable || testid(res.doc, "draft").Text() != "and this?" {
		t.Fatalf("failed send: %d, draft %q, want 503 with the draft kept",
			res.status, testid(res.doc, "draft").Text())
	}
}

func TestSendRefusesForeignOrForgedTokensKeepingTheDraft(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 1, 0)
	a.chat.addConvo("c2", profile(dmCarol, "carol.test", ""), "accepted", 1, 0)
	for name, tok := range map[string]string{
		"token of another conversation": a.token("c2"),
		"forged token":                  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"no token":                      "",
	} {
		res := a.post("/convos/c1/messages", url.Values{"token": {tok}, "text": {"draft " + name}})
		if res.status != http.StatusBadRequest || testid(res.doc, "draft").Text() != "draft "+name {
			t.Errorf("%s: status %d draft %q", name, res.status, testid(res.doc, "draft").Text())
		}
	}
	if got := a.chat.sentTexts(); len(got) != 0 {
		t.Errorf("sent %q", got)
	}
}

func TestOverlongMessageIsRefusedWithTheDraftKept(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{"1001 characters", strings.Repeat("a", 1001), "1,001 characters long; the limit is 1,000"},
		{"over 10000 bytes", strings.Repeat("👩‍👩‍👧‍👦", 401), "bytes and the limit is 10,000"},
		{"blank", "  \n ", "Write a message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newDMApp(t)
			a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 1, 0)
			res := a.post("/convos/c1/messages", url.Values{"token": {a.token("c1")}, "text": {tc.text}})
			if res.status != http.StatusBadRequest {
				t.Fatalf("status %d", res.status)
			}
			if !strings.Contains(text(res.doc.Find(`[data-testid="composer"] [data-testid="error"]`)), tc.want) {
				t.Errorf("error %q", text(res.doc.Find(`[data-testid="composer"] [data-testid="error"]`)))
			}
			if testid(res.doc, "draft").Text() != tc.text {
				t.Errorf("draft not kept")
			}
			if a.chat.count("SendMessage") != 0 {
				t.Errorf("sent anyway")
			}
		})
	}
}

func TestCrossOriginDMPostsAreRefused(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 1, 0)
	tok := a.token("c1")
	for _, path := range []string{"/convos/c1/messages", "/convos/c1/leave", "/convos/read-all", "/settings/chat", "/convos/new"} {
		res := a.postWith(path, url.Values{"token": {tok}, "text": {"evil"}, "allow_incoming": {"all"}, "handle": {"bob.test"}},
			map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
		if res.status != http.StatusForbidden {
			t.Errorf("POST %s from another site: %d, want 403", path, res.status)
		}
	}
	for _, m := range []string{"SendMessage", "LeaveConvo", "UpdateAllRead", "SaveDeclaration", "GetConvoForMembers"} {
		if n := a.chat.count(m); n != 0 {
			t.Errorf("%s called %d times", m, n)
		}
	}
}

func TestSendAsJSONAnswersIDAndRenderedMessage(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 1, 0)
	res := a.postJSON("/convos/c1/messages", url.Values{"token": {a.token("c1")}, "text": {"hello <script>alert(1)</script>"}})
	if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "application/json") {
		t.Fatalf("status %d type %q", res.status, res.header.Get("Content-Type"))
	}
	var reply dm.SendReply
	if err := json.Unmarshal([]byte(res.body), &reply); err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(reply.HTML))
	if err != nil {
		t.Fatal(err)
	}
	li := doc.Find("li#m-" + reply.ID)
	if reply.ID == "" || li.Length() != 1 || text(li.Find(`[data-testid="message-text"]`)) != "hello <script>alert(1)</script>" {
		t.Errorf("reply %+v", reply)
	}
	if doc.Find("script").Length() != 0 {
		t.Errorf("the message's text became a script element")
	}
	if reply.Token == "" {
		t.Errorf("no fresh token")
	}
}

func TestNewConversation(t *testing.T) {
	notFollowed := &apperr.Error{Code: apperr.Forbidden, Reason: chatproxy.ReasonNotFollowedBySender, Message: "carol.test only accepts messages from people they follow."}
	for _, tc := range []struct {
		name, handle string
		setup        func(f *fakeChat)
		wantStatus   int
		wantLocation string
		wantError    string
		wantCreated  int
	}{
		{name: "existing conversation opens", handle: "@Bob.test",
			setup: func(f *fakeChat) {
				c := f.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 1, 0)
				f.avail[dmBob] = &chat.ConvoGetConvoAvailability_Output{CanChat: true, Convo: c}
			},
			wantStatus: http.StatusSeeOther, wantLocation: "/convos/c1#latest"},
		{name: "new conversation is created without sending", handle: "bob.test",
			wantStatus: http.StatusSeeOther, wantLocation: "/convos/new-bob0#latest", wantCreated: 1},
		{name: "follows-only recipient is explained", handle: "carol.test",
			setup: func(f *fakeChat) {
				f.avail[dmCarol] = &chat.ConvoGetConvoAvailability_Output{CanChat: false}
				f.refusals[dmCarol] = notFollowed
			},
			wantStatus: http.StatusForbidden, wantError: "carol.test only accepts messages from people they follow.", wantCreated: 1},
		{name: "unknown handle", handle: "nobody.test", wantStatus: http.StatusNotFound, wantError: "We could not find that account"},
		{name: "not a handle", handle: "no spaces allowed", wantStatus: http.StatusBadRequest, wantError: "is not a handle"},
		{name: "yourself", handle: "alice.test", wantStatus: http.StatusBadRequest, wantError: "That is you"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newDMApp(t)
			if tc.setup != nil {
				tc.setup(a.chat)
			}
			res := a.post("/convos/new", url.Values{"handle": {tc.handle}})
			if res.status != tc.wantStatus || res.header.Get("Location") != tc.wantLocation {
				t.Fatalf("status %d location %q", res.status, res.header.Get("Location"))
			}
			if tc.wantError != "" {
				if got := text(testid(res.doc, "error")); !strings.Contains(got, tc.wantError) {
					t.Errorf("error %q, want %q", got, tc.wantError)
				}
				if got := testid(res.doc, "handle").AttrOr("value", ""); got != tc.handle {
					t.Errorf("handle field %q, want it kept", got)
				}
			}
			if n := a.chat.count("GetConvoForMembers"); n != tc.wantCreated {
				t.Errorf("getConvoForMembers called %d times, want %d", n, tc.wantCreated)
			}
			if n := a.chat.count("SendMessage"); n != 0 {
				t.Errorf("a message was sent")
			}
		})
	}
}

func TestChatSettingsKeepFieldsTheyDoNotEdit(t *testing.T) {
	a := newDMApp(t)
	a.chat.decl = dm.Declaration{Value: map[string]any{"$type": "chat.bsky.actor.declaration", "allowIncoming": "following", "futureField": "kept"}, CID: "cid-0"}
	res := a.get("/settings/chat")
	if _, ok := testid(res.doc, "allow-following").Attr("checked"); !ok {
		t.Fatalf("current setting not checked")
	}
	res = a.post("/settings/chat", url.Values{"allow_incoming": {"all"}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/settings/chat?notice=saved#notice" {
		t.Fatalf("status %d location %q", res.status, res.header.Get("Location"))
	}
	saved := a.chat.saved[0]
	if saved.CID != "cid-0" || saved.Value["allowIncoming"] != "all" || saved.Value["futureField"] != "kept" || saved.Value["$type"] != "chat.bsky.actor.declaration" {
		t.Errorf("saved %+v", saved)
	}
	res = a.get("/settings/chat?notice=saved")
	if _, ok := testid(res.doc, "allow-all").Attr("checked"); !ok || text(testid(res.doc, "notice")) != "Saved." {
		t.Errorf("after saving: all checked %v notice %q", ok, text(testid(res.doc, "notice")))
	}
	if res := a.post("/settings/chat", url.Values{"allow_incoming": {"friends"}}); res.status != http.StatusBadRequest || len(a.chat.saved) != 1 {
		t.Errorf("bad value: %d, %d saves", res.status, len(a.chat.saved))
	}
}

func TestReactionLimitIsShownOnTheMessage(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 2, 0)
	if res := a.post("/convos/c1/messages/c1-m001/reactions", url.Values{"value": {"👍"}}); res.status != http.StatusSeeOther || res.header.Get("Location") != "/convos/c1#m-c1-m001" {
		t.Fatalf("react: %d %q", res.status, res.header.Get("Location"))
	}
	page := a.get("/convos/c1")
	if r := page.doc.Find(`#m-c1-m001 [data-testid="reaction"]`); r.AttrOr("aria-pressed", "") != "true" || !strings.Contains(r.Text(), "👍") {
		t.Errorf("own reaction not shown pressed: %q", r.Text())
	}
	a.chat.setFail("AddReaction", &apperr.Error{Code: apperr.Conflict, Reason: chatproxy.ReasonReactionLimitReached, Message: "You have added as many reactions to this message as you can."})
	res := a.post("/convos/c1/messages/c1-m001/reactions", url.Values{"value": {"🔥"}})
	if res.status != http.StatusConflict {
		t.Fatalf("status %d", res.status)
	}
	if got := text(res.doc.Find(`[data-testid="composer"] [data-testid="error"]`)); !strings.Contains(got, "as many reactions") {
		t.Errorf("error %q", got)
	}
	if res.doc.Find(`#m-c1-m001 [data-testid="message-actions"]`).Length() != 1 {
		t.Errorf("the message's actions are not open")
	}
}

func TestConvoActionsRedirectWithANotice(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "request", 1, 1)
	for _, tc := range []struct{ path, location, method string }{
		{"/convos/c1/accept", "/convos/c1?notice=accepted#notice", "AcceptConvo"},
		{"/convos/c1/mute", "/convos/c1?notice=muted#notice", "MuteConvo"},
		{"/convos/c1/unmute", "/convos/c1?notice=unmuted#notice", "UnmuteConvo"},
		{"/convos/c1/read", "/convos/c1?notice=read#notice", "UpdateRead"},
		{"/convos/c1/messages/c1-m000/delete", "/convos/c1?notice=deleted#m-c1-m000", "DeleteMessageForSelf"},
		{"/convos/read-all", "/?notice=allread#notice", "UpdateAllRead"},
		{"/convos/c1/leave", "/?notice=left#notice", "LeaveConvo"},
	} {
		res := a.post(tc.path, nil)
		if res.status != http.StatusSeeOther || res.header.Get("Location") != tc.location || a.chat.count(tc.method) != 1 {
			t.Errorf("POST %s: %d %q, %s called %d times", tc.path, res.status, res.header.Get("Location"), tc.method, a.chat.count(tc.method))
		}
	}
	if got := text(testid(a.get("/?notice=left").doc, "notice")); got != "You left the conversation." {
		t.Errorf("inbox notice %q", got)
	}
	if res := a.get("/convos/c1"); res.status != http.StatusNotFound || !strings.Contains(text(testid(res.doc, "error-message")), "left it") {
		t.Errorf("left conversation: %d %q", res.status, text(testid(res.doc, "error-message")))
	}
}

func TestDMPagesNeedASessionWithDMAccess(t *testing.T) {
	t.Run("signed out", func(t *testing.T) {
		a := newDMApp(t)
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		a.client.Jar = jar
		if res := a.get("/convos/c1"); res.status != http.StatusSeeOther || res.header.Get("Location") != "/signin" {
			t.Errorf("signed out: %d %q", res.status, res.header.Get("Location"))
		}
		if res := a.get("/"); res.status != http.StatusOK || testid(res.doc, "home-signin").Length() != 1 {
			t.Errorf("signed out /: %d", res.status)
		}
	})
	t.Run("no DM access", func(t *testing.T) {
		a := newDMApp(t)
		a.signIn(dmAlice, "alice.test", false)
		if res := a.get("/convos/c1"); res.status != http.StatusForbidden || testid(res.doc, "signin-again").Length() != 1 {
			t.Errorf("no chat scope: %d", res.status)
		}
		if res := a.get("/"); testid(res.doc, "home-notice").Length() != 1 {
			t.Errorf("/ without DM access shows no notice")
		}
		if a.chat.count("ListConvos") != 0 {
			t.Errorf("the chat service was called")
		}
	})
	t.Run("scope missing upstream", func(t *testing.T) {
		a := newDMApp(t)
		a.chat.setFail("ListConvos", &apperr.Error{Code: apperr.Forbidden, Reason: chatproxy.ReasonScopeMissing, Message: "x"})
		if res := a.get("/"); res.status != http.StatusForbidden || testid(res.doc, "signin-again").Length() != 1 {
			t.Errorf("ScopeMissing: %d", res.status)
		}
	})
	t.Run("session expired", func(t *testing.T) {
		a := newDMApp(t)
		a.chat.setFail("ListConvos", &apperr.Error{Code: apperr.Unauthorized, Reason: chatproxy.ReasonSessionExpired, Message: "x"})
		if res := a.get("/"); res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/signin?") {
			t.Errorf("SessionExpired: %d %q", res.status, res.header.Get("Location"))
		}
	})
}

func TestHostileContentRendersAsInertText(t *testing.T) {
	const xss = `<script>alert(1)</script>`
	const rlo = "\u202E"
	a := newDMApp(t)
	evil := profile("did:plc:evil0000000000000000000", `"><img src=x onerror=alert(1)>`, xss+rlo+"evil")
	evil.Avatar = ptr("javascript:alert(1)")
	a.chat.addConvo("c1", evil, "accepted", 0, 0)
	body := "é" + "click " + xss + " " + rlo + "gnp.exe"
	at := func(sub string) (int64, int64) {
		i := strings.Index(body, sub)
		return int64(i), int64(i + len(sub))
	}
	s1, e1 := at("click")
	s2, e2 := at(xss)
	link := func(s, e int64, uri string) *bsky.RichtextFacet {
		return &bsky.RichtextFacet{Index: &bsky.RichtextFacet_ByteSlice{ByteStart: s, ByteEnd: e},
			Features: []*bsky.RichtextFacet_Features_Elem{{RichtextFacet_Link: &bsky.RichtextFacet_Link{Uri: uri}}}}
	}
	a.chat.mu.Lock()
	a.chat.msgs["c1"] = []*chat.ConvoDefs_MessageView{{Id: `m1`, Rev: "r1", Text: body, SentAt: a.chat.now.Format(time.RFC3339),
		Sender: &chat.ConvoDefs_MessageViewSender{Did: evil.Did},
		Facets: []*bsky.RichtextFacet{
			link(s1, e1, "javascript:alert(1)"),
			link(s2, e2, `https://ok.example/"><script>alert(1)</script>`),
			link(1, 3, "https://mid-character.example"),   // inside "é"
			link(2, 5000, "https://out-of-range.example"), // past the end
		}}}
	a.chat.convos[0].LastMessage = &chat.ConvoDefs_ConvoView_LastMessage{ConvoDefs_MessageView: a.chat.msgs["c1"][0]}
	a.chat.mu.Unlock()

	for _, path := range []string{"/", "/convos/c1"} {
		res := a.get(path)
		if res.status != http.StatusOK {
			t.Fatalf("GET %s: %d", path, res.status)
		}
		res.doc.Find("script").Each(func(_ int, s *goquery.Selection) {
			if src, _ := s.Attr("src"); !strings.HasPrefix(src, "/static/") {
				t.Errorf("%s: a script element that is not ours: %q", path, s.Text())
			}
		})
		if n := res.doc.Find("img[onerror], [onerror], [onclick]").Length(); n != 0 {
			t.Errorf("%s: %d elements with event handlers", path, n)
		}
		res.doc.Find("a[href], img[src]").Each(func(_ int, s *goquery.Selection) {
			v := s.AttrOr("href", s.AttrOr("src", ""))
			if strings.HasPrefix(strings.ToLower(strings.TrimSpace(v)), "javascript:") {
				t.Errorf("%s: javascript: URL in %s", path, goquery.NodeName(s))
			}
		})
		for _, bad := range []string{"mid-character.example", "out-of-range.example"} {
			if strings.Contains(res.body, bad) {
				t.Errorf("%s: invalid facet %s became a link", path, bad)
			}
		}
	}
	page := a.get("/convos/c1")
	if got := text(page.doc.Find(`[data-testid="message-text"]`)); !strings.Contains(got, xss) {
		t.Errorf("message text %q does not show the markup as text", got)
	}
	// Only the well-formed https link stays a link; its markup is text.
	links := page.doc.Find(`[data-testid="message-text"] a`)
	if links.Length() != 1 || links.AttrOr("href", "") != `https://ok.example/"><script>alert(1)</script>` || text(links) != xss {
		t.Errorf("links in the hostile message: %d, href %q text %q", links.Length(), links.AttrOr("href", ""), text(links))
	}
}

func TestFourPersonConversationIsTitledTheSameInTitleAndHeader(t *testing.T) {
	a := newDMApp(t)
	v := a.chat.addConvo("g1", profile(dmBob, "bob.test", "Bob"), "accepted", 2, 0)
	a.chat.mu.Lock()
	v.Members = append(v.Members, profile(dmCarol, "carol.test", "Carol"), profile("did:plc:dave", "dave.test", "Dave"), profile("did:plc:erin", "erin.test", "Erin"))
	a.chat.mu.Unlock()
	res := a.get("/convos/g1")
	if res.status != http.StatusOK {
		t.Fatalf("GET /convos/g1: %d", res.status)
	}
	const want = "Bob, Carol and 2 others"
	if got := text(testid(res.doc, "convo-title")); got != want {
		t.Errorf("header %q, want %q", got, want)
	}
	if got := text(res.doc.Find("title")); got != want+" · skydm" {
		t.Errorf("<title> %q, want %q", got, want+" · skydm")
	}
}
