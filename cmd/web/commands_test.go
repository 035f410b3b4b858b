package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/safebuf"
	"github.com/skydm/skydm/internal/testenv"
)

// runCmd runs the program once (a subcommand) and returns its output.
func runCmd(t *testing.T, args []string, env map[string]string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut safebuf.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = run(ctx, args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestBackupCommandCopiesTheRunningAppsDatabase(t *testing.T) {
	env := baseEnv(t, writeState(t))
	startRun(t, nil, env) // skydm runs on its database meanwhile
	dest := filepath.Join(t.TempDir(), "skydm-backup.db")

	out, _, err := runCmd(t, []string{"backup", dest}, env)
	if err != nil {
		t.Fatalf("web backup: %v", err)
	}
	if !strings.Contains(out, dest) || !strings.Contains(out, env["SKYDM_DB"]) {
		t.Errorf("output does not say what was copied where: %q", out)
	}
	b, err := db.Open(context.Background(), dest)
	if err != nil {
		t.Fatalf("the backup does not open as skydm's database: %v", err)
	}
	var check string
	var migrations int
	b.QueryRow(`PRAGMA integrity_check`).Scan(&check)
	b.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&migrations)
	b.Close()
	ms, _ := db.Migrations(db.SQLite)
	if check != "ok" || migrations != len(ms) {
		t.Errorf("backup: integrity_check %q, %d of %d migrations", check, migrations, len(ms))
	}
	before, _ := os.ReadFile(dest)

	tests := []struct {
		name string
		args []string
		env  map[string]string
		says []string
	}{
		{"an existing backup is not overwritten", []string{"backup", dest}, env, []string{dest, "already exists", "never overwrites"}},
		{"a directory that does not exist is named", []string{"backup", filepath.Join(t.TempDir(), "gone", "b.db")}, env, []string{"gone", "does not exist"}},
		{"a database path that is wrong is named with its flag", []string{"backup", "-db", filepath.Join(t.TempDir(), "typo.db"), filepath.Join(t.TempDir(), "b.db")}, env, []string{"typo.db", "no database", "-db"}},
		{"no file given is a usage message", []string{"backup"}, env, []string{"usage: web backup", "FILE"}},
		{"two files are a usage message", []string{"backup", "a.db", "b.db"}, env, []string{"usage: web backup"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCmd(t, tt.args, tt.env)
			if err == nil {
				t.Fatal("web backup succeeded")
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
	if after, _ := os.ReadFile(dest); string(after) != string(before) {
		t.Error("the existing backup was changed")
	}
}

func TestRunStartsWhenTheChatServiceCannotBeCheckedAndSaysWhy(t *testing.T) {
	// writeState's chat service is did:web:localhost%3A3: nothing answers.
	env := baseEnv(t, writeState(t))
	_, stderr := startRun(t, nil, env)
	log := stderr.String()
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, "did:web:localhost%3A3#bsky_chat") || !strings.Contains(log, "could not check") {
		t.Errorf("no warning naming the unchecked chat service:\n%s", log)
	}
}

// startRefused runs the program and expects it to refuse to start.
func startRefused(t *testing.T, env map[string]string) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := &safebuf.Buffer{}, &safebuf.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, stdout, stderr) }()
	deadline := time.After(time.Minute)
	for {
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("run returned nil")
			}
			return err
		case <-deadline:
			t.Fatalf("run neither started nor refused within a minute\nstderr:\n%s", stderr.String())
		case <-time.After(20 * time.Millisecond):
			if listenRE.MatchString(stdout.String()) {
				cancel()
				<-done
				t.Fatalf("skydm started with a chat service ref its DID document lacks\nstderr:\n%s", stderr.String())
			}
		}
	}
}

func TestE2EChatServiceRefMissingFromItsDIDDocumentIsRefusedAtStart(t *testing.T) {
	n := testenv.Network(t)
	for ref, says := range map[string][]string{
		n.ChatDID + "#no_such_service": {"-chat-service", n.ChatDID + "#no_such_service", "has no service", "#bsky_chat"},
		// devchat's document has it, but as its moderation service.
		n.ChatDID + "#atproto_labeler": {"-chat-service", "#atproto_labeler", "AtprotoLabeler", "not a chat service", "#bsky_chat"},
	} {
		env := sandboxEnv(t, n)
		env["SKYDM_CHAT_SERVICE"] = ref
		err := startRefused(t, env)
		for _, s := range says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("refusal %q does not say %q", err, s)
			}
		}
		t.Logf("refused: %v", err)
	}
}

