package main

import (
	"context"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/live"
	"github.com/skydm/skydm/internal/safebuf"
)

// tunableCase is one tunable as an operator sees it: its flag, its
// variable, the default -h shows, and the field of the package's
// configuration it must reach.
type tunableCase struct {
	flag, env, def string
	get            func(config) time.Duration
	envVal, flagV  time.Duration // valid values, different from the default and each other
}

var tunableCases = []tunableCase{
	{"live-convo-interval", "SKYDM_LIVE_CONVO_INTERVAL", live.DefaultConvoInterval.String(), func(c config) time.Duration { return c.Live.ConvoInterval }, 2 * time.Second, 7 * time.Second},
	{"live-inbox-interval", "SKYDM_LIVE_INBOX_INTERVAL", live.DefaultInboxInterval.String(), func(c config) time.Duration { return c.Live.InboxInterval }, 45 * time.Second, time.Minute},
	{"live-background-interval", "SKYDM_LIVE_BACKGROUND_INTERVAL", live.DefaultBackgroundInterval.String(), func(c config) time.Duration { return c.Live.BackgroundInterval }, 2 * time.Minute, 10 * time.Minute},
	{"live-grace", "SKYDM_LIVE_GRACE", live.DefaultGrace.String(), func(c config) time.Duration { return c.Live.Grace }, 3 * time.Second, time.Minute},
	{"live-max-backoff", "SKYDM_LIVE_MAX_BACKOFF", live.DefaultMaxBackoff.String(), func(c config) time.Duration { return c.Live.MaxBackoff }, time.Minute, 10 * time.Minute},
	{"live-call-timeout", "SKYDM_LIVE_CALL_TIMEOUT", live.DefaultCallTimeout.String(), func(c config) time.Duration { return c.Live.CallTimeout }, 5 * time.Second, 20 * time.Second},
	{"outbox-poll-interval", "SKYDM_OUTBOX_POLL_INTERVAL", "1s", func(c config) time.Duration { return c.Outbox.PollInterval }, 2 * time.Second, 5 * time.Second},
	{"outbox-lease", "SKYDM_OUTBOX_LEASE", "2m0s", func(c config) time.Duration { return c.Outbox.LeaseDuration }, 45 * time.Second, 5 * time.Minute},
	{"outbox-call-timeout", "SKYDM_OUTBOX_CALL_TIMEOUT", "15s", func(c config) time.Duration { return c.Outbox.CallTimeout }, 5 * time.Second, 20 * time.Second},
	{"outbox-max-backoff", "SKYDM_OUTBOX_MAX_BACKOFF", "30m0s", func(c config) time.Duration { return c.Outbox.MaxBackoff }, 10 * time.Minute, time.Hour},
	{"outbox-max-retry-after", "SKYDM_OUTBOX_MAX_RETRY_AFTER", apperr.MaxRetryWait.String(), func(c config) time.Duration { return c.Outbox.MaxRetryAfter }, 10 * time.Minute, 20 * time.Minute},
	{"outbox-max-age", "SKYDM_OUTBOX_MAX_AGE", "24h0m0s", func(c config) time.Duration { return c.Outbox.MaxAge }, 6 * time.Hour, 48 * time.Hour},
	{"upstream-window", "SKYDM_UPSTREAM_WINDOW", "5m0s", func(c config) time.Duration { return c.Budget.Window }, time.Minute, 15 * time.Minute},
	{"page-deadline", "SKYDM_PAGE_DEADLINE", "10s", func(c config) time.Duration { return c.Pages.Deadline }, 5 * time.Second, 8 * time.Second},
	{"sign-in-deadline", "SKYDM_SIGN_IN_DEADLINE", "15s", func(c config) time.Duration { return c.Pages.SignInDeadline }, 12 * time.Second, 9 * time.Second},
	{"dm-call-timeout", "SKYDM_DM_CALL_TIMEOUT", "10s", func(c config) time.Duration { return c.Pages.ChatTimeout }, 6 * time.Second, 4 * time.Second},
	{"dm-counts-ttl", "SKYDM_DM_COUNTS_TTL", "10s", func(c config) time.Duration { return c.Pages.CountsTTL }, 30 * time.Second, time.Minute},
}

