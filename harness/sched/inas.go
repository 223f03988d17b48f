package sched

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/kernels"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
)

// inasScheduler follows iNAS (Mendis et al., 2021): a static search, layer
// by layer, over the tile shape and the number of tiles per commit S.
//
// The model it minimizes. iNAS picks the tiling and S that minimize a
// layer's latency on harvested energy: the energy of the layer's tiles and
// commits, plus one reboot at the start of every power cycle, paid for by
// charging time. Not knowing the trace (the harvested power), it minimizes
// the energy, reboots included, which the latency is proportional to:
//
//	E(tiling, S)   = sum of the layer's task energies + ceil(tasks / S) commits
//	npc            = ceil(E / usable)
//	E_total        = E + npc * reboot energy
//
// with usable = TaskLimits(prof).Energy = EnergyMargin * (CycleBudget -
// Reboot.Energy). usable is also the constraint: every commit group (S tasks
// and the commit) must take at most usable, as iNAS requires each commit's
// work to fit what the capacitor holds, with a safety margin. Among equal
// costs the tiling with fewer tasks wins, then the one found first.
//
// The search: rows, columns, output channels and reduction steps range
// over the lengths that cut their dimension into a distinct number of
// balanced blocks (ceil(n/k) for k = 1..n, which include the halvings), the
// rows up to the most with which every task fits SRAM and energy (found by
// bisection: a task's footprint and energy grow with its rows). A reduction
// split is tried only while the whole reduction cannot cover the full
// height: otherwise it only adds steps to tiles already tried. A tiling's
// energy is exact, not extrapolated from an interior tile: the bands,
// column blocks and channel blocks fall into a few classes with the same
// estimate (the same length and the same clipped input extents), so each
// class is priced once and weighted by its count. E_total falls as S grows
// (fewer commits, and npc never grows), so S is the largest that meets the
// constraint, judged as S times the costliest task plus the commit (the
// layer's commit groups are S consecutive tasks, so this bounds every one).
// The layers are searched in parallel; the result does not depend on it.
//
// In this plan format every task writes its outputs back when it ends (iNAS
// keeps S tiles' outputs in SRAM and writes them back at the commit), so S
// saves only the progress-word writes; where the largest tiles fill a
// power cycle's share (the MSP430 profile), S comes out as 1.
type inasScheduler struct{}

func (inasScheduler) Name() string { return "inas" }
func (inasScheduler) Describe() string {
	return "iNAS: per layer the tile shape and tiles per commit S that minimize the energy with one reboot per power cycle, every commit group within 80% of a power cycle"
}

func (s inasScheduler) Schedule(m *model.Model, prof *profiles.Profile, opt Options) (*plan.Plan, error) {
	choices, err := inasSearch(m, prof)
	if err != nil {
		return nil, fmt.Errorf("%s: %s on %s: %w", s.Name(), m.Name, prof.Name, err)
	}
	lps := make([]plan.LayerPlan, len(m.Layers))
	tiles := make([]Tile, len(m.Layers))
	for i, l := range m.Layers {
		c := choices[i]
		tiles[i] = c.Tile
		lps[i] = plan.LayerPlan{Layer: l.Index, Op: l.Op.String(), TileH: c.Tile.H, TileW: c.Tile.W, TileC: c.Tile.C, TileR: c.Tile.R, CommitEvery: c.S}
	}
	if err := checkTaskCount(s.Name(), m, prof, tiles); err != nil {
		return nil, err
	}
	p, err := build(s.Name(), m, prof, opt, lps)
	if err != nil {
		return nil, err
	}
	// The search bounds every commit group; check the priced plan anyway.
	usable := TaskLimits(prof).Energy
	for _, lp := range p.Layers {
		if lp.MaxCommitGroup > usable {
			return nil, fmt.Errorf("%s: %s on %s: layer %d (%s): a commit group of %d tasks takes %.4g J, more than the %.4g J a power cycle gives (the search's bound is wrong)",
				s.Name(), m.Name, prof.Name, lp.Layer, lp.Op, lp.CommitEvery, lp.MaxCommitGroup, usable)
		}
	}
	return p, nil
}

