package chatproxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
)

const testRef = "did:web:chat.example.test#bsky_chat"

var fixedNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func clock() time.Time { return fixedNow }

// fakePDS plays the user's PDS proxying to the chat service. Every
// chat.bsky.* request must carry Atproto-Proxy: testRef; one without it fails
// the test. (Requests the auth machinery sends on its own, such as token
// refreshes, are not chat calls and carry no proxy header.)
type fakePDS struct {
	t       *testing.T
	srv     *httptest.Server
	handler http.HandlerFunc

	mu    sync.Mutex
	calls map[string]int // by path
}

func newFakePDS(t *testing.T, h http.HandlerFunc) *fakePDS {
	t.Helper()
	f := &fakePDS{t: t, handler: h, calls: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Atproto-Proxy"); strings.HasPrefix(r.URL.Path, "/xrpc/chat.bsky.") && got != testRef {
			t.Errorf("%s %s: Atproto-Proxy = %q, want %q", r.Method, r.URL.Path, got, testRef)
		}
		f.mu.Lock()
		f.calls[r.URL.Path]++
		f.mu.Unlock()
		f.handler(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePDS) callCount(nsid string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls["/xrpc/"+nsid]
}

func (f *fakePDS) totalCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// client returns a chatproxy.Client over an unauthenticated APIClient.
func (f *fakePDS) client() *chatproxy.Client {
	return chatproxy.New(atclient.NewAPIClient(f.srv.URL), testRef, chatproxy.WithClock(clock))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func xrpcErr(name, msg string) map[string]string {
	m := map[string]string{"error": name}
	if msg != "" {
		m["message"] = msg
	}
	return m
}

const (
	aliceDID = "did:plc:alice0000000000000000000"
	carolDID = "did:plc:carol0000000000000000000"
)

func convoJSON(id string) map[string]any {
	return map[string]any{
		"id":          id,
		"rev":         "r1",
		"members":     []any{map[string]any{"did": aliceDID, "handle": "alice.test"}, map[string]any{"did": carolDID, "handle": "carol.test"}},
		"muted":       false,
		"unreadCount": 0,
	}
}

func messageJSON(id string) map[string]any {
	return map[string]any{
		"$type":  "chat.bsky.convo.defs#messageView",
		"id":     id,
		"rev":    "r-" + id,
		"text":   "hello " + id,
		"sender": map[string]any{"did": aliceDID},
		"sentAt": "2026-03-04T05:06:07.000Z",
	}
}

// secret is appended to every upstream message; it must never reach a person.
const secret = " zz-upstream-text-zz"

func TestUpstreamErrorsMapToTaxonomy(t *testing.T) {
	type callFn func(ctx context.Context, c *chatproxy.Client) error
	getConvoFor := func(ctx context.Context, c *chatproxy.Client) error {
		_, err := c.GetConvoForMembers(ctx, []string{carolDID})
		return err
	}
	send := func(ctx context.Context, c *chatproxy.Client) error {
		_, err := c.SendMessage(ctx, "convo1", chatproxy.MessageInput{Text: "hi"})
		return err
	}
	react := func(ctx context.Context, c *chatproxy.Client) error {
		_, err := c.AddReaction(ctx, "convo1", "m1", "👍")
		return err
	}
	listConvos := func(ctx context.Context, c *chatproxy.Client) error {
		_, err := c.ListConvos(ctx, chatproxy.ListConvosParams{})
		return err
	}
	httpDate := time.Date(2026, 3, 4, 6, 0, 0, 0, time.UTC)

	tests := []struct {
		name      string
		call      callFn
		recipient string
		status    int
		header    map[string]string
		body      any // map → JSON; string → raw
		code      apperr.Code
		reason    string
		message   string // "" → only check it is not empty
		retryAt   time.Time
	}{
		{name: "not followed by sender, named error, says who", call: getConvoFor, recipient: "Carol",
			status: 400, body: xrpcErr("NotFollowedBySender", "recipient requires incoming messages to come from someone they follow"),
			code: apperr.Forbidden, reason: chatproxy.ReasonNotFollowedBySender, message: "Carol only accepts messages from people they follow."},
		{name: "not followed by sender, legacy InvalidRequest message, generic wording", call: getConvoFor,
			status: 400, body: xrpcErr("InvalidRequest", "recipient requires incoming messages to come from someone they follow"),
			code: apperr.Forbidden, reason: chatproxy.ReasonNotFollowedBySender, message: "This account only accepts messages from people they follow."},
		{name: "not followed by sender, name in message prefix", call: send, recipient: "@carol.test",
			status: 400, body: xrpcErr("InvalidRequest", "NotFollowedBySender: recipient requires incoming messages to come from someone they follow"),
			code: apperr.Forbidden, reason: chatproxy.ReasonNotFollowedBySender, message: "@carol.test only accepts messages from people they follow."},
		{name: "messages disabled, named error", call: getConvoFor, recipient: "Carol",
			status: 400, body: xrpcErr("MessagesDisabled", "recipient has disabled incoming messages"),
			code: apperr.Forbidden, reason: chatproxy.ReasonMessagesDisabled, message: "Carol does not accept direct messages."},
		{name: "messages disabled, legacy message", call: send,
			status: 400, body: xrpcErr("InvalidRequest", "recipient has disabled incoming messages"),
			code: apperr.Forbidden, reason: chatproxy.ReasonMessagesDisabled, message: "This account does not accept direct messages."},
		{name: "blocked actor is blocked", call: getConvoFor, recipient: "Carol",
			status: 400, body: xrpcErr("BlockedActor", "block between recipient and sender"),
			code: apperr.Forbidden, reason: chatproxy.ReasonBlocked, message: "You have blocked Carol. Unblock them to send messages."},
		{name: "blocked subject is blocked", call: getConvoFor,
			status: 400, body: xrpcErr("BlockedSubject", ""),
			code: apperr.Forbidden, reason: chatproxy.ReasonBlocked, message: "You can't message this account."},
		{name: "legacy block message is blocked", call: send,
			status: 400, body: xrpcErr("InvalidRequest", "block between recipient and sender"),
			code: apperr.Forbidden, reason: chatproxy.ReasonBlocked},
		{name: "recipient not found, named", call: getConvoFor,
			status: 400, body: xrpcErr("RecipientNotFound", ""),
			code: apperr.NotFound, reason: chatproxy.ReasonRecipientNotFound},
		{name: "recipient not found, legacy message", call: getConvoFor,
			status: 400, body: xrpcErr("InvalidRequest", "recipient does not exist"),
			code: apperr.NotFound, reason: chatproxy.ReasonRecipientNotFound},
		{name: "account does not exist is recipient not found", call: getConvoFor,
			status: 400, body: xrpcErr("InvalidRequest", "Account does not exist"),
			code: apperr.NotFound, reason: chatproxy.ReasonRecipientNotFound},
		{name: "account suspended", call: getConvoFor,
			status: 400, body: xrpcErr("AccountSuspended", ""),
			code: apperr.Forbidden, reason: chatproxy.ReasonAccountSuspended},
		{name: "viewer chat disabled", call: send,
			status: 400, body: xrpcErr("InvalidRequest", "Account is disabled"),
			code: apperr.Forbidden, reason: chatproxy.ReasonChatDisabled},
		{name: "invalid convo is convo not found", call: send,
			status: 400, body: xrpcErr("InvalidConvo", "Convo not found"),
			code: apperr.NotFound, reason: chatproxy.ReasonConvoNotFound},
		{name: "legacy convo not found message", call: send,
			status: 400, body: xrpcErr("InvalidRequest", "Convo not found"),
			code: apperr.NotFound, reason: chatproxy.ReasonConvoNotFound},
		{name: "convo locked", call: send,
			status: 400, body: xrpcErr("ConvoLocked", "convo is locked"),
			code: apperr.Conflict, reason: chatproxy.ReasonConvoLocked},
		{name: "reaction limit reached", call: react,
			status: 400, body: xrpcErr("ReactionLimitReached", ""),
			code: apperr.Conflict, reason: chatproxy.ReasonReactionLimitReached},
		{name: "reaction on deleted message", call: react,
			status: 400, body: xrpcErr("ReactionMessageDeleted", ""),
			code: apperr.Conflict, reason: chatproxy.ReasonReactionMessageDeleted},
		{name: "reaction invalid value", call: react,
			status: 400, body: xrpcErr("ReactionInvalidValue", ""),
			code: apperr.Invalid, reason: chatproxy.ReasonReactionInvalidValue},
		{name: "reaction not allowed", call: react,
			status: 400, body: xrpcErr("ReactionNotAllowed", ""),
			code: apperr.Forbidden, reason: chatproxy.ReasonReactionNotAllowed},
		{name: "rate limited with Retry-After seconds", call: send,
			status: 429, header: map[string]string{"Retry-After": "30"}, body: xrpcErr("RateLimitExceeded", "Rate Limit Exceeded"),
			code: apperr.RateLimited, reason: chatproxy.ReasonRateLimited, retryAt: fixedNow.Add(30 * time.Second)},
		{name: "rate limited with Retry-After HTTP date", call: send,
			status: 429, header: map[string]string{"Retry-After": httpDate.Format(http.TimeFormat)}, body: xrpcErr("RateLimitExceeded", ""),
			code: apperr.RateLimited, reason: chatproxy.ReasonRateLimited, retryAt: httpDate},
		{name: "rate limited with ratelimit-reset unix seconds", call: listConvos,
			status: 429, header: map[string]string{"RateLimit-Reset": "1772604000", "RateLimit-Remaining": "0"}, body: xrpcErr("RateLimitExceeded", ""),
			code: apperr.RateLimited, reason: chatproxy.ReasonRateLimited, retryAt: time.Unix(1772604000, 0)},
		{name: "rate limited, Retry-After wins over ratelimit-reset", call: send,
			status: 429, header: map[string]string{"Retry-After": "5", "RateLimit-Reset": "1772604000"}, body: xrpcErr("RateLimitExceeded", ""),
			code: apperr.RateLimited, reason: chatproxy.ReasonRateLimited, retryAt: fixedNow.Add(5 * time.Second)},
		{name: "rate limited without headers has no RetryAt", call: send,
			status: 429, body: xrpcErr("TooManyRequests", ""),
			code: apperr.RateLimited, reason: chatproxy.ReasonRateLimited},
		{name: "scope missing from the PDS", call: listConvos,
			status: 403, body: xrpcErr("ScopeMissingError", `Missing required scope "rpc:chat.bsky.convo.listConvos?aud=did:web:chat.example.test%23bsky_chat"`),
			code: apperr.Forbidden, reason: chatproxy.ReasonScopeMissing, message: "To use DMs, sign in again and allow skydm to access your messages."},
		{name: "app password without chat access is scope missing", call: listConvos,
			status: 400, body: xrpcErr("InvalidToken", "Bad token method"),
			code: apperr.Forbidden, reason: chatproxy.ReasonScopeMissing},
		{name: "invalid token is session expired", call: listConvos,
			status: 401, body: xrpcErr("InvalidToken", "Token could not be verified"),
			code: apperr.Unauthorized, reason: chatproxy.ReasonSessionExpired},
		{name: "expired token is session expired", call: listConvos,
			status: 401, body: xrpcErr("ExpiredToken", "Token has expired"),
			code: apperr.Unauthorized, reason: chatproxy.ReasonSessionExpired},
		{name: "oauth invalid_token without body is session expired", call: listConvos,
			status: 401, header: map[string]string{"WWW-Authenticate": `DPoP error="invalid_token"`}, body: "",
			code: apperr.Unauthorized, reason: chatproxy.ReasonSessionExpired},
		{name: "chat service rejecting the service jwt is unavailable", call: listConvos,
			status: 401, body: xrpcErr("BadJwt", "jwt audience does not match service did"),
			code: apperr.Unavailable, reason: chatproxy.ReasonUnavailable},
		{name: "upstream failure 502 is unavailable", call: send,
			status: 502, body: xrpcErr("UpstreamFailure", "Upstream service unreachable"),
			code: apperr.Unavailable, reason: chatproxy.ReasonUnavailable},
		{name: "upstream timeout 504 is unavailable", call: send,
			status: 504, body: xrpcErr("UpstreamTimeout", ""),
			code: apperr.Unavailable, reason: chatproxy.ReasonUnavailable},
		{name: "pds internal error 500 is unavailable", call: listConvos,
			status: 500, body: xrpcErr("InternalServerError", "Internal Server Error"),
			code: apperr.Unavailable, reason: chatproxy.ReasonUnavailable},
		{name: "503 with Retry-After is unavailable with RetryAt", call: listConvos,
			status: 503, header: map[string]string{"Retry-After": "7"}, body: xrpcErr("NotEnoughResources", ""),
			code: apperr.Unavailable, reason: chatproxy.ReasonUnavailable, retryAt: fixedNow.Add(7 * time.Second)},
		{name: "html 502 from a load balancer is the PDS unavailable", call: listConvos,
			status: 502, body: "<html>bad gateway" + secret + "</html>",
			code: apperr.Unavailable, reason: chatproxy.ReasonServerUnavailable},
		{name: "unresolvable proxy service is skydm's configuration problem", call: listConvos,
			status: 400, body: xrpcErr("InvalidRequest", "could not resolve proxy did service url"),
			code: apperr.Unavailable, reason: chatproxy.ReasonServiceRefWrong},
		{name: "method not implemented", call: listConvos,
			status: 501, body: xrpcErr("MethodNotImplemented", "Method Not Implemented"),
			code: apperr.Unavailable, reason: chatproxy.ReasonNotImplemented},
		{name: "lexicon validation of long text is message too long", call: send,
			status: 400, body: xrpcErr("InvalidRequest", "Input/message/text must not be longer than 1000 graphemes"),
			code: apperr.Invalid, reason: chatproxy.ReasonMessageTooLong},
		{name: "unknown 400 is a generic invalid request", call: send,
			status: 400, body: xrpcErr("InvalidRequest", "something new went wrong"),
			code: apperr.Invalid, reason: chatproxy.ReasonInvalidRequest, message: "The chat service could not accept that request."},
		{name: "unknown 403 is a generic forbidden", call: send,
			status: 403, body: xrpcErr("Forbidden", "nope"),
			code: apperr.Forbidden, reason: chatproxy.ReasonForbidden},
		{name: "garbage 200 body is a bad response", call: listConvos,
			status: 200, body: "{not json" + secret,
			code: apperr.Internal, reason: chatproxy.ReasonBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var upstreamMsg string
			f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				switch b := tt.body.(type) {
				case string:
					w.WriteHeader(tt.status)
					_, _ = io.WriteString(w, b)
				case map[string]string:
					m := map[string]string{}
					for k, v := range b {
						m[k] = v
					}
					if m["message"] != "" {
						m["message"] += secret
					}
					writeJSON(w, tt.status, m)
				}
			})
			if m, ok := tt.body.(map[string]string); ok {
				upstreamMsg = m["message"]
			}
			c := f.client().ForRecipient(tt.recipient)
			err := tt.call(context.Background(), c)
			if err == nil {
				t.Fatal("call succeeded, want error")
			}
			e := apperr.As(err)
			if e == nil {
				t.Fatalf("error %T %v is not *apperr.Error", err, err)
			}
			if e.Code != tt.code || e.Reason != tt.reason {
				t.Fatalf("Code, Reason = %q, %q; want %q, %q (err: %v)", e.Code, e.Reason, tt.code, tt.reason, err)
			}
			shown := apperr.MessageOf(err)
			if tt.message != "" && shown != tt.message {
				t.Errorf("MessageOf = %q, want %q", shown, tt.message)
			}
			if shown == "" {
				t.Error("MessageOf is empty")
			}
			if strings.Contains(shown, strings.TrimSpace(secret)) || (upstreamMsg != "" && strings.Contains(shown, upstreamMsg)) {
				t.Errorf("MessageOf %q contains upstream text", shown)
			}
			if !e.RetryAt.Equal(tt.retryAt) {
				t.Errorf("RetryAt = %v, want %v", e.RetryAt, tt.retryAt)
			}
			if e.Err == nil {
				t.Error("upstream error not kept in Err")
			}
			if tt.status != 200 {
				var apiErr *atclient.APIError
				if !errors.As(err, &apiErr) || apiErr.StatusCode != tt.status {
					t.Errorf("Err chain lacks *atclient.APIError with status %d: %v", tt.status, err)
				}
			}
		})
	}
}

