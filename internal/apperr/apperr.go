// Package apperr is skydm's one error type: every failure that can reach a
// person carries a Code (which page and status to show), a human Message that
// is safe to render, and optionally the internal cause, which is logged but
// never shown.
package apperr

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Code classifies an error for the error path: it picks the HTTP status and
// whether the cause is logged as an internal failure.
type Code string

// The codes skydm uses. Internal is the zero-information default for errors
// that are not *Error.
const (
	Invalid      Code = "invalid"      // the input is wrong; the message says how
	NotFound     Code = "not_found"    // the thing does not exist or is not visible
	Unauthorized Code = "unauthorized" // not signed in, or the session expired or was revoked
	Forbidden    Code = "forbidden"    // signed in but not allowed (e.g. a missing OAuth scope)
	Conflict     Code = "conflict"     // the action clashes with the current state
	RateLimited  Code = "rate_limited" // slow down; RetryAt says until when, when known
	Unavailable  Code = "unavailable"  // an upstream service failed or timed out; try again
	TooLarge     Code = "too_large"    // the request body is larger than skydm reads; the message says what to shorten
	Internal     Code = "internal"     // a bug or an unexpected failure on our side
)

// The reasons more than one package gives or branches on, defined here
// once; a package's own reasons (chatproxy's NotFollowedBySender, oauth's
// IssuerMismatch…) live with it. Callers compare ReasonOf(err) with these,
// never a message or a literal.
const (
	ReasonSessionExpired = "SessionExpired" // the OAuth session is unknown, ended or revoked: sign in again
	ReasonScopeMissing   = "ScopeMissing"   // the session was not granted what the call needs
	ReasonRateLimited    = "RateLimited"    // 429; RetryAt when the server said until when
	ReasonUnavailable    = "Unavailable"    // 5xx, timeout, connection failure: try again
	ReasonCanceled       = "Canceled"       // the caller's context was canceled
	ReasonBudget         = "Budget"         // skydm's own upstream budget (internal/budget) did not send the request; RetryAt set

	// Why a DM was refused or not delivered: the chat service's refusals
	// (chatproxy gives them, the outbox and the pages branch on them) and
	// the outbox's own, all worded by internal/wording.
	ReasonNotFollowedBySender = "NotFollowedBySender" // the recipient accepts messages only from people they follow
	ReasonMessagesDisabled    = "MessagesDisabled"    // the recipient accepts no messages
	ReasonBlocked             = "Blocked"             // a block in either direction
	ReasonRecipientNotFound   = "RecipientNotFound"   // no such account, or it is gone
	ReasonAccountSuspended    = "AccountSuspended"    // a member's account is suspended
	ReasonChatDisabled        = "ChatDisabled"        // the signed-in account may not use chat
	ReasonConvoLocked         = "ConvoLocked"         // the conversation takes no new messages
	ReasonCannotChat          = "CannotChat"          // getConvoAvailability said no and gave no reason
	ReasonTimeout             = "Timeout"             // a call hit its timeout
	ReasonGivenUp             = "GivenUp"             // transient failures for longer than the outbox keeps trying
)

// Error is an error with a Code, a message fit for people, an optional
// machine-readable Reason (such as "NotFollowedBySender" or "ScopeMissing")
// for callers that branch on it, and the internal cause.
type Error struct {
	Code    Code
	Reason  string
	Message string
	RetryAt time.Time
	Err     error
}

// Error returns the human message followed by the cause, for logs.
func (e *Error) Error() string {
	switch {
	case e.Err != nil && e.Message != "":
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	case e.Err != nil:
		return e.Err.Error()
	default:
		return e.Message
	}
}

// Unwrap returns the internal cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error with the given code and human message.
func New(code Code, message string) *Error {
	return &Error{Code: code, Message: message}
}

// Wrap returns an *Error with the given code and human message whose cause
// is err. Wrapping a nil err still returns a non-nil *Error.
func Wrap(err error, code Code, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// As returns the first *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// CodeOf returns the Code of the first *Error in err's chain; Internal for
// any other non-nil error, and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	if e := As(err); e != nil && e.Code != "" {
		return e.Code
	}
	return Internal
}

// ReasonOf returns the Reason of the first *Error in err's chain, or "".
func ReasonOf(err error) string {
	if e := As(err); e != nil {
		return e.Reason
	}
	return ""
}

// genericMessages are shown when an error carries no message of its own.
var genericMessages = map[Code]string{
	Invalid:      "That input could not be used.",
	NotFound:     "We could not find that.",
	Unauthorized: "Please sign in to continue.",
	Forbidden:    "You are not allowed to do that.",
	Conflict:     "That could not be done in the current state.",
	RateLimited:  "Too many requests. Please wait a moment and try again.",
	Unavailable:  "A service we depend on is not answering. Please try again in a moment.",
	TooLarge:     "That is too long to send. Please shorten it and try again.",
	Internal:     "Something went wrong on our side. It has been logged.",
}

// MessageOf returns the message that may be shown to a person for err: the
// Message of its *Error, or a generic sentence for its code. It never
// returns the text of an internal cause. It returns "" for nil.
func MessageOf(err error) string {
	if err == nil {
		return ""
	}
	if e := As(err); e != nil && e.Message != "" && e.Code != Internal {
		return e.Message
	}
	return genericMessages[CodeOf(err)]
}

// Status returns the HTTP status for a code.
func Status(code Code) int {
	switch code {
	case Invalid:
		return http.StatusBadRequest
	case NotFound:
		return http.StatusNotFound
	case Unauthorized:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case Conflict:
		return http.StatusConflict
	case RateLimited:
		return http.StatusTooManyRequests
	case Unavailable:
		return http.StatusServiceUnavailable
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	default:
		return http.StatusInternalServerError
	}
}

// MaxRetryWait is the one bound on how long skydm honours a server's "try
// again later" (Retry-After, RateLimit-Reset): the pages, the outbox and
// live updates all cap a reset at it. A reset further away (a PDS that says
// the year 3000) is taken as "in an hour", when skydm asks again.
const MaxRetryWait = time.Hour

// CapRetryAt returns at, or now+MaxRetryWait when at is later than that.
// The zero time stays zero (the server did not say).
func CapRetryAt(at, now time.Time) time.Time {
	if at.IsZero() {
		return at
	}
	if limit := now.Add(MaxRetryWait); at.After(limit) {
		return limit
	}
	return at
}

// RetryAfterSeconds returns the Retry-After value for at: whole seconds from
// now, rounded up, at most MaxRetryWait; 0 when at is zero or not after now
// (no header is sent then).
func RetryAfterSeconds(at, now time.Time) int {
	if at.IsZero() {
		return 0
	}
	wait := CapRetryAt(at, now).Sub(now)
	if wait <= 0 {
		return 0
	}
	return int((wait + time.Second - 1) / time.Second)
}
