// Command demo runs skydm with a seeded local network, for `make demo`: the
// sandbox (PLC, PDS, devchat on 127.0.0.1 with alice.test, bob.test and
// carol.test), the demo conversations (internal/demo), and the web app
// (bin/web, started as a child process with fresh throw-away secrets and a
// database in a temporary directory). It prints the URL and the logins, stays
// in the foreground, and on Ctrl-C (SIGINT) or SIGTERM stops the web app,
// stops the sandbox and wipes both.
//
// With -cluster (`make demo-cluster`) it runs two web app instances on one
// throw-away Postgres (internal/pgserver) behind a round-robin reverse proxy
// on -addr, and prints the instances' own URLs too.
//
//	demo [-cluster] [-addr 127.0.0.1:8080] [-web-bin bin/web] [-plc-port 2582] [-pds-port 2583] [-chat-port 2590] [-state .sandbox/state.json] [-v]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/skydm/skydm/internal/demo"
	"github.com/skydm/skydm/internal/sandbox"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// stopHint ends the summary.
const stopHint = "\nPress Ctrl-C to stop (the sandbox and the demo database are wiped)."

// seedTimeout bounds seeding the demo conversations.
const seedTimeout = 2 * time.Minute

// run starts the sandbox, seeds it, starts the web app and blocks until ctx
// is done, then stops everything and removes its data. It returns flag
// errors, a clear error when a port is taken (the web address is checked
// before anything starts), start, seed and web app failures (with the tail of
// the web app's log), and teardown failures. Interrupted during start-up, it
// cleans up and returns nil.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "web app address on 127.0.0.1 (port 0: any free port); the URL is http://ADDR")
	webBin := fs.String("web-bin", "", "the web app binary (default: web next to this program; built into a temporary directory if missing)")
	plcPort := fs.Int("plc-port", 2582, "PLC directory port on 127.0.0.1 (0: any free port)")
	pdsPort := fs.Int("pds-port", 2583, "PDS port on 127.0.0.1 (0: any free port)")
	chatPort := fs.Int("chat-port", 2590, "devchat port on 127.0.0.1 (0: any free port)")
	statePath := fs.String("state", "", "sandbox state file (default <repo>/.sandbox/state.json)")
	cluster := fs.Bool("cluster", false, "run two web app instances on one throw-away Postgres behind a round-robin proxy on -addr (make demo-cluster)")
	verbose := fs.Bool("v", false, "copy the PDS's and the web app's output and debug logs to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	webAddr, err := reserveWebAddr(*addr)
	if err != nil {
		return err
	}
	repo := getenv("SKYDM_REPO")
	if repo == "" {
		if repo, err = sandbox.FindRepo(); err != nil {
			return err
		}
	}
	if *statePath == "" {
		*statePath = filepath.Join(repo, ".sandbox", "state.json")
	}
	level := slog.LevelWarn        // devchat logs every call at Info: only with -v
	var nodeLog, webEcho io.Writer // nil: not copied to stderr
	if *verbose {
		level, nodeLog, webEcho = slog.LevelDebug, stderr, stderr
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ready := false
	defer func() {
		if ready && err == nil {
			fmt.Fprintln(stdout, "Stopped.")
		}
	}()
	tmp, err := os.MkdirTemp("", "skydm-demo-")
	if err != nil {
		return err
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil {
			err = errors.Join(err, fmt.Errorf("removing %s: %w", tmp, rerr))
		}
	}()

	bin, err := findWebBinary(ctx, *webBin, repo, tmp, getenv, stdout, stderr)
	if err != nil {
		return interrupted(ctx, stdout, err)
	}

	fmt.Fprintln(stdout, "Starting the sandbox (PLC + PDS + devchat on 127.0.0.1)…")
	t0 := time.Now()
	n, err := sandbox.Start(ctx, sandbox.Options{
		RepoDir:   repo,
		PLCPort:   *plcPort,
		PDSPort:   *pdsPort,
		ChatPort:  *chatPort,
		StateFile: *statePath,
		Log:       nodeLog,
		Logger:    logger,
		SeedDemo:  true,
	})
	if err != nil {
		if errors.Is(err, sandbox.ErrPortInUse) {
			err = fmt.Errorf("%w\n(is `make sandbox` or another `make demo` running? stop it, or pick other ports with -plc-port/-pds-port/-chat-port, 0 for any)", err)
		}
		return interrupted(ctx, stdout, err)
	}
	defer func() {
		fmt.Fprintln(stdout, "Stopping the sandbox and wiping its data…")
		if cerr := n.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("stopping the sandbox: %w", cerr))
		}
	}()

	fmt.Fprintln(stdout, "Seeding the demo conversations…")
	seedCtx, cancel := context.WithTimeout(ctx, seedTimeout)
	err = demo.Seed(seedCtx, n, logger)
	cancel()
	if err != nil {
		return interrupted(ctx, stdout, err)
	}

	cfg := webConfig{
		bin:       bin,
		addr:      webAddr,
		stateFile: *statePath,
		dir:       tmp,
		echo:      webEcho,
	}
	if *cluster {
		return runCluster(ctx, cfg, n, *statePath, t0, stdout, &ready)
	}
	fmt.Fprintln(stdout, "Starting the web app…")
	web, err := startWeb(ctx, cfg)
	if err != nil {
		return interrupted(ctx, stdout, err)
	}
	defer func() {
		fmt.Fprintln(stdout, "Stopping the web app…")
		if serr := web.stop(webStopGrace); serr != nil {
			err = errors.Join(err, serr)
		}
	}()

	printSummary(stdout, n, web.url, []*webProc{web}, *statePath, time.Since(t0))
	fmt.Fprintln(stdout, stopHint)
	ready = true

	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout)
		return nil // the deferred stops print their progress
	case <-web.exited:
		return fmt.Errorf("the web app stopped by itself (%v); the end of its log:\n%s", web.waitErr, web.logTail())
	}
}

