package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/batteryless/harness/harness/firmwaretest/fwbuild"
	"github.com/batteryless/harness/reports"
)

// noPlanFirmware builds the STM32 firmware (fwbuild: once, shared by the
// test binaries) and returns firmware-noplan.elf, or skips when a tool is
// missing.
func noPlanFirmware(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-arm"); err != nil {
		t.Skip("qemu-system-arm is not installed (Debian: qemu-system-arm)")
	}
	return filepath.Join(fwbuild.Build(t, "stm32f4"), "stm32f4", "firmware-noplan.elf")
}

// TestReplayQEMUBundledTrace is the CI check through the command:
// `harness replay` of the bundled trace with the bundled model on qemu-stm32
// (its calibrated profile, the tile scheduler) completes its inferences over
// at least 3 power cycles each, every output verified, no QEMU left; and the
// simulated board with the same profile predicts the power cycles within 10%
// and every task's cycles within 10%.
func TestReplayQEMUBundledTrace(t *testing.T) {
	elf := noPlanFirmware(t)
	log := filepath.Join(t.TempDir(), "qemu.jsonl")
	out, err := run(t, "replay", "rf-office", "--board", "qemu-stm32", "--elf", elf, "--inferences", "3", "--loop", "--json", "--log", log)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var rep struct {
		Inferences         int   `json:"inferences"`
		Verified           int   `json:"verified"`
		Mismatches         int   `json:"mismatches"`
		PowerCycles        int   `json:"power_cycles"`
		CyclesPerInference []int `json:"cycles_per_inference"`
		Simulated          struct {
			PowerCycles        int     `json:"power_cycles"`
			PowerCyclesError   float64 `json:"power_cycles_error"`
			TaskCyclesMaxError float64 `json:"task_cycles_max_error"`
			CyclesPerInference []int   `json:"cycles_per_inference"`
		} `json:"simulated"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("emulated: %d inferences, %d verified, power cycles %d %v; simulated: %d %v (error %.1f %%); task cycles largest error %.1f %%",
		rep.Inferences, rep.Verified, rep.PowerCycles, rep.CyclesPerInference, rep.Simulated.PowerCycles, rep.Simulated.CyclesPerInference,
		100*rep.Simulated.PowerCyclesError, 100*rep.Simulated.TaskCyclesMaxError)
	if rep.Inferences != 3 || rep.Verified != 3 || rep.Mismatches != 0 {
		t.Fatalf("inferences %d verified %d mismatches %d, want 3 3 0", rep.Inferences, rep.Verified, rep.Mismatches)
	}
	for i, c := range rep.CyclesPerInference {
		if c < 3 {
			t.Errorf("inference %d: %d power cycles, want >= 3", i, c)
		}
	}
	if e := rep.Simulated.PowerCyclesError; e > 0.10 || e < -0.10 {
		t.Errorf("simulated power cycles %d vs emulated %d: %.1f %%, want within 10 %%", rep.Simulated.PowerCycles, rep.PowerCycles, 100*e)
	}
	if e := rep.Simulated.TaskCyclesMaxError; e > 0.10 {
		t.Errorf("a task's predicted cycles are %.1f %% off the measured ones, want within 10 %%", 100*e)
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cycles, infs, err := reports.ReadLog(f, log)
	if err != nil || len(infs) != 3 || len(cycles) < rep.PowerCycles {
		t.Errorf("log: %d cycle records, %d inference records, err %v", len(cycles), len(infs), err)
	}
	if out, err := exec.Command("pgrep", "-P", strconv.Itoa(os.Getpid()), "-f", "qemu-system-arm.*"+elf).Output(); err == nil && len(out) > 0 {
		t.Errorf("QEMU still running: %s", out)
	}
}

// TestInjectQEMU: brown-outs inside every task of the tile plan on the real
// firmware leave its output bit-exact.
func TestInjectQEMU(t *testing.T) {
	elf := noPlanFirmware(t)
	out, err := run(t, "inject", "--board", "qemu-stm32", "--elf", elf, "--scheduler", "tile,layer", "--random", "5", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var rep struct {
		Results []struct {
			Scheduler string `json:"scheduler"`
			Cuts      []any  `json:"cuts"`
			Landed    int    `json:"landed"`
			Verified  bool   `json:"verified"`
		} `json:"results"`
		Failed int `json:"failed"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(rep.Results) != 2 || rep.Failed != 0 {
		t.Fatalf("results %+v", rep)
	}
	for _, r := range rep.Results {
		t.Logf("%s: %d brown-outs, %d inside a task, verified %v", r.Scheduler, len(r.Cuts), r.Landed, r.Verified)
		if !r.Verified || r.Landed == 0 {
			t.Errorf("%s: verified %v, %d brown-outs inside a task", r.Scheduler, r.Verified, r.Landed)
		}
	}
}
