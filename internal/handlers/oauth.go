package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/views"
)

// maxFormBytes caps the body of every form post.
const maxFormBytes = 16 << 10

// login starts the OAuth flow for the handle, DID or server in the form
// field "identifier". On success it shows ContinuePage, which sends the
// browser on to the authorization server; on failure it shows the sign-in
// form again with the message next to the field and the input kept.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if err := kit.ParseForm(w, r); err != nil {
		s.kit.Error(w, r, err)
		return
	}
	identifier := strings.TrimSpace(r.PostForm.Get("identifier"))
	f := views.SignInForm{Identifier: identifier}
	if identifier == "" {
		f.Error = "Enter your handle (like alice.bsky.social), your DID, or your server's address."
		s.renderSignIn(w, r, http.StatusBadRequest, f)
		return
	}
	authorizeURL, err := s.auth.StartLogin(r.Context(), w, r, identifier)
	err = tooSlow(r, err, hostOf(identifier))
	if err == nil {
		if u, perr := url.Parse(authorizeURL); perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			err = apperr.Wrap(perr, apperr.Internal, "")
			s.kit.Log.ErrorContext(r.Context(), "authorize URL is not an http(s) URL", "request_id", kit.RequestID(r.Context()))
		}
	}
	if err != nil {
		// Every failure of the sign-in form is shown next to its field.
		s.kit.Error(w, r, err, kit.Form(func(status int, msg string) {
			f.Error = msg
			s.renderSignIn(w, r, status, f)
		}, apperr.NotFound, apperr.Internal, apperr.Unauthorized, apperr.Forbidden))
		return
	}
	s.kit.Render(w, r, http.StatusOK, views.ContinuePage(s.kit.Page(r, "", ""), authorizeURL))
}

// callback finishes the OAuth flow, adds the account to this browser and
// goes home (which says so when DM access was not granted).
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	acct, err := s.auth.FinishLogin(r.Context(), w, r)
	if err != nil {
		s.kit.Error(w, r, tooSlow(r, err, hostOf(r.URL.Query().Get("iss"))))
		return
	}
	var replaced string // the session this browser held for the same account
	for _, a := range kit.ViewerFrom(r.Context()).Accounts {
		if a.DID == acct.DID && a.SessionID != acct.SessionID {
			replaced = a.SessionID
		}
	}
	if err := s.sessions.Add(w, r, acct); err != nil {
		s.kit.Error(w, r, err)
		return
	}
	if replaced != "" {
		if err := s.auth.Logout(r.Context(), acct.DID, replaced); err != nil {
			s.kit.Log.WarnContext(r.Context(), "revoking the replaced session failed", "err", err, "did", acct.DID.String(), "request_id", kit.RequestID(r.Context()))
		}
	}
	s.kit.Log.InfoContext(r.Context(), "signed in", "did", acct.DID.String(), "chat_scope", acct.HasChatScope, "request_id", kit.RequestID(r.Context()))
	if s.onSignIn != nil {
		s.onSignIn(r.Context(), acct)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// ReasonServerTooSlow is the Reason of a sign-in cut off by its deadline.
const ReasonServerTooSlow = "ServerTooSlow"

// tooSlow returns err as "your server is too slow" when the request's
// deadline (signInDeadline) passed during it, naming the host that was
// being asked (from the failed request's URL, else fallback), and err
// unchanged otherwise.
func tooSlow(r *http.Request, err error, fallback string) error {
	if err == nil || (!errors.Is(err, context.DeadlineExceeded) && r.Context().Err() != context.DeadlineExceeded) {
		return err
	}
	host := fallback
	var ue *url.Error
	if errors.As(err, &ue) {
		if h := hostOf(ue.URL); h != "" {
			host = h
		}
	}
	msg := "Your server is too slow to answer, so signing in could not finish. Please try again in a while."
	if host != "" {
		msg = "Your server " + host + " is too slow to answer, so signing in could not finish. Please try again in a while."
	}
	return &apperr.Error{Code: apperr.Unavailable, Reason: ReasonServerTooSlow, Message: msg, Err: err}
}

// hostOf returns the host[:port] of an absolute http(s) URL, or "".
func hostOf(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	return u.Host
}

// accountFromForm returns the signed-in account named by the form field
// "did", or the active one when the field is empty.
func accountFromForm(r *http.Request) (did syntax.DID, sessionID string, ok bool) {
	v := kit.ViewerFrom(r.Context())
	if v.Current == nil {
		return "", "", false
	}
	raw := strings.TrimSpace(r.PostForm.Get("did"))
	if raw == "" {
		return v.Current.DID, v.Current.SessionID, true
	}
	for _, a := range v.Accounts {
		if a.DID.String() == raw {
			return a.DID, a.SessionID, true
		}
	}
	if v.Current.DID.String() == raw {
		return v.Current.DID, v.Current.SessionID, true
	}
	return "", "", false
}

// logout signs one account (form field "did", default the active one) out:
// its tokens are revoked and it is removed from this browser.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := kit.ParseForm(w, r); err != nil {
		s.kit.Error(w, r, err)
		return
	}
	did, sessionID, ok := accountFromForm(r)
	if !ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if err := s.auth.Logout(r.Context(), did, sessionID); err != nil {
		// Still forget it here: a server that cannot be reached must not
		// keep someone signed in on this browser.
		s.kit.Log.WarnContext(r.Context(), "logout: revoking the session failed", "err", err, "did", did.String(), "request_id", kit.RequestID(r.Context()))
	}
	if err := s.sessions.Remove(w, r, did); err != nil {
		s.kit.Error(w, r, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// switchAccount makes another signed-in account (form field "did") active.
func (s *Server) switchAccount(w http.ResponseWriter, r *http.Request) {
	if err := kit.ParseForm(w, r); err != nil {
		s.kit.Error(w, r, err)
		return
	}
	if kit.Current(r.Context()) == nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	did, _, ok := accountFromForm(r)
	if !ok {
		s.kit.Error(w, r, apperr.New(apperr.NotFound, "That account is not signed in on this browser."))
		return
	}
	if err := s.sessions.Switch(w, r, did); err != nil {
		s.kit.Error(w, r, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// clientMetadata serves the confidential client's metadata document; 404
// for the loopback client, whose metadata lives in its client_id.
func (s *Server) clientMetadata(w http.ResponseWriter, r *http.Request) {
	if s.clientDocs == nil {
		s.kit.Error(w, r, apperr.New(apperr.NotFound, "There is no page at this address."))
		return
	}
	s.writeJSON(w, r, s.clientDocs.ClientMetadata())
}

// jwks serves the confidential client's public keys; 404 for the loopback
// client.
func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	if s.clientDocs == nil {
		s.kit.Error(w, r, apperr.New(apperr.NotFound, "There is no page at this address."))
		return
	}
	s.writeJSON(w, r, s.clientDocs.JWKS())
}

func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.kit.Error(w, r, apperr.Wrap(err, apperr.Internal, ""))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(b)
}
