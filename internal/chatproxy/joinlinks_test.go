package chatproxy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
)

func joinLinkJSON(status string) map[string]any {
	return map[string]any{"code": "abc1234", "enabledStatus": status, "requireApproval": true,
		"joinRule": "followedByOwner", "createdAt": "2026-03-04T05:06:07.000Z"}
}

// TestJoinLinkCallsSendTheirInputs checks each join call reaches its method
// with the lexicon's input, and a message with a join link code embeds
// chat.bsky.embed.joinLink.
func TestJoinLinkCallsSendTheirInputs(t *testing.T) {
	type seen struct {
		method string
		body   map[string]any
		query  string
	}
	var mu sync.Mutex
	got := map[string]seen{}
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		nsid := strings.TrimPrefix(r.URL.Path, "/xrpc/")
		var in map[string]any
		if r.Method == http.MethodPost {
			_ = json.NewDecoder(r.Body).Decode(&in)
		}
		mu.Lock()
		got[nsid] = seen{r.Method, in, r.URL.RawQuery}
		mu.Unlock()
		var out any = map[string]any{}
		switch nsid {
		case "chat.bsky.group.createJoinLink", "chat.bsky.group.editJoinLink", "chat.bsky.group.enableJoinLink":
			out = map[string]any{"joinLink": joinLinkJSON("enabled")}
		case "chat.bsky.group.disableJoinLink":
			out = map[string]any{"joinLink": joinLinkJSON("disabled")}
		case "chat.bsky.group.requestJoin":
			out = map[string]any{"status": "pending"}
		case "chat.bsky.group.listJoinRequests":
			out = map[string]any{"requests": []any{map[string]any{"convoId": "g1", "requestedAt": "2026-03-04T05:06:07.000Z",
				"requestedBy": map[string]any{"did": carolDID, "handle": "carol.test"}}}}
		case "chat.bsky.group.approveJoinRequest":
			out = map[string]any{"convo": convoJSON("g1")}
		case "chat.bsky.convo.sendMessage":
			out = messageJSON("m2")
		}
		writeJSON(w, 200, out)
	})
	c := f.client()
	ctx := context.Background()
	s := chatproxy.JoinLinkSettings{JoinRule: chatproxy.JoinRuleFollowedByOwner, RequireApproval: true}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	link, err := c.CreateJoinLink(ctx, "g1", s)
	must(err)
	if link.Code != "abc1234" {
		t.Errorf("created link code %q", link.Code)
	}
	_, err = c.EditJoinLink(ctx, "g1", chatproxy.JoinLinkSettings{JoinRule: chatproxy.JoinRuleAnyone})
	must(err)
	_, err = c.DisableJoinLink(ctx, "g1")
	must(err)
	_, err = c.EnableJoinLink(ctx, "g1")
	must(err)
	out, err := c.RequestJoin(ctx, "abc1234")
	must(err)
	if out.Status != chatproxy.JoinStatusPending {
		t.Errorf("requestJoin status %q", out.Status)
	}
	must(c.WithdrawJoinRequest(ctx, "g1"))
	reqs, err := c.ListJoinRequests(ctx, "g1", "", 500)
	must(err)
	if len(reqs.Requests) != 1 || reqs.Requests[0].RequestedBy.Did != carolDID {
		t.Errorf("listJoinRequests = %+v", reqs.Requests)
	}
	_, err = c.ApproveJoinRequest(ctx, "g1", carolDID)
	must(err)
	must(c.RejectJoinRequest(ctx, "g1", carolDID))
	must(c.UpdateJoinRequestsRead(ctx, "g1"))
	_, err = c.SendMessage(ctx, "g1", chatproxy.MessageInput{Text: "join us", JoinLinkCode: "abc1234"})
	must(err)

	want := map[string]seen{
		"chat.bsky.group.createJoinLink":         {"POST", map[string]any{"convoId": "g1", "joinRule": "followedByOwner", "requireApproval": true}, ""},
		"chat.bsky.group.editJoinLink":           {"POST", map[string]any{"convoId": "g1", "joinRule": "anyone", "requireApproval": false}, ""},
		"chat.bsky.group.disableJoinLink":        {"POST", map[string]any{"convoId": "g1"}, ""},
		"chat.bsky.group.enableJoinLink":         {"POST", map[string]any{"convoId": "g1"}, ""},
		"chat.bsky.group.requestJoin":            {"POST", map[string]any{"code": "abc1234"}, ""},
		"chat.bsky.group.withdrawJoinRequest":    {"POST", map[string]any{"convoId": "g1"}, ""},
		"chat.bsky.group.listJoinRequests":       {"GET", nil, "convoId=g1&limit=100"},
		"chat.bsky.group.approveJoinRequest":     {"POST", map[string]any{"convoId": "g1", "member": carolDID}, ""},
		"chat.bsky.group.rejectJoinRequest":      {"POST", map[string]any{"convoId": "g1", "member": carolDID}, ""},
		"chat.bsky.group.updateJoinRequestsRead": {"POST", map[string]any{"convoId": "g1"}, ""},
		"chat.bsky.convo.sendMessage": {"POST", map[string]any{"convoId": "g1", "message": map[string]any{"text": "join us",
			"embed": map[string]any{"$type": "chat.bsky.embed.joinLink", "code": "abc1234"}}}, ""},
	}
	for nsid, w := range want {
		if g, ok := got[nsid]; !ok {
			t.Errorf("%s was not called", nsid)
		} else if !reflect.DeepEqual(g, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", nsid, g, w)
		}
	}
}

