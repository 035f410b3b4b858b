package devchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/rivo/uniseg"
	"github.com/skydm/skydm/internal/lex/chat"
)

// Message handlers: reading, sending, deleting for self, reactions.

func (s *Server) getMessages(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	q := r.URL.Query()
	id, err := requiredParam(q, "convoId")
	if err != nil {
		return nil, err
	}
	limit, cursor, err := pageParams(q)
	if err != nil {
		return nil, err
	}
	h := &hydrator{}
	out := &chat.ConvoGetMessages_Output{Messages: []*chat.ConvoGetMessages_Output_Messages_Elem{}}
	s.mu.Lock()
	c, ms, err := s.lookup(id, viewer, true)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	msgs := c.visibleMessages(ms)
	end := len(msgs)
	if cursor != "" {
		end = sort.Search(len(msgs), func(i int) bool { return msgs[i].rev >= cursor })
	}
	start := max(0, end-limit)
	var people []syntax.DID
	for i := end - 1; i >= start; i-- { // newest first
		m := msgs[i]
		mv, dv, sv := h.anyMessage(m, ms.hidden[m.id])
		h.reply(mv, m, ms)
		out.Messages = append(out.Messages, &chat.ConvoGetMessages_Output_Messages_Elem{ConvoDefs_MessageView: mv, ConvoDefs_DeletedMessageView: dv, ConvoDefs_SystemMessageView: sv})
		if sv != nil {
			people = append(people, m.system.referred()...)
			continue
		}
		people = append(people, m.sender)
		if mv != nil {
			for _, rx := range m.reactions {
				people = append(people, rx.sender)
			}
		}
	}
	if start > 0 {
		next := msgs[start].rev
		out.Cursor = &next
	}
	if len(people) > 0 {
		out.RelatedProfiles = h.relatedIn(c, people...)
	}
	s.mu.Unlock()
	s.hydrate(ctx, h)
	return out, nil
}

// draft is a validated message ready to be stored.
type draft struct {
	convoID  string
	text     string
	facets   json.RawMessage
	embed    *embedRecord
	replyTo  string   // id of the message replied to, "" for none
	parent   *message // that message, found by send (replies.go)
	joinCode string   // an embedded chat.bsky.embed.joinLink's code
}

// prepare validates a messageInput (path is its lexicon path, for error
// messages) and resolves its record embed.
func (s *Server) prepare(ctx context.Context, path, convoID string, in *chat.ConvoDefs_MessageInput) (*draft, error) {
	if in == nil {
		return nil, invalidf("%s must be an object", path)
	}
	d := &draft{convoID: convoID, text: in.Text}
	if in.ReplyTo != nil {
		if in.ReplyTo.MessageId == "" {
			return nil, invalidf("%s/replyTo must have the property %q", path, "messageId")
		}
		d.replyTo = in.ReplyTo.MessageId
	}
	var ref struct {
		did        syntax.DID
		collection syntax.NSID
		rkey       syntax.RecordKey
		uri, cid   string
	}
	if jl := embeddedJoinLink(in.Embed); jl != nil {
		if strings.TrimSpace(jl.Code) == "" {
			return nil, invalidf("%s/embed/code must not be empty", path)
		}
		d.joinCode = jl.Code
	} else if in.Embed != nil {
		er := in.Embed.EmbedRecord
		if er == nil {
			return nil, invalidf("%s/embed must be an app.bsky.embed.record or a chat.bsky.embed.joinLink", path)
		}
		if er.Record == nil || er.Record.Uri == "" || er.Record.Cid == "" {
			return nil, invalidf("%s/embed/record must be a strong reference (uri and cid)", path)
		}
		uri, err := syntax.ParseATURI(er.Record.Uri)
		if err != nil || uri.Collection() == "" || uri.RecordKey() == "" {
			return nil, invalidf("%s/embed/record/uri must be an at-uri of a record", path)
		}
		if _, err := syntax.ParseCID(er.Record.Cid); err != nil {
			return nil, invalidf("%s/embed/record/cid must be a cid string", path)
		}
		ref.uri, ref.cid, ref.collection, ref.rkey = er.Record.Uri, er.Record.Cid, uri.Collection(), uri.RecordKey()
		if did, err := uri.Authority().AsDID(); err == nil {
			ref.did = did
		} else if h, err := uri.Authority().AsHandle(); err == nil {
			if ident, err := s.dir.LookupHandle(ctx, h); err == nil {
				ref.did = ident.DID
			}
		}
	}
	if err := checkText(path, in.Text, in.Embed != nil); err != nil {
		return nil, err
	}
	if len(in.Facets) > 0 {
		b, err := json.Marshal(in.Facets)
		if err != nil {
			return nil, invalidf("%s/facets are not valid app.bsky.richtext.facet objects", path)
		}
		d.facets = b
	}
	if ref.uri != "" {
		d.embed = &embedRecord{uri: ref.uri, cid: ref.cid, indexedAt: s.now()}
		if ref.did != "" {
			rec, err := s.records.GetRecord(ctx, ref.did, ref.collection, ref.rkey)
			switch {
			case err == nil:
				d.embed.found, d.embed.author, d.embed.value = true, ref.did, rec.Value
				if rec.CID != "" {
					d.embed.cid = rec.CID
				}
			case !errors.Is(err, ErrRecordNotFound):
				s.log.Warn("reading embedded record", "uri", ref.uri, "err", err)
			}
		}
	}
	return d, nil
}

