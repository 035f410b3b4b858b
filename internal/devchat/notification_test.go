package devchat

import (
	"net/http"
	"testing"

	"github.com/skydm/skydm/internal/lex/chat"
)

func (e *env) prefs(u *user) *chat.NotificationDefs_Preferences {
	e.t.Helper()
	return ok[chat.NotificationGetPreferences_Output](e.t, e.query(u, "chat.bsky.notification.getPreferences", nil)).Preferences
}

func TestNotificationPreferencesDefaultToAllPushed(t *testing.T) {
	e := newEnv(t, false)
	p := e.prefs(e.user("alice"))
	if *p.Chat != (chat.NotificationDefs_ChatPreference{Include: "all", Push: true}) ||
		*p.ChatRequest != (chat.NotificationDefs_ChatPreference{Include: "all", Push: true}) {
		t.Fatalf("defaults = chat %+v chatRequest %+v", *p.Chat, *p.ChatRequest)
	}
}

func TestPutPreferencesChangesOnlyWhatIsGiven(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	out := ok[chat.NotificationPutPreferences_Output](t, e.proc(alice, "chat.bsky.notification.putPreferences",
		map[string]any{"chatRequest": map[string]any{"include": "follows", "push": false}}))
	want := chat.NotificationDefs_Preferences{
		Chat:        &chat.NotificationDefs_ChatPreference{Include: "all", Push: true},
		ChatRequest: &chat.NotificationDefs_ChatPreference{Include: "follows", Push: false},
	}
	for name, got := range map[string]*chat.NotificationDefs_Preferences{"answer": out.Preferences, "getPreferences": e.prefs(alice)} {
		if *got.Chat != *want.Chat || *got.ChatRequest != *want.ChatRequest {
			t.Errorf("%s = chat %+v chatRequest %+v", name, *got.Chat, *got.ChatRequest)
		}
	}
	ok[chat.NotificationPutPreferences_Output](t, e.proc(alice, "chat.bsky.notification.putPreferences",
		map[string]any{"chat": map[string]any{"include": "follows", "push": true}}))
	if got := e.prefs(alice); got.Chat.Include != "follows" || got.ChatRequest.Include != "follows" || got.ChatRequest.Push {
		t.Errorf("second put lost the first: chat %+v chatRequest %+v", *got.Chat, *got.ChatRequest)
	}
	if got := e.prefs(bob); got.ChatRequest.Include != "all" {
		t.Errorf("bob's preferences changed with alice's: %+v", *got.ChatRequest)
	}
}

func TestPutPreferencesRefusesWhatTheLexiconDoesNot(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	for name, body := range map[string]any{
		"unknown include": map[string]any{"chat": map[string]any{"include": "nobody", "push": true}},
		"push missing":    map[string]any{"chat": map[string]any{"include": "all"}},
		"push a string":   map[string]any{"chat": map[string]any{"include": "all", "push": "yes"}},
	} {
		t.Run(name, func(t *testing.T) {
			wantErr(t, e.proc(alice, "chat.bsky.notification.putPreferences", body), http.StatusBadRequest, "InvalidRequest", "chat")
		})
	}
	if got := e.prefs(alice); got.Chat.Include != "all" || !got.Chat.Push {
		t.Fatalf("a refused put changed the preferences: %+v", *got.Chat)
	}
}