// InasChoice is what the iNAS search picked for one layer and what it
// estimates.
type InasChoice struct {
	Tile   Tile
	S      int     // tasks per commit
	Tasks  int     // tasks of the layer
	Energy float64 // E(tiling, S): tasks and commits, J
	Cycles int     // npc = ceil(Energy / usable)
	Total  float64 // Energy + Cycles * reboot energy, J
}

// inasSearch runs the per-layer search on every layer, in parallel.
func inasSearch(m *model.Model, prof *profiles.Profile) ([]InasChoice, error) {
	choices := make([]InasChoice, len(m.Layers))
	errs := make([]error, len(m.Layers))
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(runtime.GOMAXPROCS(0), len(m.Layers)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				choices[i], errs[i] = inasLayer(m, m.Layers[i], prof)
			}
		}()
	}
	for i := range m.Layers {
		work <- i
	}
	close(work)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return choices, nil
}

// inasLayer searches the tiling and S of one layer.
func inasLayer(m *model.Model, l *model.Layer, prof *profiles.Profile) (InasChoice, error) {
	lim := TaskLimits(prof)
	usable := lim.Energy
	commitE, _ := plan.CommitCost(prof)
	s := m.OutputShape(l)
	lc := newLayerCoster(m, l, prof)

	chans := balanced(s.C)
	if l.Op == model.OpSoftmax {
		chans = []int{s.C}
	}
	steps := []int{0}
	if dim, ok := plan.CanSplit(l); ok && dim > 1 {
		steps = append(steps, balanced(dim)[1:]...)
	}
	// price is the best S for tiling t and what the layer then costs;
	// false when not even one task and its commit fit.
	price := func(t Tile) (InasChoice, bool) {
		e := lc.cost(t)
		if e.sram > lim.SRAM || e.max <= 0 {
			return InasChoice{}, false
		}
		S := e.tasks // no energy limit
		if usable > 0 {
			S = int(math.Floor((usable - commitE) / (e.max * (1 + 1e-9))))
		}
		if S < 1 {
			return InasChoice{}, false
		}
		S = min(S, e.tasks)
		c := InasChoice{Tile: t, S: S, Tasks: e.tasks}
		c.Energy = e.sum + float64(ceilDiv(e.tasks, S))*commitE
		if usable > 0 {
			c.Cycles = int(math.Ceil(c.Energy / usable))
		}
		c.Total = c.Energy + float64(c.Cycles)*prof.Reboot.Energy
		return c, true
	}
	best, found := InasChoice{}, false
	for _, tc := range chans {
		for _, tw := range balanced(s.W) {
			for _, tr := range steps {
				// The most rows that fit (a task's footprint and energy
				// grow with its rows), then every balanced band height up
				// to it.
				lo, hi := 0, s.H
				for lo < hi {
					mid := (lo + hi + 1) / 2
					if lc.fits(Tile{mid, tw, tc, tr}, lim) {
						lo = mid
					} else {
						hi = mid - 1
					}
				}
				for _, th := range balanced(s.H) {
					if th > lo {
						continue
					}
					if c, ok := price(Tile{th, tw, tc, tr}); ok && (!found || better(c, best)) {
						best, found = c, true
					}
				}
				if lo == s.H {
					// The whole height fits: a split reduction would only
					// add steps (and partial sums) to tiles already tried.
					break
				}
			}
		}
	}
	if !found {
		// Nothing fits: the smallest task says why.
		return InasChoice{}, lc.smallestTaskError(valueTile(m, l), lim)
	}
	return best, nil
}

// better reports whether a costs less than b, or as much (to a relative
// 1e-9) with fewer tasks.
func better(a, b InasChoice) bool {
	if math.Abs(a.Total-b.Total) <= 1e-9*max(a.Total, b.Total) {
		return a.Tasks < b.Tasks
	}
	return a.Total < b.Total
}

