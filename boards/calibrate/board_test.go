package calibrate

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batteryless/harness/harness/firmwaretest/fwbuild"
	"github.com/batteryless/harness/harness/testenv"

	"github.com/creack/pty"
	"golang.org/x/term"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/model"
)

const firmwareDir = "../../firmware"

// build makes target (fwbuild: once, shared by the test binaries) and
// returns the build folder, or skips when a tool is missing.
func build(t *testing.T, target string) string {
	t.Helper()
	return fwbuild.Build(t, target)
}

// TestQEMUCalibration is the check: after calibrating qemu-stm32,
// the bundled model scheduled with the calibrated profile runs on the
// emulated board, and every task's predicted cycles (the plan's, which the
// simulated board spends) are within 10 % of the measured ones.
func TestQEMUCalibration(t *testing.T) {
	testenv.NeedTool(t, "qemu-system-arm", "qemu-system-arm")
	dir := build(t, "stm32f4")
	elf := filepath.Join(dir, "stm32f4", "firmware-noplan.elf")
	board, err := LookupBoard("qemu-stm32")
	if err != nil {
		t.Fatal(err)
	}
	base := loadProfile(t, board.Base)
	bench := &QEMU{ELF: elf}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := Calibrate(ctx, Config{Board: board, Base: base, Bench: bench})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("calibrated in %.1f s: %d tasks of %d benchmarks, fit rms %.1f %% max %.1f %%; MAC kernels: kernel costs max %.1f %%, one shared vector MAC max %.1f %%; boot %.0f cycles",
		res.WallS, len(res.Samples), len(res.Runs), 100*res.Fit.RMSError, 100*res.Fit.MaxError, 100*res.Kernel.MaxError, 100*res.Generic.MaxError, res.BootCycles)
	if res.Boot.Boots != len(res.Runs) {
		t.Errorf("%d of %d runs reported their boot's cycles", res.Boot.Boots, len(res.Runs))
	}
	prof, err := profiles.Parse(res.YAML, "qemu-stm32.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Validate(ctx, bench, prof, m, bundled.Model(), bundled.Input(), DefaultLimit)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range v.Tasks {
		t.Logf("task %2d layer %d %-18s predicted %9.0f measured %9.0f %+5.1f %%", c.Task, c.Layer, c.Op, c.Predicted, c.Measured, 100*c.Error)
	}
	t.Logf("validation: max error %.1f %%, mean %.1f %%, %d of %d tasks within 10 %%", 100*v.MaxError, 100*v.MeanError, v.Within, len(v.Tasks))
	if !v.Passed {
		t.Errorf("%d of %d tasks predicted more than 10 %% off (largest %.1f %%)", len(v.Tasks)-v.Within, len(v.Tasks), 100*v.MaxError)
	}
}

// hostBoard runs the host board program (firmware/host/board.c: the
// firmware's wire loop, with a writable image area) with args on the master
// of a pseudo-terminal pair and returns the slave's path, the board's port.
// The program is killed when the test ends.
func hostBoard(t *testing.T, args ...string) string {
	t.Helper()
	dir := build(t, "host")
	master, slave, err := pty.Open()
	if err != nil {
		testenv.Missing(t, "no pseudo-terminals here: "+err.Error(), "")
	}
	if _, err := term.MakeRaw(int(slave.Fd())); err != nil {
		master.Close()
		slave.Close()
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(filepath.Join(dir, "host", "board"), args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = master, master, &stderr
	if err := cmd.Start(); err != nil {
		master.Close()
		slave.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		master.Close()
		slave.Close()
		if t.Failed() {
			t.Logf("board stderr:\n%s", stderr.String())
		}
	})
	return slave.Name()
}

// TestSerialBench runs a benchmark through the serial bench on the host
// board program: DEPLOY, SET_INPUT, START, every TASK_DONE, READ_OUTPUT;
// the output is the reference executor's.
func TestSerialBench(t *testing.T) {
	path := hostBoard(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sb, err := OpenSerial(ctx, "msp430", link.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	imgs, err := Suite(loadProfile(t, "msp430fr5994"))
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if img.Name != "small" && img.Name != "nvm" {
			continue
		}
		m, err := sb.Run(ctx, img)
		if err != nil {
			t.Fatalf("%s: %v", img.Name, err)
		}
		if err := check(img, m); err != nil {
			t.Errorf("%s: %v", img.Name, err)
		}
		t.Logf("%s: %d tasks over the serial bench, output %x...", img.Name, len(m.Tasks), m.Output[:min(8, len(m.Output))])
	}
}

// The serial bench refuses an image larger than the board's image area
// before sending any of it, in one line naming the port and both sizes.
func TestSerialBenchImageTooLarge(t *testing.T) {
	path := hostBoard(t, "--image-cap", "1024")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sb, err := OpenSerial(ctx, "msp430", link.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	imgs, err := Suite(loadProfile(t, "msp430fr5994"))
	if err != nil {
		t.Fatal(err)
	}
	img := imgs[0]
	_, err = sb.Run(ctx, img)
	want := fmt.Sprintf("%s: serialboard: deploy: the image is %d bytes, larger than the image area of board msp430fr5994, 1024 bytes", path, len(img.Bytes))
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %v, want %q", err, want)
	}
}
