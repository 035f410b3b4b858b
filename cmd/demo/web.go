package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/skydm/skydm/internal/procgroup"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

const (
	// webStartTimeout bounds the wait for the web app's /healthz.
	webStartTimeout = 30 * time.Second
	// webStopGrace is how long the web app gets to shut down after SIGTERM
	// (its own graceful shutdown takes at most 10s) before SIGKILL.
	webStopGrace = 15 * time.Second
	// logTailBytes is how much of the web app's log an error shows.
	logTailBytes = 4 << 10
)

// webConfig says how to start the web app.
type webConfig struct {
	bin       string    // the web binary
	addr      string    // 127.0.0.1:PORT, checked free
	stateFile string    // the sandbox state file
	dir       string    // temporary directory for the database and the log
	echo      io.Writer // also copy the web app's output here (nil: only the log file)
	// For several instances (-cluster), set; zero: one instance alone.
	publicURL string   // the origin browsers use (default http://addr)
	db        string   // -db (default <dir>/skydm.db)
	logName   string   // the log's file name in dir (default web.log)
	secrets   *secrets // shared by the instances (default: fresh ones)
}

// secrets are what instances of the web app sharing one database must
// share: the cookie secret and the key of tokens at rest.
type secrets struct{ session, encryption string }

// newSecrets makes fresh throw-away secrets.
func newSecrets() (*secrets, error) {
	session, err := randomBase64(64) // cookie signing + encryption keys
	if err != nil {
		return nil, err
	}
	enc, err := randomBase64(32) // tokens and DPoP keys at rest
	if err != nil {
		return nil, err
	}
	return &secrets{session: session, encryption: enc}, nil
}

// webProc is the running web app.
type webProc struct {
	cmd     *exec.Cmd
	pid     int
	url     string
	logPath string
	logFile *os.File
	exited  chan struct{} // closed when the process has exited and been reaped
	waitErr error         // cmd.Wait's result, set before exited is closed
}

// startWeb starts the web app in sandbox mode as the loopback OAuth client on
// cfg.addr, in its own process group, with fresh secrets in its environment
// and its output in <dir>/web.log, and waits until /healthz answers 200. It
// returns an error with the end of the log when the app exits or does not
// become healthy within webStartTimeout; nothing is left running then.
func startWeb(ctx context.Context, cfg webConfig) (*webProc, error) {
	sec := cfg.secrets
	if sec == nil {
		var err error
		if sec, err = newSecrets(); err != nil {
			return nil, err
		}
	}
	publicURL, db, logName := cfg.publicURL, cfg.db, cfg.logName
	if publicURL == "" {
		publicURL = "http://" + cfg.addr
	}
	if db == "" {
		db = filepath.Join(cfg.dir, "skydm.db")
	}
	if logName == "" {
		logName = "web.log"
	}
	w := &webProc{
		url:     "http://" + cfg.addr,
		logPath: filepath.Join(cfg.dir, logName),
		exited:  make(chan struct{}),
	}
	var err error
	if w.logFile, err = os.OpenFile(w.logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err != nil {
		return nil, fmt.Errorf("web app log: %w", err)
	}
	var out io.Writer = w.logFile
	if cfg.echo != nil {
		out = io.MultiWriter(w.logFile, cfg.echo)
	}

	w.cmd = exec.Command(cfg.bin,
		"-sandbox",
		"-sandbox-state", cfg.stateFile,
		"-public-url", publicURL,
		"-addr", cfg.addr,
		"-db", db,
	)
	// Secrets go in the environment, not on the command line (ps shows
	// that). Inherited SKYDM_* variables are dropped: the web app reads
	// them as defaults (SKYDM_CLIENT_KEY would make it a confidential
	// client, and tests use SKYDM_SANDBOX_STATE for a state file path).
	w.cmd.Env = append(withoutSKYDM(os.Environ()),
		"SKYDM_SESSION_SECRET="+sec.session,
		"SKYDM_ENCRYPTION_KEY="+sec.encryption,
	)
	w.cmd.Dir = cfg.dir
	w.cmd.Stdout, w.cmd.Stderr = out, out
	w.cmd.SysProcAttr = procAttr()
	if err := w.cmd.Start(); err != nil {
		w.logFile.Close()
		return nil, fmt.Errorf("starting the web app %s: %w", cfg.bin, err)
	}
	w.pid = w.cmd.Process.Pid
	go func() {
		w.waitErr = w.cmd.Wait()
		close(w.exited)
	}()

	if err := w.waitHealthy(ctx, webStartTimeout); err != nil {
		serr := w.stop(webStopGrace)
		return nil, errors.Join(fmt.Errorf("%w; the end of its log (%s):\n%s", err, w.logPath, w.logTail()), serr)
	}
	return w, nil
}

// waitHealthy polls /healthz until it answers 200, the process exits, ctx
// is done or timeout passes.
func (w *webProc) waitHealthy(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url+"/healthz", nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-w.exited:
			return fmt.Errorf("the web app exited during start-up (%v)", w.waitErr)
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("the web app did not answer %s/healthz within %s", w.url, timeout)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM to the web app's process group, then SIGKILL if it is
// still running after grace, and waits for it to be reaped. It returns an
// error only when the process could not be stopped.
func (w *webProc) stop(grace time.Duration) error {
	defer w.logFile.Close()
	select {
	case <-w.exited:
		return nil
	default:
	}
	if err := procgroup.Stop(w.pid, w.exited, grace); err != nil {
		return fmt.Errorf("the web app: %w", err)
	}
	return nil
}

// logTail returns the last logTailBytes of the web app's log, or a note
// saying why it cannot.
func (w *webProc) logTail() string {
	f, err := os.Open(w.logPath)
	if err != nil {
		return "(log unreadable: " + err.Error() + ")"
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > logTailBytes {
		_, _ = f.Seek(-logTailBytes, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	if len(b) == 0 {
		return "(empty)"
	}
	return strings.TrimRight(string(b), "\n")
}

// findWebBinary returns the web app binary: flagValue when set (it must
// exist), else "web" next to this program's executable (where `make demo`
// builds it), else one built now with `go build` into dir (for `go run
// ./cmd/demo`; $GO names the go command, default "go"). It fails when the
// binary is missing or the build fails.
func findWebBinary(ctx context.Context, flagValue, repo, dir string, getenv func(string) string, stdout, stderr io.Writer) (string, error) {
	if flagValue != "" {
		if fi, err := os.Stat(flagValue); err != nil || fi.IsDir() {
			return "", fmt.Errorf("-web-bin %s: not a file (build it with `go build -o bin/ ./cmd/web`)", flagValue)
		}
		return flagValue, nil
	}
	if exe, err := os.Executable(); err == nil {
		cand := filepath.Join(filepath.Dir(exe), "web")
		if fi, err := os.Stat(cand); err == nil && !fi.IsDir() {
			return cand, nil
		}
	}
	goCmd := getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	out := filepath.Join(dir, "web")
	fmt.Fprintln(stdout, "No web binary next to this program: building ./cmd/web…")
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", out, "./cmd/web")
	cmd.Dir = repo
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the web app (%s build ./cmd/web in %s): %w", goCmd, repo, err)
	}
	return out, nil
}

// withoutSKYDM returns env without SKYDM_* variables.
func withoutSKYDM(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "SKYDM_") {
			out = append(out, kv)
		}
	}
	return out
}

// randomBase64 returns n random bytes, standard base64.
func randomBase64(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a secret: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}
