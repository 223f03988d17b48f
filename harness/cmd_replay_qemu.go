package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/batteryless/harness/boards/emulated"
	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/power"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/replay"
	"github.com/batteryless/harness/reports"
	"github.com/batteryless/harness/traces"
)

// defaultNoPlanELF is where `make -C firmware stm32f4` puts the STM32
// firmware that takes its plan from QEMU's loader.
const defaultNoPlanELF = "firmware/build/stm32f4/firmware-noplan.elf"

// emulatedProfile is the emulated board's default profile: the one
// `harness calibrate --board qemu-stm32` measured.
const emulatedProfile = "qemu-stm32"

// findNoPlanELF returns --elf, or the default build if it exists.
func findNoPlanELF(s *settings) (string, error) {
	if e := s.str("elf"); e != "" {
		if _, err := os.Stat(e); err != nil {
			return "", fmt.Errorf("--elf: %w", err)
		}
		return e, nil
	}
	if _, err := os.Stat(defaultNoPlanELF); err != nil {
		return "", fmt.Errorf("no STM32 firmware at %s: build it with `make -C firmware stm32f4` (Debian packages gcc-arm-none-eabi libnewlib-arm-none-eabi) or give --elf", defaultNoPlanELF)
	}
	return defaultNoPlanELF, nil
}

// taskComparison is one task's cycles as the simulated board predicts them
// (the profile's costs) and as the emulated board measured them (its warm-up
// inference on bench power).
type taskComparison struct {
	Task      int     `json:"task"`
	Layer     int     `json:"layer"`
	Predicted float64 `json:"predicted_cycles"`
	Measured  uint32  `json:"measured_cycles"`
	Error     float64 `json:"error"` // (predicted - measured) / measured
}

// simComparison is what the simulated board predicts for the same trace,
// model, profile and scheduler.
type simComparison struct {
	PowerCycles        int            `json:"power_cycles"`
	CyclesPerInference []int          `json:"cycles_per_inference"`
	Inferences         int            `json:"inferences"`
	Latency            replay.Latency `json:"latency_s"`
	// PowerCyclesError is (simulated - emulated) / emulated power cycles.
	PowerCyclesError float64 `json:"power_cycles_error"`
	// TaskCyclesMaxError is the largest |error| of Tasks.
	TaskCyclesMaxError float64          `json:"task_cycles_max_error"`
	Tasks              []taskComparison `json:"tasks"`
}

type emulatedReport struct {
	Trace      string  `json:"trace"`
	Model      string  `json:"model"`
	Profile    string  `json:"profile"`
	Scheduler  string  `json:"scheduler"`
	Board      string  `json:"board"`
	Tasks      int     `json:"tasks"`
	PlanEnergy float64 `json:"plan_energy_j"`
	emulated.Result
	Sim *simComparison `json:"simulated,omitempty"`
}

