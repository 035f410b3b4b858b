// Package procstat reads this process's resident memory and CPU time, for
// the memory tests and benchmarks.
package procstat

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RSS returns the resident set size of this process (VmRSS), or 0 where
// /proc is not available.
func RSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// CPU returns the CPU time this process has used, user and system.
func CPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
