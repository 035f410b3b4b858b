package dm

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/rivo/uniseg"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/views"
)

// groupChat is what the pages of creating and managing groups: members, name, lock need of Chat.
type groupChat interface {
	GetStatus(ctx context.Context) (*chat.ActorGetStatus_Output, error)
	CreateGroup(ctx context.Context, name string, members []string) (*chat.ConvoDefs_ConvoView, error)
	AddMembers(ctx context.Context, convoID string, members []string) (*chat.ConvoDefs_ConvoView, error)
	RemoveMembers(ctx context.Context, convoID string, members []string) (*chat.ConvoDefs_ConvoView, error)
	EditGroup(ctx context.Context, convoID, name string) (*chat.ConvoDefs_ConvoView, error)
	LockConvo(ctx context.Context, convoID string) (*chat.ConvoDefs_ConvoView, error)
	UnlockConvo(ctx context.Context, convoID string) (*chat.ConvoDefs_ConvoView, error)
	GetConvoMembers(ctx context.Context, convoID, cursor string, limit int64) (*chatproxy.MemberPage, error)
	// GroupInviteRefusal says why the viewer may not add member to a
	// group, as far as the records show (their chat declaration's
	// allowGroupInvites, their follows, blocks either way): a chatproxy
	// Reason (UserForbidsGroups, NotFollowedBySender, Blocked), or "" when
	// nothing stands in the way or it cannot be told (the chat service
	// then decides, all or nothing).
	GroupInviteRefusal(ctx context.Context, member syntax.DID) (string, error)
}

// Group limits (chat.bsky.group.createGroup, editGroup: name; actor.getStatus:
// members).
const (
	maxGroupNameGraphemes = 50
	maxGroupNameBytes     = 500
	// defaultGroupMemberLimit is the member limit when getStatus gives none
	// (Bluesky's, the owner included).
	defaultGroupMemberLimit = 100
	// memberChecks bounds the members checked at once.
	memberChecks = 8
)

// errCannotCreateGroups is getStatus's canCreateGroups false.
var errCannotCreateGroups = &apperr.Error{Code: apperr.Forbidden, Reason: chatproxy.ReasonNewAccountNoGroups,
	Message: "Your account can't create group chats yet. Please try again later."}

// NewGroup is GET /convos/new-group: the form creating a group, with the
// member limit and, when the account may not create groups, why (from
// getStatus; when that fails the form is shown anyway and the POST asks
// again).
func (s *Pages) NewGroup(w http.ResponseWriter, r *http.Request) {
	_, c, ok := s.dmClient(w, r)
	if !ok {
		return
	}
	vm := views.NewGroupVM{Limit: defaultGroupMemberLimit}
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()
	if st, err := c.GetStatus(ctx); err == nil {
		if st.GroupMemberLimit > 0 {
			vm.Limit = int(st.GroupMemberLimit)
		}
		if !st.CanCreateGroups {
			vm.Error = errCannotCreateGroups.Message
		}
	}
	s.renderNewGroup(w, r, http.StatusOK, vm)
}

func (s *Pages) renderNewGroup(w http.ResponseWriter, r *http.Request, status int, vm views.NewGroupVM) {
	vm.Assets = s.dmAssets()
	s.kit.Render(w, r, status, views.NewGroupPage(s.dmPage(r, "New group", s.cachedUnread(r)), vm))
}

// NewGroupPost is POST /convos/new-group: checks the name, the number of
// members against getStatus's limit, and every member (the handle
// resolves; GroupInviteRefusal), and only when all can be added creates
// the group (createGroup, all or nothing) and opens it. Otherwise the form
// comes back with the draft and each refused member's reason, and nothing
// is created.
func (s *Pages) NewGroupPost(w http.ResponseWriter, r *http.Request) {
	acct, c, ok := s.dmClient(w, r)
	if !ok {
		return
	}
	if err := parseDMForm(w, r); err != nil {
		s.kit.Error(w, r, err)
		return
	}
	vm := views.NewGroupVM{Name: r.PostForm.Get("name"), Members: r.PostForm.Get("members"), Limit: defaultGroupMemberLimit}
	show := func(status int) { s.renderNewGroup(w, r, status, vm) }
	onForm := kit.Form(func(status int, msg string) { vm.Error = msg; show(status) })

	name, nameErr := groupName(vm.Name)
	handles := splitHandles(vm.Members, acct.Handle)
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()
	st, err := c.GetStatus(ctx)
	if err != nil {
		s.kit.Error(w, r, err, onForm)
		return
	}
	if !st.CanCreateGroups {
		s.kit.Error(w, r, errCannotCreateGroups, onForm)
		return
	}
	if st.GroupMemberLimit > 0 {
		vm.Limit = int(st.GroupMemberLimit)
	}
	vm.MembersError = memberCountError(len(handles), vm.Limit-1, true)
	if nameErr != nil {
		vm.NameError = apperr.MessageOf(nameErr)
	}
	var dids []string
	if vm.MembersError == "" {
		if dids, vm.Refused, err = s.checkMembers(ctx, c, acct.DID, handles); err != nil {
			s.kit.Error(w, r, err, onForm)
			return
		}
	}
	if vm.NameError != "" || vm.MembersError != "" || len(vm.Refused) > 0 {
		show(http.StatusBadRequest)
		return
	}
	if len(handles) == 1 {
		c = c.ForRecipient(handles[0])
	}
	convo, err := c.CreateGroup(ctx, name, dids)
	if err != nil {
		s.kit.Error(w, r, err, onForm)
		return
	}
	s.dm.invalidate(acct.DID)
	kit.Redirect(w, r, views.ConvoLatestURL(convo.Id))
}

