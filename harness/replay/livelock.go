package replay

import (
	"fmt"
	"math"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/power"
)

// LivelockError says a commit group cannot finish in the power cycles the
// trace gives.
type LivelockError struct {
	Task    int
	Layer   int
	Energy  float64 // of the stretch from the last commit through the task's commit, J
	Budget  float64 // a power cycle's storage budget less the reboot, J
	Cycles  int     // power cycles without progress (0 when found from the plan)
	Message string
}

func (e *LivelockError) Error() string { return e.Message }

// CheckPlan finds commit groups that can never finish: those whose energy
// exceeds what a power cycle gives from storage after the reboot plus what
// the converter can harvest at the trace's peak power while they run.
func CheckPlan(p *plan.Plan, prof *profiles.Profile, cfg power.Config, peakHarvestW float64) error {
	budget := cfg.CycleBudget() - prof.Reboot.Energy
	groups := p.Groups()
	if p.RuntimeRule {
		// The board commits whenever energy runs low and wakes from its
		// sleeps without a reboot: each task alone, with a commit, must
		// fit a full charge.
		budget = cfg.CycleBudget()
		commitE, commitC := plan.CommitCost(prof)
		groups = groups[:0]
		for i, t := range p.Tasks {
			groups = append(groups, plan.Group{First: i, Last: i, Energy: t.Energy + commitE + p.SenseEnergy, Cycles: t.Cycles + commitC + p.SenseCycles})
		}
	}
	for _, g := range groups {
		secs := prof.Seconds(g.Cycles)
		extra := cfg.Efficiency * peakHarvestW * secs
		if g.Energy > budget+extra {
			t := p.Tasks[g.Last]
			return &LivelockError{Task: g.Last, Layer: t.Layer, Energy: g.Energy, Budget: budget,
				Message: fmt.Sprintf("livelock: tasks %d..%d (layer %d) need %.4g J between commits, but a power cycle gives %.4g J after the reboot (plus at most %.4g J harvested at the trace's peak)",
					g.First, g.Last, t.Layer, g.Energy, budget, extra)}
		}
	}
	return nil
}

// CheckTurnOn refuses a trace whose peak harvest can never charge the
// capacitor to the turn-on voltage: with leakage R the capacitor settles
// where the harvest equals the leak, at V = sqrt(eta*P*R) (and no higher
// than its clamp), so a board on such a trace never runs, however long the
// trace is looped.
func CheckTurnOn(cfg power.Config, peakHarvestW float64) error {
	if peakHarvestW <= 0 {
		return fmt.Errorf("the trace harvests nothing (peak %g W): the board never turns on", peakHarvestW)
	}
	vmax := cfg.Cap.Vmax
	if !math.IsInf(cfg.Cap.Rleak, 1) {
		vmax = min(vmax, math.Sqrt(cfg.Efficiency*peakHarvestW*cfg.Cap.Rleak))
	}
	if vmax < cfg.Th.Von {
		return fmt.Errorf("the trace's peak harvest %.3g W (%.0f %% reaching the capacitor) charges it to at most %.3f V against a leakage of %.3g ohm, below the turn-on voltage %.3f V: the board never turns on",
			peakHarvestW, 100*cfg.Efficiency, vmax, cfg.Cap.Rleak, cfg.Th.Von)
	}
	return nil
}

func groupOf(p *plan.Plan, task int) plan.Group {
	for _, g := range p.Groups() {
		if g.First <= task && task <= g.Last {
			return g
		}
	}
	return plan.Group{First: task, Last: task}
}
