package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/outfile"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/power"
	"github.com/batteryless/harness/harness/replay"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/reports"
	"github.com/batteryless/harness/traces"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// defaultTrace is the bundled trace replayed when none is named.
const defaultTrace = "rf-office"

type replayReport struct {
	Trace      string  `json:"trace"`
	Model      string  `json:"model"`
	Input      string  `json:"input"`
	Profile    string  `json:"profile"`
	Scheduler  string  `json:"scheduler"`
	Board      string  `json:"board"`
	Tasks      int     `json:"tasks"`
	PlanEnergy float64 `json:"plan_energy_j"`
	*replay.Result
}

// traceOpener resolves a trace argument: a file, or a bundled trace name.
func traceOpener(arg, format string, load float64) (func() (traces.Reader, error), string, error) {
	if arg == "" {
		arg = defaultTrace
	}
	if _, err := os.Stat(arg); err == nil {
		return func() (traces.Reader, error) {
			return traces.Open(arg, traces.Options{Format: format, LoadOhms: load})
		}, arg, nil
	}
	name := strings.TrimPrefix(arg, "bundled:")
	if _, err := traces.OpenBundled(name); err == nil {
		return func() (traces.Reader, error) { return traces.OpenBundled(name) }, "bundled:" + name, nil
	}
	return nil, "", fmt.Errorf("trace %s: no such file, and no bundled trace of that name (bundled: %s)", arg, strings.Join(traces.Bundled(), ", "))
}

// summarizeTrace reads a trace once for its statistics.
func summarizeTrace(open func() (traces.Reader, error)) (traces.Stats, error) {
	r, err := open()
	if err != nil {
		return traces.Stats{}, err
	}
	if c, ok := r.(interface{ Close() error }); ok {
		defer c.Close()
	}
	return traces.Summarize(r, 0)
}

// replayPrep is what a replay needs before it runs, on any board: the
// trace, the model and its input, the profile, the scheduler's plan
// (checked against livelock on the trace's peak power).
type replayPrep struct {
	open      func() (traces.Reader, error)
	traceName string
	stats     traces.Stats
	m         *model.Model
	input     []byte
	inputName string
	prof      *profiles.Profile
	sc        sched.Scheduler
	p         *plan.Plan
	pc        power.Config
}

// prepareReplay loads and schedules what --trace, --model, --input,
// --profile (defaultProfile when the user gave none and it is not "") and
// --scheduler say.
func prepareReplay(cmd *cobra.Command, s *settings, traceArg, defaultProfile string) (*replayPrep, error) {
	r := &replayPrep{}
	var err error
	if r.open, r.traceName, err = traceOpener(traceArg, s.str("format"), s.v.GetFloat64("load")); err != nil {
		return nil, err
	}
	var modelPath string
	if r.m, r.input, modelPath, err = loadModelInput(s); err != nil {
		return nil, err
	}
	r.inputName = inputName(s.str("input"), modelPath)
	if r.prof, err = loadProfileFlag(cmd, s, defaultProfile); err != nil {
		return nil, err
	}
	if r.sc, err = sched.Get(s.str("scheduler")); err != nil {
		return nil, err
	}
	// A first pass over the trace: its statistics for the schedulers that
	// use them, its length for the progress bar and its peak power for the
	// static livelock check.
	if r.stats, err = summarizeTrace(r.open); err != nil {
		return nil, err
	}
	if r.p, err = r.sc.Schedule(r.m, r.prof, sched.Options{ModelBytes: modelFileBytes(modelPath), Trace: &r.stats}); err != nil {
		return nil, err
	}
	r.pc = powerConfig(r.prof)
	if err := replay.CheckPlan(r.p, r.prof, r.pc, r.stats.MaxW); err != nil {
		return nil, fmt.Errorf("%s with %s on %s: %w", r.m.Name, r.sc.Name(), r.prof.Name, err)
	}
	return r, nil
}

// loadProfileFlag loads --profile, or def (if not "") when the user set no
// profile by flag, environment or file.
func loadProfileFlag(cmd *cobra.Command, s *settings, def string) (*profiles.Profile, error) {
	name := s.str("profile")
	if def != "" && !cmd.Flags().Changed("profile") && !s.v.IsSet("profile") {
		name = def
	}
	return profiles.Load(name)
}

