package main

import (
	"context"
	"errors"
	"github.com/skydm/skydm/internal/safebuf"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/sandbox"
)

var (
	readyRe = regexp.MustCompile(`skydm demo ready in \S+: (http://127\.0\.0\.1:\d+)`)
	pidRe   = regexp.MustCompile(`web app\s+pid (\d+), log (\S+)`)
)

// TestRun_servesSeededDemoAndStopsEverything runs the whole demo on free
// ports (building the web app, since no bin/web sits next to the test
// binary): the URL answers, the logins are printed, and after cancellation
// the web process is gone and the state file and temporary directory are
// removed.
func TestRun_servesSeededDemoAndStopsEverything(t *testing.T) {
	d := startDemo(t)
	url, out := d.url, d.stdout.String()
	for _, want := range []string{"alice.test", "alice-pass", "bob.test", "bob-pass", "carol.test", "carol-pass", "dave.test", "dave-pass", "Weekend plans", "sandbox PDS's own page", "Ctrl-C"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	m := pidRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output names no web pid and log:\n%s", out)
	}
	pid, _ := strconv.Atoi(m[1])
	tmpDir := filepath.Dir(m[2])

	for _, path := range []string{"/healthz", "/signin"} {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d\n%s", path, resp.StatusCode, body)
		}
	}

	d.stop(t)
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("web process %d still exists after stop (kill 0: %v)", pid, err)
	}
	for _, p := range []string{d.state, tmpDir} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after stop (stat: %v)", p, err)
		}
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Errorf("%s still answers after stop", url)
	}
}

// demoRun is run started by startDemo.
type demoRun struct {
	url, state     string
	stdout, stderr safebuf.Buffer
	cancel         context.CancelFunc
	done           chan error
}

// startDemo runs the demo with extra args on free ports (building the web
// app, since no bin/web sits next to the test binary) and waits for its
// summary.
func startDemo(t *testing.T, extra ...string) *demoRun {
	t.Helper()
	if os.Getenv("SKYDM_SANDBOX_STATE") != "" {
		t.Skip("SKYDM_SANDBOX_STATE set: not starting a second sandbox")
	}
	d := &demoRun{state: filepath.Join(t.TempDir(), "state.json"), done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	t.Cleanup(cancel)
	args := append([]string{"-addr", "127.0.0.1:0", "-plc-port", "0", "-pds-port", "0", "-chat-port", "0", "-state", d.state}, extra...)
	go func() { d.done <- run(ctx, args, os.Getenv, &d.stdout, &d.stderr) }()

	deadline := time.NewTimer(sandbox.DefaultStartTimeout + 2*time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-d.done:
			if errors.Is(err, sandbox.ErrNodeUnavailable) && os.Getenv("CI") != "true" {
				t.Skipf("sandbox unavailable: %v", err)
			}
			t.Fatalf("run returned before ready: %v\nstdout:\n%s\nstderr:\n%s", err, d.stdout.String(), d.stderr.String())
		case <-deadline.C:
			t.Fatalf("not ready in time\nstdout:\n%s\nstderr:\n%s", d.stdout.String(), d.stderr.String())
		case <-tick.C:
			out := d.stdout.String()
			if m := readyRe.FindStringSubmatch(out); m != nil && strings.Contains(out, "Ctrl-C") {
				d.url = m[1]
				return d
			}
		}
	}
}

// stop cancels the demo and waits for run to return nil.
func (d *demoRun) stop(t *testing.T) {
	t.Helper()
	d.cancel()
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("run after cancel: %v\nstderr:\n%s", err, d.stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("run did not return within a minute of cancellation")
	}
}

// TestRun_takenWebPortFailsBeforeStarting checks the web address first, so a
// taken port is reported at once with the flag to change.
func TestRun_takenWebPortFailsBeforeStarting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr safebuf.Buffer
	err = run(context.Background(), []string{"-addr", ln.Addr().String()}, os.Getenv, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "is taken") || !strings.Contains(err.Error(), "-addr") {
		t.Fatalf("run with a taken -addr: got %v, want an error saying it is taken and naming -addr", err)
	}
	if strings.Contains(stdout.String(), "Starting the sandbox") {
		t.Errorf("the sandbox was started despite the taken port:\n%s", stdout.String())
	}
}

func TestRun_rejectsBadAddr(t *testing.T) {
	for _, tc := range []struct{ name, addr, want string }{
		{"not host:port", "8080", "want 127.0.0.1:PORT"},
		{"not loopback IPv4", "0.0.0.0:8080", "must listen on 127.0.0.1"},
		{"bad port", "127.0.0.1:http", "bad port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), []string{"-addr", tc.addr}, os.Getenv, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestWithoutSKYDM_dropsOnlySKYDMVariables(t *testing.T) {
	got := withoutSKYDM([]string{"PATH=/bin", "SKYDM_CLIENT_KEY=x", "SKYDM_SANDBOX=/tmp/s.json", "HOME=/h"})
	if strings.Join(got, " ") != "PATH=/bin HOME=/h" {
		t.Fatalf("got %q", got)
	}
}
