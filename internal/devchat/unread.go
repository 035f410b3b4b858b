package devchat

import (
	"context"
	"errors"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/identity"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

// maxUnreadConvos caps each getUnreadCounts count: the lexicon says "Capped
// at 100, where 100 means more than 99". (devchat first capped at 31 and 11:
// an earlier revision of the lexicon said "Capped at 31, where 31 means more
// than 30" for accepted convos and "Capped at 11, where 11 means more than
// 10" for requests; the vendored newest one raised both to 100.)
const maxUnreadConvos = 100

// getUnreadCounts counts unmuted, unlocked convos with unread messages (or,
// for a group's owner, unread join requests), split by the viewer's status, each capped at maxUnreadConvos;
// includeGroupChats=false leaves groups out. A direct convo is left
// out while a block exists either way between its members, or when the other
// member's DID no longer resolves (a deleted account).
func (s *Server) getUnreadCounts(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	groups, err := enumParam(r.URL.Query(), "includeGroupChats", "true", "false")
	if err != nil {
		return nil, err
	}
	type unread struct {
		accepted bool
		partner  syntax.DID // "" for a group
	}
	var found []unread
	s.mu.Lock()
	for _, c := range s.st.convos {
		ms, ok := c.member[viewer]
		if !ok || !ms.active() || ms.muted || (c.unread(viewer, ms) == 0 && !unreadJoinRequests(c, viewer)) ||
			c.lockStatus() != lockUnlocked || (c.group != nil && groups == "false") {
			continue
		}
		found = append(found, unread{accepted: ms.status == statusAccepted, partner: directOther(c, viewer)})
	}
	s.mu.Unlock()

	out := &chat.ConvoGetUnreadCounts_Output{}
	blocked := map[syntax.DID]bool{} // partner → convo left out
	for _, u := range found {
		if u.partner != "" {
			b, ok := blocked[u.partner]
			if !ok {
				b = s.hiddenFromUnread(ctx, viewer, u.partner)
				blocked[u.partner] = b
			}
			if b {
				continue
			}
		}
		if u.accepted {
			out.UnreadAcceptedConvos = min(out.UnreadAcceptedConvos+1, maxUnreadConvos)
		} else {
			out.UnreadRequestConvos = min(out.UnreadRequestConvos+1, maxUnreadConvos)
		}
	}
	return out, nil
}

// hiddenFromUnread reports whether viewer's direct convo with partner is
// left out of the counts: a block either way, or a partner whose DID is
// gone. When the blocks cannot be read the convo is counted (an unread
// badge is no place to fail the whole answer).
func (s *Server) hiddenFromUnread(ctx context.Context, viewer, partner syntax.DID) bool {
	if _, err := s.dir.LookupDID(ctx, partner); errors.Is(err, identity.ErrDIDNotFound) {
		return true
	}
	blocked, e := s.blockedPair(ctx, viewer, partner)
	return e == nil && blocked
}
