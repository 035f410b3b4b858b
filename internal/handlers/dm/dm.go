package dm

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chataccess"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/live"
	"github.com/skydm/skydm/internal/richtext"
	"github.com/skydm/skydm/internal/websession"
	"github.com/skydm/skydm/views"
)

// Chat is what the DM pages need of one account's chat client. The
// *chatproxy.Client that NewChatClients wraps implements the chat.bsky.*
// methods; every error is an *apperr.Error (see the chatproxy Reasons).
// Each feature's file declares the part it needs: conversations here,
// group views (groupview.go), group management (groups.go), join links
// (joinlinks.go), reports and blocks (safety.go).
type Chat interface {
	directChat
	groupViewChat
	groupChat
	joinChat
	safetyChat
}

// directChat is what every conversation, one-to-one or group, needs.
type directChat interface {
	ListConvos(ctx context.Context, p chatproxy.ListConvosParams) (*chatproxy.ConvoPage, error)
	GetConvo(ctx context.Context, convoID string) (*chat.ConvoDefs_ConvoView, error)
	GetMessages(ctx context.Context, convoID, cursor string, limit int64) (*chatproxy.MessagePage, error)
	SendMessage(ctx context.Context, convoID string, msg chatproxy.MessageInput) (*chat.ConvoDefs_MessageView, error)
	UpdateRead(ctx context.Context, convoID, messageID string) (*chat.ConvoDefs_ConvoView, error)
	UpdateAllRead(ctx context.Context, status string) (int64, error)
	AcceptConvo(ctx context.Context, convoID string) (string, error)
	MuteConvo(ctx context.Context, convoID string) (*chat.ConvoDefs_ConvoView, error)
	UnmuteConvo(ctx context.Context, convoID string) (*chat.ConvoDefs_ConvoView, error)
	LeaveConvo(ctx context.Context, convoID string) (string, error)
	DeleteMessageForSelf(ctx context.Context, convoID, messageID string) (*chat.ConvoDefs_DeletedMessageView, error)
	AddReaction(ctx context.Context, convoID, messageID, value string) (*chat.ConvoDefs_MessageView, error)
	RemoveReaction(ctx context.Context, convoID, messageID, value string) (*chat.ConvoDefs_MessageView, error)
	GetConvoAvailability(ctx context.Context, members []string) (*chat.ConvoGetConvoAvailability_Output, error)
	GetConvoForMembers(ctx context.Context, members []string) (*chat.ConvoDefs_ConvoView, error)
	// ForRecipient returns a Chat whose refusals name the other person
	// (name is a display name or handle).
	ForRecipient(name string) Chat
	// Declaration reads the account's chat.bsky.actor.declaration/self
	// record; no record gives a zero Declaration and no error.
	Declaration(ctx context.Context) (Declaration, error)
	// SaveDeclaration writes d.Value as the record, swapping d.CID (""
	// → the record must not exist yet); a concurrent change gives Conflict.
	SaveDeclaration(ctx context.Context, d Declaration) error
}

// Declaration is the account's chat.bsky.actor.declaration/self record as
// stored: Value holds every field, so fields skydm does not edit are kept;
// CID is "" when there is no record yet.
type Declaration struct {
	Value map[string]any
	CID   string
}

// AllowIncoming returns the record's allowIncoming value, or "" when unset.
func (d Declaration) AllowIncoming() string {
	v, _ := d.Value["allowIncoming"].(string)
	return v
}

// ChatClients makes a Chat acting as a signed-in account. Errors are
// *apperr.Error (Unauthorized SessionExpired when the session is gone).
type ChatClients interface {
	Chat(ctx context.Context, acct websession.Account) (Chat, error)
}

// Config is what the DM pages need. When handlers.Config.DMs is nil
// their routes are not served and / shows the start page.
type Config struct {
	Chats ChatClients // required
	// Directory resolves handles to DIDs (new conversation, @mentions when
	// sending). Required.
	Directory identity.Directory
	// Hub, when set, serves live updates at /events.
	Hub *live.Hub
	// Links says where mentions and tags point; zero → bsky.app.
	Links richtext.Links
	// PostBase is the web app quoted posts link to; "" → https://bsky.app.
	PostBase string
	// UpstreamTimeout bounds the chat calls of one page, within the
	// request's deadline (handlers.Config.PageDeadline); 0 → 10 s.
	UpstreamTimeout time.Duration
	// CountsTTL is how long a user's unread counts are reused; 0 → 10 s.
	CountsTTL time.Duration
	// Now is the clock; nil → time.Now.
	Now func() time.Time
	// ModerationName names the moderation service reports go to, in
	// the report pages; "" → DefaultModerationName.
	ModerationName string
	// PublicURL is the app's origin as browsers see it (handlers.Config
	// sets it): join links to share are PublicURL + "/join/{code}".
	PublicURL string
	// TokenKey signs the send forms' one-time tokens (at least 32 bytes);
	// every instance on one database needs the same key, so that a form
	// rendered by one is accepted, and spent, on another. nil → a random
	// key per process (one instance).
	TokenKey []byte
	// Tokens records which send-form tokens were spent; instances on one
	// database share it (sendtokens.Store). nil → in process memory (one
	// instance).
	Tokens TokenUses
}

