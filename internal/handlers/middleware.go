package handlers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/websession"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	nonceKey
	viewerKey
)

// requestID returns the id logRequests gave this request, or "".
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// nonce returns this request's CSP nonce, or "".
func nonce(ctx context.Context) string {
	n, _ := ctx.Value(nonceKey).(string)
	return n
}

// viewer is who is looking at a page: the active account and every account
// signed in in this browser.
type viewer struct {
	current  *websession.Account
	accounts []websession.Account
}

func viewerFrom(ctx context.Context) viewer {
	v, _ := ctx.Value(viewerKey).(viewer)
	return v
}

func randomString(n int, enc func([]byte) string) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return enc(b)
}

// statusRecorder remembers the status and size of a response.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and deadlines (SSE).
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests gives each request an id and logs one line when it is done:
// method, path (never the query: the OAuth callback's carries a code),
// status, size and duration.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := randomString(8, hex.EncodeToString)
		rec := &statusRecorder{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
		defer func() {
			status := rec.status
			switch {
			case status == 0 && errors.Is(r.Context().Err(), context.Canceled):
				status = 499 // the client went away before the answer (nginx's "client closed request")
			case status == 0:
				status = http.StatusOK
			}
			s.log.InfoContext(r.Context(), "request",
				"method", r.Method, "path", r.URL.Path, "status", status, "bytes", rec.bytes,
				"duration", time.Since(start), "request_id", id)
		}()
		next.ServeHTTP(rec, r)
	})
}

// recoverPanic turns a panic in a handler into the 500 error page (when
// nothing has been written yet) and logs it with its stack.
// http.ErrAbortHandler is passed on: it is how a handler aborts on purpose.
func (s *Server) recoverPanic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.ErrorContext(r.Context(), "panic serving request",
				"method", r.Method, "path", r.URL.Path, "panic", p,
				"stack", string(debug.Stack()), "request_id", requestID(r.Context()))
			if rec.status != 0 {
				panic(http.ErrAbortHandler) // too late for an error page: cut the connection
			}
			s.renderError(rec, r, apperr.New(apperr.Internal, ""), "")
		}()
		next.ServeHTTP(rec, r)
	})
}

// cspPolicy builds the Content-Security-Policy for a nonce.
type cspPolicy struct {
	before, after string
}

// newCSP returns the policy. Every directive is as tight as the pages allow:
//
//	default-src 'none'                      nothing unless named below
//	script-src 'self' 'nonce-N'             our /static/app.js; the nonce covers any inline script a page adds
//	style-src 'self'                        /static/app.css only; no inline style attributes
//	img-src 'self' <avatar origins>         avatars come from the CDN (or the sandbox PDS)
//	connect-src 'self'                      fetch/SSE to us only
//	form-action 'self'                      forms post to us only (the OAuth hop is a meta refresh, see ContinuePage)
//	frame-ancestors 'none', base-uri 'none', object-src 'none', manifest-src 'self'
func newCSP(imageOrigins []string) cspPolicy {
	img := "'self'"
	if len(imageOrigins) > 0 {
		img += " " + strings.Join(imageOrigins, " ")
	}
	return cspPolicy{
		before: "default-src 'none'; script-src 'self' 'nonce-",
		after: "'; style-src 'self'; img-src " + img +
			"; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; manifest-src 'self'",
	}
}

func (c cspPolicy) header(nonce string) string { return c.before + nonce + c.after }

// secureHeaders sets the security headers on every response and puts a
// fresh CSP nonce into the request context (where templ finds it too).
func (s *Server) secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := randomString(18, base64.RawURLEncoding.EncodeToString)
		h := w.Header()
		h.Set("Content-Security-Policy", s.csp.header(n))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
		if s.hsts {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		ctx := context.WithValue(r.Context(), nonceKey, n)
		ctx = templ.WithNonce(ctx, n)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// loadSession puts the browser's signed-in accounts into the context and
// keeps the active one from idling out (a cookie refresh, not a state
// change anyone could abuse). The rule for "signed in": an account whose
// OAuth session has ended is not, on any page, and is dropped from the
// cookie; when the store can't tell, the account is kept (a database
// hiccup must not sign people out).
func (s *Server) loadSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v viewer
		active := func(a websession.Account) bool {
			ok, err := s.auth.SessionActive(r.Context(), a.DID, a.SessionID)
			if err != nil {
				s.log.ErrorContext(r.Context(), "checking a signed-in session", "err", err, "did", a.DID.String(), "request_id", requestID(r.Context()))
				return true
			}
			return ok
		}
		cur, ok, accounts, err := s.sessions.Load(w, r, active)
		if ok {
			v.current = &cur
			v.accounts = accounts
		}
		if err != nil {
			s.log.ErrorContext(r.Context(), "session touch", "err", err, "request_id", requestID(r.Context()))
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), viewerKey, v)))
	})
}

// The one deadline of a request, from the request to the answer. Every
// outbound call a handler makes uses the request context, so none can
// outlast it; a step followed by others takes its context from
// beforeDeadline, which keeps a slice of the deadline for them.
const (
	// pageDeadline bounds every page and form: a person waiting longer
	// than this for an answer has given up on it.
	pageDeadline = 10 * time.Second
	// signInDeadline bounds POST /oauth/login and GET /oauth/callback. They
	// talk to servers chosen by the person signing in (handle resolution,
	// DID document, PDS and authorization server metadata, PAR; token and
	// DID lookups at the callback), up to five requests one after another,
	// each allowed a few seconds on a slow but working server. 15 s is
	// well inside the http.Server's WriteTimeout (60 s, cmd/web/run.go),
	// so the "too slow" page is always written before the connection is
	// cut.
	signInDeadline = 15 * time.Second
	// answerReserve is kept of a deadline for rendering and writing the
	// answer after the last outbound call.
	answerReserve = time.Second
	// reloadReserve is kept by a conversation action whose failure shows
	// the conversation again (one more getConvo + getMessages).
	reloadReserve = answerReserve + 1500*time.Millisecond
	// sendReserve is kept by a send: the "was it sent anyway" check, then
	// the reload of the conversation with the draft.
	sendReserve = reloadReserve + 1500*time.Millisecond
)

// withDeadline puts the deadline d on the request context of next (one
// deadline for the whole request; see pageDeadline).
func withDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// beforeDeadline returns ctx bounded to end reserve before the deadline of
// req (the request context), so the steps after this one still fit. With
// less than reserve left, the step gets half of what is left.
func beforeDeadline(ctx, req context.Context, reserve time.Duration) (context.Context, context.CancelFunc) {
	dl, ok := req.Deadline()
	if !ok {
		dl = time.Now().Add(pageDeadline)
	}
	end := dl.Add(-reserve)
	if now := time.Now(); end.Before(now) {
		end = now.Add(dl.Sub(now) / 2)
	}
	return context.WithDeadline(ctx, end)
}

// timeLeft is how long the request has until its deadline (a large value
// when it has none).
func timeLeft(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return time.Hour
	}
	return time.Until(dl)
}
