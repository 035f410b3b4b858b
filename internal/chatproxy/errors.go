package chatproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/wording"
)

// Reasons carried in apperr.Error.Reason by this package. Callers branch on
// these (apperr.ReasonOf), never on messages.
const (
	ReasonNotFollowedBySender    = apperr.ReasonNotFollowedBySender // recipient accepts messages only from people they follow
	ReasonMessagesDisabled       = apperr.ReasonMessagesDisabled    // recipient accepts no messages
	ReasonBlocked                = apperr.ReasonBlocked             // a block in either direction (BlockedActor / BlockedSubject)
	ReasonRecipientNotFound      = apperr.ReasonRecipientNotFound   // no such account, or it is gone
	ReasonAccountSuspended       = apperr.ReasonAccountSuspended    // a member's account is suspended
	ReasonChatDisabled           = apperr.ReasonChatDisabled        // the signed-in account may not use chat
	ReasonConvoNotFound          = "ConvoNotFound"                  // InvalidConvo: no such convo, or the viewer left it
	ReasonConvoLocked            = apperr.ReasonConvoLocked         // the convo is locked; no new messages
	ReasonReactionLimitReached   = "ReactionLimitReached"           // too many reactions by the viewer on one message
	ReasonReactionMessageDeleted = "ReactionMessageDeleted"         // the message is deleted
	ReasonReactionInvalidValue   = "ReactionInvalidValue"           // not a single emoji
	ReasonReactionNotAllowed     = "ReactionNotAllowed"             // e.g. a system message
	ReasonMessageTooLong         = "MessageTooLong"                 // over 1000 graphemes / 10000 bytes
	ReasonMessageEmpty           = "MessageEmpty"                   // nothing to send
	ReasonReplyTargetNotFound    = "ReplyTargetNotFound"            // the message replied to is not in the convo (any more)
	ReasonRateLimited            = apperr.ReasonRateLimited         // 429; RetryAt when the server said
	ReasonScopeMissing           = apperr.ReasonScopeMissing        // the session may not call chat.bsky.*
	ReasonSessionExpired         = apperr.ReasonSessionExpired      // sign in again
	ReasonUnavailable            = apperr.ReasonUnavailable         // 5xx, timeout, connection failure
	ReasonServiceRefWrong        = "ServiceRefWrong"                // the PDS cannot resolve skydm's chat service ref: skydm's configuration
	ReasonNotImplemented         = "NotImplemented"                 // the chat service does not know the method
	ReasonCanceled               = apperr.ReasonCanceled            // the caller's context was canceled
	ReasonInvalidRequest         = "InvalidRequest"                 // any other 4xx
	ReasonForbidden              = "Forbidden"                      // any other 403
	ReasonNotFound               = "NotFound"                       // any other 404
	ReasonBadResponse            = "BadResponse"                    // a 2xx response this client could not read

	// Join links and join requests (chat.bsky.group.*JoinLink*, *JoinRequest*, requestJoin).
	ReasonFollowRequired     = "FollowRequired"     // the link is for people the owner follows
	ReasonLinkDisabled       = "LinkDisabled"       // the owner turned the link off
	ReasonMemberLimitReached = "MemberLimitReached" // the group is full
	ReasonUserKicked         = "UserKicked"         // the viewer was removed from the group
	ReasonJoinLinkInvalid    = "JoinLinkInvalid"    // InvalidCode: no such link
	ReasonJoinLinkExists     = "JoinLinkExists"     // EnabledJoinLinkAlreadyExists: one enabled link per group
	ReasonNotOwner           = "NotOwner"           // InsufficientRole: only the owner may
	ReasonNoJoinLink         = "NoJoinLink"         // the group has no link yet
	ReasonLinkAlreadyEnabled = "LinkAlreadyEnabled" // enabling a link that is on
	ReasonNoJoinRequest      = "NoJoinRequest"      // InvalidJoinRequest: no such pending request

	// Group management (chat.bsky.group.createGroup, addMembers, editGroup, convo.lock/unlockConvo, leaveConvo).
	ReasonUserForbidsGroups  = "UserForbidsGroups"           // the member's allowGroupInvites does not let the viewer add them
	ReasonNewAccountNoGroups = "NewAccountCannotCreateGroup" // the viewer's account is too new to create groups
	ReasonLockedByModeration = "ConvoLockedByModeration"     // moderation locked the group; the owner cannot unlock it
	ReasonOwnerCannotLeave   = "OwnerCannotLeave"            // the owner must lock the group before leaving
)

