package main

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batteryless/harness/boards/bench/emubench"
	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/harness/testenv"
	"github.com/batteryless/harness/traces"
)

// emuBench starts an emulated bench (an N6705C's output powering the STM32
// firmware in QEMU) with the bundled model's plan for qemu-stm32 with
// scheduler on the trace, as replay makes it.
func emuBench(t *testing.T, trace, scheduler, dialect string, rail emubench.Rail) *emubench.Bench {
	t.Helper()
	testenv.NeedTool(t, "gcc", "gcc")
	elf := noPlanFirmware(t)
	prof, err := profiles.Load("qemu-stm32")
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		t.Fatal(err)
	}
	r, err := traces.Open(trace, traces.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stats, err := traces.Summarize(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := sched.Get(scheduler)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sc.Schedule(m, prof, sched.Options{ModelBytes: bundled.Model(), Trace: &stats})
	if err != nil {
		t.Fatal(err)
	}
	img, err := plan.EncodeImage(m, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b, err := emubench.Start(ctx, emubench.Config{Dialect: dialect, ELF: elf, Image: img, Profile: prof, Rail: rail})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// benchReport is what the tests read of replay --json on a bench.
type benchReport struct {
	Inferences  int `json:"inferences"`
	Verified    int `json:"verified"`
	PowerCycles int `json:"power_cycles"`
	Timing      *struct {
		P99      float64 `json:"p99"`
		Edges    int     `json:"edges"`
		Evidence *struct {
			P50 float64 `json:"p50"`
			P99 float64 `json:"p99"`
		} `json:"evidence"`
	} `json:"timing_error_s"`
	Prediction *struct {
		PowerCycles      int     `json:"power_cycles"`
		PowerCyclesError float64 `json:"power_cycles_error"`
	} `json:"prediction"`
	Bench *struct {
		Mode      string `json:"mode"`
		Setpoints int    `json:"setpoints"`
	} `json:"bench"`
}

// TestReplayBenchGate: harness replay --board serial on the emulated bench
// in gate mode, REACT rf-cart and the bundled model: two inferences
// verified, the power cycles within 10 % of the simulated board's, every
// edge's command within a millisecond of the model's instant (p99), the
// output off at the end.
func TestReplayBenchGate(t *testing.T) {
	testenv.RealTime(t)
	needShared(t)
	trace := filepath.Join(sharedData, "traces/react/rf-cart.trace")
	b := emuBench(t, trace, "tile", "keysight-n67", emubench.Direct)
	out, err := run(t, "replay", trace, "--board", "serial", "--port", b.Port(), "--supply", b.URL(), "--profile", "qemu-stm32",
		"--scheduler", "tile", "--inferences", "2", "--loop", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	checkBenchReport(t, rep, "gate")
	if b.Instrument().State(1).On {
		t.Error("the output is on after the replay")
	}
}

func checkBenchReport(t *testing.T, rep benchReport, mode string) {
	t.Helper()
	if rep.Inferences != 2 || rep.Verified != 2 {
		t.Errorf("%d inferences, %d verified: want 2 and 2", rep.Inferences, rep.Verified)
	}
	if rep.Prediction == nil || math.Abs(rep.Prediction.PowerCyclesError) > 0.10 {
		t.Errorf("power cycles %d against the prediction %+v: want within 10 %%", rep.PowerCycles, rep.Prediction)
	}
	if rep.Timing == nil || rep.Timing.Edges == 0 || rep.Timing.P99 > 0.001 {
		t.Errorf("timing_error_s %+v: want edges, p99 at most 1 ms", rep.Timing)
	} else if ev := rep.Timing.Evidence; ev != nil {
		t.Logf("timing: commands p99 %.3f ms; BOOTs p50 %.3f ms, p99 %.3f ms", rep.Timing.P99*1e3, ev.P50*1e3, ev.P99*1e3)
	}
	if rep.Bench == nil || rep.Bench.Mode != mode {
		t.Errorf("bench %+v: want mode %s", rep.Bench, mode)
	}
}

// TestReplayBenchConfig: the same run from a bench file that reads like a
// labgrid environment (resources, drivers, strategy, profile); an unknown
// key in it is refused naming the file and line.
func TestReplayBenchConfig(t *testing.T) {
	testenv.RealTime(t)
	needShared(t)
	trace := filepath.Join(sharedData, "traces/react/rf-cart.trace")
	b := emuBench(t, trace, "tile", "keysight-n67", emubench.Direct)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bench.yaml")
	write := func(body string) {
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`board: serial
profile: qemu-stm32
scheduler: tile
resources:
  port: ` + b.Port() + `
  supply: "` + b.URL() + `"
drivers:
  serial: {baud: 115200}
  supply: {timeout: 2s, log: ` + filepath.Join(dir, "supply.log") + `}
strategy:
  power: gate
  off-time: min
  min-off: 50ms
`)
	out, err := run(t, "replay", trace, "--config", cfg, "--inferences", "2", "--loop", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	checkBenchReport(t, rep, "gate")
	if log, err := os.ReadFile(filepath.Join(dir, "supply.log")); err != nil || !strings.Contains(string(log), "OUTP") {
		t.Errorf("the supply's transcript (drivers.supply.log) has no OUTP command: %v", err)
	}
	write("resources:\n  port: /dev/null\n  suply: tcp://x\n")
	_, err = run(t, "replay", trace, "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), cfg+":3") || !strings.Contains(err.Error(), `did you mean "supply"`) {
		t.Errorf("a misspelt key: %v, want the file, line 3 and the hint", err)
	}
}

// TestReplayBenchSIGKILL: SIGKILL of the built harness replay mid-run
// leaves the emulated supply's output off within a second: the run's
// deadman switches it off over its own connection.
func TestReplayBenchSIGKILL(t *testing.T) {
	testenv.RealTime(t)
	needShared(t)
	trace := filepath.Join(sharedData, "traces/react/rf-cart.trace")
	b := emuBench(t, trace, "tile", "keysight-e36", emubench.Direct)
	cmd := exec.Command(harnessExe(t), "replay", trace, "--board", "serial", "--port", b.Port(), "--supply", b.URL(),
		"--profile", "qemu-stm32", "--scheduler", "tile", "--inferences", "20", "--loop", "--quiet")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Mid-run: past the calibration and the warm-up, with the output on.
	deadline := time.Now().Add(60 * time.Second)
	for b.Stats().PowerOns < 12 || !b.Instrument().State(1).On {
		if time.Now().After(deadline) {
			t.Fatalf("the run did not get going within a minute (%+v): %s", b.Stats(), stderr.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	killed := time.Now()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for b.Instrument().State(1).On {
		if time.Since(killed) > time.Second {
			t.Fatalf("the output is still on a second after SIGKILL: %s", stderr.String())
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("the output went off %v after SIGKILL", time.Since(killed).Round(time.Millisecond))
	cmd.Wait()
}

// TestSupplyServeBench: the whole bench path of the built program, as the
// README runs it: harness supply serve --board qemu-stm32 prints the SCPI
// address and the board's port on one JSON line; harness replay --board
// serial on them verifies two inferences; serve ends with SIGTERM (exit
// 130, as every command a signal ends).
func TestSupplyServeBench(t *testing.T) {
	testenv.RealTime(t)
	needShared(t)
	testenv.NeedTool(t, "gcc", "gcc")
	elf := noPlanFirmware(t)
	trace := filepath.Join(sharedData, "traces/react/rf-cart.trace")
	serve := exec.Command(harnessExe(t), "supply", "serve", "--dialect", "keysight-n67", "--board", "qemu-stm32", "--elf", elf,
		"--profile", "qemu-stm32", "--scheduler", "tile", "--trace", trace)
	out, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var serveErr strings.Builder
	serve.Stderr = &serveErr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer serve.Process.Kill()
	var line struct {
		SCPI string `json:"scpi"`
		Port string `json:"port"`
	}
	if err := json.NewDecoder(out).Decode(&line); err != nil || line.SCPI == "" || !strings.HasPrefix(line.Port, "/dev/") {
		t.Fatalf("serve's line %+v: %v: %s", line, err, serveErr.String())
	}
	code, stdout, stderr := runExe(t, nil, "replay", trace, "--board", "serial", "--port", line.Port, "--supply", "tcp://"+line.SCPI,
		"--profile", "qemu-stm32", "--scheduler", "tile", "--inferences", "2", "--loop", "--json")
	if code != 0 {
		t.Fatalf("replay exit %d: %s", code, stderr)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	checkBenchReport(t, rep, "gate")
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var xe *exec.ExitError
	if err := serve.Wait(); !errors.As(err, &xe) || xe.ExitCode() != exitInterrupted {
		t.Fatalf("serve after SIGTERM: %v, want exit %d: %s", err, exitInterrupted, serveErr.String())
	}
}
