package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/apperr"
)

func TestClassify(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		err     error
		kind    outcome
		code    string
		retryAt time.Time
	}{
		{"not followed is permanent", &apperr.Error{Code: apperr.Forbidden, Reason: "NotFollowedBySender"}, permanent, "NotFollowedBySender", time.Time{}},
		{"disabled is permanent", &apperr.Error{Code: apperr.Forbidden, Reason: "MessagesDisabled"}, permanent, "MessagesDisabled", time.Time{}},
		{"blocked is permanent", &apperr.Error{Code: apperr.Forbidden, Reason: "Blocked"}, permanent, "Blocked", time.Time{}},
		{"recipient gone is permanent", &apperr.Error{Code: apperr.NotFound, Reason: "RecipientNotFound"}, permanent, "RecipientNotFound", time.Time{}},
		{"expired session parks", &apperr.Error{Code: apperr.Unauthorized, Reason: "SessionExpired"}, authFail, "SessionExpired", time.Time{}},
		{"missing scope parks", &apperr.Error{Code: apperr.Forbidden, Reason: "ScopeMissing"}, authFail, "ScopeMissing", time.Time{}},
		{"rate limit is transient with RetryAt", &apperr.Error{Code: apperr.RateLimited, Reason: "RateLimited", RetryAt: at}, transient, "RateLimited", at},
		{"unavailable is transient", &apperr.Error{Code: apperr.Unavailable, Reason: "Unavailable"}, transient, "Unavailable", time.Time{}},
		{"unknown unauthorized parks", &apperr.Error{Code: apperr.Unauthorized}, authFail, "SessionExpired", time.Time{}},
		{"unknown internal is transient", &apperr.Error{Code: apperr.Internal}, transient, "Unavailable", time.Time{}},
		{"deadline is a timeout", fmt.Errorf("call: %w", context.DeadlineExceeded), transient, "Timeout", time.Time{}},
		{"network error is transient", &net.OpError{Op: "dial", Err: errors.New("refused")}, transient, "Unavailable", time.Time{}},
		{"raw 503", &atclient.APIError{StatusCode: 503}, transient, "Unavailable", time.Time{}},
		{"raw 429", &atclient.APIError{StatusCode: 429, Name: "RateLimitExceeded"}, transient, "RateLimited", time.Time{}},
		{"raw follow gate by message", &atclient.APIError{StatusCode: 400, Name: "InvalidRequest",
			Message: "recipient requires incoming messages to come from someone they follow"}, permanent, "NotFollowedBySender", time.Time{}},
		{"raw expired token", &atclient.APIError{StatusCode: 400, Name: "ExpiredToken"}, authFail, "SessionExpired", time.Time{}},
		{"raw bad token method", &atclient.APIError{StatusCode: 400, Name: "InvalidToken", Message: "Bad token method"}, authFail, "ScopeMissing", time.Time{}},
		{"raw other 400", &atclient.APIError{StatusCode: 400, Name: "InvalidRequest"}, permanent, "InvalidRequest", time.Time{}},
		{"anything else is transient", errors.New("boom"), transient, "Unavailable", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := classify(tc.err)
			if f.kind != tc.kind || f.code != tc.code || !f.retryAt.Equal(tc.retryAt) {
				t.Errorf("classify = kind %d code %q retryAt %v; want %d %q %v", f.kind, f.code, f.retryAt, tc.kind, tc.code, tc.retryAt)
			}
		})
	}
}

func TestBackoffDoublesUpToTheCap(t *testing.T) {
	p := newPolicy(Config{BaseBackoff: 2 * time.Second, MaxBackoff: 30 * time.Second})
	for attempts, want := range map[int]time.Duration{1: 2 * time.Second, 2: 4 * time.Second, 4: 16 * time.Second, 5: 30 * time.Second, 60: 30 * time.Second} {
		if got := p.backoff(attempts); got != want {
			t.Errorf("backoff(%d) = %v, want %v", attempts, got, want)
		}
	}
}
