// Package demo seeds a fresh sandbox network (internal/sandbox) with the
// conversations `make demo` shows: alice.test and bob.test with some history
// (a link, a mention of @bob.test, a ❤️ reaction from bob), bob's chat
// declaration opened to everyone, a pending message request to bob from
// carol.test, and the group "Weekend plans" (group.go) with dave.test's
// pending request to join.
//
// Everything goes through the real stack: password sessions on the sandbox
// PDS, chat.bsky.* calls proxied by the PDS to the chat service
// (internal/chatproxy), facets detected with internal/richtext.
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"

	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/richtext"
	"github.com/skydm/skydm/internal/sandbox"
)

// Reaction is the emoji bob puts on one of alice's messages.
const Reaction = "❤️"

// LinkURL is the link one of alice's messages carries as a link facet.
const LinkURL = "https://atproto.com"

// Declaration collection and the value Seed writes for bob.
const (
	declarationCollection = "chat.bsky.actor.declaration"
	allowAll              = "all"
)

// Cast names the four accounts a seed works with. Seed uses the sandbox's
// demo accounts (alice.test, bob.test, carol.test, dave.test); tests may pass
// fresh ones.
type Cast struct {
	Alice, Bob, Carol, Dave sandbox.Account
}

// line is one message of a scripted conversation.
type line struct {
	from string // "alice", "bob" or "carol"
	text string
	// wantLink / wantMention make the seed fail when detection did not
	// produce the facet, rather than showing a demo without it.
	wantLink, wantMention bool
	react                 bool // bob reacts to this message with Reaction
}

// aliceBob is the alice↔bob history. bob accepts alice's request before his
// first reply.
func aliceBob(bobHandle string) []line {
	return []line{
		{from: "alice", text: "Hey Bob! 👋 Are you around this weekend?"},
		{from: "bob", text: "Hi Alice! Mostly, yes. Saturday afternoon is free. What's up?"},
		{from: "alice", text: "I've been reading about how DMs work on the AT Protocol 📚 This is a good place to start: " + LinkURL, wantLink: true},
		{from: "bob", text: "Oh nice, I'll have a look tonight. Thanks!"},
		{from: "alice", text: "Also, @" + bobHandle + ", you still owe me a coffee ☕", wantMention: true},
		{from: "bob", text: "Ha, fair enough. Saturday at 3, at the usual place?"},
		{from: "alice", text: "Perfect, see you then!", react: true},
		{from: "bob", text: "Looking forward to it 🙂"},
	}
}

// carolToBob is carol's message request to bob.
const carolToBob = "Hi Bob! Alice said you're the person to ask about the Saturday meetup. Is there room for one more?"

// Seed fills a freshly started sandbox with the demo conversations, using
// the network's demo accounts (n.Accounts "alice", "bob", "carol", "dave", created by
// sandbox.Options.SeedDemo):
//
//   - bob's chat.bsky.actor.declaration/self gets allowIncoming "all"
//     (other fields of an existing record are kept);
//   - alice starts a conversation with bob, bob accepts it, and they exchange
//     eight messages, one with a link facet (LinkURL) and one with a mention
//     facet of @bob.test; bob reacts with Reaction to one of alice's messages
//     and reads the conversation up to then;
//   - carol sends bob a message, which stays a request for him;
//   - bob and carol accept group invitations from everyone
//     (allowGroupInvites "all"); alice makes the group FirstGroupName with
//     them, both accept, the three exchange messages (bob replies to one of
//     alice's), alice renames it GroupName and creates a join link that
//     needs her approval, and dave asks to join (pending).
//
// A conversation that already has messages (a group of that name) is left alone, so running Seed
// twice does not duplicate the history. It returns an error naming the step
// that failed (login, declaration, a message, ...), wrapping the cause (an
// *apperr.Error for chat calls); steps done before the failure stay done.
func Seed(ctx context.Context, n *sandbox.Network, logger *slog.Logger) error {
	if n == nil {
		return errors.New("demo: no sandbox network")
	}
	var c Cast
	for name, dst := range map[string]*sandbox.Account{"alice": &c.Alice, "bob": &c.Bob, "carol": &c.Carol, "dave": &c.Dave} {
		a, ok := n.Accounts[name]
		if !ok || a.DID == "" || a.Password == "" {
			return fmt.Errorf("demo: the sandbox has no %q account (start it with SeedDemo)", name)
		}
		*dst = a
	}
	return SeedCast(ctx, n, c, logger)
}

