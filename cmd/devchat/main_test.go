package main

import (
	"context"
	"encoding/json"
	"github.com/skydm/skydm/internal/safebuf"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"
)

func noEnv(string) string { return "" }

func TestRunServesDIDDocumentUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr safebuf.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-faults"}, noEnv, &stdout, &stderr) }()

	ready := regexp.MustCompile(`listening on http://127\.0\.0\.1:(\d+) `)
	var port string
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for port == "" {
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\nstderr: %s", err, stderr.String())
		case <-deadline:
			t.Fatalf("not ready; stdout %q stderr %q", stdout.String(), stderr.String())
		case <-tick.C:
			if m := ready.FindStringSubmatch(stdout.String()); m != nil {
				port = m[1]
			}
		}
	}

	res, err := http.Get("http://127.0.0.1:" + port + "/.well-known/did.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var doc struct {
		ID      string `json:"id"`
		Service []struct {
			ID              string `json:"id"`
			Type            string `json:"type"`
			ServiceEndpoint string `json:"serviceEndpoint"`
		} `json:"service"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	// The chat service, and the moderation service that takes reports.
	if doc.ID != "did:web:localhost%3A"+port || len(doc.Service) != 2 ||
		doc.Service[0].ID != "#bsky_chat" || doc.Service[0].Type != "BskyChatService" ||
		doc.Service[0].ServiceEndpoint != "http://localhost:"+port ||
		doc.Service[1].ID != "#atproto_labeler" || doc.Service[1].Type != "AtprotoLabeler" ||
		doc.Service[1].ServiceEndpoint != "http://localhost:"+port {
		t.Fatalf("did.json = %s", body)
	}
	res, err = http.Get("http://127.0.0.1:" + port + "/_devchat/calls")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("-faults: /_devchat/calls = %d", res.StatusCode)
	}
	res, err = http.Get("http://127.0.0.1:" + port + "/xrpc/chat.bsky.convo.listConvos")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("unauthenticated call = %d, want 401", res.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !regexp.MustCompile(`method=chat\.bsky\.convo\.listConvos .*status=401`).MatchString(stderr.String()) {
		t.Errorf("request log missing: %s", stderr.String())
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"all interfaces", []string{"-addr", "0.0.0.0:0"}},
		{"hostname", []string{"-addr", "localhost:0"}},
		{"no port", []string{"-addr", "127.0.0.1"}},
		{"unknown flag", []string{"-verbose"}},
		{"bad public url", []string{"-addr", "127.0.0.1:0", "-public-url", "localhost:1234"}},
		{"extra args", []string{"serve"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out safebuf.Buffer
			if err := run(context.Background(), tc.args, noEnv, &out, &out); err == nil {
				t.Fatal("run succeeded")
			}
		})
	}
}
