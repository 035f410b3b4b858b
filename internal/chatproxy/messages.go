package chatproxy

import (
	"context"
	"encoding/json"
	"strings"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	appbsky "github.com/bluesky-social/indigo/api/bsky"
	"github.com/rivo/uniseg"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/apperr"
)

// MessagePage is one page of a convo's messages, newest first as the
// service returns them. Elements of unknown kinds stay in place with
// Supported() false.
type MessagePage struct {
	Messages        []MessageItem
	Cursor          string
	RelatedProfiles []*chat.ActorDefs_ProfileViewBasic
}

// GetMessages calls chat.bsky.convo.getMessages. limit is 1..100 (0 → the
// server's default of 50). On failure it returns an *apperr.Error (Reason
// ConvoNotFound for an unknown or left convo).
func (c *Client) GetMessages(ctx context.Context, convoID, cursor string, limit int64) (*MessagePage, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	params := map[string]any{"convoId": convoID}
	setStr(params, "cursor", cursor)
	if l := clampLimit(limit); l > 0 {
		params["limit"] = l
	}
	const nsid = "chat.bsky.convo.getMessages"
	body, err := c.query(ctx, nsid, params)
	if err != nil {
		return nil, err
	}
	var out struct {
		Messages        []json.RawMessage `json:"messages"`
		Cursor          *string           `json:"cursor"`
		RelatedProfiles []json.RawMessage `json:"relatedProfiles"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, badResponse(nsid, err)
	}
	page := &MessagePage{Cursor: deref(out.Cursor), Messages: make([]MessageItem, 0, len(out.Messages))}
	for _, raw := range out.Messages {
		page.Messages = append(page.Messages, decodeMessageItem(raw))
	}
	for _, raw := range out.RelatedProfiles {
		var p chat.ActorDefs_ProfileViewBasic
		if json.Unmarshal(raw, &p) == nil && p.Did != "" {
			page.RelatedProfiles = append(page.RelatedProfiles, &p)
		}
	}
	return page, nil
}

// MessageInput is a message to send.
type MessageInput struct {
	// Text is required unless Quote is set: at most 1000 graphemes and
	// 10000 bytes.
	Text string
	// Facets annotate Text (links, mentions); byte offsets into Text.
	Facets []*appbsky.RichtextFacet
	// Quote, when set, embeds a record (a post) as app.bsky.embed.record.
	Quote *comatproto.RepoStrongRef
	// JoinLinkCode, when set and Quote is not, embeds a group's join link
	// as chat.bsky.embed.joinLink (shown as a card with its preview).
	JoinLinkCode string
}

// Limits of chat.bsky.convo.defs#messageInput.text.
const (
	MaxMessageGraphemes = 1000
	MaxMessageBytes     = 10000
)

// Validate checks m against the lexicon limits without sending anything. It
// returns an *apperr.Error with Reason MessageEmpty or MessageTooLong, or nil.
func (m MessageInput) Validate() error {
	if strings.TrimSpace(m.Text) == "" && m.Quote == nil {
		return invalid(kind{apperr.Invalid, ReasonMessageEmpty, fixed(msgMessageEmpty)}, "")
	}
	if len(m.Text) > MaxMessageBytes || uniseg.GraphemeClusterCount(m.Text) > MaxMessageGraphemes {
		return invalid(kTooLong, "")
	}
	return nil
}

func (m MessageInput) lex() *chat.ConvoDefs_MessageInput {
	in := &chat.ConvoDefs_MessageInput{Text: m.Text, Facets: m.Facets}
	if m.Quote != nil {
		in.Embed = &chat.ConvoDefs_MessageInput_Embed{EmbedRecord: &appbsky.EmbedRecord{Record: m.Quote}}
	} else if m.JoinLinkCode != "" {
		in.Embed = &chat.ConvoDefs_MessageInput_Embed{EmbedJoinLink: &chat.EmbedJoinLink{Code: m.JoinLinkCode}}
	}
	return in
}

// SendMessage calls chat.bsky.convo.sendMessage and returns the message as
// stored. The input is validated first (MessageEmpty, MessageTooLong).
// Refusals come back as *apperr.Error (ConvoNotFound, ConvoLocked, Blocked,
// NotFollowedBySender, MessagesDisabled, RateLimited with RetryAt, ...).
func (c *Client) SendMessage(ctx context.Context, convoID string, msg MessageInput) (*chat.ConvoDefs_MessageView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	if err := msg.Validate(); err != nil {
		return nil, err
	}
	var out *chat.ConvoDefs_MessageView
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.ConvoSendMessage(ctx, c.api, &chat.ConvoSendMessage_Input{ConvoId: convoID, Message: msg.lex()})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteMessageForSelf calls chat.bsky.convo.deleteMessageForSelf (hides
// the message for the viewer only) and returns the deleted view. On failure
// it returns an *apperr.Error.
func (c *Client) DeleteMessageForSelf(ctx context.Context, convoID, messageID string) (*chat.ConvoDefs_DeletedMessageView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	if err := needMessageID(messageID); err != nil {
		return nil, err
	}
	var out *chat.ConvoDefs_DeletedMessageView
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.ConvoDeleteMessageForSelf(ctx, c.api, &chat.ConvoDeleteMessageForSelf_Input{ConvoId: convoID, MessageId: messageID})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// validReaction checks a reaction value: one grapheme, 1..64 bytes.
func validReaction(value string) error {
	if value == "" || len(value) > 64 || uniseg.GraphemeClusterCount(value) != 1 {
		return invalid(kReactionInvalid, "")
	}
	return nil
}

// AddReaction calls chat.bsky.convo.addReaction (idempotent) and returns the
// message with its reactions. value must be a single emoji. Refusals come
// back as *apperr.Error with Reason ReactionLimitReached,
// ReactionMessageDeleted, ReactionInvalidValue, ReactionNotAllowed or
// ConvoNotFound.
func (c *Client) AddReaction(ctx context.Context, convoID, messageID, value string) (*chat.ConvoDefs_MessageView, error) {
	return c.reaction(ctx, true, convoID, messageID, value)
}

// RemoveReaction calls chat.bsky.convo.removeReaction and returns the
// message with its reactions. Errors as for AddReaction.
func (c *Client) RemoveReaction(ctx context.Context, convoID, messageID, value string) (*chat.ConvoDefs_MessageView, error) {
	return c.reaction(ctx, false, convoID, messageID, value)
}

func (c *Client) reaction(ctx context.Context, add bool, convoID, messageID, value string) (*chat.ConvoDefs_MessageView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	if err := needMessageID(messageID); err != nil {
		return nil, err
	}
	if err := validReaction(value); err != nil {
		return nil, err
	}
	var msg *chat.ConvoDefs_MessageView
	err := c.do(ctx, func(ctx context.Context) error {
		if add {
			out, err := chat.ConvoAddReaction(ctx, c.api, &chat.ConvoAddReaction_Input{ConvoId: convoID, MessageId: messageID, Value: value})
			if err == nil {
				msg = out.Message
			}
			return err
		}
		out, err := chat.ConvoRemoveReaction(ctx, c.api, &chat.ConvoRemoveReaction_Input{ConvoId: convoID, MessageId: messageID, Value: value})
		if err == nil {
			msg = out.Message
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return msg, nil
}

// LogPage is one page of the viewer's chat log. Cursor is the cursor for
// the next call (the service returns the latest rev; pass it back to get
// only newer events). Events of unknown kinds stay in place with Elem nil.
type LogPage struct {
	Logs   []LogEntry
	Cursor string
}

// GetLog calls chat.bsky.convo.getLog: the viewer's chat events after
// cursor ("" → the current position, usually an empty page and a cursor to
// poll from). On failure it returns an *apperr.Error.
func (c *Client) GetLog(ctx context.Context, cursor string) (*LogPage, error) {
	params := map[string]any{}
	setStr(params, "cursor", cursor)
	const nsid = "chat.bsky.convo.getLog"
	body, err := c.query(ctx, nsid, params)
	if err != nil {
		return nil, err
	}
	var out struct {
		Logs   []json.RawMessage `json:"logs"`
		Cursor *string           `json:"cursor"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, badResponse(nsid, err)
	}
	page := &LogPage{Cursor: deref(out.Cursor), Logs: make([]LogEntry, 0, len(out.Logs))}
	for _, raw := range out.Logs {
		page.Logs = append(page.Logs, decodeLogEntry(raw))
	}
	return page, nil
}
