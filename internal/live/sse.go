package live

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"
)

// PageInfo describes the page an SSE stream belongs to.
type PageInfo struct {
	// ConvoID is the conversation the page shows (the ?convo= query), or ""
	// for the inbox and other pages. A non-empty ConvoID makes the user's
	// poller use ConvoInterval.
	ConvoID string
	// Hidden is true when the page's document is hidden (?hidden=1): while
	// no page of the user is visible the poller uses BackgroundInterval.
	Hidden bool
}

// Renderer turns an event into what one page receives: the SSE event name
// and its data (JSON by convention; line breaks are allowed and sent as
// several data lines). ok false skips the event for this page (its rev is
// still sent as a bare id so the page's Last-Event-ID advances). Render is
// called from each page's own handler goroutine, concurrently for different
// pages with the same *shared* Event: it must not modify ev (see Event).
// For control events (KindAuth, KindResync) a Renderer that returns ok
// false gets the JSONRenderer's output instead: they are always sent.
// Event names must be 1-64 characters of [A-Za-z0-9_.-]; events with other
// names are dropped.
type Renderer interface {
	Render(ctx context.Context, user User, ev Event, page PageInfo) (name string, data []byte, ok bool)
}

// RendererFunc adapts a function to Renderer.
type RendererFunc func(ctx context.Context, user User, ev Event, page PageInfo) (name string, data []byte, ok bool)

// Render calls f and returns what it returns.
func (f RendererFunc) Render(ctx context.Context, user User, ev Event, page PageInfo) (string, []byte, bool) {
	return f(ctx, user, ev, page)
}

// JSONRenderer is the default Renderer: the event name is the Kind and the
// data is a JSON object {"kind","rev","convoId","type","log"} for log
// events and {"kind","reason","message"} for control events.
type JSONRenderer struct {
	// OnlyPageConvo skips message, delete and reaction events of other
	// conversations on a conversation page.
	OnlyPageConvo bool
}

// jsonEvent is the data the JSONRenderer sends.
type jsonEvent struct {
	Kind    Kind            `json:"kind"`
	Rev     string          `json:"rev,omitempty"`
	ConvoID string          `json:"convoId,omitempty"`
	Type    string          `json:"type,omitempty"`
	Log     json.RawMessage `json:"log,omitempty"`
	Reason  string          `json:"reason,omitempty"`
	Message string          `json:"message,omitempty"`
}

// Render returns the event's Kind as name and its JSON; ok is false only
// for events OnlyPageConvo filters out or that cannot be marshalled.
func (r JSONRenderer) Render(_ context.Context, _ User, ev Event, page PageInfo) (string, []byte, bool) {
	if r.OnlyPageConvo && page.ConvoID != "" && ev.ConvoID != page.ConvoID {
		switch ev.Kind {
		case KindMessage, KindDelete, KindReaction:
			return "", nil, false
		}
	}
	b, err := json.Marshal(jsonEvent{
		Kind: ev.Kind, Rev: ev.Rev, ConvoID: ev.ConvoID, Type: ev.Type,
		Log: ev.JSON, Reason: ev.Reason, Message: ev.Notice,
	})
	if err != nil {
		return "", nil, false
	}
	return string(ev.Kind), b, true
}

// Handler returns the SSE endpoint. user identifies the signed-in account
// of a request (false or an empty DID → 401). render turns events into page events; nil
// means JSONRenderer{}.
//
// The endpoint answers GET only (405 otherwise), 400 for a malformed
// ?convo= or ?hidden=, 503 once the hub has shut down, and otherwise a
// text/event-stream (Cache-Control: no-store) that lasts until the request
// is cancelled or the hub shuts down. ?hidden=1 says the page's document
// is hidden: it only slows the user's poller (see PageInfo.Hidden); it
// changes nothing else, so it is no state change on a GET. A Last-Event-ID
// request header, or else ?lastEventId=, resumes after that rev: buffered
// newer events are replayed, or "resync" is sent when they are no longer
// all buffered. A stream opened without either gets, once the user's
// poller has a position, a "position" event (data {}) carrying it as its
// id. Every event is flushed as
// it is written; a comment is sent every Config.Heartbeat; each write has a
// deadline of Config.WriteTimeout, which also overrides the server's
// WriteTimeout for this long-lived response. After an "auth" event no more
// events are sent on the stream; it is kept open (heartbeats only) so the
// browser does not reconnect in a loop, until the page goes away.
func (h *Hub) Handler(user func(*http.Request) (User, bool), render Renderer) http.Handler {
	if render == nil {
		render = JSONRenderer{}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
			return
		}
		usr, ok := user(r)
		if !ok || usr.DID == "" {
			http.Error(w, "Sign in to get live updates.", http.StatusUnauthorized)
			return
		}
		q := r.URL.Query()
		page := PageInfo{ConvoID: q.Get("convo")}
		if !validConvoID(page.ConvoID) {
			http.Error(w, "Bad conversation id.", http.StatusBadRequest)
			return
		}
		if page.Hidden, ok = hiddenParam(q["hidden"]); !ok {
			http.Error(w, "Bad hidden flag.", http.StatusBadRequest)
			return
		}
		lastID := lastEventID(r)
		s, err := h.subscribe(usr, page.ConvoID != "", page.Hidden, lastID)
		if err != nil {
			http.Error(w, "Live updates are not available right now.", http.StatusServiceUnavailable)
			return
		}
		defer h.unsubscribe(s)

		hdr := w.Header()
		hdr.Set("Content-Type", "text/event-stream")
		hdr.Set("Cache-Control", "no-store")
		hdr.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		sw := &sseWriter{w: w, rc: http.NewResponseController(w), timeout: h.cfg.WriteTimeout}
		if sw.raw("retry: 3000\n: live\n\n") != nil || sw.flush() != nil {
			return
		}
		if err := h.stream(r.Context(), sw, s, usr, page, render); err != nil && !errors.Is(err, context.Canceled) {
			h.log.Debug("live: stream ended", "did", usr.DID.String(), "err", err)
		}
	})
}

