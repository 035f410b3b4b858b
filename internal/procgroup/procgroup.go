// Package procgroup stops a child process started in its own process group
// (exec.Cmd with SysProcAttr.Setpgid), together with everything it spawned:
// the sandbox's node process and the demo's web app.
package procgroup

import (
	"fmt"
	"syscall"
	"time"
)

// killWait is how long Stop waits for the leader to be reaped after SIGKILL.
const killWait = 5 * time.Second

// Stop sends SIGTERM to the process group led by pid, then SIGKILL if exited
// (closed once the leader has been reaped) is still open after grace. When
// the leader is gone, the rest of its group is killed too, so nothing it
// spawned lingers. It returns an error only when the leader is still there
// killWait after SIGKILL.
func Stop(pid int, exited <-chan struct{}, grace time.Duration) error {
	_ = syscall.Kill(-pid, syscall.SIGTERM) // the group id is the leader's pid
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-exited:
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return nil
	case <-t.C:
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	t2 := time.NewTimer(killWait)
	defer t2.Stop()
	select {
	case <-exited:
		return nil
	case <-t2.C:
		return fmt.Errorf("process %d still running after SIGKILL", pid)
	}
}
