package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/handlers/dm"
	"github.com/skydm/skydm/internal/websession"
)

// The accounts of the DM handler tests.
const (
	dmAlice = "did:plc:alice0000000000000000000"
	dmBob   = "did:plc:bob00000000000000000000"
	dmCarol = "did:plc:carol0000000000000000000"
)

// fakeChat is an in-memory chat service for one viewer, shaped like the
// chat.bsky views chatproxy returns. Methods can be made to fail (fail) or
// to wait (block, until the channel is closed or the call's context ends,
// which gives Unavailable like a timeout does upstream).
type fakeChat struct {
	mu       sync.Mutex
	viewer   string
	convos   []*chat.ConvoDefs_ConvoView              // newest first
	msgs     map[string][]*chat.ConvoDefs_MessageView // by convo, newest first
	calls    map[string]int
	fail     map[string]error
	block    map[string]chan struct{}
	entered  chan string // when not nil, every call's method is sent here first
	sent     []chatproxy.MessageInput
	decl     dm.Declaration
	saved    []dm.Declaration
	reads    []string // convo ids marked read
	readUpTo []string // the message id of each updateRead ("" = all)
	avail    map[string]*chat.ConvoGetConvoAvailability_Output
	refusals map[string]error // getConvoForMembers refusals by member DID
	nextID   int
	now      time.Time
	// lostAnswer, when set, makes SendMessage store the message and then
	// fail with it, as when the answer is lost after the service stored it.
	lostAnswer error
}

func newFakeChat(viewer string) *fakeChat {
	return &fakeChat{viewer: viewer, msgs: map[string][]*chat.ConvoDefs_MessageView{}, calls: map[string]int{},
		fail: map[string]error{}, block: map[string]chan struct{}{}, avail: map[string]*chat.ConvoGetConvoAvailability_Output{},
		refusals: map[string]error{}, now: time.Date(2025, 3, 4, 15, 0, 0, 0, time.UTC)}
}

func ptr[T any](v T) *T { return &v }

func profile(did, handle, name string) *chat.ActorDefs_ProfileViewBasic {
	p := &chat.ActorDefs_ProfileViewBasic{Did: did, Handle: handle}
	if name != "" {
		p.DisplayName = &name
	}
	return p
}

// addConvo adds a convo of the viewer with other (status "accepted" or
// "request") and n messages alternating between them, the last from other.
func (f *fakeChat) addConvo(id string, other *chat.ActorDefs_ProfileViewBasic, status string, n, unread int) *chat.ConvoDefs_ConvoView {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := &chat.ConvoDefs_ConvoView{Id: id, Rev: "rev0", Members: []*chat.ActorDefs_ProfileViewBasic{profile(f.viewer, "me.test", "Me"), other},
		Status: ptr(status), UnreadCount: int64(unread)}
	var list []*chat.ConvoDefs_MessageView
	for i := n - 1; i >= 0; i-- {
		from := other.Did
		if (n-1-i)%2 == 1 {
			from = f.viewer
		}
		list = append(list, &chat.ConvoDefs_MessageView{Id: fmt.Sprintf("%s-m%03d", id, i), Rev: fmt.Sprintf("r%03d", i),
			Sender: &chat.ConvoDefs_MessageViewSender{Did: from}, Text: fmt.Sprintf("Message %d of %s", i, id),
			SentAt: f.now.Add(-time.Duration(n-i) * time.Minute).Format(time.RFC3339)})
	}
	f.msgs[id] = list
	if len(list) > 0 {
		v.LastMessage = &chat.ConvoDefs_ConvoView_LastMessage{ConvoDefs_MessageView: list[0]}
	}
	f.convos = append(f.convos, v)
	return v
}

func (f *fakeChat) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *fakeChat) setFail(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fail, method)
	} else {
		f.fail[method] = err
	}
}

