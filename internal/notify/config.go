package notify

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
)

// The defaults of [Config], one place each; the composition root offers
// them as flags.
const (
	DefaultConcurrency       = 8                   // Config.Concurrency
	DefaultSenderConcurrency = 1                   // Config.SenderConcurrency
	DefaultPollInterval      = time.Second         // Config.PollInterval
	DefaultLeaseDuration     = 2 * time.Minute     // Config.LeaseDuration
	DefaultCallTimeout       = 15 * time.Second    // Config.CallTimeout
	DefaultBaseBackoff       = 2 * time.Second     // Config.BaseBackoff
	DefaultMaxBackoff        = 30 * time.Minute    // Config.MaxBackoff
	DefaultMaxRetryAfter     = apperr.MaxRetryWait // Config.MaxRetryAfter, also its upper bound
	DefaultRateLimitWait     = 30 * time.Second    // Config.RateLimitWait
	DefaultMaxAge            = 24 * time.Hour      // Config.MaxAge
	DefaultBreakerThreshold  = 5                   // Config.BreakerThreshold
	DefaultBreakerCooldown   = 2 * time.Minute     // Config.BreakerCooldown
	DefaultShutdownGrace     = 10 * time.Second    // Config.ShutdownGrace
	DefaultParkedRecheck     = 15 * time.Minute    // Config.ParkedRecheck
	DefaultMarkerPages       = 50                  // Config.MarkerPages
	DefaultMarkerClockSkew   = 10 * time.Minute    // Config.MarkerClockSkew
)

// Sender gives the worker a chat client acting as one account.
type Sender interface {
	// Chat returns a client whose calls act as senderDID. It returns an
	// *apperr.Error with Reason "SessionExpired" (or Code Unauthorized)
	// when the account has no usable session, "ScopeMissing" when its
	// session may not use chat, and any other error for transient trouble.
	Chat(ctx context.Context, senderDID syntax.DID) (Chat, error)
}

// Chat is the part of chat.bsky.convo the worker uses, in the shapes of
// *chatproxy.Client (which satisfies it). Errors should be *apperr.Error
// with chatproxy's Reasons (NotFollowedBySender, MessagesDisabled, Blocked,
// RecipientNotFound, RateLimited with RetryAt, SessionExpired,
// ScopeMissing, Unavailable, ...); raw atclient.APIError, net and context
// errors are understood too.
type Chat interface {
	// GetConvoAvailability: members are the other members' DIDs.
	GetConvoAvailability(ctx context.Context, members []string) (*chat.ConvoGetConvoAvailability_Output, error)
	// GetConvoForMembers gets or creates the direct convo with members.
	GetConvoForMembers(ctx context.Context, members []string) (*chat.ConvoDefs_ConvoView, error)
	SendMessage(ctx context.Context, convoID string, msg chatproxy.MessageInput) (*chat.ConvoDefs_MessageView, error)
	// GetMessages returns a page of the convo's messages, newest first.
	GetMessages(ctx context.Context, convoID, cursor string, limit int64) (*chatproxy.MessagePage, error)
}

var _ Chat = (*chatproxy.Client)(nil)

