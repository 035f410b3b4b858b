package devchat

import (
	"context"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

// Chat notification preferences (chat.bsky.notification.*): stored per
// account, defaults until the account sets them.

// chatPrefs is one account's chat.bsky.notification.defs#preferences.
type chatPrefs struct {
	chat, chatRequest chatPref
}

// chatPref is one chat.bsky.notification.defs#chatPreference.
type chatPref struct {
	include string // "all" or "follows"
	push    bool
}

// defaultPrefs are what an account that never set any gets: notifications
// for every chat and chat request, pushed, as Bluesky's app view defaults
// its chat notification preference (include "all", push on).
var defaultPrefs = chatPrefs{chat: chatPref{include: "all", push: true}, chatRequest: chatPref{include: "all", push: true}}

func (p chatPref) view() *chat.NotificationDefs_ChatPreference {
	return &chat.NotificationDefs_ChatPreference{Include: p.include, Push: p.push}
}

func (p chatPrefs) view() *chat.NotificationDefs_Preferences {
	return &chat.NotificationDefs_Preferences{Chat: p.chat.view(), ChatRequest: p.chatRequest.view()}
}

// prefsOf returns viewer's preferences. Requires Server.mu.
func (s *Server) prefsOf(viewer syntax.DID) chatPrefs {
	if p, ok := s.st.prefs[viewer]; ok {
		return *p
	}
	return defaultPrefs
}

func (s *Server) getPreferences(_ context.Context, viewer syntax.DID, _ *http.Request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &chat.NotificationGetPreferences_Output{Preferences: s.prefsOf(viewer).view()}, nil
}

// putPreferences updates only the preferences given; include must be one of
// the lexicon's known values, since the service could not act on another.
func (s *Server) putPreferences(_ context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in chat.NotificationPutPreferences_Input
	if err := decodeValidated(r, "chat.bsky.notification.putPreferences", &in); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		name string
		v    *chat.NotificationDefs_ChatPreference
	}{{"chat", in.Chat}, {"chatRequest", in.ChatRequest}} {
		if p.v != nil && p.v.Include != "all" && p.v.Include != "follows" {
			return nil, invalidf("Input/%s/include must be one of: all, follows", p.name)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.prefsOf(viewer)
	if in.Chat != nil {
		p.chat = chatPref{include: in.Chat.Include, push: in.Chat.Push}
	}
	if in.ChatRequest != nil {
		p.chatRequest = chatPref{include: in.ChatRequest.Include, push: in.ChatRequest.Push}
	}
	if s.st.prefs == nil {
		s.st.prefs = map[syntax.DID]*chatPrefs{}
	}
	s.st.prefs[viewer] = &p
	return &chat.NotificationPutPreferences_Output{Preferences: p.view()}, nil
}
