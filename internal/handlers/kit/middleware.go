package kit

import (
	"context"
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

// LogRequests gives each request an id and logs one line when it is done:
// method, path (never the query: the OAuth callback's carries a code),
// status, size and duration.
func (k *Kit) LogRequests(next http.Handler) http.Handler {
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
			k.Log.InfoContext(r.Context(), "request",
				"method", r.Method, "path", r.URL.Path, "status", status, "bytes", rec.bytes,
				"duration", time.Since(start), "request_id", id)
		}()
		next.ServeHTTP(rec, r)
	})
}

// RecoverPanic turns a panic in a handler into the 500 error page (when
// nothing has been written yet) and logs it with its stack.
// http.ErrAbortHandler is passed on: it is how a handler aborts on purpose.
func (k *Kit) RecoverPanic(next http.Handler) http.Handler {
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
			k.Log.ErrorContext(r.Context(), "panic serving request",
				"method", r.Method, "path", r.URL.Path, "panic", p,
				"stack", string(debug.Stack()), "request_id", RequestID(r.Context()))
			if rec.status != 0 {
				panic(http.ErrAbortHandler) // too late for an error page: cut the connection
			}
			k.Error(rec, r, apperr.New(apperr.Internal, ""))
		}()
		next.ServeHTTP(rec, r)
	})
}

// CSP builds the Content-Security-Policy for a nonce.
type CSP struct {
	before, after string
}

// NewCSP returns the policy. Every directive is as tight as the pages allow:
//
//	default-src 'none'                      nothing unless named below
//	script-src 'self' 'nonce-N'             our /static/app.js; the nonce covers any inline script a page adds
//	style-src 'self'                        /static/app.css only; no inline style attributes
//	img-src 'self' <avatar origins>         avatars come from the CDN (or the sandbox PDS)
//	connect-src 'self'                      fetch/SSE to us only
//	form-action 'self'                      forms post to us only (the OAuth hop is a meta refresh, see ContinuePage)
//	frame-ancestors 'none', base-uri 'none', object-src 'none', manifest-src 'self'
func NewCSP(imageOrigins []string) CSP {
	img := "'self'"
	if len(imageOrigins) > 0 {
		img += " " + strings.Join(imageOrigins, " ")
	}
	return CSP{
		before: "default-src 'none'; script-src 'self' 'nonce-",
		after: "'; style-src 'self'; img-src " + img +
			"; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; manifest-src 'self'",
	}
}

func (c CSP) header(nonce string) string { return c.before + nonce + c.after }

// SecureHeaders sets the security headers on every response and puts a
// fresh CSP nonce into the request context, where templ finds it
// (templ.GetNonce).
func SecureHeaders(csp CSP, hsts bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := randomString(18, base64.RawURLEncoding.EncodeToString)
		h := w.Header()
		h.Set("Content-Security-Policy", csp.header(n))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
		if hsts {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		next.ServeHTTP(w, r.WithContext(templ.WithNonce(r.Context(), n)))
	})
}

// LoadSession puts the browser's signed-in accounts into the context and
// keeps the active one from idling out (a cookie refresh, not a state
// change anyone could abuse). The rule for "signed in": an account whose
// OAuth session has ended (active says false) is not, on any page, and is
// dropped from the cookie; when active can't tell (an error), the account
// is kept (a database hiccup must not sign people out).
func (k *Kit) LoadSession(sessions SessionLoader, active func(ctx context.Context, a websession.Account) (bool, error), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v Viewer
		keep := func(a websession.Account) bool {
			ok, err := active(r.Context(), a)
			if err != nil {
				k.Log.ErrorContext(r.Context(), "checking a signed-in session", "err", err, "did", a.DID.String(), "request_id", RequestID(r.Context()))
				return true
			}
			return ok
		}
		cur, ok, accounts, err := sessions.Load(w, r, keep)
		if ok {
			v.Current = &cur
			v.Accounts = accounts
		}
		if err != nil {
			k.Log.ErrorContext(r.Context(), "session touch", "err", err, "request_id", RequestID(r.Context()))
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), viewerKey, v)))
	})
}

// SessionLoader loads the browser's signed-in accounts
// (*websession.Store implements it).
type SessionLoader interface {
	// Load is the active account, every signed-in account and Touch (idle
	// expiry) with one decoding of the cookie; accounts keep refuses are
	// signed out of the browser first.
	Load(w http.ResponseWriter, r *http.Request, keep func(websession.Account) bool) (websession.Account, bool, []websession.Account, error)
}
