package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/skydm/skydm/internal/oauth"
	"github.com/skydm/skydm/internal/safebuf"
)

func b64(n int, c byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{c}, n)) }

// baseEnv is a valid sandbox (loopback client) configuration.
func baseEnv(t testing.TB, state string) map[string]string {
	return map[string]string{
		"SKYDM_SESSION_SECRET": b64(64, 's'),
		"SKYDM_ENCRYPTION_KEY": b64(32, 'e'),
		"SKYDM_SANDBOX":        "true",
		"SKYDM_SANDBOX_STATE":  state,
		"SKYDM_DB":             filepath.Join(t.TempDir(), "skydm.db"),
		"SKYDM_ADDR":           "127.0.0.1:0",
	}
}

// writeState writes a sandbox state file pointing at nothing (run only
// reads it; nothing is contacted until someone signs in).
func writeState(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "state.json")
	b, _ := json.Marshal(map[string]any{
		"plcUrl": "http://localhost:1", "pdsUrl": "http://localhost:2", "chatUrl": "http://localhost:3",
		"chatDid": "did:web:localhost%3A3", "chatServiceRef": "did:web:localhost%3A3#bsky_chat",
	})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var listenRE = regexp.MustCompile(`skydm listening on (\S+)`)

// startRun runs the program in the background and returns its URL once it
// says it is listening; the program is stopped when the test ends.
func startRun(t testing.TB, args []string, env map[string]string) (string, *safebuf.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &safebuf.Buffer{}, &safebuf.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, func(k string) string { return env[k] }, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("run did not stop within 15s")
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenRE.FindStringSubmatch(stdout.String()); m != nil {
			return m[1], stderr
		}
		select {
		case err := <-done:
			t.Fatalf("run exited early: %v\nstderr:\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no listening line within 15s\nstderr:\n%s", stderr.String())
	return "", nil
}

func TestRunServesHealthzAndStopsOnCancel(t *testing.T) {
	env := baseEnv(t, writeState(t))
	base, stderr := startRun(t, nil, env)
	if !strings.HasPrefix(base, "http://127.0.0.1:") || strings.HasSuffix(base, ":0") {
		t.Fatalf("listening URL %q", base)
	}
	res, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "ok\n" {
		t.Fatalf("healthz: %d %q", res.StatusCode, body)
	}
	res, err = http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Security-Policy"), "img-src 'self' http://localhost:2") {
		t.Errorf("home: %d CSP %q", res.StatusCode, res.Header.Get("Content-Security-Policy"))
	}
	// loopback client: no client documents
	res, err = http.Get(base + "/oauth-client-metadata.json")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("metadata in loopback mode: %d", res.StatusCode)
	}
	if !strings.Contains(stderr.String(), "msg=listening") {
		t.Errorf("no listening log:\n%s", stderr.String())
	}
}

func TestKeygenPrintsUsableSecrets(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"keygen"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("bad line %q", line)
		}
		env[k] = v
	}
	env["SKYDM_PUBLIC_URL"] = "https://skydm.example"
	c, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatalf("keygen output does not configure production: %v", err)
	}
	if c.loopback() || len(c.HashKey) != 32 || len(c.BlockKey) != 32 || len(c.EncryptionKey) != 32 {
		t.Errorf("config from keygen: %+v", c)
	}
	var again bytes.Buffer
	run(context.Background(), []string{"keygen"}, func(string) string { return "" }, &again, io.Discard)
	if again.String() == out.String() {
		t.Errorf("keygen repeated itself")
	}
}

