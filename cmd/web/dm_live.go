package main

import (
	"context"

	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/chataccess"
	"github.com/skydm/skydm/internal/live"
	"github.com/skydm/skydm/internal/websession"
)

// liveLogSource is the hub's live.LogSource: one chat.bsky.convo.getLog
// call through the user's own session, from chats (the process's one live
// OAuth session, so a token refresh happens once; the gate shared with the
// pages). Entries of kinds chatproxy cannot decode are left out; the
// cursor still moves past them. Errors are *apperr.Error (SessionExpired,
// ScopeMissing, RateLimited with RetryAt, Unavailable, ...), which the hub
// acts on.
func liveLogSource(chats *chataccess.Service) live.LogSource {
	return live.LogSourceFunc(func(ctx context.Context, user live.User, cursor string) (*chat.ConvoGetLog_Output, error) {
		c, _, err := chats.ForAccount(ctx, websession.Account{DID: user.DID, SessionID: user.SessionID})
		if err != nil {
			return nil, err
		}
		page, err := c.GetLog(ctx, cursor)
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
