package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/replay"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/reports"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	// The kinds of board replay, inject and compare open by name.
	"github.com/batteryless/harness/boards/bench"
	_ "github.com/batteryless/harness/boards/emulated"
	_ "github.com/batteryless/harness/boards/sim"
)

// replayReport is what replay prints: the same top-level fields for every
// board. Prediction (the simulated board's, for a board that is not the
// simulated one) and Baseline (the best other scheduler on the simulated
// board) are there when computed.
type replayReport struct {
	Trace      string  `json:"trace"`
	Model      string  `json:"model"`
	Input      string  `json:"input"`
	Profile    string  `json:"profile"`
	Scheduler  string  `json:"scheduler"`
	Tasks      int     `json:"tasks"`
	PlanEnergy float64 `json:"plan_energy_j"`
	*replay.Result
	Prediction *replay.Prediction `json:"prediction,omitempty"`
	Baseline   *baselineRun       `json:"baseline,omitempty"`
	// Bench is what the bench did (a serial board on a supply).
	Bench *bench.Stats `json:"bench,omitempty"`
}

// baselineRun is how the run compares with the best other scheduler on the
// same trace, measured on the simulated board.
type baselineRun struct {
	// Scheduler is the best baseline (for adaptive), or adaptive (for a
	// baseline); LatencyMeanS its mean latency and Inferences its count.
	Scheduler    string  `json:"scheduler"`
	LatencyMeanS float64 `json:"latency_mean_s"`
	Inferences   int     `json:"inferences"`
	// Ratio is this run's mean latency over the baseline's.
	Ratio float64 `json:"ratio"`
	// Why, when there is no baseline to compare with.
	Why string `json:"why,omitempty"`
}

func newReplayCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay [TRACE]",
		Short: "Replay a harvested-energy trace on a board and verify every inference",
		Long: `Replay TRACE (a trace file: canonical CSV, REACT or Mementos; "-" for standard input;
or a bundled trace name; default: the bundled rf-office trace) on a board (default: the
simulated board): the power system model integrates the harvested power exactly, the board
runs the model's plan while the capacitor holds it up, and every inference's output is
checked bit for bit against the reference executor. On the simulated board the table also
says how the scheduler compares with the best other one on the same trace (--baseline); on
another board, what the simulated board predicts for the same plan and trace.

Exit codes: 0 every inference verified; 1 an output differed; 2 an error; 3 livelock;
4 no inference completed (the trace ended first: --loop repeats it); 130 interrupted.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := s.str("trace")
			if len(args) == 1 {
				arg = args[0]
			}
			return runReplay(cmd, s, arg)
		},
	}
	f := cmd.Flags()
	f.String("trace", "", "trace file, - for standard input, or bundled trace name (default: "+defaultTrace+")")
	f.String("model", "", "model file (default: the bundled model)")
	f.String("input", "", "input tensor as raw bytes, or seeded:N (default: the bundled input, or seeded:1 for another model)")
	f.String("profile", "", "device profile: "+strings.Join(profiles.Names(), ", ")+", or a YAML file (default: the board's)")
	f.String("scheduler", defaultScheduler, "scheduler: "+strings.Join(sched.Names(), ", "))
	f.String("board", "sim", "board: "+strings.Join(boards.Names(), ", ")+" (harness boards lists them)")
	f.String("elf", "", "qemu-stm32: the wire firmware built without a plan (default "+defaultNoPlanELF+"; make -C firmware stm32f4)")
	f.Int("inferences", 0, "inferences to run (0: back to back until the trace ends)")
	f.Bool("loop", false, "repeat the trace until --inferences are done")
	f.Bool("baseline", true, "simulated board: also replay the other schedulers and compare with the best")
	f.String("log", "", "write a JSON Lines record per power cycle and per inference here")
	f.Bool("quiet", false, "no progress bar")
	f.String("format", "", "trace format: csv, react, mementos (default: detect)")
	f.Float64("load", 0, "load resistance in ohms for voltage-only traces (Mementos default 30000)")
	addBenchFlags(cmd)
	return cmd
}

// defaultNoPlanELF is where `make -C firmware stm32f4` puts the STM32
// firmware that takes its plan from QEMU's loader.
const defaultNoPlanELF = "firmware/build/stm32f4/firmware-noplan.elf"

func runReplay(cmd *cobra.Command, s *settings, traceArg string) error {
	ctx := cmd.Context()
	drv, err := boards.Lookup(s.str("board"))
	if err != nil {
		return fmt.Errorf("--board: %w", err)
	}
	info := drv.Info()
	if !info.Has(boards.CapReplay) {
		return fmt.Errorf("board %s cannot replay a trace yet (it needs a programmable supply as its power strategy); on bench power use `harness board`", info.Name)
	}
	if n := s.v.GetInt64("inferences"); n < 0 {
		return fmt.Errorf("--inferences %d: want 0 (the whole trace) or more", n)
	}
	r, err := prepareReplay(cmd, s, traceArg, info)
	if err != nil {
		var ll *replay.LivelockError
		if errors.As(err, &ll) {
			// Refused before running: the plan cannot finish on this trace.
			return &exitError{code: exitLivelock, msg: err.Error()}
		}
		return err
	}
	defer r.trace.cleanup()
	cfg := replay.Config{Model: r.m, Plan: r.p, Profile: r.prof, Power: r.pc, OpenTrace: r.trace.open, Input: r.input,
		Inferences: s.integer("inferences"), Loop: s.boolean("loop"), BoardName: info.Name}
	if info.Name != "sim" {
		img, err := plan.EncodeImage(r.m, r.p)
		if err != nil {
			return err
		}
		want, err := referenceOutput(r)
		if err != nil {
			return err
		}
		cfg.Reference = want
		opts := boards.Options{ELF: s.str("elf"), Port: s.str("port")}
		if info.Name == "serial" {
			o, closeBench, err := benchOptions(s)
			if err != nil {
				return err
			}
			defer closeBench()
			opts = o
		}
		b, err := drv.Open(ctx, boards.Deployment{Model: r.m, Plan: r.p, Profile: r.prof, Image: img, Input: r.input, Want: want}, opts)
		if err != nil {
			return interrupted(ctx, err)
		}
		defer b.Close()
		cfg.Board = b
	}
	var closeLog func()
	if cfg.Log, closeLog, err = openLog(s, r.trace.file); err != nil {
		return err
	}
	defer closeLog()
	if cfg.Log != nil {
		cfg.Header = r.header(info.Name, 0)
	}
	if p, ok := cfg.Board.(interface {
		Prepare(context.Context, *replay.Config) error
	}); ok {
		// A bench readies its supply for the run (a curve's list, the
		// harvester's stream) just before it starts.
		if err := p.Prepare(ctx, &cfg); err != nil {
			return interrupted(ctx, err)
		}
	}
	stopBar := progressBar(s, &cfg, r)
	// The set-up's garbage (the model, the plan, the trace's statistics) is
	// collected now, not by a collection that would stop the replay.
	runtime.GC()
	res, runErr := replay.Run(ctx, cfg)
	stopBar()
	if res == nil {
		return runErr
	}
	rep := replayReport{Trace: r.trace.name, Model: r.m.Name, Input: r.inputName, Profile: r.prof.Name, Scheduler: r.sc.Name(),
		Tasks: len(r.p.Tasks), PlanEnergy: r.p.Energy(), Result: res}
	if st, ok := cfg.Board.(interface{ Stats() bench.Stats }); ok {
		bs := st.Stats()
		rep.Bench = &bs
	}
	if runErr == nil {
		if cfg.Board != nil {
			var cycles []uint32
			if tc, ok := cfg.Board.(boards.TaskCycler); ok {
				cycles = tc.TaskCycles()
			}
			if rep.Prediction, err = replay.Predict(ctx, cfg, res, cycles); err != nil {
				return err
			}
		} else if s.boolean("baseline") {
			rep.Baseline = compareBaselines(ctx, r, cfg, res)
		}
	}
	if s.json() {
		err = reports.JSON(cmd.OutOrStdout(), rep)
	} else {
		err = printReplay(cmd, &rep)
	}
	if err != nil {
		return err
	}
	return replayOutcome(res, runErr)
}

// referenceOutput is the reference executor's output for the run's input.
func referenceOutput(r *replayPrep) ([]byte, error) {
	return refexec.New(r.m).Run(r.input)
}

// progressBar shows a bar on a terminal once a replay has taken a second;
// the function returned removes it.
func progressBar(s *settings, cfg *replay.Config, r *replayPrep) func() {
	if s.boolean("quiet") || s.json() || !term.IsTerminal(int(os.Stderr.Fd())) || r.stats.Duration <= 0 || cfg.Loop {
		return func() {}
	}
	start := time.Now()
	var bar *progressbar.ProgressBar
	cfg.Progress = func(t float64) {
		if bar == nil && time.Since(start) > time.Second {
			bar = progressbar.NewOptions64(int64(r.stats.Duration*1000), progressbar.OptionSetWriter(os.Stderr),
				progressbar.OptionSetDescription("replay "+r.trace.name+" (simulated ms)"), progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish())
		}
		if bar != nil {
			_ = bar.Set64(int64(t * 1000))
		}
	}
	return func() {
		if bar != nil {
			_ = bar.Finish()
		}
	}
}

// compareBaselines replays the other schedulers on the simulated board with
// the same trace, model, input and inferences (on every core), and returns
// the one to compare with: the best baseline (lowest mean latency of those
// that completed an inference) when the run's scheduler is adaptive, else
// adaptive.
func compareBaselines(ctx context.Context, r *replayPrep, cfg replay.Config, res *replay.Result) *baselineRun {
	var names []string
	if r.sc.Name() == defaultScheduler {
		for _, n := range sched.Names() {
			if n != defaultScheduler {
				names = append(names, n)
			}
		}
	} else {
		names = []string{defaultScheduler}
	}
	type outcome struct {
		name string
		res  *replay.Result
	}
	out := make([]outcome, len(names))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.NumCPU())
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			sc, err := sched.Get(n)
			if err != nil {
				return
			}
			p, err := sc.Schedule(r.m, r.prof, sched.Options{ModelBytes: modelFileBytes(r.modelPath), Trace: &r.stats})
			if err != nil || replay.CheckPlan(p, r.prof, r.pc, r.stats.MaxW) != nil {
				return
			}
			c := cfg
			c.Plan, c.Log, c.Header, c.Progress, c.Board = p, nil, nil, nil, nil
			if rr, err := replay.Run(ctx, c); err == nil && rr.Verified > 0 && rr.Mismatches == 0 {
				out[i] = outcome{n, rr}
			}
		}()
	}
	wg.Wait()
	var best *outcome
	for i := range out {
		if o := &out[i]; o.res != nil && (best == nil || o.res.Latency.Mean < best.res.Latency.Mean) {
			best = o
		}
	}
	if best == nil {
		return &baselineRun{Why: "no other scheduler completed an inference on this trace"}
	}
	b := &baselineRun{Scheduler: best.name, LatencyMeanS: best.res.Latency.Mean, Inferences: best.res.Inferences}
	if best.res.Latency.Mean > 0 && res.Inferences > 0 {
		b.Ratio = res.Latency.Mean / best.res.Latency.Mean
	}
	return b
}

// replayOutcome is a replay's exit: 1 when an output differed (or the board
// lost its committed progress), 3 on a livelock, 4 when no inference
// completed, the run's error otherwise.
func replayOutcome(res *replay.Result, err error) error {
	var ll *replay.LivelockError
	switch {
	case res.Mismatches > 0:
		msg := fmt.Sprintf("%d of %d inferences differ from the reference", res.Mismatches, res.Inferences)
		if err != nil {
			msg += ": " + err.Error()
		}
		return &exitError{code: exitMismatch, msg: msg}
	case errors.As(err, &ll):
		return &exitError{code: exitLivelock, msg: err.Error()}
	case err != nil:
		return err
	case res.Inferences == 0:
		return &exitError{code: exitNoInference, msg: fmt.Sprintf("no inference completed in the trace's %.1f s (%d power cycles): --loop repeats the trace until --inferences are done", res.SimTime, res.PowerCycles)}
	}
	return nil
}

// ms formats seconds for people: milliseconds below 10 s, seconds above.
func ms(sec float64) string {
	if sec >= 10 {
		return strconv.FormatFloat(sec, 'f', 2, 64) + " s"
	}
	return strconv.FormatFloat(sec*1e3, 'f', 1, 64) + " ms"
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "-"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64) + "x"
}

func mj(j float64) string { return strconv.FormatFloat(j*1e3, 'f', 3, 64) + " mJ" }

func pct(x float64) string { return strconv.FormatFloat(100*x, 'f', 1, 64) + " %" }

func printReplay(cmd *cobra.Command, r *replayReport) error {
	res := r.Result
	share := func(x float64) string {
		if res.Energy.Total == 0 {
			return "-"
		}
		return pct(x / res.Energy.Total)
	}
	basis := "profile"
	if strings.HasPrefix(res.EnergyBasis, "measured") {
		basis = "measured cycles"
	}
	rows := [][]string{
		{"trace", r.Trace, ""},
		{"board", res.Board, res.EndReason},
		{"model / input", r.Model, r.Input},
		{"profile / scheduler", r.Profile + " / " + r.Scheduler, fmt.Sprintf("%d tasks, %s per inference (estimate)", r.Tasks, mj(r.PlanEnergy))},
		{"inferences completed", strconv.Itoa(res.Inferences), fmt.Sprintf("%d verified bit-exact, %d mismatches", res.Verified, res.Mismatches)},
		{"latency mean / p50", ms(res.Latency.Mean), ms(res.Latency.P50)},
		{"latency p95 / max", ms(res.Latency.P95), ms(res.Latency.Max)},
		{"lower bound (mean) / ratio", ms(res.LowerBoundS), ratio(res.Latency.Mean, res.LowerBoundS)},
	}
	if b := r.Baseline; b != nil {
		if b.Why != "" {
			rows = append(rows, []string{"vs best other scheduler", "-", b.Why})
		} else {
			label := "vs best baseline (" + b.Scheduler + ")"
			if r.Scheduler != defaultScheduler {
				label = "vs " + b.Scheduler
			}
			rows = append(rows, []string{label, strconv.FormatFloat(b.Ratio, 'f', 2, 64) + "x its mean latency",
				fmt.Sprintf("%s: %s mean over %d inferences, measured now on the simulated board", b.Scheduler, ms(b.LatencyMeanS), b.Inferences)})
		}
	}
	rows = append(rows, [][]string{
		{"power cycles / boots", strconv.Itoa(res.PowerCycles), strconv.Itoa(res.Boots)},
		{"commits / sleeps", strconv.Itoa(res.Commits), strconv.Itoa(res.Sleeps)},
		{"tasks run / re-executed", strconv.Itoa(res.TasksRun), strconv.Itoa(res.ReexecutedTasks)},
		{"energy: compute (" + basis + ")", mj(res.Energy.Compute), share(res.Energy.Compute)},
		{"energy: NVM traffic", mj(res.Energy.NVM), share(res.Energy.NVM)},
		{"energy: commits", mj(res.Energy.Commits), share(res.Energy.Commits)},
		{"energy: reboots", mj(res.Energy.Reboots), share(res.Energy.Reboots)},
		{"energy: wasted by re-execution", mj(res.Energy.Wasted), share(res.Energy.Wasted)},
		{"energy harvested / used", mj(res.HarvestedJ), mj(res.Energy.Total)},
		{"time on / off", ms(res.TimeOn), ms(res.TimeOff)},
		{"wall / reference executor", ms(res.WallS), ms(res.ReferenceWallS)},
	}...)
	if res.Hangs > 0 {
		rows = append(rows, []string{"hangs", strconv.Itoa(res.Hangs), "steps the board never finished (it ran until its brown-out)"})
	}
	rows = append(rows, benchRows(res.TimingError, r.Bench)...)
	if err := reports.Table(cmd.OutOrStdout(), []string{"replay", "value", ""}, rows, nil); err != nil {
		return err
	}
	if p := r.Prediction; p != nil {
		prow := [][]string{
			{"power cycles", strconv.Itoa(p.MeasuredPowerCycles), strconv.Itoa(p.PowerCycles), pct(p.PowerCyclesError)},
			{"power cycles per inference", fmt.Sprint(p.MeasuredPowerCyclesPerInference), fmt.Sprint(p.PowerCyclesPerInference), ""},
			{"latency mean", ms(res.Latency.Mean), ms(p.Latency.Mean), pct(p.LatencyError)},
		}
		if w := p.WorstTask; w != nil {
			prow = append(prow, []string{"task cycles: largest error", fmt.Sprintf("task %d (%s): %d", w.Task, w.Operator, w.Measured), strconv.FormatFloat(w.Predicted, 'f', 0, 64), pct(p.TaskCyclesMaxError)})
		}
		if w := p.WorstLargeTask; w != nil {
			prow = append(prow, []string{fmt.Sprintf("tasks of >= %d cycles: largest error", replay.LargeTaskCycles), fmt.Sprintf("task %d (%s): %d", w.Task, w.Operator, w.Measured), strconv.FormatFloat(w.Predicted, 'f', 0, 64), pct(p.TaskCyclesMaxErrorLarge)})
		}
		return reports.Table(cmd.OutOrStdout(), []string{"measured vs predicted", res.Board, "sim (prediction)", "error"}, prow, nil)
	}
	return nil
}
