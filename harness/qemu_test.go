package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batteryless/harness/harness/testenv"

	"github.com/batteryless/harness/harness/firmwaretest/fwbuild"
	"github.com/batteryless/harness/reports"
)

// noPlanFirmware builds the STM32 firmware (fwbuild: once, shared by the
// test binaries) and returns firmware-noplan.elf, or skips when a tool is
// missing.
func noPlanFirmware(t *testing.T) string {
	t.Helper()
	testenv.NeedTool(t, "qemu-system-arm", "qemu-system-arm")
	return filepath.Join(fwbuild.Build(t, "stm32f4"), "stm32f4", "firmware-noplan.elf")
}

// TestReplayQEMUBundledTrace is the CI check through the command: `harness
// replay` of the bundled trace with the bundled model on qemu-stm32 (its
// calibrated profile, the tile scheduler) completes its inferences over at
// least 3 power cycles each, every output verified, no QEMU left; the JSON
// has every top-level key the simulated board's has, with real values, and
// the prediction object, in which the simulated board with the same profile
// predicts the power cycles within 10 % and every task's cycles within 10 %.
func TestReplayQEMUBundledTrace(t *testing.T) {
	elf := noPlanFirmware(t)
	log := filepath.Join(t.TempDir(), "qemu.jsonl")
	out, err := run(t, "replay", "rf-office", "--board", "qemu-stm32", "--elf", elf, "--scheduler", "tile", "--inferences", "3", "--loop", "--json", "--log", log)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var rep struct {
		Board       string  `json:"board"`
		Inferences  int     `json:"inferences"`
		Verified    int     `json:"verified"`
		Mismatches  int     `json:"mismatches"`
		PowerCycles int     `json:"power_cycles"`
		LowerBoundS float64 `json:"lower_bound_s"`
		RefWallS    float64 `json:"reference_wall_s"`
		Energy      struct {
			Reboots float64 `json:"reboots"`
			NVM     float64 `json:"nvm"`
			Commits float64 `json:"commits"`
		} `json:"energy_j"`
		Prediction struct {
			PowerCycles             int     `json:"power_cycles"`
			PowerCyclesError        float64 `json:"power_cycles_error"`
			TaskCyclesMaxError      float64 `json:"task_cycles_max_error"`
			PowerCyclesPerInference []int   `json:"power_cycles_per_inference"`
			Measured                []int   `json:"measured_power_cycles_per_inference"`
			Tasks                   []any   `json:"tasks"`
		} `json:"prediction"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	p := rep.Prediction
	t.Logf("emulated: %d inferences, %d verified, power cycles %d %v; simulated: %d %v (error %.1f %%); task cycles largest error %.1f %%",
		rep.Inferences, rep.Verified, rep.PowerCycles, p.Measured, p.PowerCycles, p.PowerCyclesPerInference,
		100*p.PowerCyclesError, 100*p.TaskCyclesMaxError)
	if rep.Board != "qemu-stm32" || rep.Inferences != 3 || rep.Verified != 3 || rep.Mismatches != 0 {
		t.Fatalf("board %s inferences %d verified %d mismatches %d, want qemu-stm32 3 3 0", rep.Board, rep.Inferences, rep.Verified, rep.Mismatches)
	}
	for i, c := range p.Measured {
		if c < 3 {
			t.Errorf("inference %d: %d power cycles, want >= 3", i, c)
		}
	}
	if rep.LowerBoundS <= 0 || rep.RefWallS <= 0 || rep.Energy.Reboots <= 0 || rep.Energy.NVM <= 0 || rep.Energy.Commits <= 0 {
		t.Errorf("figures that must be real read 0: lower bound %g, reference wall %g, energy %+v", rep.LowerBoundS, rep.RefWallS, rep.Energy)
	}
	if e := p.PowerCyclesError; e > 0.10 || e < -0.10 {
		t.Errorf("simulated power cycles %d vs emulated %d: %.1f %%, want within 10 %%", p.PowerCycles, rep.PowerCycles, 100*e)
	}
	if e := p.TaskCyclesMaxError; e > 0.10 || len(p.Tasks) == 0 {
		t.Errorf("a task's predicted cycles are %.1f %% off the measured ones (%d tasks compared), want within 10 %%", 100*e, len(p.Tasks))
	}
	// The same top-level keys as the simulated board's.
	simOut, err := run(t, "replay", "rf-office", "--scheduler", "tile", "--profile", "qemu-stm32", "--inferences", "3", "--loop", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var simKeys, qemuKeys map[string]any
	json.Unmarshal([]byte(simOut), &simKeys)
	json.Unmarshal([]byte(out), &qemuKeys)
	for k := range simKeys {
		if _, ok := qemuKeys[k]; !ok && k != "baseline" {
			t.Errorf("qemu-stm32's JSON lacks the simulated board's key %q", k)
		}
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lg, err := reports.ReadFullLog(f, log)
	if err != nil || len(lg.Inferences) != 3 || len(lg.Cycles) != rep.PowerCycles || lg.Header == nil || lg.Header.Board != "qemu-stm32" || lg.End == nil {
		t.Errorf("log: %d cycle records, %d inference records, header %+v, end %+v, err %v", len(lg.Cycles), len(lg.Inferences), lg.Header, lg.End, err)
	}
	if out, err := exec.Command("pgrep", "-P", strconv.Itoa(os.Getpid()), "-f", "qemu-system-arm.*"+elf).Output(); err == nil && len(out) > 0 {
		t.Errorf("QEMU still running: %s", out)
	}
}

// TestInjectQEMU: brown-outs inside every task on the real firmware leave
// its output bit-exact, for tile and for the plans that read their supply
// (jit's snapshots, inas+rule's early commits and sleeps, under a supply
// that droops): on qemu-stm32 and on the simulated board.
func TestInjectQEMU(t *testing.T) {
	elf := noPlanFirmware(t)
	out, err := run(t, "inject", "--board", "qemu-stm32", "--elf", elf, "--scheduler", "tile,jit,inas+rule", "--random", "5", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var rep struct {
		Results []struct {
			Scheduler string `json:"scheduler"`
			BrownOuts int    `json:"brownouts"`
			Landed    int    `json:"inside_brownouts"`
			Sleeps    int    `json:"sleeps"`
			Verified  bool   `json:"verified"`
		} `json:"results"`
		Failed int `json:"failed"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(rep.Results) != 3 || rep.Failed != 0 {
		t.Fatalf("results %+v", rep)
	}
	for _, r := range rep.Results {
		t.Logf("%s: %d brown-outs, %d inside a task, %d sleeps, verified %v", r.Scheduler, r.BrownOuts, r.Landed, r.Sleeps, r.Verified)
		if !r.Verified || r.Landed == 0 || r.Scheduler != "tile" && r.Sleeps == 0 {
			t.Errorf("%s: verified %v, %d brown-outs inside a task, %d sleeps", r.Scheduler, r.Verified, r.Landed, r.Sleeps)
		}
	}
	// The same on the simulated board.
	out, err = run(t, "inject", "--scheduler", "jit,inas+rule", "--random", "200", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	rep.Results = nil
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		t.Logf("sim %s: %d brown-outs, %d inside a task, %d sleeps, verified %v", r.Scheduler, r.BrownOuts, r.Landed, r.Sleeps, r.Verified)
		if !r.Verified || r.Landed == 0 || r.Sleeps == 0 {
			t.Errorf("sim %s: verified %v, %d inside, %d sleeps", r.Scheduler, r.Verified, r.Landed, r.Sleeps)
		}
	}
}

// TestReplayQEMUInterrupted runs the harness program on the emulated board
// and stops it from outside: Ctrl-C (SIGINT) ends the run with an error and
// QEMU closed; SIGKILL, which no handler sees, takes QEMU down with it (the
// kernel's parent-death signal). No QEMU is left either way.
func TestReplayQEMUInterrupted(t *testing.T) {
	elf := noPlanFirmware(t)
	dir := t.TempDir()
	// A path of this test's own, to find its QEMU among others'.
	own := filepath.Join(dir, "fw-interrupted.elf")
	b, err := os.ReadFile(elf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(own, b, 0o644); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "harness")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	qemuRunning := func() bool {
		out, err := exec.Command("pgrep", "-f", "qemu-system-arm.*"+own).Output()
		return err == nil && len(out) > 0
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		cmd := exec.Command(exe, "replay", "rf-office", "--board", "qemu-stm32", "--elf", own, "--scheduler", "tile", "--inferences", "1000", "--loop")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for !qemuRunning() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !qemuRunning() {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%v: QEMU never started: %s", sig, out.String())
		}
		time.Sleep(time.Second) // into the run
		cmd.Process.Signal(sig)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%v: the harness did not exit within 15 s: %s", sig, out.String())
		}
		if err == nil {
			t.Errorf("%v: the interrupted run exited 0", sig)
		}
		if ee, ok := err.(*exec.ExitError); sig == syscall.SIGINT && (!ok || ee.ExitCode() != exitInterrupted) {
			t.Errorf("SIGINT: %v, want exit %d", err, exitInterrupted)
		}
		for deadline := time.Now().Add(5 * time.Second); qemuRunning() && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if qemuRunning() {
			exec.Command("pkill", "-f", "qemu-system-arm.*"+own).Run()
			t.Errorf("%v: QEMU still running after the harness exited", sig)
		}
		t.Logf("%v: exit %v; %s", sig, err, strings.TrimSpace(out.String()))
	}
}

