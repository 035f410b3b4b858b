package devchat

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

// Join links: chat.bsky.group.createJoinLink, editJoinLink, enableJoinLink,
// disableJoinLink, getJoinLinkPreviews, and the chat.bsky.embed.joinLink
// embed. Join requests are in joinrequests.go.

// joinRoutes are the join link and join request XRPC methods.
func (s *Server) joinRoutes() map[string]method {
	return map[string]method{
		"chat.bsky.group.createJoinLink":         {procedure: true, handle: s.createJoinLink},
		"chat.bsky.group.editJoinLink":           {procedure: true, handle: s.editJoinLink},
		"chat.bsky.group.enableJoinLink":         {procedure: true, handle: s.enableJoinLink},
		"chat.bsky.group.disableJoinLink":        {procedure: true, handle: s.disableJoinLink},
		"chat.bsky.group.getJoinLinkPreviews":    {handle: s.getJoinLinkPreviews},
		"chat.bsky.group.requestJoin":            {procedure: true, handle: s.requestJoin},
		"chat.bsky.group.withdrawJoinRequest":    {procedure: true, handle: s.withdrawJoinRequest},
		"chat.bsky.group.listJoinRequests":       {handle: s.listJoinRequests},
		"chat.bsky.group.approveJoinRequest":     {procedure: true, handle: s.approveJoinRequest},
		"chat.bsky.group.rejectJoinRequest":      {procedure: true, handle: s.rejectJoinRequest},
		"chat.bsky.group.updateJoinRequestsRead": {procedure: true, handle: s.updateJoinRequestsRead},
	}
}

// publicMethods may be called without a service token (viewer ""): join
// link previews are for feeds, "including to unauthenticated viewers".
var publicMethods = map[string]bool{"chat.bsky.group.getJoinLinkPreviews": true}

// Join rules and link states, as chat.bsky.group.defs has them.
const (
	joinRuleAnyone          = "anyone"
	joinRuleFollowedByOwner = "followedByOwner"
	linkEnabled             = "enabled"
	linkDisabled            = "disabled"
	maxPreviewCodes         = 50 // getJoinLinkPreviews codes maxLength
	joinCodeLen             = 12
)

// joinLink is a group's join link. A group has at most one: creating a new
// one while the old one is disabled replaces it, and the old code then maps
// to nothing.
type joinLink struct {
	code            string
	convoID         string
	enabled         bool
	requireApproval bool
	rule            string // joinRuleAnyone or joinRuleFollowedByOwner
	createdAt       time.Time
}

// groupJoin is a group's join link and pending join requests; part of group.
type groupJoin struct {
	link     *joinLink      // nil until the owner creates one
	requests []*joinRequest // pending, ascending rev
	readRev  string         // the owner read join requests up to this rev
}

// newJoinCode returns an unused random code of lowercase letters and digits.
// Requires Server.mu.
func (s *Server) newJoinCode() string {
	for {
		code := strings.ToLower(rand.Text()[:joinCodeLen])
		if _, taken := s.st.joinCodes[code]; !taken {
			if s.st.joinCodes == nil {
				s.st.joinCodes = map[string]*joinLink{}
			}
			return code
		}
	}
}

// linkByCode is code's link and its group, or nils. Requires Server.mu.
func (s *Server) linkByCode(code string) (*joinLink, *convo) {
	l := s.st.joinCodes[code]
	if l == nil {
		return nil, nil
	}
	c := s.st.convos[l.convoID]
	if c == nil || c.group == nil || c.group.join.link != l {
		return nil, nil
	}
	return l, c
}

func joinLinkView(l *joinLink) *chat.GroupDefs_JoinLinkView {
	status := linkDisabled
	if l.enabled {
		status = linkEnabled
	}
	rule := l.rule
	return &chat.GroupDefs_JoinLinkView{
		Code:            l.code,
		CreatedAt:       datetime(l.createdAt),
		EnabledStatus:   &status,
		JoinRule:        &rule,
		RequireApproval: l.requireApproval,
	}
}

// joinRuleInput checks an optional joinRule input.
func joinRuleInput(rule *string, required bool) error {
	switch {
	case rule == nil && required:
		return invalidf("Input must have the property %q", "joinRule")
	case rule == nil, *rule == joinRuleAnyone, *rule == joinRuleFollowedByOwner:
		return nil
	}
	return invalidf("Input/joinRule must be one of: %s, %s", joinRuleAnyone, joinRuleFollowedByOwner)
}

