package notify

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/wording"
)

// The reasons the outbox adds to internal/chatproxy's (whose Reason*
// constants it uses for everything the chat service says). They are
// recorded as a row's ReasonCode.
const (
	ReasonTimeout    = apperr.ReasonTimeout    // a call hit CallTimeout
	ReasonCannotChat = apperr.ReasonCannotChat // getConvoAvailability said no and gave no reason
	ReasonGivenUp    = apperr.ReasonGivenUp    // transient failures for longer than MaxAge
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
// It reads the apperr Reason (chatproxy's taxonomy), then the apperr Code;
// timeouts are the outbox's own Timeout; a raw XRPC error (from an adapter
// that passed it through) is first named by chatproxy.MapError, the one
// mapping of chat errors. Anything unknown is transient, bounded by MaxAge.
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
		// A raw XRPC error (an adapter passed it through): chat's one
		// taxonomy names it, then it is classified like any other.
		return classify(chatproxy.MapError(err))
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

// explain returns the human reason and fix for a classified failure, from
// the one table of such sentences (internal/wording). The reason names
// accounts and suits both the requester and the owner; the fix is
// addressed to the requester.
func explain(f failure, n names, maxAge time.Duration) (reason, fix string) {
	return wording.ToRequester(f.code, f.kind == permanent,
		wording.Delivery{Recipient: n.recipient, Sender: n.sender, SenderIsFiler: n.senderIsFiler}, maxAge)
}
