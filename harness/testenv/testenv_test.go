package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMissingTool runs a test that needs a tool no machine has, once as a
// developer would (it skips and logs the skip) and once as CI does
// (HARNESS_STRICT=1: it fails).
func TestMissingTool(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		NeedTool(t, "no-such-tool-ever", "no-such-package")
		t.Fatal("NeedTool returned for a missing tool")
	}
	log := filepath.Join(t.TempDir(), "skips")
	run := func(strict string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingTool$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", SkipLogEnv+"="+log, StrictEnv+"="+strict)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("0")
	if err != nil || !strings.Contains(out, "--- SKIP") {
		t.Fatalf("without strict mode the test should skip: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(log)
	if want := "TestMissingTool\tno-such-tool-ever is not installed\tapt-get install no-such-package\n"; string(b) != want {
		t.Errorf("skip log %q, want %q", b, want)
	}
	out, err = run("1")
	if err == nil || !strings.Contains(out, "--- FAIL") || !strings.Contains(out, "no-such-tool-ever") {
		t.Fatalf("in strict mode the test should fail naming the tool: %v\n%s", err, out)
	}
}

// TestSharedDataPresent returns the folder when it exists.
func TestSharedDataPresent(t *testing.T) {
	if got := SharedData(t, "."); got != "." {
		t.Fatalf("SharedData(.) = %q", got)
	}
}

func TestRealTimeDefers(t *testing.T) {
	t.Setenv(RealTimeEnv, "defer")
	ran := false
	t.Run("deferred", func(t *testing.T) {
		RealTime(t)
		ran = true
	})
	if ran {
		t.Fatal("a real-time test ran with HARNESS_REALTIME=defer")
	}
	t.Setenv(RealTimeEnv, "")
	t.Run("alone", func(t *testing.T) {
		RealTime(t)
		ran = true
	})
	if !ran {
		t.Fatal("a real-time test skipped without HARNESS_REALTIME=defer")
	}
}
