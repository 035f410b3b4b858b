package devchat

import (
	"context"
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/rivo/uniseg"
	"github.com/skydm/skydm/internal/lex/chat"
)

// Group handlers: chat.bsky.group.createGroup, addMembers, removeMembers,
// editGroup, listMutualGroups; and the membership changes they (and
// leaveConvo, join links) are made of.

// Group name limits (createGroup/editGroup name, groupConvo name).
const (
	maxGroupNameBytes     = 500
	maxGroupNameGraphemes = 50
)

// checkGroupName enforces the lexicon's name limits; a name of only
// spaces counts as empty.
func checkGroupName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return invalidf("Input/name must not be empty")
	case len(name) > maxGroupNameBytes:
		return invalidf("Input/name must not be longer than %d characters", maxGroupNameBytes)
	case uniseg.GraphemeClusterCount(name) > maxGroupNameGraphemes:
		return invalidf("Input/name must not be longer than %d graphemes", maxGroupNameGraphemes)
	}
	return nil
}

// addMemberLocked makes did a member of c from now on: visible at once
// (as a request unless status says accepted), with a logBeginConvo, and
// seeing only what happens after this rev. Requires Server.mu.
func (s *Server) addMemberLocked(c *convo, did, addedBy syntax.DID, role, status string) *memberState {
	rev := s.nextTID()
	ms := &memberState{
		visible: true, status: status, leftRev: rev, readRev: rev, hidden: map[string]bool{},
		role: role, addedBy: addedBy, joinedRev: rev,
	}
	c.members = append(c.members, did)
	c.member[did] = ms
	delete(c.group.past, did)
	c.group.join.drop(did) // a pending join request is answered by being added
	s.appendLog(did, logEntry{rev: rev, kind: logBeginConvo, convoID: c.id})
	return ms
}

// removeMemberLocked deletes did's membership, remembers them as a past
// member and gives them a logLeaveConvo: the convo is gone for them. The
// caller then adds the system message the others see. Requires Server.mu.
func (s *Server) removeMemberLocked(c *convo, did, removedBy syntax.DID) string {
	rev := s.nextTID()
	delete(c.member, did)
	for i, m := range c.members {
		if m == did {
			c.members = append(c.members[:i:i], c.members[i+1:]...)
			break
		}
	}
	c.group.past[did] = &pastMember{rev: rev, removedBy: removedBy}
	s.appendLog(did, logEntry{rev: rev, kind: logLeaveConvo, convoID: c.id})
	return rev
}

// ownedGroup returns a group the viewer owns: InvalidConvo when it is not
// a group they belong to, InsufficientRole when they are not its owner.
// Requires Server.mu.
func (s *Server) ownedGroup(id string, viewer syntax.DID) (*convo, error) {
	c, ms, err := s.lookup(id, viewer, true)
	if err != nil {
		return nil, err
	}
	if c.group == nil {
		return nil, badRequest("InvalidConvo", "not a group convo")
	}
	if ms.role != roleOwner {
		return nil, badRequest("InsufficientRole", "only the group's owner can do this")
	}
	return c, nil
}

// changeGroup runs change on a group the viewer owns (see ownedGroup),
// under Server.mu, and returns the viewer's convoView after it. change may
// add views of its own to h; they are hydrated with the convoView.
func (s *Server) changeGroup(ctx context.Context, viewer syntax.DID, id string, change func(c *convo, h *hydrator) error) (*chat.ConvoDefs_ConvoView, error) {
	if err := requireInput("convoId", id); err != nil {
		return nil, err
	}
	h := &hydrator{}
	s.mu.Lock()
	c, err := s.ownedGroup(id, viewer)
	if err == nil {
		err = change(c, h)
	}
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	v := h.convoView(c, viewer)
	s.mu.Unlock()
	s.hydrate(ctx, h)
	return v, nil
}

// checkInvites runs checkInvite for each member, stopping at the first
// refusal. Call it without Server.mu.
func (s *Server) checkInvites(ctx context.Context, owner syntax.DID, members []syntax.DID) error {
	for _, m := range members {
		if e := s.checkInvite(ctx, owner, m); e != nil {
			return e
		}
	}
	return nil
}

// createGroup implements chat.bsky.group.createGroup: a new group (never
// an existing one) owned by the caller, who is accepted; every other member
// is added as a request, after all of them passed checkInvite. Each added
// member is announced by a systemMessageDataAddMember.
func (s *Server) createGroup(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.GroupCreateGroup_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	if in.Members == nil {
		return nil, invalidf("Input must have the property %q", "members")
	}
	if err := checkGroupName(in.Name); err != nil {
		return nil, err
	}
	members, err := parseMembers(in.Members, viewer)
	if err != nil {
		return nil, err
	}
	if 1+len(members) > groupMemberLimit {
		return nil, invalidf("a group can have at most %d members, the owner included", groupMemberLimit)
	}
	if err := s.checkInvites(ctx, viewer, members); err != nil {
		return nil, err
	}

	h := &hydrator{}
	s.mu.Lock()
	c := &convo{
		id:     s.nextTID(),
		member: map[syntax.DID]*memberState{},
		byID:   map[string]*message{},
		group:  &group{name: in.Name, owner: viewer, createdAt: s.now(), lock: lockUnlocked, past: map[syntax.DID]*pastMember{}},
	}
	c.rev = c.id
	s.st.convos[c.id] = c
	s.addMemberLocked(c, viewer, "", roleOwner, statusAccepted)
	for _, m := range members {
		s.addMemberLocked(c, m, viewer, roleStandard, statusRequest)
	}
	for _, m := range members {
		s.systemLocked(c, systemData{kind: sysAddMember, member: m, actor: viewer, role: roleStandard})
	}
	s.modGroupCreatedLocked(c) // modevents.go
	out := &chat.GroupCreateGroup_Output{Convo: h.convoView(c, viewer)}
	s.mu.Unlock()
	s.hydrate(ctx, h)
	return out, nil
}

