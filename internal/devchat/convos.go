package devchat

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

// Convo handlers: listing, opening (with the follow gate), and the per-member
// state (accept, mute, leave, read).

// requireInput is the error for a missing required input property.
func requireInput(name, value string) error {
	if value == "" {
		return invalidf("Input must have the property %q", name)
	}
	return nil
}

// convoFilter selects convos for a listing.
type convoFilter func(c *convo, ms *memberState) bool

// pageConvos returns the viewer's active convos matching keep, most recently
// active first, starting after cursor (a convo rev), and the next cursor ("" at
// the end). Requires Server.mu.
func (s *Server) pageConvos(viewer syntax.DID, cursor string, limit int, keep convoFilter) ([]*convo, string) {
	var all []*convo
	for _, c := range s.st.convos {
		ms, ok := c.member[viewer]
		if ok && ms.active() && (cursor == "" || c.rev < cursor) && keep(c, ms) {
			all = append(all, c)
		}
	}
	slices.SortFunc(all, func(a, b *convo) int { return strings.Compare(b.rev, a.rev) })
	if len(all) <= limit {
		return all, ""
	}
	return all[:limit], all[limit-1].rev
}

func (s *Server) listConvos(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	q := r.URL.Query()
	limit, err := limitParam(q, defaultLimit)
	if err != nil {
		return nil, err
	}
	cursor, err := cursorParam(q)
	if err != nil {
		return nil, err
	}
	status, err := enumParam(q, "status", statusRequest, statusAccepted)
	if err != nil {
		return nil, err
	}
	readState, err := enumParam(q, "readState", "unread")
	if err != nil {
		return nil, err
	}
	kind, err := enumParam(q, "kind", "direct", "group")
	if err != nil {
		return nil, err
	}
	lockStatus, err := enumParam(q, "lockStatus", "unlocked", "locked", "locked-permanently")
	if err != nil {
		return nil, err
	}
	keep := func(c *convo, ms *memberState) bool {
		return (status == "" || ms.status == status) &&
			(readState == "" || c.unread(viewer, ms) > 0 || unreadJoinRequests(c, viewer)) &&
			(kind == "" || c.kind() == kind) &&
			(lockStatus == "" || c.lockStatus() == lockStatus)
	}

	h := &hydrator{}
	out := &chat.ConvoListConvos_Output{Convos: []*chat.ConvoDefs_ConvoView{}}
	s.mu.Lock()
	page, next := s.pageConvos(viewer, cursor, limit, keep)
	for _, c := range page {
		out.Convos = append(out.Convos, h.convoView(c, viewer))
	}
	s.mu.Unlock()
	if next != "" {
		out.Cursor = &next
	}
	s.hydrate(ctx, h)
	return out, nil
}

func (s *Server) listConvoRequests(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	q := r.URL.Query()
	limit, err := limitParam(q, defaultLimit)
	if err != nil {
		return nil, err
	}
	cursor, err := cursorParam(q)
	if err != nil {
		return nil, err
	}
	h := &hydrator{}
	out := &chat.ConvoListConvoRequests_Output{Requests: []*chat.ConvoListConvoRequests_Output_Requests_Elem{}}
	s.mu.Lock()
	page, next := s.pageConvos(viewer, cursor, limit, func(_ *convo, ms *memberState) bool { return ms.status == statusRequest })
	for _, c := range page {
		out.Requests = append(out.Requests, &chat.ConvoListConvoRequests_Output_Requests_Elem{ConvoDefs_ConvoView: h.convoView(c, viewer)})
	}
	if cursor == "" { // the viewer's own join requests come with the first page
		for _, jr := range s.outgoingRequestViewsLocked(h, viewer) {
			out.Requests = append(out.Requests, &chat.ConvoListConvoRequests_Output_Requests_Elem{GroupDefs_JoinRequestConvoView: jr})
		}
	}
	s.mu.Unlock()
	if next != "" {
		out.Cursor = &next
	}
	s.hydrate(ctx, h)
	return out, nil
}

