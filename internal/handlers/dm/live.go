package dm

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/a-h/templ"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/live"
	"github.com/skydm/skydm/internal/websession"
	"github.com/skydm/skydm/views"
)

// Events is GET /events: the live.Hub's Server-Sent Events for the
// signed-in account with DM access (401 otherwise), rendered for the page
// that opened it (?convo= for a conversation page) in the browser's time
// zone. What each page gets is described on liveRenderer.
func (s *Pages) Events(w http.ResponseWriter, r *http.Request) {
	s.dm.cfg.Hub.Handler(s.liveUser, liveRenderer{s: s, loc: s.kit.Loc(r)}).ServeHTTP(w, r)
}

// liveUser is the account of an SSE request: the active one, when it may
// use DMs.
func (s *Pages) liveUser(r *http.Request) (live.User, bool) {
	cur, ok := s.current(r)
	if !ok || !cur.HasChatScope {
		return live.User{}, false
	}
	return live.User{DID: cur.DID, SessionID: cur.SessionID}, true
}

// liveRenderer turns the hub's events into what static/dm.js applies.
//
// On a conversation page (?convo=ID), for that conversation:
//
//	message   {convoId, id, html}  the new message's <li> (views.MessageItem); the page marks it read (POST) when seen
//	delete    {convoId, id}        the message was deleted for the viewer
//	reaction  {convoId, id, html}  the message's reactions row (views.MessageReactions; "" → none)
//	group     LiveGroup            a group event's system line, and what it changed (name, lock)
//	gone      {convoId}            the viewer is no longer a member (logLeaveConvo: removed, or left elsewhere)
//
// and for anything else that changes unread counts:
//
//	unread    {total}              the unread total for the title and nav
//
// On other pages (the inbox), every event of a conversation becomes
//
//	convo     {id, html, unreadTotal}  the conversation's inbox row (views.ConvoRow; "" → it is gone)
//
// The row is fetched with getConvo and the total with the unread counts,
// each once per account and event however many pages are open. Renderers
// run concurrently on a shared Event: nothing here modifies it, and the
// entry is never marshalled (dm.js gets only what is built here).
type liveRenderer struct {
	s   *Pages
	loc *time.Location
}

// LiveMessage is the data of a message, delete or reaction event.
type LiveMessage struct {
	ConvoID string `json:"convoId"`
	ID      string `json:"id"`
	HTML    string `json:"html,omitempty"`
}

// LiveUnread is the data of an unread event.
type LiveUnread struct {
	Total int `json:"total"`
}

// LiveConvo is the data of a convo event (an inbox row).
type LiveConvo struct {
	ID          string `json:"id"`
	HTML        string `json:"html"`
	UnreadTotal *int   `json:"unreadTotal,omitempty"`
}

// rowResult is a conversation's inbox row, or gone when the viewer can no
// longer see it.
type rowResult struct {
	row  views.ConvoRowVM
	gone bool
}

// Render implements live.Renderer.
func (lr liveRenderer) Render(ctx context.Context, user live.User, ev live.Event, page live.PageInfo) (string, []byte, bool) {
	if ev.Kind == live.KindAuth || ev.Kind == live.KindResync || ev.ConvoID == "" {
		return "", nil, false // control events: the hub sends its JSON
	}
	acct := websession.Account{DID: user.DID, SessionID: user.SessionID, HasChatScope: true}
	c, err := lr.s.dm.cfg.Chats.Chat(ctx, acct)
	if err != nil {
		return "", nil, false
	}
	if page.ConvoID != "" {
		return lr.convoPage(ctx, acct, c, &ev, page.ConvoID)
	}
	return lr.inbox(ctx, acct, c, &ev)
}

