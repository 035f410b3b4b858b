package apperr

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
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
