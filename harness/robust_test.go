package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/batteryless/harness/reports"
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

// runExe runs the built program with stdin (nil: none) and returns its
// exit code, stdout and stderr.
func runExe(t *testing.T, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(harnessExe(t), args...)
	cmd.Stdin = stdin
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

// startExe starts the built program with args; the caller signals it.
func startExe(t *testing.T, stdin io.Reader, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(harnessExe(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, &stdout, &stderr
}

// waitExit waits at most d for cmd and returns its exit code.
func waitExit(t *testing.T, cmd *exec.Cmd, d time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not exit within %v of its signal", cmd.Args[1:], d)
		return -1
	}
}

// TestSignalsOnSimulatedPaths: Ctrl-C and SIGTERM stop every long run on
// the simulated board (a replay, a compare, an injection, a trace convert
// and the first read of a trace from a pipe) within a second or two, with
// exit 130; the replay's log is whole, ends with an "interrupted" record,
// and its JSON says interrupted.
func TestSignalsOnSimulatedPaths(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "x.jsonl")
	fifo := filepath.Join(dir, "trace.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		sig  syscall.Signal
		args []string
	}{
		{"replay", syscall.SIGINT, []string{"replay", "--loop", "--inferences", "100000000", "--log", log, "--json", "--baseline=false"}},
		{"compare", syscall.SIGTERM, []string{"compare", "rf-office", "--loop", "--inferences", "100000000"}},
		{"inject", syscall.SIGINT, []string{"inject", "--scheduler", "layer", "--random", "1000000"}},
		{"trace convert", syscall.SIGTERM, []string{"trace", "convert", "-", "-o", filepath.Join(dir, "out.csv")}},
		{"replay of a pipe", syscall.SIGINT, []string{"replay", fifo}},
	}
	for _, c := range cases {
		var stdin io.Reader
		if c.name == "trace convert" {
			// A pipe that never ends.
			pr, pw := io.Pipe()
			go func() {
				pw.Write([]byte("time_s,power_w\n"))
				for i := 0; ; i++ {
					if _, err := fmt.Fprintf(pw, "%d,0.001\n", i); err != nil {
						return
					}
				}
			}()
			defer pw.Close()
			stdin = pr
		}
		cmd, stdout, stderr := startExe(t, stdin, c.args...)
		time.Sleep(1500 * time.Millisecond)
		t0 := time.Now()
		cmd.Process.Signal(c.sig)
		code := waitExit(t, cmd, 10*time.Second)
		t.Logf("%s: exit %d %v after %v; %s", c.name, code, c.sig, time.Since(t0).Round(time.Millisecond), strings.TrimSpace(stderr.String()))
		if code != exitInterrupted {
			t.Errorf("%s: exit %d after %v, want %d", c.name, code, c.sig, exitInterrupted)
		}
		if c.name == "replay" {
			var rep struct {
				Interrupted bool   `json:"interrupted"`
				EndReason   string `json:"end_reason"`
				Inferences  int    `json:"inferences"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil || !rep.Interrupted || rep.EndReason != "interrupted" || rep.Inferences == 0 {
				t.Errorf("replay JSON %+v (%v): want the partial result, interrupted", rep, err)
			}
			f, err := os.Open(log)
			if err != nil {
				t.Fatalf("no log after the interruption: %v", err)
			}
			lg, err := reports.ReadFullLog(f, log)
			f.Close()
			if err != nil || lg.End == nil || lg.End.Reason != "interrupted" || len(lg.Inferences) == 0 {
				t.Errorf("log: %v, end %+v, %d inferences", err, lg, len(lg.Inferences))
			}
		}
	}
}

// TestDeadTraceLoopRefused: a looped trace that can never charge the
// capacitor to turn-on (nothing at all, or less than its leakage) is
// refused at once, not replayed forever.
func TestDeadTraceLoopRefused(t *testing.T) {
	dir := t.TempDir()
	zeros := filepath.Join(dir, "zeros.csv")
	weak := filepath.Join(dir, "weak.csv")
	var zb, wb strings.Builder
	zb.WriteString("time_s,power_w\n")
	wb.WriteString("time_s,power_w\n")
	for i := range 100 {
		fmt.Fprintf(&zb, "%d,0\n", i)
		fmt.Fprintf(&wb, "%d,1e-7\n", i) // 0.1 uW: the 10 MOhm leak holds the capacitor near 0.9 V
	}
	os.WriteFile(zeros, []byte(zb.String()), 0o644)
	os.WriteFile(weak, []byte(wb.String()), 0o644)
	for _, tr := range []string{zeros, weak} {
		for _, args := range [][]string{{"replay", tr, "--loop", "--inferences", "3"}, {"compare", tr, "--loop", "--inferences", "3", "--schedulers", "tile"}} {
			t0 := time.Now()
			out, err := runWithin(t, time.Minute, args...)
			if d := time.Since(t0); d > 10*time.Second {
				t.Errorf("%v took %v", args, d)
			}
			if err == nil && !strings.Contains(out, "never turns on") || err != nil && !strings.Contains(err.Error(), "never turns on") {
				t.Errorf("%v: %v %s, want it refused: the board never turns on", args, err, out)
			}
		}
	}
}

// TestLivelockLogAndExit: a replay that livelocks mid-way exits 3 and
// leaves a log whose every line parses, ending with why; compare reports
// the inferences completed before the livelock with their real figures.
func TestLivelockLogAndExit(t *testing.T) {
	dir := t.TempDir()
	// Strong enough for inferences at first, then bursts that pass the
	// static check but starve the layer scheduler's first layer.
	tr := filepath.Join(dir, "fading.csv")
	var b strings.Builder
	b.WriteString("time_s,power_w\n")
	for i := 0; i < 600; i++ {
		fmt.Fprintf(&b, "%g,0.02\n", float64(i)*0.05) // 30 s at 20 mW
	}
	for i := 0; i < 3000; i++ {
		p := 0.0002
		if i%100 == 0 {
			p = 0.01
		}
		fmt.Fprintf(&b, "%g,%g\n", 30+float64(i)*0.05, p)
	}
	os.WriteFile(tr, []byte(b.String()), 0o644)
	log := filepath.Join(dir, "ll.jsonl")
	code, _, stderr := runExe(t, nil, "replay", tr, "--scheduler", "layer", "--log", log, "--json")
	if code != exitLivelock {
		t.Fatalf("exit %d (%s), want %d", code, stderr, exitLivelock)
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lg, err := reports.ReadFullLog(f, log)
	if err != nil || lg.End == nil || lg.End.Reason != "livelock" || !strings.Contains(lg.End.Error, "livelock") {
		t.Fatalf("log after a livelock: %v, end %+v", err, lg)
	}
	out, err := run(t, "compare", tr, "--schedulers", "layer", "--json")
	if err != nil {
		t.Fatalf("compare: %v", err)
	}
	var cmp struct {
		Rows []struct {
			Inferences   int     `json:"inferences"`
			LatencyMeanS float64 `json:"latency_mean_s"`
			LowerBoundS  float64 `json:"lower_bound_s"`
			Livelock     bool    `json:"livelock"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(out), &cmp); err != nil || len(cmp.Rows) != 1 {
		t.Fatalf("compare JSON: %v: %s", err, out)
	}
	r := cmp.Rows[0]
	t.Logf("compare row: %+v", r)
	if !r.Livelock || r.Inferences == 0 || r.LatencyMeanS <= 0 || r.LowerBoundS <= 0 {
		t.Errorf("compare row of a run that livelocked after %d inferences: %+v; want the livelock and their real figures", r.Inferences, r)
	}
}

// TestTraceFromStdin: a trace on standard input is read once and replays
// exactly as the same file does.
func TestTraceFromStdin(t *testing.T) {
	b, err := os.ReadFile("../traces/rf-office.csv")
	if err != nil {
		t.Fatal(err)
	}
	code, fromStdin, stderr := runExe(t, bytes.NewReader(b), "replay", "-", "--json", "--baseline=false")
	if code != 0 {
		t.Fatalf("replay - : exit %d: %s", code, stderr)
	}
	code, fromFile, _ := runExe(t, nil, "replay", "../traces/rf-office.csv", "--json", "--baseline=false")
	if code != 0 {
		t.Fatal(code)
	}
	strip := regexp.MustCompile(`"(trace|wall_s|reference_wall_s)": [^,\n]*,?`)
	if a, b := strip.ReplaceAllString(fromStdin, ""), strip.ReplaceAllString(fromFile, ""); a != b {
		t.Errorf("stdin and file replays differ:\n%s\n%s", a, b)
	}
}

// TestMainJobDefaults: the main job runs the harness's own scheduler and
// says how it compares with the best baseline, measured in the same run;
// a trace too short for an inference exits 4 with a hint.
func TestMainJobDefaults(t *testing.T) {
	out, err := run(t, "replay", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Scheduler string `json:"scheduler"`
		Baseline  struct {
			Scheduler string  `json:"scheduler"`
			Ratio     float64 `json:"ratio"`
		} `json:"baseline"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Scheduler != "adaptive" || rep.Baseline.Scheduler == "" || rep.Baseline.Scheduler == "adaptive" || rep.Baseline.Ratio <= 0 || rep.Baseline.Ratio >= 1 {
		t.Errorf("main job: scheduler %q, baseline %+v; want adaptive, compared with a baseline it beats", rep.Scheduler, rep.Baseline)
	}
	table, err := run(t, "replay")
	if err != nil || !strings.Contains(table, "vs best baseline") {
		t.Errorf("the table lacks the baseline line: %v\n%s", err, table)
	}
	short := filepath.Join(t.TempDir(), "short.csv")
	os.WriteFile(short, []byte("time_s,power_w\n0,0.002\n0.5,0.002\n1,0.002\n"), 0o644)
	_, err = run(t, "replay", short, "--json")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitNoInference || !strings.Contains(ee.msg, "--loop") {
		t.Errorf("a trace too short for an inference: %v, want exit %d with a hint", err, exitNoInference)
	}
}

// TestCalibrateBoardsThroughRegistry: calibrate resolves --board through
// the registry and refuses a kind of board that cannot run microbenchmarks.
func TestCalibrateBoardsThroughRegistry(t *testing.T) {
	out := filepath.Join(t.TempDir(), "p.yaml")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"calibrate", "--board", "sim", "--out", out}, "cannot run microbenchmarks"},
		{[]string{"calibrate", "--board", "serial", "--out", out}, "--target stm32 or msp430"},
		{[]string{"calibrate", "--board", "serial", "--target", "msp430", "--out", out}, "needs --port"},
		{[]string{"calibrate", "--board", "nosuch", "--out", out}, "unknown board"},
	} {
		if _, err := run(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}