func (s *Server) sendMessage(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.ConvoSendMessage_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	if err := requireInput("convoId", in.ConvoId); err != nil {
		return nil, err
	}
	if in.Message == nil {
		return nil, invalidf("Input must have the property %q", "message")
	}
	d, err := s.prepare(ctx, "Input/message", in.ConvoId, in.Message)
	if err != nil {
		return nil, err
	}
	views, err := s.send(ctx, viewer, []*draft{d})
	if err != nil {
		return nil, err
	}
	return views[0], nil
}

func (s *Server) sendMessageBatch(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.ConvoSendMessageBatch_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	if in.Items == nil {
		return nil, invalidf("Input must have the property %q", "items")
	}
	if len(in.Items) > maxBatchItems {
		return nil, invalidf("Input/items must not have more than %d elements", maxBatchItems)
	}
	drafts := make([]*draft, 0, len(in.Items))
	for i, it := range in.Items {
		if it == nil || it.ConvoId == "" {
			return nil, invalidf("Input/items/%d must have the property %q", i, "convoId")
		}
		if it.Message == nil {
			return nil, invalidf("Input/items/%d must have the property %q", i, "message")
		}
		d, err := s.prepare(ctx, fmt.Sprintf("Input/items/%d/message", i), it.ConvoId, it.Message)
		if err != nil {
			return nil, err
		}
		drafts = append(drafts, d)
	}
	views, err := s.send(ctx, viewer, drafts)
	if err != nil {
		return nil, err
	}
	return &chat.ConvoSendMessageBatch_Output{Items: views}, nil
}

// send stores drafts as viewer's messages, all or none. A block either way
// between the members of a direct convo refuses the send the way Bluesky's
// service does: InvalidRequest "block between recipient and sender" (the
// lexicons declare no block error for sendMessage). Members who have not
// accepted the convo (they never answered, or left) are asked again through
// the follow gate, as the real service refuses to keep writing to a request
// once the recipient's settings no longer allow it.
func (s *Server) send(ctx context.Context, viewer syntax.DID, drafts []*draft) ([]*chat.ConvoDefs_MessageView, error) {
	s.mu.Lock()
	var gated, partners []syntax.DID
	for _, d := range drafts {
		c, _, err := s.lookup(d.convoID, viewer, true)
		if err == nil {
			err = c.writable()
		}
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		if o := directOther(c, viewer); o != "" && !slices.Contains(partners, o) {
			partners = append(partners, o)
		}
		if c.group != nil {
			continue // no follow gate in a group: members were checked when added
		}
		for _, o := range c.others(viewer) {
			if s.needsGate(viewer, o) && !slices.Contains(gated, o) {
				gated = append(gated, o)
			}
		}
	}
	s.mu.Unlock()
	for _, o := range partners {
		if blocked, e := s.blockedPair(ctx, viewer, o); e != nil {
			return nil, e
		} else if blocked {
			return nil, invalidf(blockMessage)
		}
	}
	for _, o := range gated {
		if e := s.checkGate(ctx, viewer, o); e != nil {
			return nil, asSendRefusal(e)
		}
	}

	h := &hydrator{}
	s.mu.Lock()
	convos := make([]*convo, len(drafts))
	for i, d := range drafts {
		c, _, err := s.lookup(d.convoID, viewer, true)
		if err == nil {
			err = c.writable()
		}
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		if err := d.findParent(c, c.member[viewer]); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		convos[i] = c
	}
	views := make([]*chat.ConvoDefs_MessageView, len(drafts))
	for i, d := range drafts {
		m := s.sendLocked(convos[i], viewer, d)
		views[i], _ = h.message(m, false)
		h.reply(views[i], m, convos[i].member[viewer])
	}
	s.mu.Unlock()
	s.hydrate(ctx, h)
	return views, nil
}

