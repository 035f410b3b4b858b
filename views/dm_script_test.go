package views

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/a-h/templ"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/skydm/skydm/internal/richtext"
	"github.com/skydm/skydm/internal/testenv"
	"github.com/skydm/skydm/static"
)

// jsTestCSP is the app's policy (internal/handlers newCSP) with nonce "n0nce".
const jsTestCSP = "default-src 'none'; script-src 'self' 'nonce-n0nce'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// fakeDM serves DM pages, dm.js and dm.css as the handlers will: the send
// endpoint answers JSON to Accept: application/json, and /events streams
// what the test pushes.
type fakeDM struct {
	t      *testing.T
	events chan string   // preformatted SSE events
	hold   chan struct{} // when not nil, each send waits for a value
	mu     sync.Mutex
	posts  []map[string]string
}

func (f *fakeDM) push(name string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Fatal(err)
	}
	f.events <- "event: " + name + "\ndata: " + string(b) + "\n\n"
}

func renderString(t testing.TB, c templ.Component) string {
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func (f *fakeDM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", jsTestCSP)
	ctx := templ.WithNonce(r.Context(), "n0nce")
	p := testPage()
	p.Assets = Assets{CSS: "/static/app.css", JS: "/static/app.js", Icon: "/static/favicon.svg"}
	dm := DMAssets{CSS: "/static/dm.css", JS: "/static/dm.js"}
	switch {
	case strings.HasPrefix(r.URL.Path, "/static/"):
		b, err := fs.ReadFile(static.FS(), path.Base(r.URL.Path)) // as served
		if err != nil {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, r.URL.Path, time.Time{}, bytes.NewReader(b))
	case r.URL.Path == "/convos/convo1" && r.Method == http.MethodGet:
		vm := convoFixture(3)
		vm.Assets = dm
		p.Title = "(2) Bob"
		ConvoPage(p, vm).Render(ctx, w)
	case r.URL.Path == "/hostile" && r.Method == http.MethodGet:
		vm := hostileConvo()
		vm.Assets = dm
		vm.Members[0].AvatarURL = ""
		ConvoPage(p, vm).Render(ctx, w)
	case r.URL.Path == "/" && r.Method == http.MethodGet:
		vm := inboxFixture(3)
		vm.Assets = dm
		for i := range vm.Convos {
			vm.Convos[i].Members[0].AvatarURL = "" // the browser must not leave loopback
		}
		InboxPage(p, vm).Render(ctx, w)
	case r.URL.Path == "/convos/convo1/messages" && r.Method == http.MethodPost:
		r.ParseForm()
		f.mu.Lock()
		f.posts = append(f.posts, map[string]string{"text": r.PostForm.Get("text"), "token": r.PostForm.Get("token"),
			"reply_to": r.PostForm.Get("reply_to"), "accept": r.Header.Get("Accept")})
		hold := f.hold
		f.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Second):
			}
		}
		w.Header().Set("Content-Type", "application/json")
		text := r.PostForm.Get("text")
		if strings.HasPrefix(text, "fail") {
			w.WriteHeader(http.StatusTooManyRequests)
			json.NewEncoder(w).Encode(map[string]string{"error": "You are sending messages too fast. Try again at 15:04.", "token": "tok-2"})
			return
		}
		id := strings.Fields(text)[0] + "-id"
		m := MessageVM{ID: id, Own: true, SenderName: "Alice", Segments: richtext.Render(text, nil, dmLinks), SentAt: dmNow}
		json.NewEncoder(w).Encode(map[string]string{"id": id, "html": renderString(f.t, MessageItem(m, MsgContext{ConvoID: "convo1"})), "token": "tok-3"})
	case r.URL.Path == "/events":
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		fl := w.(http.Flusher)
		fmt.Fprint(w, ": hi\n\n")
		fl.Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case ev := <-f.events:
				fmt.Fprint(w, ev)
				fl.Flush()
			}
		}
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeDM) lastPost() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.posts) == 0 {
		return nil
	}
	return f.posts[len(f.posts)-1]
}

// pressEnter types Enter into the focused element the way a keyboard does:
// one keyDown carrying the text "\r" (whose default action, unless
// prevented, inserts the line break), then keyUp. (chromedp.SendKeys sends
// a separate "char" event that inserts the line break even when keydown
// was prevented, which no real keyboard does.)
func pressEnter(ctx context.Context, modifiers int64) error {
	down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: "Enter", Code: "Enter",
		WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13, Text: "\r", UnmodifiedText: "\r", Modifiers: modifiers}
	if _, err := chromedp.Call(ctx, input.DispatchKeyEvent, down); err != nil {
		return err
	}
	up := down
	up.Type, up.Text, up.UnmodifiedText = input.DispatchKeyEventTypeKeyUp, "", ""
	_, err := chromedp.Call(ctx, input.DispatchKeyEvent, up)
	return err
}

