package devchat

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Convo statuses for one member, as chat.bsky.convo.defs#convoStatus has them.
const (
	statusRequest  = "request"
	statusAccepted = "accepted"
)

// state is everything the service knows; guarded by Server.mu.
type state struct {
	lastMicros int64                     // last rev/id handed out, in TID microseconds
	convos     map[string]*convo         // by convo id
	direct     map[[2]syntax.DID]string  // sorted member pair → convo id
	logs       map[syntax.DID][]logEntry // per-user event log, ascending rev
	prefs      map[syntax.DID]*chatPrefs // notification preferences set (notification.go)
	reports    []Report                  // com.atproto.moderation.createReport (reports.go)
	joinCodes  map[string]*joinLink      // every group's current join link, by code (joinlinks.go)
	mod        modState                  // disabled actors, mod events (moderation.go, modevents.go)
}

func newState() *state {
	return &state{
		convos: map[string]*convo{},
		direct: map[[2]syntax.DID]string{},
		logs:   map[syntax.DID][]logEntry{},
	}
}

// nextTID returns a new TID string, strictly greater than every one before it
// (revs are lexicographically sortable). Requires Server.mu.
func (s *Server) nextTID() string {
	m := s.now().UnixMicro()
	if m <= s.st.lastMicros {
		m = s.st.lastMicros + 1
	}
	s.st.lastMicros = m
	return syntax.NewTID(m, 0).String()
}

// latestRev is the newest rev handed out so far ("2222222222222" before any).
// Requires Server.mu.
func (s *Server) latestRev() string {
	if s.st.lastMicros == 0 {
		return syntax.NewTIDFromInteger(0).String()
	}
	return syntax.NewTID(s.st.lastMicros, 0).String()
}

func pairKey(a, b syntax.DID) [2]syntax.DID {
	if b < a {
		a, b = b, a
	}
	return [2]syntax.DID{a, b}
}

// convo is a direct (1:1) or group conversation.
//
// A direct convo has exactly two members, forever; leaving only hides it.
// A group (group != nil) has an owner and standard members: members holds
// the current members in joining order and member their state; a member who
// leaves or is removed is deleted from both (the lexicon: "this deletes
// convo memberships") and remembered in group.past, so system messages and
// profiles can still name them (pastGroupConvoMember). Change a group's
// membership only with addMemberLocked / removeMemberLocked (groups.go),
// then announce it with systemLocked (system.go): e.g. a join by link is
// addMemberLocked(c, did, "", roleStandard, statusAccepted) followed by
// systemLocked(c, systemData{kind: sysMemberJoin, member: did, role:
// roleStandard, actor: approver}).
type convo struct {
	id       string
	rev      string // rev of the latest convo-wide change (creation, message, reaction)
	members  []syntax.DID
	member   map[syntax.DID]*memberState
	messages []*message // ascending rev; user and system messages
	byID     map[string]*message
	group    *group // nil for a direct convo
}

// Convo kinds (chat.bsky.convo.defs#convoKind).
const (
	kindDirect = "direct"
	kindGroup  = "group"
)

// kind is the convo's chat.bsky.convo.defs#convoKind.
func (c *convo) kind() string {
	if c.group != nil {
		return kindGroup
	}
	return kindDirect
}

// Member roles (chat.bsky.actor.defs#memberRole).
const (
	roleOwner    = "owner"
	roleStandard = "standard"
)

// Lock statuses (chat.bsky.convo.defs#convoLockStatus).
const (
	lockUnlocked    = "unlocked"
	lockLocked      = "locked"
	lockPermanently = "locked-permanently"
)

// groupMemberLimit is the most members a group may have, the owner
// included (chat.bsky.actor.getStatus groupMemberLimit; Bluesky's is 100).
const groupMemberLimit = 100

// group is what only a group convo has.
type group struct {
	name      string
	owner     syntax.DID
	createdAt time.Time
	// lock is lockUnlocked, lockLocked (by the owner: lockConvo) or
	// lockPermanently. A locked group takes no new content: messages,
	// reactions, renames, new members.
	lock string
	// modLock is lockStatusModerationOverride: a moderation action (account
	// inactivation, convo takedown) holds the group locked whatever lock
	// says; the owner cannot unlock it. Set by SetModerationLock.
	modLock bool
	// past remembers members who left or were removed, by DID.
	past map[syntax.DID]*pastMember
	// join is the join link and pending join requests (joinlinks.go).
	join groupJoin
}

// locked reports whether the group takes no new content.
func (g *group) locked() bool { return g.modLock || g.lock != lockUnlocked }

// lockStatus is the convoLockStatus a view shows (a moderation lock shows
// as locked).
func (g *group) lockStatus() string {
	if g.modLock && g.lock == lockUnlocked {
		return lockLocked
	}
	return g.lock
}

