package chatproxy

import (
	"context"
	"encoding/json"

	"github.com/skydm/skydm/internal/lex/chat"
)

// ListConvosParams filters chat.bsky.convo.listConvos. Zero values are
// omitted.
type ListConvosParams struct {
	Limit      int64  // 1..100; 0 → server default (50)
	Cursor     string // from a previous page
	Status     string // "accepted" or "request"
	ReadState  string // "unread"
	Kind       string // "direct" or "group"
	LockStatus string // "unlocked", "locked", "locked-permanently"
}

// ConvoPage is one page of convos. Skipped counts elements left out because
// they are not convo views this client can read (e.g. group join requests,
// or future kinds); they never fail the page.
type ConvoPage struct {
	Convos  []*chat.ConvoDefs_ConvoView
	Cursor  string
	Skipped int
}

// ListConvos calls chat.bsky.convo.listConvos. On failure it returns an
// *apperr.Error (see the Reason constants).
func (c *Client) ListConvos(ctx context.Context, p ListConvosParams) (*ConvoPage, error) {
	params := map[string]any{}
	setStr(params, "cursor", p.Cursor)
	setStr(params, "status", p.Status)
	setStr(params, "readState", p.ReadState)
	setStr(params, "kind", p.Kind)
	setStr(params, "lockStatus", p.LockStatus)
	if l := clampLimit(p.Limit); l > 0 {
		params["limit"] = l
	}
	const nsid = "chat.bsky.convo.listConvos"
	body, err := c.query(ctx, nsid, params)
	if err != nil {
		return nil, err
	}
	var out struct {
		Convos []json.RawMessage `json:"convos"`
		Cursor *string           `json:"cursor"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, badResponse(nsid, err)
	}
	page := &ConvoPage{Cursor: deref(out.Cursor), Convos: make([]*chat.ConvoDefs_ConvoView, 0, len(out.Convos))}
	for _, raw := range out.Convos {
		if v, ok := decodeConvo(raw); ok {
			page.Convos = append(page.Convos, v)
		} else {
			page.Skipped++
		}
	}
	return page, nil
}

// GetConvo calls chat.bsky.convo.getConvo. A convo that does not exist or
// that the viewer left gives Reason ConvoNotFound; other failures an
// *apperr.Error as well.
func (c *Client) GetConvo(ctx context.Context, convoID string) (*chat.ConvoDefs_ConvoView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	var out *chat.ConvoGetConvo_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.ConvoGetConvo(ctx, c.api, convoID)
		return err
	})
	if err != nil {
		return nil, err
	}
	if out.Convo == nil {
		return nil, badResponse("chat.bsky.convo.getConvo", errMissing("convo"))
	}
	return out.Convo, nil
}

// GetConvoForMembers calls chat.bsky.convo.getConvoForMembers: it gets or
// creates the direct convo with the given member DIDs (the viewer may be
// included or not). Refusals come back as *apperr.Error with Reason
// NotFollowedBySender, MessagesDisabled, Blocked, RecipientNotFound or
// AccountSuspended, worded with the ForRecipient name when set.
func (c *Client) GetConvoForMembers(ctx context.Context, members []string) (*chat.ConvoDefs_ConvoView, error) {
	if err := needMembers(members); err != nil {
		return nil, err
	}
	var out *chat.ConvoGetConvoForMembers_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.ConvoGetConvoForMembers(ctx, c.api, members)
		return err
	})
	if err != nil {
		return nil, err
	}
	if out.Convo == nil {
		return nil, badResponse("chat.bsky.convo.getConvoForMembers", errMissing("convo"))
	}
	return out.Convo, nil
}

// GetConvoAvailability calls chat.bsky.convo.getConvoAvailability: whether
// the viewer can chat with the members, and the existing convo if any. It
// does not create a convo. On failure it returns an *apperr.Error.
func (c *Client) GetConvoAvailability(ctx context.Context, members []string) (*chat.ConvoGetConvoAvailability_Output, error) {
	if err := needMembers(members); err != nil {
		return nil, err
	}
	var out *chat.ConvoGetConvoAvailability_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.ConvoGetConvoAvailability(ctx, c.api, members)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateRead calls chat.bsky.convo.updateRead: marks the convo read up to
// messageID ("" → up to the latest message) and returns the updated convo.
// On failure it returns an *apperr.Error.
func (c *Client) UpdateRead(ctx context.Context, convoID, messageID string) (*chat.ConvoDefs_ConvoView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	in := &chat.ConvoUpdateRead_Input{ConvoId: convoID}
	if messageID != "" {
		in.MessageId = &messageID
	}
	var out *chat.ConvoUpdateRead_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.ConvoUpdateRead(ctx, c.api, in)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out.Convo, nil
}

// UpdateAllRead calls chat.bsky.convo.updateAllRead for convos with the
// given status ("accepted", "request"; "" → all) and returns how many convos
// changed. On failure it returns an *apperr.Error.
func (c *Client) UpdateAllRead(ctx context.Context, status string) (int64, error) {
	in := &chat.ConvoUpdateAllRead_Input{}
	if status != "" {
		in.Status = &status
	}
	var out *chat.ConvoUpdateAllRead_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.ConvoUpdateAllRead(ctx, c.api, in)
		return err
	})
	if err != nil {
		return 0, err
	}
	return out.UpdatedCount, nil
}

// AcceptConvo calls chat.bsky.convo.acceptConvo and returns the rev of the
// acceptance ("" when the convo was already accepted). On failure it
// returns an *apperr.Error.
func (c *Client) AcceptConvo(ctx context.Context, convoID string) (string, error) {
	if err := needConvoID(convoID); err != nil {
		return "", err
	}
	var out *chat.ConvoAcceptConvo_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.ConvoAcceptConvo(ctx, c.api, &chat.ConvoAcceptConvo_Input{ConvoId: convoID})
		return err
	})
	if err != nil {
		return "", err
	}
	return deref(out.Rev), nil
}

// MuteConvo calls chat.bsky.convo.muteConvo and returns the updated convo.
// On failure it returns an *apperr.Error.
func (c *Client) MuteConvo(ctx context.Context, convoID string) (*chat.ConvoDefs_ConvoView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	var out *chat.ConvoMuteConvo_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.ConvoMuteConvo(ctx, c.api, &chat.ConvoMuteConvo_Input{ConvoId: convoID})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out.Convo, nil
}

// UnmuteConvo calls chat.bsky.convo.unmuteConvo and returns the updated
// convo. On failure it returns an *apperr.Error.
func (c *Client) UnmuteConvo(ctx context.Context, convoID string) (*chat.ConvoDefs_ConvoView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	var out *chat.ConvoUnmuteConvo_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.ConvoUnmuteConvo(ctx, c.api, &chat.ConvoUnmuteConvo_Input{ConvoId: convoID})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out.Convo, nil
}

// LeaveConvo calls chat.bsky.convo.leaveConvo and returns the rev of the
// leave. On failure it returns an *apperr.Error.
func (c *Client) LeaveConvo(ctx context.Context, convoID string) (string, error) {
	if err := needConvoID(convoID); err != nil {
		return "", err
	}
	var out *chat.ConvoLeaveConvo_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.ConvoLeaveConvo(ctx, c.api, &chat.ConvoLeaveConvo_Input{ConvoId: convoID})
		return err
	})
	if err != nil {
		return "", err
	}
	return out.Rev, nil
}
