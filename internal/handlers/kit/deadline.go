package kit

import (
	"context"
	"net/http"
	"time"
)

// The one deadline of a request, from the request to the answer. Every
// outbound call a handler makes uses the request context, so none can
// outlast it; a step followed by others takes its context from
// BeforeDeadline, which keeps a slice of the deadline for them.
const (
	// PageDeadline bounds every page and form: a person waiting longer
	// than this for an answer has given up on it.
	PageDeadline = 10 * time.Second
	// SignInDeadline bounds POST /oauth/login and GET /oauth/callback. They
	// talk to servers chosen by the person signing in (handle resolution,
	// DID document, PDS and authorization server metadata, PAR; token and
	// DID lookups at the callback), up to five requests one after another,
	// each allowed a few seconds on a slow but working server. 15 s is
	// well inside the http.Server's WriteTimeout (60 s, cmd/web/run.go),
	// so the "too slow" page is always written before the connection is
	// cut.
	SignInDeadline = 15 * time.Second
	// AnswerReserve is kept of a deadline for rendering and writing the
	// answer after the last outbound call.
	AnswerReserve = time.Second
	// ReloadReserve is kept by a conversation action whose failure shows
	// the conversation again (one more getConvo + getMessages).
	ReloadReserve = AnswerReserve + 1500*time.Millisecond
	// SendReserve is kept by a send: the "was it sent anyway" check, then
	// the reload of the conversation with the draft.
	SendReserve = ReloadReserve + 1500*time.Millisecond
)

// WithDeadline puts the deadline d on the request context of next (one
// deadline for the whole request; see PageDeadline).
func WithDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// BeforeDeadline returns ctx bounded to end reserve before the deadline of
// req (the request context), so the steps after this one still fit. With
// less than reserve left, the step gets half of what is left.
func BeforeDeadline(ctx, req context.Context, reserve time.Duration) (context.Context, context.CancelFunc) {
	dl, ok := req.Deadline()
	if !ok {
		dl = time.Now().Add(PageDeadline)
	}
	end := dl.Add(-reserve)
	if now := time.Now(); end.Before(now) {
		end = now.Add(dl.Sub(now) / 2)
	}
	return context.WithDeadline(ctx, end)
}

// TimeLeft is how long the request has until its deadline (a large value
// when it has none).
func TimeLeft(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return time.Hour
	}
	return time.Until(dl)
}
