package dm

import (
	"context"
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/internal/websession"
	"github.com/skydm/skydm/views"
)

// The members page of a group and the owner's actions on it. The page
// shows who may do what; the chat service enforces it (InsufficientRole
// for a member who is not the owner).

const (
	// membersPageSize is how many members a members page shows.
	membersPageSize = 100
	// maxMemberPages bounds the walk looking for one member's role.
	maxMemberPages = 10
	roleOwner      = "owner"
)

var (
	errNoMembersPage = &apperr.Error{Code: apperr.NotFound, Reason: chatproxy.ReasonConvoNotFound,
		Message: "This conversation is not a group, so it has no members page."}
	errNotMember = apperr.New(apperr.Invalid, "That person is not in this group any more.")
	errOwnerStay = apperr.New(apperr.Invalid, "The group's owner can't be removed from it. Nothing was changed.")
)

// groupNotice is the notice a members page ?notice= code stands for.
func groupNotice(code string) string {
	switch code {
	case "added":
		return "Invited. They join the group when they accept."
	case "removed":
		return "Removed from the group."
	case "renamed":
		return "Group renamed."
	case "locked":
		return "Group locked. Nobody can send messages until you unlock it."
	case "unlocked":
		return "Group unlocked. Everyone can send messages again."
	}
	return ""
}

// Members is GET /convos/{id}/members: the group's members (?cursor= for
// the next page) and, with ?remove=<did>, the owner's confirmation step of
// removing that member (a page, so it works without JavaScript).
func (s *Pages) Members(w http.ResponseWriter, r *http.Request) {
	acct, c, id, ok := s.convoClient(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	vm := views.GroupMembersVM{Notice: groupNotice(q.Get("notice"))}
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()
	if err := s.loadMembers(ctx, c, acct, id, q.Get("cursor"), &vm); err != nil {
		s.kit.Error(w, r, err, kit.Retry())
		return
	}
	if did := q.Get("remove"); did != "" && vm.Owner {
		m, err := findMember(ctx, c, acct, id, did)
		switch {
		case err == errNotMember:
			vm.Error = errNotMember.Message
		case err != nil:
			s.kit.Error(w, r, err, kit.Retry())
			return
		case m.Owner:
			vm.Error = errOwnerStay.Message
		default:
			vm.ConfirmRemove = &m
		}
	}
	s.renderMembers(w, r, http.StatusOK, vm)
}

func (s *Pages) renderMembers(w http.ResponseWriter, r *http.Request, status int, vm views.GroupMembersVM) {
	vm.Assets = s.dmAssets()
	s.kit.Render(w, r, status, views.GroupMembersPage(s.dmPage(r, "Members of "+vm.Name, s.cachedUnread(r)), vm))
}

// loadMembers fills vm with the group (getConvo) and one page of its
// members (getConvoMembers), fetched at once.
func (s *Pages) loadMembers(ctx context.Context, c Chat, acct websession.Account, id, cursor string, vm *views.GroupMembersVM) error {
	var convo *chat.ConvoDefs_ConvoView
	var convoErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		convo, convoErr = c.GetConvo(ctx, id)
	}()
	page, err := c.GetConvoMembers(ctx, id, cursor, membersPageSize)
	<-done
	if convoErr != nil {
		return convoErr
	}
	g := groupOf(convo)
	if g == nil {
		return errNoMembersPage
	}
	if err != nil {
		return err
	}
	vm.ConvoID, vm.Name, vm.MemberCount, vm.Limit = id, g.Name, int(g.MemberCount), int(g.MemberLimit)
	vm.Lock, vm.LockedByModeration = str(g.LockStatus), g.LockStatusModerationOverride
	if vm.RenameDraft == "" {
		vm.RenameDraft = g.Name
	}
	vm.NextCursor = page.Cursor
	for _, p := range page.Members {
		vm.Members = append(vm.Members, groupMemberVM(p, acct.DID))
	}
	for _, p := range convo.Members { // the viewer is among the convo's important members
		if p != nil && p.Did == acct.DID.String() {
			vm.Owner = groupMemberVM(p, acct.DID).Owner
		}
	}
	for _, m := range vm.Members {
		if m.You && m.Owner {
			vm.Owner = true
		}
	}
	vm.JoinRequestsUnread, _ = GroupJoinRequestsUnread(convo, acct.DID.String())
	return nil
}

