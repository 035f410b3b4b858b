package devchat

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

// Moderation: the chat.bsky.moderation methods, called by a moderation
// service (not through a user's PDS) with its own service token. Only the
// DIDs in Config.Moderators may call them; any other issuer gets 401
// UntrustedIss, as @atproto's service-auth verifiers answer an issuer they
// do not trust. A moderator sees every convo and message, whoever deleted
// what for themselves.

// modState is what moderation changes; part of state, guarded by Server.mu.
type modState struct {
	disabled map[syntax.DID]bool // updateActorAccess allowAccess=false
	events   []modEvent          // subscribeModEvents backlog, ascending seq (modevents.go)
	subs     map[*modSub]bool    // open subscriptions (modevents.go)
}

// modRoutes are the chat.bsky.moderation methods, each for moderators only.
func (s *Server) modRoutes() map[string]method {
	q := func(h func(context.Context, syntax.DID, *http.Request) (any, error)) method {
		return method{handle: s.moderatorsOnly(h)}
	}
	return map[string]method{
		"chat.bsky.moderation.getActorMetadata":   q(s.modGetActorMetadata),
		"chat.bsky.moderation.getMessageContext":  q(s.modGetMessageContext),
		"chat.bsky.moderation.getConvo":           q(s.modGetConvo),
		"chat.bsky.moderation.getConvos":          q(s.modGetConvos),
		"chat.bsky.moderation.getConvoMembers":    q(s.modGetConvoMembers),
		"chat.bsky.moderation.updateActorAccess":  {procedure: true, handle: s.moderatorsOnly(s.modUpdateActorAccess)},
		"chat.bsky.moderation.subscribeModEvents": q(s.modSubscribe), // modevents.go
	}
}

// moderatorsOnly refuses callers that are not configured moderators.
func (s *Server) moderatorsOnly(h func(context.Context, syntax.DID, *http.Request) (any, error)) func(context.Context, syntax.DID, *http.Request) (any, error) {
	return func(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
		if !slices.Contains(s.moderators, viewer) {
			return nil, unauthorized("UntrustedIss", "Untrusted issuer: "+viewer.String()+" is not a moderation service of this chat service")
		}
		return h(ctx, viewer, r)
	}
}

// participation are the methods by which an actor actively takes part in
// chat; a disabled actor (updateActorAccess allowAccess=false) is refused
// them. Reading, leaving, muting and deleting their account stay open.
var participation = map[string]bool{
	"chat.bsky.convo.sendMessage":      true,
	"chat.bsky.convo.sendMessageBatch": true,
	"chat.bsky.convo.addReaction":      true,
	"chat.bsky.group.createGroup":      true,
	"chat.bsky.group.addMembers":       true,
	"chat.bsky.group.editGroup":        true,
	"chat.bsky.group.requestJoin":      true,
}

// refuseDisabled is the error for a disabled actor calling a participation
// method, or nil. createGroup declares AccountSuspended; the other methods
// declare no such error, so they get InvalidRequest.
func (s *Server) refuseDisabled(name string, viewer syntax.DID) *xrpcError {
	if !participation[name] || !s.chatDisabled(viewer) {
		return nil
	}
	const msg = "Your chat access has been disabled by a moderator"
	if name == "chat.bsky.group.createGroup" {
		return badRequest("AccountSuspended", msg)
	}
	return invalidf(msg)
}

// chatDisabled reports whether a moderator disabled did's chat (getStatus
// chatDisabled).
func (s *Server) chatDisabled(did syntax.DID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.mod.disabled[did]
}

