package chatproxy

import (
	"context"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/lex/chat"
)

// Group calls: chat.bsky.group.createGroup, addMembers, removeMembers,
// editGroup, chat.bsky.convo.lockConvo, unlockConvo, getConvoMembers and
// chat.bsky.actor.getStatus. Failures are *apperr.Error; a refusal about a
// member (UserForbidsGroups, NotFollowedBySender, Blocked) is worded for
// groups and names the ForRecipient name when set.

// MemberPage is one page of a convo's members.
type MemberPage struct {
	Members []*chat.ActorDefs_ProfileViewBasic
	Cursor  string
}

// GetStatus calls chat.bsky.actor.getStatus: whether the viewer may create
// groups and the group member limit.
func (c *Client) GetStatus(ctx context.Context) (*chat.ActorGetStatus_Output, error) {
	var out *chat.ActorGetStatus_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.ActorGetStatus(ctx, c.api)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CreateGroup calls chat.bsky.group.createGroup with a name and the member
// DIDs (the owner, the viewer, is added by the service) and returns the new
// group. It is all or nothing: a refused member creates nothing.
func (c *Client) CreateGroup(ctx context.Context, name string, members []string) (*chat.ConvoDefs_ConvoView, error) {
	var out *chat.GroupCreateGroup_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.GroupCreateGroup(ctx, c.api, &chat.GroupCreateGroup_Input{Name: name, Members: members})
		return err
	})
	return convoOf("chat.bsky.group.createGroup", c.groupWords(err), func() *chat.ConvoDefs_ConvoView { return out.Convo })
}

// AddMembers calls chat.bsky.group.addMembers (owner only: InsufficientRole
// otherwise); the members are added in "request" status.
func (c *Client) AddMembers(ctx context.Context, convoID string, members []string) (*chat.ConvoDefs_ConvoView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	var out *chat.GroupAddMembers_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.GroupAddMembers(ctx, c.api, &chat.GroupAddMembers_Input{ConvoId: convoID, Members: members})
		return err
	})
	return convoOf("chat.bsky.group.addMembers", c.groupWords(err), func() *chat.ConvoDefs_ConvoView { return out.Convo })
}

// RemoveMembers calls chat.bsky.group.removeMembers (owner only).
func (c *Client) RemoveMembers(ctx context.Context, convoID string, members []string) (*chat.ConvoDefs_ConvoView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	var out *chat.GroupRemoveMembers_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.GroupRemoveMembers(ctx, c.api, &chat.GroupRemoveMembers_Input{ConvoId: convoID, Members: members})
		return err
	})
	return convoOf("chat.bsky.group.removeMembers", err, func() *chat.ConvoDefs_ConvoView { return out.Convo })
}

// EditGroup calls chat.bsky.group.editGroup to rename the group (owner only).
func (c *Client) EditGroup(ctx context.Context, convoID, name string) (*chat.ConvoDefs_ConvoView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	var out *chat.GroupEditGroup_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.GroupEditGroup(ctx, c.api, &chat.GroupEditGroup_Input{ConvoId: convoID, Name: name})
		return err
	})
	return convoOf("chat.bsky.group.editGroup", err, func() *chat.ConvoDefs_ConvoView { return out.Convo })
}

// LockConvo calls chat.bsky.convo.lockConvo (owner only): the group takes
// no more messages or reactions.
func (c *Client) LockConvo(ctx context.Context, convoID string) (*chat.ConvoDefs_ConvoView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	var out *chat.ConvoLockConvo_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.ConvoLockConvo(ctx, c.api, &chat.ConvoLockConvo_Input{ConvoId: convoID})
		return err
	})
	return convoOf("chat.bsky.convo.lockConvo", err, func() *chat.ConvoDefs_ConvoView { return out.Convo })
}

// UnlockConvo calls chat.bsky.convo.unlockConvo (owner only); a group
// locked by moderation gives Reason ConvoLockedByModeration.
func (c *Client) UnlockConvo(ctx context.Context, convoID string) (*chat.ConvoDefs_ConvoView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	var out *chat.ConvoUnlockConvo_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.ConvoUnlockConvo(ctx, c.api, &chat.ConvoUnlockConvo_Input{ConvoId: convoID})
		return err
	})
	return convoOf("chat.bsky.convo.unlockConvo", err, func() *chat.ConvoDefs_ConvoView { return out.Convo })
}

// GetConvoMembers calls chat.bsky.convo.getConvoMembers: one page of the
// convo's members (limit 1..100; 0 → the server's 50).
func (c *Client) GetConvoMembers(ctx context.Context, convoID, cursor string, limit int64) (*MemberPage, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	var out *chat.ConvoGetConvoMembers_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.ConvoGetConvoMembers(ctx, c.api, convoID, cursor, clampLimit(limit))
		return err
	})
	if err != nil {
		return nil, err
	}
	page := &MemberPage{Cursor: deref(out.Cursor)}
	for _, m := range out.Members {
		if m != nil && m.Did != "" {
			page.Members = append(page.Members, m)
		}
	}
	return page, nil
}

// convoOf returns the convo of a successful group call, or err.
func convoOf(nsid string, err error, convo func() *chat.ConvoDefs_ConvoView) (*chat.ConvoDefs_ConvoView, error) {
	if err != nil {
		return nil, err
	}
	v := convo()
	if v == nil {
		return nil, badResponse(nsid, errMissing("convo"))
	}
	return v, nil
}

// groupWords rewords a member refusal for adding to a group (the shared
// taxonomy words NotFollowedBySender and blocks for messages).
func (c *Client) groupWords(err error) error {
	e := apperr.As(err)
	if e == nil {
		return err
	}
	switch e.Reason {
	case ReasonNotFollowedBySender, ReasonBlocked, ReasonUserForbidsGroups:
		cp := *e
		cp.Message = groupRefusal(e.Reason)(c.recipient)
		return &cp
	}
	return err
}

// MemberRefusal is the error saying why the person called name ("" → "one
// of them") cannot be added to a group, for a Reason this package gives:
// UserForbidsGroups, NotFollowedBySender, Blocked, RecipientNotFound or
// AccountSuspended.
func MemberRefusal(reason, name string) error {
	k, code := groupRefusal(reason), apperr.Forbidden
	if reason == ReasonRecipientNotFound {
		code = apperr.NotFound
	}
	return &apperr.Error{Code: code, Reason: reason, Message: k(cleanName(name))}
}

// groupRefusal words why someone cannot be added to a group.
func groupRefusal(reason string) func(name string) string {
	return func(name string) string {
		who := name
		if who == "" {
			who = "One of these people"
		}
		switch reason {
		case ReasonUserForbidsGroups:
			return who + " does not accept group invitations."
		case ReasonNotFollowedBySender:
			return who + " only accepts group invitations from people they follow."
		case ReasonBlocked:
			if name == "" {
				return "One of these people can't be added because one of you has blocked the other."
			}
			return name + " can't be added because one of you has blocked the other."
		case ReasonRecipientNotFound:
			if name == "" {
				return msgRecipientNotFound
			}
			return "We could not find " + name + ". Check the handle and try again."
		case ReasonAccountSuspended:
			return msgAccountSuspended
		}
		return who + " can't be added to this group."
	}
}
