package sched

import (
	"fmt"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/kernels"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
)

// adaptive is the harness's own scheduler. What it optimizes, and why:
//
// On a harvested supply the latency of an inference is, except when the
// harvest exceeds the board's draw, the energy it spends divided by the
// power harvested. The energy is the computation's own plus three
// overheads: data movement repeated because tiles are small (every tile
// re-reads its input window and its weights, and every DMA has a fixed
// cost), commits, and reboots (on the MSP430FR5994 a reboot costs 77.9 uJ,
// three quarters of what a 100 uF capacitor holds between 2.8 V and 2.4 V)
// with the work lost at each brown-out. The baselines fight the last two
// with small tasks; adaptive removes their cause instead:
//
//   - A run-time rule (plan.RuntimeRule) on the board: before each task it
//     reads the supply voltage; when the energy left above brown-out does not
//     cover the task and a commit, it commits the work done so far and sleeps
//     until the capacitor is back at the turn-on voltage. The board then rarely
//     browns out, so it rarely reboots or loses work, and the progress it
//     keeps is committed exactly when it is at risk.
//   - Tiles as large as SRAM allows and as 80 % of a full charge of the
//     capacitor (not what is left after a reboot) can carry: fewer, larger
//     tiles move less data and pay fewer fixed costs. The trace decides the
//     regime: when its mean harvest covers the board's draw, the capacitor
//     never runs down and SRAM alone limits a tile.
//   - Planned commits once per layer: the rule commits whenever energy runs
//     low, so commits between are pure overhead. The expected loss of a batch
//     cut by a brown-out is the work since the last commit times the chance
//     of a brown-out the rule did not foresee, which is near zero because the
//     rule starts a task only when the capacitor alone can finish it.
type adaptive struct{}

// AdaptiveMargin is the share of a full charge one task may plan to use.
const AdaptiveMargin = 0.8

func (adaptive) Name() string { return "adaptive" }
func (adaptive) Describe() string {
	return "trace-aware tiles sized to a full charge; per-layer commits plus a run-time voltage rule that commits and sleeps before energy runs out"
}

// adaptiveLimits are the task limits: SRAM, and AdaptiveMargin of a full
// charge. When the trace's mean harvest (after the converter) covers the
// board's whole draw, the capacitor does not run down while the board
// works, and only SRAM limits a task.
//
// Measured on the bundled and REACT traces (2026-11-26): margins 0.3, 0.5,
// 0.8 and 0.95 of a full charge gave mean latencies 1.58-1.82x, 1.22-1.38x,
// 1.14-1.26x and 1.15-1.31x the lower bound; stretching the charge by the
// share of the draw a below-draw mean harvest covers made it worse (1.34x
// on rf-office against 1.26x), since the rule starts a task only on what
// the capacitor holds.
func adaptiveLimits(prof *profiles.Profile, opt Options) Limits {
	lim := Limits{SRAM: prof.SRAMBytes - SRAMReserve, Energy: AdaptiveMargin * prof.CycleBudget()}
	if opt.Trace != nil && prof.Power.Efficiency*opt.Trace.MeanW >= prof.ActivePowerW {
		lim.Energy = 0
	}
	return lim
}

func (s adaptive) Schedule(m *model.Model, prof *profiles.Profile, opt Options) (*plan.Plan, error) {
	lim := adaptiveLimits(prof, opt)
	tiles := make([]Tile, len(m.Layers))
	for i, l := range m.Layers {
		t, err := cheapestTile(m, l, lim, prof)
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", m.Name, prof.Name, err)
		}
		tiles[i] = t
	}
	p, err := buildWith(s.Name(), m, prof, opt, layerPlans(m, tiles, 0), func(p *plan.Plan) { withRule(p, prof) })
	if err != nil {
		return nil, err
	}
	return p, nil
}

// StorageOf is the profile's capacitor and thresholds, as a run-time rule
// on the board reads them (plan.Storage).
func StorageOf(prof *profiles.Profile) *plan.Storage {
	return &plan.Storage{CapacitanceF: prof.Power.CapacitanceF, VonV: prof.Power.VonV, VoffV: prof.Power.VoffV}
}

// cheapestTile picks the tile of layer l whose tasks cost the least energy
// in all (every task re-reads its input window and its weights, so the
// shape decides how often each byte crosses from NVM): for each channel
// block and column block, the most rows that fit the limits; when no
// output value fits whole, reduction steps as LargestTile makes them.
func cheapestTile(m *model.Model, l *model.Layer, lim Limits, prof *profiles.Profile) (Tile, error) {
	s := m.OutputShape(l)
	chans := halvings(s.C)
	if l.Op == model.OpSoftmax {
		chans = []int{s.C}
	}
	best, bestE := Tile{}, -1.0
	for _, tc := range chans {
		for _, tw := range halvings(s.W) {
			lo := maxRows(m, l, tw, tc, 0, lim, prof)
			if lo == 0 {
				continue
			}
			t := Tile{lo, tw, tc, 0}
			if e := layerEnergy(m, l, t, prof); bestE < 0 || e < bestE {
				best, bestE = t, e
			}
		}
	}
	if bestE < 0 {
		return LargestTile(m, l, lim, prof)
	}
	return best, nil
}

// layerEnergy is the estimated energy of all of a layer's tasks with tile
// t, run back to back without a brown-out: a task finds in SRAM what the
// task before it read, when it needs the same (see plan.Task's
// ResidentReadEnergy).
func layerEnergy(m *model.Model, l *model.Layer, t Tile, prof *profiles.Profile) float64 {
	lp := []plan.LayerPlan{{Layer: l.Index, TileH: t.H, TileW: t.W, TileC: t.C, TileR: t.R, CommitEvery: 0}}
	e := 0.0
	tasks := expandLayer(m, l, lp[0])
	for i := range tasks {
		task := &tasks[i]
		c, _ := plan.Estimate(prof, m, l, task.Region, task.Part)
		e += c.Energy()
		if i > 0 {
			prev := &tasks[i-1]
			if sameInputs(m, l, prev, task) {
				e -= c.InputReadEnergy
			}
			if prev.Region.C0 == task.Region.C0 && prev.Region.C1 == task.Region.C1 && prev.Part == task.Part {
				e -= c.WeightReadEnergy
			}
		}
	}
	return e
}

// expandLayer lists one layer's tasks for a schedule (the order of Expand).
func expandLayer(m *model.Model, l *model.Layer, lp plan.LayerPlan) []plan.Task {
	s := m.OutputShape(l)
	var ts []plan.Task
	for n := 0; n < s.N; n++ {
		for y := 0; y < s.H; y += lp.TileH {
			for x := 0; x < s.W; x += lp.TileW {
				for c := 0; c < s.C; c += lp.TileC {
					ts = append(ts, plan.Task{Layer: l.Index, Region: kernels.Region{N0: n, N1: n + 1, Y0: y, Y1: min(y+lp.TileH, s.H), X0: x, X1: min(x+lp.TileW, s.W), C0: c, C1: min(c+lp.TileC, s.C)}})
				}
			}
		}
	}
	return ts
}

func init() { register(adaptive{}) }
