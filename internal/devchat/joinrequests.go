package devchat

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

// Join requests: chat.bsky.group.requestJoin, withdrawJoinRequest,
// listJoinRequests, approveJoinRequest, rejectJoinRequest,
// updateJoinRequestsRead, and the requester's side in listConvoRequests.

// maxJoinRequestCount caps groupConvo.joinRequestCount ("Capped at 21").
const maxJoinRequestCount = 21

// joinRequest is one pending request to join a group through its link.
type joinRequest struct {
	did         syntax.DID
	requestedAt time.Time
	rev         string
}

// pending is did's pending request, or nil.
func (j *groupJoin) pending(did syntax.DID) *joinRequest {
	for _, r := range j.requests {
		if r.did == did {
			return r
		}
	}
	return nil
}

// drop removes did's pending request; false when there is none.
func (j *groupJoin) drop(did syntax.DID) bool {
	i := slices.IndexFunc(j.requests, func(r *joinRequest) bool { return r.did == did })
	if i < 0 {
		return false
	}
	j.requests = slices.Delete(j.requests, i, i+1)
	return true
}

// counts are the owner's pending (capped at maxJoinRequestCount) and unread
// join request counts.
func (j *groupJoin) counts() (pending, unread int64) {
	for _, r := range j.requests {
		pending++
		if r.rev > j.readRev {
			unread++
		}
	}
	return min(pending, maxJoinRequestCount), unread
}

// joinKind adds the join link (for every member) and the join request
// counts (for the owner) to a group's convoView kind. Requires Server.mu.
func joinKind(k *chat.ConvoDefs_ConvoView_Kind, c *convo, viewer syntax.DID) {
	if c.group == nil || k == nil || k.ConvoDefs_GroupConvo == nil {
		return
	}
	if l := c.group.join.link; l != nil {
		k.ConvoDefs_GroupConvo.JoinLink = joinLinkView(l)
	}
	if viewer == c.group.owner {
		pending, unread := c.group.join.counts()
		k.ConvoDefs_GroupConvo.JoinRequestCount, k.ConvoDefs_GroupConvo.UnreadJoinRequestCount = &pending, &unread
	}
}

// unreadJoinRequests reports whether viewer owns c and has join requests to
// read: such a group counts as unread. Requires Server.mu.
func unreadJoinRequests(c *convo, viewer syntax.DID) bool {
	if c.group == nil || c.group.owner != viewer {
		return false
	}
	_, unread := c.group.join.counts()
	return unread > 0
}

