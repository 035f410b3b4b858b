package procgroup

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// start runs sh -c script in its own process group and returns its pid and
// a channel closed once it has been reaped.
func start(t *testing.T, script string) (int, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	return cmd.Process.Pid, exited
}

func TestStop(t *testing.T) {
	for _, tc := range []struct {
		name, script string
	}{
		{"stops on SIGTERM", "sleep 60"},
		{"killed when it ignores SIGTERM", `trap "" TERM; sleep 60 & wait`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid, exited := start(t, tc.script)
			if err := Stop(pid, exited, 200*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			select {
			case <-exited:
			default:
				t.Fatal("Stop returned before the process was reaped")
			}
			// Nothing of the group is left (the backgrounded sleep included).
			if err := syscall.Kill(-pid, 0); err != syscall.ESRCH {
				t.Fatalf("process group %d still has members (kill 0: %v)", pid, err)
			}
		})
	}
}