// groupOf is the group part of a convo view, nil for a direct convo.
func groupOf(v *chat.ConvoDefs_ConvoView) *chat.ConvoDefs_GroupConvo {
	if v == nil || v.Kind == nil {
		return nil
	}
	return v.Kind.ConvoDefs_GroupConvo
}

// isOwner reports whether p is a group member whose role is owner.
func isOwner(p *chat.ActorDefs_ProfileViewBasic) bool {
	return p != nil && p.Kind != nil && p.Kind.ActorDefs_GroupConvoMember != nil &&
		str(p.Kind.ActorDefs_GroupConvoMember.Role) == roleOwner
}

func groupMemberVM(p *chat.ActorDefs_ProfileViewBasic, viewer syntax.DID) views.GroupMemberVM {
	return views.GroupMemberVM{MemberVM: memberVM(p), You: p.Did == viewer.String(), Owner: isOwner(p),
		Blocking: p.Viewer != nil && p.Viewer.Blocking != nil}
}

// findMember looks for did among the group's members, page by page;
// errNotMember when they are not in it.
func findMember(ctx context.Context, c Chat, acct websession.Account, id, did string) (views.GroupMemberVM, error) {
	cursor := ""
	for range maxMemberPages {
		page, err := c.GetConvoMembers(ctx, id, cursor, membersPageSize)
		if err != nil {
			return views.GroupMemberVM{}, err
		}
		for _, p := range page.Members {
			if p.Did == did {
				return groupMemberVM(p, acct.DID), nil
			}
		}
		if page.Cursor == "" || page.Cursor == cursor {
			break
		}
		cursor = page.Cursor
	}
	return views.GroupMemberVM{}, errNotMember
}

// membersForm is the kit.Form option of an owner action: the members page
// again, with set putting the message (and the draft) in its place.
func (s *Pages) membersForm(w http.ResponseWriter, r *http.Request, acct websession.Account, c Chat, id string,
	set func(vm *views.GroupMembersVM, msg string)) kit.ErrorOption {
	return kit.Form(func(status int, msg string) {
		var vm views.GroupMembersVM
		set(&vm, msg)
		ctx, cancel := s.upstreamCtx(r)
		defer cancel()
		if err := s.loadMembers(ctx, c, acct, id, "", &vm); err != nil {
			s.kit.Error(w, r, err)
			return
		}
		if !vm.Owner { // the owner's forms are not shown: say it at the top
			vm.Error = msg
		}
		s.renderMembers(w, r, status, vm)
	})
}

// topError puts msg at the top of the members page.
func topError(vm *views.GroupMembersVM, msg string) { vm.Error = msg }

// groupAction runs one owner action of POST /convos/{id}/...: act with the
// form read, then back to the members page with the notice; failures on
// the members page through form.
func (s *Pages) groupAction(w http.ResponseWriter, r *http.Request, notice string,
	act func(ctx context.Context, acct websession.Account, c Chat, id string) (kit.ErrorOption, error)) {
	acct, c, id, ok := s.convoClient(w, r)
	if !ok {
		return
	}
	if err := parseDMForm(w, r); err != nil {
		s.kit.Error(w, r, err)
		return
	}
	ctx, cancel := s.stepCtx(r, 2*kit.AnswerReserve) // the failure answer reloads the page
	defer cancel()
	form, err := act(ctx, acct, c, id)
	if err != nil {
		if form == nil {
			form = s.membersForm(w, r, acct, c, id, topError)
		}
		s.kit.Error(w, r, err, form)
		return
	}
	s.dm.invalidate(acct.DID)
	kit.Redirect(w, r, views.GroupMembersURL(id)+"?notice="+notice)
}

