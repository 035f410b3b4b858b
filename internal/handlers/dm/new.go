package dm

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/views"
)

// NewConvo is GET /convos/new: the form asking whom to message.
func (s *Pages) NewConvo(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := s.dmClient(w, r); !ok {
		return
	}
	s.renderNewConvo(w, r, http.StatusOK, views.NewConvoVM{Handle: strings.TrimSpace(r.URL.Query().Get("handle"))})
}

func (s *Pages) renderNewConvo(w http.ResponseWriter, r *http.Request, status int, vm views.NewConvoVM) {
	vm.Assets = s.dmAssets()
	s.kit.Render(w, r, status, views.NewConvoPage(s.dmPage(r, "New message", s.cachedUnread(r)), vm))
}

// NewConvoPost is POST /convos/new: resolves the handle (or DID), asks
// the chat service whether the two can chat (getConvoAvailability), and
// opens the existing conversation, creates one (getConvoForMembers: nothing
// is sent until the person writes), or explains why not: the recipient
// only accepts messages from people they follow, accepts none, or one has
// blocked the other. The reason comes from getConvoForMembers, which
// refuses without creating anything.
func (s *Pages) NewConvoPost(w http.ResponseWriter, r *http.Request) {
	acct, c, ok := s.dmClient(w, r)
	if !ok {
		return
	}
	if err := parseDMForm(w, r); err != nil {
		s.kit.Error(w, r, err)
		return
	}
	typed := strings.TrimSpace(r.PostForm.Get("handle"))
	vm := views.NewConvoVM{Handle: typed}
	// The field names the account, so an unknown one (NotFound) is shown
	// next to it.
	onForm := kit.Form(func(status int, msg string) {
		vm.Error = msg
		s.renderNewConvo(w, r, status, vm)
	}, apperr.NotFound)
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()

	did, name, err := s.lookupRecipient(ctx, typed)
	if err != nil {
		s.kit.Error(w, r, err, onForm)
		return
	}
	if did == acct.DID {
		s.kit.Error(w, r, apperr.New(apperr.Invalid, "That is you. Enter the handle of the person you want to message."), onForm)
		return
	}
	members := []string{did.String()}
	c = c.ForRecipient(name)
	avail, err := c.GetConvoAvailability(ctx, members)
	if err != nil {
		s.kit.Error(w, r, err, onForm)
		return
	}
	if avail.Convo != nil && avail.Convo.Id != "" {
		kit.Redirect(w, r, views.ConvoLatestURL(avail.Convo.Id))
		return
	}
	convo, err := c.GetConvoForMembers(ctx, members)
	if err == nil && !avail.CanChat {
		s.kit.Log.InfoContext(r.Context(), "getConvoForMembers succeeded although getConvoAvailability said no", "request_id", kit.RequestID(r.Context()))
	}
	if err != nil {
		s.kit.Error(w, r, err, onForm)
		return
	}
	s.dm.invalidate(acct.DID)
	kit.Redirect(w, r, views.ConvoLatestURL(convo.Id))
}

var errNoSuchHandle = apperr.New(apperr.NotFound, "We could not find that account. Check the handle and try again.")

// lookupRecipient resolves what the person typed ("@alice.bsky.social",
// "alice.bsky.social" or a DID) to a DID and the name to use in messages.
// Errors are *apperr.Error: Invalid for something that is not a handle,
// NotFound for an unknown handle, Unavailable when resolution failed.
func (s *Pages) lookupRecipient(ctx context.Context, typed string) (syntax.DID, string, error) {
	in := strings.TrimPrefix(strings.TrimSpace(typed), "@")
	if in == "" {
		return "", "", apperr.New(apperr.Invalid, "Enter the handle of the person you want to message, like alice.bsky.social.")
	}
	dir := s.dm.cfg.Directory
	var ident *identity.Identity
	var err error
	if did, derr := syntax.ParseDID(in); derr == nil {
		ident, err = dir.LookupDID(ctx, did)
	} else if h, herr := syntax.ParseHandle(strings.ToLower(in)); herr == nil {
		ident, err = dir.LookupHandle(ctx, h)
	} else {
		return "", "", apperr.New(apperr.Invalid, "“"+views.Shorten(in, 64)+"” is not a handle. Handles look like alice.bsky.social.")
	}
	switch {
	case errors.Is(err, identity.ErrHandleNotFound), errors.Is(err, identity.ErrDIDNotFound),
		errors.Is(err, identity.ErrHandleMismatch), errors.Is(err, identity.ErrHandleNotDeclared):
		return "", "", apperr.Wrap(err, apperr.NotFound, errNoSuchHandle.Message)
	case err != nil:
		return "", "", apperr.Wrap(err, apperr.Unavailable, "We could not look up that handle just now. Please try again in a moment.")
	}
	name := ident.Handle.String()
	if ident.Handle == syntax.HandleInvalid || name == "" {
		name = ident.DID.String()
	}
	return ident.DID, name, nil
}
