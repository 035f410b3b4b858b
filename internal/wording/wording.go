// Package wording is the one table of sentences people read when Bluesky
// refuses or fails a DM, keyed by reason and by who reads it: the sender on
// the DM page, and the requester and the project's owner on a change
// request. Each refusal is written here once per reader.
package wording

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/skydm/skydm/internal/apperr"
)

// ToSender returns what the DM page tells the person trying to write to
// recipient (a name; "" → "This account") when the chat service refuses
// for reason, and whether reason is a refusal worded here.
func ToSender(reason, recipient string) (string, bool) {
	switch reason {
	case apperr.ReasonNotFollowedBySender:
		if recipient == "" {
			return "This account only accepts messages from people they follow.", true
		}
		return recipient + " only accepts messages from people they follow.", true
	case apperr.ReasonMessagesDisabled:
		if recipient == "" {
			return "This account does not accept direct messages.", true
		}
		return recipient + " does not accept direct messages.", true
	case apperr.ReasonBlocked:
		if recipient == "" {
			return "You can't message this account because one of you has blocked the other.", true
		}
		return "You can't message " + recipient + " because one of you has blocked the other.", true
	}
	return "", false
}

// Delivery names the accounts of a change-request DM.
type Delivery struct {
	Recipient     string // "carol.test", or "the project's owner"
	Sender        string // "alice.test", or "the requester"/"the notifier account"
	SenderIsFiler bool   // the requester sends the DM (default) rather than a notifier
}

// ToRequester returns why a change-request DM was not delivered (the
// sentence suits the owner too) and the fix, addressed to the requester.
// permanent says the chat service refused it for good; maxAge is how long
// skydm keeps trying (for ReasonGivenUp).
func ToRequester(reason string, permanent bool, n Delivery, maxAge time.Duration) (sentence, fix string) {
	you := "you"
	if !n.SenderIsFiler {
		you = n.Sender
	}
	switch reason {
	case apperr.ReasonNotFollowedBySender:
		return capitalize(n.Recipient) + " only accepts DMs from accounts they follow.",
			"Ask them to follow " + you + ", or to allow DMs from everyone, then retry."
	case apperr.ReasonMessagesDisabled:
		return capitalize(n.Recipient) + " does not accept DMs.",
			"Ask them to allow DMs (from everyone, or from accounts they follow and to follow " + you + "), then retry."
	case apperr.ReasonCannotChat:
		return capitalize(n.Recipient) + " does not accept DMs from " + n.Sender + ".",
			"Ask them to allow DMs from everyone, or to follow " + you + ", then retry."
	case apperr.ReasonBlocked:
		return "There is a block between " + n.Sender + " and " + n.Recipient + ", so Bluesky will not deliver the DM.",
			"Only removing the block would let it through."
	case apperr.ReasonRecipientNotFound:
		return capitalize(possessive(n.Recipient)) + " account could not be found. It may have been deleted or deactivated.", ""
	case apperr.ReasonAccountSuspended:
		return "One of the accounts is suspended, and suspended accounts can't send or receive DMs.", ""
	case apperr.ReasonChatDisabled:
		return capitalize(possessive(n.Sender)) + " account can't use DMs right now.", ""
	case apperr.ReasonConvoLocked:
		return "The conversation between " + n.Sender + " and " + n.Recipient + " is locked.",
			"Unlock it in Bluesky, then retry."
	case apperr.ReasonSessionExpired:
		if n.SenderIsFiler {
			return capitalize(possessive(n.Sender)) + " sign-in to skydm has expired.",
				"Sign in to skydm again; the DM will be sent then."
		}
		return "The notifier account " + n.Sender + " is no longer signed in to skydm.",
			"The DM will be sent when the operator signs " + n.Sender + " in again."
	case apperr.ReasonScopeMissing:
		if n.SenderIsFiler {
			return capitalize(n.Sender) + " signed in without allowing skydm to send DMs.",
				"Sign in to skydm again and allow access to your DMs; the DM will be sent then."
		}
		return "The notifier account " + n.Sender + " signed in without allowing skydm to send DMs.",
			"The DM will be sent when the operator signs " + n.Sender + " in again with DM access."
	case apperr.ReasonRateLimited:
		return "Bluesky's chat service asked skydm to slow down. skydm will try again.", ""
	case apperr.ReasonTimeout:
		return "Bluesky's chat service took too long to answer. skydm will try again.", ""
	case apperr.ReasonGivenUp:
		return "Bluesky's chat service kept failing for " + Duration(maxAge) + ".", "Retry to try again."
	}
	if permanent {
		return "Bluesky's chat service refused the DM.", "Retry later; if it keeps happening, tell the operator of this skydm."
	}
	return "Bluesky's chat service was not answering. skydm will try again.", ""
}

// ToOwner returns what would let a refused change-request DM through,
// addressed to the project's owner, who would receive it from sender;
// givenUp says skydm stopped trying. "" when the owner can do nothing.
func ToOwner(reason string, givenUp bool, sender string) string {
	switch reason {
	case apperr.ReasonNotFollowedBySender:
		return "To receive it, follow " + sender + " (or allow DMs from everyone in your Bluesky chat settings), then press Retry."
	case apperr.ReasonMessagesDisabled, apperr.ReasonCannotChat:
		return "To receive it, allow DMs from everyone in your Bluesky chat settings (or from accounts you follow, and follow " + sender + "), then press Retry."
	case apperr.ReasonBlocked:
		return "Only removing the block would let it through."
	case apperr.ReasonSessionExpired, apperr.ReasonScopeMissing:
		return "It will be sent when " + sender + " signs in to skydm again with DM access."
	}
	if givenUp {
		return "Press Retry to try again."
	}
	return ""
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

// Duration renders d as people read it: "24 hours", "90 minutes", "1 day",
// "45 seconds".
func Duration(d time.Duration) string {
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
