// Package pgserver runs a throw-away Postgres (Debian's postgresql
// package): initdb and postgres as an unprivileged user in a temporary
// directory on a free 127.0.0.1 port, stopped and wiped afterwards. The
// test harness (internal/pgtest) and `make demo-cluster` use it.
package pgserver

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
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/skydm/skydm/internal/procgroup"
)

// NotInstalledError is Start's error when no Postgres is installed; it
// says where it looked.
type NotInstalledError string

func (e NotInstalledError) Error() string { return "no Postgres: " + string(e) }

// Exec runs one statement on the server's maintenance database over a
// connection of its own (so that a test in a testing/synctest bubble
// shares nothing with one outside it).
func (s *Server) Exec(stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, stmt)
	return err
}

// Server is one running postgres.
type Server struct {
	dir    string // temporary directory: data/, the socket, the log
	port   int
	pid    int
	exited chan struct{}
}

// URL is the URL of database db on the server, as its superuser skydm.
func (s *Server) URL(db string) string {
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
	return "", NotInstalledError("no initdb on PATH nor in /usr/lib/postgresql/*/bin")
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

// Start initialises a cluster in a new temporary directory named
// dirPrefix* and runs postgres on it on a free 127.0.0.1 port, tuned for
// throw-away data (no fsync). It first wipes the directories of servers
// started under dirPrefix by processes that are gone (Sweep). Postgres dies
// with this process (parent-death signal); Stop stops it and wipes its
// directory.
func Start(dirPrefix string) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	Sweep(dirPrefix)
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", dirPrefix+"*")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, exited: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
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
func (s *Server) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var err error
		if c, cerr := pgx.Connect(ctx, s.URL("postgres")); cerr != nil {
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

// Dir is the server's temporary directory.
func (s *Server) Dir() string { return s.dir }

// PID is the postmaster's process id.
func (s *Server) PID() int { return s.pid }

// Stop stops postgres and everything it started, and wipes its directory.
func (s *Server) Stop() error {
	var err error
	if s.pid != 0 {
		err = procgroup.Stop(s.pid, s.exited, 10*time.Second)
	}
	if rerr := os.RemoveAll(s.dir); err == nil && rerr != nil {
		err = fmt.Errorf("pgserver: wiping %s: %w", s.dir, rerr)
	}
	return err
}

// Sweep wipes the directories named dirPrefix* of servers whose owning
// process is gone (killed before it could stop them; the parent-death
// signal stopped postgres).
func Sweep(dirPrefix string) {
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
