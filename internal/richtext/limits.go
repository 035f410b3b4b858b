package richtext

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rivo/uniseg"

	"github.com/skydm/skydm/internal/apperr"
)

// The limits chat.bsky.convo.defs#messageInput puts on text.
const (
	MaxGraphemes = 1000
	MaxBytes     = 10000
)

// Reasons CheckLength gives on its errors.
const (
	ReasonMessageEmpty   = "MessageEmpty"
	ReasonMessageTooLong = "MessageTooLong"
	ReasonInvalidText    = "InvalidText"
)

// CheckLength returns nil when text can be sent: valid UTF-8, not blank, at
// most MaxGraphemes user-perceived characters (grapheme clusters) and at
// most MaxBytes bytes. Otherwise it returns an *apperr.Error with Code
// Invalid, a Reason (ReasonInvalidText, ReasonMessageEmpty or
// ReasonMessageTooLong) and a message a person can act on, e.g. "Your
// message is 1,204 characters long; the limit is 1,000."
func CheckLength(text string) error {
	if !utf8.ValidString(text) {
		return &apperr.Error{Code: apperr.Invalid, Reason: ReasonInvalidText, Message: "Your message contains characters that cannot be sent. Please retype it."}
	}
	if strings.TrimSpace(text) == "" {
		return &apperr.Error{Code: apperr.Invalid, Reason: ReasonMessageEmpty, Message: "Write a message before sending."}
	}
	if n := uniseg.GraphemeClusterCount(text); n > MaxGraphemes {
		return &apperr.Error{Code: apperr.Invalid, Reason: ReasonMessageTooLong,
			Message: "Your message is " + thousands(n) + " characters long; the limit is " + thousands(MaxGraphemes) + "."}
	}
	if len(text) > MaxBytes {
		return &apperr.Error{Code: apperr.Invalid, Reason: ReasonMessageTooLong,
			Message: "Your message is too long: it takes " + thousands(len(text)) + " bytes and the limit is " +
				thousands(MaxBytes) + " (emoji and some scripts take several bytes per character). Please shorten it."}
	}
	return nil
}

// thousands formats n with commas: 1204 → "1,204".
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