func (lr liveRenderer) convoPage(ctx context.Context, acct websession.Account, c Chat, ev *live.Event, convoID string) (string, []byte, bool) {
	s, viewer := lr.s, acct.DID.String()
	here := ev.ConvoID == convoID
	msgID := ""
	switch {
	case ev.Message != nil:
		msgID = ev.Message.Id
	case ev.Deleted != nil:
		msgID = ev.Deleted.Id
	}
	conv := msgConv{viewer: viewer, names: dmNames{}, avatars: dmNames{}, links: s.dm.links, postBase: s.dm.cfg.PostBase}
	// A live message carries its sender's avatar, shown in groups only
	// (dm.css); the page does not know which kind of convo this is.
	mc := views.MsgContext{ConvoID: ev.ConvoID, Loc: lr.loc, Group: true}
	switch {
	case here && ev.Kind == live.KindMessage && ev.Message != nil:
		if sd := ev.Message.Sender; sd != nil {
			conv.names[sd.Did] = s.dm.names.get(sd.Did)
		}
		conv.related(ev.Related)
		s.quoteNames(conv.names, ev.Message)
		html, ok := lr.html(ctx, views.MessageItem(conv.message(ev.Message), mc))
		return lr.event("message", LiveMessage{ConvoID: ev.ConvoID, ID: msgID, HTML: html}, ok)
	case here && ev.Kind == live.KindDelete && msgID != "":
		return lr.event("delete", LiveMessage{ConvoID: ev.ConvoID, ID: msgID}, true)
	case here && ev.Kind == live.KindReaction && ev.Message != nil:
		html, ok := lr.html(ctx, views.MessageReactions(conv.message(ev.Message), mc))
		return lr.event("reaction", LiveMessage{ConvoID: ev.ConvoID, ID: msgID, HTML: html}, ok)
	case here && (ev.Kind == live.KindMessage || ev.Kind == live.KindReaction):
		return "", nil, false
	case here && ev.System != nil:
		return lr.groupEvent(ctx, conv, ev, mc)
	case here && ev.Log != nil && ev.Log.ConvoDefs_LogLeaveConvo != nil:
		return lr.event("gone", LiveMessage{ConvoID: ev.ConvoID}, true)
	}
	n, err := s.countsOf(ctx, acct.DID, c, ev.Rev)
	if err != nil {
		return "", nil, false
	}
	return lr.event("unread", LiveUnread{Total: n.UnreadTotal}, true)
}

func (lr liveRenderer) inbox(ctx context.Context, acct websession.Account, c Chat, ev *live.Event) (string, []byte, bool) {
	s, viewer := lr.s, acct.DID.String()
	res, err := s.dm.rows.get(ctx, viewer+" "+ev.ConvoID, ev.Rev, func(ctx context.Context) (rowResult, error) {
		v, err := c.GetConvo(ctx, ev.ConvoID)
		if apperr.ReasonOf(err) == chatproxy.ReasonConvoNotFound {
			return rowResult{gone: true}, nil
		}
		if err != nil {
			return rowResult{}, err
		}
		return rowResult{row: convoRow(v, viewer)}, nil
	})
	if err != nil {
		return "", nil, false
	}
	out := LiveConvo{ID: ev.ConvoID}
	if !res.gone {
		var ok bool
		if out.HTML, ok = lr.html(ctx, views.ConvoRow(res.row, s.kit.Now(), lr.loc)); !ok {
			return "", nil, false
		}
	}
	if n, err := s.countsOf(ctx, acct.DID, c, ev.Rev); err == nil {
		out.UnreadTotal = &n.UnreadTotal
	}
	return lr.event("convo", out, true)
}

func (lr liveRenderer) html(ctx context.Context, c templ.Component) (string, bool) {
	var buf bytes.Buffer
	if err := c.Render(ctx, &buf); err != nil {
		lr.s.kit.Log.ErrorContext(ctx, "render live update", "err", err)
		return "", false
	}
	return buf.String(), true
}

func (lr liveRenderer) event(name string, v any, ok bool) (string, []byte, bool) {
	if !ok {
		return "", nil, false
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", nil, false
	}
	return name, b, true
}