func (s *Server) createJoinLink(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.GroupCreateJoinLink_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	if err := requireInput("convoId", in.ConvoId); err != nil {
		return nil, err
	}
	if err := joinRuleInput(in.JoinRule, true); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.ownedGroup(in.ConvoId, viewer)
	if err != nil {
		return nil, err
	}
	if old := c.group.join.link; old != nil {
		if old.enabled {
			return nil, badRequest("EnabledJoinLinkAlreadyExists", "the group already has an enabled join link")
		}
		delete(s.st.joinCodes, old.code)
	}
	l := &joinLink{
		code:            s.newJoinCode(),
		convoID:         c.id,
		enabled:         true,
		requireApproval: in.RequireApproval != nil && *in.RequireApproval,
		rule:            *in.JoinRule,
		createdAt:       s.now(),
	}
	s.st.joinCodes[l.code] = l
	c.group.join.link = l
	s.systemLocked(c, systemData{kind: sysCreateJoinLink, actor: viewer})
	return &chat.GroupCreateJoinLink_Output{JoinLink: joinLinkView(l)}, nil
}

// ownedLinkLocked returns the group viewer owns and its join link
// (NoJoinLink when it has none). Requires Server.mu.
func (s *Server) ownedLinkLocked(convoID string, viewer syntax.DID) (*convo, *joinLink, error) {
	if err := requireInput("convoId", convoID); err != nil {
		return nil, nil, err
	}
	c, err := s.ownedGroup(convoID, viewer)
	if err != nil {
		return nil, nil, err
	}
	l := c.group.join.link
	if l == nil {
		return nil, nil, badRequest("NoJoinLink", "the group has no join link")
	}
	return c, l, nil
}

func (s *Server) editJoinLink(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.GroupEditJoinLink_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	if err := joinRuleInput(in.JoinRule, false); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, l, err := s.ownedLinkLocked(in.ConvoId, viewer)
	if err != nil {
		return nil, err
	}
	if in.JoinRule != nil {
		l.rule = *in.JoinRule
	}
	if in.RequireApproval != nil {
		l.requireApproval = *in.RequireApproval
	}
	s.systemLocked(c, systemData{kind: sysEditJoinLink, actor: viewer})
	return &chat.GroupEditJoinLink_Output{JoinLink: joinLinkView(l)}, nil
}

func (s *Server) enableJoinLink(_ context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	l, err := s.switchJoinLink(viewer, r, true)
	if err != nil {
		return nil, err
	}
	return &chat.GroupEnableJoinLink_Output{JoinLink: l}, nil
}

func (s *Server) disableJoinLink(_ context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	l, err := s.switchJoinLink(viewer, r, false)
	if err != nil {
		return nil, err
	}
	return &chat.GroupDisableJoinLink_Output{JoinLink: l}, nil
}

// switchJoinLink enables or disables the group's link (input: convoId),
// with its system message. Enabling an enabled link is LinkAlreadyEnabled;
// disabling a disabled one finds no active link to disable (NoJoinLink).
func (s *Server) switchJoinLink(viewer syntax.DID, r *http.Request, enable bool) (*chat.GroupDefs_JoinLinkView, error) {
	var in chat.GroupEnableJoinLink_Input // disableJoinLink's input is the same
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, l, err := s.ownedLinkLocked(in.ConvoId, viewer)
	switch {
	case err != nil:
		return nil, err
	case enable && l.enabled:
		return nil, badRequest("LinkAlreadyEnabled", "the join link is already enabled")
	case !enable && !l.enabled:
		return nil, badRequest("NoJoinLink", "the group has no enabled join link")
	}
	l.enabled = enable
	kind := sysDisableJoinLink
	if enable {
		kind = sysEnableJoinLink
	}
	s.systemLocked(c, systemData{kind: kind, actor: viewer})
	return joinLinkView(l), nil
}

// preview is one of the three join link previews (exactly one is set).
type preview struct {
	valid    *chat.GroupDefs_JoinLinkPreviewView
	disabled *chat.GroupDefs_DisabledJoinLinkPreviewView
	invalid  *chat.GroupDefs_InvalidJoinLinkPreviewView
}

