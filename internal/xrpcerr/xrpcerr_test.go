package xrpcerr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/apperr"
)

func TestMapGivesEachFailureItsCodeReasonAndWords(t *testing.T) {
	w := Words{Forbidden: "skydm may not save this.", Refused: "Your PDS did not accept it.", RefusedReason: "InvalidRecord", Outcome: "Nothing was saved."}
	api := func(status int, name string) error { return &atclient.APIError{StatusCode: status, Name: name} }
	mine := &apperr.Error{Code: apperr.Conflict, Reason: "Mine", Message: "kept"}
	for _, tc := range []struct {
		name   string
		err    error
		code   apperr.Code
		reason string
		says   string
	}{
		{"401", api(401, ""), apperr.Unauthorized, apperr.ReasonSessionExpired, "sign in again"},
		{"ExpiredToken", api(400, "ExpiredToken"), apperr.Unauthorized, apperr.ReasonSessionExpired, "sign in again"},
		{"AuthMissing", api(400, "AuthMissing"), apperr.Unauthorized, apperr.ReasonSessionExpired, "sign in again"},
		{"403", api(403, "Forbidden"), apperr.Forbidden, apperr.ReasonScopeMissing, "skydm may not save this."},
		{"429", api(429, "RateLimitExceeded"), apperr.RateLimited, apperr.ReasonRateLimited, "slow down"},
		{"502", api(502, ""), apperr.Unavailable, apperr.ReasonUnavailable, "not answering"},
		{"400", api(400, "InvalidRecord"), apperr.Invalid, "InvalidRecord", "did not accept"},
		{"timeout", fmt.Errorf("post: %w", context.DeadlineExceeded), apperr.Unavailable, apperr.ReasonUnavailable, "too long"},
		{"canceled", context.Canceled, apperr.Unavailable, apperr.ReasonCanceled, "canceled"},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, apperr.Unavailable, apperr.ReasonUnavailable, "not answering"},
		{"dead refresh token", errors.New("token refresh failed: invalid_grant"), apperr.Unauthorized, apperr.ReasonSessionExpired, "sign in again"},
		{"anything else", errors.New("boom"), apperr.Internal, "", ""},
	} {
		got := Map(tc.err, w)
		if apperr.CodeOf(got) != tc.code || apperr.ReasonOf(got) != tc.reason {
			t.Errorf("%s: code %q reason %q, want %q %q", tc.name, apperr.CodeOf(got), apperr.ReasonOf(got), tc.code, tc.reason)
		}
		msg := apperr.MessageOf(got)
		if !strings.Contains(strings.ToLower(msg), strings.ToLower(tc.says)) {
			t.Errorf("%s: message %q does not say %q", tc.name, msg, tc.says)
		}
		if tc.code != apperr.Internal && !strings.HasSuffix(msg, " Nothing was saved.") {
			t.Errorf("%s: message %q does not end with the outcome", tc.name, msg)
		}
		if !errors.Is(got, tc.err) {
			t.Errorf("%s: the cause is not kept", tc.name)
		}
	}
	if got := Map(mine, w); got != error(mine) {
		t.Errorf("an *apperr.Error is mapped again: %v", got)
	}
	if Map(nil, w) != nil {
		t.Error("Map(nil) is not nil")
	}
}