// SeedCast is Seed with the four accounts given explicitly (e.g. fresh
// accounts in a test). Its errors are Seed's.
func SeedCast(ctx context.Context, n *sandbox.Network, c Cast, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &seeder{n: n, log: logger, apis: map[string]*atclient.APIClient{}, chats: map[string]*chatproxy.Client{}}
	for _, m := range []struct {
		name string
		acct sandbox.Account
	}{{"alice", c.Alice}, {"bob", c.Bob}, {"carol", c.Carol}, {"dave", c.Dave}} {
		name, acct := m.name, m.acct
		api, err := n.Login(ctx, acct)
		if err != nil {
			return fmt.Errorf("demo: logging in %s: %w", acct.Handle, err)
		}
		s.apis[name] = api
		s.chats[name] = chatproxy.New(api, n.ChatServiceRef)
		s.handles = append(s.handles, acct.Handle)
	}
	s.dids = map[string]string{"alice": c.Alice.DID, "bob": c.Bob.DID, "carol": c.Carol.DID, "dave": c.Dave.DID}

	// First, so that devchat's gate lets carol (whom bob does not follow) in.
	if err := s.setDeclaration(ctx, "bob", map[string]any{"allowIncoming": allowAll}); err != nil {
		return fmt.Errorf("demo: setting %s's chat declaration to allow everyone: %w", c.Bob.Handle, err)
	}
	if err := s.aliceAndBob(ctx, c.Bob.Handle); err != nil {
		return err
	}
	if err := s.carolAsksBob(ctx); err != nil {
		return err
	}
	if err := s.weekendGroup(ctx); err != nil {
		return err
	}
	logger.Info("demo conversations seeded", "accounts", s.handles)
	return nil
}

type seeder struct {
	n       *sandbox.Network
	log     *slog.Logger
	apis    map[string]*atclient.APIClient
	chats   map[string]*chatproxy.Client
	dids    map[string]string
	handles []string
}

// setDeclaration sets fields on name's declaration record, keeping the
// record's other fields, with a compare-and-swap on the CID.
func (s *seeder) setDeclaration(ctx context.Context, name string, fields map[string]any) error {
	api := s.apis[name]
	var cur struct {
		CID   *string        `json:"cid"`
		Value map[string]any `json:"value"`
	}
	err := api.Get(ctx, "com.atproto.repo.getRecord", map[string]any{
		"repo": api.AccountDID.String(), "collection": declarationCollection, "rkey": "self",
	}, &cur)
	var apiErr *atclient.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Name == "RecordNotFound":
		cur.Value, cur.CID = nil, nil
	case err != nil:
		return fmt.Errorf("reading the record: %w", err)
	}
	rec := cur.Value
	if rec == nil {
		rec = map[string]any{}
	}
	rec["$type"] = declarationCollection
	if _, ok := rec["allowIncoming"]; !ok {
		rec["allowIncoming"] = "following" // required; the default when there is no record
	}
	maps.Copy(rec, fields)
	in := map[string]any{
		"repo": api.AccountDID.String(), "collection": declarationCollection, "rkey": "self", "record": rec,
	}
	if cur.CID != nil {
		in["swapRecord"] = *cur.CID
	}
	if err := api.Post(ctx, "com.atproto.repo.putRecord", in, nil); err != nil {
		return fmt.Errorf("writing the record: %w", err)
	}
	s.log.Debug("demo: chat declaration set", "account", name, "fields", fields)
	return nil
}

