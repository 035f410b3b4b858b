package live

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
)

// User is the signed-in account a page belongs to: its DID and the id of
// the session the page was loaded with. The poller of a DID calls the
// LogSource with the session of the newest connected page whose session has
// not failed.
type User struct {
	DID       syntax.DID
	SessionID string
}

// LogSource makes one chat.bsky.convo.getLog call for user. cursor is ""
// for the first call (the hub then only takes the returned cursor). Errors
// should be *apperr.Error: Code Unauthorized, or Forbidden with Reason
// "ScopeMissing", stop polling for that session; RateLimited with RetryAt
// delays the next call until RetryAt; anything else is retried with
// backoff. Implementations must be safe for concurrent use (one call per
// user at a time, many users at once) and should reuse the process-wide
// session so token refreshes happen once.
type LogSource interface {
	GetLog(ctx context.Context, user User, cursor string) (*chat.ConvoGetLog_Output, error)
}

// LogSourceFunc adapts a function to LogSource.
type LogSourceFunc func(ctx context.Context, user User, cursor string) (*chat.ConvoGetLog_Output, error)

// GetLog calls f and returns what it returns.
func (f LogSourceFunc) GetLog(ctx context.Context, user User, cursor string) (*chat.ConvoGetLog_Output, error) {
	return f(ctx, user, cursor)
}

// Config configures a Hub. Zero durations and sizes take the Default* of
// the same name.
type Config struct {
	Source LogSource    // required
	Logger *slog.Logger // nil → discard
	Pacer  Pacer        // stretches poll intervals (the upstream budget); nil → none
	Now    func() time.Time

	ConvoInterval time.Duration // poll interval while a conversation page is open
	InboxInterval time.Duration // poll interval while only other pages are open
	// BackgroundInterval is the poll interval while pages are open but none
	// is visible (hidden or minimised tabs).
	BackgroundInterval time.Duration
	MaxBackoff         time.Duration // cap on error backoff and on RateLimited waits
	Buffer             int           // events kept per user for resume

	Grace        time.Duration // how long a poller outlives its last page (reloads)
	Heartbeat    time.Duration // SSE comment interval
	CallTimeout  time.Duration // timeout of one getLog call
	WriteTimeout time.Duration // deadline of one SSE write

	// Cluster, when set, makes one instance poll each user for all
	// instances on one database (see Cluster); nil polls here.
	Cluster Cluster
}

// Pacer turns the poll interval a user's pages ask for (base) into the one
// the poller uses, e.g. stretched while the upstream budget is short. It is
// called with the hub's lock held: it must be fast and must not call the
// hub.
type Pacer interface {
	Pace(user User, base time.Duration) time.Duration
}

// Defaults for Config's zero values: the one default of each setting.
const (
	DefaultConvoInterval = 4 * time.Second
	DefaultInboxInterval = 30 * time.Second
	// DefaultBackgroundInterval is the official app's background rate.
	DefaultBackgroundInterval = 5 * time.Minute
	DefaultMaxBackoff         = 5 * time.Minute
	DefaultBuffer             = 256
	DefaultGrace              = 10 * time.Second
	DefaultHeartbeat          = 20 * time.Second
	DefaultCallTimeout        = 30 * time.Second
	DefaultWriteTimeout       = 15 * time.Second
)

// backoffBase is the jitter ceiling after the first consecutive failure; it
// doubles with every further failure up to MaxBackoff.
const backoffBase = 2 * time.Second

// ErrClosed is returned by Run when the hub was already run, and makes the
// SSE handler answer 503 once the hub has shut down.
var ErrClosed = errors.New("live: hub closed")

// timerFunc starts a one-shot timer; stop reports whether it stopped it
// before it fired. Tests replace it with a fake clock's.
type timerFunc func(d time.Duration) (c <-chan time.Time, stop func() bool)

func realTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// Hub owns the pollers and the subscriptions. Create it with New, start it
// with Run and mount Handler; it has no package-level state.
type Hub struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	newTimer timerFunc
	jitter   func(ceil time.Duration) time.Duration // uniform in [0, ceil]

	ctx    context.Context // cancelled when Run's context is done
	cancel context.CancelFunc
	wg     sync.WaitGroup // pollers

	resync *Event

	mu      sync.Mutex
	running bool
	closed  bool
	users   map[syntax.DID]*userState
	seq     uint64 // subscription counter
	started uint64 // pollers started since New
}

