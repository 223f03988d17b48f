package sim

import (
	"encoding/binary"

	"github.com/batteryless/harness/harness/kernels"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/refexec"
)

// Just-in-time checkpoints (plan.JIT), as the firmware takes them
// (firmware/runtime/runtime.c): before every chunk of a task's arithmetic
// the board reads its supply (the first chunk's reading comes before the
// task's Read); below the threshold it writes a Checkpoint of the task's
// SRAM state and sleeps until the turn-on voltage, then runs the chunk
// without another reading. A boot resumes a valid snapshot of a task at or
// after the progress word: it Restores the partial region into SRAM and
// goes on at the next chunk.

// jitState is the board's volatile just-in-time state.
type jitState struct {
	chunk     int  // the task's next chunk
	first     int  // the chunk the task (re)started at: its reading came before the Read
	restore   int  // chunks to read back from the snapshot before the task goes on (0: none)
	sleepNext bool // a checkpoint was written: sleep
}

// jitCost is the cost of one chunk's arithmetic.
type jitCost struct{ energy, cycles float64 }

// chunks is task i's number of chunks.
func (b *Board) chunks(i int) int {
	t := &b.p.Tasks[i]
	return plan.Chunks(t.Region, b.p.JIT.ChunkPixels[t.Layer])
}

// chunkCost is chunk j of task i's arithmetic (computed once per task).
func (b *Board) chunkCost(i, j int) jitCost {
	if b.jitCosts == nil {
		b.jitCosts = make([][]jitCost, len(b.p.Tasks))
	}
	cs := b.jitCosts[i]
	if cs == nil {
		t := &b.p.Tasks[i]
		px := b.p.JIT.ChunkPixels[t.Layer]
		cs = make([]jitCost, b.chunks(i))
		for k := range cs {
			cs[k].energy, cs[k].cycles = plan.ChunkCost(b.prof, b.m, t, px, k)
		}
		b.jitCosts[i] = cs
	}
	return cs[j]
}

// The snapshot area's header (plan.JIT).
func (b *Board) snapshotValid() bool {
	at := b.p.JIT.SnapshotOffset
	if b.p.WordBytes == 2 {
		return binary.LittleEndian.Uint16(b.nvm[at:]) == 1
	}
	return binary.LittleEndian.Uint32(b.nvm[at:]) == 1
}

func (b *Board) setSnapshotValid(v bool) {
	at := b.p.JIT.SnapshotOffset
	w := uint32(0)
	if v {
		w = 1
	}
	if b.p.WordBytes == 2 {
		binary.LittleEndian.PutUint16(b.nvm[at:], uint16(w))
	} else {
		binary.LittleEndian.PutUint32(b.nvm[at:], w)
	}
}

// jitResume is the boot's look at the snapshot: a valid one of a task at
// or after the progress word (with fewer chunks done than the task has: a
// snapshot is taken before a chunk) is resumed.
func (b *Board) jitResume(prog int) bool {
	b.jit = jitState{}
	if !b.snapshotValid() {
		return false
	}
	at := b.p.JIT.SnapshotOffset
	task := int(binary.LittleEndian.Uint32(b.nvm[at+4:]))
	k := int(binary.LittleEndian.Uint32(b.nvm[at+8:]))
	if task < prog || task >= len(b.p.Tasks) || k >= b.chunks(task) {
		return false
	}
	b.running, b.task, b.phase = true, task, Read
	b.jit = jitState{chunk: k, first: k, restore: k}
	return true
}