// previewLocked is viewer's preview of code ("" viewer: unauthenticated).
// Members also get the convo; someone with a pending request gets when they
// asked. Requires Server.mu.
func (s *Server) previewLocked(h *hydrator, code string, viewer syntax.DID) preview {
	l, c := s.linkByCode(code)
	switch {
	case c == nil:
		return preview{invalid: &chat.GroupDefs_InvalidJoinLinkPreviewView{Code: code}}
	case !l.enabled:
		return preview{disabled: &chat.GroupDefs_DisabledJoinLinkPreviewView{Code: code}}
	}
	rule := l.rule
	v := &chat.GroupDefs_JoinLinkPreviewView{
		Code:            code,
		ConvoId:         c.id,
		Name:            c.group.name,
		Owner:           h.profile(c.group.owner),
		MemberCount:     int64(len(c.members)),
		MemberLimit:     groupMemberLimit,
		RequireApproval: l.requireApproval,
		JoinRule:        &rule,
	}
	if viewer != "" {
		if c.member[viewer] != nil {
			v.Convo = h.convoView(c, viewer)
		} else if req := c.group.join.pending(viewer); req != nil {
			at := datetime(req.requestedAt)
			v.Viewer = &chat.GroupDefs_JoinLinkViewerState{RequestedAt: &at}
		}
	}
	return preview{valid: v}
}

// getJoinLinkPreviews answers one preview per code, in order. It needs no
// authentication: previews are for feeds, "including to unauthenticated
// viewers".
func (s *Server) getJoinLinkPreviews(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	codes := r.URL.Query()["codes"]
	switch {
	case len(codes) == 0:
		return nil, invalidf("Params must have the property %q", "codes")
	case len(codes) > maxPreviewCodes:
		return nil, invalidf("codes must not have more than %d elements", maxPreviewCodes)
	}
	h := &hydrator{}
	out := &chat.GroupGetJoinLinkPreviews_Output{}
	s.mu.Lock()
	for _, code := range codes {
		p := s.previewLocked(h, code, viewer)
		out.JoinLinkPreviews = append(out.JoinLinkPreviews, &chat.GroupGetJoinLinkPreviews_Output_JoinLinkPreviews_Elem{
			GroupDefs_JoinLinkPreviewView:         p.valid,
			GroupDefs_DisabledJoinLinkPreviewView: p.disabled,
			GroupDefs_InvalidJoinLinkPreviewView:  p.invalid,
		})
	}
	s.mu.Unlock()
	s.hydrate(ctx, h)
	return out, nil
}

// joinEmbed is a message's chat.bsky.embed.joinLink#view waiting for its
// preview, which hydrate fills in from the link as it is now.
type joinEmbed struct {
	view *chat.EmbedJoinLink_View
	code string
}

// joinLinkEmbed returns the view of an embedded join code; hydrate fills it.
func (h *hydrator) joinLinkEmbed(code string) *chat.EmbedJoinLink_View {
	v := &chat.EmbedJoinLink_View{LexiconTypeID: "chat.bsky.embed.joinLink#view"}
	h.joinEmbeds = append(h.joinEmbeds, joinEmbed{view: v, code: code})
	return v
}

// fillJoinEmbeds gives each embedded join code its current preview as the
// caller (viewerFrom ctx) sees it: with the convo when they are a member,
// with requestedAt when they asked to join. Embeds inside those convo views
// (a group whose last message shares its own link) get the anonymous
// preview, so previews do not nest. Call it without Server.mu.
func (s *Server) fillJoinEmbeds(ctx context.Context, h *hydrator) {
	if len(h.joinEmbeds) == 0 {
		return
	}
	viewer := viewerFrom(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(h.joinEmbeds) > 0 {
		batch := h.joinEmbeds
		h.joinEmbeds = nil
		for _, e := range batch {
			p := s.previewLocked(h, e.code, viewer)
			e.view.JoinLinkPreview = &chat.EmbedJoinLink_View_JoinLinkPreview{
				GroupDefs_JoinLinkPreviewView:         p.valid,
				GroupDefs_DisabledJoinLinkPreviewView: p.disabled,
				GroupDefs_InvalidJoinLinkPreviewView:  p.invalid,
			}
		}
		viewer = "" // nested embeds: no convo, so this ends
	}
}

type viewerKey struct{}

// withViewer records the authenticated caller ("" for none) in ctx.
func withViewer(ctx context.Context, viewer syntax.DID) context.Context {
	return context.WithValue(ctx, viewerKey{}, viewer)
}

// viewerFrom is the caller withViewer recorded, or "".
func viewerFrom(ctx context.Context) syntax.DID {
	v, _ := ctx.Value(viewerKey{}).(syntax.DID)
	return v
}

// embeddedJoinLink is a messageInput's chat.bsky.embed.joinLink, or nil.
func embeddedJoinLink(e *chat.ConvoDefs_MessageInput_Embed) *chat.EmbedJoinLink {
	if e == nil {
		return nil
	}
	return e.EmbedJoinLink
}
