package dm

import (
	"context"
	"errors"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/websession"
	"github.com/skydm/skydm/internal/xrpcerr"
)

// NewChatClients returns the ChatClients of the DM pages: for each request,
// a chatproxy.Client over the account's API client from apis (the
// process's one live OAuth session, *oauth.Service), proxied to the chat
// service serviceRef; the chat declaration is read and written on the
// account's PDS through the same client. The clients share gate (nil → a
// gate of their own; pass the live poller's to share what it learns):
// while an account's PDS or chat service has said to wait, its pages
// answer from that without calling again. opts apply to every
// chatproxy.Client made.
func NewChatClients(apis kit.APIClients, serviceRef string, gate *chatproxy.Gate, opts ...chatproxy.Option) ChatClients {
	if gate == nil {
		gate = chatproxy.NewGate(nil)
	}
	return proxyClients{apis: apis, ref: serviceRef, gate: gate, opts: opts}
}

type proxyClients struct {
	apis kit.APIClients
	ref  string
	gate *chatproxy.Gate
	opts []chatproxy.Option
}

// Chat returns the chat client of acct, or the *apperr.Error of the
// session lookup (Unauthorized SessionExpired when it is gone).
func (p proxyClients) Chat(ctx context.Context, acct websession.Account) (Chat, error) {
	api, err := p.apis.APIClient(ctx, acct)
	if err != nil {
		return nil, err
	}
	opts := append(p.opts[:len(p.opts):len(p.opts)], chatproxy.WithGate(p.gate, acct.DID.String()))
	return proxyChat{Client: chatproxy.New(api, p.ref, opts...), api: api}, nil
}

// proxyChat is a *chatproxy.Client plus the repository calls of the chat
// settings.
type proxyChat struct {
	*chatproxy.Client
	api *atclient.APIClient
}

// ForRecipient returns a copy whose refusals name the other person.
func (c proxyChat) ForRecipient(name string) Chat {
	return proxyChat{Client: c.Client.ForRecipient(name), api: c.api}
}

func (c proxyChat) repo() string {
	if c.api.AccountDID == nil {
		return ""
	}
	return c.api.AccountDID.String()
}

// Declaration reads chat.bsky.actor.declaration/self from the account's
// PDS; a missing record is a zero Declaration. Errors are *apperr.Error.
func (c proxyChat) Declaration(ctx context.Context) (Declaration, error) {
	var out struct {
		CID   *string        `json:"cid"`
		Value map[string]any `json:"value"`
	}
	err := c.api.Get(ctx, "com.atproto.repo.getRecord", map[string]any{
		"repo": c.repo(), "collection": declarationType, "rkey": "self",
	}, &out)
	var apiErr *atclient.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Name == "RecordNotFound":
		return Declaration{}, nil
	case err != nil:
		return Declaration{}, repoError(err)
	}
	return Declaration{Value: out.Value, CID: str(out.CID)}, nil
}

// SaveDeclaration writes d.Value as chat.bsky.actor.declaration/self,
// swapping d.CID when set. Errors are *apperr.Error (Conflict when the
// record changed meanwhile).
func (c proxyChat) SaveDeclaration(ctx context.Context, d Declaration) error {
	in := map[string]any{"repo": c.repo(), "collection": declarationType, "rkey": "self", "record": d.Value}
	if d.CID != "" {
		in["swapRecord"] = d.CID
	}
	err := c.api.Post(ctx, "com.atproto.repo.putRecord", in, nil)
	var apiErr *atclient.APIError
	if errors.As(err, &apiErr) && apiErr.Name == "InvalidSwap" {
		return apperr.Wrap(err, apperr.Conflict, errDeclarationChanged.Message)
	}
	if err != nil {
		return repoError(err)
	}
	return nil
}

// repoError maps a failed call to the account's PDS to an *apperr.Error
// (xrpcerr, the one mapper of PDS failures).
func repoError(err error) error {
	return xrpcerr.Map(err, xrpcerr.Words{
		Forbidden:     "skydm may not change your settings. Sign in again and allow it.",
		Refused:       "Your PDS did not accept the change.",
		RefusedReason: chatproxy.ReasonInvalidRequest,
	})
}
