package live

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

// Cluster shares each user's poller among several hubs (instances of the
// app on one database): the instance holding a user's lease calls getLog
// and publishes what it got; the others read the published entries
// instead, so every instance's pages see the same events with the same
// ids and resume by Last-Event-ID as on one instance. Config.Cluster nil
// is one instance: the hub polls for every user with pages, as always.
// internal/livepg implements it on Postgres.
type Cluster interface {
	// Run keeps this instance's leases until ctx is done, then gives them
	// up. Every tick it takes or renews the leases of m.Want's users,
	// gives up those of users no longer wanted, and tells m.Lead which it
	// holds; it calls m.Published when another instance published for a
	// user.
	Run(ctx context.Context, m Members) error
	// Publish records, for did whose lease this instance holds, the
	// entries of one getLog answer (none for the first call: history) and
	// the cursor after them, and tells the other instances. It records
	// nothing and fails when another instance holds the lease now.
	Publish(ctx context.Context, did syntax.DID, cursor string, entries []Entry) error
	// Since returns the published entries of did with rev > after, in rev
	// order, and the cursor after the last published answer; it fails
	// with ErrUnpublished while the current holder has published nothing.
	Since(ctx context.Context, did syntax.DID, after string) (entries []Entry, cursor string, err error)
}

// ErrUnpublished is Cluster.Since's error while the holder of a user's
// lease has published nothing yet: the poller waits for it (Published).
var ErrUnpublished = errors.New("live: nothing published yet")

// Entry is one published getLog entry: its rev and the entry as JSON
// (with $type).
type Entry struct {
	Rev  string
	JSON []byte
}

// Members is the hub as its Cluster sees it.
type Members interface {
	// Want returns the users whose poller runs on this instance (pages
	// connected, or within the grace period).
	Want() []syntax.DID
	// Lead says which users' leases this instance holds now: it polls
	// getLog for them, and reads the published entries for the others.
	Lead(held map[syntax.DID]bool)
	// Published says that another instance published entries for did.
	Published(did syntax.DID)
}

// members is the hub's Members.
type members struct{ h *Hub }

func (m members) Want() []syntax.DID {
	m.h.mu.Lock()
	defer m.h.mu.Unlock()
	var out []syntax.DID
	for did, u := range m.h.users {
		if u.polling {
			out = append(out, did)
		}
	}
	return out
}

func (m members) Lead(held map[syntax.DID]bool) {
	m.h.mu.Lock()
	defer m.h.mu.Unlock()
	for did, u := range m.h.users {
		lead := held[did]
		if lead && !u.lead {
			u.pollNow = true // take over at once, from the last published cursor
			u.poke()
		}
		u.lead = lead
	}
}

func (m members) Published(did syntax.DID) {
	m.h.mu.Lock()
	defer m.h.mu.Unlock()
	if u := m.h.users[did]; u != nil && !u.lead {
		u.pollNow = true
		u.poke()
	}
}

// getLog is the poller's one getLog call for u (initial: the first, whose
// entries are history): the LogSource's answer when there is no Cluster or
// this instance leads u (published for the other instances), otherwise the
// published entries after cursor, as a getLog answer.
func (h *Hub) getLog(ctx context.Context, u *userState, user User, cursor string, initial bool) (*chat.ConvoGetLog_Output, error) {
	c := h.cfg.Cluster
	if c == nil {
		return h.cfg.Source.GetLog(ctx, user, cursor)
	}
	h.mu.Lock()
	lead := u.lead
	h.mu.Unlock()
	if !lead {
		return h.published(ctx, c, user.DID, cursor)
	}
	out, err := h.cfg.Source.GetLog(ctx, user, cursor)
	if err != nil || out == nil {
		return out, err
	}
	next := cursor
	if out.Cursor != nil {
		next = max(next, *out.Cursor)
	}
	var entries []Entry
	for _, e := range out.Logs {
		m := unionMember(e)
		if e == nil || m == nil {
			continue
		}
		rev, _, _ := commonFields(m)
		next = max(next, rev)
		if initial || rev <= cursor {
			continue // history, or already published
		}
		// Marshalled before the entry is shared (see Event).
		if b, err := json.Marshal(e); err == nil {
			entries = append(entries, Entry{Rev: rev, JSON: b})
		}
	}
	if err := c.Publish(ctx, user.DID, next, entries); err != nil {
		h.log.Warn("live: publishing getLog entries failed", "did", user.DID.String(), "err", err)
	}
	return out, nil
}

// published is getLog on an instance that does not lead the user.
func (h *Hub) published(ctx context.Context, c Cluster, did syntax.DID, cursor string) (*chat.ConvoGetLog_Output, error) {
	entries, next, err := c.Since(ctx, did, cursor)
	if err != nil {
		return nil, err
	}
	out := &chat.ConvoGetLog_Output{Logs: make([]*chat.ConvoGetLog_Output_Logs_Elem, 0, len(entries))}
	for _, en := range entries {
		var e chat.ConvoGetLog_Output_Logs_Elem
		if err := json.Unmarshal(en.JSON, &e); err != nil {
			h.log.Warn("live: skipped a published entry", "did", did.String(), "rev", en.Rev, "err", err)
			continue
		}
		out.Logs = append(out.Logs, &e)
	}
	if next != "" {
		out.Cursor = &next
	}
	return out, nil
}