// Human messages. None of them contains upstream text.
const (
	msgRecipientNotFound  = "We could not find that account. It may have been deleted or deactivated."
	msgAccountSuspended   = "Suspended accounts can't take part in direct messages."
	msgChatDisabled       = "Your account can't use direct messages right now."
	msgConvoNotFound      = "This conversation does not exist any more, or you have left it."
	msgConvoLocked        = "This conversation is locked. No new messages can be sent."
	msgReactionLimit      = "You have added as many reactions to this message as you can."
	msgReactionDeleted    = "That message was deleted, so its reactions can't change."
	msgReactionInvalid    = "Reactions must be a single emoji."
	msgReactionNotAllowed = "You can't react to this message."
	msgMessageTooLong     = "That message is too long. Messages can be at most 1000 characters."
	msgMessageEmpty       = "Write a message first."
	msgRateLimited        = "Too many requests to the chat service. Please wait a moment and try again."
	msgScopeMissing       = "To use DMs, sign in again and allow skydm to access your messages."
	msgSessionExpired     = "Your session has expired. Please sign in again."
	msgUnavailable        = "Bluesky's chat service is not answering right now. Please try again in a moment."
	msgServiceRefWrong    = "Direct messages are not working on this skydm server because of a mistake in its settings. Its operator has been alerted; please try again later."
	msgNotImplemented     = "The chat service does not support this yet."
	msgCanceled           = "The request was canceled."
	msgInvalidRequest     = "The chat service could not accept that request."
	msgForbidden          = "The chat service did not allow that."
	msgNotFound           = "The chat service could not find that."
	msgBadResponse        = "The chat service sent a reply skydm could not read."
	msgReplyTargetMissing = "The message you replied to is no longer there."
	msgDeleteNotAllowed   = "That message can't be deleted."

	msgLinkDisabled       = "This join link has been turned off by the group's owner."
	msgMemberLimit        = "The group is full."
	msgUserKicked         = "You were removed from this group, so you can't join it again with this link."
	msgJoinLinkInvalid    = "This join link does not exist."
	msgJoinLinkExists     = "This group already has a join link. Turn it off before making a new one."
	msgNotOwner           = "Only the group's owner can do that."
	msgNoJoinLink         = "This group has no join link yet."
	msgLinkAlreadyEnabled = "The join link is already on."
	msgNoJoinRequest      = "That request to join is no longer waiting: it may have been approved, rejected or withdrawn."

	msgNewAccountNoGroups = "Your account is too new to create group chats. Please try again later."
	msgLockedByModeration = "This group was locked by Bluesky's moderators, so it can't be unlocked."
	msgOwnerCannotLeave   = "As the owner, lock the group before you leave it."
)

// followRequired words FollowRequired with the owner's name (ForRecipient).
func followRequired(owner string) string {
	if owner == "" {
		return "Only people the group's owner follows can join this group."
	}
	return "Only people " + owner + " follows can join this group."
}

// kind is one outcome of the taxonomy: code, reason and a message maker.
type kind struct {
	code   apperr.Code
	reason string
	msg    func(recipient string) string
}

func fixed(s string) func(string) string { return func(string) string { return s } }

// blockSentence names the other person between before and after ("this
// account" when unnamed).
func blockSentence(before, after string) func(string) string {
	return func(recipient string) string {
		if recipient == "" {
			recipient = "this account"
		}
		return before + recipient + after
	}
}

