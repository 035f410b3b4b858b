package handlers

import (
	"context"
	"sync"

	appbsky "github.com/bluesky-social/indigo/api/bsky"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/lex/chat"
)

// fakeSafety is what a fakeChat records of reports, blocks and
// notification preferences (kept beside it, so the shared fake is not
// edited).
type fakeSafety struct {
	reports   []chatproxy.Report
	blocks    []string // Block subjects, in order
	unblocks  []string // "subject knownURI"
	prefs     chat.NotificationDefs_Preferences
	puts      []chat.NotificationPutPreferences_Input
	blockedBy map[string]bool
}

var safetyOf sync.Map // *fakeChat → *fakeSafety

// safety returns f's safety record (f.mu guards it).
func (f *fakeChat) safety() *fakeSafety {
	v, _ := safetyOf.LoadOrStore(f, &fakeSafety{prefs: chat.NotificationDefs_Preferences{
		Chat:        &chat.NotificationDefs_ChatPreference{Include: "all", Push: true},
		ChatRequest: &chat.NotificationDefs_ChatPreference{Include: "all", Push: true},
	}})
	return v.(*fakeSafety)
}

func (f *fakeChat) CreateReport(ctx context.Context, r chatproxy.Report) error {
	if err := f.enter(ctx, "CreateReport"); err != nil {
		return err
	}
	if err := chatproxy.CheckReport(r); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.safety()
	s.reports = append(s.reports, r)
	return nil
}

// setViewer sets the viewer state of did in every convo the fake has, as
// the chat service reflects a block.
func (f *fakeChat) setViewer(did string, set func(v *appbsky.ActorDefs_ViewerState)) {
	for _, c := range f.convos {
		for i, p := range c.Members {
			if p != nil && p.Did == did {
				cp := *p
				vs := appbsky.ActorDefs_ViewerState{}
				if cp.Viewer != nil {
					vs = *cp.Viewer
				}
				set(&vs)
				cp.Viewer = &vs
				c.Members[i] = &cp
			}
		}
	}
}

func (f *fakeChat) Block(ctx context.Context, subject string) error {
	if err := f.enter(ctx, "Block"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.safety()
	s.blocks = append(s.blocks, subject)
	uri := "at://" + f.viewer + "/app.bsky.graph.block/b" + string(rune('0'+len(s.blocks)))
	f.setViewer(subject, func(v *appbsky.ActorDefs_ViewerState) { v.Blocking = &uri })
	return nil
}

func (f *fakeChat) Unblock(ctx context.Context, subject, knownURI string) error {
	if err := f.enter(ctx, "Unblock"); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.safety()
	s.unblocks = append(s.unblocks, subject+" "+knownURI)
	f.setViewer(subject, func(v *appbsky.ActorDefs_ViewerState) { v.Blocking = nil })
	return nil
}

func (f *fakeChat) GetNotificationPreferences(ctx context.Context) (*chat.NotificationDefs_Preferences, error) {
	if err := f.enter(ctx, "GetNotificationPreferences"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.safety().prefs
	c, r := *p.Chat, *p.ChatRequest
	return &chat.NotificationDefs_Preferences{Chat: &c, ChatRequest: &r}, nil
}

func (f *fakeChat) PutNotificationPreferences(ctx context.Context, in chat.NotificationPutPreferences_Input) (*chat.NotificationDefs_Preferences, error) {
	if err := f.enter(ctx, "PutNotificationPreferences"); err != nil {
		return nil, err
	}
	if err := chatproxy.CheckNotificationPreferences(in); err != nil {
		return nil, err
	}
	f.mu.Lock()
	s := f.safety()
	s.puts = append(s.puts, in)
	if in.Chat != nil {
		c := *in.Chat
		s.prefs.Chat = &c
	}
	if in.ChatRequest != nil {
		c := *in.ChatRequest
		s.prefs.ChatRequest = &c
	}
	f.mu.Unlock()
	return f.GetNotificationPreferences(ctx)
}

// The benchmarks' staticChat: the safety calls are never made on the
// pages measured.
func (s *staticChat) CreateReport(context.Context, chatproxy.Report) error { return nil }
func (s *staticChat) Block(context.Context, string) error                  { return nil }
func (s *staticChat) Unblock(context.Context, string, string) error        { return nil }
func (s *staticChat) GetNotificationPreferences(context.Context) (*chat.NotificationDefs_Preferences, error) {
	return &chat.NotificationDefs_Preferences{}, nil
}
func (s *staticChat) PutNotificationPreferences(context.Context, chat.NotificationPutPreferences_Input) (*chat.NotificationDefs_Preferences, error) {
	return &chat.NotificationDefs_Preferences{}, nil
}

// chatPref is a chat notification preference, written short.
type chatPref struct {
	include string
	push    bool
}

func (p chatPref) lex() chat.NotificationDefs_ChatPreference {
	return chat.NotificationDefs_ChatPreference{Include: p.include, Push: p.push}
}
