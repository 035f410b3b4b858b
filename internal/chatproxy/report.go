package chatproxy

import (
	"context"
	"strings"

	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/rivo/uniseg"

	"github.com/skydm/skydm/internal/apperr"
)

// DefaultModerationService is Bluesky's moderation service, the DID
// reports go to unless configured otherwise (WithModerationService).
const DefaultModerationService = "did:plc:ar7c4by46qjdydhdevvrndac"

// Report reason types (com.atproto.moderation.defs#reasonType). skydm
// offers the ones the official app offers for a chat message; the newer
// tools.ozone.report.defs#… values are known values too, but the
// moderation service accepts these.
const (
	ReasonTypeSpam       = "com.atproto.moderation.defs#reasonSpam"
	ReasonTypeViolation  = "com.atproto.moderation.defs#reasonViolation"
	ReasonTypeMisleading = "com.atproto.moderation.defs#reasonMisleading"
	ReasonTypeSexual     = "com.atproto.moderation.defs#reasonSexual"
	ReasonTypeRude       = "com.atproto.moderation.defs#reasonRude"
	ReasonTypeOther      = "com.atproto.moderation.defs#reasonOther"
)

// MaxReportGraphemes is the longest report text (createReport's reason:
// maxGraphemes 2000).
const MaxReportGraphemes = 2000

// Report is one com.atproto.moderation.createReport. Subject is a message
// (MessageID set: chat.bsky.convo.defs#messageRef) or a whole conversation
// or group (chat.bsky.convo.defs#convoRef, as the official app sends when
// reporting a conversation).
type Report struct {
	ReasonType string // one of the ReasonType constants
	Reason     string // optional text, at most MaxReportGraphemes
	DID        string // the sender of the message; for a convo, the member reported
	ConvoID    string
	MessageID  string // "" → the conversation
}

// subject returns the report's subject object. The createReport union is
// open: the chat refs are what the moderation service takes for chat.
func (r Report) subject() map[string]any {
	if r.MessageID != "" {
		return map[string]any{"$type": "chat.bsky.convo.defs#messageRef", "did": r.DID, "convoId": r.ConvoID, "messageId": r.MessageID}
	}
	return map[string]any{"$type": "chat.bsky.convo.defs#convoRef", "did": r.DID, "convoId": r.ConvoID}
}

// WithModerationService sets the DID of the moderation service that
// CreateReport sends to (its #atproto_labeler service); "" keeps
// DefaultModerationService.
func WithModerationService(did string) Option {
	return func(c *Client) {
		if did != "" {
			c.modDID = did
		}
	}
}

// ModerationService returns the DID reports go to.
func (c *Client) ModerationService() string {
	if c.modDID == "" {
		return DefaultModerationService
	}
	return c.modDID
}

// Messages of report failures whose chat wording would mislead.
const (
	msgReportInvalid      = "The moderation service could not accept this report."
	msgReportUnavailable  = "The moderation service is not answering right now. Your report was not sent; please try again in a moment."
	msgReportRefWrong     = "Reports can't be sent from this skydm server because of a mistake in its settings. Its operator has been alerted; please try again later."
	msgReportNoReasonType = "Choose why you are reporting this."
)

// CreateReport sends r with com.atproto.moderation.createReport through
// the account's PDS (the same signed session as the chat calls) with
// Atproto-Proxy: <moderation service DID>#atproto_labeler. Errors go
// through the one upstream mapping, worded for a report: Invalid for a
// missing reason type, text over MaxReportGraphemes or a missing subject
// (nothing is sent); ServiceRefWrong when the PDS cannot reach the
// moderation service (the operator hook hears the labeler ref).
func (c *Client) CreateReport(ctx context.Context, r Report) error {
	if err := CheckReport(r); err != nil {
		return err
	}
	body := map[string]any{"reasonType": r.ReasonType, "subject": r.subject()}
	if r.Reason != "" {
		body["reason"] = r.Reason
	}
	ref := c.ModerationService() + "#atproto_labeler"
	api := c.api.WithService(ref)
	err := c.doVia(ctx, ref, func(ctx context.Context) error {
		return api.LexDo(ctx, lexutil.Procedure, "application/json", "com.atproto.moderation.createReport", nil, body, nil)
	})
	return reportError(err)
}

// CheckReport returns Invalid, with the message for the person, when r
// has no reason type, text over MaxReportGraphemes or no subject (the one
// check CreateReport makes before calling).
func CheckReport(r Report) error {
	switch {
	case strings.TrimSpace(r.ReasonType) == "":
		return &apperr.Error{Code: apperr.Invalid, Reason: ReasonInvalidRequest, Message: msgReportNoReasonType}
	case uniseg.GraphemeClusterCount(r.Reason) > MaxReportGraphemes || len(r.Reason) > 10*MaxReportGraphemes:
		return &apperr.Error{Code: apperr.Invalid, Reason: ReasonInvalidRequest,
			Message: "Your report's text is too long; it can be at most 2000 characters."}
	case !strings.HasPrefix(r.DID, "did:") || strings.TrimSpace(r.ConvoID) == "":
		return &apperr.Error{Code: apperr.Invalid, Reason: ReasonInvalidRequest, Message: "There is nothing to report."}
	}
	return nil
}

// reportError rewords the outcomes whose message speaks of the chat
// service or of direct messages.
func reportError(err error) error {
	e := apperr.As(err)
	if e == nil {
		return err
	}
	msg := ""
	switch e.Reason {
	case ReasonServiceRefWrong:
		msg = msgReportRefWrong
	case ReasonUnavailable, ReasonNotImplemented, ReasonBadResponse:
		msg = msgReportUnavailable
	case ReasonInvalidRequest, ReasonForbidden, ReasonNotFound:
		msg = msgReportInvalid
	default:
		return err
	}
	cp := *e
	cp.Message = msg
	return &cp
}