// aliceAndBob plays the alice↔bob script unless the convo already has
// messages.
func (s *seeder) aliceAndBob(ctx context.Context, bobHandle string) error {
	convo, err := s.chats["alice"].GetConvoForMembers(ctx, []string{s.dids["bob"]})
	if err != nil {
		return fmt.Errorf("demo: alice opening a conversation with bob: %w", err)
	}
	if convo.LastMessage != nil {
		s.log.Info("demo: alice and bob already have a conversation; left as it is", "convo", convo.Id)
		return nil
	}
	accepted := false
	for i, l := range aliceBob(bobHandle) {
		if l.from == "bob" && !accepted {
			if _, err := s.chats["bob"].AcceptConvo(ctx, convo.Id); err != nil {
				return fmt.Errorf("demo: bob accepting alice's conversation: %w", err)
			}
			accepted = true
		}
		msg, err := s.send(ctx, convo.Id, l)
		if err != nil {
			return fmt.Errorf("demo: alice↔bob message %d (from %s): %w", i+1, l.from, err)
		}
		if l.react {
			if _, err := s.chats["bob"].AddReaction(ctx, convo.Id, msg.Id, Reaction); err != nil {
				return fmt.Errorf("demo: bob reacting to alice's message %d: %w", i+1, err)
			}
			if _, err := s.chats["bob"].UpdateRead(ctx, convo.Id, msg.Id); err != nil {
				return fmt.Errorf("demo: bob reading the conversation: %w", err)
			}
		}
	}
	s.log.Debug("demo: alice↔bob conversation seeded", "convo", convo.Id)
	return nil
}

// carolAsksBob has carol send bob a message (a request for bob) unless their
// convo already has messages.
func (s *seeder) carolAsksBob(ctx context.Context) error {
	convo, err := s.chats["carol"].GetConvoForMembers(ctx, []string{s.dids["bob"]})
	if err != nil {
		return fmt.Errorf("demo: carol opening a conversation with bob: %w", err)
	}
	if convo.LastMessage != nil {
		s.log.Info("demo: carol and bob already have a conversation; left as it is", "convo", convo.Id)
		return nil
	}
	if _, err := s.send(ctx, convo.Id, line{from: "carol", text: carolToBob}); err != nil {
		return fmt.Errorf("demo: carol's message to bob: %w", err)
	}
	s.log.Debug("demo: carol's request to bob seeded", "convo", convo.Id)
	return nil
}

// send sends l with the link and mention facets richtext detects, mentions
// resolved to DIDs through the sender's PDS.
func (s *seeder) send(ctx context.Context, convoID string, l line) (*chat.ConvoDefs_MessageView, error) {
	api := s.apis[l.from]
	var resolveErr error
	resolve := func(ctx context.Context, handle string) (string, error) {
		var out struct {
			DID string `json:"did"`
		}
		err := api.Get(ctx, "com.atproto.identity.resolveHandle", map[string]any{"handle": handle}, &out)
		if err != nil {
			resolveErr = fmt.Errorf("resolving @%s: %w", handle, err)
		}
		return out.DID, err
	}
	facets := richtext.Detect(ctx, l.text, resolve)
	if l.wantLink && !hasFeature(facets, isLink) {
		return nil, fmt.Errorf("no link facet detected in %q", l.text)
	}
	if l.wantMention && !hasFeature(facets, isMention) {
		if resolveErr != nil {
			return nil, fmt.Errorf("no mention facet: %w", resolveErr)
		}
		return nil, fmt.Errorf("no mention facet detected in %q", l.text)
	}
	return s.chats[l.from].SendMessage(ctx, convoID, chatproxy.MessageInput{Text: l.text, Facets: facets})
}

func isLink(f *bsky.RichtextFacet_Features_Elem) bool    { return f.RichtextFacet_Link != nil }
func isMention(f *bsky.RichtextFacet_Features_Elem) bool { return f.RichtextFacet_Mention != nil }

func hasFeature(facets []*bsky.RichtextFacet, is func(*bsky.RichtextFacet_Features_Elem) bool) bool {
	for _, f := range facets {
		for _, feat := range f.Features {
			if feat != nil && is(feat) {
				return true
			}
		}
	}
	return false
}
