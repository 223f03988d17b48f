package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/replay"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/reports"
	"github.com/batteryless/harness/traces"
	"github.com/spf13/cobra"
)

// compareRow is one scheduler on one trace with one model.
type compareRow struct {
	Scheduler    string  `json:"scheduler"`
	Trace        string  `json:"trace"`
	Model        string  `json:"model"`
	Inferences   int     `json:"inferences"`
	Verified     int     `json:"verified"`
	Mismatches   int     `json:"mismatches"`
	LatencyMeanS float64 `json:"latency_mean_s"`
	LatencyP95S  float64 `json:"latency_p95_s"`
	LowerBoundS  float64 `json:"lower_bound_s"`
	RatioToBound float64 `json:"ratio_to_bound"`
	PowerCycles  int     `json:"power_cycles"`
	Commits      int     `json:"commits"`
	OverheadJ    float64 `json:"overhead_j"` // commits, reboots and wasted work
	Reexecuted   int     `json:"reexecuted_tasks"`
	Livelock     bool    `json:"livelock"`
	Error        string  `json:"error,omitempty"`
	PlanTasks    int     `json:"plan_tasks"`
	PlanEnergyJ  float64 `json:"plan_energy_j"`
}

type compareModel struct {
	path  string
	m     *model.Model
	input []byte
	bytes []byte
}

func newCompareCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compare TRACE...",
		Short: "Run every scheduler on every trace and model on the simulated board, side by side",
		Long: `Replay each TRACE with each --model under each scheduler on the simulated board (all
outputs verified bit for bit) and print one table: mean and p95 latency, the lower bound
and the ratio to it, power cycles, commits, overhead energy, re-executed tasks, livelocks.
The runs use every core.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rows, err := runCompare(cmd.Context(), s, args)
			if err != nil {
				return err
			}
			sum := summarizeCompare(rows)
			if s.json() {
				err = reports.JSON(cmd.OutOrStdout(), map[string]any{"rows": rows, "summary": sum})
			} else {
				err = printCompare(cmd, rows, sum)
			}
			if err != nil {
				return err
			}
			for _, r := range rows {
				if r.Mismatches > 0 {
					return &exitError{code: 1, msg: fmt.Sprintf("%s on %s with %s: %d mismatches", r.Model, r.Trace, r.Scheduler, r.Mismatches)}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSlice("model", nil, "model files (default: the bundled model); each uses --input or, for the bundled model, its input")
	f.StringSlice("input", nil, "input files, one per --model in the same order (default: zeros for other models)")
	f.String("profile", "msp430fr5994", "device profile: "+strings.Join(profiles.Names(), ", ")+", or a YAML file")
	f.String("schedulers", "all", "schedulers: all, or a comma-separated list of "+strings.Join(sched.Names(), ", "))
	f.Int("inferences", 0, "inferences per run (0: back to back until the trace ends)")
	f.Bool("loop", false, "repeat each trace until --inferences are done")
	f.String("format", "", "trace format: csv, react, mementos (default: detect)")
	f.Float64("load", 0, "load resistance in ohms for voltage-only traces")
	return cmd
}

func runCompare(ctx context.Context, s *settings, traceArgs []string) ([]compareRow, error) {
	prof, err := profiles.Load(s.str("profile"))
	if err != nil {
		return nil, err
	}
	names := sched.Names()
	if v := s.str("schedulers"); v != "" && v != "all" {
		names = strings.Split(v, ",")
	}
	for _, n := range names {
		if _, err := sched.Get(n); err != nil {
			return nil, err
		}
	}
	modelPaths := s.v.GetStringSlice("model")
	if len(modelPaths) == 0 {
		modelPaths = []string{""}
	}
	inputs := s.v.GetStringSlice("input")
	if len(inputs) > len(modelPaths) {
		return nil, fmt.Errorf("%d --input files for %d models", len(inputs), len(modelPaths))
	}
	var models []compareModel
	for i, mp := range modelPaths {
		m, err := loadModel(mp)
		if err != nil {
			return nil, err
		}
		cm := compareModel{path: mp, m: m, bytes: bundled.Model()}
		if !isBundled(mp) {
			if cm.bytes, err = os.ReadFile(mp); err != nil {
				return nil, err
			}
		}
		switch {
		case i < len(inputs) && inputs[i] != "":
			cm.input, err = loadInput(inputs[i], mp, m)
		case isBundled(mp):
			cm.input = bundled.Input()
		default:
			cm.input = make([]byte, m.InputTensor().Bytes())
		}
		if err != nil {
			return nil, err
		}
		models = append(models, cm)
	}
	type traceInfo struct {
		name  string
		open  func() (traces.Reader, error)
		peakW float64
		stats traces.Stats
	}
	var trs []traceInfo
	for _, a := range traceArgs {
		ts, err := openTraceArg(ctx, a, s.str("format"), s.v.GetFloat64("load"))
		if err != nil {
			return nil, err
		}
		defer ts.cleanup()
		st, err := summarizeTrace(ctx, ts.open)
		if err != nil {
			return nil, err
		}
		trs = append(trs, traceInfo{name: ts.name, open: ts.open, peakW: st.MaxW, stats: st})
	}
	// Plans are made once per model and scheduler and shared read-only.
	type planKey struct{ model, sched int }
	plans := map[planKey]*plan.Plan{}
	planErr := map[planKey]error{}
	for mi, cm := range models {
		for si, n := range names {
			sc, _ := sched.Get(n)
			p, err := sc.Schedule(cm.m, prof, sched.Options{ModelBytes: cm.bytes})
			plans[planKey{mi, si}], planErr[planKey{mi, si}] = p, err
		}
	}
	type job struct{ mi, ti, si int }
	var jobs []job
	for mi := range models {
		for ti := range trs {
			for si := range names {
				jobs = append(jobs, job{mi, ti, si})
			}
		}
	}
	rows := make([]compareRow, len(jobs))
	pc := replay.PowerConfig(prof)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				j := jobs[i]
				cm, tr := models[j.mi], trs[j.ti]
				row := compareRow{Scheduler: names[j.si], Trace: tr.name, Model: cm.m.Name}
				p, err := plans[planKey{j.mi, j.si}], planErr[planKey{j.mi, j.si}]
				if usesTrace(names[j.si]) {
					// A plan made for this trace's statistics.
					sc, _ := sched.Get(names[j.si])
					st := tr.stats
					p, err = sc.Schedule(cm.m, prof, sched.Options{ModelBytes: cm.bytes, Trace: &st})
				}
				if err == nil {
					row.PlanTasks, row.PlanEnergyJ = len(p.Tasks), p.Energy()
					if err = replay.CheckTurnOn(pc, tr.peakW); err == nil {
						err = replay.CheckPlan(p, prof, pc, tr.peakW)
					}
				}
				if err == nil {
					var res *replay.Result
					res, err = replay.Run(ctx, replay.Config{Model: cm.m, Plan: p, Profile: prof, Power: pc, OpenTrace: tr.open,
						Input: cm.input, Inferences: s.integer("inferences"), Loop: s.boolean("loop")})
					if res != nil {
						row.Inferences, row.Verified, row.Mismatches = res.Inferences, res.Verified, res.Mismatches
						row.LatencyMeanS, row.LatencyP95S, row.LowerBoundS = res.Latency.Mean, res.Latency.P95, res.LowerBoundS
						if res.LowerBoundS > 0 {
							row.RatioToBound = res.Latency.Mean / res.LowerBoundS
						}
						row.PowerCycles, row.Commits, row.Reexecuted = res.PowerCycles, res.Commits, res.ReexecutedTasks
						row.OverheadJ = res.Energy.Commits + res.Energy.Reboots + res.Energy.Wasted
					}
				}
				var ll *replay.LivelockError
				if errors.As(err, &ll) {
					row.Livelock = true
				}
				if err != nil {
					row.Error = oneLine(err.Error())
				}
				rows[i] = row
			}
		}()
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	sort.SliceStable(rows, func(a, b int) bool {
		if rows[a].Model != rows[b].Model {
			return rows[a].Model < rows[b].Model
		}
		if rows[a].Trace != rows[b].Trace {
			return rows[a].Trace < rows[b].Trace
		}
		return rows[a].Scheduler < rows[b].Scheduler
	})
	return rows, nil
}

// schedulerSummary is one scheduler's standing over all traces and models.
type schedulerSummary struct {
	Scheduler string `json:"scheduler"`
	// GeomeanRatioToBound is the geometric mean, over the runs that
	// completed inferences, of mean latency over the lower bound.
	GeomeanRatioToBound float64 `json:"geomean_ratio_to_bound"`
	// MaxRatioToBestOther is the largest, over (trace, model), of this
	// scheduler's mean latency over the best other scheduler's; below 1
	// everywhere means it was the fastest everywhere.
	MaxRatioToBestOther float64 `json:"max_ratio_to_best_other"`
	Runs                int     `json:"runs"`
	Failed              int     `json:"failed"` // livelocks, errors, runs with no inference
}

func summarizeCompare(rows []compareRow) []schedulerSummary {
	type key struct{ model, trace string }
	best := map[key]map[string]float64{}
	for _, r := range rows {
		k := key{r.Model, r.Trace}
		if best[k] == nil {
			best[k] = map[string]float64{}
		}
		if r.Inferences > 0 && r.Mismatches == 0 && r.Error == "" {
			best[k][r.Scheduler] = r.LatencyMeanS
		}
	}
	byName := map[string]*schedulerSummary{}
	var names []string
	logSum := map[string]float64{}
	for _, r := range rows {
		sum, ok := byName[r.Scheduler]
		if !ok {
			sum = &schedulerSummary{Scheduler: r.Scheduler}
			byName[r.Scheduler] = sum
			names = append(names, r.Scheduler)
		}
		lat, ok := best[key{r.Model, r.Trace}][r.Scheduler]
		if !ok || r.RatioToBound <= 0 {
			sum.Failed++
			continue
		}
		sum.Runs++
		logSum[r.Scheduler] += math.Log(r.RatioToBound)
		other := math.Inf(1)
		for n, l := range best[key{r.Model, r.Trace}] {
			if n != r.Scheduler {
				other = min(other, l)
			}
		}
		if !math.IsInf(other, 1) {
			sum.MaxRatioToBestOther = max(sum.MaxRatioToBestOther, lat/other)
		}
	}
	sort.Strings(names)
	out := make([]schedulerSummary, len(names))
	for i, n := range names {
		sum := byName[n]
		if sum.Runs > 0 {
			sum.GeomeanRatioToBound = math.Exp(logSum[n] / float64(sum.Runs))
		}
		out[i] = *sum
	}
	return out
}

// usesTrace reports whether a scheduler plans for the trace's statistics.
func usesTrace(name string) bool { return name == "adaptive" }

func printCompare(cmd *cobra.Command, rows []compareRow, sum []schedulerSummary) error {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	table := make([][]string, len(rows))
	for i, r := range rows {
		status := fmt.Sprintf("%d/%d", r.Verified, r.Inferences)
		if r.Livelock {
			status = "livelock"
		} else if r.Error != "" {
			status = "error"
		}
		ratio := "-"
		if r.RatioToBound > 0 {
			ratio = f(r.RatioToBound) + "x"
		}
		table[i] = []string{r.Model, r.Trace, r.Scheduler, status, f(r.LatencyMeanS), f(r.LatencyP95S), f(r.LowerBoundS), ratio,
			strconv.Itoa(r.PowerCycles), strconv.Itoa(r.Commits), strconv.FormatFloat(r.OverheadJ*1e3, 'f', 1, 64), strconv.Itoa(r.Reexecuted)}
	}
	w := cmd.OutOrStdout()
	if err := reports.Table(w, []string{"model", "trace", "scheduler", "verified", "mean s", "p95 s", "bound s", "ratio", "power cycles", "commits", "overhead mJ", "re-executed"}, table, nil); err != nil {
		return err
	}
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(w, "%s on %s with %s: %s\n", r.Model, r.Trace, r.Scheduler, r.Error)
		}
	}
	st := make([][]string, len(sum))
	for i, x := range sum {
		st[i] = []string{x.Scheduler, strconv.Itoa(x.Runs), strconv.Itoa(x.Failed),
			strconv.FormatFloat(x.GeomeanRatioToBound, 'f', 2, 64) + "x", strconv.FormatFloat(x.MaxRatioToBestOther, 'f', 2, 64) + "x"}
	}
	return reports.Table(w, []string{"scheduler", "runs", "failed", "geomean latency / bound", "worst latency / best other"}, st, nil)
}
