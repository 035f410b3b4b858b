package chatproxy

import (
	"context"
	"strings"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/lex/chat"
)

// Join rules of chat.bsky.group.defs#joinRule.
const (
	JoinRuleAnyone          = "anyone"
	JoinRuleFollowedByOwner = "followedByOwner"
)

// Statuses of chat.bsky.group.requestJoin's answer.
const (
	JoinStatusJoined  = "joined"
	JoinStatusPending = "pending"
)

// JoinLinkSettings are the owner's choices for a group's join link: who may
// use it (JoinRuleAnyone or JoinRuleFollowedByOwner) and whether the owner
// approves each request.
type JoinLinkSettings struct {
	JoinRule        string
	RequireApproval bool
}

func (s JoinLinkSettings) check() error {
	if s.JoinRule != JoinRuleAnyone && s.JoinRule != JoinRuleFollowedByOwner {
		return &apperr.Error{Code: apperr.Invalid, Reason: ReasonInvalidRequest, Message: "Choose who can join."}
	}
	return nil
}

// CreateJoinLink calls chat.bsky.group.createJoinLink and returns the new
// link. The service keeps one enabled link per group:
// ReasonJoinLinkExists when there is one already. Other refusals:
// ConvoNotFound, NotOwner.
func (c *Client) CreateJoinLink(ctx context.Context, convoID string, s JoinLinkSettings) (*chat.GroupDefs_JoinLinkView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return c.joinLinkCall(ctx, func(ctx context.Context) (*chat.GroupDefs_JoinLinkView, error) {
		out, err := chat.GroupCreateJoinLink(ctx, c.api, &chat.GroupCreateJoinLink_Input{
			ConvoId: convoID, JoinRule: &s.JoinRule, RequireApproval: &s.RequireApproval})
		if err != nil {
			return nil, err
		}
		return out.JoinLink, nil
	})
}

// EditJoinLink calls chat.bsky.group.editJoinLink with both settings and
// returns the link (NoJoinLink when the group has none).
func (c *Client) EditJoinLink(ctx context.Context, convoID string, s JoinLinkSettings) (*chat.GroupDefs_JoinLinkView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return c.joinLinkCall(ctx, func(ctx context.Context) (*chat.GroupDefs_JoinLinkView, error) {
		out, err := chat.GroupEditJoinLink(ctx, c.api, &chat.GroupEditJoinLink_Input{
			ConvoId: convoID, JoinRule: &s.JoinRule, RequireApproval: &s.RequireApproval})
		if err != nil {
			return nil, err
		}
		return out.JoinLink, nil
	})
}

// EnableJoinLink calls chat.bsky.group.enableJoinLink (re-enables the
// disabled link) and returns it.
func (c *Client) EnableJoinLink(ctx context.Context, convoID string) (*chat.GroupDefs_JoinLinkView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	return c.joinLinkCall(ctx, func(ctx context.Context) (*chat.GroupDefs_JoinLinkView, error) {
		out, err := chat.GroupEnableJoinLink(ctx, c.api, &chat.GroupEnableJoinLink_Input{ConvoId: convoID})
		if err != nil {
			return nil, err
		}
		return out.JoinLink, nil
	})
}

// DisableJoinLink calls chat.bsky.group.disableJoinLink and returns the
// disabled link.
func (c *Client) DisableJoinLink(ctx context.Context, convoID string) (*chat.GroupDefs_JoinLinkView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	return c.joinLinkCall(ctx, func(ctx context.Context) (*chat.GroupDefs_JoinLinkView, error) {
		out, err := chat.GroupDisableJoinLink(ctx, c.api, &chat.GroupDisableJoinLink_Input{ConvoId: convoID})
		if err != nil {
			return nil, err
		}
		return out.JoinLink, nil
	})
}

