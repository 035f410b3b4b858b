package chatproxy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/lex/chat"
)

// seenRequest is one request the fake PDS received.
type seenRequest struct {
	method, path, proxy string
	body                map[string]any
}

// recordingPDS answers every request with answer and records it.
func recordingPDS(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*fakePDS, func() []seenRequest) {
	var mu sync.Mutex
	var seen []seenRequest
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		req := seenRequest{method: r.Method, path: r.URL.Path, proxy: r.Header.Get("Atproto-Proxy")}
		if r.Method == http.MethodPost {
			if err := json.NewDecoder(r.Body).Decode(&req.body); err != nil {
				t.Errorf("%s: body is not JSON: %v", r.URL.Path, err)
			}
		}
		mu.Lock()
		seen = append(seen, req)
		mu.Unlock()
		answer(w, r)
	})
	return f, func() []seenRequest { mu.Lock(); defer mu.Unlock(); return append([]seenRequest(nil), seen...) }
}

func TestCreateReportGoesToTheModerationServiceWithTheChatSubject(t *testing.T) {
	f, seen := recordingPDS(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"id": 1, "reasonType": "x", "subject": map[string]any{}, "reportedBy": aliceDID, "createdAt": "2026-03-04T05:06:07Z"})
	})
	ctx := context.Background()
	def := f.client()
	mod := chatproxy.New(atclient.NewAPIClient(f.srv.URL), testRef, chatproxy.WithModerationService("did:web:mod.example.test"))

	if err := def.CreateReport(ctx, chatproxy.Report{ReasonType: chatproxy.ReasonTypeSpam, Reason: "buy now", DID: carolDID, ConvoID: "c1", MessageID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if err := mod.CreateReport(ctx, chatproxy.Report{ReasonType: chatproxy.ReasonTypeRude, DID: carolDID, ConvoID: "c1"}); err != nil {
		t.Fatal(err)
	}
	want := []seenRequest{
		{method: "POST", path: "/xrpc/com.atproto.moderation.createReport", proxy: "did:plc:ar7c4by46qjdydhdevvrndac#atproto_labeler",
			body: map[string]any{"reasonType": "com.atproto.moderation.defs#reasonSpam", "reason": "buy now",
				"subject": map[string]any{"$type": "chat.bsky.convo.defs#messageRef", "did": carolDID, "convoId": "c1", "messageId": "m1"}}},
		{method: "POST", path: "/xrpc/com.atproto.moderation.createReport", proxy: "did:web:mod.example.test#atproto_labeler",
			body: map[string]any{"reasonType": "com.atproto.moderation.defs#reasonRude",
				"subject": map[string]any{"$type": "chat.bsky.convo.defs#convoRef", "did": carolDID, "convoId": "c1"}}},
	}
	if got := seen(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests:\n got %+v\nwant %+v", got, want)
	}
	// The chat calls of the same client still go to the chat service.
	if _, err := def.GetLog(ctx, ""); err != nil || f.callCount("chat.bsky.convo.getLog") != 1 {
		t.Fatalf("getLog after a report: %v", err)
	}
	if got := seen()[2].proxy; got != testRef {
		t.Errorf("chat call after a report: Atproto-Proxy %q, want %q", got, testRef)
	}
}

func TestCreateReportRefusesBadInputWithoutCalling(t *testing.T) {
	f, seen := recordingPDS(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]any{}) })
	c := f.client()
	for name, r := range map[string]chatproxy.Report{
		"no reason type":    {DID: carolDID, ConvoID: "c1"},
		"2001 graphemes":    {ReasonType: chatproxy.ReasonTypeOther, Reason: strings.Repeat("é", 2001), DID: carolDID, ConvoID: "c1"},
		"no subject":        {ReasonType: chatproxy.ReasonTypeOther},
		"subject not a did": {ReasonType: chatproxy.ReasonTypeOther, DID: "carol", ConvoID: "c1"},
	} {
		if err := c.CreateReport(context.Background(), r); apperr.CodeOf(err) != apperr.Invalid || apperr.MessageOf(err) == "" {
			t.Errorf("%s: %v, want Invalid with a message", name, err)
		}
	}
	if n := len(seen()); n != 0 {
		t.Errorf("%d requests sent for bad input, want 0", n)
	}
	ok := chatproxy.Report{ReasonType: chatproxy.ReasonTypeOther, Reason: strings.Repeat("é", 2000), DID: carolDID, ConvoID: "c1"}
	if err := c.CreateReport(context.Background(), ok); err != nil {
		t.Errorf("2000 graphemes: %v", err)
	}
}

