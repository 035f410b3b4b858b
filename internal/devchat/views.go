package devchat

import (
	"context"
	"encoding/json"
	"time"

	appbsky "github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/skydm/skydm/internal/lex/chat"
)

// Views are built fresh for every response (under Server.mu, from state),
// never shared: indigo's union MarshalJSON writes $type into the values it
// encodes. Profiles are filled in afterwards, outside the lock, by hydrate.

// hydrator collects the profile views of one response.
type hydrator struct {
	chat []*chat.ActorDefs_ProfileViewBasic
	bsky []*appbsky.ActorDefs_ProfileViewBasic
	// joinEmbeds are embedded join links; hydrate fills in their previews.
	joinEmbeds []joinEmbed
}

// profile returns a profileViewBasic for did, filled in by hydrate.
func (h *hydrator) profile(did syntax.DID) *chat.ActorDefs_ProfileViewBasic {
	p := &chat.ActorDefs_ProfileViewBasic{Did: did.String(), Handle: syntax.HandleInvalid.String()}
	h.chat = append(h.chat, p)
	return p
}

// related returns one profile per distinct DID, in first-seen order.
func (h *hydrator) related(dids ...syntax.DID) []*chat.ActorDefs_ProfileViewBasic {
	seen := map[syntax.DID]bool{}
	out := []*chat.ActorDefs_ProfileViewBasic{}
	for _, d := range dids {
		if !seen[d] {
			seen[d] = true
			out = append(out, h.profile(d))
		}
	}
	return out
}

// hydrate fills every collected profile with handle, display name and avatar.
func (s *Server) hydrate(ctx context.Context, h *hydrator) {
	s.fillJoinEmbeds(ctx, h)
	infos := map[string]profileInfo{}
	get := func(did string) profileInfo {
		if info, ok := infos[did]; ok {
			return info
		}
		info := s.profile(ctx, syntax.DID(did))
		infos[did] = info
		return info
	}
	for _, p := range h.chat {
		info := get(p.Did)
		p.Handle, p.DisplayName, p.Avatar = info.handle, optional(info.displayName), optional(info.avatar)
	}
	s.fillViewerStates(ctx, viewerFrom(ctx), h.chat)
	for _, p := range h.bsky {
		info := get(p.Did)
		p.Handle, p.DisplayName, p.Avatar = info.handle, optional(info.displayName), optional(info.avatar)
	}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// datetime formats t the way atproto datetimes are written.
func datetime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// convoView is the viewer's chat.bsky.convo.defs#convoView of c. Requires Server.mu.
func (h *hydrator) convoView(c *convo, viewer syntax.DID) *chat.ConvoDefs_ConvoView {
	ms := c.member[viewer]
	status := ms.status
	v := &chat.ConvoDefs_ConvoView{
		LexiconTypeID: "chat.bsky.convo.defs#convoView",
		Id:            c.id,
		Rev:           c.rev,
		Muted:         ms.muted,
		Status:        &status,
		UnreadCount:   int64(c.unread(viewer, ms)),
		Kind:          h.convoKind(c),
	}
	joinKind(v.Kind, c, viewer)
	for _, m := range c.viewMembers(viewer) {
		v.Members = append(v.Members, h.member(c, m))
	}
	if m := c.lastMessage(ms); m != nil {
		mv, dv, sv := h.anyMessage(m, ms.hidden[m.id])
		h.reply(mv, m, ms)
		v.LastMessage = &chat.ConvoDefs_ConvoView_LastMessage{ConvoDefs_MessageView: mv, ConvoDefs_DeletedMessageView: dv, ConvoDefs_SystemMessageView: sv}
	}
	var lastMsg *message
	var last *reaction
	for _, m := range c.visibleMessages(ms) {
		if ms.hidden[m.id] {
			continue
		}
		for i := range m.reactions {
			if last == nil || m.reactions[i].rev > last.rev {
				lastMsg, last = m, &m.reactions[i]
			}
		}
	}
	if last != nil {
		mv, _ := h.message(lastMsg, false)
		h.reply(mv, lastMsg, ms)
		v.LastReaction = &chat.ConvoDefs_ConvoView_LastReaction{
			ConvoDefs_MessageAndReactionView: &chat.ConvoDefs_MessageAndReactionView{Message: mv, Reaction: reactionView(*last)},
		}
	}
	return v
}

// message returns m as a messageView, or as a deletedMessageView when deleted.
func (h *hydrator) message(m *message, deleted bool) (*chat.ConvoDefs_MessageView, *chat.ConvoDefs_DeletedMessageView) {
	if deleted {
		return nil, deletedView(m)
	}
	v := &chat.ConvoDefs_MessageView{
		LexiconTypeID: "chat.bsky.convo.defs#messageView",
		Id:            m.id,
		Rev:           m.rev,
		Text:          m.text,
		Sender:        &chat.ConvoDefs_MessageViewSender{Did: m.sender.String()},
		SentAt:        datetime(m.sentAt),
	}
	if len(m.facets) > 0 {
		_ = json.Unmarshal(m.facets, &v.Facets) // validated when sent
	}
	if m.embed != nil {
		v.Embed = &chat.ConvoDefs_MessageView_Embed{EmbedRecord_View: h.embedView(m.embed)}
	}
	if m.joinCode != "" {
		v.Embed = &chat.ConvoDefs_MessageView_Embed{EmbedJoinLink_View: h.joinLinkEmbed(m.joinCode)}
	}
	for _, r := range m.reactions {
		v.Reactions = append(v.Reactions, reactionView(r))
	}
	return v, nil
}

func deletedView(m *message) *chat.ConvoDefs_DeletedMessageView {
	return &chat.ConvoDefs_DeletedMessageView{
		LexiconTypeID: "chat.bsky.convo.defs#deletedMessageView",
		Id:            m.id,
		Rev:           m.rev,
		Sender:        &chat.ConvoDefs_MessageViewSender{Did: m.sender.String()},
		SentAt:        datetime(m.sentAt),
	}
}

func reactionView(r reaction) *chat.ConvoDefs_ReactionView {
	return &chat.ConvoDefs_ReactionView{
		Value:     r.value,
		Sender:    &chat.ConvoDefs_ReactionViewSender{Did: r.sender.String()},
		CreatedAt: datetime(r.createdAt),
	}
}

// embedView is the app.bsky.embed.record#view of a quoted record: a
// viewRecord when it could be read (and decoded), viewNotFound otherwise.
func (h *hydrator) embedView(e *embedRecord) *appbsky.EmbedRecord_View {
	notFound := &appbsky.EmbedRecord_View{Record: &appbsky.EmbedRecord_View_Record{
		EmbedRecord_ViewNotFound: &appbsky.EmbedRecord_ViewNotFound{Uri: e.uri, NotFound: true},
	}}
	if !e.found {
		return notFound
	}
	var val lexutil.LexiconTypeDecoder
	if err := json.Unmarshal(e.value, &val); err != nil {
		return notFound
	}
	author := &appbsky.ActorDefs_ProfileViewBasic{Did: e.author.String(), Handle: syntax.HandleInvalid.String()}
	h.bsky = append(h.bsky, author)
	return &appbsky.EmbedRecord_View{Record: &appbsky.EmbedRecord_View_Record{
		EmbedRecord_ViewRecord: &appbsky.EmbedRecord_ViewRecord{
			Uri:       e.uri,
			Cid:       e.cid,
			Author:    author,
			Value:     &val,
			IndexedAt: datetime(e.indexedAt),
		},
	}}
}
