package main

import (
	"context"
	"errors"

	"github.com/bluesky-social/indigo/atproto/atclient"
	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/oauth"
	"github.com/skydm/skydm/internal/projects"
)

// sessionsByDID is what oauthSender needs of *oauth.Service.
type sessionsByDID interface {
	SessionForDID(ctx context.Context, did syntax.DID) (*atoauth.ClientSession, error)
}

// oauthSender is the outbox worker's notify.Sender: it sends as an account
// through that account's newest stored OAuth session, the same live
// session (and refresh-once lock) the pages use.
type oauthSender struct {
	sessions    sessionsByDID
	chatService string             // service ref for the atproto-proxy header
	opts        []chatproxy.Option // for every client made
}

var _ notify.Sender = (*oauthSender)(nil)

// Chat returns a chat client acting as did. It returns the SessionExpired
// *apperr.Error of SessionForDID when did has no usable session (the
// worker parks the DM until did signs in again), a ScopeMissing one when
// the session was granted no DM access, and other errors (transient) as
// they come.
func (s *oauthSender) Chat(ctx context.Context, did syntax.DID) (notify.Chat, error) {
	sess, err := s.sessions.SessionForDID(ctx, did)
	if err != nil {
		return nil, err
	}
	if !oauth.HasChatScope(sess) {
		return nil, &apperr.Error{Code: apperr.Forbidden, Reason: chatproxy.ReasonScopeMissing,
			Message: "This account signed in without allowing skydm to use its DMs.",
			Err:     errors.New("session lacks " + oauth.ScopeChat)}
	}
	return chatproxy.New(sess.APIClient(), s.chatService, s.opts...), nil
}

// oauthRepos is the change-request reconciler's projects.Sessions: an XRPC
// client acting as an account through its newest stored OAuth session.
type oauthRepos struct{ sessions sessionsByDID }

var _ projects.Sessions = oauthRepos{}

// APIClientForDID returns the SessionForDID error when did has no usable
// session (the reconciler then waits for did to sign in again).
func (r oauthRepos) APIClientForDID(ctx context.Context, did syntax.DID) (*atclient.APIClient, error) {
	sess, err := r.sessions.SessionForDID(ctx, did)
	if err != nil {
		return nil, err
	}
	return sess.APIClient(), nil
}
