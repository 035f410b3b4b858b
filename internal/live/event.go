package live

import (
	"encoding/json"
	"reflect"
	"strings"

	"github.com/skydm/skydm/internal/lex/chat"
)

// Kind says what an Event is about. The log kinds double as the default SSE
// event names; the page script listens for them.
type Kind string

// The kinds of events. Every chat.bsky.convo.defs#log* entry maps to one of
// the first five; entries of types this package does not know are skipped
// (the cursor still moves past them).
const (
	KindMessage  Kind = "message"  // logCreateMessage: a new message in a convo
	KindDelete   Kind = "delete"   // logDeleteMessage: a message was deleted (for the viewer)
	KindReaction Kind = "reaction" // logAddReaction / logRemoveReaction
	KindUnread   Kind = "unread"   // logReadMessage / logReadConvo: a convo's unread count changed
	KindConvo    Kind = "convo"    // begin, accept, leave, mute, unmute, lock, members, group edits, join links and requests
	KindAuth     Kind = "auth"     // control: the session expired or lacks the chat scope; sign in again
	KindResync   Kind = "resync"   // control: events were missed; reload the page
)

// Event is one entry of a user's chat log as the hub decoded it, or a
// control event (KindAuth, KindResync: only Kind, Reason and Notice set).
//
// An Event is shared by every page of the user and kept for replay: treat
// it and everything it points to as read-only. In particular do not
// json.Marshal Log or the message unions concurrently: indigo's generated
// union MarshalJSON methods write the $type field while marshalling, which
// races between pages. Use JSON, marshalled once by the poller, instead.
type Event struct {
	Kind    Kind
	Rev     string // the log rev; the SSE id
	ConvoID string
	Type    string // the entry's $type, e.g. "chat.bsky.convo.defs#logCreateMessage"

	// Log is the decoded entry; nil for control events.
	Log *chat.ConvoGetLog_Output_Logs_Elem
	// Message is the entry's message when it is a messageView (message,
	// delete, reaction, unread); Deleted when it is a deletedMessageView;
	// System when it is a systemMessageView (unread, group convo events).
	Message *chat.ConvoDefs_MessageView
	Deleted *chat.ConvoDefs_DeletedMessageView
	System  *chat.ConvoDefs_SystemMessageView
	// Related are the profiles the entry refers to (its relatedProfiles:
	// senders, reactors, the members a group event names), when it has them.
	Related []*chat.ActorDefs_ProfileViewBasic
	// Reaction is the reaction added or removed; ReactionRemoved tells which.
	Reaction        *chat.ConvoDefs_ReactionView
	ReactionRemoved bool
	// JSON is the entry as JSON (with $type); nil for control events or if
	// it could not be marshalled.
	JSON []byte

	// Reason and Notice explain control events: Reason is machine-readable
	// ("SessionExpired", "ScopeMissing", "ReplayGap"), Notice a sentence
	// safe to show.
	Reason string
	Notice string
}

