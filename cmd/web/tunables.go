package main

import (
	"flag"
	"strconv"
	"strings"
	"time"

	"github.com/skydm/skydm/internal/budget"

	"github.com/skydm/skydm/internal/handlers/dm"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/live"
	"github.com/skydm/skydm/internal/notify"
)

// The HTTP layer's tunables, each its package's one default: the
// deadlines (also the most they may be) and the DM pages' call timeout
// and unread-counts cache.
const (
	defaultPageDeadline   = kit.PageDeadline
	defaultSignInDeadline = kit.SignInDeadline
	defaultDMChatTimeout  = dm.DefaultUpstreamTimeout
	defaultDMCountsTTL    = dm.DefaultCountsTTL
)

// Tunables that validation names beyond their own entry.
var (
	fOutboxLease       = setting("outbox-lease")
	fOutboxCallTimeout = setting("outbox-call-timeout")
)

// tunable is one duration setting: its flag and variable, its one default
// (the package's that uses it), the range it must lie in and the field of
// config it sets.
type tunable struct {
	flagEnv
	def      time.Duration
	min, max time.Duration // min 0: above 0; max 0: no upper bound
	usage    string
	field    func(*config) *time.Duration
}

// tunables lists every tunable, grouped by the package that uses it (`web
// -h` lists flags by name).
func tunables() []tunable {
	return []tunable{
		// internal/live: one getLog poller per signed-in user with a page open.
		{setting("live-convo-interval"), live.DefaultConvoInterval, time.Second, 0,
			"how often live updates poll the chat service while one of the user's pages is a conversation",
			func(c *config) *time.Duration { return &c.Live.ConvoInterval }},
		{setting("live-inbox-interval"), live.DefaultInboxInterval, time.Second, 0,
			"how often live updates poll while the user's pages are only other pages (the inbox)",
			func(c *config) *time.Duration { return &c.Live.InboxInterval }},
		{setting("live-background-interval"), live.DefaultBackgroundInterval, time.Second, 0,
			"how often live updates poll while all of the user's pages are hidden (background tabs)",
			func(c *config) *time.Duration { return &c.Live.BackgroundInterval }},
		{setting("live-grace"), live.DefaultGrace, 0, 0,
			"how long live updates keep polling after the user's last page closed (a reload reconnects within it)",
			func(c *config) *time.Duration { return &c.Live.Grace }},
		{setting("live-max-backoff"), live.DefaultMaxBackoff, time.Second, 0,
			"cap on the live poller's backoff after errors and on its wait when rate-limited",
			func(c *config) *time.Duration { return &c.Live.MaxBackoff }},
		{setting("live-call-timeout"), live.DefaultCallTimeout, 0, 0,
			"timeout of one live-update poll (chat.bsky.convo.getLog)",
			func(c *config) *time.Duration { return &c.Live.CallTimeout }},

		// internal/notify: the outbox worker delivering change-request DMs.
		{setting("outbox-poll-interval"), notify.DefaultPollInterval, 0, 0,
			"how often the outbox looks for DMs due without being woken",
			func(c *config) *time.Duration { return &c.Outbox.PollInterval }},
		{fOutboxLease, notify.DefaultLeaseDuration, 0, 0,
			"how long one delivery attempt owns an outbox row; after a crash the row is retried when this has passed (at least twice -outbox-call-timeout)",
			func(c *config) *time.Duration { return &c.Outbox.LeaseDuration }},
		{fOutboxCallTimeout, notify.DefaultCallTimeout, 0, 0,
			"timeout of one chat call of the outbox",
			func(c *config) *time.Duration { return &c.Outbox.CallTimeout }},
		{setting("outbox-max-backoff"), notify.DefaultMaxBackoff, 0, 0,
			"cap on the outbox's backoff between attempts at one DM",
			func(c *config) *time.Duration { return &c.Outbox.MaxBackoff }},
		{setting("outbox-max-retry-after"), notify.DefaultMaxRetryAfter, 0, notify.DefaultMaxRetryAfter,
			"cap on how long the outbox honours a server's Retry-After or ratelimit-reset",
			func(c *config) *time.Duration { return &c.Outbox.MaxRetryAfter }},
		{setting("outbox-max-age"), notify.DefaultMaxAge, 0, 0,
			"how long the outbox keeps retrying a DM after transient failures before it gives up",
			func(c *config) *time.Duration { return &c.Outbox.MaxAge }},

		// internal/budget: the upstream request budget per host.
		{setting("upstream-window"), budget.DefaultWindow, time.Second, 0,
			"the window -upstream-limit counts in (Bluesky's PDSes: 5m)",
			func(c *config) *time.Duration { return &c.Budget.Window }},

		// internal/handlers: pages.
		{setting("page-deadline"), defaultPageDeadline, 0, defaultPageDeadline,
			"the one deadline of every page and form, from the request to the answer",
			func(c *config) *time.Duration { return &c.Pages.Deadline }},
		{setting("sign-in-deadline"), defaultSignInDeadline, 0, defaultSignInDeadline,
			"the deadline of signing in (POST /oauth/login, GET /oauth/callback)",
			func(c *config) *time.Duration { return &c.Pages.SignInDeadline }},
		{setting("dm-call-timeout"), defaultDMChatTimeout, 0, 0,
			"bound on the chat calls of one DM page, within -page-deadline",
			func(c *config) *time.Duration { return &c.Pages.ChatTimeout }},
		{setting("dm-counts-ttl"), defaultDMCountsTTL, 0, 0,
			"how long a user's unread counts are reused before the chat service is asked again",
			func(c *config) *time.Duration { return &c.Pages.CountsTTL }},
	}
}

