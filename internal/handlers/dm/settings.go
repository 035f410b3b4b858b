package dm

import (
	"net/http"
	"sync"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/views"
)

// declarationType is the record type (and collection) of the chat
// declaration.
const declarationType = "chat.bsky.actor.declaration"

// Settings is GET /settings/chat: who may start a conversation with the
// viewer and who may add them to groups, read from their
// chat.bsky.actor.declaration/self record (no record or field: people they
// follow, Bluesky's default), and their chat notification preferences,
// read in parallel. Preferences that cannot be read leave the rest of the
// page working, with the reason where their form would be.
func (s *Pages) Settings(w http.ResponseWriter, r *http.Request) {
	_, c, ok := s.dmClient(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()
	var prefs *chat.NotificationDefs_Preferences
	var prefsErr error
	var wg sync.WaitGroup
	wg.Go(func() { prefs, prefsErr = c.GetNotificationPreferences(ctx) })
	d, err := c.Declaration(ctx)
	wg.Wait()
	if err == nil && apperr.CodeOf(prefsErr) == apperr.Unauthorized {
		err = prefsErr
	}
	if err != nil {
		s.kit.Error(w, r, err, kit.Retry())
		return
	}
	vm := views.SettingsVM{AllowIncoming: d.AllowIncoming(), AllowGroupInvites: d.AllowGroupInvites(), Notice: dmNotice(r.URL.Query().Get("notice"))}
	s.withPrefs(&vm, prefs, prefsErr)
	s.renderSettings(w, r, http.StatusOK, vm)
}

// withPrefs sets the notification form of vm from prefs, or the reason
// they could not be read.
func (s *Pages) withPrefs(vm *views.SettingsVM, prefs *chat.NotificationDefs_Preferences, err error) {
	if err != nil {
		vm.NotifyError = "Your notification settings could not be loaded just now. " + apperr.MessageOf(err)
		return
	}
	vm.Notify = &views.NotifyVM{Chat: notifyPref(prefs.Chat), ChatRequest: notifyPref(prefs.ChatRequest)}
}

func notifyPref(p *chat.NotificationDefs_ChatPreference) views.NotifyPref {
	return views.NotifyPref{Include: p.Include, Push: p.Push}
}

func (s *Pages) renderSettings(w http.ResponseWriter, r *http.Request, status int, vm views.SettingsVM) {
	vm.Assets = s.dmAssets()
	s.kit.Render(w, r, status, views.SettingsPage(s.dmPage(r, "Chat settings", s.cachedUnread(r)), vm))
}

// AllowGroupInvites returns the record's allowGroupInvites value, or ""
// when unset.
func (d Declaration) AllowGroupInvites() string {
	v, _ := d.Value["allowGroupInvites"].(string)
	return v
}

func validAllow(v string) bool {
	return v == views.AllowAll || v == views.AllowFollowing || v == views.AllowNone
}

// SettingsPost is POST /settings/chat (allow_incoming and
// allow_group_invites: all, following or none; a form without
// allow_group_invites leaves it as it is). It reads the declaration record
// first and writes it back with only those fields changed (other fields
// are kept), swapping the CID it read, so a change made elsewhere
// meanwhile is not overwritten.
func (s *Pages) SettingsPost(w http.ResponseWriter, r *http.Request) {
	c, ok := s.formClient(w, r)
	if !ok {
		return
	}
	allow := r.PostForm.Get("allow_incoming")
	groups, hasGroups := r.PostForm.Get("allow_group_invites"), r.PostForm.Has("allow_group_invites")
	vm := views.SettingsVM{AllowIncoming: allow, AllowGroupInvites: groups}
	show := func(status int, msg string) {
		vm.Error = msg
		vm.NotifyError = "Save your notification settings after fixing the above."
		s.renderSettings(w, r, status, vm)
	}
	switch {
	case !validAllow(allow):
		show(http.StatusBadRequest, "Choose who can start a conversation with you.")
		return
	case hasGroups && !validAllow(groups):
		show(http.StatusBadRequest, "Choose who can add you to group chats.")
		return
	}
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()
	d, err := c.Declaration(ctx)
	if err == nil {
		v := make(map[string]any, len(d.Value)+3)
		for k, x := range d.Value {
			v[k] = x
		}
		v["$type"] = declarationType
		v["allowIncoming"] = allow
		if hasGroups {
			v["allowGroupInvites"] = groups
		}
		err = c.SaveDeclaration(ctx, Declaration{Value: v, CID: d.CID})
	}
	if err != nil {
		s.kit.Error(w, r, err, kit.Form(show))
		return
	}
	kit.Redirect(w, r, noticeURL("/settings/chat", "saved"))
}

// NotificationsPost is POST /settings/chat/notifications: chat_include
// and chat_request_include (all or follows), chat_push and
// chat_request_push (checked: on), sent with
// chat.bsky.notification.putPreferences. A missing or unknown include
// keeps the form with the choices made and sends nothing.
func (s *Pages) NotificationsPost(w http.ResponseWriter, r *http.Request) {
	c, ok := s.formClient(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	in := chat.NotificationPutPreferences_Input{
		Chat:        &chat.NotificationDefs_ChatPreference{Include: f.Get("chat_include"), Push: f.Get("chat_push") == "on"},
		ChatRequest: &chat.NotificationDefs_ChatPreference{Include: f.Get("chat_request_include"), Push: f.Get("chat_request_push") == "on"},
	}
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()
	show := func(status int, msg string) {
		vm := views.SettingsVM{Error: msg, Notify: &views.NotifyVM{Chat: notifyPref(in.Chat), ChatRequest: notifyPref(in.ChatRequest)}}
		if d, err := c.Declaration(ctx); err == nil {
			vm.AllowIncoming, vm.AllowGroupInvites = d.AllowIncoming(), d.AllowGroupInvites()
		}
		s.renderSettings(w, r, status, vm)
	}
	if _, err := c.PutNotificationPreferences(ctx, in); err != nil {
		s.kit.Error(w, r, err, kit.Form(show))
		return
	}
	kit.Redirect(w, r, noticeURL("/settings/chat", "saved"))
}

var errDeclarationChanged = apperr.New(apperr.Conflict, "Your chat settings were changed somewhere else at the same time. Check them and save again.")

// formClient is dmClient for a POST: the chat client once the form is
// read, or the response written and false.
func (s *Pages) formClient(w http.ResponseWriter, r *http.Request) (Chat, bool) {
	_, c, ok := s.dmClient(w, r)
	if !ok {
		return nil, false
	}
	if err := parseDMForm(w, r); err != nil {
		s.kit.Error(w, r, err)
		return nil, false
	}
	return c, true
}
