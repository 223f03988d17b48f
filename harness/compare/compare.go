// Package compare runs a matrix of replays (models x traces x schedulers)
// on a board, every output verified, and summarizes where each scheduler
// stands against the lower bound and against the others. harness compare
// and harness select are built on it; the jobs run on a workpool.Pool, on
// every core for the simulated board and one at a time for any other.
package compare

import (
	"context"
	"errors"
	"math"
	"runtime"
	"sort"
	"strings"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/power"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/replay"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/harness/workpool"
	"github.com/batteryless/harness/traces"
)

// Model is a model of the matrix with its input.
type Model struct {
	Model *model.Model
	Input []byte
	// Bytes is the model file's bytes (for the plan's model hash).
	Bytes []byte
}

// Trace is a trace of the matrix: how to open it, its name and statistics.
type Trace struct {
	Name  string
	Open  func() (traces.Reader, error)
	Stats traces.Stats
}

// Matrix is what to run.
type Matrix struct {
	Models     []Model
	Traces     []Trace
	Schedulers []string
	Profile    *profiles.Profile
	Inferences int
	Loop       bool
	// Board is the kind of board ("" or "sim": the simulated board);
	// Options its driver's options.
	Board   string
	Options boards.Options
}

// Row is one scheduler on one trace with one model.
type Row struct {
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
	Sleeps       int     `json:"sleeps"`
	OverheadJ    float64 `json:"overhead_j"` // commits, reboots and wasted work
	Reexecuted   int     `json:"reexecuted_tasks"`
	Livelock     bool    `json:"livelock"`
	Interrupted  bool    `json:"interrupted,omitempty"`
	Error        string  `json:"error,omitempty"`
	PlanTasks    int     `json:"plan_tasks"`
	PlanEnergyJ  float64 `json:"plan_energy_j"`
}

// Run runs every (model, trace, scheduler) of m, every output verified. A
// run that fails (a livelock, an error) is a row that says so, with the
// figures of the inferences it completed. Rows are sorted by model, trace
// and scheduler. Once ctx is done no further run starts, and the runs in
// flight stop: their rows say interrupted.
func Run(ctx context.Context, m Matrix) ([]Row, error) {
	for _, n := range m.Schedulers {
		if _, err := sched.Get(n); err != nil {
			return nil, err
		}
	}
	board := m.Board
	if board == "" {
		board = "sim"
	}
	drv, err := boards.Lookup(board)
	if err != nil {
		return nil, err
	}
	if !drv.Info().Has(boards.CapReplay) {
		return nil, errors.New("board " + board + " cannot replay a trace")
	}
	wants := make([][]byte, len(m.Models))
	if board != "sim" {
		for i, md := range m.Models {
			if wants[i], err = refexec.New(md.Model).Run(md.Input); err != nil {
				return nil, err
			}
		}
	}
	type job struct{ mi, ti, si int }
	var jobs []job
	for mi := range m.Models {
		for ti := range m.Traces {
			for si := range m.Schedulers {
				jobs = append(jobs, job{mi, ti, si})
			}
		}
	}
	rows := make([]Row, len(jobs))
	pc := replay.PowerConfig(m.Profile)
	work := make([]workpool.Job, len(jobs))
	for i, j := range jobs {
		work[i] = workpool.Job{Group: board, Do: func(ctx context.Context) {
			md, tr := m.Models[j.mi], m.Traces[j.ti]
			rows[i] = runOne(ctx, &m, drv, md, wants[j.mi], tr, m.Schedulers[j.si], pc)
		}}
	}
	pool := workpool.Pool{Workers: runtime.NumCPU(), Limit: func(g string) int {
		if g == "sim" {
			return 0
		}
		return 1 // a real or emulated board runs one replay at a time
	}}
	pool.Run(ctx, work)
	sort.SliceStable(rows, func(a, b int) bool {
		if rows[a].Model != rows[b].Model {
			return rows[a].Model < rows[b].Model
		}
		if rows[a].Trace != rows[b].Trace {
			return rows[a].Trace < rows[b].Trace
		}
		return rows[a].Scheduler < rows[b].Scheduler
	})
	if err := ctx.Err(); err != nil {
		return rows, err
	}
	return rows, nil
}

