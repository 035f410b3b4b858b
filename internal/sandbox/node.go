package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/skydm/skydm/internal/procgroup"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNodeUnavailable is wrapped by Start's error when the Node runtime cannot
// be installed because npm (needed once, to fetch Node 22 from the npm
// registry) is missing on this machine.
var ErrNodeUnavailable = errors.New("sandbox: Node.js 22 is not installed and npm is not available to install it")

// install runs sandbox/install.sh (idempotent) and returns the Node 22 bin
// directory it prints on its last line.
func install(ctx context.Context, sandboxDir string, log io.Writer) (string, error) {
	var out, errBuf bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(sandboxDir, "install.sh"))
	cmd.Dir = sandboxDir
	cmd.Stdout = &out
	cmd.Stderr = io.MultiWriter(&errBuf, log)
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		tail := lastBytes(errBuf.Bytes(), 2000)
		if _, lerr := exec.LookPath("npm"); lerr != nil {
			return "", fmt.Errorf("%w (install.sh: %v; %s)", ErrNodeUnavailable, err, tail)
		}
		return "", fmt.Errorf("sandbox: install.sh failed: %v\n%s", err, tail)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	bin := strings.TrimSpace(lines[len(lines)-1])
	if _, err := os.Stat(filepath.Join(bin, "node")); err != nil {
		return "", fmt.Errorf("sandbox: install.sh printed %q, which holds no node binary", bin)
	}
	return bin, nil
}

// readyLine is the one JSON line start.mjs prints on stdout.
type readyLine struct {
	Ready            bool   `json:"ready"`
	PLCURL           string `json:"plcUrl"`
	PDSURL           string `json:"pdsUrl"`
	PID              int    `json:"pid"`
	StartupMs        int    `json:"startupMs"`
	RSSMB            int    `json:"rssMB"`
	AccessTokenTTLMs *int64 `json:"accessTokenTtlMs"`
	Error            string `json:"error"`
	Code             string `json:"code"`
	Port             int    `json:"port"`
}

// nodeProc is the running start.mjs, in its own process group.
type nodeProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *ring
	exited chan struct{} // closed after Wait returns
	werr   error         // Wait's result; read only after exited is closed
}

type nodeConfig struct {
	nodeBin, sandboxDir, dataDir string
	plcPort, pdsPort             int
	env                          []string // extra KEY=VALUE
	log                          io.Writer
}

// startNode starts start.mjs and waits for its ready line, the process's exit,
// or ctx, whichever comes first. On failure the process is killed and the
// error carries the tail of its stderr.
func startNode(ctx context.Context, c nodeConfig) (*nodeProc, readyLine, error) {
	cmd := exec.Command(filepath.Join(c.nodeBin, "node"),
		"--require", "./loopback-only.cjs",
		"--require", "./hosts-override.cjs",
		"start.mjs")
	cmd.Dir = c.sandboxDir
	cmd.Env = append(nodeEnv(os.Environ(), c.nodeBin),
		"PLC_PORT="+strconv.Itoa(c.plcPort),
		"PDS_PORT="+strconv.Itoa(c.pdsPort),
		"SANDBOX_DATA_DIR="+c.dataDir,
		"SANDBOX_STOP_ON_STDIN_EOF=1",
	)
	cmd.Env = append(cmd.Env, c.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second

	p := &nodeProc{cmd: cmd, stderr: newRing(16 << 10), exited: make(chan struct{})}
	lines := make(chan []byte, 4)
	cmd.Stdout = &lineWriter{out: c.log, lines: lines}
	cmd.Stderr = io.MultiWriter(p.stderr, c.log)
	stdin, err := cmd.StdinPipe() // closing it (or our death) makes start.mjs stop
	if err != nil {
		return nil, readyLine{}, err
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		return nil, readyLine{}, fmt.Errorf("sandbox: starting node: %w", err)
	}
	go func() {
		p.werr = cmd.Wait()
		close(p.exited)
	}()

	for {
		select {
		case line := <-lines:
			var r readyLine
			if json.Unmarshal(line, &r) != nil || (!r.Ready && r.Error == "") {
				continue // not the status line
			}
			if !r.Ready {
				p.stop(5 * time.Second)
				if r.Code == "EADDRINUSE" {
					return nil, r, fmt.Errorf("%w: %s", ErrPortInUse, r.Error)
				}
				return nil, r, fmt.Errorf("sandbox: %s\nnode stderr:\n%s", r.Error, p.stderr.String())
			}
			return p, r, nil
		case <-p.exited:
			return nil, readyLine{}, fmt.Errorf("sandbox: node exited before it was ready (%v)\nnode stderr:\n%s", p.werr, p.stderr.String())
		case <-ctx.Done():
			p.stop(5 * time.Second)
			return nil, readyLine{}, fmt.Errorf("sandbox: PDS not ready: %w\nnode stderr:\n%s", ctx.Err(), p.stderr.String())
		}
	}
}

// stop sends SIGTERM to the process group, waits up to grace for the process
// to exit, then SIGKILLs the group. It returns an error only when the process
// is still there after SIGKILL.
func (p *nodeProc) stop(grace time.Duration) error {
	_ = p.stdin.Close() // with SANDBOX_STOP_ON_STDIN_EOF, EOF alone also stops node
	if err := procgroup.Stop(p.cmd.Process.Pid, p.exited, grace); err != nil {
		return fmt.Errorf("sandbox: node: %w", err)
	}
	return nil
}

// nodeEnv returns env with nodeBin first on PATH and without variables that
// would change how Node loads code.
func nodeEnv(env []string, nodeBin string) []string {
	out := make([]string, 0, len(env)+1)
	path := nodeBin
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "PATH":
			path = nodeBin + string(os.PathListSeparator) + v
		case "NODE_OPTIONS", "NODE_PATH", "HOSTS_OVERRIDE", "NODE_EXTRA_CA_CERTS",
			"PLC_PORT", "PDS_PORT", "SANDBOX_DATA_DIR", "SANDBOX_ACCESS_TOKEN_TTL", "PDS_EXTRA_ENV":
		default:
			out = append(out, kv)
		}
	}
	return append(out, "PATH="+path)
}

// lineWriter forwards everything to out and sends each complete line on lines
// (dropping lines nobody is waiting for).
type lineWriter struct {
	out   io.Writer
	lines chan<- []byte
	buf   []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	_, _ = w.out.Write(b)
	w.buf = append(w.buf, b...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := bytes.Clone(w.buf[:i])
		w.buf = w.buf[i+1:]
		select {
		case w.lines <- line:
		default:
		}
	}
	return len(b), nil
}

// ring keeps the last n bytes written to it.
type ring struct {
	mu  sync.Mutex
	n   int
	buf []byte
}

func newRing(n int) *ring { return &ring{n: n} }

func (r *ring) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, b...)
	if len(r.buf) > r.n {
		r.buf = append(r.buf[:0], r.buf[len(r.buf)-r.n:]...)
	}
	return len(b), nil
}

func (r *ring) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.buf)
}

// syncWriter serialises writes from node's stdout and stderr copiers.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
