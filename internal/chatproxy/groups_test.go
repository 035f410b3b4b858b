package chatproxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/internal/lex/lexval"
)

func groupConvoJSON(id, name string) map[string]any {
	return map[string]any{"convo": map[string]any{"id": id, "rev": "r1", "members": []any{}, "muted": false, "unreadCount": 0,
		"kind": map[string]any{"$type": "chat.bsky.convo.defs#groupConvo", "name": name, "createdAt": "2026-03-04T05:06:07Z",
			"lockStatus": "unlocked", "lockStatusModerationOverride": false, "memberCount": 3, "memberLimit": 100}}}
}

// Each group call reaches its method with the lexicon's input and returns
// the convo it answered.
func TestGroupCallsSendTheirInput(t *testing.T) {
	bodies := map[string]map[string]any{}
	f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
		nsid := strings.TrimPrefix(r.URL.Path, "/xrpc/")
		if r.Method == http.MethodPost {
			raw, _ := io.ReadAll(r.Body)
			if err := lexval.Input(nsid, raw); err != nil {
				t.Errorf("%s input: %v", nsid, err)
			}
			var in map[string]any
			_ = json.Unmarshal(raw, &in)
			bodies[nsid] = in
		} else if err := lexval.Params(nsid, r.URL.Query()); err != nil {
			t.Errorf("%s params: %v", nsid, err)
		}
		switch nsid {
		case "chat.bsky.actor.getStatus":
			writeJSON(w, 200, map[string]any{"chatDisabled": false, "canCreateGroups": true, "groupMemberLimit": 100})
		case "chat.bsky.convo.getConvoMembers":
			if r.URL.Query().Get("convoId") != "g1" || r.URL.Query().Get("cursor") != "c0" || r.URL.Query().Get("limit") != "100" {
				t.Errorf("getConvoMembers query %v", r.URL.Query())
			}
			writeJSON(w, 200, map[string]any{"cursor": "c1", "members": []any{
				map[string]any{"did": "did:plc:alice", "handle": "alice.test",
					"kind": map[string]any{"$type": "chat.bsky.actor.defs#groupConvoMember", "role": "owner"}},
			}})
		default:
			writeJSON(w, 200, groupConvoJSON("g1", "Weekend"))
		}
	})
	c := f.client()
	ctx := context.Background()

	st, err := c.GetStatus(ctx)
	if err != nil || !st.CanCreateGroups || st.GroupMemberLimit != 100 {
		t.Fatalf("GetStatus = %+v, %v", st, err)
	}
	calls := []struct {
		nsid string
		call func() (*chat.ConvoDefs_ConvoView, error)
		want map[string]any
	}{
		{"chat.bsky.group.createGroup", func() (*chat.ConvoDefs_ConvoView, error) {
			return c.CreateGroup(ctx, "Weekend", []string{"did:plc:bob"})
		}, map[string]any{"name": "Weekend", "members": []any{"did:plc:bob"}}},
		{"chat.bsky.group.addMembers", func() (*chat.ConvoDefs_ConvoView, error) { return c.AddMembers(ctx, "g1", []string{"did:plc:carol"}) },
			map[string]any{"convoId": "g1", "members": []any{"did:plc:carol"}}},
		{"chat.bsky.group.removeMembers", func() (*chat.ConvoDefs_ConvoView, error) {
			return c.RemoveMembers(ctx, "g1", []string{"did:plc:carol"})
		},
			map[string]any{"convoId": "g1", "members": []any{"did:plc:carol"}}},
		{"chat.bsky.group.editGroup", func() (*chat.ConvoDefs_ConvoView, error) { return c.EditGroup(ctx, "g1", "Plans") },
			map[string]any{"convoId": "g1", "name": "Plans"}},
		{"chat.bsky.convo.lockConvo", func() (*chat.ConvoDefs_ConvoView, error) { return c.LockConvo(ctx, "g1") }, map[string]any{"convoId": "g1"}},
		{"chat.bsky.convo.unlockConvo", func() (*chat.ConvoDefs_ConvoView, error) { return c.UnlockConvo(ctx, "g1") }, map[string]any{"convoId": "g1"}},
	}
	for _, tc := range calls {
		v, err := tc.call()
		if err != nil || v.Id != "g1" || v.Kind == nil || v.Kind.ConvoDefs_GroupConvo == nil || v.Kind.ConvoDefs_GroupConvo.Name != "Weekend" {
			t.Errorf("%s = %+v, %v", tc.nsid, v, err)
		}
		got, _ := json.Marshal(bodies[tc.nsid])
		want, _ := json.Marshal(tc.want)
		if string(got) != string(want) {
			t.Errorf("%s input = %s, want %s", tc.nsid, got, want)
		}
	}
	page, err := c.GetConvoMembers(ctx, "g1", "c0", 100)
	if err != nil || page.Cursor != "c1" || len(page.Members) != 1 ||
		*page.Members[0].Kind.ActorDefs_GroupConvoMember.Role != "owner" {
		t.Fatalf("GetConvoMembers = %+v, %v", page, err)
	}
}

