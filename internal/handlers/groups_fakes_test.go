package handlers

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/lex/chat"
)

// The group management half of the fake chat service (groupChat), kept
// beside fakeChat so the shared fake stays as it is: each fakeChat's
// groups live in fakeGroupStates.

// fakeGroups is the group state of one fakeChat.
type fakeGroups struct {
	status   chat.ActorGetStatus_Output
	refusals map[string]string                             // GroupInviteRefusal by member DID
	members  map[string][]*chat.ActorDefs_ProfileViewBasic // by convo, owner first
	created  []chat.GroupCreateGroup_Input
	next     int
}

var fakeGroupStates sync.Map // *fakeChat → *fakeGroups

// groups returns f's group state (f.mu must be held to use it).
func (f *fakeChat) groups() *fakeGroups {
	g, _ := fakeGroupStates.LoadOrStore(f, &fakeGroups{
		status:   chat.ActorGetStatus_Output{CanCreateGroups: true, GroupMemberLimit: 100},
		refusals: map[string]string{},
		members:  map[string][]*chat.ActorDefs_ProfileViewBasic{},
	})
	return g.(*fakeGroups)
}

// groupMember is a member profile with its group role.
func groupMember(did, handle, name, role string) *chat.ActorDefs_ProfileViewBasic {
	p := profile(did, handle, name)
	p.Kind = &chat.ActorDefs_ProfileViewBasic_Kind{ActorDefs_GroupConvoMember: &chat.ActorDefs_GroupConvoMember{Role: ptr(role)}}
	return p
}

// addGroupWith adds a group owned by the first member (the first member) to the viewer's
// convos.
func (f *fakeChat) addGroupWith(id, name string, members ...*chat.ActorDefs_ProfileViewBasic) *chat.ConvoDefs_ConvoView {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addGroupWithLocked(id, name, members)
}

func (f *fakeChat) addGroupWithLocked(id, name string, members []*chat.ActorDefs_ProfileViewBasic) *chat.ConvoDefs_ConvoView {
	v := &chat.ConvoDefs_ConvoView{Id: id, Rev: "rev0", Members: members, Status: ptr("accepted"),
		Kind: &chat.ConvoDefs_ConvoView_Kind{ConvoDefs_GroupConvo: &chat.ConvoDefs_GroupConvo{
			Name: name, CreatedAt: f.now.Format("2006-01-02T15:04:05Z"), LockStatus: ptr("unlocked"),
			MemberCount: int64(len(members)), MemberLimit: 100}}}
	f.convos = append([]*chat.ConvoDefs_ConvoView{v}, f.convos...)
	f.groups().members[id] = members
	return v
}

func (f *fakeChat) groupMembers(id string) []*chat.ActorDefs_ProfileViewBasic {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*chat.ActorDefs_ProfileViewBasic(nil), f.groups().members[id]...)
}

func (f *fakeChat) createdGroups() []chat.GroupCreateGroup_Input {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]chat.GroupCreateGroup_Input(nil), f.groups().created...)
}

func (f *fakeChat) setRefusal(did, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups().refusals[did] = reason
}

var errFakeNotOwner = &apperr.Error{Code: apperr.Forbidden, Reason: chatproxy.ReasonNotOwner, Message: "Only the group's owner can do that."}

// ownedGroup returns the group id the viewer owns, or the service's error.
// Requires f.mu.
func (f *fakeChat) ownedGroup(id string) (*chat.ConvoDefs_ConvoView, error) {
	c := f.find(id)
	if c == nil || c.Kind == nil || c.Kind.ConvoDefs_GroupConvo == nil {
		return nil, errFakeNoConvo
	}
	ms := f.groups().members[id]
	if len(ms) == 0 || ms[0].Did != f.viewer {
		return nil, errFakeNotOwner
	}
	return c, nil
}

