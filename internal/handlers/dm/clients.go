package dm

import (
	"context"
	"errors"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/websession"
	"github.com/skydm/skydm/internal/xrpcerr"
)

// Access is what the DM pages need of *chataccess.Service: the chat
// client of a signed-in account and its PDS client (for the chat
// declaration), or the *apperr.Error saying why not (SessionExpired,
// ScopeMissing).
type Access interface {
	ForAccount(ctx context.Context, acct websession.Account) (*chatproxy.Client, *atclient.APIClient, error)
}

// NewChatClients returns the ChatClients of the DM pages, each request's
// made by access (the one way to a chat client: scope check, chat
// service, the rate-limit gate shared with live updates and the outbox).
func NewChatClients(access Access) ChatClients { return proxyClients{access} }

type proxyClients struct{ access Access }

// Chat returns the chat client of acct, or access's *apperr.Error.
func (p proxyClients) Chat(ctx context.Context, acct websession.Account) (Chat, error) {
	c, api, err := p.access.ForAccount(ctx, acct)
	if err != nil {
		return nil, err
	}
	return proxyChat{Client: c, api: api}, nil
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