// pastMember is a former group member.
type pastMember struct {
	rev       string     // rev of their leaving or removal
	removedBy syntax.DID // who removed them; "" when they left
}

// memberState is one member's view of a convo.
//
// In a group every member is visible from the moment they are added (as a
// request until they accept), and leftRev is the rev at which they joined:
// messages sent before they joined are not part of their history, so
// !ms.sees(m) means "m is from before they joined" (see
// messageBeforeUserJoinedGroupView).
type memberState struct {
	visible bool   // the convo has begun for this member (it shows in their lists)
	left    bool   // they left a direct convo; hidden until a new message or getConvoForMembers brings them back
	leftRev string // messages at or before this rev are hidden (direct: after leaving; group: from before joining)
	status  string // statusRequest or statusAccepted
	muted   bool
	readRev string          // messages from others after this rev are unread
	hidden  map[string]bool // message ids deleted for this member only

	// Group members only.
	role      string     // roleOwner or roleStandard
	addedBy   syntax.DID // who added them; "" for the owner and for members who joined by link
	joinedRev string     // rev of their joining: the getConvoMembers cursor (equals leftRev)
}

// active reports whether the member currently has the convo.
func (m *memberState) active() bool { return m.visible && !m.left }

// sees reports whether msg is part of this member's history (deleted-for-self
// messages are, as deletedMessageView).
func (m *memberState) sees(msg *message) bool { return msg.rev > m.leftRev }

// message is one chat message. Fields other than reactions never change;
// log entries keep copies made by snapshot. A system message (system !=
// nil: a member added, a rename...) has no sender, text or reactions.
type message struct {
	id        string
	rev       string
	system    *systemData // non-nil for a chat.bsky.convo.defs#systemMessageView
	sender    syntax.DID
	text      string
	facets    json.RawMessage // []app.bsky.richtext.facet, stored encoded so each view decodes its own copy
	embed     *embedRecord
	joinCode  string // the code of an embedded chat.bsky.embed.joinLink
	sentAt    time.Time
	replyTo   *message   // the message this one replies to (replies.go), or nil
	reactions []reaction // ascending creation
}

// reaction is one emoji reaction on a message.
type reaction struct {
	value     string
	sender    syntax.DID
	createdAt time.Time
	rev       string
}

// embedRecord is a message's app.bsky.embed.record, resolved when sent.
type embedRecord struct {
	uri       string
	cid       string
	found     bool
	author    syntax.DID
	value     json.RawMessage
	indexedAt time.Time
}

func snapshot(m *message) *message {
	c := *m
	c.reactions = slices.Clone(m.reactions)
	return &c
}

// visibleMessages are the messages in member's history, ascending.
func (c *convo) visibleMessages(ms *memberState) []*message {
	i, _ := slices.BinarySearchFunc(c.messages, ms.leftRev, func(m *message, rev string) int {
		switch {
		case m.rev <= rev:
			return -1
		default:
			return 1
		}
	})
	return c.messages[i:]
}

// lastMessage is the newest message in member's history, or nil.
func (c *convo) lastMessage(ms *memberState) *message {
	v := c.visibleMessages(ms)
	if len(v) == 0 {
		return nil
	}
	return v[len(v)-1]
}

// unread counts messages from others the member has not read (system
// messages are not counted).
func (c *convo) unread(did syntax.DID, ms *memberState) int {
	n := 0
	for _, m := range c.visibleMessages(ms) {
		if m.system == nil && m.sender != did && m.rev > ms.readRev && !ms.hidden[m.id] {
			n++
		}
	}
	return n
}

// others are the members other than did.
func (c *convo) others(did syntax.DID) []syntax.DID {
	var out []syntax.DID
	for _, m := range c.members {
		if m != did {
			out = append(out, m)
		}
	}
	return out
}

// lookup returns the convo and the viewer's state if viewer is an active
// member (or, with includeInactive, any member who has not left).
func (s *Server) lookup(id string, viewer syntax.DID, includeInactive bool) (*convo, *memberState, error) {
	c, ok := s.st.convos[id]
	if !ok {
		return nil, nil, convoNotFound()
	}
	ms, ok := c.member[viewer]
	if !ok || ms.left || (!ms.visible && !includeInactive) {
		return nil, nil, convoNotFound()
	}
	return c, ms, nil
}

// convoNotFound is what the service answers for an unknown convo or one the
// caller is not (or no longer) a member of.
func convoNotFound() *xrpcError { return badRequest("InvalidConvo", "Convo not found") }

// messageFor finds a message in member's history.
func (c *convo) messageFor(ms *memberState, id string) (*message, error) {
	m, ok := c.byID[id]
	if !ok || !ms.sees(m) {
		return nil, invalidf("Message not found")
	}
	return m, nil
}