// balanced lists the lengths that cut n into a distinct number of balanced
// blocks, longest first: ceil(n/k) for k = 1..n.
func balanced(n int) []int {
	var out []int
	for k := 1; k <= n; {
		v := ceilDiv(n, k)
		out = append(out, v)
		if v == 1 {
			break
		}
		// The next k with a shorter block: the least k' with
		// ceil(n/k') <= v-1, that is k' >= n/(v-1).
		k = ceilDiv(n, v-1)
	}
	return out
}

// layerCost is the exact estimate of one tiling of a layer.
type layerCost struct {
	tasks int
	sum   float64 // all tasks, without commits
	max   float64 // the costliest task, without its commit
	sram  int     // the largest working set
	// operands is the most input and weight bytes a task reads (the
	// operands of its vector MACs).
	operands int
}

// blockClass is a class of blocks along one dimension whose tasks have the
// same estimate: a representative block and how many there are.
type blockClass struct{ lo, hi, count int }

// layerCoster prices the tilings of one layer, caching the block classes
// of every block length and the estimate of every representative region.
type layerCoster struct {
	m       *model.Model
	l       *model.Layer
	prof    *profiles.Profile
	shape   kernels.Shape
	dim     int
	classes [3]map[[2]int][]blockClass // by dimension (y, x, c), then by (block length, reduction step)
	cache   map[costKey]costVal
}

type costKey struct {
	r    kernels.Region
	part plan.Part
}

type costVal struct {
	energy   float64
	sram     int
	operands int
}

func newLayerCoster(m *model.Model, l *model.Layer, prof *profiles.Profile) *layerCoster {
	lc := &layerCoster{m: m, l: l, prof: prof, shape: m.OutputShape(l), cache: map[costKey]costVal{}}
	lc.dim, _ = plan.CanSplit(l)
	for d := range lc.classes {
		lc.classes[d] = map[[2]int][]blockClass{}
	}
	return lc
}

// parts lists the reduction steps of a region with steps of length r, as
// classes: a step and how many steps share its estimate. Only the first
// and the last step differ from the middle ones, except in average pooling,
// where a step's window rows are clipped by the border differently.
func (lc *layerCoster) parts(r int) []struct {
	p     plan.Part
	count int
} {
	type pc = struct {
		p     plan.Part
		count int
	}
	if r == 0 {
		return []pc{{plan.Part{}, 1}}
	}
	steps := ceilDiv(lc.dim, r)
	step := func(k int) plan.Part {
		return plan.Part{Lo: k * r, Hi: min((k+1)*r, lc.dim), Step: k, Steps: steps}
	}
	var out []pc
	if lc.l.Op == model.OpAveragePool2D || steps <= 3 {
		for k := 0; k < steps; k++ {
			out = append(out, pc{step(k), 1})
		}
		return out
	}
	return []pc{{step(0), 1}, {step(1), steps - 2}, {step(steps - 1), 1}}
}

