package kit

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/views"
)

// ErrorOption changes how Error answers.
type ErrorOption func(*errorAnswer)

type errorAnswer struct {
	form  func(status int, msg string)
	also  []apperr.Code
	retry bool
	json  func(msg string) any
}

// Form re-renders the form that failed, with the message next to its
// field and the draft kept, when the error belongs there (OnForm); show
// gets the status and the message for the person. also names the codes
// this form shows next to its field although OnForm sends them to the
// error page (e.g. NotFound where the field names an account).
func Form(show func(status int, msg string), also ...apperr.Code) ErrorOption {
	return func(a *errorAnswer) { a.form, a.also = show, also }
}

// Retry offers "Try again" (the request's own address) on the error page
// of a GET that failed upstream (Unavailable, RateLimited).
func Retry() ErrorOption { return func(a *errorAnswer) { a.retry = true } }

// JSON gives the body that answers a script (Accept: application/json);
// body gets the message for the person. Without it a script gets the
// HTML answer.
func JSON(body func(msg string) any) ErrorOption { return func(a *errorAnswer) { a.json = body } }

// Error is the one error path: every failure that reaches a person goes
// through it (model: benbjohnson/wtf's http.Error). In order:
//
//   - nothing is written to a client that went away (logged at INFO);
//   - it logs by one rule (logFailure): Internal at ERROR, Unavailable and
//     RateLimited at WARN, with the request id; nothing else;
//   - Retry-After is set for a RateLimited or Unavailable err with a time;
//   - a script (Accept: application/json) gets the JSON option's body;
//   - err is shown next to the form (Form option) when OnForm says so;
//   - an ended session (Unauthorized) redirects to /signin;
//   - otherwise the error page: apperr.MessageOf(err) with the status for
//     its code (the text of err itself never reaches the page), "sign in
//     again" for missing DM access (Forbidden ScopeMissing), "Try again"
//     with the Retry option.
func (k *Kit) Error(w http.ResponseWriter, r *http.Request, err error, opts ...ErrorOption) {
	if err == nil {
		err = apperr.Wrap(errors.New("kit.Error called with a nil error"), apperr.Internal, "")
	}
	if k.clientGone(r) {
		return
	}
	var a errorAnswer
	for _, o := range opts {
		o(&a)
	}
	code := apperr.CodeOf(err)
	status := apperr.Status(code)
	k.logFailure(r, err)
	now := k.Now()
	setRetryAfter(w, err, now)
	msg := humanError(err, now, k.Loc(r))
	if a.json != nil && WantsJSON(r) {
		WriteJSON(k, w, status, a.json(msg))
		return
	}
	if a.form != nil && (OnForm(err) || slices.Contains(a.also, code)) {
		a.form(status, msg)
		return
	}
	if code == apperr.Unauthorized {
		k.toSignIn(w, r, err)
		return
	}
	ev := views.ErrorView{Status: status, Title: errorTitle(code), Message: msg}
	if code == apperr.Internal || code == apperr.Unavailable {
		ev.RequestID = RequestID(r.Context())
	}
	if a.retry && r.Method == http.MethodGet && (code == apperr.Unavailable || code == apperr.RateLimited) {
		ev.Retry = safePath(r.URL.RequestURI())
	}
	if cur := Current(r.Context()); cur != nil && code == apperr.Forbidden && apperr.ReasonOf(err) == apperr.ReasonScopeMissing {
		ev.SignInAgain = cur.DID.String()
		ev.Title = "DM access needed"
		ev.Message = "To read and send DMs, skydm needs your permission for Bluesky Chat. Sign in again and allow “Chat” on your server's consent screen."
	}
	k.Render(w, r, status, views.ErrorPage(k.Page(r, ev.Title, ""), ev))
}

