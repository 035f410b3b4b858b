// Package notifytest is an in-memory chat service for tests of
// internal/notify and its callers: a notify.Sender whose clients keep
// convos and messages in memory, with follow gates, expired sessions and
// injectable faults. Errors are *apperr.Error with internal/chatproxy's
// Reasons.
package notifytest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/notify"
)

// Method names for faults and call counts.
const (
	MethodChat         = "chat" // Sender.Chat
	MethodAvailability = "getConvoAvailability"
	MethodForMembers   = "getConvoForMembers"
	MethodSend         = "sendMessage"
	MethodGetMessages  = "getMessages"
)

// Gate is who a recipient accepts DMs from.
type Gate int

// Gates, as in Bluesky's chat settings.
const (
	GateEveryone  Gate = iota // the default
	GateFollowing             // only accounts the recipient follows
	GateNobody
)

// Fault makes matching calls fail.
type Fault struct {
	Method string     // one of the Method constants; "" matches all
	Sender syntax.DID // "" matches every sender
	Count  int        // how many calls it affects; <0 forever
	Err    error      // returned (after Hang, if set)
	Hang   bool       // block until the call's context ends, then return its error
	// After applies the call first (e.g. stores the message), then fails:
	// the response is lost although the effect happened.
	After bool
}

// Message is a stored DM.
type Message struct {
	ID      string
	ConvoID string
	Sender  syntax.DID
	Text    string
	Input   *chat.ConvoDefs_MessageInput
	SentAt  time.Time
}

type convo struct {
	id       string
	members  []syntax.DID
	messages []*Message // oldest first
}

// Server is the in-memory chat service. The zero value is not usable; use
// NewServer.
type Server struct {
	mu      sync.Mutex
	now     func() time.Time
	convos  map[string]*convo // by sorted-members key
	byID    map[string]*convo
	seq     int
	gates   map[syntax.DID]Gate
	follows map[[2]syntax.DID]bool // {follower, followee}
	expired map[syntax.DID]error
	faults  []*Fault
	calls   map[string]int // method → count; also "method sender"
	// Latency, if set, is added to every call (honouring the context).
	Latency time.Duration
}

// NewServer returns an empty chat service whose message times come from
// now (nil → time.Now).
func NewServer(now func() time.Time) *Server {
	if now == nil {
		now = time.Now
	}
	return &Server{
		now:     now,
		convos:  map[string]*convo{},
		byID:    map[string]*convo{},
		gates:   map[syntax.DID]Gate{},
		follows: map[[2]syntax.DID]bool{},
		expired: map[syntax.DID]error{},
		calls:   map[string]int{},
	}
}

// Unavailable is a 5xx; it and the errors below are shaped like chatproxy's.
func Unavailable() error {
	return &apperr.Error{Code: apperr.Unavailable, Reason: chatproxy.ReasonUnavailable, Message: "unavailable", Err: fmt.Errorf("HTTP 503")}
}

// RateLimited is a 429 that says when to retry.
func RateLimited(at time.Time) error {
	return &apperr.Error{Code: apperr.RateLimited, Reason: chatproxy.ReasonRateLimited, Message: "slow down", RetryAt: at}
}

// NotFollowed is NotFollowedBySender.
func NotFollowed() error {
	return &apperr.Error{Code: apperr.Forbidden, Reason: chatproxy.ReasonNotFollowedBySender, Message: "not followed"}
}

// Disabled is MessagesDisabled.
func Disabled() error {
	return &apperr.Error{Code: apperr.Forbidden, Reason: chatproxy.ReasonMessagesDisabled, Message: "disabled"}
}

// SessionExpired is an expired or revoked session.
func SessionExpired() error {
	return &apperr.Error{Code: apperr.Unauthorized, Reason: chatproxy.ReasonSessionExpired, Message: "expired"}
}

// ScopeMissing is a session without transition:chat.bsky.
func ScopeMissing() error {
	return &apperr.Error{Code: apperr.Forbidden, Reason: chatproxy.ReasonScopeMissing, Message: "scope"}
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ff := f
	s.faults = append(s.faults, &ff)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// SetGate sets who recipient accepts DMs from.
func (s *Server) SetGate(recipient syntax.DID, g Gate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gates[recipient] = g
}

// Follow records that follower follows followee.
func (s *Server) Follow(follower, followee syntax.DID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.follows[[2]syntax.DID{follower, followee}] = true
}

// ExpireSession makes Sender.Chat fail for did with err (nil →
// SessionExpired()).
func (s *Server) ExpireSession(did syntax.DID, err error) {
	if err == nil {
		err = SessionExpired()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expired[did] = err
}

// RestoreSession undoes ExpireSession.
func (s *Server) RestoreSession(did syntax.DID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.expired, did)
}

// Calls returns how many calls of method were received (faulted ones
// included); with a sender, only that sender's.
func (s *Server) Calls(method string, sender syntax.DID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sender == "" {
		return s.calls[method]
	}
	return s.calls[method+" "+sender.String()]
}

// Messages returns the messages between a and b, oldest first.
func (s *Server) Messages(a, b syntax.DID) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.convos[key([]syntax.DID{a, b})]
	if c == nil {
		return nil
	}
	out := make([]Message, len(c.messages))
	for i, m := range c.messages {
		out[i] = *m
	}
	return out
}