// Config configures a Worker. Zero values take the defaults noted (the
// Default* constants).
type Config struct {
	DB        *sql.DB            // required; the database with the outbox table
	Sender    Sender             // required
	Directory identity.Directory // optional: handles for human reasons; nil → generic labels
	Logger    *slog.Logger       // nil → discard
	Now       func() time.Time   // nil → time.Now
	// Jitter picks a delay in [0, max] for full-jitter backoff; nil →
	// uniformly random.
	Jitter func(max time.Duration) time.Duration
	// OnDelivered, when set, is called once per DM sent with the time
	// from its row's queued_at to its sent_at (metrics).
	OnDelivered func(latency time.Duration)

	Concurrency       int           // deliveries in flight at once; default 8
	SenderConcurrency int           // deliveries in flight per sender; default 1
	PollInterval      time.Duration // how often due rows are looked for without a Wake; default 1s
	LeaseDuration     time.Duration // a leased row is the worker's for this long; default 2m
	CallTimeout       time.Duration // per chat call; default 15s
	BaseBackoff       time.Duration // first retry delay bound; default 2s
	MaxBackoff        time.Duration // bound of the backoff; default 30m
	MaxRetryAfter     time.Duration // cap on a server's Retry-After / ratelimit-reset; default (and at most) apperr.MaxRetryWait
	// RateLimitWait is the wait after a 429 that says nothing of when to
	// retry. Through a PDS that is the usual case: the reference PDS
	// (@atproto/pds pipethrough + xrpc-server error middleware) drops the
	// chat service's Retry-After and ratelimit-* headers from proxied
	// errors. Default 30s.
	RateLimitWait    time.Duration
	MaxAge           time.Duration // give up after transient failures for this long; default 24h
	BreakerThreshold int           // consecutive transient failures that open a sender's breaker; default 5
	BreakerCooldown  time.Duration // how long an open breaker holds the sender's rows; default 2m
	ShutdownGrace    time.Duration // time in-flight deliveries get after Run's ctx ends; default 10s
	// ParkedRecheck: every so often one parked row per sender is tried
	// again, in case the sender signed in without Resume being called.
	// Default 15m; negative disables.
	ParkedRecheck time.Duration
	// MarkerPages bounds the marker search before a retry: pages of 100
	// messages of getMessages. The search stops earlier, at messages sent
	// before the delivery's first send began (less MarkerClockSkew); this
	// is only the hard cap for a convo busier than that. Default 50.
	MarkerPages int
	// MarkerClockSkew is how far the chat service's clock may be behind
	// skydm's when the marker search decides a message is older than the
	// delivery's first send; default 10m.
	MarkerClockSkew time.Duration
}

// Worker delivers outbox rows. Create it with New; Run owns its goroutines.
// Resume and Retry may be called from any goroutine, whether or not Run is
// running.
type Worker struct {
	cfg      Config
	store    *store
	policy   policy
	breakers breakers
	log      *slog.Logger
	now      func() time.Time
	wake     chan struct{}
	run      atomic.Bool

	// Test seams. afterSend, when set, is called right after sendMessage
	// returns; true simulates the process dying before the row is marked
	// (nothing more is written by this worker, not even at shutdown).
	// cycles counts lease queries, so tests can wait for the worker to
	// have looked for due rows without sleeping.
	afterSend func(id int64) bool
	crashed   atomic.Bool
	cycles    atomic.Int64
}

// New returns a Worker. It returns an error when DB or Sender is missing or
// the durations contradict one another (LeaseDuration must exceed
// 2×CallTimeout).
func New(cfg Config) (*Worker, error) {
	if cfg.DB == nil || cfg.Sender == nil {
		return nil, errors.New("notify: Config.DB and Config.Sender are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	defInt(&cfg.Concurrency, DefaultConcurrency)
	defInt(&cfg.SenderConcurrency, DefaultSenderConcurrency)
	defInt(&cfg.BreakerThreshold, DefaultBreakerThreshold)
	defInt(&cfg.MarkerPages, DefaultMarkerPages)
	def(&cfg.PollInterval, DefaultPollInterval)
	def(&cfg.LeaseDuration, DefaultLeaseDuration)
	def(&cfg.CallTimeout, DefaultCallTimeout)
	def(&cfg.BaseBackoff, DefaultBaseBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	def(&cfg.MaxRetryAfter, DefaultMaxRetryAfter)
	cfg.MaxRetryAfter = min(cfg.MaxRetryAfter, DefaultMaxRetryAfter)
	def(&cfg.RateLimitWait, DefaultRateLimitWait)
	def(&cfg.MaxAge, DefaultMaxAge)
	def(&cfg.BreakerCooldown, DefaultBreakerCooldown)
	def(&cfg.ShutdownGrace, DefaultShutdownGrace)
	def(&cfg.MarkerClockSkew, DefaultMarkerClockSkew)
	if cfg.ParkedRecheck == 0 {
		cfg.ParkedRecheck = DefaultParkedRecheck
	}
	if cfg.LeaseDuration < 2*cfg.CallTimeout {
		return nil, fmt.Errorf("notify: LeaseDuration %v must be at least twice CallTimeout %v", cfg.LeaseDuration, cfg.CallTimeout)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OnDelivered == nil {
		cfg.OnDelivered = func(time.Duration) {}
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return time.Duration(mrand.Int64N(int64(max) + 1))
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("notify: lease owner id: %w", err)
	}
	return &Worker{
		cfg:    cfg,
		store:  newStore(cfg.DB, hex.EncodeToString(b[:])),
		policy: newPolicy(cfg),
		log:    log.With("component", "notify"),
		now:    cfg.Now,
		wake:   make(chan struct{}, 1),
	}, nil
}
