package sched

import (
	"fmt"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
)

// sonicScheduler follows SONIC (Gobieski et al., ASPLOS 2019): loop
// continuation. SONIC keeps its loop indices in NVM and commits them after
// every iteration of the inner loop, writing outputs to a second buffer so
// that a re-run iteration reads what it read the first time. In the plan
// format that is the finest granularity there is: every task computes one
// output value (a 1x1x1 tile; a softmax row, which is indivisible) and
// commits (CommitEvery 1). A value's reduction is split into steps only
// when the value alone does not fit a task's limits, and then into the
// fewest steps that fit. The double buffering is plan.Layout's rule: no task
// overwrites what an uncommitted task reads.
type sonicScheduler struct{}

func (sonicScheduler) Name() string { return "sonic" }
func (sonicScheduler) Describe() string {
	return "SONIC loop continuation: one output value per task, progress committed after every value"
}

func (s sonicScheduler) Schedule(m *model.Model, prof *profiles.Profile, opt Options) (*plan.Plan, error) {
	return finePlan(s.Name(), m, prof, opt, func(l *model.Layer, lim Limits) (Tile, error) {
		return outputValueTile(newLayerCoster(m, l, prof), lim, nil)
	})
}

// finePlan is the plan of the fine-grained baselines: each layer's tile from
// tileOf within the task limits, widened where the task count would
// overflow the progress word, a commit after every task.
func finePlan(name string, m *model.Model, prof *profiles.Profile, opt Options, tileOf func(*model.Layer, Limits) (Tile, error)) (*plan.Plan, error) {
	lim := TaskLimits(prof)
	tiles := make([]Tile, len(m.Layers))
	for i, l := range m.Layers {
		t, err := tileOf(l, lim)
		if err != nil {
			return nil, fmt.Errorf("%s: %s on %s: %w", name, m.Name, prof.Name, err)
		}
		tiles[i] = t
	}
	fitTaskCount(m, prof, tiles, lim)
	if err := checkTaskCount(name, m, prof, tiles); err != nil {
		return nil, err
	}
	return build(name, m, prof, opt, layerPlans(m, tiles, 1))
}

// valueTile is the tile of one output value of layer l: 1x1x1, or a whole
// row of channels for a softmax.
func valueTile(m *model.Model, l *model.Layer) Tile {
	if l.Op == model.OpSoftmax {
		return Tile{1, 1, m.OutputShape(l).C, 0}
	}
	return Tile{1, 1, 1, 0}
}

// outputValueTile is the tile of one output value of layer l when all
// such tasks fit the limits (and ok, when not nil, accepts it); else the
// same value with its reduction cut into the fewest steps that fit. The
// error names the layer and what its costliest smallest task needs.
func outputValueTile(lc *layerCoster, lim Limits, ok func(Tile) bool) (Tile, error) {
	t := valueTile(lc.m, lc.l)
	accept := func(t Tile) bool { return lc.fits(t, lim) && (ok == nil || ok(t)) }
	if accept(t) {
		return t, nil
	}
	if dim, splittable := plan.CanSplit(lc.l); splittable && dim > 1 {
		if r := largestStep(dim, func(r int) bool { return accept(Tile{t.H, t.W, t.C, r}) }); r > 0 {
			return Tile{t.H, t.W, t.C, r}, nil
		}
	}
	return Tile{}, lc.smallestTaskError(t, lim)
}