// modUpdateActorAccess implements chat.bsky.moderation.updateActorAccess.
func (s *Server) modUpdateActorAccess(_ context.Context, _ syntax.DID, r *http.Request) (any, error) {
	var in chat.ModerationUpdateActorAccess_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	actor, err := syntax.ParseDID(in.Actor)
	if err != nil {
		return nil, invalidf("Input/actor must be a valid did")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.mod.disabled == nil {
		s.st.mod.disabled = map[syntax.DID]bool{}
	}
	if in.AllowAccess {
		delete(s.st.mod.disabled, actor)
	} else {
		s.st.mod.disabled[actor] = true
	}
	return struct{}{}, nil
}

// modGetActorMetadata implements chat.bsky.moderation.getActorMetadata:
// over the last 24 hours, 30 days and all time, the user messages the actor
// sent and received, the convos they had a message in (all time: every
// convo they are a member of) and the convos they started (a group's owner
// at its creation; a direct convo's first sender).
func (s *Server) modGetActorMetadata(_ context.Context, _ syntax.DID, r *http.Request) (any, error) {
	raw, err := requiredParam(r.URL.Query(), "actor")
	if err != nil {
		return nil, err
	}
	actor, err := syntax.ParseDID(raw)
	if err != nil {
		return nil, invalidf("actor must be a valid did")
	}
	now := s.now()
	periods := []time.Time{now.Add(-24 * time.Hour), now.AddDate(0, 0, -30), {}}
	out := make([]*chat.ModerationGetActorMetadata_Metadata, len(periods))
	for i := range out {
		out[i] = &chat.ModerationGetActorMetadata_Metadata{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.st.convos {
		if c.member[actor] == nil {
			continue
		}
		starter, started := c.start()
		active := make([]bool, len(periods))
		for _, m := range c.messages {
			if m.system != nil {
				continue
			}
			for i, since := range periods {
				if m.sentAt.Before(since) {
					continue
				}
				if m.sender == actor {
					out[i].MessagesSent++
				} else {
					out[i].MessagesReceived++
				}
				active[i] = true
			}
		}
		for i, since := range periods {
			if active[i] || since.IsZero() {
				out[i].Convos++
			}
			if starter == actor && !started.Before(since) {
				out[i].ConvosStarted++
			}
		}
	}
	return &chat.ModerationGetActorMetadata_Output{Day: out[0], Month: out[1], All: out[2]}, nil
}

// start is who started c and when: a group's owner at its creation, a
// direct convo's first sender at the first message ("" before any).
func (c *convo) start() (syntax.DID, time.Time) {
	if c.group != nil {
		return c.group.owner, c.group.createdAt
	}
	for _, m := range c.messages {
		if m.system == nil {
			return m.sender, m.sentAt
		}
	}
	return "", time.Time{}
}

// modConvoView is c's chat.bsky.moderation.defs#convoView. Requires Server.mu.
func modConvoView(c *convo) *chat.ModerationDefs_ConvoView {
	v := &chat.ModerationDefs_ConvoView{Id: c.id, Rev: c.rev}
	g := c.group
	if g == nil {
		v.Kind = &chat.ModerationDefs_ConvoView_Kind{ModerationDefs_DirectConvo: &chat.ModerationDefs_DirectConvo{}}
		return v
	}
	lock := g.lockStatus()
	pending, _ := g.join.counts()
	k := &chat.ModerationDefs_GroupConvo{
		CreatedAt:        datetime(g.createdAt),
		JoinRequestCount: pending,
		LockStatus:       &lock,
		MemberCount:      int64(len(c.members)),
		MemberLimit:      groupMemberLimit,
		Name:             g.name,
	}
	if g.join.link != nil {
		k.JoinLink = joinLinkView(g.join.link)
	}
	v.Kind = &chat.ModerationDefs_ConvoView_Kind{ModerationDefs_GroupConvo: k}
	return v
}

// modGetConvo implements chat.bsky.moderation.getConvo.
func (s *Server) modGetConvo(_ context.Context, _ syntax.DID, r *http.Request) (any, error) {
	id, err := requiredParam(r.URL.Query(), "convoId")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.st.convos[id]
	if !ok {
		return nil, convoNotFound()
	}
	return &chat.ModerationGetConvo_Output{Convo: modConvoView(c)}, nil
}

// modGetConvos implements chat.bsky.moderation.getConvos: unknown ids are
// left out.
func (s *Server) modGetConvos(_ context.Context, _ syntax.DID, r *http.Request) (any, error) {
	ids := r.URL.Query()["convoIds"]
	if len(ids) == 0 {
		return nil, invalidf("Params must have the property %q", "convoIds")
	}
	if len(ids) > 100 {
		return nil, invalidf("convoIds must not have more than 100 elements")
	}
	out := &chat.ModerationGetConvos_Output{Convos: []*chat.ModerationDefs_ConvoView{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if c, ok := s.st.convos[id]; ok {
			out.Convos = append(out.Convos, modConvoView(c))
		}
	}
	return out, nil
}

// modGetConvoMembers implements chat.bsky.moderation.getConvoMembers:
// the same pages as chat.bsky.convo.getConvoMembers (membersPage), for a
// convo the moderator is not in.
func (s *Server) modGetConvoMembers(ctx context.Context, _ syntax.DID, r *http.Request) (any, error) {
	members, cursor, err := s.membersOf(ctx, r, func(id string) (*convo, error) {
		if c, ok := s.st.convos[id]; ok {
			return c, nil
		}
		return nil, convoNotFound()
	})
	if err != nil {
		return nil, err
	}
	return &chat.ModerationGetConvoMembers_Output{Members: members, Cursor: cursor}, nil
}

// modGetMessageContext implements chat.bsky.moderation.getMessageContext:
// the target message with up to `before` user messages before it and
// `after` after it, in ascending order, and the system messages between
// them (at most maxInterleavedSystemMessages per gap, those closest to the
// earlier message kept; on a side without user messages, that many system
// messages next to the target).
func (s *Server) modGetMessageContext(ctx context.Context, _ syntax.DID, r *http.Request) (any, error) {
	q := r.URL.Query()
	msgID, err := requiredParam(q, "messageId")
	if err != nil {
		return nil, err
	}
	before, err := intParam(q, "before", 5, 0, 1<<20)
	if err != nil {
		return nil, err
	}
	after, err := intParam(q, "after", 5, 0, 1<<20)
	if err != nil {
		return nil, err
	}
	maxSys, err := intParam(q, "maxInterleavedSystemMessages", 10, 0, 1000)
	if err != nil {
		return nil, err
	}
	h := &hydrator{}
	s.mu.Lock()
	c := s.st.convos[q.Get("convoId")]
	if q.Get("convoId") == "" {
		for _, cc := range s.st.convos {
			if cc.byID[msgID] != nil {
				c = cc
			}
		}
	}
	if c == nil || c.byID[msgID] == nil {
		s.mu.Unlock()
		return nil, invalidf("Message not found")
	}
	target := slices.IndexFunc(c.messages, func(m *message) bool { return m.id == msgID })
	out := &chat.ModerationGetMessageContext_Output{Messages: []*chat.ModerationGetMessageContext_Output_Messages_Elem{}}
	for _, m := range contextWindow(c.messages, target, before, after, maxSys) {
		mv, _, sv := h.anyMessage(m, false)
		h.reply(mv, m, nil)
		out.Messages = append(out.Messages, &chat.ModerationGetMessageContext_Output_Messages_Elem{ConvoDefs_MessageView: mv, ConvoDefs_SystemMessageView: sv})
	}
	s.mu.Unlock()
	s.hydrate(ctx, h)
	return out, nil
}

// contextWindow picks getMessageContext's messages around msgs[target].
func contextWindow(msgs []*message, target, before, after, maxSys int) []*message {
	user := func(i int) bool { return msgs[i].system == nil }
	// lo and hi: the outermost user messages taken on each side (or the target).
	lo, n := target, 0
	for i := target - 1; i >= 0 && n < before; i-- {
		if user(i) {
			lo, n = i, n+1
		}
	}
	hi, n := target, 0
	for i := target + 1; i < len(msgs) && n < after; i++ {
		if user(i) {
			hi, n = i, n+1
		}
	}
	var out []*message
	// gap appends the system messages strictly between a and b, the first maxSys.
	gap := func(a, b int) {
		k := 0
		for i := a + 1; i < b && k < maxSys; i++ {
			if !user(i) {
				out = append(out, msgs[i])
				k++
			}
		}
	}
	if lo == target { // no user message before: the system messages just before the target
		start := target
		for start > 0 && !user(start-1) && target-start < maxSys {
			start--
		}
		out = append(out, msgs[start:target]...)
	}
	for i := lo; i <= hi; i++ {
		if !user(i) && i != target {
			continue
		}
		out = append(out, msgs[i])
		if next := nextTaken(msgs, i, hi, target); next > 0 {
			gap(i, next)
		}
	}
	if hi == target {
		for i := target + 1; i < len(msgs) && !user(i) && i-target <= maxSys; i++ {
			out = append(out, msgs[i])
		}
	}
	return out
}

// nextTaken is the index of the next user message (or the target) after i,
// up to hi, or -1.
func nextTaken(msgs []*message, i, hi, target int) int {
	for j := i + 1; j <= hi; j++ {
		if msgs[j].system == nil || j == target {
			return j
		}
	}
	return -1
}

// intParam parses an optional integer parameter in [lo, hi], def when absent.
func intParam(q map[string][]string, name string, def, lo, hi int) (int, error) {
	vs := q[name]
	if len(vs) == 0 || vs[0] == "" {
		return def, nil
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil || n < lo || n > hi {
		return 0, invalidf("%s must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}
