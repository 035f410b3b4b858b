package demo_test

import (
	"context"
	"testing"
	"time"

	lexutil "github.com/bluesky-social/indigo/lex/util"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/demo"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

// checkGroup asserts, through the sandbox PDS, the seeded group: alice owns
// exactly one group named demo.GroupName, with bob and carol accepted, a
// history with messages from all three, a rename system message, a join link
// that needs approval, and dave's pending request, which dave sees too.
func checkGroup(t *testing.T, n *sandbox.Network, c demo.Cast) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	as := func(a sandbox.Account) lexutil.LexClient {
		return testenv.PasswordSession(t, n, a).WithService(n.ChatServiceRef)
	}
	alice := as(c.Alice)

	groups, err := chat.ConvoListConvos(ctx, alice, "", "group", 100, "", "", "")
	if err != nil {
		t.Fatalf("alice listConvos kind=group: %v", err)
	}
	var g *chat.ConvoDefs_ConvoView
	for _, cv := range groups.Convos {
		if cv.Kind != nil && cv.Kind.ConvoDefs_GroupConvo != nil && cv.Kind.ConvoDefs_GroupConvo.Name == demo.GroupName {
			if g != nil {
				t.Fatalf("alice has two groups named %q", demo.GroupName)
			}
			g = cv
		}
	}
	if g == nil {
		t.Fatalf("alice has no group named %q among %d groups", demo.GroupName, len(groups.Convos))
	}
	gk := g.Kind.ConvoDefs_GroupConvo
	if gk.MemberCount != 3 {
		t.Errorf("memberCount = %d, want 3 (alice, bob, carol)", gk.MemberCount)
	}
	if l := gk.JoinLink; l == nil || !l.RequireApproval || l.EnabledStatus == nil || *l.EnabledStatus != "enabled" {
		t.Errorf("join link = %+v, want an enabled link requiring approval", l)
	}
	if gk.JoinRequestCount == nil || *gk.JoinRequestCount != 1 {
		t.Errorf("joinRequestCount = %v, want 1", gk.JoinRequestCount)
	}
	if gk.JoinLink != nil { // what skydm's /join page reads, through the PDS, as someone outside the group
		p, err := chatproxy.New(testenv.PasswordSession(t, n, c.Dave), n.ChatServiceRef).GetJoinLinkPreview(ctx, gk.JoinLink.Code)
		if err != nil {
			t.Fatalf("dave's preview of the join link: %v", err)
		}
		if v := p.GroupDefs_JoinLinkPreviewView; v == nil || v.Name != demo.GroupName || !v.RequireApproval || v.Owner.Did != c.Alice.DID ||
			v.Convo != nil || v.Viewer == nil || v.Viewer.RequestedAt == nil {
			t.Errorf("dave's preview = %+v, want the group, with his request", p)
		}
	}
	for _, m := range []sandbox.Account{c.Bob, c.Carol} {
		out, err := chat.ConvoGetConvo(ctx, as(m), g.Id)
		if err != nil {
			t.Fatalf("%s getConvo: %v", m.Handle, err)
		}
		if out.Convo.Status == nil || *out.Convo.Status != "accepted" {
			t.Errorf("%s's status in the group = %v, want accepted", m.Handle, out.Convo.Status)
		}
	}

	msgs, err := chat.ConvoGetMessages(ctx, alice, g.Id, "", 100)
	if err != nil {
		t.Fatalf("alice getMessages: %v", err)
	}
	from := map[string]int{}
	renamed := false
	texts := map[string]bool{}
	replyParent := "" // the text bob's reply quotes
	for _, m := range msgs.Messages {
		if mv := m.ConvoDefs_MessageView; mv != nil {
			from[mv.Sender.Did]++
			texts[mv.Text] = true
			if mv.Text == "Noon works. Which entrance?" && mv.ReplyTo != nil && mv.ReplyTo.ConvoDefs_MessageView != nil {
				replyParent = mv.ReplyTo.ConvoDefs_MessageView.Text
			}
		}
		if sm := m.ConvoDefs_SystemMessageView; sm != nil {
			if e := sm.Data.ConvoDefs_SystemMessageDataEditGroup; e != nil && e.NewName != nil && *e.NewName == demo.GroupName {
				renamed = true
			}
		}
	}
	for _, a := range []sandbox.Account{c.Alice, c.Bob, c.Carol} {
		if from[a.DID] < 2 {
			t.Errorf("%s sent %d group messages, want a few", a.Handle, from[a.DID])
		}
	}
	if !renamed {
		t.Errorf("no system message renaming the group to %q", demo.GroupName)
	}
	if !texts["Noon works. Which entrance?"] {
		t.Error("bob's reply is missing from the group")
	}
	if replyParent != "Great! The park at noon?" {
		t.Errorf("bob's reply quotes %q, want alice's \"Great! The park at noon?\"", replyParent)
	}

	reqs, err := chat.GroupListJoinRequests(ctx, alice, g.Id, "", 50)
	if err != nil {
		t.Fatalf("alice listJoinRequests: %v", err)
	}
	if len(reqs.Requests) != 1 || reqs.Requests[0].RequestedBy.Did != c.Dave.DID {
		t.Fatalf("join requests = %+v, want one from dave (%s)", reqs.Requests, c.Dave.DID)
	}
	daveReqs, err := chat.ConvoListConvoRequests(ctx, as(c.Dave), "", 50)
	if err != nil {
		t.Fatalf("dave listConvoRequests: %v", err)
	}
	pending := 0
	for _, r := range daveReqs.Requests {
		if jr := r.GroupDefs_JoinRequestConvoView; jr != nil && jr.ConvoId == g.Id {
			pending++
		}
	}
	if pending != 1 {
		t.Errorf("dave sees %d pending requests to join the group, want 1", pending)
	}
}
