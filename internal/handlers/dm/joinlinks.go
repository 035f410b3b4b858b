package dm

import (
	"context"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/lex/chat"
)

// joinChat is what the pages of join links and join requests need of Chat
// (chatproxy/joinlinks.go).
type joinChat interface {
	CreateJoinLink(ctx context.Context, convoID string, s chatproxy.JoinLinkSettings) (*chat.GroupDefs_JoinLinkView, error)
	EditJoinLink(ctx context.Context, convoID string, s chatproxy.JoinLinkSettings) (*chat.GroupDefs_JoinLinkView, error)
	EnableJoinLink(ctx context.Context, convoID string) (*chat.GroupDefs_JoinLinkView, error)
	DisableJoinLink(ctx context.Context, convoID string) (*chat.GroupDefs_JoinLinkView, error)
	// GetJoinLinkPreview returns exactly one of the three previews of code.
	GetJoinLinkPreview(ctx context.Context, code string) (*chatproxy.JoinLinkPreview, error)
	RequestJoin(ctx context.Context, code string) (*chat.GroupRequestJoin_Output, error)
	WithdrawJoinRequest(ctx context.Context, convoID string) error
	ListJoinRequests(ctx context.Context, convoID, cursor string, limit int64) (*chat.GroupListJoinRequests_Output, error)
	ApproveJoinRequest(ctx context.Context, convoID, member string) (*chat.ConvoDefs_ConvoView, error)
	RejectJoinRequest(ctx context.Context, convoID, member string) error
	UpdateJoinRequestsRead(ctx context.Context, convoID string) error
}