// Defaults of Config (the composition root offers them as flags).
const (
	DefaultUpstreamTimeout = 10 * time.Second // Config.UpstreamTimeout
	DefaultCountsTTL       = 10 * time.Second // Config.CountsTTL
	defaultPostBase        = "https://bsky.app"
	// messagesPageSize is how many messages a conversation page shows.
	messagesPageSize = 50
	// convosPageSize is how many conversations an inbox page shows.
	convosPageSize = 50
	// countsPageSize bounds the unread-counts call (one listConvos page).
	countsPageSize = 100
	// backgroundTimeout bounds a shared fetch that runs on after its
	// first caller stopped waiting (revCache).
	backgroundTimeout = 10 * time.Second
	// maxDMFormBytes caps the DM forms: a message is at most 10,000
	// bytes of UTF-8, which URL encoding can triple. The cap is twice
	// that, so a message over the limit is still read and gets the field
	// error with its draft; only a larger body is refused (413).
	maxDMFormBytes = 64 << 10
)

// Pages are the DM handlers: the inbox, conversations, sending, the
// actions, chat settings and live updates.
type Pages struct {
	kit     *kit.Kit
	dm      *dmState
	current func(r *http.Request) (websession.Account, bool)
}

// New returns the DM pages rendering with k; current is the browser's
// active account as the live updates read it (the cookie alone, without
// the page middleware). It returns an error when Chats or Directory is
// missing.
func New(k *kit.Kit, cfg Config, current func(r *http.Request) (websession.Account, bool)) (*Pages, error) {
	if cfg.Chats == nil || cfg.Directory == nil {
		return nil, errors.New("handlers: DMs needs Chats and Directory")
	}
	return &Pages{kit: k, dm: newDMState(cfg), current: current}, nil
}

// Live reports whether live updates (/events) are served: Config.Hub is
// set.
func (s *Pages) Live() bool { return s.dm.cfg.Hub != nil }

// dmState is the DM pages' in-memory state: form tokens, cached counts and
// inbox rows and names seen on pages.
type dmState struct {
	cfg    Config
	now    func() time.Time
	links  richtext.Links
	tokens *formTokens
	uses   TokenUses                       // the spent tokens
	counts *revCache[syntax.DID, dmCounts] // unread totals per account
	rows   *revCache[string, rowResult]    // inbox rows for live updates, by did + " " + convo
	names  *nameCache
}

func newDMState(cfg Config) *dmState {
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if cfg.CountsTTL <= 0 {
		cfg.CountsTTL = DefaultCountsTTL
	}
	if cfg.PostBase == "" {
		cfg.PostBase = defaultPostBase
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	links := cfg.Links
	if links == (richtext.Links{}) {
		links = richtext.Links{ProfileBase: "https://bsky.app/profile", TagBase: "https://bsky.app/hashtag"}
	}
	uses := cfg.Tokens
	if uses == nil {
		uses = newMemoryTokenUses(cfg.Now)
	}
	key := cfg.TokenKey
	if key == nil {
		key = make([]byte, 32)
		rand.Read(key) // never fails (crypto/rand since Go 1.24)
	}
	return &dmState{
		cfg:    cfg,
		now:    cfg.Now,
		links:  links,
		tokens: newFormTokens(key, cfg.Now),
		uses:   uses,
		counts: newRevCache[syntax.DID, dmCounts](cfg.CountsTTL, cfg.Now, 10000),
		rows:   newRevCache[string, rowResult](time.Minute, cfg.Now, 10000),
		names:  newNameCache(),
	}
}

// dmClient returns the signed-in account and its chat client, or writes the
// response (sign-in redirect, DM-access page, error page) and returns false.
func (s *Pages) dmClient(w http.ResponseWriter, r *http.Request) (websession.Account, Chat, bool) {
	cur := kit.Current(r.Context())
	if cur == nil {
		if r.Method == http.MethodGet {
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
		} else {
			s.kit.Error(w, r, apperr.New(apperr.Unauthorized, "Please sign in first."))
		}
		return websession.Account{}, nil, false
	}
	if !cur.HasChatScope { // what the session was granted, as the cookie recorded it: no lookup needed to say no
		s.kit.Error(w, r, chataccess.ErrNoChatScope)
		return websession.Account{}, nil, false
	}
	c, err := s.dm.cfg.Chats.Chat(r.Context(), *cur)
	if err != nil {
		s.kit.Error(w, r, err)
		return websession.Account{}, nil, false
	}
	return *cur, c, true
}

// upstreamCtx is the context of the chat calls of a request that answers
// right after them: the request's deadline less kit.AnswerReserve, and at most
// UpstreamTimeout.
func (s *Pages) upstreamCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return s.stepCtx(r, kit.AnswerReserve)
}

