// Package chataccess turns a signed-in account into a chat client: the one
// place that checks the session was granted DM access, names the chat
// service to proxy to, and shares the rate-limit gate, for the DM pages,
// live updates and the outbox alike.
package chataccess

import (
	"context"
	"errors"

	"github.com/bluesky-social/indigo/atproto/atclient"
	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/oauth"
	"github.com/skydm/skydm/internal/websession"
)

// Sessions is what Service needs of *oauth.Service: the process's one live
// OAuth session of an account (so a token refresh happens once, whoever
// asks).
type Sessions interface {
	Session(ctx context.Context, did syntax.DID, sessionID string) (*atoauth.ClientSession, error)
	SessionForDID(ctx context.Context, did syntax.DID) (*atoauth.ClientSession, error)
}

// Service makes chat clients. Its zero value is not usable; use New.
type Service struct {
	sessions Sessions
	ref      string
	gate     *chatproxy.Gate
	opts     []chatproxy.Option
}

// New returns a Service whose clients proxy to the chat service serviceRef
// ("did:…#bsky_chat") and share gate (nil → one of its own): while an
// account's PDS or chat service has said to wait, every client of that
// account answers from it without calling. opts apply to every client.
func New(sessions Sessions, serviceRef string, gate *chatproxy.Gate, opts ...chatproxy.Option) *Service {
	if gate == nil {
		gate = chatproxy.NewGate(nil)
	}
	return &Service{sessions: sessions, ref: serviceRef, gate: gate, opts: opts}
}

// ErrNoChatScope is returned (wrapped by nothing) for a session that was
// granted no DM access: Forbidden, ScopeMissing.
var ErrNoChatScope = &apperr.Error{Code: apperr.Forbidden, Reason: apperr.ReasonScopeMissing,
	Message: "This account signed in without allowing skydm to use its DMs. Sign in again and allow access to your messages.",
	Err:     errors.New("session lacks " + oauth.ScopeChat)}

// ForAccount returns the chat client of the signed-in account acct (its
// session in this browser) and the account's PDS client, for the
// repository calls that go with chat (the chat declaration). It returns
// the session's *apperr.Error (SessionExpired when it is gone) or
// ErrNoChatScope.
func (s *Service) ForAccount(ctx context.Context, acct websession.Account) (*chatproxy.Client, *atclient.APIClient, error) {
	sess, err := s.sessions.Session(ctx, acct.DID, acct.SessionID)
	if err != nil {
		return nil, nil, err
	}
	return s.client(sess, acct.DID)
}

// ForDID returns a chat client acting as did through its newest stored
// session (the outbox, which has no browser). Errors are those of
// ForAccount; the outbox parks a DM on SessionExpired until did signs in.
func (s *Service) ForDID(ctx context.Context, did syntax.DID) (*chatproxy.Client, error) {
	sess, err := s.sessions.SessionForDID(ctx, did)
	if err != nil {
		return nil, err
	}
	c, _, err := s.client(sess, did)
	return c, err
}

// client is the one chat-scope check and the one way a chat client is made.
func (s *Service) client(sess *atoauth.ClientSession, did syntax.DID) (*chatproxy.Client, *atclient.APIClient, error) {
	if !oauth.HasChatScope(sess) {
		return nil, nil, ErrNoChatScope
	}
	api := sess.APIClient()
	opts := append(s.opts[:len(s.opts):len(s.opts)], chatproxy.WithGate(s.gate, did.String()))
	return chatproxy.New(api, s.ref, opts...), api, nil
}
