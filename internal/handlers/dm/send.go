package dm

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/richtext"
	"github.com/skydm/skydm/internal/websession"
	"github.com/skydm/skydm/views"
)

// mentionTimeout bounds resolving the @mentions of one message (within the
// send's share of the request deadline).
const mentionTimeout = 2 * time.Second

var (
	errFormExpired = apperr.New(apperr.Invalid, "This page was open too long, so your message was not sent. It is kept below: press Send again.")
	errSending     = apperr.New(apperr.Conflict, "This message is already being sent.")
)

// errNotClaimed is said when the form's token could not be spent (the
// database failed): nothing was sent.
const errNotClaimed = "Your message was not sent just now. It is kept below: press Send again."

// SendReply is the JSON answer to a send from dm.js (Accept:
// application/json): the stored message's id and its rendered <li>, or an
// error to show; always a fresh form token for the next message.
type SendReply struct {
	ID    string `json:"id,omitempty"`
	HTML  string `json:"html,omitempty"`
	Error string `json:"error,omitempty"`
	// Draft is, with Error, the text that was not sent, for the composer.
	Draft string `json:"draft,omitempty"`
	// ReplyTo is, with Error, the message the composer still replies to;
	// "" when it was gone (ReplyTargetNotFound) or there was none.
	ReplyTo string `json:"replyTo,omitempty"`
	Token   string `json:"token"`
}

// Send is POST /convos/{id}/messages. It checks the length (the draft is
// kept with the reason), spends the form's one-time token (a second submit
// of the same form does not send again), detects link and mention facets
// (mentions resolved through the identity directory), sends (replying to
// the reply_to message when given), and redirects
// back to the conversation (PRG). Replying to a request accepts it (the
// chat service does). With Accept: application/json it answers SendReply
// instead. Refusals and upstream failures (429 with when to retry) are
// shown next to the composer with the draft kept.
func (s *Pages) Send(w http.ResponseWriter, r *http.Request) {
	acct, c, id, ok := s.convoClient(w, r)
	if !ok {
		return
	}
	asJSON := kit.WantsJSON(r)
	viewer := acct.DID.String()
	if err := parseDMForm(w, r); err != nil {
		s.kit.Error(w, r, err, s.onSend(w, r, acct, c, id, "")...)
		return
	}
	// Browsers send a textarea's line breaks as CRLF; the limits and the
	// facet offsets count the text as stored.
	text := strings.ReplaceAll(r.PostForm.Get("text"), "\r\n", "\n")
	if err := richtext.CheckLength(text); err != nil {
		s.kit.Error(w, r, err, s.onSend(w, r, acct, c, id, text)...)
		return
	}
	replyTo := r.PostForm.Get("reply_to")
	if replyTo != "" && !validID(replyTo) {
		r.PostForm.Del("reply_to") // the target is gone: the draft is kept, not the reply
		s.kit.Error(w, r, chatproxy.ReplyTargetNotFound(), s.onSend(w, r, acct, c, id, text)...)
		return
	}
	nonce, exp, ok := s.dm.tokens.verify(r.PostForm.Get("token"), viewer, id)
	if !ok {
		s.kit.Error(w, r, errFormExpired, s.onSend(w, r, acct, c, id, text)...)
		return
	}
	prev, ok, err := s.dm.uses.Claim(r.Context(), nonce, exp)
	if err != nil {
		s.kit.Error(w, r, apperr.Wrap(err, apperr.Unavailable, errNotClaimed), s.onSend(w, r, acct, c, id, text)...)
		return
	}
	if !ok {
		s.kit.Log.InfoContext(r.Context(), "repeated send form ignored", "did", viewer, "convo", id, "request_id", kit.RequestID(r.Context()))
		switch {
		case !asJSON:
			kit.Redirect(w, r, views.ConvoLatestURL(id))
		case prev.Sent:
			kit.WriteJSON(s.kit, w, http.StatusOK, SendReply{ID: prev.MessageID, Token: s.dm.tokens.issue(viewer, id)})
		default:
			s.kit.Error(w, r, errSending, kit.JSON(func(msg string) any {
				return SendReply{Error: msg, Token: s.dm.tokens.issue(viewer, id)}
			}))
		}
		return
	}
	// The send leaves kit.SendReserve of the request's deadline for the "was
	// it sent anyway" check and showing the conversation again.
	ctx, cancel := s.stepCtx(r, kit.SendReserve)
	defer cancel()
	mctx, mcancel := context.WithTimeout(ctx, mentionTimeout)
	facets := richtext.Detect(mctx, text, s.resolveHandle)
	mcancel()
	started := s.kit.Now()
	msg, err := c.SendMessage(ctx, id, chatproxy.MessageInput{Text: text, Facets: facets, ReplyTo: replyTo, JoinLinkCode: s.joinCodeIn(text)})
	if err != nil {
		if m := s.sentAnyway(r, c, id, viewer, text, started, err); m != nil {
			s.kit.Log.InfoContext(r.Context(), "send failed but the message was stored", "convo", id, "request_id", kit.RequestID(r.Context()))
			msg, err = m, nil
		}
	}
	if err != nil {
		s.finishToken(r, nonce, "")
		if apperr.ReasonOf(err) == chatproxy.ReasonReplyTargetNotFound {
			r.PostForm.Del("reply_to")
		}
		s.kit.Error(w, r, err, s.onSend(w, r, acct, c, id, text)...)
		return
	}
	s.finishToken(r, nonce, msg.Id)
	s.dm.invalidate(acct.DID)
	if !asJSON {
		kit.Redirect(w, r, views.ConvoLatestURL(id))
		return
	}
	conv := msgConv{viewer: viewer, names: dmNames{viewer: acct.Handle}, links: s.dm.links, postBase: s.dm.cfg.PostBase}
	s.quoteNames(conv.names, msg)
	var buf bytes.Buffer
	reply := SendReply{ID: msg.Id, Token: s.dm.tokens.issue(viewer, id)}
	if err := views.MessageItem(conv.message(msg), views.MsgContext{ConvoID: id, Loc: s.kit.Loc(r)}).Render(context.WithoutCancel(r.Context()), &buf); err == nil {
		reply.HTML = buf.String()
	} else {
		s.kit.Log.ErrorContext(r.Context(), "render sent message", "err", err, "request_id", kit.RequestID(r.Context()))
	}
	kit.WriteJSON(s.kit, w, http.StatusOK, reply)
}