func TestHelpListsEveryTunableWithItsVariableAndDefault(t *testing.T) {
	if len(tunableCases) != len(tunables()) {
		t.Fatalf("%d tunables, %d covered here: add the new one to tunableCases", len(tunables()), len(tunableCases))
	}
	stderr := &safebuf.Buffer{}
	if err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, io.Discard, stderr); err == nil {
		t.Fatal("-h: no error")
	}
	usage := stderr.String()
	for _, tc := range tunableCases {
		re := regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(tc.flag) + ` duration\n\s+\S.*\[` + tc.env + `\] \(default ` + regexp.QuoteMeta(tc.def) + `\)$`)
		if !re.MatchString(usage) {
			t.Errorf("-h does not list -%s with [%s] and (default %s):\n%s", tc.flag, tc.env, tc.def, usage)
		}
	}
}

func TestEveryTunableReachesItsPackagesConfigFromItsFlagAndItsVariable(t *testing.T) {
	state := writeState(t)
	for _, tc := range tunableCases {
		t.Run(tc.flag, func(t *testing.T) {
			env := baseEnv(t, state)
			getenv := func(k string) string { return env[k] }
			c, err := parseConfig(nil, getenv, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.get(c).String(); got != tc.def {
				t.Errorf("default: %s, want %s", got, tc.def)
			}
			env[tc.env] = tc.envVal.String()
			if c, err = parseConfig(nil, getenv, io.Discard); err != nil {
				t.Fatal(err)
			}
			if got := tc.get(c); got != tc.envVal {
				t.Errorf("%s=%s: %s", tc.env, tc.envVal, got)
			}
			if c, err = parseConfig([]string{"-" + tc.flag, tc.flagV.String()}, getenv, io.Discard); err != nil {
				t.Fatal(err)
			}
			if got := tc.get(c); got != tc.flagV {
				t.Errorf("-%s %s (over the variable): %s", tc.flag, tc.flagV, got)
			}
		})
	}
}

func TestLiveUpdatesPollAtTheConfiguredIntervals(t *testing.T) {
	env := baseEnv(t, writeState(t))
	env["SKYDM_LIVE_INBOX_INTERVAL"] = "45s"
	env["SKYDM_LIVE_GRACE"] = "3s"
	cfg, err := parseConfig([]string{"-live-convo-interval", "2s", "-live-max-backoff", "1m"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := newTestApp(t, cfg).hub.Config()
	if got.ConvoInterval != 2*time.Second || got.InboxInterval != 45*time.Second || got.Grace != 3*time.Second ||
		got.MaxBackoff != time.Minute || got.CallTimeout != live.DefaultCallTimeout {
		t.Errorf("the hub runs with %+v", got)
	}
}

func TestBadTunablesAreNamedInOneError(t *testing.T) {
	env := baseEnv(t, writeState(t))
	env["SKYDM_LIVE_CONVO_INTERVAL"] = "fast"
	env["SKYDM_LIVE_GRACE"] = "0s"
	args := []string{"-page-deadline", "30s", "-live-inbox-interval", "100ms", "-outbox-call-timeout", "2m"}
	_, err := parseConfig(args, func(k string) string { return env[k] }, io.Discard)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`-live-convo-interval (SKYDM_LIVE_CONVO_INTERVAL): "fast" must be a duration of at least 1s`,
		`-live-grace (SKYDM_LIVE_GRACE): "0s" must be a duration above 0`,
		`-page-deadline (SKYDM_PAGE_DEADLINE): "30s" must be a duration of at most 10s`,
		`-live-inbox-interval (SKYDM_LIVE_INBOX_INTERVAL): "100ms" must be a duration of at least 1s`,
		`-outbox-lease (SKYDM_OUTBOX_LEASE): 2m0s must be at least 4m0s, twice -outbox-call-timeout (SKYDM_OUTBOX_CALL_TIMEOUT)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