// openLog opens --log's JSON Lines writer (nil without --log) and returns
// the function that puts the file in place (call it on every way out: the
// log of a run that failed says how it failed). The log must not be one of
// the run's inputs: it is written beside its path, and renamed there.
func openLog(s *settings, inputs ...string) (*reports.LogWriter, func(), error) {
	path := s.str("log")
	if path == "" {
		return nil, func() {}, nil
	}
	f, err := outfile.Create(path, append(inputs, s.str("model"), s.str("input"), s.str("profile"), s.str("config"))...)
	if err != nil {
		return nil, nil, err
	}
	return reports.NewLogWriter(f), func() { f.Commit() }, nil
}

// powerConfig is the power system of a profile.
func powerConfig(p *profiles.Profile) power.Config {
	return power.Config{
		Cap:        power.Capacitor{C: p.Power.CapacitanceF, Vmax: p.Power.VmaxV, Rleak: p.Power.LeakageOhm},
		Th:         power.Thresholds{Von: p.Power.VonV, Voff: p.Power.VoffV},
		Efficiency: p.Power.Efficiency,
	}
}

func newReplayCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay [TRACE]",
		Short: "Replay a harvested-energy trace on a board and verify every inference",
		Long: `Replay TRACE (a trace file: canonical CSV, REACT or Mementos; or a bundled trace
name; default: the bundled rf-office trace) on the simulated board: the power system
model integrates the harvested power exactly, the board runs the model's plan while
the capacitor holds it up, and every inference's output is checked bit for bit against
the reference executor. Exits non-zero on any mismatch or livelock.`,
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
	f.String("trace", "", "trace file or bundled trace name (default: "+defaultTrace+")")
	f.String("model", "", "model file (default: the bundled model)")
	f.String("input", "", "input tensor as raw bytes (default: the bundled input)")
	f.String("profile", "msp430fr5994", "device profile: "+strings.Join(profiles.Names(), ", ")+", or a YAML file")
	f.String("scheduler", "tile", "scheduler: "+strings.Join(sched.Names(), ", "))
	f.String("board", "sim", "board: sim, or qemu-stm32 (the STM32 firmware in QEMU under the emulated power system)")
	f.String("elf", "", "qemu-stm32: the wire firmware built without a plan (default "+defaultNoPlanELF+"; make -C firmware stm32f4)")
	f.String("charge", "cycles", "qemu-stm32: charge the board by the cycles it reports, cut at exact instructions through QEMU's gdbstub (cycles), or by the wall time QEMU runs (time)")
	f.Float64("time-scale", 0, "qemu-stm32 with --charge time: wall seconds per simulated second (0: measured by a warm-up inference)")
	f.Int("inferences", 0, "inferences to run (0: back to back until the trace ends)")
	f.Bool("loop", false, "repeat the trace until --inferences are done")
	f.String("log", "", "write a JSON Lines record per power cycle and per inference here")
	f.Bool("quiet", false, "no progress bar")
	f.String("format", "", "trace format: csv, react, mementos (default: detect)")
	f.Float64("load", 0, "load resistance in ohms for voltage-only traces (Mementos default 30000)")
	return cmd
}

func runReplay(cmd *cobra.Command, s *settings, traceArg string) error {
	switch b := s.str("board"); b {
	case "sim":
	case "qemu-stm32":
		return runReplayQEMU(cmd, s, traceArg)
	default:
		return fmt.Errorf("--board %s: want sim or qemu-stm32", b)
	}
	r, err := prepareReplay(cmd, s, traceArg, "")
	if err != nil {
		return err
	}
	open, traceName, stats := r.open, r.traceName, r.stats
	m, input, prof, sc, p, pc := r.m, r.input, r.prof, r.sc, r.p, r.pc
	cfg := replay.Config{Model: m, Plan: p, Profile: prof, Power: pc, OpenTrace: open, Input: input,
		Inferences: s.integer("inferences"), Loop: s.boolean("loop")}
	var closeLog func()
	if cfg.Log, closeLog, err = openLog(s, traceArg); err != nil {
		return err
	}
	defer closeLog()
	if !s.boolean("quiet") && !s.json() && term.IsTerminal(int(os.Stderr.Fd())) && stats.Duration > 0 && !cfg.Loop {
		// The bar appears only once a run has taken a second.
		start := time.Now()
		var bar *progressbar.ProgressBar
		cfg.Progress = func(t float64) {
			if bar == nil && time.Since(start) > time.Second {
				bar = progressbar.NewOptions64(int64(stats.Duration*1000), progressbar.OptionSetWriter(os.Stderr),
					progressbar.OptionSetDescription("replay "+traceName+" (simulated ms)"), progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionClearOnFinish())
			}
			if bar != nil {
				_ = bar.Set64(int64(t * 1000))
			}
		}
		defer func() {
			if bar != nil {
				_ = bar.Finish()
			}
		}()
	}
	// The set-up's garbage (the model, the plan, the trace's statistics) is
	// collected now, not by a collection that would stop the replay.
	runtime.GC()
	res, err := replay.Run(cmd.Context(), cfg)
	if err != nil {
		var ll *replay.LivelockError
		if errors.As(err, &ll) {
			return &exitError{code: 3, msg: err.Error()}
		}
		return err
	}
	rep := replayReport{Trace: traceName, Model: m.Name, Input: r.inputName, Profile: prof.Name, Scheduler: sc.Name(), Board: "sim",
		Tasks: len(p.Tasks), PlanEnergy: p.Energy(), Result: res}
	if s.json() {
		err = reports.JSON(cmd.OutOrStdout(), rep)
	} else {
		err = printReplay(cmd, &rep)
	}
	if err != nil {
		return err
	}
	return replayOutcome(res.Mismatches, res.Inferences)
}

