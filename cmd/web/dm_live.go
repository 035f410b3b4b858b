package main

import (
	"context"
	"time"

	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/budget"
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
// acts on. Each call tells pacer the user's PDS host, whose budget paces
// the user's polls.
func liveLogSource(chats *chataccess.Service, pacer *budget.Pacer) live.LogSource {
	return live.LogSourceFunc(func(ctx context.Context, user live.User, cursor string) (*chat.ConvoGetLog_Output, error) {
		c, pds, err := chats.ForAccount(ctx, websession.Account{DID: user.DID, SessionID: user.SessionID})
		if err != nil {
			return nil, err
		}
		pacer.SetHost(user.DID.String(), budget.HostOf(pds.Host))
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

// livePacer paces the hub's pollers by the upstream budget of their PDS
// host (one poller per DID).
type livePacer struct{ p *budget.Pacer }

// Pace stretches base by the load and fill of user's host.
func (l livePacer) Pace(user live.User, base time.Duration) time.Duration {
	return l.p.Pace(user.DID.String(), base)
}