// jitNext is the segment of a jit plan's task in its Read or Compute
// phase (ok false in the others): a restore, a sleep after a checkpoint,
// a checkpoint when the reading before a chunk is below the threshold, or
// the Read or the chunk.
func (b *Board) jitNext(available float64) (Segment, bool) {
	j := &b.jit
	switch {
	case j.restore > 0:
		e, c := plan.RestoreCost(b.prof, b.p.PartialBytes(b.m, &b.p.Tasks[b.task], j.restore))
		return b.segment(Restore, b.task, e, c), true
	case j.sleepNext:
		j.sleepNext = false
		return Segment{Kind: Sleep, Task: -1, Power: b.prof.SleepPowerW}, true
	case b.phase != Read && b.phase != Compute:
		return Segment{}, false
	}
	reads := b.phase == Read || j.chunk > j.first // the first chunk's reading came before the Read
	if reads && !b.woke && available < b.p.JIT.ThresholdJ {
		e, c := plan.SnapshotCost(b.prof, b.p.PartialBytes(b.m, &b.p.Tasks[b.task], j.chunk))
		return b.segment(Checkpoint, b.task, e, c), true
	}
	b.woke = false
	var s Segment
	if b.phase == Read {
		b.fillTaskSegment(&s, Read) // (its reading included)
		return s, true
	}
	cost := b.chunkCost(b.task, j.chunk)
	e, c := cost.energy, cost.cycles
	if reads {
		e, c = e+b.p.SenseEnergy, c+b.p.SenseCycles
	}
	k := ComputePart
	if j.chunk == b.chunks(b.task)-1 {
		k = Compute
	}
	return b.segment(k, b.task, e, c), true
}

// jitCompleted applies a jit segment of task task that ran to its end; ok
// is false for the kinds it leaves to completed.
func (b *Board) jitCompleted(k Kind, task int) (Event, bool) {
	j := &b.jit
	switch k {
	case Restore:
		b.do(dataOp{kind: opRestore, task: int32(task), lo: int32(j.restore)}, opArg{})
		j.restore = 0
	case Checkpoint:
		// The partial region, then the header, then the valid word: the
		// header is written at once (a boot reads it), the region in order
		// with the other data operations.
		b.setSnapshotValid(false)
		b.do(dataOp{kind: opCheckpoint, task: int32(task), lo: int32(j.chunk), hi: -1}, opArg{})
		at := b.p.JIT.SnapshotOffset
		binary.LittleEndian.PutUint32(b.nvm[at+4:], uint32(task))
		binary.LittleEndian.PutUint32(b.nvm[at+8:], uint32(j.chunk))
		b.setSnapshotValid(true)
		j.sleepNext = true
	case ComputePart:
		b.do(dataOp{kind: opChunk, task: int32(task), lo: int32(j.chunk), hi: boolInt32(j.chunk == j.first)}, opArg{})
		j.chunk++
	case Compute:
		b.Executions[task]++
		b.do(dataOp{kind: opChunk, task: int32(task), lo: int32(j.chunk), hi: boolInt32(j.chunk == j.first)}, opArg{})
		j.chunk, j.first = 0, 0
		b.nextPhase()
	default:
		return Event{}, false
	}
	return Event{Kind: k, Task: task}, true
}

func boolInt32(v bool) int32 {
	if v {
		return 1
	}
	return 0
}

// jitBrownOut: a checkpoint cut after fraction of its words has made the
// snapshot invalid (its first word) and written part of the region.
func (b *Board) jitBrownOut(s *Segment, fraction float64) {
	if s.Kind == Checkpoint {
		partial := b.p.PartialBytes(b.m, &b.p.Tasks[s.Task], b.jit.chunk)
		words := int(fraction * float64((2*b.p.WordBytes+8+partial+b.p.WordBytes-1)/b.p.WordBytes))
		if words >= 1 {
			b.setSnapshotValid(false)
			n := min((words-1)*b.p.WordBytes, partial)
			b.do(dataOp{kind: opCheckpoint, task: int32(s.Task), lo: int32(b.jit.chunk), hi: int32(n)}, opArg{})
		}
	}
	b.jit = jitState{}
	b.woke = false
}

