package dm

import (
	"context"
	"errors"

	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/chatproxy"
)

// How a member is checked before they are added to a group. Bluesky's app
// reads the member's profile from the AppView (associated.chat.
// allowGroupInvites and viewer.followedBy: canBeAddedToGroup in
// social-app's src/components/dms/util.ts); skydm reads the same facts from
// the records themselves through the viewer's PDS, so it works wherever
// the PDS can read the member's repository (and in the sandbox, which has
// no AppView): the member's chat.bsky.actor.declaration/self, their
// app.bsky.graph.follow records, and app.bsky.graph.block both ways. What
// cannot be read is not held against the member: createGroup and
// addMembers are all or nothing, so the chat service's refusal still
// stops everything.

const (
	collFollow = "app.bsky.graph.follow"
	collBlock  = "app.bsky.graph.block"
	// maxRecordPages bounds each walk through a repository's follows or
	// blocks (100 records a page).
	maxRecordPages = 20
)

// GroupInviteRefusal implements groupChat: allowGroupInvites (unset →
// allowIncoming, unset → "following", as social-app resolves it): "none"
// refuses, "following" needs member to follow the viewer; a block either
// way refuses.
func (c proxyChat) GroupInviteRefusal(ctx context.Context, member syntax.DID) (string, error) {
	self := c.repo()
	if blocked, known := c.hasRecordWithSubject(ctx, self, collBlock, member.String()); known && blocked {
		return chatproxy.ReasonBlocked, nil
	}
	if blocked, known := c.hasRecordWithSubject(ctx, member.String(), collBlock, self); known && blocked {
		return chatproxy.ReasonBlocked, nil
	}
	switch c.allowGroupInvites(ctx, member) {
	case "none":
		return chatproxy.ReasonUserForbidsGroups, nil
	case "all", "": // "": unreadable, so the chat service decides
		return "", nil
	}
	if follows, known := c.hasRecordWithSubject(ctx, member.String(), collFollow, self); known && !follows {
		return chatproxy.ReasonNotFollowedBySender, nil
	}
	return "", nil
}

// allowGroupInvites is member's effective group invitation rule: "all",
// "none", "following", or "" when their declaration could not be read.
func (c proxyChat) allowGroupInvites(ctx context.Context, member syntax.DID) string {
	var out struct {
		Value struct {
			AllowIncoming     string `json:"allowIncoming"`
			AllowGroupInvites string `json:"allowGroupInvites"`
		} `json:"value"`
	}
	err := c.api.Get(ctx, "com.atproto.repo.getRecord", map[string]any{
		"repo": member.String(), "collection": declarationType, "rkey": "self",
	}, &out)
	var apiErr *atclient.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Name == "RecordNotFound":
		return "following"
	case err != nil:
		return ""
	}
	for _, v := range []string{out.Value.AllowGroupInvites, out.Value.AllowIncoming} {
		switch v {
		case "all", "none", "following":
			return v
		case "":
			continue
		}
		return "none" // a value the lexicon does not know: refuse, as social-app does
	}
	return "following"
}

// hasRecordWithSubject reports whether repo has a record in collection
// whose subject is subject; known is false when the records could not be
// read to the end (the PDS does not hold repo, or too many pages).
func (c proxyChat) hasRecordWithSubject(ctx context.Context, repo, collection, subject string) (found, known bool) {
	cursor := ""
	for range maxRecordPages {
		params := map[string]any{"repo": repo, "collection": collection, "limit": 100}
		if cursor != "" {
			params["cursor"] = cursor
		}
		var out struct {
			Cursor  string `json:"cursor"`
			Records []struct {
				Value struct {
					Subject string `json:"subject"`
				} `json:"value"`
			} `json:"records"`
		}
		if err := c.api.Get(ctx, "com.atproto.repo.listRecords", params, &out); err != nil {
			return false, false
		}
		for _, r := range out.Records {
			if r.Value.Subject == subject {
				return true, true
			}
		}
		if out.Cursor == "" || out.Cursor == cursor || len(out.Records) == 0 {
			return false, true
		}
		cursor = out.Cursor
	}
	return false, false
}