func TestTransportFailuresAreUnavailable(t *testing.T) {
	t.Run("hang past the context deadline is unavailable", func(t *testing.T) {
		release := make(chan struct{})
		f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
		defer close(release)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := f.client().ListConvos(ctx, chatproxy.ListConvosParams{})
		// The fake PDS does not answer its health check either: the PDS is the one not answering.
		if apperr.CodeOf(err) != apperr.Unavailable || apperr.ReasonOf(err) != chatproxy.ReasonServerUnavailable {
			t.Fatalf("got %q/%q (%v), want unavailable", apperr.CodeOf(err), apperr.ReasonOf(err), err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("cause is not context.DeadlineExceeded: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("http client timeout is unavailable", func(t *testing.T) {
		release := make(chan struct{})
		f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
		defer close(release)
		api := atclient.NewAPIClient(f.srv.URL)
		api.Client = &http.Client{Timeout: 100 * time.Millisecond}
		_, err := chatproxy.New(api, testRef).GetConvo(context.Background(), "c1")
		if apperr.CodeOf(err) != apperr.Unavailable {
			t.Fatalf("got %q (%v), want unavailable", apperr.CodeOf(err), err)
		}
	})
	t.Run("connection refused is unavailable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := chatproxy.New(atclient.NewAPIClient(url), testRef).GetLog(context.Background(), "")
		if apperr.CodeOf(err) != apperr.Unavailable || apperr.ReasonOf(err) != chatproxy.ReasonServerUnavailable {
			t.Fatalf("got %q/%q (%v), want the PDS unavailable", apperr.CodeOf(err), apperr.ReasonOf(err), err)
		}
		// The message names the account's server (its configured host), never the cause's text.
		if msg := apperr.MessageOf(err); strings.Contains(msg, "dial") || strings.Contains(msg, "refused") || !strings.Contains(msg, strings.TrimPrefix(url, "http://")) {
			t.Errorf("message %q, want the server named and no transport text", msg)
		}
	})
	t.Run("canceled context is canceled", func(t *testing.T) {
		f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]any{"logs": []any{}}) })
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := f.client().GetLog(ctx, "")
		if apperr.ReasonOf(err) != chatproxy.ReasonCanceled {
			t.Fatalf("reason %q (%v), want Canceled", apperr.ReasonOf(err), err)
		}
	})
}

