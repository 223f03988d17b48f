package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests of this file attack the command line as a careless user or a
// hostile night would (issue 11): wrong types from every configuration
// source, outputs over inputs, full disks, signals.

var (
	builtOnce sync.Once
	builtExe  string
	builtErr  error
)

// harnessExe builds the harness program once per test binary.
func harnessExe(t *testing.T) string {
	t.Helper()
	builtOnce.Do(func() {
		dir, err := os.MkdirTemp("", "harness-exe-")
		if err != nil {
			builtErr = err
			return
		}
		builtExe = filepath.Join(dir, "harness")
		if out, err := exec.Command("go", "build", "-o", builtExe, ".").CombinedOutput(); err != nil {
			builtErr = &buildError{string(out)}
		}
	})
	if builtErr != nil {
		t.Fatal(builtErr)
	}
	return builtExe
}

type buildError struct{ out string }

func (e *buildError) Error() string { return "go build: " + e.out }

// exitCode runs the built program and returns its exit code, stdout and
// stderr.
func runExe(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(harnessExe(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// TestConfigRefusesWrongTypes: a value the flag would refuse is refused from
// the config file and the environment too, naming the source, the key and
// the type; a misspelled key is refused with the nearest known key.
func TestConfigRefusesWrongTypes(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		yaml string
		want string
	}{
		{"model: [kws.tflite]\n", `key "model": want a string, got a list`},
		{"inferences: \"lots\"\n", `key "inferences": want a whole number, got "lots"`},
		{"inferenecs: 3\n", `unknown key "inferenecs" (did you mean "inferences"?)`},
		{"loop: maybe\n", `key "loop": want true or false, got "maybe"`},
		{"- 1\n- 2\n", "want a mapping of flag names to values"},
	}
	for i, c := range cases {
		cfg := filepath.Join(dir, "c"+string(rune('0'+i))+".yaml")
		if err := os.WriteFile(cfg, []byte(c.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := run(t, "replay", "--config", cfg, "--json")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), cfg+":1") {
			t.Errorf("config %q: %v, want an error naming %s:1 and %q", c.yaml, err, cfg, c.want)
		}
	}
	// Another command's key is not an error: one file may serve several.
	cfg := filepath.Join(dir, "shared.yaml")
	if err := os.WriteFile(cfg, []byte("inferences: 1\nloop: true\nthreshold: 0.001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "replay", "--config", cfg, "--json"); err != nil {
		t.Errorf("a key of another command: %v", err)
	}
	t.Setenv("HARNESS_INFERENCES", "abc")
	if _, err := run(t, "replay", "--json"); err == nil || !strings.Contains(err.Error(), "HARNESS_INFERENCES") || !strings.Contains(err.Error(), "whole number") {
		t.Errorf("HARNESS_INFERENCES=abc: %v, want it refused", err)
	}
}

// TestOutputToFullDisk: a table that cannot be written is an error.
func TestOutputToFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full on this system")
	}
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(harnessExe(t), "version")
	cmd.Stdout = f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitFailure || !strings.Contains(stderr.String(), "no space left") {
		t.Fatalf("harness version >/dev/full: %v, stderr %q; want exit %d naming the full disk", err, stderr.String(), exitFailure)
	}
}

// TestSeededInput: a model without --input gets a deterministic input from
// seed 1, and says so.
func TestSeededInput(t *testing.T) {
	needShared(t)
	kws := filepath.Join(sharedData, "models/kws_dscnn_int8.tflite")
	var outs []string
	for range 2 {
		out, err := run(t, "infer", kws, "--json")
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, out)
	}
	if outs[0] != outs[1] {
		t.Fatal("two runs with the seeded input differ")
	}
	seeded, err := run(t, "infer", kws, "--input", "seeded:1", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if seeded != outs[0] {
		t.Error("no --input and --input seeded:1 differ")
	}
	other, err := run(t, "infer", kws, "--input", "seeded:2", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if other == seeded {
		t.Error("seeds 1 and 2 give the same output")
	}
	if _, err := run(t, "infer", kws, "--input", "seeded:x"); err == nil || !strings.Contains(err.Error(), "seeded:N") {
		t.Errorf("--input seeded:x: %v", err)
	}
	out, err := run(t, "replay", "--model", kws, "--inferences", "1", "--loop", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Input string `json:"input"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Input != "seeded:1" {
		t.Errorf("replay --json input = %q (%v), want seeded:1", rep.Input, err)
	}
}

// TestOutputOverInputRefused: an output that is one of the command's inputs
// is refused before anything is written, and the input is intact.
func TestOutputOverInputRefused(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "t.csv")
	orig, err := os.ReadFile("../traces/rf-office.csv")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trace, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.csv")
	if err := os.Symlink(trace, link); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"trace", "convert", trace, "-o", trace},
		{"trace", "convert", trace, "-o", link},
		{"replay", trace, "--log", trace},
		{"replay", trace, "--log", link, "--json"},
	} {
		_, err := run(t, args...)
		if err == nil || !strings.Contains(err.Error(), "is the input") {
			t.Errorf("%v: %v, want the output refused as the input", args, err)
		}
		if b, _ := os.ReadFile(trace); !bytes.Equal(b, orig) {
			t.Fatalf("%v changed the input", args)
		}
	}
	// A good output appears whole, and no temporary file is left.
	out := filepath.Join(dir, "out.csv")
	if _, err := run(t, "trace", "convert", trace, "-o", out); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*partial*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if st, err := os.Stat(out); err != nil || st.Size() == 0 {
		t.Errorf("converted trace: %v", err)
	}
}

// TestInjectRandomBounded: --random is refused out of range before anything
// is allocated (1e11 points once took 24 GB).
func TestInjectRandomBounded(t *testing.T) {
	for _, n := range []string{"-1", "100000000000"} {
		if _, err := run(t, "inject", "--random", n); err == nil || !strings.Contains(err.Error(), "want 0 to") {
			t.Errorf("inject --random %s: %v, want it refused", n, err)
		}
	}
	if _, err := run(t, "inject", "--random", "2000", "--scheduler", "tile", "--json"); err != nil {
		t.Errorf("inject --random 2000: %v", err)
	}
}

// TestBoardBaudAndGarbage: --baud 0 and negatives are refused; a port that
// talks, but no valid frame, is named as a likely wrong baud rate; a silent
// port at 9600 baud is named within the link's capped patience, not after
// minutes of backed-off retries.
func TestBoardBaudAndGarbage(t *testing.T) {
	for _, b := range []string{"0", "-9600"} {
		if _, err := run(t, "board", "--port", "/dev/null", "--baud", b); err == nil || !strings.Contains(err.Error(), "want a positive rate") {
			t.Errorf("--baud %s: %v", b, err)
		}
	}
	master, slave := rawPTY(t)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// Line noise: what a board at another baud rate looks like.
		junk := bytes.Repeat([]byte{0x55, 0xAA, 0xF0, 0x13, 0x00, 0x7E}, 20)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				master.Write(junk)
			}
		}
	}()
	t0 := time.Now()
	_, err := runWithin(t, time.Minute, "board", "--port", slave.Name(), "--baud", "9600")
	t.Logf("after %v: %v", time.Since(t0).Round(time.Millisecond), err)
	if err == nil || !strings.Contains(err.Error(), "no valid frame") || !strings.Contains(err.Error(), "wrong baud rate") {
		t.Errorf("a talking port with no valid frame: %v", err)
	}
	if d := time.Since(t0); d > 40*time.Second {
		t.Errorf("it took %v to give up at 9600 baud", d)
	}
}

// TestBoardPortLostKeepsResults: when the board's port goes away after
// some verified inferences, those are reported (JSON) with the error, and
// the exit is an error, not a mismatch and not success.
func TestBoardPortLostKeepsResults(t *testing.T) {
	exe := hostBoardProgram(t)
	master, slave := rawPTY(t)
	cmd := exec.Command(exe)
	cmd.Stdin, cmd.Stdout = master, master
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The board vanishes a while into the run.
	go func() {
		time.Sleep(2 * time.Second)
		cmd.Process.Kill()
		master.Close()
	}()
	defer cmd.Wait()
	out, err := runWithin(t, 2*time.Minute, "board", "--port", slave.Name(), "--deploy", "--inferences", "100000", "--json")
	if err == nil {
		t.Fatal("the run succeeded although its board vanished")
	}
	var ee *exitError
	if errors.As(err, &ee) {
		t.Fatalf("exit %d (%v), want an error of the link, not a result", ee.code, err)
	}
	var rep struct {
		Inferences []struct {
			Verified bool `json:"verified"`
		} `json:"inferences"`
		Error string `json:"error"`
	}
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("no JSON with the inferences done: %v: %q", jerr, out)
	}
	t.Logf("%d inferences verified before the port went: %v", len(rep.Inferences), err)
	if len(rep.Inferences) == 0 || rep.Error == "" || !strings.Contains(err.Error(), "verified inferences") {
		t.Errorf("report %d inferences, error %q; err %v", len(rep.Inferences), rep.Error, err)
	}
	for i, in := range rep.Inferences {
		if !in.Verified {
			t.Errorf("inference %d not verified", i)
		}
	}
}