// runCluster is the end of run for -cluster: Postgres, the instances and
// the proxy (startCluster), the summary, then the wait.
func runCluster(ctx context.Context, cfg webConfig, n *sandbox.Network, statePath string, t0 time.Time, stdout io.Writer, ready *bool) (err error) {
	fmt.Fprintf(stdout, "Starting Postgres, %d web app instances on it and a proxy in front…\n", clusterSize)
	c, err := startCluster(ctx, cfg)
	if err != nil {
		return interrupted(ctx, stdout, err)
	}
	defer func() {
		fmt.Fprintln(stdout, "Stopping the proxy, the web apps and Postgres (wiping its data)…")
		err = errors.Join(err, c.stop())
	}()
	printSummary(stdout, n, c.url, c.webs, statePath, time.Since(t0))
	printClusterSummary(stdout, c)
	fmt.Fprintln(stdout, stopHint)
	*ready = true
	select {
	case <-ctx.Done():
		fmt.Fprintln(stdout)
		return nil
	case <-c.exited:
		return fmt.Errorf("a web app instance stopped by itself; the end of the logs:\n%s", c.logTails())
	}
}

// interrupted returns nil when err came from ctx being cancelled (Ctrl-C
// during start-up, after saying so), and err otherwise.
func interrupted(ctx context.Context, stdout io.Writer, err error) error {
	if ctx.Err() != nil {
		fmt.Fprintln(stdout, "Interrupted.")
		return nil
	}
	return err
}

// reserveWebAddr checks addr is host:port on 127.0.0.1 (the sandbox's
// loopback OAuth client needs it) and that the port is free; port 0 picks a
// free one. It returns the address to give the web app.
func reserveWebAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("-addr %q: want 127.0.0.1:PORT", addr)
	}
	if host != "127.0.0.1" {
		return "", fmt.Errorf("-addr %q: the demo's web app must listen on 127.0.0.1 (the sandbox PDS accepts only http://127.0.0.1:PORT redirect URIs for the loopback client)", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", fmt.Errorf("-addr %q: bad port", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("the web app's address %s is taken (is skydm or another `make demo` running?); stop it or choose another with -addr: %w", addr, err)
	}
	got := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", err
	}
	return got, nil
}

func printSummary(w io.Writer, n *sandbox.Network, url string, webs []*webProc, statePath string, took time.Duration) {
	fmt.Fprintf(w, "\nskydm demo ready in %s: %s\n\n", took.Round(100*time.Millisecond), url)
	fmt.Fprintf(w, "  Open %s and sign in with one of these (sign-in and consent happen on\n", url)
	fmt.Fprintf(w, "  the sandbox PDS's own page at %s; its passwords are fixed):\n\n", n.PDSURL)
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		if a, ok := n.Accounts[name]; ok {
			fmt.Fprintf(w, "    %-12s password %s\n", a.Handle, a.Password)
		}
	}
	fmt.Fprintln(w, "\n  alice and bob have a conversation (a link, a mention, a ❤️ reaction);")
	fmt.Fprintln(w, "  bob has a message request from carol; carol accepts messages only from")
	fmt.Fprintln(w, "  people she follows (nobody), so alice cannot message her.")
	fmt.Fprintln(w, "  alice owns the group \"Weekend plans\" with bob and carol (a reply, a")
	fmt.Fprintln(w, "  rename); its join link needs her approval, and dave has asked to join.")
	fmt.Fprintln(w)
	for _, web := range webs {
		fmt.Fprintf(w, "  web app   pid %d, log %s, %s\n", web.pid, web.logPath, web.url)
	}
	fmt.Fprintf(w, "  sandbox   PDS %s, chat %s, state %s\n", n.PDSURL, n.ChatURL, statePath)
}