// durationText is a tunable's flag.Value: the text as given, parsed and
// checked by setTunables with the other problems, not by flag.Parse.
type durationText string

func (d *durationText) String() string     { return string(*d) }
func (d *durationText) Set(s string) error { *d = durationText(s); return nil }

// setTunables sets c's tunables from texts (by index of tunables()),
// adding a problem for each that is not a duration in its range, and one
// when the outbox lease is shorter than twice its call timeout.
func setTunables(c *config, texts []durationText, p *problems) {
	for i, t := range tunables() {
		s := strings.TrimSpace(string(texts[i]))
		d, err := time.ParseDuration(s)
		switch {
		case (err != nil || d <= 0) && t.min == 0:
			p.add(t.flagEnv, "%q must be a duration above 0, e.g. %s", s, t.def)
		case err != nil || d < t.min:
			p.add(t.flagEnv, "%q must be a duration of at least %s, e.g. %s", s, t.min, t.def)
		case t.max > 0 && d > t.max:
			p.add(t.flagEnv, "%q must be a duration of at most %s", s, t.max)
		default:
			*t.field(c) = d
		}
	}
	if lease, call := c.Outbox.LeaseDuration, c.Outbox.CallTimeout; lease > 0 && call > 0 && lease < 2*call {
		p.add(fOutboxLease, "%s must be at least %s, twice %s; e.g. %s", lease, 2*call, fOutboxCallTimeout, notify.DefaultLeaseDuration)
	}
}

// count is one whole-number setting: its flag and variable, its one
// default, its minimum, and the field of config it sets.
type count struct {
	flagEnv
	def, min int
	usage    string
	field    func(*config) *int
}

// counts lists the whole-number settings.
func counts() []count {
	return []count{
		{setting("upstream-limit"), budget.DefaultLimit, 1,
			"requests this instance sends to one upstream host (a PDS) per -upstream-window, all users together; keep it below the host's limit per client IP (Bluesky's: 3000 per 5m)",
			func(c *config) *int { return &c.Budget.Limit }},
	}
}

// defineCounts defines the flags of counts() on fs, each defaulting to its
// variable, else its default, and returns their texts (checked by
// setCounts).
func defineCounts(fs *flag.FlagSet, getenv func(string) string) []durationText {
	cs := counts()
	texts := make([]durationText, len(cs))
	for i, c := range cs {
		texts[i] = durationText(strconv.Itoa(c.def))
		if v := getenv(c.env); v != "" {
			texts[i] = durationText(v)
		}
		fs.Var(&texts[i], c.flag, c.usage+"; a `number` ["+c.env+"]")
	}
	return texts
}

// setCounts sets c's counts from texts (by index of counts()), adding a
// problem for each that is not a whole number of at least its minimum.
func setCounts(c *config, texts []durationText, p *problems) {
	for i, n := range counts() {
		s := strings.TrimSpace(string(texts[i]))
		v, err := strconv.Atoi(s)
		if err != nil || v < n.min {
			p.add(n.flagEnv, "%q must be a whole number of at least %d, e.g. %d", s, n.min, n.def)
			continue
		}
		*n.field(c) = v
	}
}
