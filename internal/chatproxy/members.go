package chatproxy

import (
	"context"

	"github.com/skydm/skydm/internal/lex/chat"
)

// MemberPage is one page of a convo's members (getConvoMembers).
type MemberPage struct {
	Members []*chat.ActorDefs_ProfileViewBasic
	Cursor  string
}

// GetConvoMembers calls chat.bsky.convo.getConvoMembers: one page of the
// convo's members (limit 1..100; 0 → the server's default of 50), each
// with its role in kind (groupConvoMember) for a group. A convo that does
// not exist or that the viewer left gives Reason ConvoNotFound; other
// failures an *apperr.Error as well.
func (c *Client) GetConvoMembers(ctx context.Context, convoID, cursor string, limit int64) (*MemberPage, error) {
	if err := needConvoID(convoID); err != nil {
		return nil, err
	}
	var out *chat.ConvoGetConvoMembers_Output
	err := c.do(ctx, func(ctx context.Context) (err error) {
		out, err = chat.ConvoGetConvoMembers(ctx, c.api, convoID, cursor, clampLimit(limit))
		return err
	})
	if err != nil {
		return nil, err
	}
	page := &MemberPage{Cursor: deref(out.Cursor), Members: make([]*chat.ActorDefs_ProfileViewBasic, 0, len(out.Members))}
	for _, m := range out.Members {
		if m != nil && m.Did != "" {
			page.Members = append(page.Members, m)
		}
	}
	return page, nil
}
