package chatproxy

import (
	"encoding/json"
	"reflect"

	"github.com/skydm/skydm/internal/lex/chat"
)

// $type values this package checks by hand.
const (
	typeConvoView          = "chat.bsky.convo.defs#convoView"
	typeMessageView        = "chat.bsky.convo.defs#messageView"
	typeDeletedMessageView = "chat.bsky.convo.defs#deletedMessageView"
	typeSystemMessageView  = "chat.bsky.convo.defs#systemMessageView"
)

// MessageItem is one element of a message list (getMessages) or a convo's
// last message. At most one of Message, Deleted and System is set; when none
// is, the element is of a kind this client does not know (a newer message
// type) and Supported reports false. Type, ID, Rev and SentAt are read from
// the element whatever its kind, so unsupported elements keep their place.
type MessageItem struct {
	Type    string // the element's $type as sent
	ID      string
	Rev     string
	SentAt  string
	Message *chat.ConvoDefs_MessageView
	Deleted *chat.ConvoDefs_DeletedMessageView
	System  *chat.ConvoDefs_SystemMessageView
}

// Supported reports whether the item is a message kind this client can show.
func (m MessageItem) Supported() bool {
	return m.Message != nil || m.Deleted != nil || m.System != nil
}

// SenderDID returns the DID of the message's sender, or "" for system
// messages and unsupported items.
func (m MessageItem) SenderDID() string {
	switch {
	case m.Message != nil && m.Message.Sender != nil:
		return m.Message.Sender.Did
	case m.Deleted != nil && m.Deleted.Sender != nil:
		return m.Deleted.Sender.Did
	}
	return ""
}

// MessageText returns the text to show for m in a list or preview: the
// message text; for a message that is only an embed, "Shared a post"; a
// short placeholder for deleted, system and unsupported items. It never
// fails.
func MessageText(m MessageItem) string {
	switch {
	case m.Message != nil:
		if m.Message.Text == "" && m.Message.Embed != nil {
			return "Shared a post"
		}
		return m.Message.Text
	case m.Deleted != nil:
		return "Message deleted"
	case m.System != nil:
		return "Conversation update"
	}
	return "This message can't be shown in skydm."
}

// LastMessage returns the convo's last message as a MessageItem; ok is false
// when the convo has none. A last message of an unknown kind is returned with
// Supported() false.
func LastMessage(c *chat.ConvoDefs_ConvoView) (item MessageItem, ok bool) {
	if c == nil || c.LastMessage == nil {
		return MessageItem{}, false
	}
	lm := c.LastMessage
	switch {
	case lm.ConvoDefs_MessageView != nil:
		v := lm.ConvoDefs_MessageView
		return MessageItem{Type: typeMessageView, ID: v.Id, Rev: v.Rev, SentAt: v.SentAt, Message: v}, true
	case lm.ConvoDefs_DeletedMessageView != nil:
		v := lm.ConvoDefs_DeletedMessageView
		return MessageItem{Type: typeDeletedMessageView, ID: v.Id, Rev: v.Rev, SentAt: v.SentAt, Deleted: v}, true
	case lm.ConvoDefs_SystemMessageView != nil:
		v := lm.ConvoDefs_SystemMessageView
		return MessageItem{Type: typeSystemMessageView, ID: v.Id, Rev: v.Rev, SentAt: v.SentAt, System: v}, true
	}
	return MessageItem{}, true
}

// commonFields are read from every union element, known or not.
type commonFields struct {
	Type    string `json:"$type"`
	ID      string `json:"id"`
	Rev     string `json:"rev"`
	SentAt  string `json:"sentAt"`
	ConvoID string `json:"convoId"`
}

// readCommon reads the fields every element has; an element that is not a
// JSON object gives zero values.
func readCommon(raw json.RawMessage) commonFields {
	var c commonFields
	if json.Unmarshal(raw, &c) != nil {
		return commonFields{}
	}
	return c
}

// decodeUnion decodes raw into a generated union type. It reports false
// when raw does not decode or is of a $type the generated code does not know
// (indigo's generated UnmarshalJSON returns nil and leaves every member nil
// for an unknown $type; an element that is not an object, or a known type
// whose fields do not match, is an error).
func decodeUnion[T any](raw json.RawMessage) (*T, bool) {
	u := new(T)
	if err := json.Unmarshal(raw, u); err != nil {
		return nil, false
	}
	if !unionSet(u) {
		return nil, false
	}
	return u, true
}

// unionSet reports whether any pointer field of the struct *v is non-nil.
func unionSet(v any) bool {
	rv := reflect.ValueOf(v).Elem()
	for i := 0; i < rv.NumField(); i++ {
		if f := rv.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			return true
		}
	}
	return false
}

func decodeMessageItem(raw json.RawMessage) MessageItem {
	c := readCommon(raw)
	item := MessageItem{Type: c.Type, ID: c.ID, Rev: c.Rev, SentAt: c.SentAt}
	if u, ok := decodeUnion[chat.ConvoGetMessages_Output_Messages_Elem](raw); ok {
		item.Message = u.ConvoDefs_MessageView
		item.Deleted = u.ConvoDefs_DeletedMessageView
		item.System = u.ConvoDefs_SystemMessageView
	}
	return item
}

// LogEntry is one event of the viewer's chat log (getLog). Elem is nil when
// the event is of a kind this client does not know or could not decode; Type,
// ConvoID and Rev are read from the event whatever its kind, so a poller can
// still advance past it and refresh the convo it names.
type LogEntry struct {
	Type    string
	ConvoID string
	Rev     string
	Elem    *chat.ConvoGetLog_Output_Logs_Elem
}

func decodeLogEntry(raw json.RawMessage) LogEntry {
	c := readCommon(raw)
	e := LogEntry{Type: c.Type, ConvoID: c.ConvoID, Rev: c.Rev}
	if u, ok := decodeUnion[chat.ConvoGetLog_Output_Logs_Elem](raw); ok {
		e.Elem = u
	}
	return e
}

// decodeConvo decodes one convoView; ok is false for an element of another
// $type, one without an id, or one that does not decode.
func decodeConvo(raw json.RawMessage) (*chat.ConvoDefs_ConvoView, bool) {
	c := readCommon(raw)
	if c.Type != "" && c.Type != typeConvoView {
		return nil, false
	}
	var v chat.ConvoDefs_ConvoView
	if err := json.Unmarshal(raw, &v); err != nil || v.Id == "" {
		return nil, false
	}
	return &v, true
}