// TestEveryCallSendsProxyHeaderToItsMethod runs each method once against a
// fake that answers with a minimal valid body, checking the NSID, the HTTP
// method and (in fakePDS) the Atproto-Proxy header.
func TestEveryCallSendsProxyHeaderToItsMethod(t *testing.T) {
	type result struct {
		nsid, method string
		body         any
	}
	var mu sync.Mutex
	var seen []result
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		nsid := strings.TrimPrefix(r.URL.Path, "/xrpc/")
		var in map[string]any
		if r.Method == http.MethodPost {
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				t.Errorf("%s: bad body: %v", nsid, err)
			}
		}
		mu.Lock()
		seen = append(seen, result{nsid, r.Method, in})
		mu.Unlock()
		var out any
		switch nsid {
		case "chat.bsky.convo.listConvos":
			out = map[string]any{"convos": []any{convoJSON("c1")}, "cursor": "next"}
		case "chat.bsky.convo.getConvo", "chat.bsky.convo.getConvoForMembers", "chat.bsky.convo.updateRead",
			"chat.bsky.convo.muteConvo", "chat.bsky.convo.unmuteConvo":
			out = map[string]any{"convo": convoJSON("c1")}
		case "chat.bsky.convo.getConvoAvailability":
			out = map[string]any{"canChat": true}
		case "chat.bsky.convo.getMessages":
			out = map[string]any{"messages": []any{messageJSON("m1")}}
		case "chat.bsky.convo.sendMessage":
			out = messageJSON("m2")
		case "chat.bsky.convo.updateAllRead":
			out = map[string]any{"updatedCount": 2}
		case "chat.bsky.convo.acceptConvo":
			out = map[string]any{"rev": "r2"}
		case "chat.bsky.convo.leaveConvo":
			out = map[string]any{"convoId": "c1", "rev": "r3"}
		case "chat.bsky.convo.deleteMessageForSelf":
			out = map[string]any{"id": "m1", "rev": "r4", "sender": map[string]any{"did": aliceDID}, "sentAt": "2026-03-04T05:06:07Z"}
		case "chat.bsky.convo.addReaction", "chat.bsky.convo.removeReaction":
			out = map[string]any{"message": messageJSON("m1")}
		case "chat.bsky.convo.getLog":
			out = map[string]any{"logs": []any{}, "cursor": "r9"}
		default:
			writeJSON(w, 501, xrpcErr("MethodNotImplemented", ""))
			return
		}
		writeJSON(w, 200, out)
	})
	c := f.client()
	ctx := context.Background()
	calls := []struct {
		nsid, method string
		run          func() error
	}{
		{"chat.bsky.convo.listConvos", "GET", func() error {
			p, err := c.ListConvos(ctx, chatproxy.ListConvosParams{Limit: 500, Status: "accepted"})
			if err == nil && (len(p.Convos) != 1 || p.Cursor != "next") {
				err = fmt.Errorf("page %+v", p)
			}
			return err
		}},
		{"chat.bsky.convo.getConvo", "GET", func() error { _, err := c.GetConvo(ctx, "c1"); return err }},
		{"chat.bsky.convo.getConvoForMembers", "GET", func() error { _, err := c.GetConvoForMembers(ctx, []string{carolDID}); return err }},
		{"chat.bsky.convo.getConvoAvailability", "GET", func() error {
			out, err := c.GetConvoAvailability(ctx, []string{carolDID})
			if err == nil && !out.CanChat {
				err = errors.New("canChat false")
			}
			return err
		}},
		{"chat.bsky.convo.getMessages", "GET", func() error { _, err := c.GetMessages(ctx, "c1", "", 30); return err }},
		{"chat.bsky.convo.sendMessage", "POST", func() error {
			_, err := c.SendMessage(ctx, "c1", chatproxy.MessageInput{Text: "hi"})
			return err
		}},
		{"chat.bsky.convo.updateRead", "POST", func() error { _, err := c.UpdateRead(ctx, "c1", "m1"); return err }},
		{"chat.bsky.convo.updateAllRead", "POST", func() error {
			n, err := c.UpdateAllRead(ctx, "accepted")
			if err == nil && n != 2 {
				err = fmt.Errorf("count %d", n)
			}
			return err
		}},
		{"chat.bsky.convo.acceptConvo", "POST", func() error { _, err := c.AcceptConvo(ctx, "c1"); return err }},
		{"chat.bsky.convo.muteConvo", "POST", func() error { _, err := c.MuteConvo(ctx, "c1"); return err }},
		{"chat.bsky.convo.unmuteConvo", "POST", func() error { _, err := c.UnmuteConvo(ctx, "c1"); return err }},
		{"chat.bsky.convo.leaveConvo", "POST", func() error { _, err := c.LeaveConvo(ctx, "c1"); return err }},
		{"chat.bsky.convo.deleteMessageForSelf", "POST", func() error { _, err := c.DeleteMessageForSelf(ctx, "c1", "m1"); return err }},
		{"chat.bsky.convo.addReaction", "POST", func() error { _, err := c.AddReaction(ctx, "c1", "m1", "❤️"); return err }},
		{"chat.bsky.convo.removeReaction", "POST", func() error { _, err := c.RemoveReaction(ctx, "c1", "m1", "❤️"); return err }},
		{"chat.bsky.convo.getLog", "GET", func() error { _, err := c.GetLog(ctx, "r1"); return err }},
	}
	for _, call := range calls {
		t.Run(call.nsid, func(t *testing.T) {
			before := f.callCount(call.nsid)
			if err := call.run(); err != nil {
				t.Fatalf("call failed: %v", err)
			}
			if f.callCount(call.nsid) != before+1 {
				t.Fatalf("%s was not called exactly once", call.nsid)
			}
			mu.Lock()
			last := seen[len(seen)-1]
			mu.Unlock()
			if last.method != call.method {
				t.Errorf("HTTP method %s, want %s", last.method, call.method)
			}
		})
	}
}