func (f *fakeChat) GetStatus(ctx context.Context) (*chat.ActorGetStatus_Output, error) {
	if err := f.enter(ctx, "GetStatus"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.groups().status
	return &st, nil
}

func (f *fakeChat) CreateGroup(ctx context.Context, name string, members []string) (*chat.ConvoDefs_ConvoView, error) {
	if err := f.enter(ctx, "CreateGroup"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.groups()
	g.created = append(g.created, chat.GroupCreateGroup_Input{Name: name, Members: members})
	g.next++
	ms := []*chat.ActorDefs_ProfileViewBasic{groupMember(f.viewer, "alice.test", "Alice", "owner")}
	for _, did := range members {
		ms = append(ms, groupMember(did, "member.test", "", "standard"))
	}
	return clone(f.addGroupWithLocked("group-"+strconv.Itoa(g.next), name, ms)), nil
}

func (f *fakeChat) AddMembers(ctx context.Context, id string, members []string) (*chat.ConvoDefs_ConvoView, error) {
	if err := f.enter(ctx, "AddMembers"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.ownedGroup(id)
	if err != nil {
		return nil, err
	}
	g := f.groups()
	for _, did := range members {
		g.members[id] = append(g.members[id], groupMember(did, "member.test", "", "standard"))
	}
	c.Kind.ConvoDefs_GroupConvo.MemberCount = int64(len(g.members[id]))
	return clone(c), nil
}

func (f *fakeChat) RemoveMembers(ctx context.Context, id string, members []string) (*chat.ConvoDefs_ConvoView, error) {
	if err := f.enter(ctx, "RemoveMembers"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.ownedGroup(id)
	if err != nil {
		return nil, err
	}
	g := f.groups()
	drop := map[string]bool{}
	for _, did := range members {
		drop[did] = true
	}
	var kept []*chat.ActorDefs_ProfileViewBasic
	for _, m := range g.members[id] {
		if !drop[m.Did] {
			kept = append(kept, m)
		}
	}
	g.members[id] = kept
	c.Kind.ConvoDefs_GroupConvo.MemberCount = int64(len(kept))
	return clone(c), nil
}

func (f *fakeChat) groupChange(ctx context.Context, method, id string, change func(g *chat.ConvoDefs_GroupConvo) error) (*chat.ConvoDefs_ConvoView, error) {
	if err := f.enter(ctx, method); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.ownedGroup(id)
	if err != nil {
		return nil, err
	}
	if err := change(c.Kind.ConvoDefs_GroupConvo); err != nil {
		return nil, err
	}
	return clone(c), nil
}

func (f *fakeChat) EditGroup(ctx context.Context, id, name string) (*chat.ConvoDefs_ConvoView, error) {
	return f.groupChange(ctx, "EditGroup", id, func(g *chat.ConvoDefs_GroupConvo) error { g.Name = name; return nil })
}

func (f *fakeChat) LockConvo(ctx context.Context, id string) (*chat.ConvoDefs_ConvoView, error) {
	return f.groupChange(ctx, "LockConvo", id, func(g *chat.ConvoDefs_GroupConvo) error { g.LockStatus = ptr("locked"); return nil })
}

func (f *fakeChat) UnlockConvo(ctx context.Context, id string) (*chat.ConvoDefs_ConvoView, error) {
	return f.groupChange(ctx, "UnlockConvo", id, func(g *chat.ConvoDefs_GroupConvo) error {
		if g.LockStatusModerationOverride {
			return &apperr.Error{Code: apperr.Forbidden, Reason: chatproxy.ReasonLockedByModeration,
				Message: "This group was locked by Bluesky's moderators, so it can't be unlocked."}
		}
		g.LockStatus = ptr("unlocked")
		return nil
	})
}

func (f *fakeChat) GetConvoMembers(ctx context.Context, id, cursor string, limit int64) (*chatproxy.MemberPage, error) {
	if err := f.enter(ctx, "GetConvoMembers"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.find(id) == nil {
		return nil, errFakeNoConvo
	}
	ms := f.groups().members[id]
	start, _ := strconv.Atoi(cursor)
	if limit <= 0 {
		limit = 50
	}
	end := min(start+int(limit), len(ms))
	page := &chatproxy.MemberPage{}
	for _, m := range ms[min(start, end):end] {
		page.Members = append(page.Members, clone(m))
	}
	if end < len(ms) {
		page.Cursor = fmt.Sprint(end)
	}
	return page, nil
}

func (f *fakeChat) GroupInviteRefusal(ctx context.Context, member syntax.DID) (string, error) {
	if err := f.enter(ctx, "GroupInviteRefusal"); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.groups().refusals[member.String()], nil
}

// The benchmarks' staticChat does not manage groups.

var errStaticNoGroups = &apperr.Error{Code: apperr.Unavailable, Reason: chatproxy.ReasonNotImplemented, Message: "not in the benchmark"}

func (s *staticChat) GetStatus(context.Context) (*chat.ActorGetStatus_Output, error) {
	return nil, errStaticNoGroups
}
func (s *staticChat) CreateGroup(context.Context, string, []string) (*chat.ConvoDefs_ConvoView, error) {
	return nil, errStaticNoGroups
}
func (s *staticChat) AddMembers(context.Context, string, []string) (*chat.ConvoDefs_ConvoView, error) {
	return nil, errStaticNoGroups
}
func (s *staticChat) RemoveMembers(context.Context, string, []string) (*chat.ConvoDefs_ConvoView, error) {
	return nil, errStaticNoGroups
}
func (s *staticChat) EditGroup(context.Context, string, string) (*chat.ConvoDefs_ConvoView, error) {
	return nil, errStaticNoGroups
}
func (s *staticChat) LockConvo(context.Context, string) (*chat.ConvoDefs_ConvoView, error) {
	return nil, errStaticNoGroups
}
func (s *staticChat) UnlockConvo(context.Context, string) (*chat.ConvoDefs_ConvoView, error) {
	return nil, errStaticNoGroups
}
func (s *staticChat) GetConvoMembers(context.Context, string, string, int64) (*chatproxy.MemberPage, error) {
	return nil, errStaticNoGroups
}
func (s *staticChat) GroupInviteRefusal(context.Context, syntax.DID) (string, error) {
	return "", errStaticNoGroups
}