func (s *Server) getConvo(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	id, err := requiredParam(r.URL.Query(), "convoId")
	if err != nil {
		return nil, err
	}
	h := &hydrator{}
	s.mu.Lock()
	c, _, err := s.lookup(id, viewer, true)
	var out *chat.ConvoGetConvo_Output
	if err == nil {
		out = &chat.ConvoGetConvo_Output{Convo: h.convoView(c, viewer)}
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	s.hydrate(ctx, h)
	return out, nil
}

// needsGate reports whether writing to other needs the follow gate: unless
// other already has the convo accepted, the caller is (again) asking them to
// chat. Requires Server.mu.
func (s *Server) needsGate(viewer, other syntax.DID) bool {
	id, ok := s.st.direct[pairKey(viewer, other)]
	if !ok {
		return true
	}
	om := s.st.convos[id].member[other]
	return !(om.active() && om.status == statusAccepted)
}

// existingConvo returns the direct convo of viewer and other if viewer has it
// open. Requires Server.mu.
func (s *Server) existingConvo(viewer, other syntax.DID) *convo {
	id, ok := s.st.direct[pairKey(viewer, other)]
	if !ok {
		return nil
	}
	c := s.st.convos[id]
	if !c.member[viewer].active() {
		return nil
	}
	return c
}

// getConvoForMembers implements chat.bsky.convo.getConvoForMembers: returns
// the caller's direct convo with the other member, creating it (or re-opening
// it after leaveConvo) behind the follow gate, unless a block exists either
// way (BlockedActor, BlockedSubject; blocks.go).
func (s *Server) getConvoForMembers(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	other, err := otherMember(r.URL.Query(), viewer)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	gate := s.existingConvo(viewer, other) == nil && s.needsGate(viewer, other)
	s.mu.Unlock()

	if gate {
		if e := s.checkGate(ctx, viewer, other); e != nil {
			return nil, e
		}
	}
	if e := s.checkBlocks(ctx, viewer, other); e != nil {
		return nil, e
	}

	h := &hydrator{}
	s.mu.Lock()
	c := s.openConvoLocked(viewer, other)
	out := &chat.ConvoGetConvoForMembers_Output{Convo: h.convoView(c, viewer)}
	s.mu.Unlock()
	s.hydrate(ctx, h)
	return out, nil
}

// openConvoLocked returns the direct convo of viewer and other, created if
// needed, and makes it active for viewer (accepted: they started it). The
// other member sees it only once a message arrives. Requires Server.mu.
func (s *Server) openConvoLocked(viewer, other syntax.DID) *convo {
	key := pairKey(viewer, other)
	if id, ok := s.st.direct[key]; ok {
		c := s.st.convos[id]
		ms := c.member[viewer]
		if !ms.active() {
			ms.visible, ms.left, ms.status = true, false, statusAccepted
			s.appendLog(viewer, logEntry{rev: s.nextTID(), kind: logBeginConvo, convoID: c.id})
		}
		return c
	}
	c := &convo{
		id:      s.nextTID(),
		members: []syntax.DID{viewer, other},
		member: map[syntax.DID]*memberState{
			viewer: {visible: true, status: statusAccepted, hidden: map[string]bool{}},
			other:  {status: statusRequest, hidden: map[string]bool{}},
		},
		byID: map[string]*message{},
	}
	c.rev = s.nextTID()
	s.st.convos[c.id] = c
	s.st.direct[key] = c.id
	s.appendLog(viewer, logEntry{rev: c.rev, kind: logBeginConvo, convoID: c.id})
	return c
}

// getConvoAvailability implements chat.bsky.convo.getConvoAvailability:
// canChat is false when a block exists either way (blocks.go), else the
// follow gate's answer (true without asking when the other member already
// accepted the convo); an existing convo is returned.
func (s *Server) getConvoAvailability(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	other, err := otherMember(r.URL.Query(), viewer)
	if err != nil {
		return nil, err
	}
	h := &hydrator{}
	out := &chat.ConvoGetConvoAvailability_Output{}
	s.mu.Lock()
	if c := s.existingConvo(viewer, other); c != nil {
		out.Convo = h.convoView(c, viewer)
	}
	gate := s.needsGate(viewer, other)
	s.mu.Unlock()

	out.CanChat = true
	if gate {
		if e := s.checkGate(ctx, viewer, other); e != nil {
			if e.Name != "MessagesDisabled" && e.Name != "NotFollowedBySender" {
				return nil, e
			}
			out.CanChat = false
		}
	}
	if out.CanChat {
		blocked, e := s.blockedPair(ctx, viewer, other)
		if e != nil {
			return nil, e
		}
		out.CanChat = !blocked
	}
	s.hydrate(ctx, h)
	return out, nil
}

func (s *Server) acceptConvo(_ context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.ConvoAcceptConvo_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	if err := requireInput("convoId", in.ConvoId); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ms, err := s.lookup(in.ConvoId, viewer, false)
	if err != nil {
		return nil, err
	}
	out := &chat.ConvoAcceptConvo_Output{}
	if ms.status != statusAccepted {
		ms.status = statusAccepted
		rev := s.nextTID()
		s.appendLog(viewer, logEntry{rev: rev, kind: logAcceptConvo, convoID: c.id})
		s.modAcceptedLocked(c, viewer, "explicit") // modevents.go
		out.Rev = &rev
	}
	return out, nil
}

func (s *Server) muteConvo(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.ConvoMuteConvo_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	v, err := s.setMuted(ctx, viewer, in.ConvoId, true)
	if err != nil {
		return nil, err
	}
	return &chat.ConvoMuteConvo_Output{Convo: v}, nil
}

func (s *Server) unmuteConvo(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.ConvoUnmuteConvo_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	v, err := s.setMuted(ctx, viewer, in.ConvoId, false)
	if err != nil {
		return nil, err
	}
	return &chat.ConvoUnmuteConvo_Output{Convo: v}, nil
}

// setMuted mutes or unmutes a convo for viewer, logging only real changes.
func (s *Server) setMuted(ctx context.Context, viewer syntax.DID, id string, muted bool) (*chat.ConvoDefs_ConvoView, error) {
	if err := requireInput("convoId", id); err != nil {
		return nil, err
	}
	h := &hydrator{}
	s.mu.Lock()
	c, ms, err := s.lookup(id, viewer, true)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if ms.muted != muted {
		ms.muted = muted
		kind := logMuteConvo
		if !muted {
			kind = logUnmuteConvo
		}
		s.appendLog(viewer, logEntry{rev: s.nextTID(), kind: kind, convoID: c.id})
	}
	v := h.convoView(c, viewer)
	s.mu.Unlock()
	s.hydrate(ctx, h)
	return v, nil
}

// leaveConvo implements chat.bsky.convo.leaveConvo: the convo disappears from
// the leaver's lists and its history so far stays hidden from them, even if a
// later message brings it back.
func (s *Server) leaveConvo(_ context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.ConvoLeaveConvo_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	if err := requireInput("convoId", in.ConvoId); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ms, err := s.lookup(in.ConvoId, viewer, true)
	if err != nil {
		return nil, err
	}
	if c.group != nil {
		rev, err := s.leaveGroupLocked(c, viewer)
		if err != nil {
			return nil, err
		}
		return &chat.ConvoLeaveConvo_Output{ConvoId: c.id, Rev: rev}, nil
	}
	rev := s.nextTID()
	ms.left, ms.leftRev, ms.muted, ms.readRev = true, rev, false, rev
	ms.hidden = map[string]bool{}
	s.appendLog(viewer, logEntry{rev: rev, kind: logLeaveConvo, convoID: c.id})
	return &chat.ConvoLeaveConvo_Output{ConvoId: c.id, Rev: rev}, nil
}

// markReadLocked moves viewer's read marker to m and logs it, unless it is
// already there. Requires Server.mu.
func (s *Server) markReadLocked(c *convo, viewer syntax.DID, ms *memberState, m *message) bool {
	if m == nil || ms.readRev == m.rev {
		return false
	}
	ms.readRev = m.rev
	s.appendLog(viewer, logEntry{rev: s.nextTID(), kind: logReadMessage, convoID: c.id, msg: snapshot(m), deleted: ms.hidden[m.id]})
	return true
}

func (s *Server) updateRead(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.ConvoUpdateRead_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	if err := requireInput("convoId", in.ConvoId); err != nil {
		return nil, err
	}
	h := &hydrator{}
	s.mu.Lock()
	c, ms, err := s.lookup(in.ConvoId, viewer, true)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	target := c.lastMessage(ms)
	if in.MessageId != nil && *in.MessageId != "" {
		if target, err = c.messageFor(ms, *in.MessageId); err != nil {
			s.mu.Unlock()
			return nil, err
		}
	}
	s.markReadLocked(c, viewer, ms, target)
	out := &chat.ConvoUpdateRead_Output{Convo: h.convoView(c, viewer)}
	s.mu.Unlock()
	s.hydrate(ctx, h)
	return out, nil
}

func (s *Server) updateAllRead(_ context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.ConvoUpdateAllRead_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	status := ""
	if in.Status != nil {
		status = *in.Status
		if status != statusRequest && status != statusAccepted {
			return nil, invalidf("status must be one of: %s, %s", statusRequest, statusAccepted)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, c := range s.st.convos {
		if ms, ok := c.member[viewer]; ok && ms.active() && (status == "" || ms.status == status) && c.unread(viewer, ms) > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids) // deterministic log order
	for _, id := range ids {
		c := s.st.convos[id]
		ms := c.member[viewer]
		s.markReadLocked(c, viewer, ms, c.lastMessage(ms))
	}
	return &chat.ConvoUpdateAllRead_Output{UpdatedCount: int64(len(ids))}, nil
}

// getStatus implements chat.bsky.actor.getStatus: everyone may create
// groups of up to groupMemberLimit members.
func (s *Server) getStatus(_ context.Context, viewer syntax.DID, _ *http.Request) (any, error) {
	return &chat.ActorGetStatus_Output{CanCreateGroups: true, ChatDisabled: s.chatDisabled(viewer), GroupMemberLimit: groupMemberLimit}, nil
}
