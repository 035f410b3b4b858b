package devchat

import (
	"context"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

// Locking: chat.bsky.convo.lockConvo / unlockConvo, the moderation lock,
// and leaving a group.

// lockStatus is the convo's chat.bsky.convo.defs#convoLockStatus (a direct
// convo is never locked).
func (c *convo) lockStatus() string {
	if c.group == nil {
		return lockUnlocked
	}
	return c.group.lockStatus()
}

// writable is ConvoLocked for a locked group: it takes no new messages,
// renames or members. Requires Server.mu.
func (c *convo) writable() error {
	if c.group != nil && c.group.locked() {
		return badRequest("ConvoLocked", "this group is locked: it takes no new content")
	}
	return nil
}

// SetModerationLock sets or lifts a moderation lock on a group (what an
// account inactivation or a convo takedown does on Bluesky): while set, the
// group is locked with lockStatusModerationOverride and its owner cannot
// unlock it. It reports whether convoID is a group. For tests.
func (s *Server) SetModerationLock(convoID string, locked bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.st.convos[convoID]
	if !ok || c.group == nil {
		return false
	}
	if c.group.modLock != locked {
		c.group.modLock = locked
		c.rev = s.nextTID()
	}
	return true
}

// lockConvo implements chat.bsky.convo.lockConvo: the owner locks the
// group; ConvoLocked when they already did.
func (s *Server) lockConvo(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.ConvoLockConvo_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	v, err := s.changeGroup(ctx, viewer, in.ConvoId, func(c *convo, _ *hydrator) error {
		if c.group.lock != lockUnlocked {
			return badRequest("ConvoLocked", "this group is already locked")
		}
		c.group.lock = lockLocked
		s.systemLocked(c, systemData{kind: sysLockConvo, actor: viewer})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &chat.ConvoLockConvo_Output{Convo: v}, nil
}

// unlockConvo implements chat.bsky.convo.unlockConvo: the owner unlocks
// the group, unless a moderation lock holds it (ConvoLockedByModeration).
// Unlocking an unlocked group changes nothing.
func (s *Server) unlockConvo(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.ConvoUnlockConvo_Input
	if err := decodeInput(r, &in); err != nil {
		return nil, err
	}
	v, err := s.changeGroup(ctx, viewer, in.ConvoId, func(c *convo, _ *hydrator) error {
		if c.group.modLock {
			return badRequest("ConvoLockedByModeration", "this group is locked by moderation and cannot be unlocked")
		}
		if c.group.lock == lockLocked {
			c.group.lock = lockUnlocked
			s.systemLocked(c, systemData{kind: sysUnlockConvo, actor: viewer})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &chat.ConvoUnlockConvo_Output{Convo: v}, nil
}

// leaveGroupLocked is leaveConvo for a group: the membership is deleted
// (the leaver gets a logLeaveConvo), the others see a
// systemMessageDataMemberLeave. The owner may leave only a locked group
// (OwnerCannotLeave otherwise, as the lexicon says); with its owner gone
// nobody can unlock it, so it becomes locked-permanently, announced by a
// systemMessageDataLockConvoPermanently. Requires Server.mu.
func (s *Server) leaveGroupLocked(c *convo, viewer syntax.DID) (string, error) {
	g := c.group
	owner := viewer == g.owner
	if owner && !g.locked() {
		return "", badRequest("OwnerCannotLeave", "the owner of a group cannot leave it before locking it")
	}
	rev := s.removeMemberLocked(c, viewer, "")
	if owner {
		g.lock = lockPermanently
		s.systemLocked(c, systemData{kind: sysLockConvoPermanently, actor: viewer})
	}
	s.systemLocked(c, systemData{kind: sysMemberLeave, member: viewer})
	return rev, nil
}

// reactionRefusal is ReactionNotAllowed for a reaction on a system message,
// or one added in a locked group: addReaction's lexicon declares no
// ConvoLocked, and its ReactionNotAllowed is "reactions are not allowed on
// this message". Removing a reaction from a locked group is allowed (it adds
// nothing). Requires Server.mu.
func reactionRefusal(c *convo, m *message, add bool) *xrpcError {
	switch {
	case m.system != nil:
		return badRequest("ReactionNotAllowed", "reactions are not allowed on system messages")
	case add && c.writable() != nil:
		return badRequest("ReactionNotAllowed", "this group is locked: it takes no new reactions")
	}
	return nil
}