// requestJoin joins the group at once when its link needs no approval
// ("joined", with the convo), or leaves a request for the owner ("pending").
// Asking again as a member or with a request pending answers the same.
func (s *Server) requestJoin(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.GroupRequestJoin_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	if err := requireInput("code", in.Code); err != nil {
		return nil, err
	}
	s.mu.Lock()
	l, c, err := s.linkForJoinLocked(in.Code, viewer)
	owner := syntax.DID("")
	if c != nil {
		owner = c.group.owner
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if l != nil && l.rule == joinRuleFollowedByOwner && owner != viewer {
		follows, err := s.follows(ctx, owner, viewer)
		if err != nil {
			s.log.Warn("reading follows", "did", owner.String(), "err", err)
			return nil, upstreamFailure("could not read the group owner's follows")
		}
		if !follows {
			return nil, badRequest("FollowRequired", "only people the group owner follows can join through this link")
		}
	}

	followsOwner := owner != "" && s.followsOwner(ctx, owner, viewer)[viewer] // modemit.go
	h := &hydrator{}
	out := &chat.GroupRequestJoin_Output{}
	s.mu.Lock()
	l, c, err = s.linkForJoinLocked(in.Code, viewer) // again: it may have changed meanwhile
	switch {
	case err != nil:
		s.mu.Unlock()
		return nil, err
	case l == nil: // already a member
		out.Status = "joined"
	case l.requireApproval:
		out.Status = "pending"
		if c.group.join.pending(viewer) == nil {
			req := &joinRequest{did: viewer, requestedAt: s.now(), rev: s.nextTID()}
			c.group.join.requests = append(c.group.join.requests, req)
			s.appendLog(c.group.owner, logEntry{rev: req.rev, kind: logIncomingJoinRequest, convoID: c.id, subject: viewer})
			s.appendLog(viewer, logEntry{rev: s.nextTID(), kind: logOutgoingJoinRequest, convoID: c.id})
			s.modJoinedLocked(c, viewer, l.code, followsOwner, true)
		}
	default:
		out.Status = "joined"
		s.joinGroupLocked(c, viewer, "")
		s.modJoinedLocked(c, viewer, l.code, followsOwner, false)
	}
	if out.Status == "joined" {
		out.Convo = h.convoView(c, viewer)
	}
	s.mu.Unlock()
	s.hydrate(ctx, h)
	return out, nil
}

// linkForJoinLocked finds the group behind code for someone asking to join:
// a nil link (and the group) when they are already a member, or the refusal.
// Requires Server.mu.
func (s *Server) linkForJoinLocked(code string, viewer syntax.DID) (*joinLink, *convo, error) {
	l, c := s.linkByCode(code)
	past := (*pastMember)(nil)
	if c != nil {
		past = c.group.past[viewer]
	}
	switch {
	case c == nil:
		return nil, nil, badRequest("InvalidCode", "no group has this join link")
	case c.member[viewer] != nil:
		return nil, c, nil
	case !l.enabled:
		return nil, nil, badRequest("LinkDisabled", "this join link is disabled")
	case past != nil && past.removedBy != "":
		return nil, nil, badRequest("UserKicked", "you were removed from this group")
	case c.group.locked():
		return nil, nil, badRequest("ConvoLocked", "the group is locked")
	case len(c.members) >= groupMemberLimit:
		return nil, nil, badRequest("MemberLimitReached", "the group is full")
	}
	return l, c, nil
}

func (s *Server) withdrawJoinRequest(_ context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.GroupWithdrawJoinRequest_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	if err := requireInput("convoId", in.ConvoId); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.st.convos[in.ConvoId]
	if c == nil || c.group == nil || !c.group.join.drop(viewer) {
		return nil, badRequest("InvalidJoinRequest", "you have no pending request to join this group")
	}
	s.appendLog(c.group.owner, logEntry{rev: s.nextTID(), kind: logWithdrawIncomingJoinRequest, convoID: c.id, subject: viewer})
	s.appendLog(viewer, logEntry{rev: s.nextTID(), kind: logWithdrawOutgoingJoinRequest, convoID: c.id})
	return &chat.GroupWithdrawJoinRequest_Output{}, nil
}

// listJoinRequests pages the group's pending requests, newest first; the
// cursor is the rev of the last request returned.
func (s *Server) listJoinRequests(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	q := r.URL.Query()
	id, err := requiredParam(q, "convoId")
	if err != nil {
		return nil, err
	}
	limit, cursor, err := pageParams(q)
	if err != nil {
		return nil, err
	}
	h := &hydrator{}
	out := &chat.GroupListJoinRequests_Output{Requests: []*chat.GroupDefs_JoinRequestView{}}
	s.mu.Lock()
	c, err := s.ownedGroup(id, viewer)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	reqs := c.group.join.requests
	end := len(reqs)
	if cursor != "" {
		end = sort.Search(len(reqs), func(i int) bool { return reqs[i].rev >= cursor })
	}
	start := max(0, end-limit)
	for i := end - 1; i >= start; i-- {
		out.Requests = append(out.Requests, &chat.GroupDefs_JoinRequestView{
			ConvoId:     c.id,
			RequestedBy: h.profile(reqs[i].did),
			RequestedAt: datetime(reqs[i].requestedAt),
		})
	}
	if start > 0 {
		next := reqs[start].rev
		out.Cursor = &next
	}
	s.mu.Unlock()
	s.hydrate(ctx, h)
	return out, nil
}

// requester parses approveJoinRequest/rejectJoinRequest's member.
func requester(member string) (syntax.DID, error) {
	did, err := syntax.ParseDID(member)
	if err != nil {
		return "", invalidf("Input/member must be a valid did")
	}
	return did, nil
}

// noRequest is the answer to deciding on a request nobody made.
func noRequest(did syntax.DID) error {
	return invalidf("%s has no pending join request for this group", did)
}

// approveJoinRequest adds the requester to the group (memberJoin with
// approvedBy) and answers the owner's view of the group.
func (s *Server) approveJoinRequest(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.GroupApproveJoinRequest_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	did, err := requester(in.Member)
	if err != nil {
		return nil, err
	}
	v, err := s.changeGroup(ctx, viewer, in.ConvoId, func(c *convo, _ *hydrator) error {
		switch {
		case c.group.join.pending(did) == nil:
			return noRequest(did)
		case len(c.members) >= groupMemberLimit:
			return badRequest("MemberLimitReached", "the group is full")
		}
		c.group.join.drop(did)
		s.appendLog(viewer, logEntry{rev: s.nextTID(), kind: logApproveJoinRequest, convoID: c.id, subject: did})
		s.joinGroupLocked(c, did, viewer)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &chat.GroupApproveJoinRequest_Output{Convo: v}, nil
}

func (s *Server) rejectJoinRequest(_ context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.GroupRejectJoinRequest_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	if err := requireInput("convoId", in.ConvoId); err != nil {
		return nil, err
	}
	did, err := requester(in.Member)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.ownedGroup(in.ConvoId, viewer)
	if err != nil {
		return nil, err
	}
	if !c.group.join.drop(did) {
		return nil, noRequest(did)
	}
	rev := s.nextTID()
	s.appendLog(viewer, logEntry{rev: rev, kind: logRejectJoinRequest, convoID: c.id, subject: did})
	s.modJoinDecisionLocked(c, did, false, rev) // modevents.go
	return &chat.GroupRejectJoinRequest_Output{}, nil
}

// updateJoinRequestsRead marks every pending request read for the owner.
func (s *Server) updateJoinRequestsRead(_ context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.GroupUpdateJoinRequestsRead_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	if err := requireInput("convoId", in.ConvoId); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.ownedGroup(in.ConvoId, viewer)
	if err != nil {
		return nil, err
	}
	rev := s.nextTID()
	c.group.join.readRev = rev
	s.appendLog(viewer, logEntry{rev: rev, kind: logReadJoinRequests, convoID: c.id})
	return &chat.GroupUpdateJoinRequestsRead_Output{}, nil
}

// outgoingRequestViewsLocked are viewer's pending join requests as
// joinRequestConvoViews, newest first, for listConvoRequests. Requires Server.mu.
func (s *Server) outgoingRequestViewsLocked(h *hydrator, viewer syntax.DID) []*chat.GroupDefs_JoinRequestConvoView {
	var mine []*joinRequest
	convoOf := map[*joinRequest]*convo{}
	for _, c := range s.st.convos {
		if c.group != nil {
			if r := c.group.join.pending(viewer); r != nil {
				mine = append(mine, r)
				convoOf[r] = c
			}
		}
	}
	slices.SortFunc(mine, func(a, b *joinRequest) int {
		switch {
		case a.rev > b.rev:
			return -1
		case a.rev < b.rev:
			return 1
		}
		return 0
	})
	var out []*chat.GroupDefs_JoinRequestConvoView
	for _, r := range mine {
		c := convoOf[r]
		at := datetime(r.requestedAt)
		out = append(out, &chat.GroupDefs_JoinRequestConvoView{
			ConvoId:     c.id,
			Name:        c.group.name,
			Owner:       h.profile(c.group.owner),
			MemberCount: int64(len(c.members)),
			MemberLimit: groupMemberLimit,
			Viewer:      &chat.GroupDefs_JoinLinkViewerState{RequestedAt: &at},
		})
	}
	return out
}

// joinGroupLocked makes did a member through the join link: accepted (they
// asked to join), with a memberJoin system message naming who approved
// ("" when the link needs no approval). Requires Server.mu.
func (s *Server) joinGroupLocked(c *convo, did, approvedBy syntax.DID) {
	s.addMemberLocked(c, did, "", roleStandard, statusAccepted)
	s.systemLocked(c, systemData{kind: sysMemberJoin, member: did, actor: approvedBy, role: roleStandard})
}