// decodeEntry turns one log entry into an Event. ok is false for an entry
// of a type this package does not know (an empty union), which is skipped.
// The returned Event's JSON is marshalled here, before it is shared.
func decodeEntry(e *chat.ConvoGetLog_Output_Logs_Elem) (ev *Event, ok bool) {
	if e == nil {
		return nil, false
	}
	member := unionMember(e)
	if member == nil {
		return nil, false
	}
	ev = &Event{Log: e}
	// Marshal first: it also fills in the members' $type fields.
	if b, err := json.Marshal(e); err == nil {
		ev.JSON = b
	}
	ev.Rev, ev.ConvoID, ev.Type = commonFields(member)
	ev.Related = relatedProfiles(member)
	switch {
	case e.ConvoDefs_LogCreateMessage != nil:
		ev.Kind = KindMessage
		if m := e.ConvoDefs_LogCreateMessage.Message; m != nil {
			ev.Message, ev.Deleted = m.ConvoDefs_MessageView, m.ConvoDefs_DeletedMessageView
		}
	case e.ConvoDefs_LogDeleteMessage != nil:
		ev.Kind = KindDelete
		if m := e.ConvoDefs_LogDeleteMessage.Message; m != nil {
			ev.Message, ev.Deleted = m.ConvoDefs_MessageView, m.ConvoDefs_DeletedMessageView
		}
	case e.ConvoDefs_LogAddReaction != nil:
		ev.Kind = KindReaction
		l := e.ConvoDefs_LogAddReaction
		ev.Reaction = l.Reaction
		if m := l.Message; m != nil {
			ev.Message, ev.Deleted = m.ConvoDefs_MessageView, m.ConvoDefs_DeletedMessageView
		}
	case e.ConvoDefs_LogRemoveReaction != nil:
		ev.Kind = KindReaction
		l := e.ConvoDefs_LogRemoveReaction
		ev.Reaction, ev.ReactionRemoved = l.Reaction, true
		if m := l.Message; m != nil {
			ev.Message, ev.Deleted = m.ConvoDefs_MessageView, m.ConvoDefs_DeletedMessageView
		}
	case e.ConvoDefs_LogReadMessage != nil:
		ev.Kind = KindUnread
		if m := e.ConvoDefs_LogReadMessage.Message; m != nil {
			ev.Message, ev.Deleted, ev.System = m.ConvoDefs_MessageView, m.ConvoDefs_DeletedMessageView, m.ConvoDefs_SystemMessageView
		}
	case e.ConvoDefs_LogReadConvo != nil:
		ev.Kind = KindUnread
		if m := e.ConvoDefs_LogReadConvo.Message; m != nil {
			ev.Message, ev.Deleted, ev.System = m.ConvoDefs_MessageView, m.ConvoDefs_DeletedMessageView, m.ConvoDefs_SystemMessageView
		}
	default:
		ev.Kind = KindConvo
		ev.System = systemMessage(member)
	}
	return ev, true
}

// unionMember returns the set member of the union, or nil.
func unionMember(e *chat.ConvoGetLog_Output_Logs_Elem) any {
	rv := reflect.ValueOf(e).Elem()
	for i := 0; i < rv.NumField(); i++ {
		if f := rv.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			return f.Interface()
		}
	}
	return nil
}

// commonFields reads Rev, ConvoId and the $type every log member has. The
// $type is derived from the Go type name when the entry did not carry it.
func commonFields(member any) (rev, convoID, typ string) {
	rv := reflect.ValueOf(member).Elem()
	if f := rv.FieldByName("Rev"); f.IsValid() && f.Kind() == reflect.String {
		rev = f.String()
	}
	if f := rv.FieldByName("ConvoId"); f.IsValid() && f.Kind() == reflect.String {
		convoID = f.String()
	}
	if f := rv.FieldByName("LexiconTypeID"); f.IsValid() && f.Kind() == reflect.String {
		typ = f.String()
	}
	if typ == "" {
		// ConvoDefs_LogBeginConvo → chat.bsky.convo.defs#logBeginConvo
		name := strings.TrimPrefix(rv.Type().Name(), "ConvoDefs_")
		if name != "" {
			typ = "chat.bsky.convo.defs#" + strings.ToLower(name[:1]) + name[1:]
		}
	}
	return rev, convoID, typ
}

// systemMessage returns the member's Message field when it is a
// *chat.ConvoDefs_SystemMessageView (group convo events), or nil.
func systemMessage(member any) *chat.ConvoDefs_SystemMessageView {
	f := reflect.ValueOf(member).Elem().FieldByName("Message")
	if !f.IsValid() {
		return nil
	}
	m, _ := f.Interface().(*chat.ConvoDefs_SystemMessageView)
	return m
}

// relatedProfiles returns the member's RelatedProfiles field (message,
// reaction and group events), or nil.
func relatedProfiles(member any) []*chat.ActorDefs_ProfileViewBasic {
	f := reflect.ValueOf(member).Elem().FieldByName("RelatedProfiles")
	if !f.IsValid() {
		return nil
	}
	p, _ := f.Interface().([]*chat.ActorDefs_ProfileViewBasic)
	return p
}
