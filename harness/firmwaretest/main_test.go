package firmwaretest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batteryless/harness/harness/testenv"
)

const sharedData = "../../../shared/data"

// firmwareDir is the firmware to build: ../../firmware, or
// $IH_FIRMWARE_DIR (to test a modified copy).
var firmwareDir = "../../firmware"

// The host programs, built once by TestMain into a temporary directory (so
// that concurrent test runs never share binaries).
var (
	binDir     string
	buildSkip  [2]string // the missing tool and its Debian package, when the firmware tests skip
	buildErr   string    // make's output when the build failed
	sanitizers string    // empty when the sanitizer builds are there, else why not
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		if d := os.Getenv("IH_FIRMWARE_DIR"); d != "" {
			firmwareDir = d
		}
		if _, err := exec.LookPath("make"); err != nil {
			buildSkip = [2]string{"make", "make"}
			return m.Run()
		}
		cc := ""
		for _, c := range []string{"gcc", "cc"} {
			if _, err := exec.LookPath(c); err == nil {
				cc = c
				break
			}
		}
		if cc == "" {
			buildSkip = [2]string{"gcc", "gcc"}
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "firmwaretest-")
		if err != nil {
			buildErr = err.Error()
			return m.Run()
		}
		defer os.RemoveAll(dir)
		args := []string{"-j4", "-C", firmwareDir, "BUILD=" + dir, "HOST_CC=" + cc}
		if out, err := exec.Command("make", append(args, "host")...).CombinedOutput(); err != nil {
			buildErr = fmt.Sprintf("make host: %v\n%s", err, out)
			return m.Run()
		}
		flag.Parse()
		if testing.Short() {
			sanitizers = "-short: the sanitizer builds are skipped"
		} else if out, err := exec.Command("make", append(args, "host-san")...).CombinedOutput(); err != nil {
			sanitizers = fmt.Sprintf("make host-san failed (no sanitizer runtime?): %v\n%s", err, out)
		}
		binDir = filepath.Join(dir, "host")
		return m.Run()
	}())
}

// bin returns the path of a host program, skipping or failing the test
// when the build is not there.
func bin(t *testing.T, name string) string {
	t.Helper()
	if buildSkip[0] != "" {
		testenv.NeedTool(t, buildSkip[0], buildSkip[1])
	}
	if buildErr != "" {
		t.Fatal(buildErr)
	}
	if strings.HasSuffix(name, "-san") && sanitizers != "" {
		if testing.Short() {
			t.Skip(sanitizers)
		}
		testenv.Missing(t, sanitizers, "apt-get install gcc (its libasan and libubsan)")
	}
	return filepath.Join(binDir, name)
}

func needShared(t *testing.T, sub string) string {
	t.Helper()
	p := filepath.Join(sharedData, sub)
	testenv.SharedData(t, p)
	return p
}

// result is one run of a host program.
type result struct {
	stdout, stderr string
	code           int
}

// run runs a program with a time limit; a crash (a signal) fails the test.
func run(t *testing.T, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// Sanitizer reports exit with 99, apart from the programs' own codes.
	cmd.Env = append(os.Environ(), "ASAN_OPTIONS=exitcode=99:detect_leaks=1", "UBSAN_OPTIONS=halt_on_error=1:exitcode=99:print_stacktrace=1")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := result{stdout: so.String(), stderr: se.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() < 0 {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, r.stderr)
		}
		r.code = ee.ExitCode()
	}
	if r.code == 99 {
		t.Fatalf("%s %s: sanitizer report:\n%s", filepath.Base(name), strings.Join(args, " "), r.stderr)
	}
	return r
}

var statsRE = regexp.MustCompile(`tasks (\d+), runs (\d+), re-executions (\d+), brown-outs (\d+) \((\d+) random\), boots (\d+), commits (\d+), early-commits (\d+), sleeps (\d+), words \d+, in-task brown-outs (\d+), snapshots (\d+), restores (\d+)`)

// stats are runplan's counters.
type stats struct {
	tasks, runs, reexec, brownouts, random, boots, commits, early, sleeps, inTask, snapshots, restores int
}

func parseStats(t *testing.T, stderr string) stats {
	t.Helper()
	m := statsRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("runplan printed no statistics: %q", stderr)
	}
	v := make([]int, len(m)-1)
	for i := range v {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	return stats{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]}
}