var errFakeUnavailable = &apperr.Error{Code: apperr.Unavailable, Reason: chatproxy.ReasonUnavailable,
	Message: "The chat service is not answering right now. Please try again in a moment."}

// enter counts a call and applies the configured wait or failure.
func (f *fakeChat) enter(ctx context.Context, method string) error {
	f.mu.Lock()
	f.calls[method]++
	block, err, entered := f.block[method], f.fail[method], f.entered
	f.mu.Unlock()
	if entered != nil {
		entered <- method
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return &apperr.Error{Code: apperr.Unavailable, Reason: chatproxy.ReasonUnavailable, Message: errFakeUnavailable.Message, Err: ctx.Err()}
		}
	}
	return err
}

func (f *fakeChat) find(id string) *chat.ConvoDefs_ConvoView {
	for _, c := range f.convos {
		if c.Id == id {
			return c
		}
	}
	return nil
}

var errFakeNoConvo = &apperr.Error{Code: apperr.NotFound, Reason: chatproxy.ReasonConvoNotFound, Message: "This conversation does not exist any more, or you have left it."}

func (f *fakeChat) ListConvos(ctx context.Context, p chatproxy.ListConvosParams) (*chatproxy.ConvoPage, error) {
	if err := f.enter(ctx, "ListConvos"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	page := &chatproxy.ConvoPage{}
	for _, c := range f.convos {
		if (p.Status == "" || ptrValue(c.Status) == p.Status) && (p.ReadState == "" || c.UnreadCount > 0) {
			page.Convos = append(page.Convos, clone(c))
		}
	}
	return page, nil
}

func (f *fakeChat) GetConvo(ctx context.Context, id string) (*chat.ConvoDefs_ConvoView, error) {
	if err := f.enter(ctx, "GetConvo"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.find(id); c != nil {
		return clone(c), nil
	}
	return nil, errFakeNoConvo
}

// clone copies a view the fake keeps changing, as a decoded response is a
// fresh value for every call.
func clone[T any](v *T) *T {
	c := *v
	return &c
}

func (f *fakeChat) GetMessages(ctx context.Context, id, cursor string, limit int64) (*chatproxy.MessagePage, error) {
	if err := f.enter(ctx, "GetMessages"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.find(id) == nil {
		return nil, errFakeNoConvo
	}
	page := &chatproxy.MessagePage{}
	for _, m := range f.msgs[id] {
		page.Messages = append(page.Messages, chatproxy.MessageItem{Type: "chat.bsky.convo.defs#messageView", ID: m.Id, Rev: m.Rev, SentAt: m.SentAt, Message: clone(m)})
	}
	return page, nil
}

func (f *fakeChat) SendMessage(ctx context.Context, id string, in chatproxy.MessageInput) (*chat.ConvoDefs_MessageView, error) {
	if err := f.enter(ctx, "SendMessage"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(id)
	if c == nil {
		return nil, errFakeNoConvo
	}
	f.nextID++
	m := &chat.ConvoDefs_MessageView{Id: fmt.Sprintf("sent%03d", f.nextID), Rev: fmt.Sprintf("s%03d", f.nextID), Text: in.Text, Facets: in.Facets,
		Sender: &chat.ConvoDefs_MessageViewSender{Did: f.viewer}, SentAt: f.now.Format(time.RFC3339)}
	f.sent = append(f.sent, in)
	f.msgs[id] = append([]*chat.ConvoDefs_MessageView{m}, f.msgs[id]...)
	c.LastMessage = &chat.ConvoDefs_ConvoView_LastMessage{ConvoDefs_MessageView: m}
	c.Status = ptr("accepted") // replying accepts
	if f.lostAnswer != nil {
		return nil, f.lostAnswer
	}
	return clone(m), nil
}

func (f *fakeChat) sentTexts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, s := range f.sent {
		out = append(out, s.Text)
	}
	return out
}

func (f *fakeChat) UpdateRead(ctx context.Context, id, mid string) (*chat.ConvoDefs_ConvoView, error) {
	if err := f.enter(ctx, "UpdateRead"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(id)
	if c == nil {
		return nil, errFakeNoConvo
	}
	c.UnreadCount = 0
	f.reads = append(f.reads, id)
	f.readUpTo = append(f.readUpTo, mid)
	return clone(c), nil
}

func (f *fakeChat) UpdateAllRead(ctx context.Context, status string) (int64, error) {
	if err := f.enter(ctx, "UpdateAllRead"); err != nil {
		return 0, err
	}
	return 0, nil
}

func (f *fakeChat) setStatus(ctx context.Context, method, id string, fn func(c *chat.ConvoDefs_ConvoView)) (*chat.ConvoDefs_ConvoView, error) {
	if err := f.enter(ctx, method); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(id)
	if c == nil {
		return nil, errFakeNoConvo
	}
	fn(c)
	return clone(c), nil
}

func (f *fakeChat) AcceptConvo(ctx context.Context, id string) (string, error) {
	_, err := f.setStatus(ctx, "AcceptConvo", id, func(c *chat.ConvoDefs_ConvoView) { c.Status = ptr("accepted") })
	return "rev", err
}

func (f *fakeChat) MuteConvo(ctx context.Context, id string) (*chat.ConvoDefs_ConvoView, error) {
	return f.setStatus(ctx, "MuteConvo", id, func(c *chat.ConvoDefs_ConvoView) { c.Muted = true })
}

func (f *fakeChat) UnmuteConvo(ctx context.Context, id string) (*chat.ConvoDefs_ConvoView, error) {
	return f.setStatus(ctx, "UnmuteConvo", id, func(c *chat.ConvoDefs_ConvoView) { c.Muted = false })
}

func (f *fakeChat) LeaveConvo(ctx context.Context, id string) (string, error) {
	if err := f.enter(ctx, "LeaveConvo"); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.convos {
		if c.Id == id {
			f.convos = append(f.convos[:i], f.convos[i+1:]...)
			return "rev", nil
		}
	}
	return "", errFakeNoConvo
}

func (f *fakeChat) DeleteMessageForSelf(ctx context.Context, id, mid string) (*chat.ConvoDefs_DeletedMessageView, error) {
	if err := f.enter(ctx, "DeleteMessageForSelf"); err != nil {
		return nil, err
	}
	return &chat.ConvoDefs_DeletedMessageView{Id: mid}, nil
}

func (f *fakeChat) reaction(ctx context.Context, method, id, mid, value string, add bool) (*chat.ConvoDefs_MessageView, error) {
	if err := f.enter(ctx, method); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.msgs[id] {
		if m.Id != mid {
			continue
		}
		if add {
			m.Reactions = append(m.Reactions, &chat.ConvoDefs_ReactionView{Value: value, Sender: &chat.ConvoDefs_ReactionViewSender{Did: f.viewer}, CreatedAt: f.now.Format(time.RFC3339)})
		}
		return clone(m), nil
	}
	return nil, &apperr.Error{Code: apperr.Invalid, Reason: chatproxy.ReasonInvalidRequest, Message: "No such message."}
}

func (f *fakeChat) AddReaction(ctx context.Context, id, mid, value string) (*chat.ConvoDefs_MessageView, error) {
	return f.reaction(ctx, "AddReaction", id, mid, value, true)
}

func (f *fakeChat) RemoveReaction(ctx context.Context, id, mid, value string) (*chat.ConvoDefs_MessageView, error) {
	return f.reaction(ctx, "RemoveReaction", id, mid, value, false)
}

func (f *fakeChat) GetConvoAvailability(ctx context.Context, members []string) (*chat.ConvoGetConvoAvailability_Output, error) {
	if err := f.enter(ctx, "GetConvoAvailability"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if out := f.avail[members[0]]; out != nil {
		return out, nil
	}
	return &chat.ConvoGetConvoAvailability_Output{CanChat: true}, nil
}

func (f *fakeChat) GetConvoForMembers(ctx context.Context, members []string) (*chat.ConvoDefs_ConvoView, error) {
	if err := f.enter(ctx, "GetConvoForMembers"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	err := f.refusals[members[0]]
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return f.addConvo("new-"+members[0][8:12], profile(members[0], "someone.test", ""), "accepted", 0, 0), nil
}

func (f *fakeChat) ForRecipient(string) dm.Chat { return f }

func (f *fakeChat) Declaration(ctx context.Context) (dm.Declaration, error) {
	if err := f.enter(ctx, "Declaration"); err != nil {
		return dm.Declaration{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.decl, nil
}

func (f *fakeChat) SaveDeclaration(ctx context.Context, d dm.Declaration) error {
	if err := f.enter(ctx, "SaveDeclaration"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saved = append(f.saved, d)
	f.decl = dm.Declaration{Value: d.Value, CID: "cid-" + fmt.Sprint(len(f.saved))}
	return nil
}

// fakeChats hands every account the same fakeChat.
type fakeChats struct {
	c   *fakeChat
	err error
}

func (f fakeChats) Chat(ctx context.Context, acct websession.Account) (dm.Chat, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.c, nil
}

// fakeDir resolves the handles it knows, both ways.
type fakeDir map[string]string // handle → DID

func (d fakeDir) LookupHandle(ctx context.Context, h syntax.Handle) (*identity.Identity, error) {
	if did, ok := d[h.String()]; ok {
		return &identity.Identity{DID: syntax.DID(did), Handle: h}, nil
	}
	return nil, fmt.Errorf("%w: %s", identity.ErrHandleNotFound, h)
}

func (d fakeDir) LookupDID(ctx context.Context, did syntax.DID) (*identity.Identity, error) {
	for h, x := range d {
		if x == did.String() {
			return &identity.Identity{DID: did, Handle: syntax.Handle(h)}, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", identity.ErrDIDNotFound, did)
}

func (d fakeDir) Lookup(ctx context.Context, a syntax.AtIdentifier) (*identity.Identity, error) {
	if h, err := a.AsHandle(); err == nil {
		return d.LookupHandle(ctx, h)
	}
	did, _ := a.AsDID()
	return d.LookupDID(ctx, did)
}

func (d fakeDir) Purge(context.Context, syntax.AtIdentifier) error { return nil }

// dmApp is a test app with the DM pages over a fakeChat, signed in as alice.
type dmApp struct {
	*testApp
	chat *fakeChat
}

func newDMApp(t *testing.T, opts ...func(*DMs)) *dmApp {
	t.Helper()
	fc := newFakeChat(dmAlice)
	dms := &DMs{
		Chats:           fakeChats{c: fc},
		Directory:       fakeDir{"alice.test": dmAlice, "bob.test": dmBob, "carol.test": dmCarol},
		UpstreamTimeout: 2 * time.Second,
		Now:             func() time.Time { return fc.now },
	}
	for _, o := range opts {
		o(dms)
	}
	a := newTestApp(t, func(c *Config) { c.DMs = dms })
	a.signIn(dmAlice, "alice.test", true)
	return &dmApp{testApp: a, chat: fc}
}

// token returns the send form's token of a conversation page.
func (a *dmApp) token(convoID string) string {
	a.t.Helper()
	res := a.get("/convos/" + convoID)
	if res.status != http.StatusOK {
		a.t.Fatalf("GET /convos/%s: %d", convoID, res.status)
	}
	tok, ok := res.doc.Find(`[data-testid="composer"] input[name="token"]`).Attr("value")
	if !ok || tok == "" {
		a.t.Fatal("no form token on the conversation page")
	}
	return tok
}

func (a *dmApp) postJSON(path string, form url.Values) response {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodPost, a.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Origin", a.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return a.do(req)
}

// ptrValue is *p, or "" for nil.
func ptrValue(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