// sendLocked appends one message. Sending accepts the convo for the sender;
// members who do not have the convo (yet, or any more) get it back as a
// request. Requires Server.mu.
func (s *Server) sendLocked(c *convo, sender syntax.DID, d *draft) *message {
	ms := c.member[sender]
	if !ms.visible {
		ms.visible = true
		s.appendLog(sender, logEntry{rev: s.nextTID(), kind: logBeginConvo, convoID: c.id})
	}
	if ms.status != statusAccepted {
		ms.status = statusAccepted
		s.appendLog(sender, logEntry{rev: s.nextTID(), kind: logAcceptConvo, convoID: c.id})
		s.modAcceptedLocked(c, sender, "message") // modevents.go
	}
	for _, o := range c.others(sender) {
		om := c.member[o]
		if !om.active() {
			om.visible, om.left, om.status = true, false, statusRequest
			s.appendLog(o, logEntry{rev: s.nextTID(), kind: logBeginConvo, convoID: c.id})
		}
	}
	m := &message{
		id:      s.nextTID(),
		sender:  sender,
		text:    d.text,
		facets:  d.facets,
		embed:   d.embed,
		sentAt:  s.now(),
		replyTo: d.parent,
	}
	m.joinCode = d.joinCode
	m.rev = s.nextTID()
	c.messages = append(c.messages, m)
	c.byID[m.id] = m
	c.rev = m.rev
	ms.readRev = m.rev
	s.modFirstMessageLocked(c, m) // modevents.go
	for _, did := range c.members {
		if c.member[did].active() {
			s.appendLog(did, logEntry{rev: m.rev, kind: logCreateMessage, convoID: c.id, msg: snapshot(m)})
		}
	}
	return m
}

// deleteMessageForSelf implements chat.bsky.convo.deleteMessageForSelf: the
// caller sees the message as a deletedMessageView from now on.
func (s *Server) deleteMessageForSelf(_ context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.ConvoDeleteMessageForSelf_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	if err := requireInput("convoId", in.ConvoId); err != nil {
		return nil, err
	}
	if err := requireInput("messageId", in.MessageId); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ms, err := s.lookup(in.ConvoId, viewer, true)
	if err != nil {
		return nil, err
	}
	m, err := c.messageFor(ms, in.MessageId)
	if err != nil {
		return nil, err
	}
	if m.system != nil {
		return nil, invalidf("system messages cannot be deleted")
	}
	if !ms.hidden[m.id] {
		ms.hidden[m.id] = true
		s.appendLog(viewer, logEntry{rev: s.nextTID(), kind: logDeleteMessage, convoID: c.id, msg: snapshot(m), deleted: true})
	}
	return deletedView(m), nil
}

func (s *Server) addReaction(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	m, err := s.react(ctx, viewer, r, true)
	if err != nil {
		return nil, err
	}
	return &chat.ConvoAddReaction_Output{Message: m}, nil
}

func (s *Server) removeReaction(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	m, err := s.react(ctx, viewer, r, false)
	if err != nil {
		return nil, err
	}
	return &chat.ConvoRemoveReaction_Output{Message: m}, nil
}

