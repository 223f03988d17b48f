package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batteryless/harness/boards/profiles"
)

func TestCalibrateCommandErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "p.yaml")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"calibrate", "--board", "esp32", "--out", out}, `unknown board "esp32" (known: qemu-stm32, stm32, msp430)`},
		{[]string{"calibrate", "--board", "qemu-stm32"}, "--out is required"},
		{[]string{"calibrate", "--board", "qemu-stm32", "--out", out, "--port", "/dev/ttyUSB0"}, "runs on QEMU: no --port"},
		{[]string{"calibrate", "--board", "stm32", "--out", out}, "--board stm32 needs --port"},
		{[]string{"calibrate", "--board", "qemu-stm32", "--out", out, "--elf", filepath.Join(t.TempDir(), "none.elf")}, "--elf: "},
		{[]string{"calibrate", "--board", "msp430", "--out", out, "--base", "nope"}, `profile "nope"`},
	} {
		_, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed calibration wrote the profile")
	}
}

// `harness calibrate --board qemu-stm32` end to end: the profile it writes
// loads, and the bundled model's tasks are predicted within 10 %.
func TestCalibrateCommandQEMU(t *testing.T) {
	elf := noPlanFirmware(t)
	prof := filepath.Join(t.TempDir(), "qemu-stm32.yaml")
	out, err := run(t, "calibrate", "--board", "qemu-stm32", "--elf", elf, "--out", prof, "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var rep struct {
		Calibration struct {
			Params []struct {
				Path  string  `json:"path"`
				Value float64 `json:"value"`
			} `json:"params"`
			WallS float64 `json:"wall_s"`
		} `json:"calibration"`
		Validation struct {
			Passed   bool    `json:"passed"`
			MaxError float64 `json:"max_error"`
			Tasks    []struct {
				Predicted float64 `json:"predicted_cycles"`
				Measured  float64 `json:"measured_cycles"`
				Error     float64 `json:"error"`
			} `json:"tasks"`
		} `json:"validation"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	v := rep.Validation
	if !v.Passed || len(v.Tasks) == 0 || len(rep.Calibration.Params) == 0 {
		t.Fatalf("validation %+v", v)
	}
	for i, task := range v.Tasks {
		if math.Abs(task.Error) > 0.1 || math.Abs(task.Predicted/task.Measured-1-task.Error) > 1e-9 {
			t.Errorf("task %d: %+v", i, task)
		}
	}
	p, err := profiles.Load(prof)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "qemu-stm32" || p.Kernel("conv_2d") == nil || p.LayerScan == nil {
		t.Errorf("profile %s: kernels %v", p.Name, p.Kernels)
	}
	t.Logf("calibration %.1f s, validation max error %.1f %% over %d tasks", rep.Calibration.WallS, 100*v.MaxError, len(v.Tasks))
}
