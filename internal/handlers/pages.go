package handlers

import (
	"github.com/skydm/skydm/internal/handlers/kit"
	"net/http"

	"github.com/skydm/skydm/views"
)

// noChatScopeNotice is shown while the active account's session lacks
// transition:chat.bsky.
const noChatScopeNotice = "This account did not grant skydm access to your DMs. Sign in again and allow “Chat” on your server's consent screen."

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	var h views.Home
	if cur := kit.Current(r.Context()); cur != nil && !cur.HasChatScope {
		h.Notice = noChatScopeNotice
	}
	s.kit.Render(w, r, http.StatusOK, views.HomePage(s.kit.Page(r, "", "home"), h))
}

// signInNotice returns the notice /signin?reason= shows: the query picks
// one of these, it never supplies text.
func signInNotice(reason string) string {
	switch reason {
	case "expired":
		return "Your session has ended. Please sign in again."
	default:
		return ""
	}
}

func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := views.SignInForm{Identifier: q.Get("hint"), Notice: signInNotice(q.Get("reason"))}
	s.renderSignIn(w, r, http.StatusOK, f)
}

func (s *Server) renderSignIn(w http.ResponseWriter, r *http.Request, status int, f views.SignInForm) {
	title := "Sign in"
	if kit.Current(r.Context()) != nil {
		title = "Add another account"
	}
	s.kit.Render(w, r, status, views.SignInPage(s.kit.Page(r, title, "signin"), f))
}

func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	if kit.Current(r.Context()) == nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	s.kit.Render(w, r, http.StatusOK, views.AccountPage(s.kit.Page(r, "Accounts", "accounts")))
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.health != nil {
		if err := s.health(r.Context()); err != nil {
			s.kit.Log.ErrorContext(r.Context(), "health check failed", "err", err, "request_id", kit.RequestID(r.Context()))
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("unavailable\n"))
			return
		}
	}
	w.Write([]byte("ok\n"))
}
