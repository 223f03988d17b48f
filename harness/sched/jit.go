package sched

import (
	"fmt"
	"math"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
)

// jitScheduler is just-in-time checkpointing, the published behaviour of
// Hibernus (Balsamo et al., "Hibernus: Sustaining Computation during
// Intermittent Supply for Energy-Harvesting Systems", IEEE Embedded Systems
// Letters 7(1), 2015) and QuickRecall (Jayakumar et al., "QuickRecall: A
// Low Overhead HW/SW Approach for Enabling Computations across Power
// Cycles in Transiently Powered Computers", VLSID 2014), on this runtime
// (plan.JIT): a fixed threshold voltage; when the supply falls below it,
// the live state is saved to NVM and the board sleeps until the supply is
// back, then goes on where it was.
//
// The papers' rule for the threshold: the energy the capacitor holds
// between the threshold V_H and the minimum voltage must cover saving the
// state, with a margin: C (V_H^2 - V_min^2) / 2 >= E_save (Hibernus sets
// V_H so; QuickRecall's trigger voltage is the same energy balance for its
// register file). Here the state is the task's partial output region and
// the runtime's state (plan.SnapshotCost, priced by the profile's NVM write
// costs), and the supply is read between chunks of a task (a comparator
// interrupt in Hibernus; readings of at most JITChunkShare of a charge
// apart here), so E_save also covers the longest stretch between two
// readings:
//
//	E_th = (1 + JITMargin) * (longest stretch + one reading + largest snapshot)
//	V_H  = sqrt(2 E_th / C + V_off^2)
//
// Tiles as tile makes them, committed after every tile; the snapshot saves
// what a task has done since.
type jitScheduler struct{}

// JITMargin is the margin on the energy to save the state (estimates off,
// the capacitor aged, the comparator's offset).
const JITMargin = 0.2

// JITChunkShare bounds the arithmetic between two supply readings: a share
// of a full charge.
const JITChunkShare = 0.05

func (jitScheduler) Name() string { return "jit" }
func (jitScheduler) Describe() string {
	return "just-in-time checkpointing (Hibernus, QuickRecall): tile's tiles; below a fixed threshold voltage the task's SRAM state goes to NVM and the board sleeps until turn-on"
}

func (s jitScheduler) Schedule(m *model.Model, prof *profiles.Profile, opt Options) (*plan.Plan, error) {
	tiles, err := sramTiles(m, prof)
	if err != nil {
		return nil, err
	}
	p, err := build(s.Name(), m, prof, opt, layerPlans(m, tiles, 1))
	if err != nil {
		return nil, err
	}
	if err := AddJIT(p, m, prof); err != nil {
		return nil, fmt.Errorf("%s: %s on %s: %w", s.Name(), m.Name, prof.Name, err)
	}
	return p, nil
}

// AddJIT turns a priced and laid-out plan into just-in-time checkpointing:
// its chunks and their costs, the threshold and the snapshot area (the jit
// scheduler does it to tile's plan).
func AddJIT(p *plan.Plan, m *model.Model, prof *profiles.Profile) error {
	p.SenseEnergy, p.SenseCycles = prof.ADC.VoltageSense.Energy, prof.ADC.VoltageSense.Cycles
	p.Storage = StorageOf(prof)
	j := &plan.JIT{ChunkPixels: make([]int, len(m.Layers))}
	p.JIT = j
	for _, lp := range p.Layers {
		j.ChunkPixels[lp.Layer] = chunkPixels(p, m, prof, &p.Tasks[lp.FirstTask], JITChunkShare*prof.CycleBudget())
	}
	repriceChunks(p, m, prof)

	stretch, snapshot := 0.0, 0.0
	for i := range p.Tasks {
		t := &p.Tasks[i]
		px := j.ChunkPixels[t.Layer]
		k := plan.Chunks(t.Region, px)
		for c := 0; c < k; c++ {
			e, _ := plan.ChunkCost(prof, m, t, px, c)
			if c == 0 {
				e += t.ReadEnergy
			}
			if c == k-1 {
				e += t.WriteEnergy + t.CommitEnergy
			}
			stretch = max(stretch, e)
		}
		se, _ := plan.SnapshotCost(prof, p.PartialBytes(m, t, k-1))
		snapshot = max(snapshot, se)
	}
	eth := (1 + JITMargin) * (stretch + p.SenseEnergy + snapshot)
	st := p.Storage
	vh := math.Ceil(math.Sqrt(2*eth/st.CapacitanceF+st.VoffV*st.VoffV)*1000) / 1000
	if vh >= st.VonV {
		return fmt.Errorf("the threshold voltage %.3f V (%.4g J to save the state: the longest stretch %.4g J between readings, a snapshot %.4g J, a reading %.4g J, %.0f %% margin) is not below the turn-on voltage %.3f V",
			vh, eth, stretch, snapshot, p.SenseEnergy, 100*JITMargin, st.VonV)
	}
	j.ThresholdV = vh
	j.ThresholdJ = ThresholdEnergy(st, vh)

	// The snapshot area, after everything else in NVM: room for the
	// largest region the runtime keeps in SRAM (image.c's check).
	most := 0
	for _, lp := range p.Layers {
		most = max(most, sramRegionBytes(m, &lp))
	}
	j.SnapshotOffset = (p.NVMBytes + 3) &^ 3
	j.SnapshotBytes = plan.SnapshotHeaderBytes + most
	p.NVMBytes = j.SnapshotOffset + j.SnapshotBytes
	if need := p.NVMBytes + p.WeightBytes; need > prof.NVMBytes {
		return fmt.Errorf("it needs %d bytes of NVM with the %d-byte snapshot area, the device has %d", need, j.SnapshotBytes, prof.NVMBytes)
	}
	return p.Validate()
}

