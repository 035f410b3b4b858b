package testenv

import (
	"os"
	"testing"
)

// skipMissing ends a test that cannot run because a tool is missing. Under
// CI=true it fails it: there nothing may be skipped. Otherwise it skips
// it, and when SKYDM_SKIP_DIR names a directory (`make test` sets one) it
// leaves a file there holding line, one line saying what was skipped and
// the one command that enables it; `make test` counts them and prints the
// summary at the end, so a fresh machine does not pass tests that never
// ran without a word. detail says more about this test's case.
func skipMissing(t testing.TB, line, detail string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("testenv: %s (%s)", line, detail)
	}
	if dir := os.Getenv("SKYDM_SKIP_DIR"); dir != "" {
		f, err := os.CreateTemp(dir, "skip-*")
		if err != nil {
			t.Errorf("testenv: recording the skip in SKYDM_SKIP_DIR: %v", err)
		} else {
			_, werr := f.WriteString(line + "\n")
			if cerr := f.Close(); werr != nil || cerr != nil {
				t.Errorf("testenv: recording the skip in SKYDM_SKIP_DIR: %v %v", werr, cerr)
			}
		}
	}
	t.Skipf("testenv: %s (%s)", line, detail)
}

// SkipMissing is skipMissing for the harness packages beside this one
// (internal/pgtest): a missing tool fails the test under CI=true and is
// otherwise skipped and recorded. line says what is missing and the one
// command that installs it; detail says more about this case.
func SkipMissing(t testing.TB, line, detail string) {
	t.Helper()
	skipMissing(t, line, detail)
}