// blockClasses groups the blocks of length n along dimension d (0 rows,
// 1 columns, 2 channels) by what the estimate depends on: the block's
// length and the extents of the input regions it reads, for every step of
// a reduction of steps of length r that can change them (the window rows of
// average pooling).
func (lc *layerCoster) blockClasses(d, n, r int) []blockClass {
	if lc.l.Op != model.OpAveragePool2D || d != 0 {
		r = 0 // only pooling's window rows move with the step
	}
	key := [2]int{n, r}
	if cs, ok := lc.classes[d][key]; ok {
		return cs
	}
	size := [3]int{lc.shape.H, lc.shape.W, lc.shape.C}[d]
	var cs []blockClass
	index := map[string]int{}
	for lo := 0; lo < size; lo += n {
		hi := min(lo+n, size)
		reg := kernels.Region{N0: 0, N1: 1, Y0: 0, Y1: 1, X0: 0, X1: 1, C0: 0, C1: 1}
		switch d {
		case 0:
			reg.Y0, reg.Y1 = lo, hi
		case 1:
			reg.X0, reg.X1 = lo, hi
		default:
			reg.C0, reg.C1 = lo, hi
		}
		sig := strconv.Itoa(hi - lo)
		for _, p := range lc.parts(r) {
			for _, in := range plan.LayerNeeds(lc.m, lc.l, reg, p.p).Inputs {
				ext := [3][2]int{{in.Y0, in.Y1}, {in.X0, in.X1}, {in.C0, in.C1}}[d]
				sig += "," + strconv.Itoa(ext[1]-ext[0])
			}
		}
		if i, ok := index[sig]; ok {
			cs[i].count++
			continue
		}
		index[sig] = len(cs)
		cs = append(cs, blockClass{lo, hi, 1})
	}
	lc.classes[d][key] = cs
	return cs
}

// cost prices tiling t of the layer: every task, from its class.
func (lc *layerCoster) cost(t Tile) layerCost {
	s := lc.shape
	ys, xs, cs := lc.blockClasses(0, t.H, t.R), lc.blockClasses(1, t.W, t.R), lc.blockClasses(2, t.C, t.R)
	parts := lc.parts(t.R)
	var out layerCost
	steps := 0
	for _, p := range parts {
		steps += p.count
	}
	out.tasks = s.N * ceilDiv(s.H, t.H) * ceilDiv(s.W, t.W) * ceilDiv(s.C, t.C) * steps
	for _, y := range ys {
		for _, x := range xs {
			for _, c := range cs {
				r := kernels.Region{N0: 0, N1: 1, Y0: y.lo, Y1: y.hi, X0: x.lo, X1: x.hi, C0: c.lo, C1: c.hi}
				for _, p := range parts {
					v := lc.estimate(r, p.p)
					n := s.N * y.count * x.count * c.count * p.count
					out.sum += float64(n) * v.energy
					out.max = max(out.max, v.energy)
					out.sram = max(out.sram, v.sram)
					out.operands = max(out.operands, v.operands)
				}
			}
		}
	}
	return out
}

// fits reports whether every task of tiling t fits the limits with its
// commit: exact, unlike the package's fits, which judges one tile one step
// from the border (with a window wider than twice the stride, that tile is
// still clipped by the padding and reads less than the interior ones).
func (lc *layerCoster) fits(t Tile, lim Limits) bool {
	e := lc.cost(t)
	commitE, _ := plan.CommitCost(lc.prof)
	return e.sram <= lim.SRAM && (lim.Energy <= 0 || e.max+commitE <= lim.Energy)
}

func (lc *layerCoster) estimate(r kernels.Region, p plan.Part) costVal {
	k := costKey{r, p}
	if v, ok := lc.cache[k]; ok {
		return v
	}
	cost, needs := plan.Estimate(lc.prof, lc.m, lc.l, r, p)
	v := costVal{cost.Energy(), needs.SRAMBytes(), needs.InputBytes + needs.WeightBytes}
	lc.cache[k] = v
	return v
}

// EnergyWithReboots estimates one inference of plan p with the reboots it
// needs, by iNAS's model applied layer by layer (what the inas scheduler
// minimizes): a layer of energy E takes ceil(E / usable) power cycles, each
// starting with a reboot; usable is TaskLimits(prof).Energy. It returns the
// plan's energy plus those reboots, and the number of power cycles.
func EnergyWithReboots(p *plan.Plan, prof *profiles.Profile) (total float64, cycles int) {
	usable := TaskLimits(prof).Energy
	for _, lp := range p.Layers {
		if usable > 0 {
			cycles += int(math.Ceil(lp.Energy / usable))
		}
	}
	return p.Energy() + float64(cycles)*prof.Reboot.Energy, cycles
}

func init() { register(inasScheduler{}) }