func TestUnknownUnionMembersDoNotFailResponses(t *testing.T) {
	future := map[string]any{"$type": "chat.bsky.convo.defs#someFutureView", "id": "f1", "rev": "rf", "sentAt": "2026-03-04T05:06:07Z"}
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		switch strings.TrimPrefix(r.URL.Path, "/xrpc/") {
		case "chat.bsky.convo.listConvos":
			odd := convoJSON("c2")
			odd["lastMessage"] = future
			odd["kind"] = map[string]any{"$type": "chat.bsky.convo.defs#futureConvoKind"}
			odd["lastReaction"] = map[string]any{"$type": "chat.bsky.convo.defs#futureReaction"}
			broken := convoJSON("c3")
			broken["members"] = "not-a-list"
			writeJSON(w, 200, map[string]any{"convos": []any{
				convoJSON("c1"),
				map[string]any{"$type": "chat.bsky.convo.defs#someFutureView", "id": "x"},
				odd,
				"a string where a convo should be",
				broken,
				nil,
			}})
		case "chat.bsky.convo.getMessages":
			withFutureEmbed := messageJSON("m3")
			withFutureEmbed["text"] = ""
			withFutureEmbed["embed"] = map[string]any{"$type": "chat.bsky.embed.somethingNew#view"}
			system := map[string]any{"$type": "chat.bsky.convo.defs#systemMessageView", "id": "s1", "rev": "rs", "sentAt": "2026-03-04T05:06:07Z",
				"data": map[string]any{"$type": "chat.bsky.convo.defs#systemMessageDataFuture"}}
			writeJSON(w, 200, map[string]any{"messages": []any{
				messageJSON("m1"),
				future,
				map[string]any{"$type": "chat.bsky.convo.defs#deletedMessageView", "id": "d1", "rev": "rd", "sender": map[string]any{"did": carolDID}, "sentAt": "2026-03-04T05:06:07Z"},
				system,
				withFutureEmbed,
				42,
			}})
		case "chat.bsky.convo.getLog":
			writeJSON(w, 200, map[string]any{"cursor": "r10", "logs": []any{
				map[string]any{"$type": "chat.bsky.convo.defs#logCreateMessage", "convoId": "c1", "rev": "r8", "message": messageJSON("m9")},
				map[string]any{"$type": "chat.bsky.convo.defs#logSomethingNew", "convoId": "c1", "rev": "r9"},
				map[string]any{"$type": "chat.bsky.convo.defs#logBeginConvo", "convoId": "c2", "rev": "r10"},
			}})
		}
	})
	c := f.client()
	ctx := context.Background()

	t.Run("listConvos keeps readable convos and skips the rest", func(t *testing.T) {
		p, err := c.ListConvos(ctx, chatproxy.ListConvosParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Convos) != 2 || p.Convos[0].Id != "c1" || p.Convos[1].Id != "c2" || p.Skipped != 4 {
			t.Fatalf("convos %d (skipped %d)", len(p.Convos), p.Skipped)
		}
		lm, ok := chatproxy.LastMessage(p.Convos[1])
		if !ok || lm.Supported() {
			t.Fatalf("last message of unknown type: ok=%v supported=%v", ok, lm.Supported())
		}
		if got := chatproxy.MessageText(lm); got == "" {
			t.Error("no placeholder text for an unsupported last message")
		}
		if _, ok := chatproxy.LastMessage(p.Convos[0]); ok {
			t.Error("convo without last message reported one")
		}
	})
	t.Run("getMessages keeps unknown kinds in place as unsupported", func(t *testing.T) {
		p, err := c.GetMessages(ctx, "c1", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Messages) != 6 {
			t.Fatalf("%d items, want 6", len(p.Messages))
		}
		m := p.Messages
		if !m[0].Supported() || m[0].Message == nil || chatproxy.MessageText(m[0]) != "hello m1" || m[0].SenderDID() != aliceDID {
			t.Errorf("item 0 = %+v", m[0])
		}
		if m[1].Supported() || m[1].ID != "f1" || m[1].Rev != "rf" || m[1].Type != "chat.bsky.convo.defs#someFutureView" {
			t.Errorf("item 1 = %+v", m[1])
		}
		if m[2].Deleted == nil || m[2].SenderDID() != carolDID {
			t.Errorf("item 2 = %+v", m[2])
		}
		if m[3].System == nil || m[3].ID != "s1" {
			t.Errorf("item 3 = %+v", m[3])
		}
		if m[4].Message == nil || chatproxy.MessageText(m[4]) == "" {
			t.Errorf("item 4 (unknown embed) = %+v, text %q", m[4], chatproxy.MessageText(m[4]))
		}
		if m[5].Supported() {
			t.Errorf("item 5 (a number) = %+v", m[5])
		}
	})
	t.Run("getLog keeps unknown events with their convo and rev", func(t *testing.T) {
		p, err := c.GetLog(ctx, "r7")
		if err != nil {
			t.Fatal(err)
		}
		if p.Cursor != "r10" || len(p.Logs) != 3 {
			t.Fatalf("cursor %q, %d logs", p.Cursor, len(p.Logs))
		}
		if e := p.Logs[0].Elem; e == nil || e.ConvoDefs_LogCreateMessage == nil {
			t.Errorf("log 0 = %+v", p.Logs[0])
		}
		if l := p.Logs[1]; l.Elem != nil || l.ConvoID != "c1" || l.Rev != "r9" {
			t.Errorf("log 1 = %+v", l)
		}
		if e := p.Logs[2].Elem; e == nil || e.ConvoDefs_LogBeginConvo == nil {
			t.Errorf("log 2 = %+v", p.Logs[2])
		}
	})
}

