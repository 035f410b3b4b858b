package devchat

import (
	"context"
	"errors"
	"net/http"
	"sort"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

// Members: the member views (profileViewBasic with its kind union),
// getConvoMembers, and the check made for every member added to a group.

// firstMembers is how many of a group's first members its convoView lists.
const firstMembers = 5

// member returns did's profileViewBasic in c, its kind saying what did is
// to c: directConvoMember, groupConvoMember (role, addedBy) or, for someone
// who left or was removed, pastGroupConvoMember. Requires Server.mu.
func (h *hydrator) member(c *convo, did syntax.DID) *chat.ActorDefs_ProfileViewBasic {
	p := h.profile(did)
	switch {
	case c.group == nil:
		p.Kind = &chat.ActorDefs_ProfileViewBasic_Kind{ActorDefs_DirectConvoMember: &chat.ActorDefs_DirectConvoMember{}}
	case c.member[did] != nil:
		ms := c.member[did]
		role := ms.role
		k := &chat.ActorDefs_GroupConvoMember{Role: &role}
		if ms.addedBy != "" {
			k.AddedBy = h.profile(ms.addedBy)
		}
		p.Kind = &chat.ActorDefs_ProfileViewBasic_Kind{ActorDefs_GroupConvoMember: k}
	case c.group.past[did] != nil:
		p.Kind = &chat.ActorDefs_ProfileViewBasic_Kind{ActorDefs_PastGroupConvoMember: &chat.ActorDefs_PastGroupConvoMember{}}
	}
	return p
}

// relatedIn returns one member view per distinct DID, in first-seen order.
// Requires Server.mu.
func (h *hydrator) relatedIn(c *convo, dids ...syntax.DID) []*chat.ActorDefs_ProfileViewBasic {
	seen := map[syntax.DID]bool{}
	out := []*chat.ActorDefs_ProfileViewBasic{}
	for _, d := range dids {
		if !seen[d] {
			seen[d] = true
			out = append(out, h.member(c, d))
		}
	}
	return out
}

// viewMembers are the members a convoView lists: both members of a direct
// convo; for a group, as the lexicon says, the important ones: the first
// few, the viewer, who added the viewer, the sender of the last message and
// of the last reaction (when still members).
func (c *convo) viewMembers(viewer syntax.DID) []syntax.DID {
	if c.group == nil {
		return c.members
	}
	out := append([]syntax.DID{}, c.members[:min(firstMembers, len(c.members))]...)
	add := func(d syntax.DID) {
		if d != "" && c.member[d] != nil && !containsDID(out, d) {
			out = append(out, d)
		}
	}
	ms := c.member[viewer]
	add(viewer)
	add(ms.addedBy)
	if m := c.lastMessage(ms); m != nil {
		add(m.sender)
	}
	var last *reaction
	for _, m := range c.visibleMessages(ms) {
		for i := range m.reactions {
			if last == nil || m.reactions[i].rev > last.rev {
				last = &m.reactions[i]
			}
		}
	}
	if last != nil {
		add(last.sender)
	}
	return out
}

// convoKind is the convoView's kind: directConvo, or groupConvo with the
// group's name, lock and size. Requires Server.mu.
func (h *hydrator) convoKind(c *convo) *chat.ConvoDefs_ConvoView_Kind {
	g := c.group
	if g == nil {
		return &chat.ConvoDefs_ConvoView_Kind{ConvoDefs_DirectConvo: &chat.ConvoDefs_DirectConvo{}}
	}
	lock := g.lockStatus()
	return &chat.ConvoDefs_ConvoView_Kind{ConvoDefs_GroupConvo: &chat.ConvoDefs_GroupConvo{
		Name:                         g.name,
		CreatedAt:                    datetime(g.createdAt),
		LockStatus:                   &lock,
		LockStatusModerationOverride: g.modLock,
		MemberCount:                  int64(len(c.members)),
		MemberLimit:                  groupMemberLimit,
	}}
}

// getConvoMembers implements chat.bsky.convo.getConvoMembers: the current
// members in joining order, with their roles; the cursor is the joining
// rev of the last member returned.
func (s *Server) getConvoMembers(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	members, cursor, err := s.membersOf(ctx, r, func(id string) (*convo, error) {
		c, _, err := s.lookup(id, viewer, true)
		return c, err
	})
	if err != nil {
		return nil, err
	}
	return &chat.ConvoGetConvoMembers_Output{Members: members, Cursor: cursor}, nil
}

// membersOf answers a getConvoMembers call (convoId, limit, cursor) for
// the convo find returns (find runs under Server.mu).
func (s *Server) membersOf(ctx context.Context, r *http.Request, find func(id string) (*convo, error)) ([]*chat.ActorDefs_ProfileViewBasic, *string, error) {
	q := r.URL.Query()
	id, err := requiredParam(q, "convoId")
	if err != nil {
		return nil, nil, err
	}
	limit, cursor, err := pageParams(q)
	if err != nil {
		return nil, nil, err
	}
	h := &hydrator{}
	s.mu.Lock()
	c, err := find(id)
	if err != nil {
		s.mu.Unlock()
		return nil, nil, err
	}
	members, next := h.membersPage(c, limit, cursor)
	s.mu.Unlock()
	s.hydrate(ctx, h)
	return members, next, nil
}

// membersPage is one page of c's current members in joining order; the
// cursor is the joining rev of the last member returned. Requires
// Server.mu.
func (h *hydrator) membersPage(c *convo, limit int, cursor string) ([]*chat.ActorDefs_ProfileViewBasic, *string) {
	var next *string
	members := c.members
	if c.group != nil {
		// joinedRev ascends along c.members (members are appended as they join).
		i := sort.Search(len(members), func(i int) bool { return c.member[members[i]].joinedRev > cursor })
		members = members[i:]
		if len(members) > limit {
			members = members[:limit]
			rev := c.member[members[limit-1]].joinedRev
			next = &rev
		}
	} else if cursor != "" {
		members = nil // both members fit on the first page
	}
	out := []*chat.ActorDefs_ProfileViewBasic{}
	for _, d := range members {
		out = append(out, h.member(c, d))
	}
	return out, next
}

// checkInvite decides whether owner may add member to a group, the way
// Bluesky's chat service does: the member exists, no block stands between
// them, and the member's chat.bsky.actor.declaration/self allowGroupInvites
// allows it: "all"; "none" (UserForbidsGroups); "following", the member
// must follow the owner (NotFollowedBySender). A missing or unknown value
// counts as "following", like allowIncoming's default: the lexicon gives
// none, and getStatus describes group additions as restricted to accounts
// one follows. It reads records, so call it without Server.mu.
func (s *Server) checkInvite(ctx context.Context, owner, member syntax.DID) *xrpcError {
	if _, err := s.dir.LookupDID(ctx, member); err != nil {
		if errors.Is(err, identity.ErrDIDNotFound) {
			return badRequest("RecipientNotFound", "a member to add does not exist: "+member.String())
		}
		return upstreamFailure("could not resolve a member's DID")
	}
	if e := s.checkBlocks(ctx, owner, member); e != nil {
		return e
	}
	d, e := s.declaration(ctx, member)
	if e != nil {
		return e
	}
	switch allowOf(d.AllowGroupInvites) {
	case allowAll:
		return nil
	case allowNone:
		return badRequest("UserForbidsGroups", "a member does not accept group invitations: "+member.String())
	}
	follows, err := s.follows(ctx, member, owner)
	if err != nil {
		s.log.Warn("reading follows", "did", member.String(), "err", err)
		return upstreamFailure("could not read a member's follows")
	}
	if !follows {
		return badRequest("NotFollowedBySender", "a member only accepts group invitations from accounts they follow: "+member.String())
	}
	return nil
}

// parseMembers parses a members input: valid DIDs, de-duplicated, without
// skip (the caller).
func parseMembers(raw []string, skip syntax.DID) ([]syntax.DID, error) {
	var out []syntax.DID
	for i, r := range raw {
		d, err := syntax.ParseDID(r)
		if err != nil {
			return nil, invalidf("Input/members/%d must be a valid did", i)
		}
		if d != skip && !containsDID(out, d) {
			out = append(out, d)
		}
	}
	return out, nil
}