// ThresholdEnergy is the energy above brown-out at v volts as the firmware
// computes it: whole nJ from the capacitance in whole nF and the voltages
// in whole mV (what a reading below v mV compares to).
func ThresholdEnergy(st *plan.Storage, v float64) float64 {
	nf := uint64(math.Round(st.CapacitanceF * 1e9))
	mv, off := uint64(math.Round(v*1000)), uint64(math.Round(st.VoffV*1000))
	if mv <= off {
		return 0
	}
	return float64(nf*(mv*mv-off*off)/2000000) * 1e-9
}

// chunkPixels is the most output pixels a chunk of task t's layer may
// compute within limit joules (at least 1), judged on t's chunk 0.
func chunkPixels(p *plan.Plan, m *model.Model, prof *profiles.Profile, t *plan.Task, limit float64) int {
	pixels := (t.Region.N1 - t.Region.N0) * (t.Region.Y1 - t.Region.Y0) * (t.Region.X1 - t.Region.X0)
	lo, hi := 1, max(pixels, 1)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if e, _ := plan.ChunkCost(prof, m, t, mid, 0); e <= limit {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// repriceChunks prices every task's arithmetic as the chunks it runs in
// (a kernel call each) and updates the layers' sums.
func repriceChunks(p *plan.Plan, m *model.Model, prof *profiles.Profile) {
	for li := range p.Layers {
		p.Layers[li].Energy, p.Layers[li].MaxCommitGroup = 0, 0
	}
	group := 0.0
	for i := range p.Tasks {
		t := &p.Tasks[i]
		px := p.JIT.ChunkPixels[t.Layer]
		var e, c float64
		for k := range plan.Chunks(t.Region, px) {
			ce, cc := plan.ChunkCost(prof, m, t, px, k)
			e, c = e+ce, c+cc
		}
		t.Energy += e - t.ComputeEnergy
		t.Cycles += c - t.ComputeCycles
		t.ComputeEnergy, t.ComputeCycles = e, c
		lp := p.LayerPlan(t.Layer)
		lp.Energy += t.Energy
		group += t.Energy
		lp.MaxCommitGroup = max(lp.MaxCommitGroup, group)
		if t.Commit {
			group = 0
		}
	}
}

// sramRegionBytes is the largest region one of the layer's tasks keeps in
// SRAM: its packed outputs, or its int32 partial sums (image.c's
// max_region_bytes).
func sramRegionBytes(m *model.Model, lp *plan.LayerPlan) int {
	l := m.Layers[lp.Layer]
	s := m.OutputShape(l)
	elems := min(lp.TileH, s.H) * min(lp.TileW, s.W) * min(lp.TileC, s.C)
	bytes := elems * m.Tensors[l.Output].DType.Size()
	if dim, ok := plan.CanSplit(l); ok && lp.TileR > 0 && ceilDiv(dim, lp.TileR) > 1 {
		bytes = max(bytes, 4*elems)
	}
	return bytes
}

// inasRule is iNAS's plan with adaptive's run-time rule: what the rule
// alone gives a plan made without it (the schedule's share of adaptive's
// gain is the rest).
type inasRule struct{}

func (inasRule) Name() string { return "inas+rule" }
func (inasRule) Describe() string {
	return "iNAS's plan with adaptive's run-time rule (read the supply before each task; commit and sleep when the rest will not carry it)"
}

func (s inasRule) Schedule(m *model.Model, prof *profiles.Profile, opt Options) (*plan.Plan, error) {
	p, err := inasScheduler{}.Schedule(m, prof, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name(), err)
	}
	p.Scheduler = s.Name()
	withRule(p, prof)
	return p, nil
}

// withRule turns the run-time rule on in plan p (adaptive's).
func withRule(p *plan.Plan, prof *profiles.Profile) {
	p.RuntimeRule = true
	p.SenseEnergy, p.SenseCycles = prof.ADC.VoltageSense.Energy, prof.ADC.VoltageSense.Cycles
	p.Storage = StorageOf(prof)
}

func init() {
	register(jitScheduler{})
	register(inasRule{})
}