// New returns a Hub for cfg with defaults filled in. It panics when
// cfg.Source is nil, a programming error.
func New(cfg Config) *Hub {
	if cfg.Source == nil {
		panic("live.New: Config.Source is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.ConvoInterval, DefaultConvoInterval)
	def(&cfg.InboxInterval, DefaultInboxInterval)
	def(&cfg.BackgroundInterval, DefaultBackgroundInterval)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	def(&cfg.Grace, DefaultGrace)
	def(&cfg.Heartbeat, DefaultHeartbeat)
	def(&cfg.CallTimeout, DefaultCallTimeout)
	def(&cfg.WriteTimeout, DefaultWriteTimeout)
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{
		cfg:      cfg,
		log:      cfg.Logger,
		now:      cfg.Now,
		newTimer: realTimer,
		jitter:   func(ceil time.Duration) time.Duration { return rand.N(ceil + 1) },
		ctx:      ctx,
		cancel:   cancel,
		resync: &Event{Kind: KindResync, Reason: "ReplayGap",
			Notice: "Some updates were missed. Reload the page to catch up."},
		users: make(map[syntax.DID]*userState),
	}
}

// Config returns the configuration the hub runs with, defaults filled in:
// the poll intervals and timeouts actually used.
func (h *Hub) Config() Config { return h.cfg }

// Run keeps the hub alive until ctx is done, then stops every poller, ends
// every SSE stream and returns nil once all pollers have returned. Pollers
// start on demand when pages connect, also before Run is called. Run
// returns ErrClosed if the hub is already running or was run before.
func (h *Hub) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.running || h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	h.running = true
	h.mu.Unlock()
	cluster := make(chan struct{})
	go func() {
		defer close(cluster)
		if c := h.cfg.Cluster; c != nil {
			if err := c.Run(h.ctx, members{h}); err != nil {
				h.log.Warn("live: cluster stopped", "err", err)
			}
		}
	}()

	select {
	case <-ctx.Done():
	case <-h.ctx.Done():
	}
	h.mu.Lock()
	h.closed = true
	h.cancel()
	h.mu.Unlock()
	h.wg.Wait()
	<-cluster
	return nil
}

// Stats is a snapshot of the hub's load.
type Stats struct {
	Users          int    // users with state (pages connected or within the grace period)
	Pollers        int    // poller goroutines running now: at most one per user
	Subscribers    int    // connected SSE streams
	PollersStarted uint64 // poller goroutines started since New
	// Intervals holds the current poll interval of each running poller.
	Intervals []time.Duration
}

// Stats returns a snapshot of the hub's load. It never fails.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Stats{Users: len(h.users), PollersStarted: h.started}
	for _, u := range h.users {
		if u.polling {
			s.Pollers++
			s.Intervals = append(s.Intervals, h.interval(u))
		}
		s.Subscribers += len(u.subs)
	}
	return s
}

// userState is everything the hub keeps for one DID. All fields are
// guarded by Hub.mu, except wake, which is only sent to without blocking.
type userState struct {
	did      syntax.DID
	subs     map[*sub]struct{}
	convos   int               // visible subs on a conversation page
	visible  int               // visible subs
	away     bool              // a hidden sub joined or stayed after the last visible sub left
	pollNow  bool              // a visible sub joined an away user: poll without waiting
	sessions map[string]uint64 // live session id → seq of its newest sub
	dead     map[string]*Event // failed session id → its auth event
	polling  bool              // a poller goroutine is running for this user
	lead     bool              // this instance holds the user's Cluster lease
	wake     chan struct{}     // cap 1: subs changed
	empty    time.Time         // when the last sub left

	ready  bool   // the first getLog call succeeded: cursor and floor are set
	cursor string // the getLog cursor of the next call
	floor  string // the ring holds every event with rev > floor
	ring   []*Event
	start  int // index of the oldest event once the ring is full
}

// sub is one SSE connection. Fields are guarded by Hub.mu except notify.
type sub struct {
	u       *userState
	session string
	convo   bool
	hidden  bool // the page's document is hidden
	seq     uint64
	notify  chan struct{} // cap 1: new events or a control event
	wake    func()        // set by handOff: interrupts the stream's wait on its connection

	after    string // events with rev > after are still to be sent
	atFloor  bool   // subscribed before the first poll: start at the floor
	resuming bool   // after came from Last-Event-ID and is not checked yet
	tell     bool   // no Last-Event-ID: send the page its position once known
	auth     *Event // terminal control event
}