func TestE2ECheckCommandSaysWhatItCheckedAndFailsOnAProblem(t *testing.T) {
	n := testenv.Network(t)
	good := sandboxEnv(t, n)
	startRun(t, nil, good) // a database to check

	out, _, err := runCmd(t, []string{"check"}, good)
	t.Logf("web check (good):\n%s", out)
	if err != nil {
		t.Errorf("web check with a good configuration: %v", err)
	}
	for _, s := range []string{"ok", "configuration", "database", good["SKYDM_DB"], "chat service", n.ChatServiceRef, n.ChatURL} {
		if !strings.Contains(out, s) {
			t.Errorf("check output does not say %q", s)
		}
	}
	if strings.Contains(out, "problem") {
		t.Errorf("a problem in a good configuration")
	}

	bad := sandboxEnv(t, n)
	bad["SKYDM_CHAT_SERVICE"] = n.ChatDID + "#atproto_labeler"
	out, _, err = runCmd(t, []string{"check"}, bad)
	t.Logf("web check (wrong ref):\n%s", out)
	if err == nil {
		t.Error("web check with a wrong chat service ref succeeded")
	}
	if !lineWith(out, "problem", "chat service", "#atproto_labeler", "#bsky_chat") || !lineWith(out, "ok", "configuration") {
		t.Errorf("check output does not name the problem")
	}

	broken := sandboxEnv(t, n)
	delete(broken, "SKYDM_ENCRYPTION_KEY")
	broken["SKYDM_DB"] = filepath.Join(t.TempDir(), "no", "dir", "skydm.db")
	out, _, err = runCmd(t, []string{"check"}, broken)
	t.Logf("web check (broken):\n%s", out)
	if err == nil {
		t.Error("web check with a broken configuration succeeded")
	}
	if !lineWith(out, "problem", "SKYDM_ENCRYPTION_KEY") {
		t.Errorf("check output does not name the missing key")
	}
}

// lineWith reports whether one line of out contains every string.
func lineWith(out string, all ...string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		ok := true
		for _, s := range all {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			return true
		}
	}
	return false
}

// A chat service ref that could not be checked at start (its host did not
// answer) and that the PDS then cannot resolve: every DM page fails, and
// the log says once, at ERROR, that it is skydm's configuration.
func TestE2EPDSThatCannotResolveTheChatServiceIsLoggedOnceAsConfiguration(t *testing.T) {
	n := testenv.Network(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	did := "did:web:localhost%3A" + port
	var up atomic.Bool // false: the service's host fails; true: it serves a document without #bsky_chat
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"@context":["https://www.w3.org/ns/did/v1"],"id":"` + did + `","service":[{"id":"#atproto_labeler","type":"AtprotoLabeler","serviceEndpoint":"http://localhost:` + port + `"}]}`))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	env := sandboxEnv(t, n)
	ref := did + "#bsky_chat"
	env["SKYDM_CHAT_SERVICE"] = ref
	base, stderr := startRun(t, nil, env)
	if !strings.Contains(stderr.String(), "could not check") {
		t.Fatalf("no start-up warning:\n%s", stderr.String())
	}
	up.Store(true)

	bob := testenv.NewAccount(t, n)
	b := newBrowserClient(t, base)
	signInHTTP(t, b, bob)
	for range 3 {
		res, doc := b.get(base + "/")
		msg := dmText(doc.Find(`[data-testid="error-message"]`))
		if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(msg, "mistake in its settings") {
			t.Fatalf("inbox: %d %q", res.StatusCode, msg)
		}
	}
	var alarms []string
	for line := range strings.SplitSeq(stderr.String(), "\n") {
		if strings.Contains(line, "level=ERROR") && strings.Contains(line, "chat service") {
			alarms = append(alarms, line)
		}
	}
	if len(alarms) != 1 || !strings.Contains(alarms[0], ref) || !strings.Contains(alarms[0], "-chat-service") {
		t.Errorf("want one ERROR line naming %s and -chat-service, got %d:\n%s", ref, len(alarms), strings.Join(alarms, "\n"))
	}
	t.Logf("the alarm: %s", alarms)
}
