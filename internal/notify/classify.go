package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
)

// The reasons the outbox adds to internal/chatproxy's (whose Reason*
// constants it uses for everything the chat service says). They are
// recorded as a row's ReasonCode.
const (
	ReasonTimeout    = "Timeout"    // a call hit CallTimeout
	ReasonCannotChat = "CannotChat" // getConvoAvailability said no and gave no reason
	ReasonGivenUp    = "GivenUp"    // transient failures for longer than MaxAge
)

// outcome is what a failure means for the row.
type outcome int

const (
	transient outcome = iota // retry with backoff
	permanent                // not_delivered now
	authFail                 // parked_auth until the sender signs in
)

// failure is a classified error.
type failure struct {
	kind    outcome
	code    string    // machine reason
	retryAt time.Time // from RateLimited / Retry-After, zero if none
	err     error
}

// classify maps an error from Sender or Chat to what the worker does next.
// It prefers the apperr Reason (chatproxy's taxonomy), then the apperr
// Code, then raw transport and XRPC errors (for adapters that pass them
// through); anything unknown is treated as transient, bounded by MaxAge.
func classify(err error) failure {
	f := failure{kind: transient, code: chatproxy.ReasonUnavailable, err: err}
	if e := apperr.As(err); e != nil {
		f.retryAt = e.RetryAt
		switch e.Reason {
		case chatproxy.ReasonNotFollowedBySender, chatproxy.ReasonMessagesDisabled, chatproxy.ReasonBlocked, chatproxy.ReasonRecipientNotFound,
			chatproxy.ReasonAccountSuspended, chatproxy.ReasonChatDisabled, chatproxy.ReasonConvoLocked, chatproxy.ReasonMessageTooLong,
			chatproxy.ReasonMessageEmpty, chatproxy.ReasonInvalidRequest, chatproxy.ReasonForbidden, chatproxy.ReasonNotFound:
			f.kind, f.code = permanent, e.Reason
			return f
		case chatproxy.ReasonSessionExpired, chatproxy.ReasonScopeMissing:
			f.kind, f.code = authFail, e.Reason
			return f
		case chatproxy.ReasonRateLimited, chatproxy.ReasonUnavailable, chatproxy.ReasonNotImplemented, chatproxy.ReasonConvoNotFound, chatproxy.ReasonBadResponse:
			f.code = e.Reason
			return f
		}
		switch e.Code {
		case apperr.Unauthorized:
			f.kind, f.code = authFail, chatproxy.ReasonSessionExpired
		case apperr.Forbidden, apperr.Invalid, apperr.NotFound, apperr.Conflict:
			f.kind, f.code = permanent, firstNonEmpty(e.Reason, chatproxy.ReasonInvalidRequest)
		case apperr.RateLimited:
			f.code = chatproxy.ReasonRateLimited
		}
		return f
	}
	if errors.Is(err, context.DeadlineExceeded) {
		f.code = ReasonTimeout
		return f
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		if netErr.Timeout() {
			f.code = ReasonTimeout
		}
		return f
	}
	var apiErr *atclient.APIError
	if errors.As(err, &apiErr) {
		return classifyAPIError(apiErr, f)
	}
	return f
}