// AllMessages returns every stored message, in no particular order.
func (s *Server) AllMessages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, c := range s.convos {
		for _, m := range c.messages {
			out = append(out, *m)
		}
	}
	return out
}

// Post stores a plain message from one account to another, bypassing
// gates and faults (to fill a convo in tests).
func (s *Server) Post(from, to syntax.DID, text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.convoLocked([]syntax.DID{from, to})
	s.storeLocked(c, from, &chat.ConvoDefs_MessageInput{Text: text})
}

func key(members []syntax.DID) string {
	m := slices.Clone(members)
	slices.Sort(m)
	m = slices.Compact(m)
	parts := make([]string, len(m))
	for i, d := range m {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

func (s *Server) convoLocked(members []syntax.DID) *convo {
	k := key(members)
	c := s.convos[k]
	if c == nil {
		s.seq++
		c = &convo{id: "convo" + strconv.Itoa(s.seq), members: members}
		s.convos[k] = c
		s.byID[c.id] = c
	}
	return c
}

func (s *Server) storeLocked(c *convo, from syntax.DID, in *chat.ConvoDefs_MessageInput) *Message {
	s.seq++
	m := &Message{ID: "msg" + strconv.Itoa(s.seq), ConvoID: c.id, Sender: from, Text: in.Text, Input: in, SentAt: s.now()}
	c.messages = append(c.messages, m)
	return m
}

// allowedLocked reports whether from may message to, and the refusal.
func (s *Server) allowedLocked(from, to syntax.DID) error {
	switch s.gates[to] {
	case GateNobody:
		return Disabled()
	case GateFollowing:
		if !s.follows[[2]syntax.DID{to, from}] {
			return NotFollowed()
		}
	}
	return nil
}

// enter counts a call, sleeps Latency, and returns the matching fault.
func (s *Server) enter(ctx context.Context, method string, sender syntax.DID) (*Fault, error) {
	s.mu.Lock()
	s.calls[method]++
	s.calls[method+" "+sender.String()]++
	var hit *Fault
	for _, f := range s.faults {
		if f.Count == 0 || (f.Method != "" && f.Method != method) || (f.Sender != "" && f.Sender != sender) {
			continue
		}
		if f.Count > 0 {
			f.Count--
		}
		ff := *f
		hit = &ff
		break
	}
	lat := s.Latency
	s.mu.Unlock()
	if lat > 0 {
		t := time.NewTimer(lat)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	if hit != nil && !hit.After {
		return nil, hit.fail(ctx)
	}
	return hit, nil
}

// fail returns the fault's error, after hanging if asked.
func (f *Fault) fail(ctx context.Context) error {
	if f.Hang {
		<-ctx.Done()
		if f.Err != nil {
			return f.Err
		}
		return ctx.Err()
	}
	return f.Err
}

// Sender returns a notify.Sender over this server.
func (s *Server) Sender() notify.Sender { return sender{s} }

type sender struct{ s *Server }

// Chat returns a client acting as did, or the error set by ExpireSession.
func (sd sender) Chat(ctx context.Context, did syntax.DID) (notify.Chat, error) {
	if _, err := sd.s.enter(ctx, MethodChat, did); err != nil {
		return nil, err
	}
	sd.s.mu.Lock()
	err := sd.s.expired[did]
	sd.s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &client{s: sd.s, me: did}, nil
}

type client struct {
	s  *Server
	me syntax.DID
}

func (c *client) others(members []string) ([]syntax.DID, error) {
	if len(members) == 0 {
		return nil, &apperr.Error{Code: apperr.Invalid, Reason: chatproxy.ReasonInvalidRequest, Message: "no members"}
	}
	out := []syntax.DID{c.me}
	for _, m := range members {
		d, err := syntax.ParseDID(m)
		if err != nil {
			return nil, &apperr.Error{Code: apperr.Invalid, Reason: chatproxy.ReasonInvalidRequest, Message: "bad member", Err: err}
		}
		out = append(out, d)
	}
	return out, nil
}

func view(c *convo) *chat.ConvoDefs_ConvoView {
	v := &chat.ConvoDefs_ConvoView{Id: c.id, Rev: strconv.Itoa(len(c.messages))}
	for _, m := range c.members {
		v.Members = append(v.Members, &chat.ActorDefs_ProfileViewBasic{Did: m.String(), Handle: "handle.invalid"})
	}
	return v
}

// GetConvoAvailability answers from the gates and existing convos.
func (c *client) GetConvoAvailability(ctx context.Context, members []string) (*chat.ConvoGetConvoAvailability_Output, error) {
	f, err := c.s.enter(ctx, MethodAvailability, c.me)
	if err != nil {
		return nil, err
	}
	ms, err := c.others(members)
	if err != nil {
		return nil, err
	}
	c.s.mu.Lock()
	out := &chat.ConvoGetConvoAvailability_Output{CanChat: true}
	for _, m := range ms[1:] {
		if c.s.allowedLocked(c.me, m) != nil {
			out.CanChat = false
		}
	}
	if cv := c.s.convos[key(ms)]; cv != nil && out.CanChat {
		out.Convo = view(cv)
	}
	c.s.mu.Unlock()
	if f != nil {
		return nil, f.fail(ctx)
	}
	return out, nil
}

// GetConvoForMembers finds or (gates permitting) creates the convo.
func (c *client) GetConvoForMembers(ctx context.Context, members []string) (*chat.ConvoDefs_ConvoView, error) {
	f, err := c.s.enter(ctx, MethodForMembers, c.me)
	if err != nil {
		return nil, err
	}
	ms, err := c.others(members)
	if err != nil {
		return nil, err
	}
	c.s.mu.Lock()
	cv := c.s.convos[key(ms)]
	if cv == nil {
		for _, m := range ms[1:] {
			if err := c.s.allowedLocked(c.me, m); err != nil {
				c.s.mu.Unlock()
				return nil, err
			}
		}
		cv = c.s.convoLocked(ms)
	}
	out := view(cv)
	c.s.mu.Unlock()
	if f != nil {
		return nil, f.fail(ctx)
	}
	return out, nil
}

// SendMessage stores the message if the convo and the gates allow it.
func (c *client) SendMessage(ctx context.Context, convoID string, msg chatproxy.MessageInput) (*chat.ConvoDefs_MessageView, error) {
	in := &chat.ConvoSendMessage_Input{ConvoId: convoID, Message: &chat.ConvoDefs_MessageInput{Text: msg.Text, Facets: msg.Facets}}
	f, err := c.s.enter(ctx, MethodSend, c.me)
	if err != nil {
		return nil, err
	}
	c.s.mu.Lock()
	cv := c.s.byID[in.ConvoId]
	if cv == nil || !slices.Contains(cv.members, c.me) {
		c.s.mu.Unlock()
		return nil, &apperr.Error{Code: apperr.NotFound, Reason: chatproxy.ReasonConvoNotFound, Message: "no convo"}
	}
	for _, m := range cv.members {
		if m != c.me {
			if err := c.s.allowedLocked(c.me, m); err != nil {
				c.s.mu.Unlock()
				return nil, err
			}
		}
	}
	m := c.s.storeLocked(cv, c.me, in.Message)
	c.s.mu.Unlock()
	if f != nil {
		return nil, f.fail(ctx)
	}
	return &chat.ConvoDefs_MessageView{
		Id: m.ID, Rev: m.ID, Text: m.Text, Facets: in.Message.Facets,
		Sender: &chat.ConvoDefs_MessageViewSender{Did: c.me.String()},
		SentAt: m.SentAt.UTC().Format(time.RFC3339Nano),
	}, nil
}

// GetMessages pages the convo newest first; the cursor is an offset.
func (c *client) GetMessages(ctx context.Context, convoID, cursor string, limit int64) (*chatproxy.MessagePage, error) {
	f, err := c.s.enter(ctx, MethodGetMessages, c.me)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 100 {
		limit = 50
	}
	c.s.mu.Lock()
	cv := c.s.byID[convoID]
	if cv == nil || !slices.Contains(cv.members, c.me) {
		c.s.mu.Unlock()
		return nil, &apperr.Error{Code: apperr.NotFound, Reason: chatproxy.ReasonConvoNotFound, Message: "no convo"}
	}
	// cursor = index (from the newest) to start at
	start := 0
	if cursor != "" {
		start, _ = strconv.Atoi(cursor)
	}
	out := &chatproxy.MessagePage{}
	n := len(cv.messages)
	i := start
	for ; i < n && int64(len(out.Messages)) < limit; i++ {
		m := cv.messages[n-1-i]
		sentAt := m.SentAt.UTC().Format(time.RFC3339Nano)
		out.Messages = append(out.Messages, chatproxy.MessageItem{
			Type: "chat.bsky.convo.defs#messageView", ID: m.ID, Rev: m.ID, SentAt: sentAt,
			Message: &chat.ConvoDefs_MessageView{
				Id: m.ID, Rev: m.ID, Text: m.Text,
				Sender: &chat.ConvoDefs_MessageViewSender{Did: m.Sender.String()},
				SentAt: sentAt,
			},
		})
	}
	if i < n {
		out.Cursor = strconv.Itoa(i)
	}
	c.s.mu.Unlock()
	if f != nil {
		return nil, f.fail(ctx)
	}
	return out, nil
}
