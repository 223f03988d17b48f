// Package sched cuts a model into the tasks of a deployment plan: the tile
// shapes of every layer and where progress is committed. Each scheduler is
// one way of keeping progress on an intermittently powered board; all of
// them produce the same plan format and run on the same boards.
package sched

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/kernels"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/traces"
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
	// Trace, when set, describes the harvested power the plan will run
	// on (schedulers that use the trace read it; the others ignore it).
	Trace *traces.Stats
}

// Scheduler makes a plan for a model on a device.
type Scheduler interface {
	Name() string
	// Describe says in one line how the scheduler keeps progress.
	Describe() string
	Schedule(m *model.Model, prof *profiles.Profile, opt Options) (*plan.Plan, error)
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
func TaskLimits(prof *profiles.Profile) Limits {
	e := EnergyMargin * (prof.CycleBudget() - prof.Reboot.Energy)
	if e <= 0 {
		// The reboot alone takes the whole charge: no task fits (0 would
		// mean "no limit").
		e = math.SmallestNonzeroFloat64
	}
	return Limits{SRAM: prof.SRAMBytes - SRAMReserve, Energy: e}
}

// fits reports whether a tile of layer l fits the limits, judged on an
// interior tile (it reads the full window; border tiles read less).
func fits(m *model.Model, l *model.Layer, t Tile, lim Limits, prof *profiles.Profile) bool {
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

func fitsPart(m *model.Model, l *model.Layer, t Tile, part plan.Part, lim Limits, prof *profiles.Profile) bool {
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
func LargestTile(m *model.Model, l *model.Layer, lim Limits, prof *profiles.Profile) (Tile, error) {
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
func largestTile(m *model.Model, l *model.Layer, lim Limits, prof *profiles.Profile, r int) (Tile, int) {
	s := m.OutputShape(l)
	chans := halvings(s.C)
	if l.Op == model.OpSoftmax {
		chans = []int{s.C}
	}
	best, bestTasks := Tile{}, -1
	for _, tc := range chans {
		for _, tw := range halvings(s.W) {
			lo := maxRows(m, l, tw, tc, r, lim, prof)
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

// maxRows is the most output rows a tile of tw columns, tc channels and
// reduction steps of r may have within the limits (0 if not even one row
// fits); the footprint and the energy grow with the rows.
func maxRows(m *model.Model, l *model.Layer, tw, tc, r int, lim Limits, prof *profiles.Profile) int {
	lo, hi := 0, m.OutputShape(l).H
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fits(m, l, Tile{mid, tw, tc, r}, lim, prof) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// Price fills in the estimated costs of a plan's tasks and the per-layer
// summaries, from the device profile.
func Price(p *plan.Plan, m *model.Model, prof *profiles.Profile) {
	commitE, commitC := plan.CommitCost(prof)
	for li := range p.Layers {
		lp := &p.Layers[li]
		lp.Energy, lp.MaxCommitGroup, lp.TasksPerCommit = 0, 0, 0
	}
	group := 0.0
	commits := make([]int, len(p.Layers))
	for i := range p.Tasks {
		t := &p.Tasks[i]
		l := m.Layers[t.Layer]
		cost, needs := plan.Estimate(prof, m, l, t.Region, t.Part)
		t.MACs = needs.MACs
		t.ReadBytes = needs.InputBytes + needs.WeightBytes + needs.AccInBytes
		t.WriteBytes = needs.OutputBytes + needs.AccOutBytes
		t.SRAMBytes = needs.SRAMBytes()
		t.ReadEnergy, t.ComputeEnergy, t.WriteEnergy = cost.ReadEnergy, cost.ComputeEnergy, cost.WriteEnergy
		t.ReadCycles, t.ComputeCycles, t.WriteCycles = cost.ReadCycles, cost.ComputeCycles, cost.WriteCycles
		t.Energy, t.Cycles = cost.Energy(), cost.Cycles()
		t.ResidentReadEnergy, t.ResidentReadCycles = t.ReadEnergy, t.ReadCycles
		if i > 0 && p.Tasks[i-1].Layer == t.Layer {
			prev := &p.Tasks[i-1]
			if sameInputs(m, l, prev, t) {
				t.ResidentReadEnergy -= cost.InputReadEnergy
				t.ResidentReadCycles -= cost.InputReadCycles
			}
			if prev.Region.C0 == t.Region.C0 && prev.Region.C1 == t.Region.C1 && prev.Part.Lo == t.Part.Lo && prev.Part.Hi == t.Part.Hi {
				t.ResidentReadEnergy -= cost.WeightReadEnergy
				t.ResidentReadCycles -= cost.WeightReadCycles
			}
		}
		t.CommitEnergy, t.CommitCycles = 0, 0
		if t.Commit {
			t.CommitEnergy, t.CommitCycles = commitE, commitC
			t.Energy += commitE
			t.Cycles += commitC
		}
		lp := p.LayerPlan(t.Layer)
		lp.Energy += t.Energy
		group += t.Energy
		lp.MaxCommitGroup = max(lp.MaxCommitGroup, group)
		if t.Commit {
			commits[t.Layer]++
			group = 0
		}
	}
	for li := range p.Layers {
		if c := commits[p.Layers[li].Layer]; c > 0 {
			p.Layers[li].TasksPerCommit = float64(p.Layers[li].Tasks) / float64(c)
		}
	}
}

// sameInputs reports whether two tasks of a layer read the same input
// regions (then the second finds them in SRAM if no brown-out came between).
func sameInputs(m *model.Model, l *model.Layer, a, b *plan.Task) bool {
	na := plan.LayerNeeds(m, l, a.Region, a.Part)
	nb := plan.LayerNeeds(m, l, b.Region, b.Part)
	if len(na.Inputs) != len(nb.Inputs) {
		return false
	}
	for i := range na.Inputs {
		if na.Inputs[i] != nb.Inputs[i] {
			return false
		}
	}
	return true
}

// build expands per-layer schedules into a priced, laid-out plan.
func build(name string, m *model.Model, prof *profiles.Profile, opt Options, layers []plan.LayerPlan) (*plan.Plan, error) {
	return buildWith(name, m, prof, opt, layers, nil)
}

// buildWith is build with a hook that sets plan-wide fields before pricing.
func buildWith(name string, m *model.Model, prof *profiles.Profile, opt Options, layers []plan.LayerPlan, set func(*plan.Plan)) (*plan.Plan, error) {
	p := &plan.Plan{
		Version: plan.Version, Model: m.Name, Profile: prof.Name, Scheduler: name,
		WordBytes: prof.WordBytes, WeightBytes: m.WeightBytes(),
		Budget: prof.CycleBudget(), RebootEnergy: prof.Reboot.Energy,
		Layers: layers,
	}
	if opt.ModelBytes != nil {
		sum := sha256.Sum256(opt.ModelBytes)
		p.ModelHash = hex.EncodeToString(sum[:])
	}
	if set != nil {
		set(p)
	}
	tasks, err := plan.Expand(m, p.Layers)
	if err != nil {
		return nil, err
	}
	p.Tasks = tasks
	Price(p, m, prof)
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

// layerPlans makes the per-layer schedules of tiles with one commit rule.
func layerPlans(m *model.Model, tiles []Tile, commitEvery int) []plan.LayerPlan {
	lps := make([]plan.LayerPlan, len(m.Layers))
	for i, l := range m.Layers {
		t := tiles[i]
		lps[i] = plan.LayerPlan{Layer: l.Index, Op: l.Op.String(), TileH: t.H, TileW: t.W, TileC: t.C, TileR: t.R, CommitEvery: commitEvery}
	}
	return lps
}

// sramTiles picks, for every layer, the largest tile that fits SRAM and a
// power cycle's energy.
func sramTiles(m *model.Model, prof *profiles.Profile) ([]Tile, error) {
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
func (s tileScheduler) Schedule(m *model.Model, prof *profiles.Profile, opt Options) (*plan.Plan, error) {
	tiles, err := sramTiles(m, prof)
	if err != nil {
		return nil, err
	}
	return build(s.Name(), m, prof, opt, layerPlans(m, tiles, 1))
}

type layerScheduler struct{}

func (layerScheduler) Name() string { return "layer" }
func (layerScheduler) Describe() string {
	return "the tiles of tile; progress committed once per layer"
}
func (s layerScheduler) Schedule(m *model.Model, prof *profiles.Profile, opt Options) (*plan.Plan, error) {
	tiles, err := sramTiles(m, prof)
	if err != nil {
		return nil, err
	}
	return build(s.Name(), m, prof, opt, layerPlans(m, tiles, 0))
}

func init() {
	register(tileScheduler{})
	register(layerScheduler{})
}