// largestStep returns the length of the reduction steps that cut a
// reduction of dim into the fewest steps for which ok holds, balanced (all
// steps but the last of equal length, none longer than needed), or 0 when
// not even a step of one fits. The search assumes ok is monotone (true for
// r implies true for shorter steps: a step's footprint and energy grow with
// r); the step it returns satisfies ok.
func largestStep(dim int, ok func(r int) bool) int {
	if dim < 2 || !ok(1) {
		return 0
	}
	lo, hi := 1, dim-1 // a step of dim is no split
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if ok(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if r := ceilDiv(dim, ceilDiv(dim, lo)); ok(r) {
		return r
	}
	return lo
}

// smallestTaskError explains why tile t of the layer (and so every tile)
// does not fit: the SRAM or the energy of its costliest task against the
// limits.
func (lc *layerCoster) smallestTaskError(t Tile, lim Limits) error {
	l := lc.l
	e := lc.cost(t)
	commitE, _ := plan.CommitCost(lc.prof)
	if e.sram > lim.SRAM {
		return fmt.Errorf("layer %d (%s): the smallest task (%s) needs %d bytes of SRAM, the device gives a task %d",
			l.Index, l.Op, tileString(t), e.sram, lim.SRAM)
	}
	return fmt.Errorf("layer %d (%s): livelock: the costliest of the smallest tasks (%s) needs %.4g J with its commit, a power cycle gives a task %.4g J",
		l.Index, l.Op, tileString(t), e.max+commitE, lim.Energy)
}

// layerTasks is the number of tasks tile t cuts layer l into.
func layerTasks(m *model.Model, l *model.Layer, t Tile) int {
	s := m.OutputShape(l)
	n := s.N * ceilDiv(s.H, t.H) * ceilDiv(s.W, t.W) * ceilDiv(s.C, t.C)
	if dim, _ := plan.CanSplit(l); t.R > 0 {
		n *= ceilDiv(dim, t.R)
	}
	return n
}

// checkTaskCount fails, naming the layer that goes past it, when the tiles
// make more tasks than a plan's progress word can count.
func checkTaskCount(name string, m *model.Model, prof *profiles.Profile, tiles []Tile) error {
	limit := plan.MaxTasksFor(prof.WordBytes)
	total, over := 0, -1
	for i, l := range m.Layers {
		total += layerTasks(m, l, tiles[i])
		if total > limit && over < 0 {
			over = i
		}
	}
	if over < 0 {
		return nil
	}
	l := m.Layers[over]
	return fmt.Errorf("%s: %s on %s: %d tasks, more than the %d a plan's progress word counts (layer %d, %s, with %d tasks of %s, goes past it)",
		name, m.Name, prof.Name, total, limit, l.Index, l.Op, layerTasks(m, l, tiles[over]), tileString(tiles[over]))
}

// fitTaskCount widens the finest tiles until the plan's tasks fit the
// progress word. SONIC and HAWAII keep progress per loop iteration, which
// their own runtimes store as several loop indices; this plan format keeps
// one progress word, which on a 16-bit MSP430 counts 65,534 tasks. Where one
// output value per task would overflow it, the layer with the most tasks
// takes runs of values along its rows (then rows) instead, as long as such a
// task still fits the limits; the commit after every task stays.
func fitTaskCount(m *model.Model, prof *profiles.Profile, tiles []Tile, lim Limits) {
	limit := plan.MaxTasksFor(prof.WordBytes)
	fixed := make([]bool, len(tiles))
	for {
		total, worst := 0, -1
		for i, l := range m.Layers {
			n := layerTasks(m, l, tiles[i])
			total += n
			if !fixed[i] && (worst < 0 || n > layerTasks(m, m.Layers[worst], tiles[worst])) {
				worst = i
			}
		}
		if total <= limit || worst < 0 {
			return
		}
		l, t, s := m.Layers[worst], tiles[worst], m.OutputShape(m.Layers[worst])
		switch {
		case t.W < s.W:
			t.W = min(2*t.W, s.W)
		case t.H < s.H:
			t.H = min(2*t.H, s.H)
		default:
			fixed[worst] = true
			continue
		}
		if newLayerCoster(m, l, prof).fits(t, lim) {
			tiles[worst] = t
		} else {
			fixed[worst] = true
		}
	}
}

func tileString(t Tile) string {
	s := fmt.Sprintf("%dx%dx%d", t.H, t.W, t.C)
	if t.R > 0 {
		s += fmt.Sprintf(" r%d", t.R)
	}
	return s
}

func init() { register(sonicScheduler{}) }
