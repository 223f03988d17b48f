package emulated

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batteryless/harness/harness/testenv"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/qemu"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/firmwaretest/fwbuild"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/reports"
	"github.com/batteryless/harness/traces"
)

// emuProfile is the device profile of the emulated board.
var emuProfile = "qemu-stm32"

func init() {
	if p := os.Getenv("IH_EMU_PROFILE"); p != "" {
		emuProfile = p
	}
}

// firmware builds the STM32 firmware and its volatile-progress variant
// (fwbuild: once, shared by the test binaries) and returns the build folder,
// or skips when a tool is missing.
func firmware(t *testing.T) string {
	t.Helper()
	testenv.NeedTool(t, "qemu-system-arm", "qemu-system-arm")
	return fwbuild.Build(t, "stm32f4", "stm32f4-broken")
}

// deployment is the bundled model scheduled for prof, its image and input.
type deployment struct {
	m     *model.Model
	p     *plan.Plan
	image []byte
	input []byte
	want  []byte
}

func deploy(t *testing.T, prof *profiles.Profile, scheduler string) deployment {
	t.Helper()
	m, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sched.Get(scheduler)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Schedule(m, prof, sched.Options{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := plan.EncodeImage(m, p)
	if err != nil {
		t.Fatal(err)
	}
	input := bundled.Input()
	want, err := refexec.New(m).Run(input)
	if err != nil {
		t.Fatal(err)
	}
	return deployment{m, p, img, input, want}
}

// setup is what a run of the bundled model needs: the firmware ELF named
// elf from the build, the emulated board's profile, and the model scheduled
// by tile for it.
func setup(t *testing.T, elf string) (string, *profiles.Profile, deployment) {
	t.Helper()
	dir := firmware(t)
	prof, err := profiles.Load(emuProfile)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "stm32f4", elf), prof, deploy(t, prof, "tile")
}

// rfOffice is the bundled rf-office trace, looped, as a harvest function.
func rfOffice(t *testing.T) func(float64) float64 {
	t.Helper()
	r, err := traces.OpenBundled("rf-office")
	if err != nil {
		t.Fatal(err)
	}
	harvest, _, err := TraceHarvest(r, true)
	if err != nil {
		t.Fatal(err)
	}
	return harvest
}

// noQEMULeft fails t if a QEMU this test process started still runs.
func noQEMULeft(t *testing.T, elf string) {
	t.Helper()
	if out, err := exec.Command("pgrep", "-P", strconv.Itoa(os.Getpid()), "-f", "qemu-system-arm.*"+elf).Output(); err == nil && len(out) > 0 {
		t.Errorf("QEMU still running: %s", out)
	}
}

func logf(t *testing.T) func(string, ...any) {
	start := time.Now()
	return func(f string, a ...any) {
		if testing.Verbose() && os.Getenv("IH_EMU_LOG") != "" {
			t.Logf("%8.3fs "+f, append([]any{time.Since(start).Seconds()}, a...)...)
		}
	}
}

// TestEmulatedReplayBundledTrace is the CI check: the bundled model,
// scheduled by the harness for the qemu-stm32 profile and loaded into the
// firmware, replays the bundled rf-office trace on the emulated board; every
// inference completes over at least 3 power cycles, every output is the
// reference executor's, the per-cycle log has the simulated board's schema,
// and no QEMU is left.
func TestEmulatedReplayBundledTrace(t *testing.T) {
	elf, prof, d := setup(t, "firmware-noplan.elf")
	harvest := rfOffice(t)
	var log bytes.Buffer
	lw := reports.NewLogWriter(&log)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{
		ELF: elf, Image: d.image, Tasks: len(d.p.Tasks), Profile: prof,
		Input: d.input, Want: d.want, Harvest: harvest, Inferences: 3, Log: lw, Logf: logf(t),
	})
	if err != nil {
		t.Fatalf("Run: %v (partial %+v)", err, res)
	}
	t.Logf("time scale %.3f (wall s per simulated s); cycles per inference %v; inferences %d verified %d; power cycles %d commits %d tasks %d (re-executed %d) boots %d hangs %d; latency mean %.3f s; sim %.2f s wall %.2f s",
		res.TimeScale, res.CyclesPerInference, res.Inferences, res.Verified, res.PowerCycles, res.Commits, res.TasksRun, res.ReexecutedTasks, res.Boots, res.Hangs, res.Latency.Mean, res.SimTime, res.WallS)
	if res.Inferences != 3 || res.Verified != 3 || res.Mismatches != 0 {
		t.Fatalf("inferences %d verified %d mismatches %d, want 3 3 0", res.Inferences, res.Verified, res.Mismatches)
	}
	for i, c := range res.CyclesPerInference {
		if c < 3 {
			t.Errorf("inference %d ran over %d power cycles, want >= 3", i, c)
		}
	}
	cycles, infs, err := reports.ReadLog(&log, "log")
	if err != nil {
		t.Fatal(err)
	}
	if len(infs) != 3 || len(cycles) < res.PowerCycles {
		t.Errorf("log: %d inference records and %d cycle records, want 3 and >= %d", len(infs), len(cycles), res.PowerCycles)
	}
	tasks := 0
	for _, c := range cycles {
		tasks += c.Tasks
		if c.End < c.Start || c.UsedJ <= 0 || (c.Reason != "brownout" && c.Reason != "end") {
			t.Errorf("cycle record %+v", c)
		}
	}
	if tasks != res.TasksRun {
		t.Errorf("cycle records count %d tasks, the run %d", tasks, res.TasksRun)
	}
	noQEMULeft(t, elf)
}

