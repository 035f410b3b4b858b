package devchat

import (
	"context"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// checkBlocks returns BlockedActor or BlockedSubject when a block stands
// between actor and subject, or nil.
//
// stub: the real check comes from the blocks work
func (s *Server) checkBlocks(ctx context.Context, actor, subject syntax.DID) *xrpcError {
	return nil
}