// runReplayQEMU replays a trace on the STM32 firmware in QEMU
// (boards/emulated): the harness schedules the model for the profile, QEMU
// loads the plan image into the firmware's flash, the power model in real
// time drives QEMU's power, and every output is checked bit for bit. The
// simulated board then replays the same trace with the same plan, and both
// boards' power cycles and per-task cycles are printed side by side.
func runReplayQEMU(cmd *cobra.Command, s *settings, traceArg string) error {
	elf, err := findNoPlanELF(s)
	if err != nil {
		return err
	}
	r, err := prepareReplay(cmd, s, traceArg, emulatedProfile)
	if err != nil {
		return err
	}
	open, traceName := r.open, r.traceName
	m, input, prof, sc, p, pc := r.m, r.input, r.prof, r.sc, r.p, r.pc
	if p.RuntimeRule {
		return fmt.Errorf("scheduler %s uses the run-time voltage rule, which the STM32 port cannot sense in QEMU (no ADC model): pick another scheduler", sc.Name())
	}
	img, err := plan.EncodeImage(m, p)
	if err != nil {
		return err
	}
	want, err := refexec.New(m).Run(input)
	if err != nil {
		return err
	}
	tr, err := open()
	if err != nil {
		return err
	}
	loop := s.boolean("loop")
	harvest, end, err := emulated.TraceHarvest(tr, loop)
	if c, ok := tr.(interface{ Close() error }); ok {
		c.Close()
	}
	if err != nil {
		return err
	}
	n := s.integer("inferences")
	if n <= 0 {
		n = 1
	}
	maxSim := end
	if loop {
		maxSim = 0
	}
	var charge emulated.Charge
	switch c := s.str("charge"); c {
	case "cycles", "":
	case "time":
		charge = emulated.ChargeTime
	default:
		return fmt.Errorf("--charge %s: want cycles or time", c)
	}
	cfg := emulated.Config{Charge: charge, ELF: elf, Image: img, Tasks: len(p.Tasks), Profile: prof, Power: &pc,
		Input: input, Want: want, Harvest: harvest, TimeScale: s.v.GetFloat64("time-scale"),
		Inferences: n, MaxSimTime: maxSim}
	var closeLog func()
	if cfg.Log, closeLog, err = openLog(s, traceArg); err != nil {
		return err
	}
	defer closeLog()
	res, err := emulated.Run(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	rep := emulatedReport{Trace: traceName, Model: m.Name, Profile: prof.Name, Scheduler: sc.Name(), Board: "qemu-stm32",
		Tasks: len(p.Tasks), PlanEnergy: p.Energy(), Result: res}
	if rep.Sim, err = simulateSame(m, p, prof, pc, open, input, want, n, loop, res); err != nil {
		return fmt.Errorf("the simulated board's replay for comparison: %w", err)
	}
	if s.json() {
		err = reports.JSON(cmd.OutOrStdout(), rep)
	} else {
		err = printEmulated(cmd, &rep)
	}
	if err != nil {
		return err
	}
	return replayOutcome(res.Mismatches, res.Inferences)
}

// simulateSame replays the same trace and plan on the simulated board and
// compares it with the emulated run.
func simulateSame(m *model.Model, p *plan.Plan, prof *profiles.Profile, pc power.Config, open func() (traces.Reader, error), input, want []byte, n int, loop bool, emu emulated.Result) (*simComparison, error) {
	var log bytes.Buffer
	lw := reports.NewLogWriter(&log)
	res, err := replay.Run(context.Background(), replay.Config{Model: m, Plan: p, Profile: prof, Power: pc, OpenTrace: open, Input: input,
		Inferences: n, Loop: loop, Log: lw, Reference: want})
	if err != nil {
		var ll *replay.LivelockError
		if !errors.As(err, &ll) {
			return nil, err
		}
	}
	_, infs, err := reports.ReadLog(&log, "simulated log")
	if err != nil {
		return nil, err
	}
	c := &simComparison{PowerCycles: res.PowerCycles, Inferences: res.Inferences, Latency: res.Latency}
	for _, r := range infs {
		c.CyclesPerInference = append(c.CyclesPerInference, r.PowerCycles)
	}
	if emu.PowerCycles > 0 {
		c.PowerCyclesError = float64(res.PowerCycles-emu.PowerCycles) / float64(emu.PowerCycles)
	}
	for i, t := range p.Tasks {
		if i >= len(emu.WarmupTaskCycles) {
			break
		}
		tc := taskComparison{Task: i, Layer: t.Layer, Predicted: t.Cycles + t.CommitCycles, Measured: emu.WarmupTaskCycles[i]}
		if tc.Measured > 0 {
			tc.Error = (tc.Predicted - float64(tc.Measured)) / float64(tc.Measured)
		}
		c.TaskCyclesMaxError = math.Max(c.TaskCyclesMaxError, math.Abs(tc.Error))
		c.Tasks = append(c.Tasks, tc)
	}
	return c, nil
}

func printEmulated(cmd *cobra.Command, r *emulatedReport) error {
	rr := replayReport{Trace: r.Trace, Model: r.Model, Profile: r.Profile, Scheduler: r.Scheduler, Board: r.Board,
		Tasks: r.Tasks, PlanEnergy: r.PlanEnergy, Result: &r.Result.Result}
	if err := printReplay(cmd, &rr); err != nil {
		return err
	}
	res := r.Result
	pct := func(x float64) string { return strconv.FormatFloat(100*x, 'f', 1, 64) + " %" }
	rows := [][]string{
		{"power cycles", strconv.Itoa(res.PowerCycles), strconv.Itoa(r.Sim.PowerCycles), pct(r.Sim.PowerCyclesError)},
		{"power cycles per inference", fmt.Sprint(res.CyclesPerInference), fmt.Sprint(r.Sim.CyclesPerInference), ""},
		{"latency mean", ms(res.Latency.Mean), ms(r.Sim.Latency.Mean), ""},
		{"task cycles: largest error", "measured", "predicted", pct(r.Sim.TaskCyclesMaxError)},
		{"boots / hangs / events lost", fmt.Sprintf("%d / %d / %d", res.Boots, res.Hangs, res.EventsLost), "", ""},
		{"time scale (wall s per simulated s)", strconv.FormatFloat(res.TimeScale, 'f', 3, 64), "", ""},
	}
	return reports.Table(cmd.OutOrStdout(), []string{"emulated vs simulated", "qemu-stm32", "sim", "error"}, rows, nil)
}
