package replay

import (
	"math"
	"slices"
)

// Latency summarizes inference latencies in seconds.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	Max  float64 `json:"max"`
}

// EnergySplit is where the board's energy went, in joules.
type EnergySplit struct {
	Compute float64 `json:"compute"`
	NVM     float64 `json:"nvm"` // reads, writes and input loads
	Commits float64 `json:"commits"`
	Reboots float64 `json:"reboots"`
	Idle    float64 `json:"idle"`
	Wasted  float64 `json:"wasted"` // of the above: work lost to brown-outs and done again
	Total   float64 `json:"total"`
}

// How the energy split was found (Result.EnergyBasis).
const (
	// energyBasisProfile: every step priced by the device profile.
	energyBasisProfile = "profile: every step priced by the device profile"
	// energyBasisMeasured: the board measured each task's cycles; a task's
	// energy is its cycles at the profile's active power, split into
	// compute, NVM traffic and commit by the plan's estimate of its parts.
	energyBasisMeasured = "measured: tasks and boots by the board's own cycles at the profile's active power; a task's split into compute, NVM and commit by the plan's estimate of its parts"
)

// Result is the outcome of a replay: the same fields on every board.
type Result struct {
	Board           string  `json:"board"`
	Inferences      int     `json:"inferences"`
	Verified        int     `json:"verified"`
	Mismatches      int     `json:"mismatches"`
	PowerCycles     int     `json:"power_cycles"` // turn-ons
	Boots           int     `json:"boots"`        // boots that ran to their end
	Commits         int     `json:"commits"`
	TasksRun        int     `json:"tasks_run"`
	ReexecutedTasks int     `json:"reexecuted_tasks"`
	Sleeps          int     `json:"sleeps"` // run-time rule waits for recharge
	Hangs           int     `json:"hangs"`  // steps the board never finished
	Latency         Latency `json:"latency_s"`
	// LowerBoundS is the mean over the completed inferences of their lower
	// bounds (see reports.InferenceRecord.LowerBound); MinEnergyJ and
	// MinComputeS the computation alone that the bound is made of.
	LowerBoundS float64     `json:"lower_bound_s"`
	MinEnergyJ  float64     `json:"min_energy_j"`
	MinComputeS float64     `json:"min_compute_s"`
	Energy      EnergySplit `json:"energy_j"`
	// EnergyBasis says how Energy was found: priced by the profile, or
	// from the board's measured cycles.
	EnergyBasis    string  `json:"energy_basis"`
	HarvestedJ     float64 `json:"harvested_j"`
	TimeOn         float64 `json:"time_on_s"`
	TimeOff        float64 `json:"time_off_s"`
	SimTime        float64 `json:"sim_time_s"`
	TraceEnded     bool    `json:"trace_ended"`
	Interrupted    bool    `json:"interrupted"`
	EndReason      string  `json:"end_reason"` // completed, trace-ended, mismatch, livelock, interrupted, error
	Error          string  `json:"error,omitempty"`
	WallS          float64 `json:"wall_s"`
	ReferenceWallS float64 `json:"reference_wall_s"`
	// TimingError is how far a real-time board's power edges fell from
	// the model's (boards.RealTime); nil for a stepped board.
	TimingError *TimingError `json:"timing_error_s,omitempty"`
	Latencies   []float64    `json:"-"`
	// InferenceCycles is each inference's power cycles.
	InferenceCycles []int `json:"-"`
}

// TimingError summarizes the power edges of a board that runs in real time
// (a bench): |bench instant - modelled instant| in seconds, by nearest rank,
// for each edge's command (when it was written), and in Evidence for the
// board's own evidence of it (its BOOT less the calibrated boot latency).
type TimingError struct {
	EdgeTiming
	Evidence *EdgeTiming `json:"evidence,omitempty"`
}

// EdgeTiming is the summary of one pairing of the edges.
type EdgeTiming struct {
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
	Edges int     `json:"edges"`
}

// SummarizeTiming summarizes signed edge errors (see boards.RealTime).
func SummarizeTiming(commands, evidence []float64) *TimingError {
	t := &TimingError{EdgeTiming: summarizeEdges(commands)}
	if len(evidence) > 0 {
		e := summarizeEdges(evidence)
		t.Evidence = &e
	}
	return t
}

func summarizeEdges(errs []float64) EdgeTiming {
	abs := make([]float64, len(errs))
	for i, e := range errs {
		abs[i] = math.Abs(e)
	}
	slices.Sort(abs)
	t := EdgeTiming{Edges: len(abs)}
	if len(abs) == 0 {
		return t
	}
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(abs)))) - 1
		return abs[max(0, min(i, len(abs)-1))]
	}
	t.P50, t.P99, t.Max = rank(0.5), rank(0.99), abs[len(abs)-1]
	return t
}

// Summarize computes the mean and the nearest-rank percentiles of v: the
// one latency summary of every board, and of compare.
func Summarize(v []float64) Latency {
	if len(v) == 0 {
		return Latency{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Latency{Mean: sum / float64(len(s)), P50: rank(0.5), P95: rank(0.95), Max: s[len(s)-1]}
}

// taskShares is the plan's estimate of how a task's energy splits.
type taskShares struct {
	compute, nvm, commit float64 // fractions, summing to 1
}

// spendTask books e joules of a whole task (a board that measures tasks,
// not their parts) by the plan's estimate of its parts.
func (en *engine) spendTask(task int, e float64) {
	en.res.EnergyBasis = energyBasisMeasured
	if en.shares == nil {
		en.shares = make([]taskShares, len(en.cfg.Plan.Tasks))
		for i := range en.cfg.Plan.Tasks {
			t := &en.cfg.Plan.Tasks[i]
			sum := t.ReadEnergy + t.ComputeEnergy + t.WriteEnergy + t.CommitEnergy
			if sum > 0 {
				en.shares[i] = taskShares{compute: t.ComputeEnergy / sum, nvm: (t.ReadEnergy + t.WriteEnergy) / sum, commit: t.CommitEnergy / sum}
			} else {
				en.shares[i] = taskShares{compute: 1}
			}
		}
	}
	sh := taskShares{compute: 1}
	if task >= 0 && task < len(en.shares) {
		sh = en.shares[task]
	}
	split := &en.res.Energy
	split.Compute += e * sh.compute
	split.NVM += e * sh.nvm
	split.Commits += e * sh.commit
}
