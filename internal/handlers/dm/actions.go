package dm

import (
	"context"
	"net/http"
	"strings"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/views"
)

// convoAction runs one state-changing chat call on the convo of the path
// and redirects to target(id) (PRG); a script (Accept: application/json)
// gets 204 No Content instead. Refusals are shown on the
// conversation page; an ended session, missing DM access or a convo that
// is gone go to the error page.
func (s *Pages) convoAction(w http.ResponseWriter, r *http.Request, do func(ctx context.Context, c Chat, id string) error, target func(id string) string) {
	acct, c, id, ok := s.convoClient(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.stepCtx(r, kit.ReloadReserve) // a failure shows the conversation again
	defer cancel()
	err := do(ctx, c, id)
	s.dm.invalidate(acct.DID)
	if err != nil {
		s.kit.Error(w, r, err, s.onConvo(w, r, acct, c, id, "", ""))
		return
	}
	if kit.WantsJSON(r) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	kit.Redirect(w, r, target(id))
}

// convoNotice is the target of an action on a whole conversation: its page
// with the notice, focused (noticeURL).
func convoNotice(code string) func(id string) string {
	return func(id string) string { return noticeURL(views.ConvoURL(id), code) }
}

// Accept is POST /convos/{id}/accept: the request moves to the inbox.
func (s *Pages) Accept(w http.ResponseWriter, r *http.Request) {
	s.convoAction(w, r, func(ctx context.Context, c Chat, id string) error {
		_, err := c.AcceptConvo(ctx, id)
		return err
	}, convoNotice("accepted"))
}

// Leave is POST /convos/{id}/leave, sent from the confirmation the
// conversation page shows first (a disclosure holding this form).
func (s *Pages) Leave(w http.ResponseWriter, r *http.Request) {
	s.convoAction(w, r, func(ctx context.Context, c Chat, id string) error {
		_, err := c.LeaveConvo(ctx, id)
		return err
	}, func(string) string { return noticeURL("/", "left") })
}

// Mute is POST /convos/{id}/mute.
func (s *Pages) Mute(w http.ResponseWriter, r *http.Request) {
	s.convoAction(w, r, func(ctx context.Context, c Chat, id string) error {
		_, err := c.MuteConvo(ctx, id)
		return err
	}, convoNotice("muted"))
}

// Unmute is POST /convos/{id}/unmute.
func (s *Pages) Unmute(w http.ResponseWriter, r *http.Request) {
	s.convoAction(w, r, func(ctx context.Context, c Chat, id string) error {
		_, err := c.UnmuteConvo(ctx, id)
		return err
	}, convoNotice("unmuted"))
}

// Read is POST /convos/{id}/read: marks the conversation read up to the
// form's "message" (the newest message the page showed; the whole
// conversation without it). It is the only way a conversation is marked
// read: dm.js posts it once the page is visible and when a message arrives
// while it is (204), the Mark read button without JavaScript (back to the
// page with a notice).
func (s *Pages) Read(w http.ResponseWriter, r *http.Request) {
	s.convoAction(w, r, func(ctx context.Context, c Chat, id string) error {
		if err := parseDMForm(w, r); err != nil {
			return err
		}
		mid := r.PostForm.Get("message")
		if !validID(mid) {
			mid = ""
		}
		_, err := c.UpdateRead(ctx, id, mid)
		return err
	}, convoNotice("read"))
}

// DeleteMessage is POST /convos/{id}/messages/{mid}/delete: deletes the
// message for the viewer only.
func (s *Pages) DeleteMessage(w http.ResponseWriter, r *http.Request) {
	mid := r.PathValue("mid")
	s.convoAction(w, r, func(ctx context.Context, c Chat, id string) error {
		if !validID(mid) {
			return apperr.New(apperr.Invalid, "No message was given.")
		}
		_, err := c.DeleteMessageForSelf(ctx, id, mid)
		return err
	}, func(id string) string { return messageURL(views.ConvoURL(id)+"?notice=deleted", mid) })
}

// AddReaction is POST /convos/{id}/messages/{mid}/reactions (form field
// value: one emoji). A refusal (not one emoji, the limit of reactions
// reached, a deleted message) is shown on the page with the message's
// actions open.
func (s *Pages) AddReaction(w http.ResponseWriter, r *http.Request) {
	s.reaction(w, r, true)
}

// RemoveReaction is POST /convos/{id}/messages/{mid}/reactions/remove.
func (s *Pages) RemoveReaction(w http.ResponseWriter, r *http.Request) {
	s.reaction(w, r, false)
}

func (s *Pages) reaction(w http.ResponseWriter, r *http.Request, add bool) {
	acct, c, ok := s.dmClient(w, r)
	if !ok {
		return
	}
	id, ok := convoIDFromPath(r)
	mid := r.PathValue("mid")
	if !ok || !validID(mid) {
		s.kit.Error(w, r, errNoConvo)
		return
	}
	var err error
	if err = parseDMForm(w, r); err == nil {
		value := strings.TrimSpace(r.PostForm.Get("value"))
		ctx, cancel := s.stepCtx(r, kit.ReloadReserve)
		defer cancel()
		if add {
			_, err = c.AddReaction(ctx, id, mid, value)
		} else {
			_, err = c.RemoveReaction(ctx, id, mid, value)
		}
	}
	if err != nil {
		s.kit.Error(w, r, err, s.onConvo(w, r, acct, c, id, "", mid))
		return
	}
	s.dm.invalidate(acct.DID)
	kit.Redirect(w, r, messageURL(views.ConvoURL(id), mid))
}

// ReadAll is POST /convos/read-all: marks every accepted conversation
// read.
func (s *Pages) ReadAll(w http.ResponseWriter, r *http.Request) {
	acct, c, ok := s.dmClient(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()
	_, err := c.UpdateAllRead(ctx, views.StatusAccepted)
	s.dm.invalidate(acct.DID)
	if err != nil {
		s.kit.Error(w, r, err)
		return
	}
	kit.Redirect(w, r, noticeURL("/", "allread"))
}

// After an action the page reloads (PRG) and focus would start over at the
// top: the redirect's fragment says where the person goes on instead. The
// browser (or app.js) focuses its target, and its notice is read out.
//
// noticeURL is page with the notice for code (dmNotice), focused.
func noticeURL(page, code string) string { return page + "?notice=" + code + "#" + views.NoticeID }

// messageURL is a conversation page (with its query) at the message acted on.
func messageURL(page, mid string) string { return page + "#" + views.MessageDOMID(mid) }
