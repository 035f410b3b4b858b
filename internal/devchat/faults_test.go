package devchat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestFaultFailsTheNextNCallsThenClears(t *testing.T) {
	e := newEnv(t, true)
	alice := e.user("alice")
	const m = "chat.bsky.convo.listConvos"
	if err := e.srv.InjectFault(Fault{Method: m, Status: http.StatusServiceUnavailable, Count: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		r := e.query(alice, m, nil)
		wantErr(t, r, http.StatusServiceUnavailable, "NotEnoughResources", "")
		if r.header.Get("Retry-After") != "" {
			t.Errorf("call %d: Retry-After without RetryAfter", i)
		}
	}
	ok[map[string]any](t, e.query(alice, m, nil))
	if n := e.srv.Calls(m); n != 3 {
		t.Errorf("Calls = %d, want 3", n)
	}
	ok[map[string]any](t, e.query(alice, "chat.bsky.convo.getLog", nil)) // other methods unaffected
}

func TestRateLimitFaultSendsRateLimitHeaders(t *testing.T) {
	e := newEnv(t, true)
	alice := e.user("alice")
	reset := time.Now().Add(90 * time.Second).Truncate(time.Second)
	if err := e.srv.InjectFault(Fault{Method: "*", Status: http.StatusTooManyRequests, Count: 1, RetryAfter: 30 * time.Second, RatelimitReset: reset}); err != nil {
		t.Fatal(err)
	}
	r := e.query(alice, "chat.bsky.convo.getLog", nil)
	wantErr(t, r, http.StatusTooManyRequests, "RateLimitExceeded", "")
	for h, want := range map[string]string{
		"ratelimit-reset":     strconv.FormatInt(reset.Unix(), 10),
		"ratelimit-remaining": "0",
		"Retry-After":         "30",
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}

	// Without explicit times: reset a minute out, Retry-After to match.
	if err := e.srv.InjectFault(Fault{Method: "chat.bsky.convo.getLog", Status: http.StatusTooManyRequests, Count: 1}); err != nil {
		t.Fatal(err)
	}
	r = e.query(alice, "chat.bsky.convo.getLog", nil)
	resetAt, _ := strconv.ParseInt(r.header.Get("ratelimit-reset"), 10, 64)
	if d := time.Until(time.Unix(resetAt, 0)); d < 55*time.Second || d > 61*time.Second || r.header.Get("Retry-After") == "" {
		t.Errorf("default reset in %v, Retry-After %q", d, r.header.Get("Retry-After"))
	}
}

func TestHangingFaultEndsWhenTheClientGivesUp(t *testing.T) {
	e := newEnv(t, true)
	alice := e.user("alice")
	const m = "chat.bsky.convo.getConvo"
	if err := e.srv.InjectFault(Fault{Method: m, Hang: true, Count: 1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.raw(ctx, http.MethodGet, m, "Bearer "+e.token(alice, m), nil, nil)
		done <- err
	}()
	waitFor(t, "the hanging call to arrive", func() bool { return e.srv.Calls(m) == 1 })
	select {
	case err := <-done:
		t.Fatalf("call returned while hanging: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("call did not end after cancel")
	}
	wantErr(t, e.query(alice, m, nil), http.StatusBadRequest, "InvalidRequest", "convoId") // fault used up
}

func TestFaultAdminEndpoints(t *testing.T) {
	e := newEnv(t, true)
	alice := e.user("alice")
	post := func(body string) *http.Response {
		res, err := e.ts.Client().Post(e.ts.URL+"/_devchat/faults", "application/json", bytes.NewBufferString(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := post(`{"method":"chat.bsky.convo.sendMessage","status":429,"retryAfter":"5s","ratelimitReset":1900000000}`); res.StatusCode != http.StatusOK {
		t.Fatalf("POST fault: %d", res.StatusCode)
	}
	if res := post(`{"method":"not an nsid","status":503}`); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("POST bad fault: %d", res.StatusCode)
	}
	r := e.proc(alice, "chat.bsky.convo.sendMessage", map[string]any{"convoId": "x", "message": map[string]string{"text": "x"}})
	if r.status != http.StatusTooManyRequests || r.header.Get("ratelimit-reset") != "1900000000" || r.header.Get("Retry-After") != "5" {
		t.Fatalf("faulted call: %d %v", r.status, r.header)
	}

	req, _ := http.NewRequest(http.MethodDelete, e.ts.URL+"/_devchat/faults", nil)
	res, err := e.ts.Client().Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("DELETE faults: %v %v", err, res)
	}
	res.Body.Close()
	if r := e.proc(alice, "chat.bsky.convo.sendMessage", map[string]any{"convoId": "x", "message": map[string]string{"text": "x"}}); r.status != http.StatusBadRequest {
		t.Fatalf("fault survived DELETE: %d", r.status)
	}

	res, err = e.ts.Client().Get(e.ts.URL + "/_devchat/calls")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var calls struct {
		Calls map[string]int `json:"calls"`
	}
	if err := json.NewDecoder(res.Body).Decode(&calls); err != nil || calls.Calls["chat.bsky.convo.sendMessage"] != 2 {
		t.Fatalf("calls = %+v, %v", calls, err)
	}
}

func TestFaultInjectionIsOffByDefault(t *testing.T) {
	e := newEnv(t, false)
	if err := e.srv.InjectFault(Fault{Method: "chat.bsky.convo.getLog", Status: 503}); err == nil {
		t.Fatal("InjectFault succeeded with Faults off")
	}
	for _, path := range []string{"/_devchat/calls", "/_devchat/faults"} {
		res, err := e.ts.Client().Get(e.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, res.StatusCode)
		}
	}
}

func TestFaultJSONRoundTrips(t *testing.T) {
	in := Fault{Method: "*", Status: 429, Count: 3, RetryAfter: 1500 * time.Millisecond, RatelimitReset: time.Unix(1900000000, 0).UTC(), Hang: false}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Fault
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("%s decoded to %+v", b, out)
	}
	if err := json.Unmarshal([]byte(`{"method":"*","retryAfter":"soon"}`), &out); err == nil {
		t.Fatal("bad retryAfter accepted")
	}
}
