package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHelperBrowserWithoutChromium is run by
// TestMissingChromiumIsCountedOrFailsUnderCI in a child process; on its own
// it does nothing.
func TestHelperBrowserWithoutChromium(t *testing.T) {
	if os.Getenv("SKYDM_TESTENV_HELPER") != "1" {
		return
	}
	Browser(t, BrowserOptions{})
	t.Error("Browser returned without Chromium")
}

func TestMissingChromiumIsCountedOrFailsUnderCI(t *testing.T) {
	child := func(ci string, skipDir string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBrowserWithoutChromium$", "-test.v")
		cmd.Env = append(os.Environ(), "SKYDM_TESTENV_HELPER=1", "SKYDM_CHROMIUM=/nonexistent/chromium",
			"CI="+ci, "SKYDM_SKIP_DIR="+skipDir)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	dir := t.TempDir()
	out, err := child("", dir)
	if err != nil || !strings.Contains(out, "--- SKIP: TestHelperBrowserWithoutChromium") {
		t.Fatalf("without CI the test should skip: %v\n%s", err, out)
	}
	markers, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(markers) != 1 {
		t.Fatalf("%d skip markers in SKYDM_SKIP_DIR, want 1", len(markers))
	}
	b, _ := os.ReadFile(markers[0])
	if line := string(b); !strings.Contains(line, "Chromium") || !strings.Contains(line, "apt-get install chromium") || strings.Count(line, "\n") != 1 {
		t.Errorf("marker %q does not say, in one line, what is missing and the command that enables it", line)
	}

	dir = t.TempDir()
	out, err = child("true", dir)
	if err == nil || !strings.Contains(out, "--- FAIL: TestHelperBrowserWithoutChromium") || !strings.Contains(out, "/nonexistent/chromium") {
		t.Errorf("under CI=true a missing Chromium must fail the test, naming where it looked: %v\n%s", err, out)
	}
	if markers, _ := filepath.Glob(filepath.Join(dir, "*")); len(markers) != 0 {
		t.Errorf("a failure left a skip marker")
	}
}
