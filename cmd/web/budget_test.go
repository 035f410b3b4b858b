package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/budget"
	"github.com/skydm/skydm/internal/safebuf"
)

func TestUpstreamLimitIsAFlagAndAVariable(t *testing.T) {
	env := baseEnv(t, writeState(t))
	getenv := func(k string) string { return env[k] }
	c, err := parseConfig(nil, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Budget.Limit != budget.DefaultLimit {
		t.Errorf("default limit %d; want %d", c.Budget.Limit, budget.DefaultLimit)
	}
	env["SKYDM_UPSTREAM_LIMIT"] = "1200"
	if c, err = parseConfig(nil, getenv, io.Discard); err != nil || c.Budget.Limit != 1200 {
		t.Errorf("SKYDM_UPSTREAM_LIMIT=1200: %d, %v", c.Budget.Limit, err)
	}
	if c, err = parseConfig([]string{"-upstream-limit", "600"}, getenv, io.Discard); err != nil || c.Budget.Limit != 600 {
		t.Errorf("-upstream-limit 600 over the variable: %d, %v", c.Budget.Limit, err)
	}
	for _, bad := range []string{"lots", "0", "-5"} {
		_, err := parseConfig([]string{"-upstream-limit", bad}, getenv, io.Discard)
		if want := `-upstream-limit (SKYDM_UPSTREAM_LIMIT): "` + bad + `" must be a whole number of at least 1`; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("-upstream-limit %s: %v; want %q", bad, err, want)
		}
	}
	stderr := &safebuf.Buffer{}
	run(context.Background(), []string{"-h"}, func(string) string { return "" }, io.Discard, stderr)
	if re := regexp.MustCompile(`(?m)^  -upstream-limit number\n\s+\S.*\[SKYDM_UPSTREAM_LIMIT\] \(default 2700\)$`); !re.MatchString(stderr.String()) {
		t.Errorf("-h does not list -upstream-limit with its variable and default:\n%s", stderr)
	}
}

// TestEveryUpstreamRequestSpendsTheBudget: the app's one upstream client,
// which OAuth (and through it every session's PDS and chat calls), the
// identity directory, the outbox and the reconciler use, takes its tokens
// from the budget configured by the flags, and the pollers are paced by it.
func TestEveryUpstreamRequestSpendsTheBudget(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("RateLimit-Limit", "100")
		w.Header().Set("RateLimit-Policy", "100;w=60")
	}))
	defer srv.Close()
	env := baseEnv(t, writeState(t))
	cfg, err := parseConfig([]string{"-upstream-limit", "1000", "-upstream-window", "10m"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a := newTestApp(t, cfg)
	if got := a.up.budget.Config(); got.Limit != 1000 || got.Window != 10*time.Minute {
		t.Fatalf("budget runs with %d per %s; want 1000 per 10m0s", got.Limit, got.Window)
	}
	resp, err := a.up.httpClient.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	host := budget.HostOf(srv.URL)
	var st *budget.HostState
	for _, s := range a.up.budget.Snapshot() {
		if s.Host == host {
			st = &s
		}
	}
	if st == nil || st.SentForeground != 1 || st.Limit != 90 {
		t.Fatalf("after one request the budget of %s is %+v; want 1 sent and the host's 100;w=60 taken at 90 %%", host, st)
	}
	if a.hub.Config().Pacer == nil {
		t.Error("the live hub has no pacer")
	}
}

// newTestApp builds the app of cfg (not serving), closed when the test ends.
func newTestApp(t *testing.T, cfg config) *app {
	t.Helper()
	ctx := context.Background()
	a, err := newApp(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.auth.Close(ctx)
		a.close()
	})
	return a
}