// classifyAPIError is the fallback for raw XRPC errors.
func classifyAPIError(e *atclient.APIError, f failure) failure {
	name, msg := e.Name, strings.ToLower(e.Message)
	switch {
	case name == "NotFollowedBySender" || strings.Contains(msg, "requires incoming messages to come from someone they follow"):
		f.kind, f.code = permanent, chatproxy.ReasonNotFollowedBySender
	case name == "MessagesDisabled" || strings.Contains(msg, "disabled incoming messages"):
		f.kind, f.code = permanent, chatproxy.ReasonMessagesDisabled
	case name == "BlockedActor" || name == "BlockedSubject" || strings.Contains(msg, "block between"):
		f.kind, f.code = permanent, chatproxy.ReasonBlocked
	case name == "RecipientNotFound" || strings.Contains(msg, "recipient does not exist"):
		f.kind, f.code = permanent, chatproxy.ReasonRecipientNotFound
	case name == "AccountSuspended":
		f.kind, f.code = permanent, chatproxy.ReasonAccountSuspended
	case name == "ConvoLocked":
		f.kind, f.code = permanent, chatproxy.ReasonConvoLocked
	case name == "ScopeMissingError" || (name == "InvalidToken" && (strings.Contains(msg, "scope") || strings.Contains(msg, "method"))):
		f.kind, f.code = authFail, chatproxy.ReasonScopeMissing
	case name == "ExpiredToken" || name == "InvalidToken" || name == "AuthMissing" || e.StatusCode == 401:
		f.kind, f.code = authFail, chatproxy.ReasonSessionExpired
	case e.StatusCode == 429:
		f.code = chatproxy.ReasonRateLimited
	case e.StatusCode == 501:
		f.code = chatproxy.ReasonNotImplemented
	case e.StatusCode >= 500 || e.StatusCode == 408:
		f.code = chatproxy.ReasonUnavailable
	case e.StatusCode >= 400:
		f.kind, f.code = permanent, chatproxy.ReasonInvalidRequest
	}
	return f
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// names are the labels used in human reasons.
type names struct {
	recipient     string // "carol.test", or "The project's owner"
	sender        string // "alice.test", or "the requester"/"the notifier account"
	senderIsFiler bool   // the requester sends the DM (default) rather than a notifier
}

// explain returns the human reason and fix for a classified failure. The
// reason names accounts and suits both the requester and the owner; the fix
// is addressed to the requester.
func explain(f failure, n names, maxAge time.Duration) (reason, fix string) {
	you := "you"
	if !n.senderIsFiler {
		you = n.sender
	}
	switch f.code {
	case chatproxy.ReasonNotFollowedBySender:
		return capitalize(n.recipient) + " only accepts DMs from accounts they follow.",
			"Ask them to follow " + you + ", or to allow DMs from everyone, then retry."
	case chatproxy.ReasonMessagesDisabled:
		return capitalize(n.recipient) + " does not accept DMs.",
			"Ask them to allow DMs (from everyone, or from accounts they follow and to follow " + you + "), then retry."
	case ReasonCannotChat:
		return capitalize(n.recipient) + " does not accept DMs from " + n.sender + ".",
			"Ask them to allow DMs from everyone, or to follow " + you + ", then retry."
	case chatproxy.ReasonBlocked:
		return "There is a block between " + n.sender + " and " + n.recipient + ", so Bluesky will not deliver the DM.",
			"Only removing the block would let it through."
	case chatproxy.ReasonRecipientNotFound:
		return capitalize(possessive(n.recipient)) + " account could not be found. It may have been deleted or deactivated.", ""
	case chatproxy.ReasonAccountSuspended:
		return "One of the accounts is suspended, and suspended accounts can't send or receive DMs.", ""
	case chatproxy.ReasonChatDisabled:
		return capitalize(possessive(n.sender)) + " account can't use DMs right now.", ""
	case chatproxy.ReasonConvoLocked:
		return "The conversation between " + n.sender + " and " + n.recipient + " is locked.",
			"Unlock it in Bluesky, then retry."
	case chatproxy.ReasonSessionExpired:
		if n.senderIsFiler {
			return capitalize(possessive(n.sender)) + " sign-in to skydm has expired.",
				"Sign in to skydm again; the DM will be sent then."
		}
		return "The notifier account " + n.sender + " is no longer signed in to skydm.",
			"The DM will be sent when the operator signs " + n.sender + " in again."
	case chatproxy.ReasonScopeMissing:
		if n.senderIsFiler {
			return capitalize(n.sender) + " signed in without allowing skydm to send DMs.",
				"Sign in to skydm again and allow access to your DMs; the DM will be sent then."
		}
		return "The notifier account " + n.sender + " signed in without allowing skydm to send DMs.",
			"The DM will be sent when the operator signs " + n.sender + " in again with DM access."
	case chatproxy.ReasonRateLimited:
		return "Bluesky's chat service asked skydm to slow down. skydm will try again.", ""
	case ReasonTimeout:
		return "Bluesky's chat service took too long to answer. skydm will try again.", ""
	case ReasonGivenUp:
		return "Bluesky's chat service kept failing for " + humanDuration(maxAge) + ".", "Retry to try again."
	}
	if f.kind == permanent {
		return "Bluesky's chat service refused the DM.", "Retry later; if it keeps happening, tell the operator of this skydm."
	}
	return "Bluesky's chat service was not answering. skydm will try again.", ""
}

func possessive(s string) string {
	if strings.HasSuffix(s, "s") {
		return s + "’"
	}
	return s + "’s"
}

// capitalize starts a sentence with one of the fallback labels ("the
// project's owner"); handles such as alice.test keep their case.
func capitalize(s string) string {
	if !strings.HasPrefix(s, "the ") {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// humanDuration renders d as "24 hours", "90 minutes", "1 day", "45 seconds".
func humanDuration(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d >= time.Minute && d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	default:
		return plural(int64(d.Round(time.Second)/time.Second), "second")
	}
}