func TestCreateReportErrorsSpeakOfTheModerationService(t *testing.T) {
	var refs []string
	for _, tt := range []struct {
		status int
		body   map[string]string
		code   apperr.Code
		reason string
		msg    string
	}{
		{400, xrpcErr("InvalidRequest", "could not resolve proxy did service url"), apperr.Unavailable, chatproxy.ReasonServiceRefWrong, "Reports can't be sent from this skydm server"},
		{502, xrpcErr("UpstreamFailure", "labeler down"), apperr.Unavailable, chatproxy.ReasonUnavailable, "The moderation service is not answering"},
		{400, xrpcErr("InvalidRequest", "bad subject"), apperr.Invalid, chatproxy.ReasonInvalidRequest, "The moderation service could not accept this report."},
		{401, xrpcErr("ExpiredToken", ""), apperr.Unauthorized, chatproxy.ReasonSessionExpired, "Your session has expired."},
	} {
		f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, tt.status, tt.body) })
		c := chatproxy.New(atclient.NewAPIClient(f.srv.URL), testRef, chatproxy.WithModerationService("did:web:mod.example.test"),
			chatproxy.WithServiceRefProblem(func(ref string, err error) { refs = append(refs, ref) }))
		err := c.CreateReport(context.Background(), chatproxy.Report{ReasonType: chatproxy.ReasonTypeSpam, DID: carolDID, ConvoID: "c1", MessageID: "m1"})
		if apperr.CodeOf(err) != tt.code || apperr.ReasonOf(err) != tt.reason || !strings.HasPrefix(apperr.MessageOf(err), tt.msg) {
			t.Errorf("%d %s: %q %q %q; want %q %q %q…", tt.status, tt.body["error"], apperr.CodeOf(err), apperr.ReasonOf(err), apperr.MessageOf(err), tt.code, tt.reason, tt.msg)
		}
	}
	if want := []string{"did:web:mod.example.test#atproto_labeler"}; !reflect.DeepEqual(refs, want) {
		t.Errorf("operator hook heard %v, want %v", refs, want)
	}
}

func TestNotificationPreferencesRequests(t *testing.T) {
	prefs := map[string]any{"preferences": map[string]any{
		"chat":        map[string]any{"include": "all", "push": true},
		"chatRequest": map[string]any{"include": "follows", "push": false},
	}}
	f, seen := recordingPDS(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, prefs) })
	c := f.client()
	ctx := context.Background()
	got, err := c.GetNotificationPreferences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Chat.Include != "all" || !got.Chat.Push || got.ChatRequest.Include != "follows" || got.ChatRequest.Push {
		t.Errorf("preferences %+v %+v", got.Chat, got.ChatRequest)
	}
	if _, err := c.PutNotificationPreferences(ctx, chat.NotificationPutPreferences_Input{
		Chat: &chat.NotificationDefs_ChatPreference{Include: "follows", Push: false},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutNotificationPreferences(ctx, chat.NotificationPutPreferences_Input{
		ChatRequest: &chat.NotificationDefs_ChatPreference{Include: "everyone"},
	}); apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("include everyone: %v, want Invalid before calling", err)
	}
	want := []seenRequest{
		{method: "GET", path: "/xrpc/chat.bsky.notification.getPreferences", proxy: testRef},
		{method: "POST", path: "/xrpc/chat.bsky.notification.putPreferences", proxy: testRef,
			body: map[string]any{"chat": map[string]any{"include": "follows", "push": false}}},
	}
	if g := seen(); !reflect.DeepEqual(g, want) {
		t.Errorf("requests:\n got %+v\nwant %+v", g, want)
	}
}