// send types text into the composer and presses Enter.
func send(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`[data-testid="draft"]`), text)); err != nil {
		t.Fatal(err)
	}
	if err := pressEnter(ctx, 0); err != nil {
		t.Fatal(err)
	}
}

// waitJS polls a JavaScript expression until it is true.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+expr+") || null", chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main').outerHTML`))
		t.Fatalf("%s: %v\n%s", what, err, html)
	}
}

func TestDMScriptInBrowser(t *testing.T) {
	f := &fakeDM{t: t, events: make(chan string, 16)}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	ctx := testenv.Browser(t, testenv.BrowserOptions{})
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	watch, err := testenv.WatchLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ta := chromedp.CSS(`[data-testid="draft"]`)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/convos/convo1"), chromedp.WaitVisible(ta)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "script ran (hint shown)", `!document.getElementById('composer-hint').hidden`)

	t.Run("shift enter adds a line without sending", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.SendKeys(ta, "line one")); err != nil {
			t.Fatal(err)
		}
		if err := pressEnter(ctx, int64(chromedp.ModifierShift)); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.SendKeys(ta, "two")); err != nil {
			t.Fatal(err)
		}
		v, _ := chromedp.Run(ctx, chromedp.Value(ta))
		if v != "line one\ntwo" || f.lastPost() != nil {
			t.Fatalf("textarea %q, posts %v", v, f.lastPost())
		}
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('text').value = ''`)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("enter sends optimistically and reconciles with the server copy", func(t *testing.T) {
		f.mu.Lock()
		f.hold = make(chan struct{})
		hold := f.hold
		f.mu.Unlock()
		send(t, ctx, "hello there")
		waitJS(t, ctx, "pending bubble", `[...document.querySelectorAll('#msgs .pending')].some(li => li.textContent.includes('hello there')) && document.getElementById('text').value === ''`)
		hold <- struct{}{}
		waitJS(t, ctx, "server copy replaced the pending bubble", `document.getElementById('m-hello-id') && !document.querySelector('#msgs .pending')`)
		p := f.lastPost()
		if p["text"] != "hello there" || p["token"] != "tok-123" || p["accept"] != "application/json" {
			t.Fatalf("post %v", p)
		}
		waitJS(t, ctx, "next token stored", `document.querySelector('input[name=token]').value === 'tok-3'`)
	})

	t.Run("live message before the send answer is not duplicated", func(t *testing.T) {
		f.mu.Lock()
		f.hold = make(chan struct{})
		hold := f.hold
		f.mu.Unlock()
		send(t, ctx, "race")
		waitJS(t, ctx, "pending bubble", `document.querySelector('#msgs .pending')`)
		m := MessageVM{ID: "race-id", Own: true, Segments: richtext.Render("race", nil, dmLinks), SentAt: dmNow}
		f.push("message", map[string]string{"convoId": "convo1", "id": "race-id", "html": renderString(t, MessageItem(m, MsgContext{ConvoID: "convo1"}))})
		waitJS(t, ctx, "live copy replaced the pending bubble", `document.getElementById('m-race-id') && !document.querySelector('#msgs .pending')`)
		hold <- struct{}{}
		f.mu.Lock()
		f.hold = nil
		f.mu.Unlock()
		waitJS(t, ctx, "token after answer", `document.querySelector('input[name=token]').value === 'tok-3'`)
		waitJS(t, ctx, "exactly one copy", `document.querySelectorAll('#m-race-id').length === 1 && document.querySelectorAll('#msgs [data-testid=message]').length === 5`)
	})

	t.Run("failed send keeps the draft and shows the error", func(t *testing.T) {
		send(t, ctx, "fail now")
		waitJS(t, ctx, "failed bubble, draft back, error shown",
			`document.querySelector('#msgs .failed') && document.getElementById('text').value === 'fail now' && `+
				`!document.getElementById('composer-error').hidden && document.getElementById('composer-error').textContent.includes('Try again at 15:04') && `+
				`document.querySelector('input[name=token]').value === 'tok-2'`)
	})

	t.Run("live events apply", func(t *testing.T) {
		other := MessageVM{ID: "live1", SenderName: "Bob", Segments: richtext.Render("from bob <b>hi</b>", nil, dmLinks), SentAt: dmNow}
		html := renderString(t, MessageItem(other, MsgContext{ConvoID: "convo1"}))
		f.push("message", map[string]string{"convoId": "convo1", "id": "live1", "html": html})
		f.push("message", map[string]string{"convoId": "convo1", "id": "live1", "html": html})
		f.push("message", map[string]string{"convoId": "elsewhere", "id": "x1", "html": strings.ReplaceAll(html, "live1", "x1")})
		waitJS(t, ctx, "message appended once, other convo ignored",
			`document.querySelectorAll('#m-live1').length === 1 && document.querySelector('#m-live1 [data-testid=message-text]').textContent === 'from bob <b>hi</b>' && !document.getElementById('m-x1')`)

		withReaction := MessageVM{ID: "msg001", Reactions: []ReactionVM{{Value: "🔥", Count: 1}}}
		f.push("reaction", map[string]string{"convoId": "convo1", "id": "msg001", "html": renderString(t, MessageReactions(withReaction, MsgContext{ConvoID: "convo1"}))})
		waitJS(t, ctx, "reaction added", `document.querySelector('#m-msg001 [data-testid=reaction]')?.textContent.includes('🔥')`)
		f.push("reaction", map[string]string{"convoId": "convo1", "id": "msg000", "html": ""})
		waitJS(t, ctx, "reactions removed", `!document.querySelector('#m-msg000 [data-testid=reactions]')`)

		f.push("delete", map[string]string{"convoId": "convo1", "id": "msg002"})
		waitJS(t, ctx, "message shown deleted", `document.querySelector('#m-msg002 [data-testid=message-deleted]') && !document.querySelector('#m-msg002 [data-testid=message-text]')`)

		f.push("unread", map[string]int{"total": 4})
		waitJS(t, ctx, "title has the unread count", `document.title === '(4) Bob · skydm'`)
		f.push("unread", map[string]int{"total": 0})
		waitJS(t, ctx, "title without count", `document.title === 'Bob · skydm'`)
	})

	t.Run("auth event stops live updates with a notice", func(t *testing.T) {
		f.push("auth", map[string]string{"kind": "auth", "reason": "SessionExpired", "message": "Your session has ended. Please sign in again."})
		waitJS(t, ctx, "notice", `document.querySelector('[data-testid=live-error]')?.textContent === 'Your session has ended. Please sign in again.'`)
	})

	t.Run("hostile page runs no injected script", func(t *testing.T) {
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/hostile"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="messages"]`))); err != nil {
			t.Fatal(err)
		}
		waitJS(t, ctx, "script ran", `!document.getElementById('composer-hint').hidden`)
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('script:not([src^="/static/"]), [onerror], a[href^="javascript:" i]').length`))
		if err != nil || n != 0 {
			t.Fatalf("%d injected elements (%v)", n, err)
		}
	})

	if v := watch.Entries("Content Security Policy", "exception", "Refused"); len(v) > 0 {
		t.Fatalf("CSP violations or script errors: %q", v)
	}
}

func TestDMScriptInboxLiveRows(t *testing.T) {
	f := &fakeDM{t: t, events: make(chan string, 16)}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	ctx := testenv.Browser(t, testenv.BrowserOptions{})
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	watch, err := testenv.WatchLog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="convo-row"]`))); err != nil {
		t.Fatal(err)
	}
	row := ConvoRowVM{ID: "convo002", Members: []MemberVM{{Name: "Moved"}}, LastPreview: "new!", LastAt: dmNow, Unread: 1, Status: StatusAccepted}
	f.push("convo", map[string]any{"id": "convo002", "html": renderString(t, ConvoRow(row, dmNow, nil)), "unreadTotal": 6})
	waitJS(t, ctx, "updated row moved to the top",
		`document.querySelector('[data-testid=convo-row]').dataset.id === 'convo002' && document.querySelectorAll('[data-testid=convo-row]').length === 3 && document.title.startsWith('(6) ')`)
	req := ConvoRowVM{ID: "req1", Members: []MemberVM{{Name: "Stranger"}}, Status: StatusRequest}
	f.push("convo", map[string]any{"id": "req1", "html": renderString(t, ConvoRow(req, dmNow, nil)), "unreadTotal": 6})
	fresh := ConvoRowVM{ID: "new9", Members: []MemberVM{{Name: "Fresh"}}, Status: StatusAccepted}
	f.push("convo", map[string]any{"id": "new9", "html": renderString(t, ConvoRow(fresh, dmNow, nil)), "unreadTotal": 6})
	waitJS(t, ctx, "new accepted row on top, request row not in the inbox tab",
		`document.querySelector('[data-testid=convo-row]').dataset.id === 'new9' && !document.querySelector('[data-id=req1]')`)
	if v := watch.Entries("Content Security Policy", "exception", "Refused"); len(v) > 0 {
		t.Fatalf("CSP violations or script errors: %q", v)
	}
}
