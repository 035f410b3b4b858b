// Command sandbox runs skydm's local atproto network in the foreground: an
// in-memory PLC directory and a dev-mode PDS on 127.0.0.1, devchat, and the
// demo accounts alice.test, bob.test, carol.test and dave.test. It prints the URLs and
// logins, writes a state file for tests (SKYDM_SANDBOX_STATE=<file>), and on
// SIGINT/SIGTERM stops everything and wipes its data.
//
//	go run ./cmd/sandbox [-plc-port 2582] [-pds-port 2583] [-chat-port 2590] [-state .sandbox/state.json] [-faults]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/skydm/skydm/internal/sandbox"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
}

// run starts the sandbox, prints how to use it to stdout and blocks until ctx
// is done, then stops it. It returns flag errors, start failures (port taken,
// Node missing, PDS not ready) and teardown failures.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	plcPort := fs.Int("plc-port", 2582, "PLC directory port on 127.0.0.1 (0: any free port)")
	pdsPort := fs.Int("pds-port", 2583, "PDS port on 127.0.0.1 (0: any free port)")
	chatPort := fs.Int("chat-port", 2590, "devchat port on 127.0.0.1 (0: any free port)")
	statePath := fs.String("state", "", "state file for tests (default <repo>/.sandbox/state.json)")
	faults := fs.Bool("faults", false, "enable devchat fault injection (/_devchat/faults)")
	tokenTTL := fs.Duration("access-token-ttl", 0, "OAuth access token lifetime (0: the PDS default, 60m; e.g. 30s to exercise refresh)")
	verbose := fs.Bool("v", false, "copy the PDS's output and debug logs to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	repo := getenv("SKYDM_REPO")
	if repo == "" {
		var err error
		if repo, err = sandbox.FindRepo(); err != nil {
			return err
		}
	}
	if *statePath == "" {
		*statePath = filepath.Join(repo, ".sandbox", "state.json")
	}

	level := slog.LevelInfo
	var nodeLog io.Writer
	if *verbose {
		level = slog.LevelDebug
		nodeLog = stderr
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	fmt.Fprintln(stdout, "Starting the skydm sandbox (PLC + PDS + devchat on 127.0.0.1)…")
	t0 := time.Now()
	n, err := sandbox.Start(ctx, sandbox.Options{
		RepoDir:        repo,
		PLCPort:        *plcPort,
		PDSPort:        *pdsPort,
		ChatPort:       *chatPort,
		Faults:         *faults,
		StateFile:      *statePath,
		Log:            nodeLog,
		Logger:         logger,
		SeedDemo:       true,
		AccessTokenTTL: *tokenTTL,
	})
	if err != nil {
		if errors.Is(err, sandbox.ErrPortInUse) {
			return fmt.Errorf("%w\n(another `make sandbox` running? pick other ports with -plc-port/-pds-port/-chat-port, 0 for any)", err)
		}
		return err
	}
	printSummary(stdout, n, *statePath, time.Since(t0))

	<-ctx.Done()
	fmt.Fprintln(stdout, "\nStopping the sandbox and wiping its data…")
	if err := n.Close(); err != nil {
		return fmt.Errorf("stopping: %w", err)
	}
	fmt.Fprintln(stdout, "Stopped.")
	return nil
}

func printSummary(w io.Writer, n *sandbox.Network, statePath string, took time.Duration) {
	fmt.Fprintf(w, "\nSandbox ready in %s.\n\n", took.Round(10*time.Millisecond))
	fmt.Fprintf(w, "  PLC directory  %s\n", n.PLCURL)
	fmt.Fprintf(w, "  PDS            %s   (OAuth issuer; use localhost, not 127.0.0.1)\n", n.PDSURL)
	fmt.Fprintf(w, "  chat service   %s   %s\n", n.ChatURL, n.ChatServiceRef)
	if n.Faults {
		fmt.Fprintf(w, "  faults         POST/DELETE %s/_devchat/faults, GET %s/_devchat/calls\n", n.ChatURL, n.ChatURL)
	}
	if n.AccessTokenTTL > 0 {
		fmt.Fprintf(w, "  access tokens  expire after %s\n", n.AccessTokenTTL)
	}
	fmt.Fprintf(w, "  state file     %s   (tests: SKYDM_SANDBOX_STATE=%s)\n\n", statePath, statePath)
	fmt.Fprintln(w, "  Logins (fixed sandbox passwords):")
	names := make([]string, 0, len(n.Accounts))
	for name := range n.Accounts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		a := n.Accounts[name]
		fmt.Fprintf(w, "    %-12s %-14s %s\n", a.Handle, a.Password, a.DID)
	}
	fmt.Fprintln(w, "\n  alice and bob follow each other; carol accepts chats only from people she follows (nobody).")
	fmt.Fprintln(w, "\nPress Ctrl-C to stop (everything is wiped).")
}
