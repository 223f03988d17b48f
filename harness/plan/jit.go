package plan

import (
	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/kernels"
	"github.com/batteryless/harness/harness/model"
)

// JIT is just-in-time checkpointing, as Hibernus and QuickRecall do it
// (sched's jit scheduler): the board reads its supply before every chunk
// of a task's arithmetic (a run of at most ChunkPixels[layer] output
// pixels, see Chunk); when the reading is below the fixed threshold
// voltage, it writes a snapshot of the task's live SRAM state to the NVM
// snapshot area (the partial output region computed so far and the
// runtime's state: the task and its chunks done), sleeps until the turn-on
// voltage, and goes on. After a brown-out the boot restores the snapshot
// and resumes the task at its next chunk. The plan's commits stay: the
// snapshot saves what a task has done since the last one.
//
// The snapshot area (SnapshotOffset, SnapshotBytes, in NVM after the
// activations): a valid word (one NVM word: 0 none, 1 valid) at +0, the
// task (u32) at +4, the chunks done (u32) at +8, the partial region at
// +16, packed in region order (the task's int32 partial sums for a step of
// a split reduction). A snapshot writes the valid word 0, the partial
// region, the task and chunks, then the valid word 1; loading an input
// writes the valid word 0. At boot a valid snapshot of a task at or after
// the progress word is resumed.
type JIT struct {
	// ThresholdV is the comparator's threshold, whole mV; ThresholdJ the
	// energy above brown-out at it as the firmware computes it (whole nJ
	// from the capacitance in nF): a reading below ThresholdV is an energy
	// below ThresholdJ.
	ThresholdV float64 `json:"threshold_v"`
	ThresholdJ float64 `json:"threshold_j"`
	// ChunkPixels is, per layer, the most output pixels a chunk computes
	// between two readings.
	ChunkPixels    []int `json:"chunk_pixels"`
	SnapshotOffset int   `json:"snapshot_offset"`
	SnapshotBytes  int   `json:"snapshot_bytes"`
}

// SnapshotHeaderBytes is the snapshot area's header: the valid word, the
// task and the chunks done.
const SnapshotHeaderBytes = 16

// ReadsSupply reports whether the board reads its supply voltage while it
// runs the plan (the run-time rule, or just-in-time checkpoints): a replay
// must tell it what the capacitor holds.
func (p *Plan) ReadsSupply() bool { return p.RuntimeRule || p.JIT != nil }

// Chunks is the number of chunks of at most pixels output pixels region r
// is computed in: several whole rows of one batch when a row has at most
// pixels pixels, else runs of at most pixels pixels within one row.
func Chunks(r kernels.Region, pixels int) int {
	n, h, w := r.N1-r.N0, r.Y1-r.Y0, r.X1-r.X0
	if pixels <= 0 || n <= 0 || h <= 0 || w <= 0 {
		return 1
	}
	if pixels >= w {
		rows := min(pixels/w, h)
		return n * ceilDiv(h, rows)
	}
	return n * h * ceilDiv(w, pixels)
}

// Chunk is chunk j of region r (see Chunks), and the number of the
// region's elements before it in packed region order (n, y, x, c).
func Chunk(r kernels.Region, pixels, j int) (kernels.Region, int) {
	n, h, w, c := r.N1-r.N0, r.Y1-r.Y0, r.X1-r.X0, r.C1-r.C0
	if pixels <= 0 || n <= 0 || h <= 0 || w <= 0 {
		return r, 0
	}
	s := r
	if pixels >= w {
		rows := min(pixels/w, h)
		per := ceilDiv(h, rows)
		b, i := j/per, j%per
		s.N0, s.N1 = r.N0+b, r.N0+b+1
		s.Y0, s.Y1 = r.Y0+i*rows, min(r.Y0+(i+1)*rows, r.Y1)
	} else {
		per := ceilDiv(w, pixels)
		q, i := j/per, j%per
		b, y := q/h, q%h
		s.N0, s.N1 = r.N0+b, r.N0+b+1
		s.Y0, s.Y1 = r.Y0+y, r.Y0+y+1
		s.X0, s.X1 = r.X0+i*pixels, min(r.X0+(i+1)*pixels, r.X1)
	}
	before := ((s.N0-r.N0)*h+(s.Y0-r.Y0))*w + (s.X0 - r.X0)
	return s, before * c
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// PartialBytes is the bytes a snapshot of task t keeps after chunks done:
// its packed outputs (int32 sums for a split reduction's step) so far.
func (p *Plan) PartialBytes(m *model.Model, t *Task, chunks int) int {
	if chunks <= 0 || p.JIT == nil {
		return 0
	}
	size := m.Tensors[m.Layers[t.Layer].Output].DType.Size()
	if t.Part.Split() {
		size = 4
	}
	k := Chunks(t.Region, p.JIT.ChunkPixels[t.Layer])
	if chunks >= k {
		return t.Region.Elems() * size
	}
	_, before := Chunk(t.Region, p.JIT.ChunkPixels[t.Layer], chunks)
	return before * size
}

// ChunkCost is the arithmetic of chunk j of task t: the layer's kernel
// over the chunk's region (a kernel call per chunk: its fixed costs too).
func ChunkCost(prof *profiles.Profile, m *model.Model, t *Task, pixels, j int) (energy, cycles float64) {
	s, _ := Chunk(t.Region, pixels, j)
	c, _ := Estimate(prof, m, m.Layers[t.Layer], s, t.Part)
	return c.ComputeEnergy, c.ComputeCycles
}

// SnapshotCost is a snapshot's NVM writes: the valid word twice, the
// partial region, the task and the chunks done.
func SnapshotCost(prof *profiles.Profile, partial int) (energy, cycles float64) {
	w := elems16(prof.WordBytes)
	spans := 3.0
	if partial > 0 {
		spans++
	}
	n := 2*w + elems16(8) + elems16(partial)
	return prof.NVMWrite.EnergyPerElem*n + prof.NVMWrite.EnergyFixed*spans, prof.NVMWrite.CyclesPerElem*n + prof.NVMWrite.CyclesFixed*spans
}

// RestoreCost is the boot's read of a snapshot: its header and the partial
// region back into SRAM.
func RestoreCost(prof *profiles.Profile, partial int) (energy, cycles float64) {
	n := elems16(SnapshotHeaderBytes + partial)
	return prof.NVMRead.EnergyPerElem*n + prof.NVMRead.EnergyFixed*2, prof.NVMRead.CyclesPerElem*n + prof.NVMRead.CyclesFixed*2
}