// TestEmulatedQEMUKilled kills QEMU from outside in the middle of a run:
// the run must end at once with an error that says QEMU died, not hang.
func TestEmulatedQEMUKilled(t *testing.T) {
	dir := firmware(t)
	elf := filepath.Join(dir, "stm32f4", "firmware-noplan.elf")
	prof, err := profiles.Load("stm32f405")
	if err != nil {
		t.Fatal(err)
	}
	d := deploy(t, prof, "tile")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var killedAt time.Time
	_, err = Run(ctx, Config{
		ELF: elf, Image: d.image, Tasks: len(d.p.Tasks), Profile: prof,
		Input: d.input, Want: d.want, Harvest: func(float64) float64 { return 10e-3 }, Inferences: 50,
		QEMUStarted: func(m *qemu.Machine) {
			time.AfterFunc(1500*time.Millisecond, func() {
				killedAt = time.Now()
				syscall.Kill(m.PID(), syscall.SIGKILL)
			})
		},
		Logf: logf(t),
	})
	if err == nil {
		t.Fatal("Run succeeded although QEMU was killed")
	}
	took := time.Since(killedAt)
	t.Logf("error %v, %v after the kill", err, took)
	if !strings.Contains(err.Error(), "died") {
		t.Errorf("error does not say QEMU died: %v", err)
	}
	if took > 10*time.Second {
		t.Errorf("Run took %v to notice", took)
	}
	noQEMULeft(t, elf)
}

// TestEmulatedChargeTime runs the wall-clock power model (Charge: ChargeTime,
// the time scale measured by the warm-up and following QEMU's speed): its
// power cycles depend on the host's speed, so only what must hold anyway is
// asserted: the inferences verify over power cycles, and a record per cycle.
func TestEmulatedChargeTime(t *testing.T) {
	elf, prof, d := setup(t, "firmware-noplan.elf")
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, Config{Charge: ChargeTime,
		ELF: elf, Image: d.image, Tasks: len(d.p.Tasks), Profile: prof,
		Input: d.input, Want: d.want, Harvest: func(float64) float64 { return 10e-3 }, Inferences: 2,
		Log: reports.NewLogWriter(&log), Logf: logf(t)})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	t.Logf("time scale %.3f after %d samples; cycles per inference %v; verified %d", res.TimeScale, res.ScaleSamples, res.CyclesPerInference, res.Verified)
	if res.Verified != 2 || res.Mismatches != 0 || res.PowerCycles < 1 {
		t.Errorf("verified %d mismatches %d power cycles %d", res.Verified, res.Mismatches, res.PowerCycles)
	}
	cycles, _, err := reports.ReadLog(&log, "log")
	if err != nil || len(cycles) < res.PowerCycles {
		t.Errorf("%d cycle records for %d power cycles (%v)", len(cycles), res.PowerCycles, err)
	}
	noQEMULeft(t, elf)
}
