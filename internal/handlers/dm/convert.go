package dm

import (
	"strings"
	"time"

	"github.com/bluesky-social/indigo/api/bsky"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/richtext"
	"github.com/skydm/skydm/views"
)

// This file turns indigo's chat views into the DM view models. Everything
// read here is untrusted; the views escape it, and links pass
// richtext.SafeHref there.

// dmNames maps DIDs to the names a page shows for them.
type dmNames map[string]string

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func memberVM(p *chat.ActorDefs_ProfileViewBasic) views.MemberVM {
	return views.MemberVM{DID: p.Did, Name: strings.TrimSpace(str(p.DisplayName)), Handle: p.Handle, AvatarURL: str(p.Avatar)}
}

// otherMembers returns the convo's members other than the viewer, and adds
// every member's name to names (when not nil).
func otherMembers(v *chat.ConvoDefs_ConvoView, viewer string, names dmNames) []views.MemberVM {
	out := make([]views.MemberVM, 0, len(v.Members))
	for _, p := range v.Members {
		if p == nil || p.Did == "" {
			continue
		}
		m := memberVM(p)
		if names != nil {
			names[p.Did] = m.Label()
		}
		if p.Did != viewer {
			out = append(out, m)
		}
	}
	return out
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func convoStatus(v *chat.ConvoDefs_ConvoView) string {
	if str(v.Status) == views.StatusRequest {
		return views.StatusRequest
	}
	return views.StatusAccepted
}

// previewLen is how many characters of a message an inbox row shows.
const previewLen = 100

// convoRow returns the inbox row of a convo for viewer: the other members,
// the last message or, when newer, the last reaction, its time, the unread
// count, the muted mark and the status.
func convoRow(v *chat.ConvoDefs_ConvoView, viewer string) views.ConvoRowVM {
	names := dmNames{}
	row := views.ConvoRowVM{
		ID: v.Id, Members: otherMembers(v, viewer, names), Unread: int(max(v.UnreadCount, 0)),
		Muted: v.Muted, Status: convoStatus(v),
	}
	who := func(did string) string {
		if did == viewer {
			return "You"
		}
		if n := names[did]; n != "" {
			return n
		}
		return "Someone"
	}
	if item, ok := chatproxy.LastMessage(v); ok {
		row.LastAt = parseTime(item.SentAt)
		text := chatproxy.MessageText(item)
		if item.Message != nil && item.SenderDID() == viewer {
			text = "You: " + text
		}
		row.LastPreview = views.Shorten(text, previewLen)
	}
	if lr := v.LastReaction; lr != nil && lr.ConvoDefs_MessageAndReactionView != nil {
		mr := lr.ConvoDefs_MessageAndReactionView
		if mr.Reaction != nil && mr.Message != nil {
			at := parseTime(mr.Reaction.CreatedAt)
			if !at.IsZero() && !at.Before(row.LastAt) {
				sender := ""
				if mr.Reaction.Sender != nil {
					sender = mr.Reaction.Sender.Did
				}
				row.LastAt = at
				row.LastPreview = views.Shorten(who(sender)+" reacted "+mr.Reaction.Value+" to “"+views.Shorten(mr.Message.Text, 60)+"”", previewLen)
			}
		}
	}
	return row
}

// msgConv converts messages for one page: who the viewer is, the names of
// senders, where links point.
type msgConv struct {
	viewer   string
	names    dmNames
	links    richtext.Links
	postBase string
}

func (c msgConv) name(did string) string { return c.names[did] }

// item converts one element of a message list.
func (c msgConv) item(it chatproxy.MessageItem) views.MessageVM {
	switch {
	case it.Message != nil:
		return c.message(it.Message)
	case it.Deleted != nil:
		d := it.Deleted
		m := views.MessageVM{ID: d.Id, Rev: d.Rev, Deleted: true, SentAt: parseTime(d.SentAt)}
		if d.Sender != nil {
			m.SenderDID, m.Own, m.SenderName = d.Sender.Did, d.Sender.Did == c.viewer, c.name(d.Sender.Did)
		}
		return m
	case it.System != nil:
		return views.MessageVM{ID: it.System.Id, Rev: it.System.Rev, System: true, SentAt: parseTime(it.System.SentAt)}
	}
	return views.MessageVM{ID: it.ID, Rev: it.Rev, Unsupported: true, SentAt: parseTime(it.SentAt)}
}

// message converts a message view.
func (c msgConv) message(v *chat.ConvoDefs_MessageView) views.MessageVM {
	m := views.MessageVM{
		ID: v.Id, Rev: v.Rev, SentAt: parseTime(v.SentAt),
		Segments:  richtext.Render(v.Text, v.Facets, c.links),
		Reactions: reactionsVM(v.Reactions, c.viewer),
	}
	if v.Sender != nil {
		m.SenderDID, m.Own, m.SenderName = v.Sender.Did, v.Sender.Did == c.viewer, c.name(v.Sender.Did)
	}
	if v.Embed != nil && v.Embed.EmbedRecord_View != nil {
		m.Embed = c.embed(v.Embed.EmbedRecord_View)
	}
	if len(m.Segments) == 0 && m.Embed == nil {
		m.Unsupported = v.Embed != nil // an embed of a kind skydm cannot show
	}
	if v.Embed != nil && v.Embed.EmbedJoinLink_View != nil { // a group's join link (join.go)
		m.JoinLink, m.Unsupported = joinCard(v.Embed.EmbedJoinLink_View, c.viewer), false
	}
	return m
}

// embed converts a quoted record (app.bsky.embed.record#view).
func (c msgConv) embed(v *bsky.EmbedRecord_View) *views.EmbedVM {
	if v.Record == nil || v.Record.EmbedRecord_ViewRecord == nil {
		return &views.EmbedVM{Unavailable: true}
	}
	r := v.Record.EmbedRecord_ViewRecord
	e := &views.EmbedVM{}
	if href, ok := richtext.PostURL(c.postBase, r.Uri); ok {
		e.URL = href
	} else {
		e.Unavailable = true
		return e
	}
	if r.Author != nil {
		e.AuthorName = strings.TrimSpace(str(r.Author.DisplayName))
		if r.Author.Handle != "handle.invalid" {
			e.AuthorHandle = r.Author.Handle
		}
		if e.AuthorName == "" {
			e.AuthorName = e.AuthorHandle
		}
	}
	if r.Value != nil {
		if p, ok := r.Value.Val.(*bsky.FeedPost); ok {
			e.Text = p.Text
		}
	}
	return e
}

// reactionsVM groups reactions by emoji in order of first use, counting
// them and marking the viewer's own.
func reactionsVM(rs []*chat.ConvoDefs_ReactionView, viewer string) []views.ReactionVM {
	if len(rs) == 0 {
		return nil
	}
	out := make([]views.ReactionVM, 0, 2)
	for _, r := range rs {
		if r == nil || r.Value == "" {
			continue
		}
		i := 0
		for i < len(out) && out[i].Value != r.Value {
			i++
		}
		if i == len(out) {
			out = append(out, views.ReactionVM{Value: r.Value})
		}
		out[i].Count++
		if r.Sender != nil && r.Sender.Did == viewer {
			out[i].Mine = true
		}
	}
	return out
}
