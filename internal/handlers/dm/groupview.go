package dm

import (
	"context"
	"time"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/internal/live"
	"github.com/skydm/skydm/views"
)

// groupViewChat is what showing group conversations needs of Chat beyond
// directChat: nothing. The conversation page does not list the members
// (getConvoMembers, groupChat): getMessages' relatedProfiles name every
// sender, reactor and member a system message refers to, so the page stays
// at two upstream calls.
type groupViewChat interface{}

// groupConvo returns the group part of a convo's view model, or nil for a
// direct convo (or a kind this client does not know, shown as direct).
// InvitedBy is the member who added the viewer, when the convo view says
// (the viewer's own member entry carries addedBy); names holds the names
// the page knows.
func groupConvo(v *chat.ConvoDefs_ConvoView, viewer string, names dmNames) *views.GroupConvoVM {
	g := groupOf(v)
	if g == nil {
		return nil
	}
	out := &views.GroupConvoVM{Name: g.Name, MemberCount: int(max(g.MemberCount, 0)), LockStatus: str(g.LockStatus),
		ModerationLock: g.LockStatusModerationOverride && str(g.LockStatus) != views.LockUnlocked && str(g.LockStatus) != ""}
	for _, p := range v.Members {
		if p == nil || p.Did != viewer || p.Kind == nil || p.Kind.ActorDefs_GroupConvoMember == nil {
			continue
		}
		if by := p.Kind.ActorDefs_GroupConvoMember.AddedBy; by != nil && by.Did != "" {
			if n := names[by.Did]; n != "" {
				out.InvitedBy = n
			} else {
				out.InvitedBy = memberVM(by).Label()
			}
		}
	}
	return out
}

// systemText says in words what a system message records ("Bob added
// Carol", "You left the group"), naming the members it refers to from
// names (the viewer is "You"/"you"; someone not named, "Someone"). A data
// variant this client does not know gives "" (views: "Conversation
// updated").
func systemText(s *chat.ConvoDefs_SystemMessageView, viewer string, names dmNames) string {
	if s == nil || s.Data == nil {
		return ""
	}
	who := func(u *chat.ConvoDefs_SystemMessageReferredUser, subject bool) string {
		switch {
		case u == nil || u.Did == "":
		case u.Did == viewer && subject:
			return "You"
		case u.Did == viewer:
			return "you"
		case names[u.Did] != "":
			return names[u.Did]
		}
		if subject {
			return "Someone"
		}
		return "someone"
	}
	d := s.Data
	switch {
	case d.ConvoDefs_SystemMessageDataAddMember != nil:
		x := d.ConvoDefs_SystemMessageDataAddMember
		return who(x.AddedBy, true) + " added " + who(x.Member, false)
	case d.ConvoDefs_SystemMessageDataRemoveMember != nil:
		x := d.ConvoDefs_SystemMessageDataRemoveMember
		return who(x.RemovedBy, true) + " removed " + who(x.Member, false)
	case d.ConvoDefs_SystemMessageDataMemberJoin != nil:
		x := d.ConvoDefs_SystemMessageDataMemberJoin
		if x.ApprovedBy != nil && x.ApprovedBy.Did != "" {
			return who(x.Member, true) + " joined the group, approved by " + who(x.ApprovedBy, false)
		}
		return who(x.Member, true) + " joined the group with its link"
	case d.ConvoDefs_SystemMessageDataMemberLeave != nil:
		return who(d.ConvoDefs_SystemMessageDataMemberLeave.Member, true) + " left the group"
	case d.ConvoDefs_SystemMessageDataLockConvo != nil:
		return who(d.ConvoDefs_SystemMessageDataLockConvo.LockedBy, true) + " locked the group"
	case d.ConvoDefs_SystemMessageDataUnlockConvo != nil:
		return who(d.ConvoDefs_SystemMessageDataUnlockConvo.UnlockedBy, true) + " unlocked the group"
	case d.ConvoDefs_SystemMessageDataLockConvoPermanently != nil:
		return who(d.ConvoDefs_SystemMessageDataLockConvoPermanently.LockedBy, true) + " locked the group permanently"
	case d.ConvoDefs_SystemMessageDataEditGroup != nil:
		// The lexicon does not say who renamed the group.
		if n := views.ClampName(str(d.ConvoDefs_SystemMessageDataEditGroup.NewName)); n != "" {
			return "The group was renamed to “" + n + "”"
		}
		return "The group’s details were changed"
	case d.ConvoDefs_SystemMessageDataCreateJoinLink != nil:
		return "A join link was created for the group"
	case d.ConvoDefs_SystemMessageDataEditJoinLink != nil:
		return "The group’s join link settings were changed"
	case d.ConvoDefs_SystemMessageDataEnableJoinLink != nil:
		return "The group’s join link was turned on"
	case d.ConvoDefs_SystemMessageDataDisableJoinLink != nil:
		return "The group’s join link was turned off"
	}
	return ""
}

// lockedBy returns who locked the group according to the newest lock or
// unlock system message among items (newest first, as the service sends
// them): "" when none is there or the newest is an unlock.
func lockedBy(items []chatproxy.MessageItem, viewer string, names dmNames) string {
	for _, it := range items {
		if it.System == nil || it.System.Data == nil {
			continue
		}
		d := it.System.Data
		var u *chat.ConvoDefs_SystemMessageReferredUser
		switch {
		case d.ConvoDefs_SystemMessageDataUnlockConvo != nil:
			return ""
		case d.ConvoDefs_SystemMessageDataLockConvo != nil:
			u = d.ConvoDefs_SystemMessageDataLockConvo.LockedBy
		case d.ConvoDefs_SystemMessageDataLockConvoPermanently != nil:
			u = d.ConvoDefs_SystemMessageDataLockConvoPermanently.LockedBy
		default:
			continue
		}
		if u == nil {
			return ""
		}
		if u.Did == viewer {
			return "You"
		}
		return names[u.Did]
	}
	return ""
}

