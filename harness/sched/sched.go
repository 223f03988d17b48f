// Package sched cuts a model into the tasks of a deployment plan: the tile
// shapes of every layer and where progress is committed. Each scheduler is
// one way of keeping progress on an intermittently powered board; all of
// them produce the same plan format and run on the same boards.
package sched

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/harness/kernels"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
)

// SRAMReserve is the SRAM a runtime keeps for its stack, globals and the
// wire protocol's buffers; tiles get the rest.
const SRAMReserve = 1024

// Options tune a scheduler.
type Options struct {
	// ModelBytes, when set, is hashed into the plan (Plan.ModelHash).
	ModelBytes []byte
	// Layout is passed to plan.Layout.
	Layout plan.LayoutOptions
}

// Scheduler makes a plan for a model on a device.
type Scheduler interface {
	Name() string
	// Describe says in one line how the scheduler keeps progress.
	Describe() string
	Schedule(m *model.Model, prof *boards.Profile, opt Options) (*plan.Plan, error)
}

var registry = map[string]Scheduler{}

func register(s Scheduler) { registry[s.Name()] = s }

// Names lists the schedulers, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Get returns the scheduler of that name.
func Get(name string) (Scheduler, error) {
	s, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("unknown scheduler %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return s, nil
}

// Tile is the shape of the output regions a layer is cut into, and R, when
// not 0, the length of the reduction steps each region is computed in (see
// plan.Part).
type Tile struct{ H, W, C, R int }

// EnergyMargin is the share of a power cycle's usable energy (the storage
// budget less a reboot) that one task and its commit may take, so that a
// task still finishes when the estimate is off, the capacitor has aged, or
// the brown-out detector fires early.
const EnergyMargin = 0.8

// Limits bound one task.
type Limits struct {
	SRAM   int     // bytes of working set
	Energy float64 // joules, the task and its commit; 0 means no limit
}

// TaskLimits are the limits of a task on a device: SRAM less the runtime's
// reserve, and EnergyMargin of what a power cycle gives after the reboot.
func TaskLimits(prof *boards.Profile) Limits {
	return Limits{SRAM: prof.SRAMBytes - SRAMReserve, Energy: EnergyMargin * (prof.CycleBudget() - prof.Reboot.Energy)}
}

// fits reports whether a tile of layer l fits the limits, judged on an
// interior tile (it reads the full window; border tiles read less).
func fits(m *model.Model, l *model.Layer, t Tile, lim Limits, prof *boards.Profile) bool {
	if t.R == 0 {
		return fitsPart(m, l, t, plan.Part{}, lim, prof)
	}
	// A step in the middle reads and writes partial sums; the last one
	// reads them and writes the outputs. Both must fit.
	dim, _ := plan.CanSplit(l)
	steps := ceilDiv(dim, t.R)
	mid := plan.Part{Lo: 0, Hi: t.R, Step: 1, Steps: max(steps, 3)}
	last := plan.Part{Lo: 0, Hi: t.R, Step: steps - 1, Steps: steps}
	return fitsPart(m, l, t, mid, lim, prof) && fitsPart(m, l, t, last, lim, prof)
}

func fitsPart(m *model.Model, l *model.Layer, t Tile, part plan.Part, lim Limits, prof *boards.Profile) bool {
	r := kernels.Region{N0: 0, N1: 1, Y0: 0, Y1: t.H, X0: 0, X1: t.W, C0: 0, C1: t.C}
	// An interior tile reads the full window; measure one away from the
	// border when there is room, so padding does not shrink the estimate.
	s := m.OutputShape(l)
	if s.H > t.H {
		r.Y0, r.Y1 = 1, min(1+t.H, s.H)
	}
	if s.W > t.W {
		r.X0, r.X1 = 1, min(1+t.W, s.W)
	}
	cost, needs := plan.Estimate(prof, m, l, r, part)
	if needs.SRAMBytes() > lim.SRAM {
		return false
	}
	commitE, _ := plan.CommitCost(prof)
	return lim.Energy <= 0 || cost.Energy()+commitE <= lim.Energy
}

// halvings lists n, ceil(n/2), ceil(n/4), ..., 1.
func halvings(n int) []int {
	var out []int
	for v := n; ; v = (v + 1) / 2 {
		out = append(out, v)
		if v == 1 {
			break
		}
	}
	return out
}

// LargestTile picks the tile of layer l with the fewest tasks that fits the
// limits: whole rows of all channels if possible, else fewer channels, else
// fewer columns. Softmax keeps every channel (a row is indivisible).
func LargestTile(m *model.Model, l *model.Layer, lim Limits, prof *boards.Profile) (Tile, error) {
	s := m.OutputShape(l)
	best, bestTasks := largestTile(m, l, lim, prof, 0)
	if dim, ok := plan.CanSplit(l); bestTasks < 0 && ok {
		// Not even one output value fits: split its reduction into steps.
		for _, r := range halvings(dim)[1:] {
			t, n := largestTile(m, l, lim, prof, r)
			if n < 0 {
				continue
			}
			if n *= ceilDiv(dim, r); bestTasks < 0 || n < bestTasks {
				best, bestTasks = t, n
			}
		}
	}
	if bestTasks < 0 {
		c1 := 1
		if l.Op == model.OpSoftmax {
			c1 = s.C
		}
		cost, needs := plan.Estimate(prof, m, l, kernels.Region{N0: 0, N1: 1, Y0: 0, Y1: 1, X0: 0, X1: 1, C0: 0, C1: c1}, plan.Part{})
		if needs.SRAMBytes() > lim.SRAM {
			return Tile{}, fmt.Errorf("layer %d (%s): the smallest task needs %d bytes of SRAM, the device gives a task %d", l.Index, l.Op, needs.SRAMBytes(), lim.SRAM)
		}
		return Tile{}, fmt.Errorf("layer %d (%s): livelock: the smallest task needs %.3g J, a power cycle gives a task %.3g J", l.Index, l.Op, cost.Energy(), lim.Energy)
	}
	return best, nil
}

// largestTile finds the tile with reduction steps of length r (0: whole)
// with the fewest tasks, or -1 tasks when none fits.
func largestTile(m *model.Model, l *model.Layer, lim Limits, prof *boards.Profile, r int) (Tile, int) {
	s := m.OutputShape(l)
	chans := halvings(s.C)
	if l.Op == model.OpSoftmax {
		chans = []int{s.C}
	}
	best, bestTasks := Tile{}, -1
	for _, tc := range chans {
		for _, tw := range halvings(s.W) {
			// The largest number of rows that fits (footprint grows with rows).
			lo, hi := 0, s.H
			for lo < hi {
				mid := (lo + hi + 1) / 2
				if fits(m, l, Tile{mid, tw, tc, r}, lim, prof) {
					lo = mid
				} else {
					hi = mid - 1
				}
			}
			if lo == 0 {
				continue
			}
			t := Tile{lo, tw, tc, r}
			n := ceilDiv(s.H, t.H) * ceilDiv(s.W, t.W) * ceilDiv(s.C, t.C)
			if bestTasks < 0 || n < bestTasks {
				best, bestTasks = t, n
			}
			break // fewer columns only help when no row fits
		}
	}
	return best, bestTasks
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// work is one task's region and reduction step.
type work struct {
	r    kernels.Region
	part plan.Part
}

// regions cuts a layer's output into tiles, batch by batch, row band by row
// band, column block by column block, channel block by channel block; with
// a reduction length, each tile becomes its consecutive steps.
func regions(l *model.Layer, s kernels.Shape, t Tile) []work {
	var ws []work
	dim, _ := plan.CanSplit(l)
	for n := 0; n < s.N; n++ {
		for y := 0; y < s.H; y += t.H {
			for x := 0; x < s.W; x += t.W {
				for c := 0; c < s.C; c += t.C {
					r := kernels.Region{N0: n, N1: n + 1, Y0: y, Y1: min(y+t.H, s.H), X0: x, X1: min(x+t.W, s.W), C0: c, C1: min(c+t.C, s.C)}
					if t.R == 0 {
						ws = append(ws, work{r: r})
						continue
					}
					steps := ceilDiv(dim, t.R)
					for k := 0; k < steps; k++ {
						ws = append(ws, work{r: r, part: plan.Part{Lo: k * t.R, Hi: min((k+1)*t.R, dim), Step: k, Steps: steps}})
					}
				}
			}
		}
	}
	return ws
}

// build turns tiles and a commit rule into a priced, laid-out plan.
// commitAfter(layer, i, n) says whether the i-th of a layer's n tasks commits.
func build(name string, m *model.Model, prof *boards.Profile, opt Options, tiles []Tile, commitAfter func(layer, i, n int) bool) (*plan.Plan, error) {
	p := &plan.Plan{
		Version: plan.Version, Model: m.Name, Profile: prof.Name, Scheduler: name,
		WordBytes: prof.WordBytes, WeightBytes: m.WeightBytes(),
		Budget: prof.CycleBudget(), RebootEnergy: prof.Reboot.Energy,
	}
	if opt.ModelBytes != nil {
		sum := sha256.Sum256(opt.ModelBytes)
		p.ModelHash = hex.EncodeToString(sum[:])
	}
	commitE, commitC := plan.CommitCost(prof)
	for li, l := range m.Layers {
		s := m.OutputShape(l)
		rs := regions(l, s, tiles[li])
		lp := plan.LayerPlan{Layer: l.Index, Op: l.Op.String(), TileH: tiles[li].H, TileW: tiles[li].W, TileC: tiles[li].C, TileR: tiles[li].R, Tasks: len(rs)}
		commits, group := 0, 0.0
		for i, w := range rs {
			cost, needs := plan.Estimate(prof, m, l, w.r, w.part)
			t := plan.Task{Layer: l.Index, Region: w.r, Part: w.part, MACs: needs.MACs,
				ReadBytes: needs.InputBytes + needs.WeightBytes + needs.AccInBytes, WriteBytes: needs.OutputBytes + needs.AccOutBytes, SRAMBytes: needs.SRAMBytes(),
				ReadEnergy: cost.ReadEnergy, ComputeEnergy: cost.ComputeEnergy, WriteEnergy: cost.WriteEnergy,
				ReadCycles: cost.ReadCycles, ComputeCycles: cost.ComputeCycles, WriteCycles: cost.WriteCycles,
				Energy: cost.Energy(), Cycles: cost.Cycles()}
			last := li == len(m.Layers)-1 && i == len(rs)-1
			if commitAfter(l.Index, i, len(rs)) || last {
				t.Commit = true
				t.CommitEnergy, t.CommitCycles = commitE, commitC
				t.Energy += commitE
				t.Cycles += commitC
				commits++
			}
			lp.Energy += t.Energy
			group += t.Energy
			if t.Commit {
				lp.MaxCommitGroup = max(lp.MaxCommitGroup, group)
				group = 0
			}
			p.Tasks = append(p.Tasks, t)
		}
		if commits > 0 {
			lp.TasksPerCommit = float64(len(rs)) / float64(commits)
		}
		lp.MaxCommitGroup = max(lp.MaxCommitGroup, group)
		p.Layers = append(p.Layers, lp)
	}
	if err := plan.Layout(p, m, opt.Layout); err != nil {
		return nil, err
	}
	if need := p.NVMBytes + p.WeightBytes; need > prof.NVMBytes {
		return nil, fmt.Errorf("%s does not fit %s: it needs %d bytes of NVM (weights %d, activations and header %d), the device has %d",
			m.Name, prof.Name, need, p.WeightBytes, p.NVMBytes, prof.NVMBytes)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// sramTiles picks, for every layer, the largest tile that fits SRAM and a
// power cycle's energy.
func sramTiles(m *model.Model, prof *boards.Profile) ([]Tile, error) {
	tiles := make([]Tile, len(m.Layers))
	for i, l := range m.Layers {
		t, err := LargestTile(m, l, TaskLimits(prof), prof)
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", m.Name, prof.Name, err)
		}
		tiles[i] = t
	}
	return tiles, nil
}

type tileScheduler struct{}

func (tileScheduler) Name() string { return "tile" }
func (tileScheduler) Describe() string {
	return "tiles sized to fit SRAM and 80% of a power cycle; progress committed after every tile"
}
func (s tileScheduler) Schedule(m *model.Model, prof *boards.Profile, opt Options) (*plan.Plan, error) {
	tiles, err := sramTiles(m, prof)
	if err != nil {
		return nil, err
	}
	return build(s.Name(), m, prof, opt, tiles, func(_, _, _ int) bool { return true })
}

type layerScheduler struct{}

func (layerScheduler) Name() string { return "layer" }
func (layerScheduler) Describe() string {
	return "the tiles of tile; progress committed once per layer"
}
func (s layerScheduler) Schedule(m *model.Model, prof *boards.Profile, opt Options) (*plan.Plan, error) {
	tiles, err := sramTiles(m, prof)
	if err != nil {
		return nil, err
	}
	return build(s.Name(), m, prof, opt, tiles, func(_, i, n int) bool { return i == n-1 })
}

func init() {
	register(tileScheduler{})
	register(layerScheduler{})
}
