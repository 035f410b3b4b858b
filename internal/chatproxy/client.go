package chatproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	appbsky "github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/api/chat"
	"github.com/bluesky-social/indigo/atproto/atclient"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/rivo/uniseg"

	"github.com/skydm/skydm/internal/apperr"
)

// Client makes chat.bsky.* calls for one account through its PDS. It is
// cheap to make (one per request is fine) and safe for concurrent use.
type Client struct {
	api       *atclient.APIClient
	ref       string
	now       func() time.Time
	recipient string
	refWrong  func(ref string, err error)
	gate      *Gate
	gateKey   string
}

// Option configures a Client.
type Option func(*Client)

// WithClock sets the clock used to turn a relative Retry-After into RetryAt.
// The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *Client) {
		if now != nil {
			c.now = now
		}
	}
}

// WithServiceRefProblem sets a function called, with the service ref and
// the error, whenever a call fails because the PDS cannot resolve the
// service ref (ReasonServiceRefWrong): a mistake in skydm's configuration,
// not an outage, which the operator must hear about. It is called on every
// such failure; report decides how often to log.
func WithServiceRefProblem(report func(ref string, err error)) Option {
	return func(c *Client) { c.refWrong = report }
}

// WithGate makes the Client honour and feed g for the account key (its
// DID): while the account's PDS or chat service has said to wait, calls
// fail at once with RateLimited (see Gate).
func WithGate(g *Gate, key string) Option {
	return func(c *Client) {
		c.gate, c.gateKey = g, key
	}
}

// New returns a Client that sends every call through api with the
// Atproto-Proxy header set to serviceRef (e.g. "did:web:api.bsky.chat#bsky_chat").
// It does not change api: it works on a shallow copy (api.WithService) whose
// HTTP client is a copy of api.Client with a transport that records response
// rate-limit headers (see ratelimit.go); api.Auth (OAuth DPoP session or
// password session) is kept, and uses that client. api must not be nil. An
// empty serviceRef is not rejected here; every call then fails as
// Unavailable (the PDS answers "No service configured").
func New(api *atclient.APIClient, serviceRef string, opts ...Option) *Client {
	c := &Client{now: time.Now, ref: serviceRef}
	for _, o := range opts {
		o(c)
	}
	base := *api
	if base.Headers == nil {
		// WithService clones the headers and sets one; a nil map (OAuth
		// sessions without a User-Agent) would panic.
		base.Headers = http.Header{}
	}
	proxied := base.WithService(serviceRef)
	now := c.now
	proxied.Client = wrapHTTPClient(api.Client, func() time.Time { return now() })
	c.api = proxied
	return c
}

// ForRecipient returns a copy of c whose error messages about the other
// person name them ("Carol only accepts messages from people they follow.")
// instead of saying "This account". name is a display name or handle; it is
// cleaned of control characters and shortened. An empty name gives the
// generic wording.
func (c *Client) ForRecipient(name string) *Client {
	cp := *c
	cp.recipient = cleanName(name)
	return &cp
}

// do runs one call with a fresh response-metadata holder in its context and
// maps its error.
func (c *Client) do(ctx context.Context, call func(ctx context.Context) error) error {
	if c.gate != nil {
		if err := c.gate.check(c.gateKey); err != nil {
			return err
		}
	}
	cctx, meta := withRespMeta(ctx)
	err := c.whichFailed(ctx, mapError(call(cctx), meta, c.recipient, c.now))
	if c.gate != nil {
		c.gate.record(c.gateKey, err)
	}
	if c.refWrong != nil && apperr.ReasonOf(err) == ReasonServiceRefWrong {
		c.refWrong(c.ref, err)
	}
	return err
}

// query runs a GET and returns the raw JSON body.
func (c *Client) query(ctx context.Context, nsid string, params map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	err := c.do(ctx, func(ctx context.Context) error {
		return c.api.LexDo(ctx, lexutil.Query, "", nsid, params, nil, &buf)
	})
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func invalid(k kind, recipient string) error {
	return &apperr.Error{Code: k.code, Reason: k.reason, Message: k.msg(recipient)}
}

func needConvoID(id string) error {
	if strings.TrimSpace(id) == "" {
		return invalid(kConvoNotFound, "")
	}
	return nil
}

func needMessageID(id string) error {
	if strings.TrimSpace(id) == "" {
		return &apperr.Error{Code: apperr.Invalid, Reason: ReasonInvalidRequest, Message: "No message was given."}
	}
	return nil
}

func needMembers(members []string) error {
	if len(members) == 0 || len(members) > 10 {
		return &apperr.Error{Code: apperr.Invalid, Reason: ReasonInvalidRequest, Message: "Choose who to message."}
	}
	for _, m := range members {
		if !strings.HasPrefix(m, "did:") {
			return &apperr.Error{Code: apperr.Invalid, Reason: ReasonInvalidRequest, Message: "Choose who to message."}
		}
	}
	return nil
}

// clampLimit keeps a page size in the lexicon range 1..100; 0 (or less)
// leaves it to the server.
func clampLimit(n int64) int64 {
	switch {
	case n <= 0:
		return 0
	case n > 100:
		return 100
	}
	return n
}

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

func setStr(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type missingField string

func (f missingField) Error() string { return "missing field " + string(f) }

func errMissing(field string) error { return missingField(field) }
