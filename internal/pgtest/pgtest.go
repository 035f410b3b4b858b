// Package pgtest starts a real Postgres (Debian's postgresql package) for
// tests: one server per test binary, a fresh database per test.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skydm/skydm/internal/procgroup"
	"github.com/skydm/skydm/internal/testenv"
)

// missing is the skip line (internal/testenv) when no Postgres is installed.
const missing = "Postgres not installed: apt-get install postgresql (Debian; .ci/run does it)"

// dirPrefix names the temporary directories of servers, so that one left
// by a test binary that died is wiped by the next (sweep).
const dirPrefix = "skydm-pgtest-"

var (
	once   sync.Once
	srv    *server
	srvErr error
	seq    atomic.Int64
)

// URL returns the URL of a new, empty database on this binary's Postgres
// server (started on first use, stopped by testenv.Main), dropped when t
// ends. When Postgres is not installed it fails t under CI=true and skips
// it otherwise (recorded like every missing tool, internal/testenv); when
// the server does not start it fails t.
func URL(t testing.TB) string {
	t.Helper()
	ensure(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), seq.Add(1))
	if err := srv.exec(`CREATE DATABASE ` + name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.exec(`DROP DATABASE ` + name + ` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	return srv.url(name)
}

// exec runs one statement on the server's maintenance database over a
// connection of its own, so that a test in a testing/synctest bubble
// shares nothing with one outside it.
func (s *server) exec(stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.url("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, stmt)
	return err
}

// ensure starts this binary's server once, or skips or fails t (see URL)
// when it cannot. Each calls it outside the test function, so that the
// server is never started inside a testing/synctest bubble (its process
// and the goroutine waiting for it would belong to that bubble).
func ensure(t testing.TB) {
	t.Helper()
	once.Do(func() {
		srv, srvErr = start()
		if srv != nil {
			testenv.AtExit(srv.stop)
		}
	})
	var nf notFound
	if errors.As(srvErr, &nf) {
		testenv.SkipMissing(t, missing, string(nf))
	}
	if srvErr != nil {
		t.Fatalf("pgtest: %v", srvErr)
	}
}

// notFound is the error of start when no Postgres is installed; it says
// where it looked.
type notFound string

func (e notFound) Error() string { return "no Postgres: " + string(e) }

// server is one running postgres.
type server struct {
	dir    string // temporary directory: data/, the socket, the log
	port   int
	pid    int
	exited chan struct{}
}

func (s *server) url(db string) string {
	return fmt.Sprintf("postgres://skydm@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// binDir finds initdb and postgres: on PATH, else the newest
// /usr/lib/postgresql/<version>/bin (Debian keeps them off PATH).
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "postgres")); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", notFound("no initdb on PATH nor in /usr/lib/postgresql/*/bin")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// credential is whom initdb and postgres run as: they refuse root, so
// root runs them as nobody (as `runuser -u nobody` would, but without a
// process between, so that the process group and the parent-death signal
// reach postgres itself); anyone else as themselves.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running Postgres as nobody: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// start initialises a cluster in a new temporary directory and runs
// postgres on it on a free 127.0.0.1 port, tuned for tests (no fsync).
func start() (*server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	sweep()
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", dirPrefix+"*")
	if err != nil {
		return nil, err
	}
	s := &server{dir: dir, exited: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			s.stop()
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "skydm", "--auth=trust",
		"--no-locale", "-E", "UTF8", "--no-sync")
	initdb.Dir = dir
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if s.port, err = freePort(); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-h", "127.0.0.1",
		"-p", strconv.Itoa(s.port), "-k", dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := startLocked(cmd, s.exited); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s.pid = cmd.Process.Pid
	if err := s.waitReady(30 * time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
		return nil, fmt.Errorf("postgres did not start: %v\n%s", err, log)
	}
	ok = true
	return s, nil
}

// startLocked starts cmd from a goroutine locked to its OS thread for as
// long as cmd runs: the parent-death signal fires when the thread that
// started the child ends, which must be when this process ends, not when
// the Go runtime retires a thread. exited is closed once cmd is reaped.
func startLocked(cmd *exec.Cmd, exited chan struct{}) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes with the child
		err := cmd.Start()
		started <- err
		if err == nil {
			cmd.Wait()
		}
		close(exited)
	}()
	return <-started
}

// waitReady polls the server until it answers or within has passed.
func (s *server) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var err error
		if c, cerr := pgx.Connect(ctx, s.url("postgres")); cerr != nil {
			err = cerr
		} else {
			c.Close(ctx)
		}
		cancel()
		select {
		case <-s.exited:
			return errors.New("postgres exited")
		default:
		}
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond) // polling interval
	}
}

// stop stops postgres and everything it started, and wipes its directory.
func (s *server) stop() error {
	var err error
	if s.pid != 0 {
		err = procgroup.Stop(s.pid, s.exited, 10*time.Second)
	}
	if rerr := os.RemoveAll(s.dir); err == nil && rerr != nil {
		err = fmt.Errorf("pgtest: wiping %s: %w", s.dir, rerr)
	}
	return err
}

// sweep wipes the directories of servers whose test binary is gone (killed
// before it could stop them; the parent-death signal stopped postgres).
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(d)
		}
	}
}

// freePort is a 127.0.0.1 TCP port nothing listens on just now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