// TestJoinRefusalsAreWorded checks each refusal the join methods declare
// reaches the person as its reason with words, the owner named where it
// matters.
func TestJoinRefusalsAreWorded(t *testing.T) {
	tests := []struct {
		name, xrpc string
		code       apperr.Code
		reason     string
		msg        string
	}{
		{"follow required", "FollowRequired", apperr.Forbidden, chatproxy.ReasonFollowRequired, "Only people Alice follows can join this group."},
		{"link disabled", "LinkDisabled", apperr.Forbidden, chatproxy.ReasonLinkDisabled, "This join link has been turned off by the group's owner."},
		{"group full", "MemberLimitReached", apperr.Conflict, chatproxy.ReasonMemberLimitReached, "The group is full."},
		{"kicked", "UserKicked", apperr.Forbidden, chatproxy.ReasonUserKicked, "You were removed from this group, so you can't join it again with this link."},
		{"no such code", "InvalidCode", apperr.NotFound, chatproxy.ReasonJoinLinkInvalid, "This join link does not exist."},
		{"locked", "ConvoLocked", apperr.Conflict, chatproxy.ReasonConvoLocked, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 400, xrpcErr(tt.xrpc, "upstream words"+secret))
			})
			_, err := f.client().ForRecipient("Alice").RequestJoin(context.Background(), "abc1234")
			e := apperr.As(err)
			if e == nil || e.Code != tt.code || e.Reason != tt.reason {
				t.Fatalf("err = %#v, want code %v reason %s", err, tt.code, tt.reason)
			}
			if tt.msg != "" && e.Message != tt.msg {
				t.Errorf("message %q, want %q", e.Message, tt.msg)
			}
			if strings.Contains(e.Message, "zz-upstream") {
				t.Errorf("upstream text reached the message: %q", e.Message)
			}
		})
	}
	t.Run("one enabled link per group", func(t *testing.T) {
		f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 400, xrpcErr("EnabledJoinLinkAlreadyExists", ""))
		})
		_, err := f.client().CreateJoinLink(context.Background(), "g1", chatproxy.JoinLinkSettings{JoinRule: "anyone"})
		if apperr.ReasonOf(err) != chatproxy.ReasonJoinLinkExists {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("not the owner", func(t *testing.T) {
		f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 403, xrpcErr("InsufficientRole", ""))
		})
		err := f.client().UpdateJoinRequestsRead(context.Background(), "g1")
		if apperr.ReasonOf(err) != chatproxy.ReasonNotOwner || apperr.MessageOf(err) != "Only the group's owner can do that." {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestJoinLinkPreviewKinds checks the three previews decode, and a code
// that cannot be one is invalid without a call.
func TestJoinLinkPreviewKinds(t *testing.T) {
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		code := r.URL.Query().Get("codes")
		var p map[string]any
		switch code {
		case "valid12":
			p = map[string]any{"$type": "chat.bsky.group.defs#joinLinkPreviewView", "convoId": "g1", "code": code, "name": "Weekend plans",
				"owner": map[string]any{"did": aliceDID, "handle": "alice.test"}, "memberCount": 3, "memberLimit": 100,
				"requireApproval": true, "joinRule": "anyone"}
		case "off1234":
			p = map[string]any{"$type": "chat.bsky.group.defs#disabledJoinLinkPreviewView", "code": code}
		case "future1":
			p = map[string]any{"$type": "chat.bsky.group.defs#somethingNew", "code": code}
		default:
			p = map[string]any{"$type": "chat.bsky.group.defs#invalidJoinLinkPreviewView", "code": code}
		}
		writeJSON(w, 200, map[string]any{"joinLinkPreviews": []any{p}})
	})
	c := f.client()
	ctx := context.Background()
	p, err := c.GetJoinLinkPreview(ctx, "valid12")
	if err != nil || p.GroupDefs_JoinLinkPreviewView == nil || p.GroupDefs_JoinLinkPreviewView.Name != "Weekend plans" {
		t.Fatalf("valid: %+v %v", p, err)
	}
	if p, err = c.GetJoinLinkPreview(ctx, "off1234"); err != nil || p.GroupDefs_DisabledJoinLinkPreviewView == nil {
		t.Fatalf("disabled: %+v %v", p, err)
	}
	if p, err = c.GetJoinLinkPreview(ctx, "nosuch1"); err != nil || p.GroupDefs_InvalidJoinLinkPreviewView == nil {
		t.Fatalf("invalid: %+v %v", p, err)
	}
	if p, err = c.GetJoinLinkPreview(ctx, "future1"); err != nil || p.GroupDefs_InvalidJoinLinkPreviewView == nil {
		t.Fatalf("unknown kind: %+v %v", p, err)
	}
	before := f.callCount("chat.bsky.group.getJoinLinkPreviews")
	if p, err = c.GetJoinLinkPreview(ctx, "../etc"); err != nil || p.GroupDefs_InvalidJoinLinkPreviewView == nil {
		t.Fatalf("bad code: %+v %v", p, err)
	}
	if f.callCount("chat.bsky.group.getJoinLinkPreviews") != before {
		t.Error("a code that cannot be one was sent upstream")
	}
}
