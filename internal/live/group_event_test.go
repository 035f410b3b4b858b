package live

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/lexicons/official"
)

// lexDef is the part of a lexicon object definition these tests read.
type lexDef struct {
	Required   []string `json:"required"`
	Properties map[string]struct {
		Ref  string   `json:"ref"`
		Refs []string `json:"refs"`
	} `json:"properties"`
}

func readLexicon(t *testing.T, path string, v any) {
	t.Helper()
	b, err := official.FS.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// TestEveryLogTypeOfTheLexiconDecodes builds, for every event type
// getLog's output union names, an event with the fields its definition
// requires, and checks the hub decodes it with its convo, rev and $type,
// the system message of group events and the profiles they refer to.
func TestEveryLogTypeOfTheLexiconDecodes(t *testing.T) {
	var getLog struct {
		Defs map[string]struct {
			Output struct {
				Schema struct {
					Properties map[string]struct {
						Items struct {
							Refs []string `json:"refs"`
						} `json:"items"`
					} `json:"properties"`
				} `json:"schema"`
			} `json:"output"`
		} `json:"defs"`
	}
	readLexicon(t, "chat/bsky/convo/getLog.json", &getLog)
	var defs struct {
		Defs map[string]lexDef `json:"defs"`
	}
	readLexicon(t, "chat/bsky/convo/defs.json", &defs)
	refs := getLog.Defs["main"].Output.Schema.Properties["logs"].Items.Refs
	if len(refs) < 30 {
		t.Fatalf("only %d log types in getLog.json", len(refs))
	}
	profile := map[string]any{"did": "did:plc:bob", "handle": "bob.test"}
	system := map[string]any{"$type": "chat.bsky.convo.defs#systemMessageView", "id": "s1", "rev": "r1", "sentAt": "2026-01-02T03:04:05Z",
		"data": map[string]any{"$type": "chat.bsky.convo.defs#systemMessageDataMemberLeave", "member": map[string]any{"did": "did:plc:bob"}}}
	message := map[string]any{"$type": "chat.bsky.convo.defs#messageView", "id": "m1", "rev": "r1", "text": "hi",
		"sender": map[string]any{"did": "did:plc:bob"}, "sentAt": "2026-01-02T03:04:05Z"}
	for _, ref := range refs {
		name := strings.TrimPrefix(ref, "chat.bsky.convo.defs#")
		def, ok := defs.Defs[name]
		if !ok {
			t.Errorf("%s: not in defs.json", ref)
			continue
		}
		t.Run(name, func(t *testing.T) {
			entry := map[string]any{"$type": ref, "rev": "r1", "convoId": "c1"}
			wantSystem := false
			for prop, p := range def.Properties {
				switch {
				case prop == "message" && p.Ref == "#systemMessageView":
					entry[prop], wantSystem = system, true
				case prop == "message":
					entry[prop] = message
				case prop == "member":
					entry[prop] = profile
				case prop == "relatedProfiles":
					entry[prop] = []any{profile}
				case prop == "reaction":
					entry[prop] = map[string]any{"value": "👍", "sender": map[string]any{"did": "did:plc:bob"}, "createdAt": "2026-01-02T03:04:05Z"}
				case prop == "rev" || prop == "convoId":
				default:
					t.Fatalf("property %q of %s: the test does not know how to fill it", prop, name)
				}
			}
			b, _ := json.Marshal(entry)
			var e chat.ConvoGetLog_Output_Logs_Elem
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			ev, ok := decodeEntry(&e)
			if !ok {
				t.Fatalf("%s is not decoded: the generated types or the hub do not know it", ref)
			}
			if ev.Type != ref || ev.ConvoID != "c1" || ev.Rev != "r1" || ev.Kind == "" {
				t.Errorf("type %q convo %q rev %q kind %q", ev.Type, ev.ConvoID, ev.Rev, ev.Kind)
			}
			if wantSystem && (ev.System == nil || ev.System.Id != "s1" || ev.Kind != KindConvo) {
				t.Errorf("system message %v, kind %q", ev.System, ev.Kind)
			}
			if _, has := def.Properties["relatedProfiles"]; has && (len(ev.Related) != 1 || ev.Related[0].Handle != "bob.test") {
				t.Errorf("related profiles %v", ev.Related)
			}
		})
	}
}