// chunkData computes chunk j of task task into SRAM; first says the task
// (re)started at this chunk, so a split reduction's sums after it start
// from the step before (or 0).
func (b *Board) chunkData(task, j int, first bool) {
	t := &b.p.Tasks[task]
	l := b.m.Layers[t.Layer]
	px := b.p.JIT.ChunkPixels[t.Layer]
	sub, before := plan.Chunk(t.Region, px, j)
	var ins [2][]byte
	for i, tt := range l.Inputs {
		ins[i] = b.tensorNVM(tt)
	}
	if !t.Part.Split() {
		if b.memoOff {
			refexec.RunLayer(b.m, l, ins[:len(l.Inputs)], b.sramOf(l.Output), sub, b.scratch)
		} else {
			b.regionFromMemo(l, ins[:len(l.Inputs)], sub)
		}
		return
	}
	b.accInSRAM()
	acc := b.acc[:t.Region.Elems()]
	if first {
		if t.Part.Step == 0 {
			clear(acc[before:])
		} else {
			prev := b.partialNVM(task - 1)
			for i := before; i < len(acc); i++ {
				acc[i] = int32(binary.LittleEndian.Uint32(prev[4*i:]))
			}
		}
	}
	refexec.AccumulateLayer(l, ins[:len(l.Inputs)], sub, t.Part.Lo, t.Part.Hi, acc[before:before+sub.Elems()])
	if j < b.chunks(task)-1 {
		return
	}
	if t.Part.Last() {
		refexec.FinishLayer(l, acc, b.sramOf(l.Output), t.Region)
		return
	}
	for i, v := range acc {
		binary.LittleEndian.PutUint32(b.accBytes[4*i:], uint32(v))
	}
}

// checkpointData writes the packed partial region of task task after
// chunks chunks into the snapshot area (its first limit bytes if limit >=
// 0: a cut write).
func (b *Board) checkpointData(task, chunks, limit int) {
	t := &b.p.Tasks[task]
	n := b.p.PartialBytes(b.m, t, chunks)
	if limit >= 0 {
		n = min(n, limit)
	}
	dst := b.nvm[b.p.JIT.SnapshotOffset+plan.SnapshotHeaderBytes:][:n]
	if t.Part.Split() {
		b.accInSRAM()
		for i := 0; 4*i+4 <= n; i++ {
			binary.LittleEndian.PutUint32(dst[4*i:], uint32(b.acc[i]))
		}
		return
	}
	b.packChunks(t, chunks, func(packed, tensor []byte) { copy(packed, tensor) }, dst)
}

// restoreData reads the packed partial region of task task after chunks
// chunks back from the snapshot area into SRAM.
func (b *Board) restoreData(task, chunks int) {
	t := &b.p.Tasks[task]
	n := b.p.PartialBytes(b.m, t, chunks)
	src := b.nvm[b.p.JIT.SnapshotOffset+plan.SnapshotHeaderBytes:][:n]
	if t.Part.Split() {
		b.accInSRAM()
		for i := 0; 4*i+4 <= n; i++ {
			b.acc[i] = int32(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return
	}
	b.packChunks(t, chunks, func(packed, tensor []byte) { copy(tensor, packed) }, src)
}

// packChunks walks the first chunks chunks of task t, span by span, the
// packed bytes (in packed, from its start) beside the SRAM output
// tensor's, and hands each pair to f.
func (b *Board) packChunks(t *plan.Task, chunks int, f func(packed, tensor []byte), packed []byte) {
	l := b.m.Layers[t.Layer]
	out := b.m.Tensors[l.Output]
	s, size := out.Shape, out.DType.Size()
	sram := b.sramOf(l.Output)
	px := b.p.JIT.ChunkPixels[t.Layer]
	at := 0
	for j := 0; j < chunks; j++ {
		sub, _ := plan.Chunk(t.Region, px, j)
		eachSpan(sub, s, size, func(lo, n int) {
			f(packed[at:at+n], sram[lo:lo+n])
			at += n
		})
	}
}

// eachSpan calls f with the tensor offset and length of every (n, y, x)
// span of region r's channels, in packed order.
func eachSpan(r kernels.Region, s kernels.Shape, size int, f func(lo, n int)) {
	span := (r.C1 - r.C0) * size
	for n := r.N0; n < r.N1; n++ {
		for y := r.Y0; y < r.Y1; y++ {
			for x := r.X0; x < r.X1; x++ {
				f((((n*s.H+y)*s.W+x)*s.C+r.C0)*size, span)
			}
		}
	}
}
