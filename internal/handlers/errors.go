package handlers

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/a-h/templ"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/views"
)

// Reasons the error path treats specially.
const (
	reasonSessionExpired = "SessionExpired"
	reasonScopeMissing   = "ScopeMissing"
)

// Error is the one error path. It logs internal and upstream failures with
// the request id and renders the error page with apperr.MessageOf(err) and
// the status for its code; the text of err itself never reaches the page.
// An expired session (Unauthorized) redirects to /signin instead; a missing
// OAuth scope (Forbidden, ScopeMissing) offers to sign in again with DM
// access.
func (s *Server) Error(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		err = apperr.Wrap(errors.New("handlers.Error called with a nil error"), apperr.Internal, "")
	}
	code := apperr.CodeOf(err)
	if code == apperr.Unauthorized {
		q := url.Values{}
		if apperr.ReasonOf(err) == reasonSessionExpired {
			q.Set("reason", "expired")
			if cur := viewerFrom(r.Context()).current; cur != nil {
				q.Set("hint", views.Account{DID: cur.DID.String(), Handle: cur.Handle}.Name())
			}
		}
		target := "/signin"
		if len(q) > 0 {
			target += "?" + q.Encode()
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	signInAgain := ""
	if code == apperr.Forbidden && apperr.ReasonOf(err) == reasonScopeMissing {
		if cur := viewerFrom(r.Context()).current; cur != nil {
			signInAgain = cur.DID.String()
		}
	}
	s.renderError(w, r, err, signInAgain)
}

// renderError logs err when it is ours or an upstream failure and writes the
// error page.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error, signInAgain string) {
	s.renderErrorRetry(w, r, err, signInAgain, "")
}

// renderErrorRetry is renderError with a "Try again" link to retry (a
// same-site path; "" → none).
func (s *Server) renderErrorRetry(w http.ResponseWriter, r *http.Request, err error, signInAgain, retry string) {
	if s.clientGone(r) {
		return
	}
	code := apperr.CodeOf(err)
	status := apperr.Status(code)
	id := requestID(r.Context())
	switch code {
	case apperr.Internal:
		s.log.ErrorContext(r.Context(), "internal error", "err", err, "method", r.Method, "path", r.URL.Path, "request_id", id)
	case apperr.Unavailable:
		s.log.WarnContext(r.Context(), "upstream unavailable", "err", err, "method", r.Method, "path", r.URL.Path, "request_id", id)
	}
	now := s.now()
	setRetryAfter(w, err, now)
	ev := views.ErrorView{
		Status:      status,
		Title:       errorTitle(code),
		Message:     humanError(err, now, s.loc(r)),
		SignInAgain: signInAgain,
		Retry:       retry,
	}
	if code == apperr.Internal || code == apperr.Unavailable {
		ev.RequestID = id
	}
	if signInAgain != "" {
		ev.Title = "DM access needed"
		ev.Message = "To read and send DMs, skydm needs your permission for Bluesky Chat. Sign in again and allow “Chat” on your server's consent screen."
	}
	s.render(w, r, status, views.ErrorPage(s.page(r, ev.Title, ""), ev))
}

// setRetryAfter sets Retry-After (whole seconds, capped at
// apperr.MaxRetryWait) when err is RateLimited or Unavailable with a
// RetryAt in the future. Every answer that sets the header uses it.
func setRetryAfter(w http.ResponseWriter, err error, now time.Time) {
	e := apperr.As(err)
	if e == nil || (e.Code != apperr.RateLimited && e.Code != apperr.Unavailable) {
		return
	}
	if secs := apperr.RetryAfterSeconds(e.RetryAt, now); secs > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
}

// now is the pages' clock (DMs.Now when set).
func (s *Server) now() time.Time {
	if s.dm != nil {
		return s.dm.now()
	}
	return time.Now()
}

// clientGone reports whether the browser went away before its answer (the
// request context was cancelled by the client, not ended by the request's
// deadline). That is no error of ours or upstream: it is logged at info and
// nothing is written. Every answer (pages, error pages, inline errors)
// checks it.
func (s *Server) clientGone(r *http.Request) bool {
	if !errors.Is(r.Context().Err(), context.Canceled) {
		return false
	}
	s.log.InfoContext(r.Context(), "client went away before the answer", "method", r.Method, "path", r.URL.Path, "request_id", requestID(r.Context()))
	return true
}

func errorTitle(code apperr.Code) string {
	switch code {
	case apperr.Invalid:
		return "That did not work"
	case apperr.NotFound:
		return "Not found"
	case apperr.Unauthorized:
		return "Please sign in"
	case apperr.Forbidden:
		return "Not allowed"
	case apperr.Conflict:
		return "That could not be done"
	case apperr.RateLimited:
		return "Slow down"
	case apperr.TooLarge:
		return "Too long"
	case apperr.Unavailable:
		return "Service unavailable"
	default:
		return "Something went wrong"
	}
}

// maxPooledPage is the largest page buffer render keeps for reuse.
const maxPooledPage = 256 << 10

// render writes a page with status. The page is rendered into a buffer first
// so a template failure still becomes a clean 500. It renders without the
// request's cancellation: the answer to a request whose deadline has just
// passed (the "not answering" page) must still be written.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	if s.clientGone(r) {
		return
	}
	buf, _ := s.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer func() {
		if buf.Cap() <= maxPooledPage {
			buf.Reset()
			s.bufs.Put(buf)
		}
	}()
	if err := c.Render(context.WithoutCancel(r.Context()), buf); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "err", err, "path", r.URL.Path, "request_id", requestID(r.Context()))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("Something went wrong on our side. It has been logged.\n"))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// page returns the layout data for this request.
func (s *Server) page(r *http.Request, title, nav string) views.Page {
	v := viewerFrom(r.Context())
	p := views.Page{Title: title, Nav: nav, Assets: s.assets.urls()}
	if v.current == nil {
		return p
	}
	cur := toView(*v.current, true)
	p.Current = &cur
	p.Accounts = append(p.Accounts, cur)
	for _, a := range v.accounts {
		if a.DID != v.current.DID {
			p.Accounts = append(p.Accounts, toView(a, false))
		}
	}
	return p
}