func TestInputIsValidatedBeforeCalling(t *testing.T) {
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, messageJSON("m1"))
	})
	c := f.client()
	ctx := context.Background()
	tests := []struct {
		name   string
		run    func() error
		reason string
	}{
		{"empty message is refused", func() error {
			_, err := c.SendMessage(ctx, "c1", chatproxy.MessageInput{Text: "  \n"})
			return err
		}, chatproxy.ReasonMessageEmpty},
		{"1001 graphemes is too long", func() error {
			_, err := c.SendMessage(ctx, "c1", chatproxy.MessageInput{Text: strings.Repeat("👍🏽", 1001)})
			return err
		}, chatproxy.ReasonMessageTooLong},
		{"over 10000 bytes is too long", func() error {
			_, err := c.SendMessage(ctx, "c1", chatproxy.MessageInput{Text: strings.Repeat("👨‍👩‍👧‍👦", 500)})
			return err
		}, chatproxy.ReasonMessageTooLong},
		{"two characters are not a reaction", func() error {
			_, err := c.AddReaction(ctx, "c1", "m1", "ab")
			return err
		}, chatproxy.ReasonReactionInvalidValue},
		{"empty convo id is not found", func() error {
			_, err := c.GetMessages(ctx, "", "", 0)
			return err
		}, chatproxy.ReasonConvoNotFound},
		{"no members is invalid", func() error {
			_, err := c.GetConvoForMembers(ctx, nil)
			return err
		}, chatproxy.ReasonInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if apperr.ReasonOf(err) != tt.reason || apperr.MessageOf(err) == "" {
				t.Fatalf("reason %q message %q, want %q", apperr.ReasonOf(err), apperr.MessageOf(err), tt.reason)
			}
		})
	}
	if n := f.totalCalls(); n != 0 {
		t.Fatalf("%d calls reached the server", n)
	}
	if err := (chatproxy.MessageInput{Text: strings.Repeat("a", 1000)}).Validate(); err != nil {
		t.Fatalf("1000 graphemes refused: %v", err)
	}
}

