package devchat

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

// Account methods: chat.bsky.actor.exportAccountData and deleteAccount.

// jsonLines is an application/jsonl answer: one JSON value per line.
type jsonLines []byte

// exportAccountData answers the caller's chat history as JSON lines: for
// each convo they have (oldest first), its convoView, then every message of
// their history in it, oldest first, as messageView (with replyTo) or, when
// they deleted it for themselves, deletedMessageView.
func (s *Server) exportAccountData(ctx context.Context, viewer syntax.DID, _ *http.Request) (any, error) {
	h := &hydrator{}
	var lines []any
	s.mu.Lock()
	var mine []*convo
	for _, c := range s.st.convos {
		if ms, ok := c.member[viewer]; ok && ms.active() {
			mine = append(mine, c)
		}
	}
	slices.SortFunc(mine, func(a, b *convo) int { return strings.Compare(a.id, b.id) })
	for _, c := range mine {
		ms := c.member[viewer]
		lines = append(lines, h.convoView(c, viewer))
		for _, m := range c.visibleMessages(ms) {
			mv, dv := h.message(m, ms.hidden[m.id])
			h.reply(mv, m, ms)
			if mv != nil {
				lines = append(lines, mv)
			} else {
				lines = append(lines, dv)
			}
		}
	}
	s.mu.Unlock()
	s.hydrate(ctx, h)

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			return nil, err
		}
	}
	return jsonLines(buf.Bytes()), nil
}

// deleteAccount removes the caller's chat account: they leave every convo
// (its history so far stays hidden from them, as after leaveConvo), and their
// event log and notification preferences are dropped. What they sent stays
// in the other members' histories.
func (s *Server) deleteAccount(_ context.Context, viewer syntax.DID, _ *http.Request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rev := s.nextTID()
	for _, c := range s.st.convos {
		if ms, ok := c.member[viewer]; ok && !ms.left {
			ms.left, ms.leftRev, ms.muted, ms.readRev = true, rev, false, rev
			ms.hidden = map[string]bool{}
		}
	}
	delete(s.st.logs, viewer)
	delete(s.st.prefs, viewer)
	return &chat.ActorDeleteAccount_Output{}, nil
}
