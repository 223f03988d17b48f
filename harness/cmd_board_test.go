package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batteryless/harness/harness/firmwaretest/fwbuild"
	"github.com/batteryless/harness/harness/testenv"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// runWithin runs the command line in-process like run, and fails the test
// if it has not returned within d (a command that hangs).
func runWithin(t *testing.T, d time.Duration, args ...string) (string, error) {
	t.Helper()
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		err := root.Execute()
		done <- result{out.String(), err}
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-time.After(d):
		t.Fatalf("harness %s: no return within %v", strings.Join(args, " "), d)
		return "", nil
	}
}

// rawPTY opens a pseudo-terminal pair with its slave (the port the harness
// opens) in raw mode; both are closed when the test ends.
func rawPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		testenv.Missing(t, "no pseudo-terminals here: "+err.Error(), "")
	}
	t.Cleanup(func() {
		master.Close()
		slave.Close()
	})
	if _, err := term.MakeRaw(int(slave.Fd())); err != nil {
		t.Fatal(err)
	}
	return master, slave
}

// hostBoardProgram builds firmware/host/board (the firmware's wire loop on
// the host port, with a writable image area; fwbuild), or skips when a tool
// is missing.
func hostBoardProgram(t *testing.T) string {
	t.Helper()
	return filepath.Join(fwbuild.Build(t, "host"), "host", "board")
}

// startHostBoard runs the board program with args on the master of a
// pseudo-terminal pair and returns the slave's path: the board's port.
func startHostBoard(t *testing.T, exe string, args ...string) string {
	t.Helper()
	master, slave := rawPTY(t)
	var stderr bytes.Buffer
	cmd := exec.Command(exe, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = master, master, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("board stderr:\n%s", stderr.String())
		}
	})
	return slave.Name()
}

// boardJSON is what `harness board --json` prints, in part.
type boardJSON struct {
	Identity struct {
		Name       string `json:"name"`
		ImageBytes uint32 `json:"image_capacity_bytes"`
		ImageValid bool   `json:"image_valid"`
	} `json:"identity"`
	Profile    string `json:"profile"`
	PlanTasks  int    `json:"plan_tasks"`
	Deployed   bool   `json:"deployed"`
	ImageBytes int    `json:"image_bytes"`
	Inferences []struct {
		Number      uint32 `json:"number"`
		Verified    bool   `json:"verified"`
		Tasks       int    `json:"tasks"`
		Commits     int    `json:"commits"`
		Boots       int    `json:"boots"`
		TotalCycles uint64 `json:"total_cycles"`
	} `json:"inferences"`
	Mismatches int `json:"mismatches"`
	Tasks      []struct {
		Task      int     `json:"task"`
		Predicted float64 `json:"predicted_cycles"`
		Measured  float64 `json:"measured_cycles"`
	} `json:"tasks"`
	NoComparison string `json:"no_comparison"`
}

func parseBoard(t *testing.T, out string) boardJSON {
	t.Helper()
	var r boardJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return r
}