func TestRecipientNameIsCleaned(t *testing.T) {
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, xrpcErr("MessagesDisabled", ""))
	})
	_, err := f.client().ForRecipient("  Ca\nrol\x00  ").GetConvoForMembers(context.Background(), []string{carolDID})
	if got, want := apperr.MessageOf(err), "Ca rol does not accept direct messages."; got != want {
		t.Fatalf("MessageOf = %q, want %q", got, want)
	}
	long := strings.Repeat("é", 100)
	_, err = f.client().ForRecipient(long).GetConvoForMembers(context.Background(), []string{carolDID})
	if got := apperr.MessageOf(err); strings.Contains(got, long) || !strings.Contains(got, "…") {
		t.Fatalf("long name not shortened: %q", got)
	}
}

// TestConcurrentCallsGetTheirOwnRetryAt checks that rate-limit headers are
// attributed to the call whose response carried them (run with -race).
func TestConcurrentCallsGetTheirOwnRetryAt(t *testing.T) {
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("convoId")
		var n int
		_, _ = fmt.Sscanf(id, "c%d", &n)
		w.Header().Set("Retry-After", fmt.Sprint(n))
		if n%2 == 0 {
			writeJSON(w, 429, xrpcErr("RateLimitExceeded", ""))
		} else {
			writeJSON(w, 503, xrpcErr("NotEnoughResources", ""))
		}
	})
	c := f.client()
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 1; i <= 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := c.GetConvo(ctx, fmt.Sprintf("c%d", i))
			e := apperr.As(err)
			if e == nil {
				t.Errorf("call %d: %v", i, err)
				return
			}
			if want := fixedNow.Add(time.Duration(i) * time.Second); !e.RetryAt.Equal(want) {
				t.Errorf("call %d: RetryAt %v, want %v", i, e.RetryAt, want)
			}
		}(i)
	}
	wg.Wait()
}

