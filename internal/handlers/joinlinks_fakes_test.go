package handlers

import (
	"context"
	"sync"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/lex/chat"
)

// The join link and join request part of fakeChat (dm's joinChat). Its
// state lives beside the fakeChat, keyed by it, so the shared fake is not
// edited.

type fakeJoin struct {
	mu        sync.Mutex
	links     map[string]*chat.GroupDefs_JoinLinkView // by convo
	settings  []chatproxy.JoinLinkSettings            // of each create and edit
	previews  map[string]*chatproxy.JoinLinkPreview   // by code
	joinAs    map[string]*chat.GroupRequestJoin_Output
	joinErr   map[string]error // requestJoin refusals by code
	requests  map[string][]*chat.GroupDefs_JoinRequestView
	approved  []string // convo + " " + member
	rejected  []string
	withdrawn []string
	read      []string
	nextCode  int
}

var (
	fakeJoinsMu sync.Mutex
	fakeJoins   = map[*fakeChat]*fakeJoin{}
)

// join returns f's join state.
func (f *fakeChat) join() *fakeJoin {
	fakeJoinsMu.Lock()
	defer fakeJoinsMu.Unlock()
	j := fakeJoins[f]
	if j == nil {
		j = &fakeJoin{links: map[string]*chat.GroupDefs_JoinLinkView{}, previews: map[string]*chatproxy.JoinLinkPreview{},
			joinAs: map[string]*chat.GroupRequestJoin_Output{}, joinErr: map[string]error{}, requests: map[string][]*chat.GroupDefs_JoinRequestView{}}
		fakeJoins[f] = j
	}
	return j
}

// addGroup adds a group convo of the viewer named name, owned by owner,
// with unread join requests when the viewer owns it.
func (f *fakeChat) addGroup(id, name, owner string, unread int64) *chat.ConvoDefs_ConvoView {
	f.mu.Lock()
	defer f.mu.Unlock()
	role := func(did string) *chat.ActorDefs_ProfileViewBasic_Kind {
		r := "standard"
		if did == owner {
			r = "owner"
		}
		return &chat.ActorDefs_ProfileViewBasic_Kind{ActorDefs_GroupConvoMember: &chat.ActorDefs_GroupConvoMember{Role: &r}}
	}
	me := profile(f.viewer, "alice.test", "Alice")
	me.Kind = role(f.viewer)
	other := profile(dmBob, "bob.test", "Bob")
	other.Kind = role(dmBob)
	g := &chat.ConvoDefs_GroupConvo{Name: name, MemberCount: 2, MemberLimit: 100, LockStatus: ptr("unlocked"), CreatedAt: f.now.Format("2006-01-02T15:04:05Z")}
	if owner == f.viewer {
		g.UnreadJoinRequestCount, g.JoinRequestCount = ptr(unread), ptr(unread)
	}
	v := &chat.ConvoDefs_ConvoView{Id: id, Rev: "rev0", Members: []*chat.ActorDefs_ProfileViewBasic{me, other}, Status: ptr("accepted"),
		Kind: &chat.ConvoDefs_ConvoView_Kind{ConvoDefs_GroupConvo: g}}
	f.convos = append(f.convos, v)
	f.msgs[id] = nil
	return v
}

// setLink sets a group's join link in its convoView, as getConvo shows it.
func (f *fakeChat) setLink(convoID string, l *chat.GroupDefs_JoinLinkView) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.find(convoID); c != nil {
		c.Kind.ConvoDefs_GroupConvo.JoinLink = l
	}
	j := f.join()
	j.mu.Lock()
	j.links[convoID] = l
	j.mu.Unlock()
}

func (f *fakeChat) linkOf(convoID string) *chat.GroupDefs_JoinLinkView {
	j := f.join()
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.links[convoID]
}

func (f *fakeChat) CreateJoinLink(ctx context.Context, convoID string, s chatproxy.JoinLinkSettings) (*chat.GroupDefs_JoinLinkView, error) {
	if err := f.enter(ctx, "createJoinLink"); err != nil {
		return nil, err
	}
	if l := f.linkOf(convoID); l != nil && ptrValue(l.EnabledStatus) == "enabled" {
		return nil, errorWith(apperr.Conflict, chatproxy.ReasonJoinLinkExists, "This group already has a join link. Turn it off before making a new one.")
	}
	j := f.join()
	j.mu.Lock()
	j.nextCode++
	code := "code00" + string(rune('0'+j.nextCode))
	j.settings = append(j.settings, s)
	j.mu.Unlock()
	l := &chat.GroupDefs_JoinLinkView{Code: code, EnabledStatus: ptr("enabled"), JoinRule: ptr(s.JoinRule), RequireApproval: s.RequireApproval,
		CreatedAt: f.now.Format("2006-01-02T15:04:05Z")}
	f.setLink(convoID, l)
	return l, nil
}