// stream writes s's events to sw until ctx or the hub is done or a write
// fails.
func (h *Hub) stream(ctx context.Context, sw *sseWriter, s *sub, usr User, page PageInfo, render Renderer) error {
	heartbeat := time.NewTicker(h.cfg.Heartbeat)
	defer heartbeat.Stop()
	var buf []*Event
	authSent := false
	for {
		if !authSent {
			batch, final := h.next(s, buf[:0])
			pendingID := ""
			for _, ev := range batch {
				name, data, ok := render.Render(ctx, usr, *ev, page)
				if ok && !validName(name) {
					h.log.Debug("live: renderer returned a bad event name", "name", name)
					ok = false
				}
				if !ok && (ev.Kind == KindAuth || ev.Kind == KindResync) {
					name, data, _ = JSONRenderer{}.Render(ctx, usr, *ev, page)
					ok = true
				}
				if !ok {
					pendingID = ev.Rev
					continue
				}
				pendingID = ""
				if err := sw.event(ev.Rev, name, data); err != nil {
					return err
				}
				if err := sw.flush(); err != nil {
					return err
				}
			}
			if pendingID != "" {
				if err := sw.event(pendingID, "", nil); err != nil {
					return err
				}
				if err := sw.flush(); err != nil {
					return err
				}
			}
			clear(batch)
			buf = batch[:0]
			authSent = final
			if id, ok := h.startID(s); ok && !authSent {
				if err := sw.event(id, "position", []byte("{}")); err != nil {
					return err
				}
				if err := sw.flush(); err != nil {
					return err
				}
			}
		}
		select {
		case <-s.notify:
		case <-heartbeat.C:
			if err := sw.raw(":\n\n"); err != nil {
				return err
			}
			if err := sw.flush(); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-h.ctx.Done():
			return nil
		}
	}
}

// sseWriter writes the text/event-stream format.
type sseWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

func (sw *sseWriter) deadline() {
	// The deadline is wall-clock time for the connection, not the hub's
	// clock. Errors (ErrNotSupported for some writers) are ignored.
	_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.timeout))
}

func (sw *sseWriter) raw(s string) error {
	sw.deadline()
	_, err := io.WriteString(sw.w, s)
	return err
}

func (sw *sseWriter) flush() error {
	err := sw.rc.Flush()
	if errors.Is(err, http.ErrNotSupported) {
		return nil
	}
	return err
}

// event writes one event. id and name must be free of line breaks (checked
// by the callers); data may have any line breaks: each line becomes one
// data field. An event with no name and no data only sets the id.
func (sw *sseWriter) event(id, name string, data []byte) error {
	sw.deadline()
	w := sw.w
	var err error
	put := func(s string) {
		if err == nil {
			_, err = io.WriteString(w, s)
		}
	}
	putb := func(b []byte) {
		if err == nil {
			_, err = w.Write(b)
		}
	}
	if id != "" && !unsafeID(id) {
		put("id: ")
		put(id)
		put("\n")
	}
	if name != "" {
		put("event: ")
		put(name)
		put("\n")
	}
	if data != nil {
		for {
			i := indexLineEnd(data)
			put("data: ")
			if i < 0 {
				putb(data)
				put("\n")
				break
			}
			putb(data[:i])
			put("\n")
			if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
				i++
			}
			data = data[i+1:]
		}
	}
	put("\n")
	return err
}

// indexLineEnd returns the index of the first \r or \n in b, or -1.
func indexLineEnd(b []byte) int {
	for i, c := range b {
		if c == '\n' || c == '\r' {
			return i
		}
	}
	return -1
}

// lastEventID is where the request resumes: the Last-Event-ID header (the
// browser's own reconnects of one EventSource) or else ?lastEventId= (a new
// EventSource of a page shown again sends no header). Either is ignored
// when it cannot be an SSE id.
func lastEventID(r *http.Request) string {
	id := r.Header.Get("Last-Event-ID")
	if id == "" {
		id = r.URL.Query().Get("lastEventId")
	}
	if unsafeID(id) {
		return ""
	}
	return id
}

// hiddenParam reads the ?hidden= values: none or "0" is a visible page,
// "1" a hidden one; ok is false for anything else.
func hiddenParam(vs []string) (hidden, ok bool) {
	switch {
	case len(vs) == 0:
		return false, true
	case len(vs) > 1:
		return false, false
	}
	return vs[0] == "1", vs[0] == "0" || vs[0] == "1"
}

// validName reports whether name can be an SSE event name here.
func validName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validConvoID reports whether id can be a convo id ("" is allowed: no
// conversation page).
func validConvoID(id string) bool {
	if len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == ':' || c == '~') {
			return false
		}
	}
	return true
}
