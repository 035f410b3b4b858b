package main

import (
	"context"
	"errors"
	"github.com/skydm/skydm/internal/safebuf"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/sandbox"
)

// TestRunStartsAndWipes runs the command on free ports until its context is
// cancelled: it must print the logins, write a state file Load can use, and
// remove the state file when stopped.
func TestRunStartsAndWipes(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr safebuf.Buffer
	done := make(chan error, 1)
	args := []string{"-plc-port", "0", "-pds-port", "0", "-chat-port", "0", "-state", state, "-faults"}
	go func() { done <- run(ctx, args, os.Getenv, &stdout, &stderr) }()

	// Poll for the state file (written once everything is up) or an early exit.
	deadline := time.Now().Add(sandbox.DefaultStartTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(state); err == nil {
			break
		}
		select {
		case err := <-done:
			if errors.Is(err, sandbox.ErrNodeUnavailable) && os.Getenv("CI") != "true" {
				t.Skipf("sandbox unavailable: %v", err)
			}
			t.Fatalf("run returned before the sandbox was up: %v\nstderr: %s", err, stderr.String())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no state file after %v\nstdout: %s\nstderr: %s", sandbox.DefaultStartTimeout, stdout.String(), stderr.String())
		}
	}

	n, err := sandbox.Load(state)
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer pcancel()
	if err := n.Ping(pctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	out := stdout.String()
	for _, want := range []string{n.PDSURL, n.ChatServiceRef, "alice.test", "alice-pass", n.Accounts["carol"].DID, "/_devchat/faults"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return 30s after cancel")
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left behind: %v", err)
	}
	if err := n.Ping(pctx); err == nil {
		t.Error("sandbox still answers after run returned")
	}
}

// TestRunRejectsBadFlags covers the flag errors run returns without starting
// anything.
func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"unknown flag is an error", []string{"-nope"}},
		{"positional argument is an error", []string{"extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut safebuf.Buffer
			if err := run(context.Background(), tt.args, os.Getenv, &out, &errOut); err == nil {
				t.Fatal("run accepted bad arguments")
			}
		})
	}
}