func TestPasswordSessionErrorsAreMapped(t *testing.T) {
	var refreshes int
	var mu sync.Mutex
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/xrpc/com.atproto.server.refreshSession":
			mu.Lock()
			refreshes++
			mu.Unlock()
			writeJSON(w, 400, xrpcErr("ExpiredToken", "Token has expired"))
		case "/xrpc/chat.bsky.convo.getConvoForMembers":
			writeJSON(w, 400, xrpcErr("NotFollowedBySender", "recipient requires incoming messages to come from someone they follow"))
		case "/xrpc/chat.bsky.convo.listConvos":
			writeJSON(w, 400, xrpcErr("ExpiredToken", "Token has expired"))
		case "/xrpc/chat.bsky.convo.sendMessage":
			w.Header().Set("Retry-After", "12")
			writeJSON(w, 429, xrpcErr("RateLimitExceeded", ""))
		}
	})
	api := atclient.ResumePasswordSession(atclient.PasswordSessionData{
		AccessToken: "access", RefreshToken: "refresh", AccountDID: syntax.DID(aliceDID), Host: f.srv.URL,
	}, nil)
	c := chatproxy.New(api, testRef, chatproxy.WithClock(clock)).ForRecipient("Carol")
	ctx := context.Background()

	_, err := c.GetConvoForMembers(ctx, []string{carolDID})
	if apperr.ReasonOf(err) != chatproxy.ReasonNotFollowedBySender || apperr.MessageOf(err) != "Carol only accepts messages from people they follow." {
		t.Errorf("not followed: %q %q", apperr.ReasonOf(err), apperr.MessageOf(err))
	}
	_, err = c.ListConvos(ctx, chatproxy.ListConvosParams{})
	if apperr.CodeOf(err) != apperr.Unauthorized || apperr.ReasonOf(err) != chatproxy.ReasonSessionExpired {
		t.Errorf("expired: %q %q (%v)", apperr.CodeOf(err), apperr.ReasonOf(err), err)
	}
	mu.Lock()
	if refreshes != 1 {
		t.Errorf("refreshes = %d, want 1", refreshes)
	}
	mu.Unlock()
	_, err = c.SendMessage(ctx, "c1", chatproxy.MessageInput{Text: "hi"})
	if e := apperr.As(err); e == nil || e.Code != apperr.RateLimited || !e.RetryAt.Equal(fixedNow.Add(12*time.Second)) {
		t.Errorf("rate limited: %+v", e)
	}
}

// oauthSession builds an indigo OAuth ClientSession against the fake PDS,
// with no User-Agent so that APIClient() has nil Headers.
func oauthSession(t *testing.T, host string) *atoauth.ClientSession {
	t.Helper()
	key, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		t.Fatal(err)
	}
	return &atoauth.ClientSession{
		Client: &http.Client{},
		Config: &atoauth.ClientConfig{ClientID: "http://localhost"},
		Data: &atoauth.ClientSessionData{
			AccountDID:              syntax.DID(aliceDID),
			SessionID:               "s1",
			HostURL:                 host,
			AuthServerURL:           host,
			AuthServerTokenEndpoint: host + "/oauth/token",
			AccessToken:             "access",
			RefreshToken:            "refresh",
		},
		DPoPPrivateKey: key,
	}
}