// finishToken records the outcome of the send that claimed nonce (see
// TokenUses.Finish), even when the browser went away. A failure is logged:
// the message was sent or not all the same, and a repeat of the form is
// then answered as one still sending.
func (s *Pages) finishToken(r *http.Request, nonce, msgID string) {
	if err := s.dm.uses.Finish(context.WithoutCancel(r.Context()), nonce, msgID); err != nil {
		s.kit.Log.ErrorContext(r.Context(), "recording a send form's outcome", "err", err, "sent", msgID != "", "request_id", kit.RequestID(r.Context()))
	}
}

// sentCheckReserve is what the "was it sent anyway" look leaves of the
// request's deadline: the reload of the conversation and the answer.
const sentCheckReserve = kit.ReloadReserve

// sentCheckSkew is how much earlier than our clock the chat service may
// date a message and still have it count as this attempt's. Kept short: an
// identical message sent just before a send that really failed would
// otherwise be taken for it.
const sentCheckSkew = 10 * time.Second

// sentAnyway is called when a send failed in a way that leaves its outcome
// unknown (a timeout, or a 5xx from the PDS or the chat service: the
// message may have been stored before the answer was lost). It looks at the
// conversation's newest messages for this viewer's message with the same
// text, sent since the attempt started (sentCheckSkew of clock skew allowed),
// and returns it, or nil. Without it, the person would be told to press
// Send again and post the message twice.
func (s *Pages) sentAnyway(r *http.Request, c Chat, convoID, viewer, text string, started time.Time, err error) *chat.ConvoDefs_MessageView {
	if apperr.CodeOf(err) != apperr.Unavailable {
		return nil
	}
	// Without the client's cancellation (a send whose browser went away
	// still needs its outcome for the form token) but within the deadline.
	ctx, cancel := kit.BeforeDeadline(context.WithoutCancel(r.Context()), r.Context(), sentCheckReserve)
	defer cancel()
	page, gerr := c.GetMessages(ctx, convoID, "", 10)
	if gerr != nil {
		return nil
	}
	for _, it := range page.Messages {
		m := it.Message
		if m == nil || m.Sender == nil || m.Sender.Did != viewer || m.Text != text {
			continue
		}
		if at, perr := time.Parse(time.RFC3339Nano, m.SentAt); perr == nil && !at.Before(started.Add(-sentCheckSkew)) {
			return m
		}
	}
	return nil
}

// onSend are the error options of a send that did not happen: the
// conversation page with the draft kept, or for dm.js JSON with the
// message, the draft and a fresh token.
func (s *Pages) onSend(w http.ResponseWriter, r *http.Request, acct websession.Account, c Chat, id, draft string) []kit.ErrorOption {
	return []kit.ErrorOption{s.onConvo(w, r, acct, c, id, draft, ""), kit.JSON(func(msg string) any {
		return SendReply{Error: msg, Draft: draft, ReplyTo: r.PostForm.Get("reply_to"), Token: s.dm.tokens.issue(acct.DID.String(), id)}
	})}
}

// resolveHandle resolves a mentioned handle to a DID through the identity
// directory (which checks the handle both ways).
func (s *Pages) resolveHandle(ctx context.Context, handle string) (string, error) {
	h, err := syntax.ParseHandle(handle)
	if err != nil {
		return "", err
	}
	ident, err := s.dm.cfg.Directory.LookupHandle(ctx, h)
	if err != nil {
		return "", err
	}
	return ident.DID.String(), nil
}
