package dm

import (
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/views"
)

// The owner's pages of a group's join link (/convos/{id}/link) and of its
// requests to join (/convos/{id}/join-requests).

// errNotGroup answers the join link pages of a one-to-one conversation.
var errNotGroup = apperr.New(apperr.NotFound, "This conversation is not a group, so it has no invite link.")

// groupLink is what the join link pages read from a group's convoView.
type groupLink struct {
	name      string
	owner     bool // the viewer owns the group
	ownerName string
	link      *chat.GroupDefs_JoinLinkView
	unread    int // unread join requests (the owner only)
}

// groupLinkOf reads a group's name, owner and join link; false when v is
// not a group.
func groupLinkOf(v *chat.ConvoDefs_ConvoView, viewer string) (groupLink, bool) {
	g := groupOf(v)
	if g == nil {
		return groupLink{}, false
	}
	gl := groupLink{name: g.Name, link: g.JoinLink}
	if g.UnreadJoinRequestCount != nil {
		gl.unread = int(*g.UnreadJoinRequestCount)
	}
	// The counts of join requests are present only for the owner.
	gl.owner = g.UnreadJoinRequestCount != nil || g.JoinRequestCount != nil
	for _, m := range v.Members {
		if !isOwner(m) {
			continue
		}
		gl.ownerName = memberVM(m).Label()
		gl.owner = gl.owner || m.Did == viewer
	}
	return gl, true
}

// GroupJoinRequestsUnread returns the viewer's unread join requests of a
// group (its convoView's unreadJoinRequestCount, present only for the
// owner), and whether the viewer owns it: for a badge on a link to
// views.JoinRequestsURL (views.JoinRequestsBadgeTag), e.g. on the members
// page.
func GroupJoinRequestsUnread(v *chat.ConvoDefs_ConvoView, viewer string) (unread int, owner bool) {
	gl, ok := groupLinkOf(v, viewer)
	return gl.unread, ok && gl.owner
}