func (f *fakeChat) EditJoinLink(ctx context.Context, convoID string, s chatproxy.JoinLinkSettings) (*chat.GroupDefs_JoinLinkView, error) {
	if err := f.enter(ctx, "editJoinLink"); err != nil {
		return nil, err
	}
	l := f.linkOf(convoID)
	if l == nil {
		return nil, errorWith(apperr.NotFound, chatproxy.ReasonNoJoinLink, "This group has no join link yet.")
	}
	j := f.join()
	j.mu.Lock()
	j.settings = append(j.settings, s)
	j.mu.Unlock()
	n := *l
	n.JoinRule, n.RequireApproval = ptr(s.JoinRule), s.RequireApproval
	f.setLink(convoID, &n)
	return &n, nil
}

func (f *fakeChat) switchLink(ctx context.Context, method, convoID, status string) (*chat.GroupDefs_JoinLinkView, error) {
	if err := f.enter(ctx, method); err != nil {
		return nil, err
	}
	l := f.linkOf(convoID)
	if l == nil {
		return nil, errorWith(apperr.NotFound, chatproxy.ReasonNoJoinLink, "This group has no join link yet.")
	}
	n := *l
	n.EnabledStatus = ptr(status)
	f.setLink(convoID, &n)
	return &n, nil
}

func (f *fakeChat) EnableJoinLink(ctx context.Context, convoID string) (*chat.GroupDefs_JoinLinkView, error) {
	return f.switchLink(ctx, "enableJoinLink", convoID, "enabled")
}

func (f *fakeChat) DisableJoinLink(ctx context.Context, convoID string) (*chat.GroupDefs_JoinLinkView, error) {
	return f.switchLink(ctx, "disableJoinLink", convoID, "disabled")
}

func (f *fakeChat) GetJoinLinkPreview(ctx context.Context, code string) (*chatproxy.JoinLinkPreview, error) {
	if err := f.enter(ctx, "getJoinLinkPreviews"); err != nil {
		return nil, err
	}
	j := f.join()
	j.mu.Lock()
	defer j.mu.Unlock()
	if p := j.previews[code]; p != nil {
		return p, nil
	}
	return &chatproxy.JoinLinkPreview{GroupDefs_InvalidJoinLinkPreviewView: &chat.GroupDefs_InvalidJoinLinkPreviewView{Code: code}}, nil
}

func (f *fakeChat) RequestJoin(ctx context.Context, code string) (*chat.GroupRequestJoin_Output, error) {
	if err := f.enter(ctx, "requestJoin"); err != nil {
		return nil, err
	}
	j := f.join()
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.joinErr[code]; err != nil {
		return nil, err
	}
	if out := j.joinAs[code]; out != nil {
		return out, nil
	}
	return nil, errorWith(apperr.NotFound, chatproxy.ReasonJoinLinkInvalid, "This join link does not exist.")
}

func (f *fakeChat) WithdrawJoinRequest(ctx context.Context, convoID string) error {
	if err := f.enter(ctx, "withdrawJoinRequest"); err != nil {
		return err
	}
	j := f.join()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.withdrawn = append(j.withdrawn, convoID)
	return nil
}

func (f *fakeChat) ListJoinRequests(ctx context.Context, convoID, cursor string, limit int64) (*chat.GroupListJoinRequests_Output, error) {
	if err := f.enter(ctx, "listJoinRequests"); err != nil {
		return nil, err
	}
	j := f.join()
	j.mu.Lock()
	defer j.mu.Unlock()
	return &chat.GroupListJoinRequests_Output{Requests: j.requests[convoID]}, nil
}

func (f *fakeChat) ApproveJoinRequest(ctx context.Context, convoID, member string) (*chat.ConvoDefs_ConvoView, error) {
	if err := f.enter(ctx, "approveJoinRequest"); err != nil {
		return nil, err
	}
	j := f.join()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.approved = append(j.approved, convoID+" "+member)
	return &chat.ConvoDefs_ConvoView{Id: convoID}, nil
}

func (f *fakeChat) RejectJoinRequest(ctx context.Context, convoID, member string) error {
	if err := f.enter(ctx, "rejectJoinRequest"); err != nil {
		return err
	}
	j := f.join()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rejected = append(j.rejected, convoID+" "+member)
	return nil
}

func (f *fakeChat) UpdateJoinRequestsRead(ctx context.Context, convoID string) error {
	if err := f.enter(ctx, "updateJoinRequestsRead"); err != nil {
		return err
	}
	j := f.join()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.read = append(j.read, convoID)
	return nil
}
