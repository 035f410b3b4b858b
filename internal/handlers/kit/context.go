package kit

import (
	"context"
	"crypto/rand"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/websession"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	viewerKey
)

// RequestID returns the id LogRequests gave this request, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// Viewer is who is looking at a page: the active account (nil when
// signed out) and every account signed in in this browser.
type Viewer struct {
	Current  *websession.Account
	Accounts []websession.Account
}

// ViewerFrom returns the viewer LoadSession put into ctx (zero when none).
func ViewerFrom(ctx context.Context) Viewer {
	v, _ := ctx.Value(viewerKey).(Viewer)
	return v
}

// Current returns the active account of the request, or nil.
func Current(ctx context.Context) *websession.Account { return ViewerFrom(ctx).Current }

func randomString(n int, enc func([]byte) string) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return enc(b)
}

// APIClients gives the pages an XRPC client acting as a signed-in account
// (*oauth.Service implements it). Errors are *apperr.Error (Unauthorized
// SessionExpired when the session is gone).
type APIClients interface {
	APIClient(ctx context.Context, acct websession.Account) (*atclient.APIClient, error)
}