// toSender words a refusal as the sender reads it (internal/wording).
func toSender(reason string) func(string) string {
	return func(recipient string) string { msg, _ := wording.ToSender(reason, recipient); return msg }
}

var (
	kNotFollowed       = kind{apperr.Forbidden, ReasonNotFollowedBySender, toSender(ReasonNotFollowedBySender)}
	kDisabled          = kind{apperr.Forbidden, ReasonMessagesDisabled, toSender(ReasonMessagesDisabled)}
	kBlocked           = kind{apperr.Forbidden, ReasonBlocked, toSender(ReasonBlocked)}
	kBlocking          = kind{apperr.Forbidden, ReasonBlocked, blockSentence("You have blocked ", ". Unblock them to send messages.")}
	kBlockedBy         = kind{apperr.Forbidden, ReasonBlocked, blockSentence("You can't message ", ".")}
	kRecipientNotFound = kind{apperr.NotFound, ReasonRecipientNotFound, fixed(msgRecipientNotFound)}
	kSuspended         = kind{apperr.Forbidden, ReasonAccountSuspended, fixed(msgAccountSuspended)}
	kChatDisabled      = kind{apperr.Forbidden, ReasonChatDisabled, fixed(msgChatDisabled)}
	kConvoNotFound     = kind{apperr.NotFound, ReasonConvoNotFound, fixed(msgConvoNotFound)}
	kConvoLocked       = kind{apperr.Conflict, ReasonConvoLocked, fixed(msgConvoLocked)}
	kReactionLimit     = kind{apperr.Conflict, ReasonReactionLimitReached, fixed(msgReactionLimit)}
	kReactionDeleted   = kind{apperr.Conflict, ReasonReactionMessageDeleted, fixed(msgReactionDeleted)}
	kReactionInvalid   = kind{apperr.Invalid, ReasonReactionInvalidValue, fixed(msgReactionInvalid)}
	kReactionNotAllow  = kind{apperr.Forbidden, ReasonReactionNotAllowed, fixed(msgReactionNotAllowed)}
	kTooLong           = kind{apperr.Invalid, ReasonMessageTooLong, fixed(msgMessageTooLong)}
	kRateLimited       = kind{apperr.RateLimited, ReasonRateLimited, fixed(msgRateLimited)}
	kScopeMissing      = kind{apperr.Forbidden, ReasonScopeMissing, fixed(msgScopeMissing)}
	kSessionExpired    = kind{apperr.Unauthorized, ReasonSessionExpired, fixed(msgSessionExpired)}
	kUnavailable       = kind{apperr.Unavailable, ReasonUnavailable, fixed(msgUnavailable)}
	kServiceRefWrong   = kind{apperr.Unavailable, ReasonServiceRefWrong, fixed(msgServiceRefWrong)}
	kNotImplemented    = kind{apperr.Unavailable, ReasonNotImplemented, fixed(msgNotImplemented)}
	kCanceled          = kind{apperr.Unavailable, ReasonCanceled, fixed(msgCanceled)}
	kInvalid           = kind{apperr.Invalid, ReasonInvalidRequest, fixed(msgInvalidRequest)}
	kForbidden         = kind{apperr.Forbidden, ReasonForbidden, fixed(msgForbidden)}
	kNotFound          = kind{apperr.NotFound, ReasonNotFound, fixed(msgNotFound)}
	kBadResponse       = kind{apperr.Internal, ReasonBadResponse, fixed(msgBadResponse)}
	kReplyTarget       = kind{apperr.Invalid, ReasonReplyTargetNotFound, fixed(msgReplyTargetMissing)}
	kDeleteNotAllowed  = kind{apperr.Forbidden, ReasonForbidden, fixed(msgDeleteNotAllowed)}

	kFollowRequired     = kind{apperr.Forbidden, ReasonFollowRequired, followRequired}
	kLinkDisabled       = kind{apperr.Forbidden, ReasonLinkDisabled, fixed(msgLinkDisabled)}
	kMemberLimit        = kind{apperr.Conflict, ReasonMemberLimitReached, fixed(msgMemberLimit)}
	kUserKicked         = kind{apperr.Forbidden, ReasonUserKicked, fixed(msgUserKicked)}
	kJoinLinkInvalid    = kind{apperr.NotFound, ReasonJoinLinkInvalid, fixed(msgJoinLinkInvalid)}
	kJoinLinkExists     = kind{apperr.Conflict, ReasonJoinLinkExists, fixed(msgJoinLinkExists)}
	kNotOwner           = kind{apperr.Forbidden, ReasonNotOwner, fixed(msgNotOwner)}
	kNoJoinLink         = kind{apperr.NotFound, ReasonNoJoinLink, fixed(msgNoJoinLink)}
	kLinkAlreadyEnabled = kind{apperr.Conflict, ReasonLinkAlreadyEnabled, fixed(msgLinkAlreadyEnabled)}
	kNoJoinRequest      = kind{apperr.NotFound, ReasonNoJoinRequest, fixed(msgNoJoinRequest)}

	kForbidsGroups     = kind{apperr.Forbidden, ReasonUserForbidsGroups, groupRefusal(ReasonUserForbidsGroups)}
	kNewAccountNoGroup = kind{apperr.Forbidden, ReasonNewAccountNoGroups, fixed(msgNewAccountNoGroups)}
	kLockedByMod       = kind{apperr.Forbidden, ReasonLockedByModeration, fixed(msgLockedByModeration)}
	kOwnerCannotLeave  = kind{apperr.Conflict, ReasonOwnerCannotLeave, fixed(msgOwnerCannotLeave)}
)