// OnForm reports whether err is shown next to the form that caused it
// (the page stays, with the draft) rather than on the error page: every
// refusal and upstream failure except an ended session, missing access
// (ScopeMissing), something that is gone (NotFound), and our own bugs.
func OnForm(err error) bool {
	switch apperr.CodeOf(err) {
	case apperr.Unauthorized, apperr.Internal, apperr.NotFound:
		return false
	case apperr.Forbidden:
		return apperr.ReasonOf(err) != apperr.ReasonScopeMissing
	}
	return true
}

// toSignIn redirects an ended session to /signin, saying it expired and
// with the account's name filled in when it did.
func (k *Kit) toSignIn(w http.ResponseWriter, r *http.Request, err error) {
	q := url.Values{}
	if apperr.ReasonOf(err) == apperr.ReasonSessionExpired {
		q.Set("reason", "expired")
		if cur := Current(r.Context()); cur != nil {
			q.Set("hint", views.Account{DID: cur.DID.String(), Handle: cur.Handle}.Name())
		}
	}
	target := "/signin"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	Redirect(w, r, target)
}

// logFailure is the one rule for what a failure logs: our bugs at ERROR,
// an upstream that failed or asked us to wait at WARN, both with the
// request id; refusals and bad input are the person's answer, not logged.
func (k *Kit) logFailure(r *http.Request, err error) {
	ctx := r.Context()
	switch apperr.CodeOf(err) {
	case apperr.Internal:
		k.Log.ErrorContext(ctx, "internal error", "err", err, "method", r.Method, "path", r.URL.Path, "request_id", RequestID(ctx))
	case apperr.Unavailable, apperr.RateLimited:
		k.Log.WarnContext(ctx, "upstream unavailable", "err", err, "method", r.Method, "path", r.URL.Path, "request_id", RequestID(ctx))
	}
}

// clientGone reports whether the browser went away before its answer (the
// request context was cancelled by the client, not ended by the request's
// deadline). That is no error of ours or upstream: it is logged at info and
// nothing is written. Every answer (pages, error pages, inline errors)
// checks it.
func (k *Kit) clientGone(r *http.Request) bool {
	if !errors.Is(r.Context().Err(), context.Canceled) {
		return false
	}
	k.Log.InfoContext(r.Context(), "client went away before the answer", "method", r.Method, "path", r.URL.Path, "request_id", RequestID(r.Context()))
	return true
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

// unknownRetryWait is how long a rate-limited person is told to wait when
// the service did not say: the reference PDS drops Retry-After and
// ratelimit-reset from proxied errors.
const unknownRetryWait = time.Minute

// humanError returns the message for err, with when to retry for rate
// limits, in the reader's time zone: "You can try again in 42 seconds (at
// 15:04:05).", "… in about 3 minutes (at 15:07).", or about a minute when
// the service did not say. The wait is capped at apperr.MaxRetryWait.
func humanError(err error, now time.Time, loc *time.Location) string {
	msg := apperr.MessageOf(err)
	e := apperr.As(err)
	if e == nil || apperr.CodeOf(err) != apperr.RateLimited {
		return msg
	}
	if e.RetryAt.IsZero() {
		return msg + " You can try again in about a minute (at " + now.Add(unknownRetryWait).In(loc).Format("15:04") + ")."
	}
	secs := apperr.RetryAfterSeconds(e.RetryAt, now)
	if secs <= 0 {
		return msg + " You can try again now."
	}
	at := now.Add(time.Duration(secs) * time.Second).In(loc)
	if secs < 120 {
		unit := " seconds"
		if secs == 1 {
			unit = " second"
		}
		return msg + " You can try again in " + strconv.Itoa(secs) + unit + " (at " + at.Format("15:04:05") + ")."
	}
	return msg + " You can try again in about " + strconv.Itoa((secs+30)/60) + " minutes (at " + at.Format("15:04") + ")."
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

// safePath returns path when it is a same-site path ("/…", not "//…"),
// else "/".
func safePath(path string) string {
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") || strings.HasPrefix(path, "/\\") {
		return "/"
	}
	return path
}
