package kit

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/a-h/templ"

	"github.com/skydm/skydm/internal/websession"
	"github.com/skydm/skydm/views"
)

// Kit is what every page handler renders with: the logger, the static
// files, the clock and the reader's time zone.
type Kit struct {
	// Log is the app's logger.
	Log *slog.Logger
	// Assets are the static files pages link.
	Assets *Assets

	now   func() time.Time
	zones *zoneCache // nil: every reader is in UTC
	bufs  sync.Pool  // *bytes.Buffer for Render
}

// New returns a Kit. now is the pages' clock (nil → time.Now); with
// timeZones the pages read the browser's time zone from the tz cookie
// (dm.js sets it), else they show UTC.
func New(log *slog.Logger, assets *Assets, now func() time.Time, timeZones bool) *Kit {
	if now == nil {
		now = time.Now
	}
	k := &Kit{Log: log, Assets: assets, now: now}
	if timeZones {
		k.zones = newZoneCache()
	}
	return k
}

// Now is the pages' clock.
func (k *Kit) Now() time.Time { return k.now() }

// Loc returns the browser's time zone from the tz cookie, or UTC.
func (k *Kit) Loc(r *http.Request) *time.Location {
	c, err := r.Cookie("tz")
	if err != nil || k.zones == nil {
		return time.UTC
	}
	return k.zones.get(c.Value)
}

// maxPooledPage is the largest page buffer Render keeps for reuse.
const maxPooledPage = 256 << 10

// Render writes a page with status. The page is rendered into a buffer
// first so a template failure still becomes a clean 500. It renders
// without the request's cancellation: the answer to a request whose
// deadline has just passed (the "not answering" page) must still be
// written. Nothing is written to a client that went away.
func (k *Kit) Render(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	if k.clientGone(r) {
		return
	}
	buf, _ := k.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer func() {
		if buf.Cap() <= maxPooledPage {
			buf.Reset()
			k.bufs.Put(buf)
		}
	}()
	if err := c.Render(context.WithoutCancel(r.Context()), buf); err != nil {
		k.Log.ErrorContext(r.Context(), "render page", "err", err, "path", r.URL.Path, "request_id", RequestID(r.Context()))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("Something went wrong on our side. It has been logged.\n"))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// Page returns the layout data for this request: title, the nav item
// that is current, the static files and the signed-in accounts.
func (k *Kit) Page(r *http.Request, title, nav string) views.Page {
	v := ViewerFrom(r.Context())
	p := views.Page{Title: title, Nav: nav, Assets: k.Assets.Layout()}
	if v.Current == nil {
		return p
	}
	cur := accountView(*v.Current, true)
	p.Current = &cur
	p.Accounts = append(p.Accounts, cur)
	for _, a := range v.Accounts {
		if a.DID != v.Current.DID {
			p.Accounts = append(p.Accounts, accountView(a, false))
		}
	}
	return p
}

// accountView is the view model of a signed-in account.
func accountView(a websession.Account, active bool) views.Account {
	return views.Account{DID: a.DID.String(), Handle: a.Handle, HasChatScope: a.HasChatScope, Active: active}
}