// byName maps XRPC error names (the "error" field of the body) to outcomes.
// Sources: the errors declared in indigo's lexicons/chat/bsky/convo/*.json
// (getConvoForMembers: AccountSuspended, BlockedActor, BlockedSubject,
// MessagesDisabled, NotFollowedBySender, RecipientNotFound; sendMessage(Batch):
// ConvoLocked, InvalidConvo; add/removeReaction: Reaction*; ...), the PDS
// (ScopeMissingError, ExpiredToken, InvalidToken, AuthMissing,
// UpstreamFailure, UpstreamTimeout) and XRPC server defaults.
var byName = map[string]kind{
	"NotFollowedBySender":     kNotFollowed,
	"MessagesDisabled":        kDisabled,
	"BlockedActor":            kBlocking,  // the viewer blocks the other (as app.bsky's BlockedActor: the requester blocks the actor)
	"BlockedSubject":          kBlockedBy, // the other (the subject) blocks the viewer
	"RecipientNotFound":       kRecipientNotFound,
	"AccountSuspended":        kSuspended,
	"InvalidConvo":            kConvoNotFound,
	"ConvoNotFound":           kConvoNotFound,
	"ConvoLocked":             kConvoLocked,
	"ReactionLimitReached":    kReactionLimit,
	"ReactionMessageDeleted":  kReactionDeleted,
	"ReactionInvalidValue":    kReactionInvalid,
	"ReactionNotAllowed":      kReactionNotAllow,
	"ReplyTargetNotFound":     kReplyTarget,
	"MessageDeleteNotAllowed": kDeleteNotAllowed,
	"MessageTooLong":          kTooLong,
	"ScopeMissingError":       kScopeMissing,
	"ExpiredToken":            kSessionExpired,
	"AuthMissing":             kSessionExpired,
	"AuthenticationRequired":  kSessionExpired,
	"AccountTakedown":         kSessionExpired,
	"RateLimitExceeded":       kRateLimited,
	"UpstreamFailure":         kUnavailable,
	"UpstreamTimeout":         kUnavailable,
	"InternalServerError":     kUnavailable,
	"NotEnoughResources":      kUnavailable,
	"MethodNotImplemented":    kNotImplemented,
	"XRPCNotSupported":        kNotImplemented,
	// chat.bsky.group join links and join requests.
	"FollowRequired":               kFollowRequired,
	"LinkDisabled":                 kLinkDisabled,
	"MemberLimitReached":           kMemberLimit,
	"UserKicked":                   kUserKicked,
	"InvalidCode":                  kJoinLinkInvalid,
	"EnabledJoinLinkAlreadyExists": kJoinLinkExists,
	"InsufficientRole":             kNotOwner,
	"NoJoinLink":                   kNoJoinLink,
	"LinkAlreadyEnabled":           kLinkAlreadyEnabled,
	"InvalidJoinRequest":           kNoJoinRequest,
	// chat.bsky.group management.
	"UserForbidsGroups":           kForbidsGroups,
	"NewAccountCannotCreateGroup": kNewAccountNoGroup,
	"ConvoLockedByModeration":     kLockedByMod,
	"OwnerCannotLeave":            kOwnerCannotLeave,
}

