package dm

import (
	"context"
	"github.com/skydm/skydm/internal/handlers/kit"
	"net/http"
	"sync"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/views"
)

// dmCounts are the unread totals of one account, shown in the page title,
// the nav and the inbox tabs.
type dmCounts struct {
	UnreadTotal int // unread messages in accepted, unmuted conversations
	Requests    int // message requests with unread messages
}

// maxCursor bounds a cursor taken from the query.
const maxCursor = 512

// countsOf returns acct's unread counts, cached for DMs.CountsTTL (and
// refreshed once for all callers when a log event newer than minRev
// arrives). They cost one listConvos call (readState=unread, one page of
// countsPageSize): conversations beyond it are not counted.
func (s *Pages) countsOf(ctx context.Context, did syntax.DID, c Chat, minRev string) (dmCounts, error) {
	return s.dm.counts.get(ctx, did, minRev, func(ctx context.Context) (dmCounts, error) {
		page, err := c.ListConvos(ctx, chatproxy.ListConvosParams{ReadState: "unread", Limit: countsPageSize})
		if err != nil {
			return dmCounts{}, err
		}
		var n dmCounts
		for _, v := range page.Convos {
			switch {
			case convoStatus(v) == views.StatusRequest:
				n.Requests++
			case !v.Muted:
				n.UnreadTotal += int(max(v.UnreadCount, 0))
			}
		}
		return n, nil
	})
}

// Home is GET / for an account with DM access: the inbox (?tab=requests:
// the requests tab).
func (s *Pages) Home(w http.ResponseWriter, r *http.Request) {
	tab := views.TabAccepted
	if r.URL.Query().Get("tab") == views.TabRequests {
		tab = views.TabRequests
	}
	s.dmInbox(w, r, tab)
}

// Requests is GET /requests: the message requests tab.
func (s *Pages) Requests(w http.ResponseWriter, r *http.Request) {
	s.dmInbox(w, r, views.TabRequests)
}

// dmInbox lists one page of conversations of a tab: one listConvos call,
// plus the unread counts when they are not cached. An upstream failure
// gives the error page with a "Try again" link (503 for an unavailable or
// hanging chat service).
func (s *Pages) dmInbox(w http.ResponseWriter, r *http.Request, tab string) {
	acct, c, ok := s.dmClient(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()
	q := r.URL.Query()
	vm := views.InboxVM{
		Assets: s.dmAssets(), Tab: tab, UnreadOnly: q.Get("unread") == "1",
		Notice: dmNotice(q.Get("notice")), Now: s.kit.Now(), Loc: s.kit.Loc(r),
	}
	cursor := q.Get("cursor")
	if len(cursor) > maxCursor {
		cursor = ""
	}
	vm.Paged = cursor != ""
	p := chatproxy.ListConvosParams{Limit: convosPageSize, Cursor: cursor, Status: views.StatusAccepted}
	if tab == views.TabRequests {
		p.Status = views.StatusRequest
	}
	if vm.UnreadOnly {
		p.ReadState = "unread"
	}

	var counts dmCounts
	var countsErr error
	var wg sync.WaitGroup
	wg.Go(func() { counts, countsErr = s.countsOf(ctx, acct.DID, c, "") })
	page, err := c.ListConvos(ctx, p)
	wg.Wait()
	if err != nil {
		s.kit.Error(w, r, err, kit.Retry())
		return
	}
	if countsErr != nil {
		s.kit.Log.WarnContext(r.Context(), "unread counts", "did", acct.DID.String(), "err", countsErr, "request_id", kit.RequestID(r.Context()))
	}
	vm.UnreadTotal, vm.RequestCount = counts.UnreadTotal, counts.Requests
	vm.NextCursor = page.Cursor
	vm.Convos = make([]views.ConvoRowVM, 0, len(page.Convos))
	for _, v := range page.Convos {
		vm.Convos = append(vm.Convos, convoRow(v, acct.DID.String()))
	}
	title := "Messages"
	if tab == views.TabRequests {
		title = "Message requests"
	}
	s.kit.Render(w, r, http.StatusOK, views.InboxPage(s.dmPage(r, title, counts.UnreadTotal), vm))
}