// The group errors of the lexicons get their reason and a human sentence;
// a member refusal is worded for groups and names the person.
func TestGroupErrorsAreWorded(t *testing.T) {
	for _, tc := range []struct {
		name, recipient string
		call            func(c *chatproxy.Client) error
		reason, msg     string
	}{
		{"UserForbidsGroups", "carol.test", func(c *chatproxy.Client) error {
			_, err := c.CreateGroup(context.Background(), "G", []string{"did:plc:carol"})
			return err
		}, chatproxy.ReasonUserForbidsGroups, "carol.test does not accept group invitations."},
		{"NotFollowedBySender", "carol.test", func(c *chatproxy.Client) error {
			_, err := c.AddMembers(context.Background(), "g1", []string{"did:plc:carol"})
			return err
		}, chatproxy.ReasonNotFollowedBySender, "carol.test only accepts group invitations from people they follow."},
		{"BlockedActor", "", func(c *chatproxy.Client) error {
			_, err := c.CreateGroup(context.Background(), "G", []string{"did:plc:carol"})
			return err
		}, chatproxy.ReasonBlocked, "One of these people can't be added because one of you has blocked the other."},
		{"InsufficientRole", "", func(c *chatproxy.Client) error {
			_, err := c.RemoveMembers(context.Background(), "g1", []string{"did:plc:carol"})
			return err
		}, chatproxy.ReasonNotOwner, "Only the group's owner can do that."},
		{"ConvoLockedByModeration", "", func(c *chatproxy.Client) error {
			_, err := c.UnlockConvo(context.Background(), "g1")
			return err
		}, chatproxy.ReasonLockedByModeration, "This group was locked by Bluesky's moderators, so it can't be unlocked."},
		{"MemberLimitReached", "", func(c *chatproxy.Client) error {
			_, err := c.AddMembers(context.Background(), "g1", []string{"did:plc:carol"})
			return err
		}, chatproxy.ReasonMemberLimitReached, "The group is full."},
		{"NewAccountCannotCreateGroup", "", func(c *chatproxy.Client) error {
			_, err := c.CreateGroup(context.Background(), "G", []string{"did:plc:carol"})
			return err
		}, chatproxy.ReasonNewAccountNoGroups, "Your account is too new to create group chats. Please try again later."},
		{"OwnerCannotLeave", "", func(c *chatproxy.Client) error {
			_, err := c.LeaveConvo(context.Background(), "g1")
			return err
		}, chatproxy.ReasonOwnerCannotLeave, "As the owner, lock the group before you leave it."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePDS(t, func(w http.ResponseWriter, r *http.Request) {
				if err := lexval.Error(strings.TrimPrefix(r.URL.Path, "/xrpc/"), tc.name); err != nil {
					t.Error(err)
				}
				writeJSON(w, 400, xrpcErr(tc.name, "upstream words"))
			})
			err := tc.call(f.client().ForRecipient(tc.recipient))
			if apperr.ReasonOf(err) != tc.reason || apperr.MessageOf(err) != tc.msg {
				t.Fatalf("err = reason %q message %q, want %q %q", apperr.ReasonOf(err), apperr.MessageOf(err), tc.reason, tc.msg)
			}
		})
	}
}
