package dm

import (
	"net/http"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/views"
)

// declarationType is the record type (and collection) of the chat
// declaration.
const declarationType = "chat.bsky.actor.declaration"

// Settings is GET /settings/chat: who may start a conversation with the
// viewer, read from their chat.bsky.actor.declaration/self record (no
// record: people they follow, Bluesky's default).
func (s *Pages) Settings(w http.ResponseWriter, r *http.Request) {
	_, c, ok := s.dmClient(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()
	d, err := c.Declaration(ctx)
	if err != nil {
		s.kit.Error(w, r, err, kit.Retry())
		return
	}
	s.renderSettings(w, r, http.StatusOK, views.SettingsVM{AllowIncoming: d.AllowIncoming(), Notice: dmNotice(r.URL.Query().Get("notice"))})
}

func (s *Pages) renderSettings(w http.ResponseWriter, r *http.Request, status int, vm views.SettingsVM) {
	vm.Assets = s.dmAssets()
	s.kit.Render(w, r, status, views.SettingsPage(s.dmPage(r, "Chat settings", s.cachedUnread(r)), vm))
}

// SettingsPost is POST /settings/chat (allow_incoming: all, following or
// none). It reads the declaration record first and writes it back with
// only allowIncoming changed (other fields are kept), swapping the CID it
// read, so a change made elsewhere meanwhile is not overwritten.
func (s *Pages) SettingsPost(w http.ResponseWriter, r *http.Request) {
	_, c, ok := s.dmClient(w, r)
	if !ok {
		return
	}
	if err := parseDMForm(w, r); err != nil {
		s.kit.Error(w, r, err)
		return
	}
	allow := r.PostForm.Get("allow_incoming")
	switch allow {
	case views.AllowAll, views.AllowFollowing, views.AllowNone:
	default:
		s.renderSettings(w, r, http.StatusBadRequest, views.SettingsVM{Error: "Choose who can start a conversation with you."})
		return
	}
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()
	d, err := c.Declaration(ctx)
	if err == nil {
		v := make(map[string]any, len(d.Value)+2)
		for k, x := range d.Value {
			v[k] = x
		}
		v["$type"] = declarationType
		v["allowIncoming"] = allow
		err = c.SaveDeclaration(ctx, Declaration{Value: v, CID: d.CID})
	}
	if err != nil {
		s.kit.Error(w, r, err, kit.Form(func(status int, msg string) {
			s.renderSettings(w, r, status, views.SettingsVM{AllowIncoming: allow, Error: msg})
		}))
		return
	}
	kit.Redirect(w, r, noticeURL("/settings/chat", "saved"))
}

var errDeclarationChanged = apperr.New(apperr.Conflict, "Your chat settings were changed somewhere else at the same time. Check them and save again.")
