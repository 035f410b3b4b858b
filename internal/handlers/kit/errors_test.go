package kit

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/skydm/skydm/internal/apperr"
)

func testKit(t *testing.T, logs *bytes.Buffer) *Kit {
	t.Helper()
	a, err := LoadAssets(fstest.MapFS{"app.css": {}, "app.js": {}, "favicon.svg": {Data: []byte("<svg/>")}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 4, 15, 0, 0, 0, time.UTC)
	return New(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), a, func() time.Time { return now }, false)
}

// TestErrorIsTheOneAnswerToEveryFailure covers each option of Error and its
// one logging rule.
func TestErrorIsTheOneAnswerToEveryFailure(t *testing.T) {
	rateLimited := &apperr.Error{Code: apperr.RateLimited, Message: "Slow down.",
		RetryAt: time.Date(2026, 3, 4, 15, 0, 42, 0, time.UTC)}
	tests := []struct {
		name       string
		method     string
		accept     string
		err        error
		opts       func(w http.ResponseWriter, shown *string) []ErrorOption
		wantStatus int
		wantForm   bool   // the form was re-rendered
		wantBody   string // in the body
		wantLog    string // level logged, "" → nothing
		wantRetry  string // Retry-After
	}{
		{name: "refusal goes to the form", method: "POST", err: apperr.New(apperr.Invalid, "Bad name."),
			opts: form(), wantStatus: 400, wantForm: true},
		{name: "internal goes to the page and is an ERROR", method: "POST", err: apperr.New(apperr.Internal, ""),
			opts: form(), wantStatus: 500, wantBody: "Something went wrong on our side", wantLog: "level=ERROR"},
		{name: "not found goes to the page unless the form takes it", method: "POST", err: apperr.New(apperr.NotFound, "Gone."),
			opts: form(), wantStatus: 404, wantBody: "Gone."},
		{name: "the form may take a code", method: "POST", err: apperr.New(apperr.NotFound, "No such account."),
			opts: form(apperr.NotFound), wantStatus: 404, wantForm: true},
		{name: "rate limited: WARN, Retry-After and when", method: "POST", err: rateLimited,
			opts: form(), wantStatus: 429, wantForm: true, wantLog: "level=WARN", wantRetry: "42"},
		{name: "a script gets JSON", method: "POST", accept: "application/json", err: apperr.New(apperr.Unavailable, "Down."),
			opts: func(http.ResponseWriter, *string) []ErrorOption {
				return []ErrorOption{JSON(func(msg string) any { return map[string]string{"error": msg} })}
			}, wantStatus: 503, wantBody: `{"error":"Down."}`, wantLog: "level=WARN"},
		{name: "without the JSON option a script gets the page", method: "POST", accept: "application/json",
			err: apperr.New(apperr.Conflict, "Taken."), wantStatus: 409, wantBody: "Taken."},
		{name: "Try again on a GET that failed upstream", method: "GET", err: apperr.New(apperr.Unavailable, "Down."),
			opts: func(http.ResponseWriter, *string) []ErrorOption { return []ErrorOption{Retry()} }, wantStatus: 503, wantBody: `href="/x?y=1"`, wantLog: "level=WARN"},
		{name: "no Try again on a POST", method: "POST", err: apperr.New(apperr.Unavailable, "Down."),
			opts: func(http.ResponseWriter, *string) []ErrorOption { return []ErrorOption{Retry()} }, wantStatus: 503, wantLog: "level=WARN"},
		{name: "an ended session signs in again", method: "POST", err: apperr.New(apperr.Unauthorized, ""),
			opts: form(), wantStatus: 303},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			k := testKit(t, &logs)
			var shown string
			rec := httptest.NewRecorder()
			var opts []ErrorOption
			if tt.opts != nil {
				opts = tt.opts(rec, &shown)
			}
			req := httptest.NewRequest(tt.method, "/x?y=1", nil)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			k.Error(rec, req, tt.err, opts...)
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := shown != ""; got != tt.wantForm {
				t.Errorf("form re-rendered = %v (%q), want %v", got, shown, tt.wantForm)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body %q, want it to contain %q", rec.Body.String(), tt.wantBody)
			}
			if tt.method == "POST" && strings.Contains(rec.Body.String(), `href="/x?y=1"`) {
				t.Errorf("Try again offered on a POST")
			}
			if tt.wantLog == "" && logs.Len() > 0 || tt.wantLog != "" && !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log %q, want %q", logs.String(), tt.wantLog)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After %q, want %q", got, tt.wantRetry)
			}
			if tt.err == rateLimited && !strings.Contains(shown, "You can try again in 42 seconds") {
				t.Errorf("message %q does not say when", shown)
			}
		})
	}
}

// form is a Form option that records the message and writes the status.
func form(also ...apperr.Code) func(w http.ResponseWriter, shown *string) []ErrorOption {
	return func(w http.ResponseWriter, shown *string) []ErrorOption {
		return []ErrorOption{Form(func(status int, msg string) {
			*shown = msg
			w.WriteHeader(status)
		}, also...)}
	}
}

func TestErrorWritesNothingToAClientThatWentAway(t *testing.T) {
	var logs bytes.Buffer
	k := testKit(t, &logs)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	k.Error(rec, httptest.NewRequest("GET", "/x", nil).WithContext(ctx), apperr.New(apperr.Internal, ""))
	if rec.Body.Len() != 0 || !strings.Contains(logs.String(), "level=INFO") || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("body %q, log %q", rec.Body.String(), logs.String())
	}
}