// markRuns sets Continued on each message (oldest first) that follows
// another message from the same sender on the same day, so a run of one
// person's messages shows their name and avatar once, as the official app
// groups them.
func markRuns(ms []views.MessageVM, loc *time.Location) {
	for i := 1; i < len(ms); i++ {
		prev, m := &ms[i-1], &ms[i]
		if m.System || prev.System || m.SenderDID == "" || m.SenderDID != prev.SenderDID {
			continue
		}
		py, pm, pd := prev.SentAt.In(loc).Date()
		y, mo, d := m.SentAt.In(loc).Date()
		m.Continued = py == y && pm == mo && pd == d
	}
}

// LiveGroup is the data of a group event on the group's page: the system
// line to append, and what the event changed.
type LiveGroup struct {
	ConvoID string `json:"convoId"`
	ID      string `json:"id"`
	HTML    string `json:"html"`            // the system line's <li> (views.MessageItem)
	Title   string `json:"title,omitempty"` // the group's new name, when renamed
	// Locked is the line that replaces the composer (views.GroupLocked),
	// when the group was locked; Unlocked says it takes messages again
	// (the page reloads to get its composer back).
	Locked   string `json:"locked,omitempty"`
	Unlocked bool   `json:"unlocked,omitempty"`
}

// related adds the names and avatars of profiles (an event's
// relatedProfiles) to c.
func (c msgConv) related(ps []*chat.ActorDefs_ProfileViewBasic) {
	for _, p := range ps {
		if p != nil && p.Did != "" {
			c.names[p.Did] = memberVM(p).Label()
			c.avatars[p.Did] = str(p.Avatar)
		}
	}
}

// groupEvent renders a group event with a system message (member added,
// removed, joined or left, renamed, locked, unlocked, join link changes)
// for the group's page. Members it refers to are named from the event's
// relatedProfiles, else from names seen on pages; a data variant this
// client does not know still gives its neutral line.
func (lr liveRenderer) groupEvent(ctx context.Context, conv msgConv, ev *live.Event, mc views.MsgContext) (string, []byte, bool) {
	for _, did := range referred(ev.System) {
		if n := lr.s.dm.names.get(did); n != "" {
			conv.names[did] = n
		}
	}
	conv.related(ev.Related)
	sys := ev.System
	html, ok := lr.html(ctx, views.MessageItem(conv.item(chatproxy.MessageItem{ID: sys.Id, Rev: sys.Rev, SentAt: sys.SentAt, System: sys}), mc))
	if !ok {
		return "", nil, false
	}
	out := LiveGroup{ConvoID: ev.ConvoID, ID: sys.Id, HTML: html}
	if d := sys.Data; d != nil {
		var lock *views.GroupConvoVM
		switch {
		case d.ConvoDefs_SystemMessageDataEditGroup != nil:
			out.Title = views.ClampName(str(d.ConvoDefs_SystemMessageDataEditGroup.NewName))
		case d.ConvoDefs_SystemMessageDataLockConvo != nil:
			lock = &views.GroupConvoVM{LockStatus: views.LockLocked}
		case d.ConvoDefs_SystemMessageDataLockConvoPermanently != nil:
			lock = &views.GroupConvoVM{LockStatus: views.LockLockedPermanently}
		case d.ConvoDefs_SystemMessageDataUnlockConvo != nil:
			out.Unlocked = true
		}
		if lock != nil {
			lock.LockedBy = lockedBy([]chatproxy.MessageItem{{System: sys}}, conv.viewer, conv.names)
			if out.Locked, ok = lr.html(ctx, views.GroupLocked(lock, "", "")); !ok {
				return "", nil, false
			}
		}
	}
	return lr.event("group", out, true)
}

// referred returns the DIDs a system message refers to.
func referred(s *chat.ConvoDefs_SystemMessageView) []string {
	if s == nil || s.Data == nil {
		return nil
	}
	d := s.Data
	var us []*chat.ConvoDefs_SystemMessageReferredUser
	switch {
	case d.ConvoDefs_SystemMessageDataAddMember != nil:
		us = append(us, d.ConvoDefs_SystemMessageDataAddMember.Member, d.ConvoDefs_SystemMessageDataAddMember.AddedBy)
	case d.ConvoDefs_SystemMessageDataRemoveMember != nil:
		us = append(us, d.ConvoDefs_SystemMessageDataRemoveMember.Member, d.ConvoDefs_SystemMessageDataRemoveMember.RemovedBy)
	case d.ConvoDefs_SystemMessageDataMemberJoin != nil:
		us = append(us, d.ConvoDefs_SystemMessageDataMemberJoin.Member, d.ConvoDefs_SystemMessageDataMemberJoin.ApprovedBy)
	case d.ConvoDefs_SystemMessageDataMemberLeave != nil:
		us = append(us, d.ConvoDefs_SystemMessageDataMemberLeave.Member)
	case d.ConvoDefs_SystemMessageDataLockConvo != nil:
		us = append(us, d.ConvoDefs_SystemMessageDataLockConvo.LockedBy)
	case d.ConvoDefs_SystemMessageDataUnlockConvo != nil:
		us = append(us, d.ConvoDefs_SystemMessageDataUnlockConvo.UnlockedBy)
	case d.ConvoDefs_SystemMessageDataLockConvoPermanently != nil:
		us = append(us, d.ConvoDefs_SystemMessageDataLockConvoPermanently.LockedBy)
	}
	var out []string
	for _, u := range us {
		if u != nil && u.Did != "" {
			out = append(out, u.Did)
		}
	}
	return out
}