// JoinLink is GET /convos/{id}/link: the group's invite link to copy and,
// for the owner, the forms to create, change, turn off and on the link.
func (s *Pages) JoinLink(w http.ResponseWriter, r *http.Request) {
	acct, c, id, ok := s.convoClient(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()
	v, err := c.GetConvo(ctx, id)
	if err != nil {
		s.kit.Error(w, r, err, kit.Retry())
		return
	}
	gl, ok := groupLinkOf(v, acct.DID.String())
	if !ok {
		s.kit.Error(w, r, errNotGroup)
		return
	}
	s.renderJoinLink(w, r, http.StatusOK, id, gl, "", "", joinNotice(r.URL.Query().Get("notice")))
}

func (s *Pages) renderJoinLink(w http.ResponseWriter, r *http.Request, status int, id string, gl groupLink, who, errMsg, notice string) {
	vm := views.JoinLinkPageVM{Assets: s.dmAssets(), ConvoID: id, GroupName: gl.name, Owner: gl.owner, OwnerName: gl.ownerName,
		UnreadRequests: gl.unread, Who: who, Error: errMsg, Notice: notice}
	if l := gl.link; l != nil && l.Code != "" {
		vm.Link = &views.JoinLinkVM{Code: l.Code, URL: strings.TrimRight(s.dm.cfg.PublicURL, "/") + views.JoinURL(l.Code),
			Enabled: str(l.EnabledStatus) != "disabled", CreatedAt: parseTime(l.CreatedAt)}
		if who == "" && vm.Link.Enabled {
			vm.Who = views.JoinWho(str(l.JoinRule), l.RequireApproval)
		}
	}
	s.kit.Render(w, r, status, views.JoinLinkPage(s.dmPage(r, "Invite link", s.cachedUnread(r)), vm))
}

// joinSettings reads the "who" field: a rule and whether to approve.
func joinSettings(who string) (chatproxy.JoinLinkSettings, bool) {
	switch who {
	case views.WhoAnyone:
		return chatproxy.JoinLinkSettings{JoinRule: chatproxy.JoinRuleAnyone}, true
	case views.WhoAnyoneApproval:
		return chatproxy.JoinLinkSettings{JoinRule: chatproxy.JoinRuleAnyone, RequireApproval: true}, true
	case views.WhoFollowed:
		return chatproxy.JoinLinkSettings{JoinRule: chatproxy.JoinRuleFollowedByOwner}, true
	case views.WhoFollowedApproval:
		return chatproxy.JoinLinkSettings{JoinRule: chatproxy.JoinRuleFollowedByOwner, RequireApproval: true}, true
	}
	return chatproxy.JoinLinkSettings{}, false
}

// JoinLinkPost is POST /convos/{id}/link: action create or edit (with
// "who"), disable or enable. The chat service keeps one enabled link per
// group and says so when asked for a second; its refusals are shown on
// the page with the choice kept.
func (s *Pages) JoinLinkPost(w http.ResponseWriter, r *http.Request) {
	acct, c, id, ok := s.convoClient(w, r)
	if !ok {
		return
	}
	if err := parseDMForm(w, r); err != nil {
		s.kit.Error(w, r, err)
		return
	}
	action, who := r.PostForm.Get("action"), r.PostForm.Get("who")
	ctx, cancel := s.stepCtx(r, kit.ReloadReserve)
	defer cancel()
	var err error
	var notice string
	switch action {
	case "create", "edit":
		set, ok := joinSettings(who)
		if !ok {
			err = apperr.New(apperr.Invalid, "Choose who can join, and how.")
			break
		}
		if action == "create" {
			_, err = c.CreateJoinLink(ctx, id, set)
			notice = "link-created"
		} else {
			_, err = c.EditJoinLink(ctx, id, set)
			notice = "link-saved"
		}
	case "disable":
		_, err = c.DisableJoinLink(ctx, id)
		notice = "link-off"
	case "enable":
		_, err = c.EnableJoinLink(ctx, id)
		notice = "link-on"
	default:
		err = apperr.New(apperr.Invalid, "That is not something the invite link page can do.")
	}
	if err != nil {
		s.kit.Error(w, r, err, kit.Form(func(status int, msg string) {
			v, gerr := c.GetConvo(ctx, id)
			gl, ok := groupLinkOf(v, acct.DID.String())
			if gerr != nil || !ok {
				gl = groupLink{owner: true}
			}
			s.renderJoinLink(w, r, status, id, gl, who, msg, "")
		}, apperr.NotFound))
		return
	}
	kit.Redirect(w, r, noticeURL(views.JoinLinkURL(id), notice))
}

// JoinRequests is GET /convos/{id}/join-requests (?cursor= the next page):
// the owner's list of people asking to join, with the unread count in the
// heading. dm.js marks them read (POST .../read) once the page is seen.
func (s *Pages) JoinRequests(w http.ResponseWriter, r *http.Request) {
	acct, c, id, ok := s.convoClient(w, r)
	if !ok {
		return
	}
	status, vm, err := s.joinRequestsVM(r, c, acct.DID.String(), id)
	if err != nil {
		s.kit.Error(w, r, err, kit.Retry())
		return
	}
	vm.Notice = joinNotice(r.URL.Query().Get("notice"))
	s.renderJoinRequests(w, r, status, vm)
}

// joinRequestsVM loads the group and a page of its join requests.
func (s *Pages) joinRequestsVM(r *http.Request, c Chat, viewer, id string) (int, views.JoinRequestsVM, error) {
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()
	v, err := c.GetConvo(ctx, id)
	if err != nil {
		return 0, views.JoinRequestsVM{}, err
	}
	gl, ok := groupLinkOf(v, viewer)
	if !ok {
		return 0, views.JoinRequestsVM{}, errNotGroup
	}
	page, err := c.ListJoinRequests(ctx, id, r.URL.Query().Get("cursor"), 50)
	if err != nil {
		return 0, views.JoinRequestsVM{}, err
	}
	vm := views.JoinRequestsVM{ConvoID: id, GroupName: gl.name, Unread: gl.unread, Cursor: str(page.Cursor)}
	for _, q := range page.Requests {
		if q == nil || q.RequestedBy == nil {
			continue
		}
		vm.Requests = append(vm.Requests, views.JoinRequestVM{Member: memberVM(q.RequestedBy), RequestedAt: parseTime(q.RequestedAt)})
	}
	return http.StatusOK, vm, nil
}

func (s *Pages) renderJoinRequests(w http.ResponseWriter, r *http.Request, status int, vm views.JoinRequestsVM) {
	vm.Assets = s.dmAssets()
	s.kit.Render(w, r, status, views.JoinRequestsPage(s.dmPage(r, "Requests to join", s.cachedUnread(r)), vm))
}

// JoinRequestsRead is POST /convos/{id}/join-requests/read
// (updateJoinRequestsRead); JSON {"ok":true} for dm.js.
func (s *Pages) JoinRequestsRead(w http.ResponseWriter, r *http.Request) {
	s.joinRequestAction(w, r, func(r *http.Request, c Chat, id, _ string) error {
		ctx, cancel := s.upstreamCtx(r)
		defer cancel()
		return c.UpdateJoinRequestsRead(ctx, id)
	}, "read")
}

// ApproveJoinRequest is POST /convos/{id}/join-requests/{did}/approve.
func (s *Pages) ApproveJoinRequest(w http.ResponseWriter, r *http.Request) {
	s.joinRequestAction(w, r, func(r *http.Request, c Chat, id, member string) error {
		ctx, cancel := s.stepCtx(r, kit.ReloadReserve)
		defer cancel()
		_, err := c.ApproveJoinRequest(ctx, id, member)
		return err
	}, "approved")
}

// RejectJoinRequest is POST /convos/{id}/join-requests/{did}/reject.
func (s *Pages) RejectJoinRequest(w http.ResponseWriter, r *http.Request) {
	s.joinRequestAction(w, r, func(r *http.Request, c Chat, id, member string) error {
		ctx, cancel := s.stepCtx(r, kit.ReloadReserve)
		defer cancel()
		return c.RejectJoinRequest(ctx, id, member)
	}, "rejected")
}

// joinRequestAction runs one of the owner's POSTs on a group's requests
// ({did} when the route has it) and goes back to the list with notice;
// a refusal (the group is full, not the owner) is shown on the list.
func (s *Pages) joinRequestAction(w http.ResponseWriter, r *http.Request, do func(r *http.Request, c Chat, id, member string) error, notice string) {
	acct, c, id, ok := s.convoClient(w, r)
	if !ok {
		return
	}
	member := r.PathValue("did")
	if member != "" {
		if _, err := syntax.ParseDID(member); err != nil {
			s.kit.Error(w, r, apperr.New(apperr.NotFound, "There is no such request to join."))
			return
		}
	}
	err := do(r, c, id, member)
	if err == nil {
		if kit.WantsJSON(r) {
			kit.WriteJSON(s.kit, w, http.StatusOK, map[string]bool{"ok": true})
			return
		}
		kit.Redirect(w, r, noticeURL(views.JoinRequestsURL(id), notice))
		return
	}
	s.kit.Error(w, r, err, kit.Form(func(status int, msg string) {
		_, vm, lerr := s.joinRequestsVM(r, c, acct.DID.String(), id)
		if lerr != nil {
			vm = views.JoinRequestsVM{ConvoID: id}
		}
		vm.Error = msg
		s.renderJoinRequests(w, r, status, vm)
	}), kit.JSON(func(msg string) any { return map[string]string{"error": msg} }))
}
