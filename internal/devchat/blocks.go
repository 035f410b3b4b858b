package devchat

import (
	"context"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Blocks: the members' app.bsky.graph.block records, read like follows.
// A block either way stops a direct conversation from being started or
// written to; an existing one stays readable.

// collBlock is the collection of block records.
const collBlock = syntax.NSID("app.bsky.graph.block")

// blockMessage is the message Bluesky's service gives every block refusal;
// Bluesky's app recognises a blocked send by it.
const blockMessage = "block between recipient and sender"

// checkBlocks returns BlockedActor when actor blocks subject, BlockedSubject
// when subject blocks actor, UpstreamFailure when a repository cannot be
// read, or nil.
func (s *Server) checkBlocks(ctx context.Context, actor, subject syntax.DID) *xrpcError {
	for _, c := range []struct {
		who, whom syntax.DID
		name      string
	}{{actor, subject, "BlockedActor"}, {subject, actor, "BlockedSubject"}} {
		blocked, err := s.hasSubject(ctx, c.who, collBlock, c.whom)
		if err != nil {
			s.log.Warn("reading blocks", "did", c.who.String(), "err", err)
			return upstreamFailure("could not read the members' blocks")
		}
		if blocked {
			return badRequest(c.name, blockMessage)
		}
	}
	return nil
}

// blockedPair reports whether a block exists either way between a and b,
// or the error to answer when a repository cannot be read.
func (s *Server) blockedPair(ctx context.Context, a, b syntax.DID) (bool, *xrpcError) {
	switch e := s.checkBlocks(ctx, a, b); {
	case e == nil:
		return false, nil
	case e.Name == "BlockedActor" || e.Name == "BlockedSubject":
		return true, nil
	default:
		return false, e
	}
}

// directOther returns viewer's partner in c when c is a direct convo, ""
// for a group.
func directOther(c *convo, viewer syntax.DID) syntax.DID {
	if c.group != nil {
		return ""
	}
	if others := c.others(viewer); len(others) == 1 {
		return others[0]
	}
	return ""
}
