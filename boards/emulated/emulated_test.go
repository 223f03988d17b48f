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

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/harness/replay"
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

// replayOn opens the emulated board on d and replays the bundled rf-office
// trace (looped) on it through the engine, as harness replay --board
// qemu-stm32 does.
func replayOn(t *testing.T, ctx context.Context, elf string, prof *profiles.Profile, d deployment, n int, opt Options, log *bytes.Buffer) (*replay.Result, error) {
	t.Helper()
	opt.ELF = elf
	if opt.Logf == nil {
		opt.Logf = logf(t)
	}
	b, err := Open(ctx, boards.Deployment{Model: d.m, Plan: d.p, Profile: prof, Image: d.image, Input: d.input, Want: d.want}, opt)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	cfg := replay.Config{Model: d.m, Plan: d.p, Profile: prof, Power: replay.PowerConfig(prof), Input: d.input, Reference: d.want,
		OpenTrace: func() (traces.Reader, error) { return traces.OpenBundled("rf-office") }, Loop: true, Inferences: n,
		Board: b, BoardName: "qemu-stm32"}
	if log != nil {
		cfg.Log = reports.NewLogWriter(log)
	}
	return replay.Run(ctx, cfg)
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

// TestEmulatedReplayBundledTrace: the bundled model, scheduled by the
// harness for the qemu-stm32 profile and loaded into the firmware, replays
// the bundled rf-office trace on the emulated board through the engine;
// every inference completes over at least 3 power cycles, every output is
// the reference executor's, the per-cycle log has the simulated board's
// schema and sums to the totals, and no QEMU is left.
func TestEmulatedReplayBundledTrace(t *testing.T) {
	elf, prof, d := setup(t, "firmware-noplan.elf")
	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := replayOn(t, ctx, elf, prof, d, 3, Options{}, &log)
	if err != nil {
		t.Fatalf("replay: %v (partial %+v)", err, res)
	}
	t.Logf("inferences %d verified %d; power cycles %d boots %d commits %d tasks %d (re-executed %d) hangs %d; latency mean %.3f s; sim %.2f s wall %.2f s",
		res.Inferences, res.Verified, res.PowerCycles, res.Boots, res.Commits, res.TasksRun, res.ReexecutedTasks, res.Hangs, res.Latency.Mean, res.SimTime, res.WallS)
	if res.Inferences != 3 || res.Verified != 3 || res.Mismatches != 0 {
		t.Fatalf("inferences %d verified %d mismatches %d, want 3 3 0", res.Inferences, res.Verified, res.Mismatches)
	}
	lg, err := reports.ReadFullLog(&log, "log")
	if err != nil {
		t.Fatal(err)
	}
	if len(lg.Inferences) != 3 || len(lg.Cycles) != res.PowerCycles {
		t.Errorf("log: %d inference records and %d cycle records, want 3 and %d", len(lg.Inferences), len(lg.Cycles), res.PowerCycles)
	}
	for i, in := range lg.Inferences {
		if in.PowerCycles < 3 || !in.Verified || in.Latency < in.LowerBound || in.LowerBound <= 0 {
			t.Errorf("inference %d: %+v; want >= 3 power cycles, verified, latency >= its lower bound > 0", i, in)
		}
	}
	tasks := 0
	for _, c := range lg.Cycles {
		tasks += c.Tasks
		if c.End < c.Start || c.UsedJ <= 0 || (c.Reason != "brownout" && c.Reason != "end") {
			t.Errorf("cycle record %+v", c)
		}
	}
	if tasks != res.TasksRun {
		t.Errorf("cycle records count %d tasks, the run %d", tasks, res.TasksRun)
	}
	if lg.End == nil || lg.End.Reason != "completed" {
		t.Errorf("end record %+v, want completed", lg.End)
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
	_, err = replayOn(t, ctx, elf, prof, d, 50, Options{QEMUStarted: func(m *qemu.Machine) {
		time.AfterFunc(1500*time.Millisecond, func() {
			killedAt = time.Now()
			syscall.Kill(m.PID(), syscall.SIGKILL)
		})
	}}, nil)
	if err == nil {
		t.Fatal("the replay succeeded although QEMU was killed")
	}
	took := time.Since(killedAt)
	t.Logf("error %v, %v after the kill", err, took)
	if !strings.Contains(err.Error(), "died") && !strings.Contains(err.Error(), "exited") {
		t.Errorf("error does not say QEMU died: %v", err)
	}
	if took > 10*time.Second {
		t.Errorf("the replay took %v to notice", took)
	}
	noQEMULeft(t, elf)
}
