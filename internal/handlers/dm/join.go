package dm

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/views"
)

// The page of a join link, /join/{code}: anyone signed in opens it, sees
// the group and joins it or asks to (chat.bsky.group.requestJoin). The
// owner's pages are in joinowner.go.

// joinNotice returns the notice a ?notice= code of the join link pages
// stands for: the query picks one of these, it never supplies text.
func joinNotice(code string) string {
	switch code {
	case "requested":
		return "Request sent; you'll be added when the owner approves."
	case "withdrawn":
		return "Your request to join was withdrawn."
	case "link-created":
		return "Invite link created. Copy it and share it with the people you want in the group."
	case "link-saved":
		return "Invite link saved."
	case "link-off":
		return "Invite link turned off. Nobody can join with it now."
	case "link-on":
		return "Invite link turned back on."
	case "approved":
		return "Request approved: they are now in the group."
	case "rejected":
		return "Request rejected."
	case "read":
		return "Marked as read."
	}
	return ""
}

// Join is GET /join/{code}: the preview of the group (getJoinLinkPreviews:
// valid, turned off, or no such link) with Join / Ask to join, "already a
// member" with a link to the conversation, or a pending request with
// Withdraw. Signed out, it asks to sign in and comes back here after.
func (s *Pages) Join(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	if kit.Current(r.Context()) == nil {
		kit.SetReturnTo(w, views.JoinURL(code))
	}
	acct, c, ok := s.dmClient(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()
	p, err := c.GetJoinLinkPreview(ctx, code)
	if err != nil {
		s.kit.Error(w, r, err, kit.Retry())
		return
	}
	notice := r.URL.Query().Get("notice")
	vm := views.JoinPageVM{Preview: joinPreviewVM(p.GroupDefs_JoinLinkPreviewView, p.GroupDefs_DisabledJoinLinkPreviewView, code, acct.DID.String()),
		Notice: joinNotice(notice)}
	if notice == "requested" && vm.Preview.State == views.JoinValid && !vm.Preview.Member {
		vm.Preview.Requested = true // the service said pending just now
		vm.Notice = ""              // the pending line says it, naming the owner
	}
	s.renderJoin(w, r, http.StatusOK, vm)
}

func (s *Pages) renderJoin(w http.ResponseWriter, r *http.Request, status int, vm views.JoinPageVM) {
	vm.Assets = s.dmAssets()
	title := "Join a group"
	switch vm.Preview.State {
	case views.JoinValid:
		title = "Join " + views.ClampName(vm.Preview.Name)
	case views.JoinInvalid:
		if status == http.StatusOK {
			status = http.StatusNotFound
		}
	}
	s.kit.Render(w, r, status, views.JoinPage(s.dmPage(r, title, s.cachedUnread(r)), vm))
}

// JoinPost is POST /join/{code}: requestJoin. Joined → the conversation;
// pending → the join page saying the request was sent. Every refusal
// (turned off, only people the owner follows, full, removed, no such
// link) is shown on the join page in words.
func (s *Pages) JoinPost(w http.ResponseWriter, r *http.Request) {
	acct, c, ok := s.dmClient(w, r)
	if !ok {
		return
	}
	code := r.PathValue("code")
	ctx, cancel := s.stepCtx(r, kit.ReloadReserve)
	defer cancel()
	p, err := c.GetJoinLinkPreview(ctx, code)
	if err != nil {
		s.kit.Error(w, r, err, kit.Retry())
		return
	}
	pv := joinPreviewVM(p.GroupDefs_JoinLinkPreviewView, p.GroupDefs_DisabledJoinLinkPreviewView, code, acct.DID.String())
	var out *chat.GroupRequestJoin_Output
	switch {
	case pv.State == views.JoinInvalid:
		err = &apperr.Error{Code: apperr.NotFound, Reason: chatproxy.ReasonJoinLinkInvalid, Message: "This join link does not exist."}
	case pv.Member:
		kit.Redirect(w, r, views.ConvoURL(pv.ConvoID))
		return
	default: // a turned-off link is the service's to refuse (LinkDisabled)
		out, err = c.ForRecipient(pv.Owner.Label()).RequestJoin(ctx, code)
	}
	if err != nil {
		s.kit.Error(w, r, err, kit.Form(func(status int, msg string) {
			s.renderJoin(w, r, status, views.JoinPageVM{Preview: pv, Error: msg})
		}, apperr.NotFound))
		return
	}
	s.dm.invalidate(acct.DID)
	if out.Status == chatproxy.JoinStatusJoined {
		id := pv.ConvoID
		if out.Convo != nil && out.Convo.Id != "" {
			id = out.Convo.Id
		}
		kit.Redirect(w, r, views.ConvoLatestURL(id))
		return
	}
	kit.Redirect(w, r, noticeURL(views.JoinURL(code), "requested"))
}

// JoinWithdraw is POST /join/{code}/withdraw (field convo): withdraws the
// viewer's pending request to join that group.
func (s *Pages) JoinWithdraw(w http.ResponseWriter, r *http.Request) {
	acct, c, ok := s.dmClient(w, r)
	if !ok {
		return
	}
	code := r.PathValue("code")
	if err := parseDMForm(w, r); err != nil {
		s.kit.Error(w, r, err)
		return
	}
	convo := r.PostForm.Get("convo")
	if !validID(convo) {
		s.kit.Error(w, r, errNoConvo)
		return
	}
	ctx, cancel := s.stepCtx(r, kit.ReloadReserve)
	defer cancel()
	if err := c.WithdrawJoinRequest(ctx, convo); err != nil {
		s.kit.Error(w, r, err, kit.Form(func(status int, msg string) {
			vm := views.JoinPageVM{Preview: views.JoinPreviewVM{Code: code, State: views.JoinInvalid}, Error: msg}
			if p, perr := c.GetJoinLinkPreview(ctx, code); perr == nil {
				vm.Preview = joinPreviewVM(p.GroupDefs_JoinLinkPreviewView, p.GroupDefs_DisabledJoinLinkPreviewView, code, acct.DID.String())
			}
			s.renderJoin(w, r, status, vm)
		}, apperr.NotFound))
		return
	}
	kit.Redirect(w, r, noticeURL(views.JoinURL(code), "withdrawn"))
}

// joinPreviewVM converts a join link preview (getJoinLinkPreviews, or the
// chat.bsky.embed.joinLink#view of a message): valid when v is set,
// turned off when disabled is, else no such link.
func joinPreviewVM(v *chat.GroupDefs_JoinLinkPreviewView, disabled *chat.GroupDefs_DisabledJoinLinkPreviewView, code, viewer string) views.JoinPreviewVM {
	switch {
	case v != nil:
		p := views.JoinPreviewVM{Code: v.Code, State: views.JoinValid, Name: v.Name, MemberCount: v.MemberCount, MemberLimit: v.MemberLimit,
			RequireApproval: v.RequireApproval, FollowedByOwner: str(v.JoinRule) == chatproxy.JoinRuleFollowedByOwner, ConvoID: v.ConvoId}
		if p.Code == "" {
			p.Code = code
		}
		if v.Owner != nil {
			p.Owner = memberVM(v.Owner)
		}
		if v.Convo != nil { // present only for a member
			p.Member = true
			if v.Convo.Id != "" {
				p.ConvoID = v.Convo.Id
			}
		}
		if v.Owner != nil && v.Owner.Did == viewer {
			p.Member = true
		}
		p.Requested = !p.Member && v.Viewer != nil && v.Viewer.RequestedAt != nil
		return p
	case disabled != nil:
		return views.JoinPreviewVM{Code: code, State: views.JoinDisabled}
	}
	return views.JoinPreviewVM{Code: code, State: views.JoinInvalid}
}

// joinCard converts the join link embed of a message.
func joinCard(v *chat.EmbedJoinLink_View, viewer string) *views.JoinPreviewVM {
	var p views.JoinPreviewVM
	if v.JoinLinkPreview == nil {
		p = joinPreviewVM(nil, nil, "", viewer)
	} else {
		u := v.JoinLinkPreview
		code := ""
		if u.GroupDefs_DisabledJoinLinkPreviewView != nil {
			code = u.GroupDefs_DisabledJoinLinkPreviewView.Code
		}
		p = joinPreviewVM(u.GroupDefs_JoinLinkPreviewView, u.GroupDefs_DisabledJoinLinkPreviewView, code, viewer)
	}
	return &p
}

// officialJoinURL matches the official app's join link,
// https://bsky.app/chat/{code} (its invite link dialog builds it; codes are
// 7 letters and digits, up to 10 accepted).
const officialJoinURL = `https://bsky\.app/chat/([A-Za-z0-9]{7,10})`

// joinCodeIn returns the code of the first join link in a message's text:
// a skydm link (Config.PublicURL + "/join/{code}") or the official app's
// (https://bsky.app/chat/{code}); "" when there is none. Send attaches it
// as the message's chat.bsky.embed.joinLink, as the official app does with
// the first invite link of a message.
func (s *Pages) joinCodeIn(text string) string {
	pats := officialJoinURL
	if base := strings.TrimRight(s.dm.cfg.PublicURL, "/"); base != "" {
		pats = regexp.QuoteMeta(base) + `/join/([A-Za-z0-9_-]{1,64})|` + pats
	}
	re := regexp.MustCompile(`(?:^|[\s(<])(?:` + pats + `)(?:$|[\s)>.,!?;:])`)
	m := re.FindStringSubmatch(text)
	for i := 1; i < len(m); i++ {
		if c := m[i]; c != "" {
			return c
		}
	}
	return ""
}
