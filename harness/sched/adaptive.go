package sched

import (
	"fmt"

	"github.com/batteryless/harness/boards"
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
func adaptiveLimits(prof *boards.Profile, opt Options) Limits {
	lim := Limits{SRAM: prof.SRAMBytes - SRAMReserve, Energy: AdaptiveMargin * prof.CycleBudget()}
	if opt.Trace != nil && prof.Power.Efficiency*opt.Trace.MeanW >= prof.ActivePowerW {
		lim.Energy = 0
	}
	return lim
}

func (s adaptive) Schedule(m *model.Model, prof *boards.Profile, opt Options) (*plan.Plan, error) {
	lim := adaptiveLimits(prof, opt)
	tiles := make([]Tile, len(m.Layers))
	for i, l := range m.Layers {
		t, err := LargestTile(m, l, lim, prof)
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", m.Name, prof.Name, err)
		}
		tiles[i] = t
	}
	p, err := buildWith(s.Name(), m, prof, opt, layerPlans(m, tiles, 0), func(p *plan.Plan) {
		p.RuntimeRule = true
		p.SenseEnergy, p.SenseCycles = prof.ADC.VoltageSense.Energy, prof.ADC.VoltageSense.Cycles
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func init() { register(adaptive{}) }