// RemoveMember is POST /convos/{id}/members/remove (member=<did>), the
// confirmed step: refuses to remove the owner before asking the service.
func (s *Pages) RemoveMember(w http.ResponseWriter, r *http.Request) {
	s.groupAction(w, r, "removed", func(ctx context.Context, acct websession.Account, c Chat, id string) (kit.ErrorOption, error) {
		did, err := syntax.ParseDID(strings.TrimSpace(r.PostForm.Get("member")))
		if err != nil {
			return nil, errNotMember
		}
		m, err := findMember(ctx, c, acct, id, did.String())
		if err != nil {
			return nil, err
		}
		if m.Owner {
			return nil, errOwnerStay
		}
		_, err = c.ForRecipient(m.Label()).RemoveMembers(ctx, id, []string{did.String()})
		return nil, err
	})
}

// AddGroupMembers is POST /convos/{id}/members/add (members=<handles>):
// each member checked as for a new group; all added or none.
func (s *Pages) AddGroupMembers(w http.ResponseWriter, r *http.Request) {
	s.groupAction(w, r, "added", func(ctx context.Context, acct websession.Account, c Chat, id string) (kit.ErrorOption, error) {
		draft := r.PostForm.Get("members")
		var refused []views.RefusedMember
		form := s.membersForm(w, r, acct, c, id, func(vm *views.GroupMembersVM, msg string) {
			vm.AddDraft, vm.AddError, vm.AddRefused = draft, msg, refused
		})
		handles := splitHandles(draft, acct.Handle)
		convo, err := c.GetConvo(ctx, id)
		if err != nil {
			return form, err
		}
		g := groupOf(convo)
		if g == nil {
			return nil, errNoMembersPage
		}
		if msg := memberCountError(len(handles), int(g.MemberLimit-g.MemberCount), false); msg != "" {
			return form, apperr.New(apperr.Invalid, msg)
		}
		dids, refused, err := s.checkMembers(ctx, c, acct.DID, handles)
		if err != nil {
			return form, err
		}
		if len(refused) > 0 {
			return form, apperr.New(apperr.Invalid, "Nobody was added.")
		}
		if len(handles) == 1 {
			c = c.ForRecipient(handles[0])
		}
		_, err = c.AddMembers(ctx, id, dids)
		return form, err
	})
}

// RenameGroup is POST /convos/{id}/rename (name=): editGroup.
func (s *Pages) RenameGroup(w http.ResponseWriter, r *http.Request) {
	s.groupAction(w, r, "renamed", func(ctx context.Context, acct websession.Account, c Chat, id string) (kit.ErrorOption, error) {
		draft := r.PostForm.Get("name")
		form := s.membersForm(w, r, acct, c, id, func(vm *views.GroupMembersVM, msg string) {
			vm.RenameDraft, vm.RenameError = draft, msg
		})
		name, err := groupName(draft)
		if err != nil {
			return form, err
		}
		_, err = c.EditGroup(ctx, id, name)
		return form, err
	})
}

// LockGroup is POST /convos/{id}/lock: lockConvo.
func (s *Pages) LockGroup(w http.ResponseWriter, r *http.Request) {
	s.groupAction(w, r, "locked", func(ctx context.Context, _ websession.Account, c Chat, id string) (kit.ErrorOption, error) {
		_, err := c.LockConvo(ctx, id)
		return nil, err
	})
}

// UnlockGroup is POST /convos/{id}/unlock: unlockConvo
// (ConvoLockedByModeration when moderators hold the lock).
func (s *Pages) UnlockGroup(w http.ResponseWriter, r *http.Request) {
	s.groupAction(w, r, "unlocked", func(ctx context.Context, _ websession.Account, c Chat, id string) (kit.ErrorOption, error) {
		_, err := c.UnlockConvo(ctx, id)
		return nil, err
	})
}
