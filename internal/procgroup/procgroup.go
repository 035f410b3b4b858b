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
// the leader is gone, the rest of its group is killed too, and Stop waits
// (up to killWait) until the group is empty, so nothing it spawned lingers
// when it returns. It returns an error only when the leader is still there
// killWait after SIGKILL.
func Stop(pid int, exited <-chan struct{}, grace time.Duration) error {
	_ = syscall.Kill(-pid, syscall.SIGTERM) // the group id is the leader's pid
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		t2 := time.NewTimer(killWait)
		defer t2.Stop()
		select {
		case <-exited:
		case <-t2.C:
			return fmt.Errorf("process %d still running after SIGKILL", pid)
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	waitGroupGone(pid, time.Now().Add(killWait))
	return nil
}

// waitGroupGone polls until no process is left in group pgid (members the
// leader left behind are reaped by init, not by us), or until deadline.
func waitGroupGone(pgid int, deadline time.Time) {
	for syscall.Kill(-pgid, 0) != syscall.ESRCH && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}
