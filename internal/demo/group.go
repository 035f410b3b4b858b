package demo

import (
	"context"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/atclient"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/lex/chat"
)

// The group Seed makes: created as FirstGroupName, then renamed by alice to
// GroupName (an editGroup system message), with a join link that needs
// alice's approval and one pending request from dave.
const (
	FirstGroupName = "Weekend"
	GroupName      = "Weekend plans"
)

// groupLine is one message of the group script; replyTo is the index of an
// earlier line it replies to (-1: none); after it, rename makes alice rename
// the group, and link makes her create the join link dave asks to join by.
type groupLine struct {
	from    string
	text    string
	replyTo int
	rename  bool
	link    bool
}

// weekendPlans is the group's history.
var weekendPlans = []groupLine{
	{from: "alice", text: "Who's up for a picnic on Saturday? 🧺", replyTo: -1, rename: true},
	{from: "bob", text: "Count me in!", replyTo: -1},
	{from: "carol", text: "Me too. I can bring lemonade 🍋", replyTo: -1},
	{from: "alice", text: "Great! The park at noon?", replyTo: -1},
	{from: "bob", text: "Noon works. Which entrance?", replyTo: 3},
	{from: "alice", text: "The north gate, by the fountain.", replyTo: -1},
	{from: "carol", text: "I'll bring a frisbee too 🥏", replyTo: -1, link: true},
	{from: "bob", text: "See you both there!", replyTo: -1},
}

// lex is name's chat.bsky client for the generated calls (internal/lex/chat):
// the account's session with the chat service's proxy header.
func (s *seeder) lex(name string) *atclient.APIClient {
	return s.apis[name].WithService(s.n.ChatServiceRef)
}

// chatErr maps a chat.bsky call's error into the app's error taxonomy.
func chatErr(err error) error { return chatproxy.MapError(err) }

// weekendGroup seeds the "Weekend plans" group unless alice already has a
// group of that name: bob and carol (who accept group invitations from
// everyone) are added and accept, the script is played (with one reply and
// a rename), and a join link requiring approval gets dave's request.
func (s *seeder) weekendGroup(ctx context.Context) error {
	existing, err := chat.ConvoListConvos(ctx, s.lex("alice"), "", "group", 100, "", "", "")
	if err != nil {
		return fmt.Errorf("demo: listing alice's groups: %w", chatErr(err))
	}
	for _, c := range existing.Convos {
		if c.Kind != nil && c.Kind.ConvoDefs_GroupConvo != nil && c.Kind.ConvoDefs_GroupConvo.Name == GroupName {
			s.log.Info("demo: alice already has the group; left as it is", "convo", c.Id)
			return nil
		}
	}
	for _, name := range []string{"bob", "carol"} {
		if err := s.setDeclaration(ctx, name, map[string]any{"allowGroupInvites": allowAll}); err != nil {
			return fmt.Errorf("demo: letting %s be added to groups: %w", name, err)
		}
	}
	created, err := chat.GroupCreateGroup(ctx, s.lex("alice"), &chat.GroupCreateGroup_Input{
		Name: FirstGroupName, Members: []string{s.dids["bob"], s.dids["carol"]},
	})
	if err != nil {
		return fmt.Errorf("demo: alice creating the group: %w", chatErr(err))
	}
	id := created.Convo.Id
	for _, name := range []string{"bob", "carol"} {
		if _, err := chat.ConvoAcceptConvo(ctx, s.lex(name), &chat.ConvoAcceptConvo_Input{ConvoId: id}); err != nil {
			return fmt.Errorf("demo: %s accepting the group: %w", name, chatErr(err))
		}
	}
	var sent []string // message ids by script line
	for i, l := range weekendPlans {
		msg := &chat.ConvoDefs_MessageInput{Text: l.text}
		if l.replyTo >= 0 {
			msg.ReplyTo = &chat.ConvoDefs_ReplyRef{MessageId: sent[l.replyTo]}
		}
		out, err := chat.ConvoSendMessage(ctx, s.lex(l.from), &chat.ConvoSendMessage_Input{ConvoId: id, Message: msg})
		if err != nil {
			return fmt.Errorf("demo: group message %d (from %s): %w", i+1, l.from, chatErr(err))
		}
		sent = append(sent, out.Id)
		if l.link {
			if err := s.joinLinkWithRequest(ctx, id); err != nil {
				return err
			}
		}
		if l.rename {
			if _, err := chat.GroupEditGroup(ctx, s.lex("alice"), &chat.GroupEditGroup_Input{ConvoId: id, Name: GroupName}); err != nil {
				return fmt.Errorf("demo: alice renaming the group: %w", chatErr(err))
			}
		}
	}
	s.log.Debug("demo: group seeded", "convo", id)
	return nil
}

// joinLinkWithRequest has alice create the group's join link, which needs
// her approval, and dave ask to join through it.
func (s *seeder) joinLinkWithRequest(ctx context.Context, id string) error {
	approval := true
	rule := "anyone"
	link, err := chat.GroupCreateJoinLink(ctx, s.lex("alice"), &chat.GroupCreateJoinLink_Input{ConvoId: id, JoinRule: &rule, RequireApproval: &approval})
	if err != nil {
		return fmt.Errorf("demo: alice creating the join link: %w", chatErr(err))
	}
	if _, err := chat.GroupRequestJoin(ctx, s.lex("dave"), &chat.GroupRequestJoin_Input{Code: link.JoinLink.Code}); err != nil {
		return fmt.Errorf("demo: dave asking to join: %w", chatErr(err))
	}
	s.log.Debug("demo: join link made", "convo", id, "code", link.JoinLink.Code)
	return nil
}