// replayOutcome is a replay's exit: 1 when an output differed or no
// inference completed.
func replayOutcome(mismatches, inferences int) error {
	if mismatches > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d of %d inferences differ from the reference", mismatches, inferences)}
	}
	if inferences == 0 {
		return &exitError{code: 1, msg: "no inference completed on this trace"}
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

func printReplay(cmd *cobra.Command, r *replayReport) error {
	res := r.Result
	pct := func(x float64) string {
		if res.Energy.Total == 0 {
			return "-"
		}
		return strconv.FormatFloat(100*x/res.Energy.Total, 'f', 1, 64) + " %"
	}
	rows := [][]string{
		{"trace", r.Trace, ""},
		{"input", r.Input, ""},
		{"model / profile / scheduler", r.Model + " / " + r.Profile + " / " + r.Scheduler, fmt.Sprintf("%d tasks, %s per inference (estimate)", r.Tasks, mj(r.PlanEnergy))},
		{"inferences completed", strconv.Itoa(res.Inferences), fmt.Sprintf("%d verified bit-exact, %d mismatches", res.Verified, res.Mismatches)},
		{"latency mean / p50", ms(res.Latency.Mean), ms(res.Latency.P50)},
		{"latency p95 / max", ms(res.Latency.P95), ms(res.Latency.Max)},
		{"lower bound (mean) / ratio", ms(res.LowerBoundS), ratio(res.Latency.Mean, res.LowerBoundS)},
		{"power cycles", strconv.Itoa(res.PowerCycles), ""},
		{"commits", strconv.Itoa(res.Commits), ""},
		{"tasks run / re-executed", strconv.Itoa(res.TasksRun), strconv.Itoa(res.ReexecutedTasks)},
		{"energy: compute", mj(res.Energy.Compute), pct(res.Energy.Compute)},
		{"energy: NVM traffic", mj(res.Energy.NVM), pct(res.Energy.NVM)},
		{"energy: commits", mj(res.Energy.Commits), pct(res.Energy.Commits)},
		{"energy: reboots", mj(res.Energy.Reboots), pct(res.Energy.Reboots)},
		{"energy: wasted by re-execution", mj(res.Energy.Wasted), pct(res.Energy.Wasted)},
		{"energy harvested / used", mj(res.HarvestedJ), mj(res.Energy.Total)},
		{"time on / off", ms(res.TimeOn), ms(res.TimeOff)},
		{"wall / reference executor", ms(res.WallS), ms(res.ReferenceWallS)},
	}
	if r.Board != "sim" {
		// A real or emulated board reports whole tasks only: no split of
		// their energy, no reference timing.
		keep := rows[:0]
		for _, row := range rows {
			switch row[0] {
			case "energy: NVM traffic", "energy: commits", "energy: reboots", "wall / reference executor", "lower bound (mean) / ratio":
				continue
			case "energy: compute":
				row[0] = "energy: tasks (compute and NVM)"
			}
			keep = append(keep, row)
		}
		rows = keep
	}
	return reports.Table(cmd.OutOrStdout(), []string{"replay", "value", ""}, rows, nil)
}