// TestReplayQEMUAdaptive: the harness's own scheduler, whose run-time rule
// reads the supply, runs in the real C runtime on the emulated board (the
// firmware reads the modelled capacitor's voltage at its stops): every
// output verified, the rule sleeps, and the latency is the simulated
// board's for the same plan within 5 %; with KWS too when the shared data
// is there.
func TestReplayQEMUAdaptive(t *testing.T) {
	elf := noPlanFirmware(t)
	cases := [][]string{{"rf-office"}}
	if _, err := os.Stat(sharedData); err == nil {
		cases = append(cases, []string{filepath.Join(sharedData, "traces/react/rf-cart.trace"),
			"--model", filepath.Join(sharedData, "models/kws_dscnn_int8.tflite"), "--input", filepath.Join(sharedData, "inputs/kws_ref_input0_int8.bin")})
	} else if testenv.Strict() {
		testenv.SharedData(t, sharedData)
	}
	for _, c := range cases {
		args := append([]string{"replay"}, c...)
		args = append(args, "--board", "qemu-stm32", "--elf", elf, "--inferences", "2", "--loop", "--json")
		out, err := run(t, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
		var rep struct {
			Scheduler  string `json:"scheduler"`
			Inferences int    `json:"inferences"`
			Verified   int    `json:"verified"`
			Sleeps     int    `json:"sleeps"`
			Latency    struct {
				Mean float64 `json:"mean"`
			} `json:"latency_s"`
			Prediction struct {
				LatencyError float64 `json:"latency_error"`
				Latency      struct {
					Mean float64 `json:"mean"`
				} `json:"latency_s"`
			} `json:"prediction"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d verified, %d sleeps, latency %.3f s, predicted %.3f s (%+.1f %%)", c[0], rep.Verified, rep.Sleeps,
			rep.Latency.Mean, rep.Prediction.Latency.Mean, 100*rep.Prediction.LatencyError)
		if rep.Scheduler != "adaptive" || rep.Inferences != 2 || rep.Verified != 2 || rep.Sleeps == 0 {
			t.Errorf("%s: %+v; want adaptive, 2 verified, sleeps", c[0], rep)
		}
		if e := rep.Prediction.LatencyError; e > 0.05 || e < -0.05 {
			t.Errorf("%s: latency %.3f s on qemu-stm32, %.3f s predicted: %+.1f %%, want within 5 %%", c[0], rep.Latency.Mean, rep.Prediction.Latency.Mean, 100*e)
		}
	}
}
