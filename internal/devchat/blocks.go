package devchat

import (
	"context"
	"encoding/json"

	appbsky "github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/lex/chat"
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

// fillViewerStates sets the viewer state of every profile other than the
// viewer's own, as Bluesky's service does (app.bsky.actor.defs#viewerState):
// blocking, the URI of the viewer's block record of them, and blockedBy.
// Clients decide from it what a blocked conversation shows. A repository
// that cannot be read leaves the state out.
func (s *Server) fillViewerStates(ctx context.Context, viewer syntax.DID, ps []*chat.ActorDefs_ProfileViewBasic) {
	if viewer == "" || len(ps) == 0 {
		return
	}
	mine, err := s.subjects(ctx, viewer, collBlock)
	if err != nil {
		s.log.Warn("reading blocks", "did", viewer.String(), "err", err)
		return
	}
	blockedBy := map[string]*bool{}
	for _, p := range ps {
		if p == nil || p.Did == viewer.String() {
			continue
		}
		by, ok := blockedBy[p.Did]
		if !ok {
			b, err := s.hasSubject(ctx, syntax.DID(p.Did), collBlock, viewer)
			if err != nil {
				s.log.Warn("reading blocks", "did", p.Did, "err", err)
				continue
			}
			by = &b
			blockedBy[p.Did] = by
		}
		st := &appbsky.ActorDefs_ViewerState{BlockedBy: by}
		if uri, ok := mine[p.Did]; ok {
			st.Blocking = &uri
		}
		p.Viewer = st
	}
}

// subjects maps the subject of every record of collection in who's
// repository to the record's URI.
func (s *Server) subjects(ctx context.Context, who syntax.DID, collection syntax.NSID) (map[string]string, error) {
	out := map[string]string{}
	err := s.eachSubject(ctx, who, collection, func(subject, uri string) bool {
		out[subject] = uri
		return true
	})
	return out, err
}

// eachSubject calls f with the subject and URI of the records of
// collection in who's repository, page by page (at most maxFollowPages),
// until f returns false.
func (s *Server) eachSubject(ctx context.Context, who syntax.DID, collection syntax.NSID, f func(subject, uri string) bool) error {
	cursor := ""
	for range maxFollowPages {
		recs, next, err := s.records.ListRecords(ctx, who, collection, cursor, 100)
		if err != nil {
			return err
		}
		for _, r := range recs {
			var v struct {
				Subject string `json:"subject"`
			}
			if json.Unmarshal(r.Value, &v) == nil && v.Subject != "" && !f(v.Subject, r.URI) {
				return nil
			}
		}
		if next == "" || next == cursor || len(recs) == 0 {
			return nil
		}
		cursor = next
	}
	return nil
}