// TestBoardCommandHostBoard drives the host board program over a
// pseudo-terminal as a real board: --deploy schedules the bundled model for
// the profile the board names and deploys it, two inferences run verified
// with every task reported and compared with the plan's prediction; a second
// run without --deploy goes on with the next inference numbers and knows the
// plan by its tag; a plan for another profile is not compared; a model the
// board does not hold gives a mismatch and exit 1; the port also comes from
// the config file; an image larger than the board's image area is refused.
func TestBoardCommandHostBoard(t *testing.T) {
	exe := hostBoardProgram(t)
	port := startHostBoard(t, exe)
	const limit = 2 * time.Minute

	out, err := runWithin(t, limit, "board", "--port", port, "--deploy", "--inferences", "2", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	r := parseBoard(t, out)
	if r.Identity.Name != "msp430fr5994" || r.Profile != "msp430fr5994" || !r.Deployed || r.ImageBytes == 0 || r.PlanTasks == 0 {
		t.Fatalf("report %+v", r)
	}
	if len(r.Inferences) != 2 || r.Mismatches != 0 {
		t.Fatalf("inferences %+v", r.Inferences)
	}
	for i, inf := range r.Inferences {
		if inf.Number != uint32(i+1) || !inf.Verified || inf.Tasks != r.PlanTasks || inf.Boots != 0 || inf.Commits == 0 {
			t.Errorf("inference %d: %+v (plan of %d tasks)", i, inf, r.PlanTasks)
		}
	}
	if len(r.Tasks) != r.PlanTasks || r.NoComparison != "" {
		t.Errorf("%d tasks compared of %d (%s)", len(r.Tasks), r.PlanTasks, r.NoComparison)
	}
	for _, task := range r.Tasks {
		if task.Predicted <= 0 {
			t.Errorf("task %d: predicted %g cycles", task.Task, task.Predicted)
		}
	}

	// No --deploy: the image on the board is the plan (its tag), and the
	// numbers go on after the last one started. The port from the config.
	cfg := filepath.Join(t.TempDir(), "harness.yaml")
	if err := os.WriteFile(cfg, []byte("port: "+port+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runWithin(t, limit, "board", "--config", cfg, "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	r = parseBoard(t, out)
	if r.Deployed || len(r.Inferences) != 1 || r.Inferences[0].Number != 3 || !r.Inferences[0].Verified || !r.Identity.ImageValid {
		t.Errorf("second run %+v", r)
	}
	if len(r.Tasks) != r.PlanTasks || r.NoComparison != "" {
		t.Errorf("second run: %d tasks compared of %d (%s)", len(r.Tasks), r.PlanTasks, r.NoComparison)
	}

	// Another profile's plan is not the board's: outputs verified, no
	// per-task comparison, and the table says why.
	out, err = runWithin(t, limit, "board", "--port", port, "--profile", "stm32f405")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("\n%s", out)
	for _, want := range []string{"image capacity bytes", "msp430fr5994", "the board runs another plan", "no per-task comparison", "1 inference, every output verified"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q", want)
		}
	}

	// Another model of the same structure: the board runs the one it
	// holds, so the output differs from the reference: exit 1.
	dir := t.TempDir()
	model2, input2 := filepath.Join(dir, "seed2.tflite"), filepath.Join(dir, "seed2.bin")
	if out, err := run(t, "model", "gen", "-o", model2, "--seed", "2", "--input-out", input2); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err = runWithin(t, limit, "board", "--port", port, "--model", model2, "--input", input2)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(ee.msg, "differ from the reference") || !strings.Contains(out, "DIFFER") {
		t.Errorf("another model: error %v, output\n%s", err, out)
	}

	// A board whose image area is too small: refused before any DEPLOY.
	small := startHostBoard(t, exe, "--image-cap", "1000")
	_, err = runWithin(t, limit, "board", "--port", small, "--deploy")
	if err == nil || !strings.Contains(err.Error(), "larger than the image area of board msp430fr5994, 1000 bytes") || strings.Contains(err.Error(), "\n") {
		t.Errorf("small image area: %v", err)
	}
	// ... and one without a valid image needs --deploy.
	_, err = runWithin(t, limit, "board", "--port", small)
	if err == nil || !strings.Contains(err.Error(), "no valid plan image: deploy one with --deploy") {
		t.Errorf("no image: %v", err)
	}
}

// TestBoardCommandSilentPort: a port where nothing answers (a pty nobody
// reads) gives a one-line error naming the port once the link's retries of
// HELLO are spent (at 1 Mbaud about 5 s), not a hang. The port comes from
// HARNESS_PORT.
func TestBoardCommandSilentPort(t *testing.T) {
	_, slave := rawPTY(t)
	t.Setenv("HARNESS_PORT", slave.Name())
	t0 := time.Now()
	_, err := runWithin(t, time.Minute, "board", "--baud", "1000000")
	d := time.Since(t0)
	if err == nil {
		t.Fatal("a silent port answered")
	}
	t.Logf("after %v: %v", d.Round(time.Millisecond), err)
	want := "board: " + slave.Name() + ": no answer to HELLO in "
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "1000000 baud") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q, want %q...", err, want)
	}
	if d > 20*time.Second {
		t.Errorf("the error took %v", d)
	}
}

func TestBoardCommandErrors(t *testing.T) {
	t.Setenv("HARNESS_PORT", "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"board"}, "board: --port is required"},
		{[]string{"board", "--port", "/dev/x", "--inferences", "0"}, "--inferences 0: at least 1"},
		{[]string{"board", "--port", filepath.Join(t.TempDir(), "ttyNONE")}, "ttyNONE"},
	} {
		_, err := runWithin(t, time.Minute, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}