func (h *Hub) subscribe(user User, convo, hidden bool, lastID string) (*sub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	u := h.users[user.DID]
	if u == nil {
		u = &userState{
			did:      user.DID,
			subs:     make(map[*sub]struct{}),
			sessions: make(map[string]uint64),
			dead:     make(map[string]*Event),
			wake:     make(chan struct{}, 1),
		}
		h.users[user.DID] = u
	}
	h.seq++
	s := &sub{u: u, session: user.SessionID, convo: convo, hidden: hidden, seq: h.seq, notify: make(chan struct{}, 1)}
	switch {
	case lastID != "":
		s.after, s.resuming = lastID, true
	case u.ready:
		s.after, s.tell = u.head(), true
	default:
		s.atFloor, s.tell = true, true
	}
	u.subs[s] = struct{}{}
	u.count(s, 1)
	if ev := u.dead[user.SessionID]; ev != nil {
		s.auth = ev
		s.notify <- struct{}{}
	} else {
		u.sessions[user.SessionID] = s.seq
	}
	if !u.polling && len(u.sessions) > 0 {
		u.polling = true
		h.started++
		h.wg.Add(1)
		go h.poll(u)
	}
	u.poke()
	return s, nil
}

func (h *Hub) unsubscribe(s *sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := s.u
	if _, ok := u.subs[s]; !ok {
		return
	}
	delete(u.subs, s)
	u.count(s, -1)
	if _, ok := u.sessions[s.session]; ok {
		// Keep the session while another of its pages is connected.
		newest, found := uint64(0), false
		for o := range u.subs {
			if o.session == s.session && o.seq >= newest {
				newest, found = o.seq, true
			}
		}
		if found {
			u.sessions[s.session] = newest
		} else {
			delete(u.sessions, s.session)
		}
	}
	if len(u.subs) == 0 {
		u.empty = h.now()
		if !u.polling && h.users[u.did] == u {
			delete(h.users, u.did)
		}
	}
	u.poke()
}

// count adds s (by 1) or removes it (by -1) from u's page counts and
// keeps u.away and u.pollNow: a page shown again after all were hidden
// may have missed events, so the poller calls at once; a visible page
// reloading (none hidden meanwhile) is not a return and waits as before.
func (u *userState) count(s *sub, by int) {
	if !s.hidden {
		if by > 0 && u.visible == 0 && u.away {
			u.pollNow = true
		}
		u.visible += by
		if s.convo {
			u.convos += by
		}
	}
	switch {
	case u.visible > 0:
		u.away = false
	case len(u.subs) > 0:
		u.away = true
	}
}

// poke wakes the poller without blocking.
func (u *userState) poke() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// head is the rev of the newest event the user's pages can have seen.
func (u *userState) head() string {
	if n := len(u.ring); n > 0 {
		return u.at(n - 1).Rev
	}
	return u.floor
}

func (u *userState) at(i int) *Event { return u.ring[(u.start+i)%len(u.ring)] }

// push appends ev, dropping the oldest event (and raising the floor to it)
// once the ring holds max events.
func (u *userState) push(ev *Event, max int) {
	if len(u.ring) < max {
		u.ring = append(u.ring, ev)
		return
	}
	u.floor = u.ring[u.start].Rev
	u.ring[u.start] = ev
	u.start = (u.start + 1) % max
}

// liveSession returns the session of the newest sub whose session has not
// failed.
func (u *userState) liveSession() (string, bool) {
	best, bestSeq, ok := "", uint64(0), false
	for id, seq := range u.sessions {
		if !ok || seq > bestSeq {
			best, bestSeq, ok = id, seq, true
		}
	}
	return best, ok
}

// startID returns, once, the position of a stream that started without a
// Last-Event-ID as soon as it has one (after the user's first poll), for
// the "position" event: the page can resume from it as from any event id
// even when no event has come yet. ok is false before, after, and when the
// position is empty.
func (h *Hub) startID(s *sub) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !s.tell || s.atFloor || !s.u.ready || s.auth != nil {
		return "", false
	}
	s.tell = false
	return s.after, s.after != "" && !unsafeID(s.after)
}

// next appends to buf the events s has still to send, in rev order, and
// moves s past them. final is true when the last event appended is a
// terminal control event ("auth"): the stream should end after it.
func (h *Hub) next(s *sub, buf []*Event) (events []*Event, final bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.auth != nil {
		return append(buf, s.auth), true
	}
	u := s.u
	if !u.ready {
		return buf, false
	}
	if s.atFloor {
		s.after, s.atFloor = u.floor, false
	}
	head := u.head()
	// A position below the floor lost events to the ring; one above the
	// head (a Last-Event-ID this poller never sent) cannot be trusted.
	if s.after < u.floor || (s.resuming && s.after > head) {
		s.after, s.resuming = head, false
		return append(buf, h.resync), false
	}
	s.resuming = false
	n := len(u.ring)
	lo, hi := 0, n
	for lo < hi { // first event with rev > after
		m := int(uint(lo+hi) >> 1)
		if u.at(m).Rev > s.after {
			hi = m
		} else {
			lo = m + 1
		}
	}
	for i := lo; i < n; i++ {
		buf = append(buf, u.at(i))
	}
	if lo < n {
		s.after = u.at(n - 1).Rev
	}
	return buf, false
}
