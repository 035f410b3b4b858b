package dm

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/websession"
	"github.com/skydm/skydm/views"
)

// Convo is GET /convos/{id}: the conversation with getConvo and
// getMessages issued in parallel (two upstream calls). Like every GET it
// changes nothing: a prefetch or a link from another site must not clear
// the unread count. The page marks itself read with POST
// /convos/{id}/read (dm.js, once the page is visible; or the Mark read
// button). ?cursor= shows earlier messages, ?sel= opens a message's actions,
// ?reply= has the composer reply to a message and ?at= opens the page at
// one (replies.go).
func (s *Pages) Convo(w http.ResponseWriter, r *http.Request) {
	acct, c, id, ok := s.convoClient(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	cursor := q.Get("cursor")
	if len(cursor) > maxCursor {
		cursor = ""
	}
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()
	vm, convo, err := s.loadConvo(ctx, r, acct, c, id, cursor)
	if err != nil {
		s.kit.Error(w, r, err, kit.Retry())
		return
	}
	vm.Notice = dmNotice(q.Get("notice"))
	openAt(&vm, q.Get("at"))
	s.replyTarget(ctx, acct, c, &vm, q.Get("reply"))
	if sel := q.Get("sel"); validID(sel) {
		vm.Selected = sel
	}
	s.renderConvo(w, r, http.StatusOK, vm, convo)
}

// loadConvo fetches a convo and one page of its messages in parallel and
// returns the page's view model (with a fresh form token) and the convo.
// Errors are the chat calls' *apperr.Error.
func (s *Pages) loadConvo(ctx context.Context, r *http.Request, acct websession.Account, c Chat, id, cursor string) (views.ConvoVM, *chat.ConvoDefs_ConvoView, error) {
	var msgs *chatproxy.MessagePage
	var msgsErr error
	var wg sync.WaitGroup
	wg.Go(func() { msgs, cursor, msgsErr = s.messagesAt(ctx, r, c, id, cursor) })
	convo, err := c.GetConvo(ctx, id)
	wg.Wait()
	if err == nil {
		err = msgsErr
	}
	if err != nil {
		return views.ConvoVM{}, nil, err
	}
	viewer := acct.DID.String()
	names, avatars := dmNames{}, dmNames{}
	for _, p := range msgs.RelatedProfiles {
		if p != nil && p.Did != "" {
			names[p.Did] = memberVM(p).Label()
			avatars[p.Did] = str(p.Avatar)
		}
	}
	vm := views.ConvoVM{
		Assets: s.dmAssets(), ID: id, Members: otherMembers(convo, viewer, names),
		Status: convoStatus(convo), Muted: convo.Muted, Unread: int(convo.UnreadCount), EarlierCursor: msgs.Cursor, Earlier: cursor != "",
		FormToken: s.dm.tokens.issue(viewer, id), ViewerDID: viewer, Now: s.kit.Now(), Loc: s.kit.Loc(r),
		Block: blockState(convo, viewer),
	}
	for did, n := range names {
		s.dm.names.put(did, n)
	}
	if vm.GroupConvo = groupConvo(convo, viewer, names); vm.GroupConvo != nil {
		vm.Title = vm.GroupConvo.Name
		if vm.GroupConvo.Locked() {
			vm.GroupConvo.LockedBy = lockedBy(msgs.Messages, viewer, names)
		}
		for _, p := range convo.Members {
			if p != nil && p.Did != "" && avatars[p.Did] == "" {
				avatars[p.Did] = str(p.Avatar)
			}
		}
	}
	conv := msgConv{viewer: viewer, names: names, avatars: avatars, links: s.dm.links, postBase: s.dm.cfg.PostBase}
	vm.Messages = make([]views.MessageVM, 0, len(msgs.Messages))
	for _, it := range slices.Backward(msgs.Messages) { // the service sends newest first
		vm.Messages = append(vm.Messages, conv.item(it))
	}
	markRuns(vm.Messages, vm.MsgContext().Loc)
	return vm, convo, nil
}

// renderConvo writes a conversation page. The unread total in the title and
// nav is taken from the cache only (no upstream call), without this
// conversation, which the page marks read once it is seen (dm.js).
func (s *Pages) renderConvo(w http.ResponseWriter, r *http.Request, status int, vm views.ConvoVM, convo *chat.ConvoDefs_ConvoView) {
	quotesOnPage(vm.Messages)
	unread := s.cachedUnread(r)
	if convo != nil && !convo.Muted && convoStatus(convo) == views.StatusAccepted {
		unread = max(unread-int(convo.UnreadCount), 0)
	}
	s.kit.Render(w, r, status, views.ConvoPage(s.dmPage(r, views.ConvoTitle(vm.Title, vm.Members), unread), vm))
}

// minReload is the least time worth trying to load a conversation again
// for onConvo; with less left before the deadline, the answer is the
// composer with the draft.
const minReload = 500 * time.Millisecond

// errNoTimeToReload stands for a reload skipped because the request's
// deadline is too near.
var errNoTimeToReload = apperr.New(apperr.Unavailable, "")

// onConvo is the kit.Form option of a conversation: err is shown on the
// conversation page (status from its code), with draft kept in the
// composer and the message whose actions failed (selected) open, when it
// is a refusal or upstream failure that can be shown there (kit.OnForm).
// When the conversation cannot be loaded again, the page shows only the
// composer with the draft.
func (s *Pages) onConvo(w http.ResponseWriter, r *http.Request, acct websession.Account, c Chat, id, draft, selected string) kit.ErrorOption {
	return kit.Form(func(status int, msg string) {
		var vm views.ConvoVM
		var convo *chat.ConvoDefs_ConvoView
		var loadErr error = errNoTimeToReload
		if kit.TimeLeft(r.Context()) >= kit.AnswerReserve+minReload {
			ctx, cancel := s.upstreamCtx(r)
			vm, convo, loadErr = s.loadConvo(ctx, r, acct, c, id, "")
			cancel()
		}
		if loadErr != nil {
			if !kit.OnForm(loadErr) {
				s.kit.Error(w, r, loadErr)
				return
			}
			vm = views.ConvoVM{Assets: s.dmAssets(), ID: id, FormToken: s.dm.tokens.issue(acct.DID.String(), id),
				ViewerDID: acct.DID.String(), Now: s.kit.Now(), Loc: s.kit.Loc(r),
				Notice: "The conversation could not be loaded just now."}
			if draft != "" {
				vm.Notice = "The conversation could not be loaded just now; your message is kept below."
			}
			convo = nil
		}
		vm.Draft, vm.Selected, vm.Error = draft, selected, msg
		if loadErr == nil { // a failed reply stays one (Send drops a target that is gone)
			ctx, cancel := s.upstreamCtx(r)
			s.replyTarget(ctx, acct, c, &vm, r.PostForm.Get("reply_to"))
			cancel()
		}
		s.renderConvo(w, r, status, vm, convo)
	})
}