// byMessage maps fragments of upstream messages (lower case) to outcomes,
// for services that answer 400 InvalidRequest with the reason only in the
// message. Sources: bluesky-social/social-app
// src/state/messages/convo/agent.ts handleSendMessageFailure (the exact
// strings the Bluesky chat service sends: "block between recipient and
// sender", "Account is disabled", "Convo not found", "Account does not
// exist", "recipient does not exist", "recipient requires incoming messages
// to come from someone they follow", "recipient has disabled incoming
// messages"); the local PDS (RECIPE.md §6: "Bad token method",
// "could not resolve proxy did service url", "No service configured for");
// XRPC lexicon validation ("must not be longer than"). Order matters: the
// first match wins.
var byMessage = []struct {
	fragment string
	kind     kind
}{
	{"requires incoming messages to come from someone they follow", kNotFollowed},
	{"disabled incoming messages", kDisabled},
	{"block between recipient and sender", kBlocked},
	{"recipient does not exist", kRecipientNotFound},
	{"account does not exist", kRecipientNotFound},
	{"convo not found", kConvoNotFound},
	{"convo is locked", kConvoLocked},
	{"account is disabled", kChatDisabled},
	{"bad token method", kScopeMissing},
	{"bad token scope", kScopeMissing},
	{"missing required scope", kScopeMissing},
	{"could not resolve proxy did service url", kServiceRefWrong},
	{"no service configured for", kServiceRefWrong},
	{"must not be longer than", kTooLong},
}

// mapError turns any error from a call into an *apperr.Error. meta is the
// holder the transport filled for the call (may be nil); recipient is the
// display name used in messages about the other person ("" → generic).
// It returns nil for a nil err; an *apperr.Error passes through unchanged.
// MapError maps a failed chat call's error that is not yet an
// *apperr.Error (a raw XRPC error, a transport failure) through this
// package's taxonomy, as every Client method does; an *apperr.Error
// passes unchanged. For callers that hold such an error without a Client
// (the outbox's adapters), so there is one mapping of chat errors.
func MapError(err error) error { return mapError(err, nil, "", time.Now) }

func mapError(err error, meta *respMeta, recipient string, now func() time.Time) error {
	if err == nil {
		return nil
	}
	if e := apperr.As(err); e != nil {
		return err
	}
	status, header, receivedAt := meta.snapshot()
	if receivedAt.IsZero() {
		receivedAt = now()
	}
	k := classify(err, status)
	e := &apperr.Error{Code: k.code, Reason: k.reason, Message: k.msg(recipient), Err: err}
	if k.code == apperr.RateLimited || k.code == apperr.Unavailable {
		e.RetryAt = apperr.CapRetryAt(retryAt(header, receivedAt), receivedAt)
	}
	return e
}

