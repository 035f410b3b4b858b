package pgtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/pgserver"
)

// A test binary killed outright takes its Postgres with it (parent-death
// signal), and the next binary wipes the directory it left (sweep).
func TestServerDiesWithTheTestProcess(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		URL(t)
		fmt.Printf("server %d %s\n", srv.PID(), srv.Dir())
		select {} // until killed
	}
	ensure(t) // skips or fails here when there is no Postgres
	child := exec.Command(os.Args[0], "-test.run=^TestServerDiesWithTheTestProcess$")
	child.Env = append(os.Environ(), "PGTEST_CHILD=1")
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	var dir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, _ := fmt.Sscanf(sc.Text(), "server %d %s", &pid, &dir); n == 2 {
			break
		}
	}
	if pid == 0 {
		child.Process.Kill()
		child.Wait()
		t.Fatal("the child did not start a server")
	}
	child.Process.Kill()
	child.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for syscall.Kill(pid, 0) != syscall.ESRCH {
		if time.Now().After(deadline) {
			t.Fatalf("postgres %d still runs after its test binary was killed", pid)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the dead binary's directory is already gone (%v): the test proves nothing", err)
	}
	pgserver.Sweep(dirPrefix)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("sweep left %s behind: %v", dir, err)
	}
}
