package devchat

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/rivo/uniseg"
)

// Lexicon limits.
const (
	defaultLimit       = 50    // listConvos, listConvoRequests, getMessages
	maxLimit           = 100   // ditto
	maxLogPage         = 100   // events per getLog answer
	maxMembers         = 10    // getConvoForMembers, getConvoAvailability
	maxBatchItems      = 100   // sendMessageBatch
	maxTextBytes       = 10000 // chat.bsky.convo.defs#messageInput text maxLength
	maxTextGraphemes   = 1000  // chat.bsky.convo.defs#messageInput text maxGraphemes
	maxReactionBytes   = 64    // addReaction value maxLength
	maxReactionsPerMsg = 5     // distinct reactions one user may put on one message
)

// requiredParam returns a query parameter the lexicon requires.
func requiredParam(q url.Values, name string) (string, error) {
	v := q.Get(name)
	if v == "" {
		return "", invalidf("Params must have the property %q", name)
	}
	return v, nil
}

// limitParam parses an integer "limit" in [1, maxLimit], def when absent.
func limitParam(q url.Values, def int) (int, error) {
	raw := q.Get("limit")
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	switch {
	case err != nil:
		return 0, invalidf("limit must be an integer")
	case n < 1:
		return 0, invalidf("limit can not be less than 1")
	case n > maxLimit:
		return 0, invalidf("limit can not be greater than %d", maxLimit)
	}
	return n, nil
}

// pageParams parses a listing's "limit" (default defaultLimit) and
// "cursor".
func pageParams(q url.Values) (limit int, cursor string, err error) {
	if limit, err = limitParam(q, defaultLimit); err != nil {
		return 0, "", err
	}
	cursor, err = cursorParam(q)
	return limit, cursor, err
}

// cursorParam parses an optional cursor; the service's cursors are revs (TIDs).
func cursorParam(q url.Values) (string, error) {
	raw := q.Get("cursor")
	if raw == "" {
		return "", nil
	}
	if _, err := syntax.ParseTID(raw); err != nil {
		return "", invalidf("malformed cursor %q", raw)
	}
	return raw, nil
}

// enumParam returns an optional parameter that must be one of allowed.
func enumParam(q url.Values, name string, allowed ...string) (string, error) {
	v := q.Get(name)
	if v == "" {
		return "", nil
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", invalidf("%s must be one of: %s", name, strings.Join(allowed, ", "))
}

// otherMember parses "members" (1..10 DIDs) and returns the one member who
// is not the viewer. Only direct (1:1) convos are modelled.
func otherMember(q url.Values, viewer syntax.DID) (syntax.DID, error) {
	raw := q["members"]
	switch {
	case len(raw) == 0:
		return "", invalidf("Params must have the property %q", "members")
	case len(raw) > maxMembers:
		return "", invalidf("members must not have more than %d elements", maxMembers)
	}
	var others []syntax.DID
	for i, r := range raw {
		d, err := syntax.ParseDID(r)
		if err != nil {
			return "", invalidf("members/%d must be a valid did", i)
		}
		if d != viewer && !containsDID(others, d) {
			others = append(others, d)
		}
	}
	switch len(others) {
	case 0:
		return "", invalidf("members must include someone other than the caller")
	case 1:
		return others[0], nil
	default:
		return "", invalidf("only direct (two-member) convos are supported; use chat.bsky.group.createGroup for groups")
	}
}

func containsDID(list []syntax.DID, d syntax.DID) bool {
	for _, x := range list {
		if x == d {
			return true
		}
	}
	return false
}

// checkText enforces chat.bsky.convo.defs#messageInput text limits; path is
// the lexicon path for the message ("Input/message", "Input/items/3/message").
func checkText(path, text string, hasEmbed bool) error {
	if len(text) > maxTextBytes {
		return invalidf("%s/text must not be longer than %d characters", path, maxTextBytes)
	}
	if uniseg.GraphemeClusterCount(text) > maxTextGraphemes {
		return invalidf("%s/text must not be longer than %d graphemes", path, maxTextGraphemes)
	}
	if strings.TrimSpace(text) == "" && !hasEmbed {
		return invalidf("%s/text must not be empty", path)
	}
	return nil
}
