package apperr

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestMessageOfNeverLeaksInternalCause(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.1:443: secret upstream text")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil gives empty", nil, ""},
		{"plain error gives generic internal", cause, genericMessages[Internal]},
		{"internal with message still generic", Wrap(cause, Internal, "db exploded at row 7"), genericMessages[Internal]},
		{"invalid shows its message", Wrap(cause, Invalid, "Title is required."), "Title is required."},
		{"wrapped twice keeps message", fmt.Errorf("ctx: %w", New(NotFound, "No such project.")), "No such project."},
		{"code without message gets generic", &Error{Code: RateLimited}, genericMessages[RateLimited]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MessageOf(tt.err); got != tt.want {
				t.Fatalf("MessageOf = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCodeAndStatus(t *testing.T) {
	if got := CodeOf(errors.New("x")); got != Internal {
		t.Fatalf("CodeOf(plain) = %q", got)
	}
	if got := CodeOf(nil); got != "" {
		t.Fatalf("CodeOf(nil) = %q", got)
	}
	e := &Error{Code: Forbidden, Reason: "ScopeMissing"}
	if ReasonOf(fmt.Errorf("w: %w", e)) != "ScopeMissing" {
		t.Fatal("reason lost through wrapping")
	}
	if Status(Unavailable) != http.StatusServiceUnavailable || Status("bogus") != http.StatusInternalServerError {
		t.Fatal("status mapping wrong")
	}
}

func TestRetryResetsAreCappedAtOneBound(t *testing.T) {
	now := time.Date(2026, 3, 4, 15, 0, 0, 0, time.UTC)
	year3000 := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := CapRetryAt(year3000, now); !got.Equal(now.Add(MaxRetryWait)) {
		t.Errorf("CapRetryAt(year 3000) = %v, want now + %v", got, MaxRetryWait)
	}
	if got := RetryAfterSeconds(year3000, now); got != int(MaxRetryWait/time.Second) {
		t.Errorf("RetryAfterSeconds(year 3000) = %d, want %d", got, int(MaxRetryWait/time.Second))
	}
	tests := []struct {
		at   time.Time
		want int
	}{
		{time.Time{}, 0},
		{now.Add(-time.Second), 0},
		{now, 0},
		{now.Add(1500 * time.Millisecond), 2},
		{now.Add(42 * time.Second), 42},
	}
	for _, tt := range tests {
		if got := RetryAfterSeconds(tt.at, now); got != tt.want {
			t.Errorf("RetryAfterSeconds(now%+v) = %d, want %d", tt.at.Sub(now), got, tt.want)
		}
	}
	if !CapRetryAt(time.Time{}, now).IsZero() {
		t.Error("a zero reset must stay zero")
	}
}

func TestTooLargeIs413(t *testing.T) {
	if got := Status(TooLarge); got != http.StatusRequestEntityTooLarge {
		t.Errorf("Status(TooLarge) = %d", got)
	}
}