func TestInvalidConfigIsRefusedWithAClearMessage(t *testing.T) {
	state := writeState(t)
	tests := []struct {
		name string
		args []string
		env  func(map[string]string)
		want []string
	}{
		{"missing encryption key", nil, func(e map[string]string) { delete(e, "SKYDM_ENCRYPTION_KEY") },
			[]string{"-encryption-key (SKYDM_ENCRYPTION_KEY): required"}},
		{"short encryption key", []string{"-encryption-key", b64(16, 'x')}, nil,
			[]string{"-encryption-key (SKYDM_ENCRYPTION_KEY): encryption key must be 32 bytes, got 16"}},
		{"missing session secret", nil, func(e map[string]string) { delete(e, "SKYDM_SESSION_SECRET") },
			[]string{"-session-secret (SKYDM_SESSION_SECRET): required"}},
		{"session secret not base64", []string{"-session-secret", "not base64!"}, nil,
			[]string{"-session-secret (SKYDM_SESSION_SECRET): must be 64 random bytes"}},
		{"production without client key", []string{"-sandbox=false", "-public-url", "https://skydm.example"}, func(e map[string]string) { delete(e, "SKYDM_SANDBOX_STATE") },
			[]string{"-client-key (SKYDM_CLIENT_KEY): required in production"}},
		{"production without public URL", []string{"-sandbox=false"}, func(e map[string]string) { delete(e, "SKYDM_SANDBOX_STATE") },
			[]string{"-public-url (SKYDM_PUBLIC_URL): required"}},
		{"bad public URL", nil, func(e map[string]string) { e["SKYDM_PUBLIC_URL"] = "http://127.0.0.1:8080/app" },
			[]string{"-public-url (SKYDM_PUBLIC_URL): \"http://127.0.0.1:8080/app\" must be scheme://host[:port] with no path"}},
		{"loopback client on localhost", []string{"-public-url", "http://localhost:8080"}, nil,
			[]string{"needs http://127.0.0.1:PORT"}},
		{"production over http", []string{"-sandbox=false", "-public-url", "http://skydm.example", "-client-key", p256Key(t)}, func(e map[string]string) { delete(e, "SKYDM_SANDBOX_STATE") },
			[]string{"-public-url (SKYDM_PUBLIC_URL): must be https"}},
		{"client key not P-256", []string{"-client-key", k256Key(t)}, nil,
			[]string{"-client-key (SKYDM_CLIENT_KEY): "}},
		{"sandbox without state file", nil, func(e map[string]string) { delete(e, "SKYDM_SANDBOX_STATE") },
			[]string{"-sandbox-state (SKYDM_SANDBOX_STATE): required with -sandbox"}},
		{"scopes without atproto", []string{"-scopes", "transition:generic"}, nil,
			[]string{"-scopes (SKYDM_SCOPES): must include \"atproto\""}},
		{"bad chat service", []string{"-chat-service", "api.bsky.chat"}, nil,
			[]string{"-chat-service (SKYDM_CHAT_SERVICE): \"api.bsky.chat\" must be did:…#service_id"}},
		{"tls cert without key", []string{"-tls-cert", "c.pem"}, nil,
			[]string{"-tls-cert and -tls-key go together"}},
		{"bad sandbox bool", nil, func(e map[string]string) { e["SKYDM_SANDBOX"] = "yes please" },
			[]string{"-sandbox (SKYDM_SANDBOX): \"yes please\" is not true or false"}},
		{"every problem at once", nil, func(e map[string]string) {
			delete(e, "SKYDM_ENCRYPTION_KEY")
			delete(e, "SKYDM_SESSION_SECRET")
		}, []string{"-encryption-key", "-session-secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := baseEnv(t, state)
			if tt.env != nil {
				tt.env(env)
			}
			stderr := &safebuf.Buffer{}
			err := run(context.Background(), tt.args, func(k string) string { return env[k] }, io.Discard, stderr)
			if err == nil {
				t.Fatalf("run accepted the configuration")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), b64(32, 'e')) || strings.Contains(err.Error(), b64(64, 's')) {
				t.Errorf("error echoes a secret: %v", err)
			}
		})
	}
}

func TestFlagsOverrideEnvironment(t *testing.T) {
	env := baseEnv(t, writeState(t))
	env["SKYDM_ADDR"] = "127.0.0.1:1"
	c, err := parseConfig([]string{"-addr", "127.0.0.1:0", "-chat-service", "did:web:chat.example#bsky_chat"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:0" || c.ChatService != "did:web:chat.example#bsky_chat" {
		t.Errorf("config %+v", c)
	}
	if c.DBPath != env["SKYDM_DB"] || !c.Sandbox || !c.loopback() {
		t.Errorf("environment not used: %+v", c)
	}
}

func TestHelpIsNotAnError(t *testing.T) {
	stderr := &safebuf.Buffer{}
	err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, io.Discard, stderr)
	if !errors.Is(err, flagErrHelp()) {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(stderr.String(), "SKYDM_ENCRYPTION_KEY") {
		t.Errorf("usage does not name the environment variables:\n%s", stderr.String())
	}
}

// TestUsageNeverPrintsSecrets: flag prints each flag's default in its usage
// text (on -h or a mistyped flag), so secrets from the environment must not
// become defaults; they are still read from the environment.
func TestUsageNeverPrintsSecrets(t *testing.T) {
	env := baseEnv(t, writeState(t))
	for _, args := range [][]string{{"-h"}, {"-bogus"}} {
		stderr := &safebuf.Buffer{}
		_, err := parseConfig(args, func(k string) string { return env[k] }, stderr)
		if err == nil {
			t.Fatalf("%v: no error", args)
		}
		for _, k := range []string{"SKYDM_SESSION_SECRET", "SKYDM_ENCRYPTION_KEY"} {
			if strings.Contains(stderr.String(), env[k]) {
				t.Errorf("%v: usage text contains the value of %s", args, k)
			}
		}
	}
	c, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatalf("secrets from the environment no longer read: %v", err)
	}
	if !c.Sandbox {
		t.Errorf("config %+v", c)
	}
}

func flagErrHelp() error { return flag.ErrHelp }

func p256Key(t *testing.T) string {
	k, err := oauth.GenerateClientKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func k256Key(t *testing.T) string {
	k, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	return k.Multibase()
}