// classify picks the outcome for err. status and header come from the last
// response of the call, when there was one.
func classify(err error, status int) kind {
	var apiErr *atclient.APIError
	if errors.As(err, &apiErr) {
		return classifyAPI(apiErr)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return kCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return kUnavailable
	}
	var netErr net.Error
	var urlErr *url.Error
	if errors.As(err, &netErr) || errors.As(err, &urlErr) {
		return kUnavailable
	}
	// indigo's OAuth session returns plain errors: "failed to refresh OAuth
	// tokens: token refresh failed (HTTP 400): invalid_grant" when the
	// refresh token is gone or revoked (network failures during the refresh
	// are caught above, as they wrap *url.Error).
	msg := strings.ToLower(err.Error())
	switch {
	case strings.Contains(msg, "failed to refresh oauth tokens"),
		strings.Contains(msg, "token refresh failed"):
		return kSessionExpired
	case strings.Contains(msg, "failed decoding json response body"):
		return kBadResponse
	case strings.Contains(msg, "dpop nonce failure"),
		strings.Contains(msg, "ran out of request retries"):
		return kUnavailable
	}
	if status >= 500 {
		return kUnavailable
	}
	return kind{apperr.Internal, "", fixed("")}
}

// classifyAPI maps an XRPC error response.
func classifyAPI(e *atclient.APIError) kind {
	name, msg := e.Name, strings.ToLower(e.Message)
	// Some services put the error name in front of the message:
	// "NotFollowedBySender: recipient requires incoming messages ...".
	if prefix, _, ok := strings.Cut(e.Message, ":"); ok && isIdent(prefix) {
		if k, ok := byName[prefix]; ok && (name == "" || name == "InvalidRequest") {
			return k
		}
	}
	if name == "InvalidToken" {
		if strings.Contains(msg, "scope") || strings.Contains(msg, "method") {
			return kScopeMissing
		}
		return kSessionExpired
	}
	if k, ok := byName[name]; ok {
		return k
	}
	for _, m := range byMessage {
		if strings.Contains(msg, m.fragment) {
			return m.kind
		}
	}
	switch s := e.StatusCode; {
	case s == http.StatusTooManyRequests:
		return kRateLimited
	case s == http.StatusUnauthorized:
		// The chat service rejecting the PDS's service JWT (BadJwt,
		// JwtExpired, ...) is not the user's session: the PDS mints a new
		// one per request, so it is a service fault.
		if strings.Contains(strings.ToLower(name), "jwt") {
			return kUnavailable
		}
		return kSessionExpired
	case s == http.StatusForbidden:
		if strings.Contains(strings.ToLower(name), "scope") {
			return kScopeMissing
		}
		return kForbidden
	case s == http.StatusNotImplemented:
		return kNotImplemented
	case s == http.StatusRequestTimeout || s >= 500:
		return kUnavailable
	case s == http.StatusNotFound:
		return kNotFound
	case s >= 400:
		return kInvalid
	}
	// A 1xx/3xx or missing status: treat as the service misbehaving.
	return kUnavailable
}

// isIdent reports whether s looks like an XRPC error name (ASCII letters).
func isIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// cleanName makes a display name safe to put in a message: trimmed, no
// control characters, at most 64 runes.
func cleanName(name string) string {
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 {
			return ' '
		}
		return r
	}, name)
	name = strings.Join(strings.Fields(name), " ")
	if utf8.RuneCountInString(name) > 64 {
		r := []rune(name)
		name = string(r[:63]) + "…"
	}
	return name
}

// badResponse is the error for a 2xx response that could not be decoded.
func badResponse(nsid string, err error) error {
	return &apperr.Error{
		Code:    kBadResponse.code,
		Reason:  kBadResponse.reason,
		Message: msgBadResponse,
		Err:     fmt.Errorf("decoding %s response: %w", nsid, err),
	}
}

// ReplyTargetNotFound returns the error of a reply whose target is not in
// the convo, as the service's ReplyTargetNotFound maps: for callers that
// refuse a target before sending (an id that cannot be a message id).
func ReplyTargetNotFound() error { return invalid(kReplyTarget, "") }
