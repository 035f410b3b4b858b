// Package xrpcerr maps a failed XRPC call to a user's PDS (indigo's
// atclient errors, timeouts, network failures, a dead refresh token) to
// skydm's error vocabulary: the one mapper for the repository calls that
// projects, change requests and the chat settings make. Chat calls have
// their own, richer taxonomy in chatproxy, which names the chat service's
// refusals.
package xrpcerr

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/apperr"
)

// Words are what differs between callers: what a refusal means for the
// thing they wrote, and what became of it.
type Words struct {
	Forbidden     string // 403: what skydm is not allowed to do, and how to allow it
	Refused       string // any other 4xx: the PDS did not accept the request
	RefusedReason string // the Reason of a refusal
	Outcome       string // appended to every message, e.g. "Nothing was saved." ("" for none)
}

// Map returns err as an *apperr.Error in the shared vocabulary: an
// *apperr.Error already in err's chain is returned as it is; 401 and the
// expired-token names are SessionExpired; 403 ScopeMissing; 429
// RateLimited; 5xx, timeouts and network failures Unavailable; other 4xx
// Invalid with w.RefusedReason; a canceled context Canceled; anything else
// Internal.
func Map(err error, w Words) error {
	if err == nil || apperr.As(err) != nil {
		return err
	}
	say := func(code apperr.Code, reason, msg string) error {
		if w.Outcome != "" {
			msg += " " + w.Outcome
		}
		return &apperr.Error{Code: code, Reason: reason, Message: msg, Err: err}
	}
	const (
		expired     = "Your session has expired. Please sign in again."
		unavailable = "Your PDS (the server that holds your account's data) is not answering. Please try again in a moment."
	)
	var apiErr *atclient.APIError
	var netErr net.Error
	switch {
	case errors.As(err, &apiErr):
		switch s := apiErr.StatusCode; {
		case s == 401 || apiErr.Name == "ExpiredToken" || apiErr.Name == "InvalidToken" || apiErr.Name == "AuthMissing":
			return say(apperr.Unauthorized, apperr.ReasonSessionExpired, expired)
		case s == 403:
			return say(apperr.Forbidden, apperr.ReasonScopeMissing, w.Forbidden)
		case s == 429:
			return say(apperr.RateLimited, apperr.ReasonRateLimited, "Your PDS asked us to slow down. Please wait a moment and try again.")
		case s >= 500:
			return say(apperr.Unavailable, apperr.ReasonUnavailable, unavailable)
		}
		return say(apperr.Invalid, w.RefusedReason, w.Refused)
	case errors.Is(err, context.Canceled):
		return say(apperr.Unavailable, apperr.ReasonCanceled, "The request was canceled.")
	case errors.Is(err, context.DeadlineExceeded):
		return say(apperr.Unavailable, apperr.ReasonUnavailable, "Your PDS took too long to answer. Please try again in a moment.")
	case errors.As(err, &netErr):
		return say(apperr.Unavailable, apperr.ReasonUnavailable, unavailable)
	}
	// indigo's OAuth session reports a dead refresh token as a plain error.
	if msg := strings.ToLower(err.Error()); strings.Contains(msg, "refresh") && strings.Contains(msg, "token") {
		return say(apperr.Unauthorized, apperr.ReasonSessionExpired, expired)
	}
	return apperr.Wrap(err, apperr.Internal, "")
}