// react adds or removes viewer's reaction; both are idempotent. Every member
// who can see the message gets a logAddReaction/logRemoveReaction.
func (s *Server) react(ctx context.Context, viewer syntax.DID, r *http.Request, add bool) (*chat.ConvoDefs_MessageView, error) {
	var in chat.ConvoAddReaction_Input // removeReaction's input has the same shape
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	for _, p := range []struct{ name, v string }{{"convoId", in.ConvoId}, {"messageId", in.MessageId}, {"value", in.Value}} {
		if err := requireInput(p.name, p.v); err != nil {
			return nil, err
		}
	}
	if err := checkReaction(in.Value); err != nil {
		return nil, err
	}

	h := &hydrator{}
	s.mu.Lock()
	c, ms, err := s.lookup(in.ConvoId, viewer, true)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	m, err := c.messageFor(ms, in.MessageId)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	if e := reactionRefusal(c, m, add); e != nil {
		s.mu.Unlock()
		return nil, e
	}
	if ms.hidden[m.id] {
		s.mu.Unlock()
		return nil, badRequest("ReactionMessageDeleted", "the message has been deleted; reactions can no longer be added or removed")
	}
	i := slices.IndexFunc(m.reactions, func(x reaction) bool { return x.sender == viewer && x.value == in.Value })
	var changed *reaction
	switch {
	case add && i < 0:
		mine := 0
		for _, x := range m.reactions {
			if x.sender == viewer {
				mine++
			}
		}
		if mine >= maxReactionsPerMsg {
			s.mu.Unlock()
			return nil, badRequest("ReactionLimitReached", fmt.Sprintf("a user can add at most %d reactions to a message", maxReactionsPerMsg))
		}
		m.reactions = append(m.reactions, reaction{value: in.Value, sender: viewer, createdAt: s.now(), rev: s.nextTID()})
		changed = &m.reactions[len(m.reactions)-1]
	case !add && i >= 0:
		x := m.reactions[i]
		m.reactions = slices.Delete(m.reactions, i, i+1)
		x.rev = s.nextTID()
		changed = &x
	}
	if changed != nil {
		kind := logRemoveReaction
		if add {
			kind = logAddReaction
		}
		c.rev = changed.rev
		for _, did := range c.members {
			if mm := c.member[did]; mm.active() && mm.sees(m) {
				rx := *changed
				s.appendLog(did, logEntry{rev: changed.rev, kind: kind, convoID: c.id, msg: snapshot(m), deleted: mm.hidden[m.id], reaction: &rx})
			}
		}
	}
	v, _ := h.message(m, false)
	h.reply(v, m, ms)
	s.mu.Unlock()
	s.hydrate(ctx, h)
	return v, nil
}

// checkReaction enforces the lexicon's limits on a reaction value (one
// grapheme, at most 64 bytes) and that it is an emoji.
func checkReaction(v string) error {
	switch {
	case len(v) > maxReactionBytes:
		return invalidf("Input/value must not be longer than %d characters", maxReactionBytes)
	case uniseg.GraphemeClusterCount(v) != 1:
		return invalidf("Input/value must be exactly 1 grapheme")
	case !isEmoji(v):
		return badRequest("ReactionInvalidValue", "reaction value must be an emoji")
	}
	return nil
}

// isEmoji reports whether a single grapheme is an emoji: a pictographic
// symbol (Unicode category So, which includes flags' regional indicators) or
// a keycap sequence such as 1️⃣.
func isEmoji(g string) bool {
	first, _ := utf8.DecodeRuneInString(g)
	if unicode.Is(unicode.So, first) {
		return true
	}
	last, _ := utf8.DecodeLastRuneInString(g)
	return last == '\u20e3' && (first == '#' || first == '*' || ('0' <= first && first <= '9'))
}

// asSendRefusal is a gate refusal as sendMessage(Batch) answer it: their
// lexicons declare none of the gate's error names, so Bluesky's service
// answers InvalidRequest with the same message ("recipient requires
// incoming messages to come from someone they follow").
func asSendRefusal(e *xrpcError) *xrpcError {
	if e.Status != http.StatusBadRequest {
		return e
	}
	return badRequest("InvalidRequest", e.Message)
}