// stepCtx is the context of one step of r's chat calls that leaves reserve
// of the request's deadline for the steps after it, and takes at most
// UpstreamTimeout.
func (s *Pages) stepCtx(r *http.Request, reserve time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := kit.BeforeDeadline(r.Context(), r.Context(), reserve)
	ctx, cancel2 := context.WithTimeout(ctx, s.dm.cfg.UpstreamTimeout)
	return ctx, func() { cancel2(); cancel() }
}

// dmPage returns the layout data of a DM page with the unread total.
func (s *Pages) dmPage(r *http.Request, title string, unread int) views.Page {
	p := s.kit.Page(r, title, "home")
	if unread > 0 {
		p.Title = "(" + strconv.Itoa(unread) + ") " + title
		p.Unread = unread
	}
	return p
}

func (s *Pages) dmAssets() views.DMAssets {
	var a views.DMAssets
	if s.kit.Assets.Has("dm.css") {
		a.CSS = s.kit.Assets.URL("dm.css")
	}
	if s.kit.Assets.Has("dm.js") {
		a.JS = s.kit.Assets.URL("dm.js")
	}
	if s.kit.Assets.Has("group.css") && s.kit.Assets.Has("group.js") {
		a.GroupCSS, a.GroupJS = s.kit.Assets.URL("group.css"), s.kit.Assets.URL("group.js")
	}
	if s.kit.Assets.Has("manage.css") && s.kit.Assets.Has("manage.js") {
		a.ManageCSS, a.ManageJS = s.kit.Assets.URL("manage.css"), s.kit.Assets.URL("manage.js")
	}
	return a
}

// dmNotice returns the notice a ?notice= code stands for: the query picks
// one of these, it never supplies text.
func dmNotice(code string) string {
	switch code {
	case "accepted":
		return "Conversation accepted. It is now in your inbox."
	case "muted":
		return "Conversation muted. You will not be notified of new messages."
	case "unmuted":
		return "Conversation unmuted."
	case "read":
		return "Marked as read."
	case "allread":
		return "All conversations marked as read."
	case "left":
		return "You left the conversation."
	case "deleted":
		return "Message deleted for you."
	case "saved":
		return "Saved."
	case "blocked":
		return "Blocked. You can't message each other until you unblock them."
	case "unblocked":
		return "Unblocked."
	}
	return ""
}

// redirect answers a POST with 303 See Other to target.
func redirect(w http.ResponseWriter, r *http.Request, target string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// parseDMForm reads a url-encoded DM form of at most maxDMFormBytes.
func parseDMForm(w http.ResponseWriter, r *http.Request) error {
	return kit.ReadForm(w, r, maxDMFormBytes, "The form could not be read (it may be too long). Please shorten your message and try again.")
}

// convoClient is dmClient for a conversation's route: also the {id} of
// the path, or the "no such conversation" page and false.
func (s *Pages) convoClient(w http.ResponseWriter, r *http.Request) (websession.Account, Chat, string, bool) {
	acct, c, ok := s.dmClient(w, r)
	if !ok {
		return acct, nil, "", false
	}
	id, ok := convoIDFromPath(r)
	if !ok {
		s.kit.Error(w, r, errNoConvo)
		return acct, nil, "", false
	}
	return acct, c, id, true
}

// convoIDFromPath returns the {id} path value when it can be a convo id.
func convoIDFromPath(r *http.Request) (string, bool) {
	id := r.PathValue("id")
	return id, validID(id)
}

// validID reports whether id can be a convo or message id: 1-128 characters
// of [A-Za-z0-9._:~-].
func validID(id string) bool {
	if id == "" || len(id) > 128 {
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

var errNoConvo = &apperr.Error{Code: apperr.NotFound, Reason: chatproxy.ReasonConvoNotFound,
	Message: "This conversation does not exist any more, or you have left it."}

// invalidate forgets what is cached about did's unread counts (after an
// action that changes them).
func (d *dmState) invalidate(did syntax.DID) { d.counts.forget(did) }

// cachedUnread is the viewer's unread total from the cache only (no
// upstream call; 0 when not cached).
func (s *Pages) cachedUnread(r *http.Request) int {
	if cur := kit.Current(r.Context()); cur != nil {
		if n, ok := s.dm.counts.peek(cur.DID); ok {
			return n.UnreadTotal
		}
	}
	return 0
}