// joinLinkCall runs one of the link calls and checks it returned a link.
func (c *Client) joinLinkCall(ctx context.Context, call func(ctx context.Context) (*chat.GroupDefs_JoinLinkView, error)) (*chat.GroupDefs_JoinLinkView, error) {
	var link *chat.GroupDefs_JoinLinkView
	err := c.do(ctx, func(ctx context.Context) (err error) {
		link, err = call(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	if link == nil || link.Code == "" {
		return nil, badResponse("chat.bsky.group join link", errMissing("joinLink"))
	}
	return link, nil
}

// JoinLinkPreview is one answer of chat.bsky.group.getJoinLinkPreviews:
// exactly one of the three views is set.
type JoinLinkPreview = chat.GroupGetJoinLinkPreviews_Output_JoinLinkPreviews_Elem

// GetJoinLinkPreview calls chat.bsky.group.getJoinLinkPreviews for one
// code. A code that is not a link gives the invalid view (no error); a
// code that cannot be one (empty, too long, not [A-Za-z0-9_-]) gives it
// without a call.
func (c *Client) GetJoinLinkPreview(ctx context.Context, code string) (*JoinLinkPreview, error) {
	if !ValidJoinCode(code) {
		return &JoinLinkPreview{GroupDefs_InvalidJoinLinkPreviewView: &chat.GroupDefs_InvalidJoinLinkPreviewView{Code: code}}, nil
	}
	var out *chat.GroupGetJoinLinkPreviews_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.GroupGetJoinLinkPreviews(ctx, c.api, []string{code})
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(out.JoinLinkPreviews) != 1 || out.JoinLinkPreviews[0] == nil {
		return nil, badResponse("chat.bsky.group.getJoinLinkPreviews", errMissing("joinLinkPreviews"))
	}
	p := out.JoinLinkPreviews[0]
	if p.GroupDefs_JoinLinkPreviewView == nil && p.GroupDefs_DisabledJoinLinkPreviewView == nil && p.GroupDefs_InvalidJoinLinkPreviewView == nil {
		// A preview kind this client does not know: say the link cannot be used.
		p = &JoinLinkPreview{GroupDefs_InvalidJoinLinkPreviewView: &chat.GroupDefs_InvalidJoinLinkPreviewView{Code: code}}
	}
	return p, nil
}

// ValidJoinCode reports whether code can be a join link code: 1-64
// characters of [A-Za-z0-9_-].
func ValidJoinCode(code string) bool {
	if code == "" || len(code) > 64 {
		return false
	}
	return strings.IndexFunc(code, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) < 0
}

// RequestJoin calls chat.bsky.group.requestJoin: Status JoinStatusJoined
// (with the convo) or JoinStatusPending. Refusals: FollowRequired,
// LinkDisabled, MemberLimitReached, UserKicked, InvalidCode (Reason
// JoinLinkInvalid), ConvoLocked.
func (c *Client) RequestJoin(ctx context.Context, code string) (*chat.GroupRequestJoin_Output, error) {
	if !ValidJoinCode(code) {
		return nil, invalid(kJoinLinkInvalid, "")
	}
	var out *chat.GroupRequestJoin_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.GroupRequestJoin(ctx, c.api, &chat.GroupRequestJoin_Input{Code: code})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// WithdrawJoinRequest calls chat.bsky.group.withdrawJoinRequest for the
// viewer's pending request to join convoID.
func (c *Client) WithdrawJoinRequest(ctx context.Context, convoID string) error {
	if err := needConvoID(convoID); err != nil {
		return err
	}
	return c.do(ctx, func(ctx context.Context) error {
		_, err := chat.GroupWithdrawJoinRequest(ctx, c.api, &chat.GroupWithdrawJoinRequest_Input{ConvoId: convoID})
		return err
	})
}

// ListJoinRequests calls chat.bsky.group.listJoinRequests (the owner's
// view). limit is 1..100 (0 → the server's default).
func (c *Client) ListJoinRequests(ctx context.Context, convoID, cursor string, limit int64) (*chat.GroupListJoinRequests_Output, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	var out *chat.GroupListJoinRequests_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.GroupListJoinRequests(ctx, c.api, convoID, cursor, clampLimit(limit))
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ApproveJoinRequest calls chat.bsky.group.approveJoinRequest and returns
// the group (MemberLimitReached when it is full).
func (c *Client) ApproveJoinRequest(ctx context.Context, convoID, member string) (*chat.ConvoDefs_ConvoView, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	if err := needMembers([]string{member}); err != nil {
		return nil, err
	}
	var out *chat.GroupApproveJoinRequest_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.GroupApproveJoinRequest(ctx, c.api, &chat.GroupApproveJoinRequest_Input{ConvoId: convoID, Member: member})
		return err
	})
	if err != nil {
		return nil, err
	}
	return out.Convo, nil
}

// RejectJoinRequest calls chat.bsky.group.rejectJoinRequest.
func (c *Client) RejectJoinRequest(ctx context.Context, convoID, member string) error {
	if err := needConvoID(convoID); err != nil {
		return err
	}
	if err := needMembers([]string{member}); err != nil {
		return err
	}
	return c.do(ctx, func(ctx context.Context) error {
		_, err := chat.GroupRejectJoinRequest(ctx, c.api, &chat.GroupRejectJoinRequest_Input{ConvoId: convoID, Member: member})
		return err
	})
}

// UpdateJoinRequestsRead calls chat.bsky.group.updateJoinRequestsRead:
// the owner has seen every join request of convoID.
func (c *Client) UpdateJoinRequestsRead(ctx context.Context, convoID string) error {
	if err := needConvoID(convoID); err != nil {
		return err
	}
	return c.do(ctx, func(ctx context.Context) error {
		_, err := chat.GroupUpdateJoinRequestsRead(ctx, c.api, &chat.GroupUpdateJoinRequestsRead_Input{ConvoId: convoID})
		return err
	})
}
