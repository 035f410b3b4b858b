package dm

import (
	"context"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/sandbox"
	"github.com/skydm/skydm/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestE2EGroupInviteRefusalOnTheSandboxPDS checks members the way the new
// group form does, through alice's own PDS (the reference PDS of the
// sandbox), from the records the accounts wrote: declarations, follows and
// blocks.
func TestE2EGroupInviteRefusalOnTheSandboxPDS(t *testing.T) {
	n := testenv.Network(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice := testenv.NewAccount(t, n)
	session := func(a sandbox.Account) func(collection, rkey string, rec map[string]any) {
		api := testenv.PasswordSession(t, n, a)
		return func(collection, rkey string, rec map[string]any) {
			t.Helper()
			rec["$type"] = collection
			if err := sandbox.PutRecord(ctx, api, collection, rkey, rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	declare := func(a sandbox.Account, incoming, groups string) {
		rec := map[string]any{"allowIncoming": incoming}
		if groups != "" {
			rec["allowGroupInvites"] = groups
		}
		session(a)("chat.bsky.actor.declaration", "self", rec)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	follows := func(a, whom sandbox.Account) {
		session(a)(collFollow, syntax.NewTIDNow(0).String(), map[string]any{"subject": whom.DID, "createdAt": now})
	}
	blocks := func(a, whom sandbox.Account) {
		session(a)(collBlock, syntax.NewTIDNow(0).String(), map[string]any{"subject": whom.DID, "createdAt": now})
	}

	follower, stranger, closed, open, blocker, blocked, fallback := testenv.NewAccount(t, n), testenv.NewAccount(t, n),
		testenv.NewAccount(t, n), testenv.NewAccount(t, n), testenv.NewAccount(t, n), testenv.NewAccount(t, n), testenv.NewAccount(t, n)
	declare(follower, "none", "following")
	follows(follower, alice)
	declare(stranger, "all", "following")
	declare(closed, "all", "none")
	declare(open, "none", "all")
	declare(blocker, "all", "all")
	blocks(blocker, alice)
	declare(blocked, "all", "all")
	blocks(alice, blocked)
	declare(fallback, "none", "")

	c := proxyChat{api: testenv.PasswordSession(t, n, alice)}
	for _, tc := range []struct {
		name string
		who  sandbox.Account
		want string
	}{
		{"follows alice, invites from people followed", follower, ""},
		{"does not follow alice", stranger, chatproxy.ReasonNotFollowedBySender},
		{"invites from no one", closed, chatproxy.ReasonUserForbidsGroups},
		{"invites from all, messages from none", open, ""},
		{"blocks alice", blocker, chatproxy.ReasonBlocked},
		{"blocked by alice", blocked, chatproxy.ReasonBlocked},
		{"no allowGroupInvites: allowIncoming none", fallback, chatproxy.ReasonUserForbidsGroups},
	} {
		got, err := c.GroupInviteRefusal(ctx, syntax.DID(tc.who.DID))
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
