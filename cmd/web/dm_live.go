package main

import (
	"context"

	"github.com/bluesky-social/indigo/api/chat"
	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/live"
	"github.com/skydm/skydm/internal/websession"
)

// apiClients is what liveLogSource needs of *oauth.Service.
type apiClients interface {
	APIClient(ctx context.Context, acct websession.Account) (*atclient.APIClient, error)
}

// liveLogSource is the hub's live.LogSource: one chat.bsky.convo.getLog
// call through the user's own session (the process's one live OAuth
// session, so a token refresh happens once), proxied to chatService.
// Entries of kinds chatproxy cannot decode are left out; the cursor still
// moves past them. gate is shared with the pages (a wait either learns
// holds for both); opts apply to each chat client. Errors are
// *apperr.Error (SessionExpired, ScopeMissing, RateLimited with RetryAt,
// Unavailable, ...), which the hub acts on.
func liveLogSource(apis apiClients, chatService string, gate *chatproxy.Gate, opts ...chatproxy.Option) live.LogSource {
	return live.LogSourceFunc(func(ctx context.Context, user live.User, cursor string) (*chat.ConvoGetLog_Output, error) {
		api, err := apis.APIClient(ctx, websession.Account{DID: user.DID, SessionID: user.SessionID})
		if err != nil {
			return nil, err
		}
		page, err := chatproxy.New(api, chatService, append(opts[:len(opts):len(opts)], chatproxy.WithGate(gate, user.DID.String()))...).GetLog(ctx, cursor)
		if err != nil {
			return nil, err
		}
		out := &chat.ConvoGetLog_Output{Logs: make([]*chat.ConvoGetLog_Output_Logs_Elem, 0, len(page.Logs))}
		if page.Cursor != "" {
			out.Cursor = &page.Cursor
		}
		for _, e := range page.Logs {
			if e.Elem != nil {
				out.Logs = append(out.Logs, e.Elem)
			}
		}
		return out, nil
	})
}