// runOne replays one cell of the matrix.
func runOne(ctx context.Context, m *Matrix, drv boards.Driver, md Model, want []byte, tr Trace, scheduler string, pc power.Config) Row {
	row := Row{Scheduler: scheduler, Trace: tr.Name, Model: md.Model.Name}
	fail := func(err error) Row {
		var ll *replay.LivelockError
		row.Livelock = errors.As(err, &ll)
		row.Error = oneLine(err.Error())
		return row
	}
	if ctx.Err() != nil {
		row.Interrupted = true
		return fail(ctx.Err())
	}
	sc, _ := sched.Get(scheduler)
	st := tr.Stats
	// A plan made for this trace (the schedulers that plan for a trace's
	// statistics use them, the others ignore them).
	p, err := sc.Schedule(md.Model, m.Profile, sched.Options{ModelBytes: md.Bytes, Trace: &st})
	if err != nil {
		return fail(err)
	}
	row.PlanTasks, row.PlanEnergyJ = len(p.Tasks), p.Energy()
	if err := replay.CheckTurnOn(pc, st.MaxW); err != nil {
		return fail(err)
	}
	if err := replay.CheckPlan(p, m.Profile, pc, st.MaxW); err != nil {
		return fail(err)
	}
	cfg := replay.Config{Model: md.Model, Plan: p, Profile: m.Profile, Power: pc, OpenTrace: tr.Open,
		Input: md.Input, Inferences: m.Inferences, Loop: m.Loop, Reference: want}
	if drv.Info().Name != "sim" {
		img, err := plan.EncodeImage(md.Model, p)
		if err != nil {
			return fail(err)
		}
		b, err := drv.Open(ctx, boards.Deployment{Model: md.Model, Plan: p, Profile: m.Profile, Image: img, Input: md.Input, Want: want}, m.Options)
		if err != nil {
			return fail(err)
		}
		defer b.Close()
		cfg.Board, cfg.BoardName = b, drv.Info().Name
	}
	res, err := replay.Run(ctx, cfg)
	if res != nil {
		row.Inferences, row.Verified, row.Mismatches = res.Inferences, res.Verified, res.Mismatches
		row.LatencyMeanS, row.LatencyP95S, row.LowerBoundS = res.Latency.Mean, res.Latency.P95, res.LowerBoundS
		if res.LowerBoundS > 0 {
			row.RatioToBound = res.Latency.Mean / res.LowerBoundS
		}
		row.PowerCycles, row.Commits, row.Sleeps, row.Reexecuted = res.PowerCycles, res.Commits, res.Sleeps, res.ReexecutedTasks
		row.OverheadJ = res.Energy.Commits + res.Energy.Reboots + res.Energy.Wasted
		row.Interrupted = res.Interrupted
	}
	if err != nil {
		return fail(err)
	}
	return row
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

// Summary is one scheduler's standing over all traces and models.
type Summary struct {
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

// Summarize computes every scheduler's Summary over rows.
func Summarize(rows []Row) []Summary {
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
	byName := map[string]*Summary{}
	var names []string
	logSum := map[string]float64{}
	for _, r := range rows {
		sum, ok := byName[r.Scheduler]
		if !ok {
			sum = &Summary{Scheduler: r.Scheduler}
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
	out := make([]Summary, len(names))
	for i, n := range names {
		sum := byName[n]
		if sum.Runs > 0 {
			sum.GeomeanRatioToBound = math.Exp(logSum[n] / float64(sum.Runs))
		}
		out[i] = *sum
	}
	return out
}