// newMembers are the members not yet in c; MemberLimitReached when adding
// them would pass the limit. Requires Server.mu.
func newMembers(c *convo, members []syntax.DID) ([]syntax.DID, error) {
	var fresh []syntax.DID
	for _, m := range members {
		if c.member[m] == nil {
			fresh = append(fresh, m)
		}
	}
	if len(c.members)+len(fresh) > groupMemberLimit {
		return nil, badRequest("MemberLimitReached", "a group can have at most 100 members")
	}
	return fresh, nil
}

// addMembers implements chat.bsky.group.addMembers: the owner adds
// members (as requests) to an unlocked group; members already in it are
// left alone.
func (s *Server) addMembers(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.GroupAddMembers_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	if len(in.Members) == 0 {
		return nil, invalidf("Input/members must not be empty")
	}
	members, err := parseMembers(in.Members, viewer)
	if err != nil {
		return nil, err
	}
	// The group is checked before the records are read, and again after:
	// it may have changed in between.
	var fresh []syntax.DID
	check := func(c *convo, _ *hydrator) (err error) {
		if err = c.writable(); err == nil {
			fresh, err = newMembers(c, members)
		}
		return err
	}
	if _, err := s.changeGroup(ctx, viewer, in.ConvoId, check); err != nil {
		return nil, err
	}
	if err := s.checkInvites(ctx, viewer, fresh); err != nil {
		return nil, err
	}
	followsOwner := s.followsOwner(ctx, viewer, fresh...) // modemit.go
	out := &chat.GroupAddMembers_Output{}
	out.Convo, err = s.changeGroup(ctx, viewer, in.ConvoId, func(c *convo, h *hydrator) error {
		if err := check(c, h); err != nil {
			return err
		}
		for _, m := range fresh {
			s.addMemberLocked(c, m, viewer, roleStandard, statusRequest)
		}
		for _, m := range fresh {
			s.systemLocked(c, systemData{kind: sysAddMember, member: m, actor: viewer, role: roleStandard})
			s.modMemberAddedLocked(c, m, followsOwner[m])
			out.AddedMembers = append(out.AddedMembers, h.member(c, m))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// removeMembers implements chat.bsky.group.removeMembers: the owner
// removes members, whose membership is deleted (the convo is gone for
// them). The owner cannot be removed: the lexicon has a group always owned
// (the owner may not even leave an unlocked group), so that is refused
// with InvalidRequest. DIDs that are not members are ignored.
func (s *Server) removeMembers(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.GroupRemoveMembers_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	if len(in.Members) == 0 {
		return nil, invalidf("Input/members must not be empty")
	}
	members, err := parseMembers(in.Members, "")
	if err != nil {
		return nil, err
	}
	v, err := s.changeGroup(ctx, viewer, in.ConvoId, func(c *convo, _ *hydrator) error {
		if containsDID(members, c.group.owner) {
			return invalidf("the group's owner cannot be removed from it")
		}
		for _, m := range members {
			if c.member[m] != nil {
				s.removeMemberLocked(c, m, viewer)
				s.systemLocked(c, systemData{kind: sysRemoveMember, member: m, actor: viewer})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &chat.GroupRemoveMembers_Output{Convo: v}, nil
}

// editGroup implements chat.bsky.group.editGroup: the owner renames an
// unlocked group; a real change is announced by systemMessageDataEditGroup.
func (s *Server) editGroup(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.GroupEditGroup_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	if err := checkGroupName(in.Name); err != nil {
		return nil, err
	}
	v, err := s.changeGroup(ctx, viewer, in.ConvoId, func(c *convo, _ *hydrator) error {
		if err := c.writable(); err != nil {
			return err
		}
		if old := c.group.name; old != in.Name {
			c.group.name = in.Name
			s.systemLocked(c, systemData{kind: sysEditGroup, oldName: old, newName: in.Name})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &chat.GroupEditGroup_Output{Convo: v}, nil
}

// listMutualGroups implements chat.bsky.group.listMutualGroups: the
// viewer's groups the subject is also a member of, most recently active
// first.
func (s *Server) listMutualGroups(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	q := r.URL.Query()
	raw, err := requiredParam(q, "subject")
	if err != nil {
		return nil, err
	}
	subject, err := syntax.ParseDID(raw)
	if err != nil {
		return nil, invalidf("subject must be a valid did")
	}
	limit, cursor, err := pageParams(q)
	if err != nil {
		return nil, err
	}
	h := &hydrator{}
	out := &chat.GroupListMutualGroups_Output{Convos: []*chat.ConvoDefs_ConvoView{}}
	s.mu.Lock()
	page, next := s.pageConvos(viewer, cursor, limit, func(c *convo, _ *memberState) bool {
		return c.group != nil && c.member[subject] != nil
	})
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