// groupName checks a group name (createGroup, editGroup): 1-50 graphemes
// and at most 500 bytes, after trimming.
func groupName(typed string) (string, error) {
	name := strings.TrimSpace(typed)
	if name == "" {
		return "", apperr.New(apperr.Invalid, "Give the group a name.")
	}
	if n := uniseg.GraphemeClusterCount(name); n > maxGroupNameGraphemes {
		return "", apperr.New(apperr.Invalid, "Group names can be at most "+strconv.Itoa(maxGroupNameGraphemes)+
			" characters; this one has "+strconv.Itoa(n)+". Please shorten it.")
	}
	if len(name) > maxGroupNameBytes { // 50 graphemes can still be long (emoji sequences)
		return "", apperr.New(apperr.Invalid, "That name is too long to store, although it looks short: please use fewer or simpler characters.")
	}
	return name, nil
}

// memberCountError is why n members cannot be added when at most room
// can: none given, or too many; "" when n fits.
func memberCountError(n, room int, creating bool) string {
	switch {
	case n == 0 && creating:
		return "Add at least one member: their handle, like bob.bsky.social."
	case n == 0:
		return "Enter the handles of the people to add, like bob.bsky.social."
	case n > room:
		if room < 1 {
			return "This group is full."
		}
		return "You listed " + strconv.Itoa(n) + " people, but only " + strconv.Itoa(room) +
			" more can join: a group has at most " + strconv.Itoa(room+1) + " members, you included."
	}
	return ""
}

// splitHandles returns the distinct handles (or DIDs) typed, one per line
// or separated by commas or spaces, without "@" and without the viewer
// (the owner is in the group anyway).
func splitHandles(typed, self string) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range strings.FieldsFunc(typed, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\r' || r == '\t'
	}) {
		h := strings.TrimPrefix(f, "@")
		k := strings.ToLower(h)
		if h == "" || seen[k] || (self != "" && k == strings.ToLower(self)) {
			continue
		}
		seen[k] = true
		out = append(out, h)
	}
	return out
}

// checkMembers resolves every handle and asks GroupInviteRefusal about
// each, at most memberChecks at once. It returns the DIDs to add, in the
// order typed, and the members who cannot be added with the reason; err
// only when a check could not be made (the lookup or the records failed),
// and then nothing may be created.
func (s *Pages) checkMembers(ctx context.Context, c Chat, self syntax.DID, handles []string) ([]string, []views.RefusedMember, error) {
	type result struct {
		did    syntax.DID
		reason string
		err    error
	}
	results := make([]result, len(handles))
	var wg sync.WaitGroup
	sem := make(chan struct{}, memberChecks)
	for i, h := range handles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res := &results[i]
			did, _, err := s.lookupRecipient(ctx, h)
			switch {
			case apperr.CodeOf(err) == apperr.NotFound || apperr.CodeOf(err) == apperr.Invalid:
				res.reason = apperr.MessageOf(chatproxy.MemberRefusal(chatproxy.ReasonRecipientNotFound, h))
				if apperr.CodeOf(err) == apperr.Invalid {
					res.reason = apperr.MessageOf(err)
				}
				return
			case err != nil:
				res.err = err
				return
			case did == self:
				return
			}
			res.did = did
			why, err := c.GroupInviteRefusal(ctx, did)
			if err != nil {
				res.err = err
				return
			}
			if why != "" {
				res.reason = apperr.MessageOf(chatproxy.MemberRefusal(why, h))
			}
		}()
	}
	wg.Wait()
	var dids []string
	var refused []views.RefusedMember
	for i, res := range results {
		switch {
		case res.err != nil:
			return nil, nil, res.err
		case res.reason != "":
			refused = append(refused, views.RefusedMember{Handle: handles[i], Reason: res.reason})
		case res.did != "" && res.did != self:
			dids = append(dids, res.did.String())
		}
	}
	return dids, refused, nil
}