func TestOAuthSessionErrorsAndHeadersAreMapped(t *testing.T) {
	var mu sync.Mutex
	nonceSeen := map[string]bool{}
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/token" {
			writeJSON(w, 400, map[string]string{"error": "invalid_grant", "error_description": "refresh token revoked" + secret})
			return
		}
		if r.Header.Get("DPoP") == "" || !strings.HasPrefix(r.Header.Get("Authorization"), "DPoP ") {
			t.Errorf("%s: not a DPoP request", r.URL.Path)
		}
		switch r.URL.Path {
		case "/xrpc/chat.bsky.convo.sendMessage":
			// First attempt: demand a nonce (indigo retries); second: 429.
			mu.Lock()
			first := !nonceSeen["send"]
			nonceSeen["send"] = true
			mu.Unlock()
			if first {
				w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
				w.Header().Set("DPoP-Nonce", "n1")
				writeJSON(w, 401, xrpcErr("use_dpop_nonce", ""))
				return
			}
			w.Header().Set("Retry-After", "3")
			writeJSON(w, 429, xrpcErr("RateLimitExceeded", ""))
		case "/xrpc/chat.bsky.convo.listConvos":
			w.Header().Set("WWW-Authenticate", `DPoP error="invalid_token", error_description="token expired"`)
			writeJSON(w, 401, xrpcErr("invalid_token", "token expired"))
		case "/xrpc/chat.bsky.convo.getConvo":
			writeJSON(w, 200, map[string]any{"convo": convoJSON("c1")})
		}
	})
	sess := oauthSession(t, f.srv.URL)
	api := sess.APIClient()
	if api.Headers != nil {
		t.Fatalf("expected nil Headers from an OAuth session without User-Agent")
	}
	c := chatproxy.New(api, testRef, chatproxy.WithClock(clock))
	ctx := context.Background()

	if _, err := c.GetConvo(ctx, "c1"); err != nil {
		t.Fatalf("getConvo: %v", err)
	}
	_, err := c.SendMessage(ctx, "c1", chatproxy.MessageInput{Text: "hi"})
	if e := apperr.As(err); e == nil || e.Code != apperr.RateLimited || !e.RetryAt.Equal(fixedNow.Add(3*time.Second)) {
		t.Errorf("after nonce retry: %+v (%v)", e, err)
	}
	_, err = c.ListConvos(ctx, chatproxy.ListConvosParams{})
	if apperr.CodeOf(err) != apperr.Unauthorized || apperr.ReasonOf(err) != chatproxy.ReasonSessionExpired {
		t.Errorf("failed refresh: %q %q (%v)", apperr.CodeOf(err), apperr.ReasonOf(err), err)
	}
	if strings.Contains(apperr.MessageOf(err), strings.TrimSpace(secret)) {
		t.Errorf("message leaks upstream text: %q", apperr.MessageOf(err))
	}
	if api.Headers != nil || api.Client != sess.Client {
		t.Error("New changed the caller's APIClient")
	}
}

func TestAppErrorsPassThrough(t *testing.T) {
	// An *apperr.Error from below (e.g. the OAuth layer saying the session is
	// gone) is returned as is.
	want := &apperr.Error{Code: apperr.Unauthorized, Reason: chatproxy.ReasonSessionExpired, Message: "Please sign in again."}
	api := atclient.NewAPIClient("http://127.0.0.1:1")
	api.Auth = failingAuth{err: want}
	_, err := chatproxy.New(api, testRef).GetConvo(context.Background(), "c1")
	if apperr.As(err) != want {
		t.Fatalf("got %v, want the original *apperr.Error", err)
	}
}

type failingAuth struct{ err error }

func (a failingAuth) DoWithAuth(*http.Client, *http.Request, syntax.NSID) (*http.Response, error) {
	return nil, a.err
}

func TestWrongServiceRefIsReportedToTheOperatorHook(t *testing.T) {
	var fail atomic.Value // the next answer's message
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, xrpcErr("InvalidRequest", fail.Load().(string)))
	})
	var mu sync.Mutex
	var reported []string
	c := chatproxy.New(atclient.NewAPIClient(f.srv.URL), testRef, chatproxy.WithServiceRefProblem(func(ref string, err error) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, ref+" "+apperr.ReasonOf(err))
	}))
	fail.Store("something new went wrong")
	if _, err := c.ListConvos(context.Background(), chatproxy.ListConvosParams{}); apperr.ReasonOf(err) != chatproxy.ReasonInvalidRequest {
		t.Fatalf("ordinary 400: %v", err)
	}
	fail.Store("could not resolve proxy did service url")
	for range 2 {
		_, err := c.ForRecipient("Carol").ListConvos(context.Background(), chatproxy.ListConvosParams{})
		if apperr.ReasonOf(err) != chatproxy.ReasonServiceRefWrong {
			t.Fatalf("reason %q, want %q: %v", apperr.ReasonOf(err), chatproxy.ReasonServiceRefWrong, err)
		}
		if msg := apperr.MessageOf(err); !strings.Contains(msg, "skydm server") {
			t.Errorf("message %q does not say the fault is this server's", msg)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := testRef + " " + chatproxy.ReasonServiceRefWrong
	if len(reported) != 2 || reported[0] != want || reported[1] != want {
		t.Errorf("reported %q, want two %q (the hook decides how often to log)", reported, want)
	}
}
