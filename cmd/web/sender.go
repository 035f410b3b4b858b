package main

import (
	"context"

	"github.com/bluesky-social/indigo/atproto/atclient"
	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/chataccess"
	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/projects"
)

// sessionsByDID is what oauthRepos needs of *oauth.Service.
type sessionsByDID interface {
	SessionForDID(ctx context.Context, did syntax.DID) (*atoauth.ClientSession, error)
}

// outboxSender is the outbox worker's notify.Sender: it sends as an
// account through chataccess (that account's newest stored OAuth session,
// the same live session and refresh-once lock the pages use, and the one
// chat-scope check). Errors are ForDID's: SessionExpired parks the DM
// until the account signs in again, ScopeMissing is permanent.
type outboxSender struct{ chats *chataccess.Service }

var _ notify.Sender = outboxSender{}

// Chat returns a chat client acting as did.
func (s outboxSender) Chat(ctx context.Context, did syntax.DID) (notify.Chat, error) {
	c, err := s.chats.ForDID(ctx, did)
	if err != nil {
		return nil, err
	}
	return c, nil
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
