// Package sim is the simulated intermittent board: it executes a deployment
// plan under a power system model, with an NVM byte image that keeps every
// write as it happens and SRAM that is lost at every brown-out. Tasks compute
// the real numbers with the reference kernels on the NVM image, so a wrong
// commit protocol gives a wrong output.
//
// The board is driven segment by segment by a replay loop that owns the
// power model: Next says what the board does next (how long, at what power),
// and the loop reports back whether the segment completed or was cut by a
// brown-out at some fraction. A loop may also take the rest of a task at
// once (RestOfTask) and report it whole (CompleteRest): the same states, in
// fewer calls. Everything is deterministic.
package sim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/batteryless/harness/boards"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/kernels"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/refexec"
)

// Kind is what a segment does (boards.StepKind).
type Kind = boards.StepKind

// Segment kinds.
const (
	Boot        = boards.Boot
	LoadInput   = boards.LoadInput
	Read        = boards.Read
	Compute     = boards.Compute
	Write       = boards.Write
	Commit      = boards.Commit
	Idle        = boards.Idle
	EarlyCommit = boards.EarlyCommit
	Sleep       = boards.Sleep
	ComputePart = boards.ComputePart
	Checkpoint  = boards.Checkpoint
	Restore     = boards.Restore
)

// Segment is the next piece of work of the board (boards.Step).
type Segment = boards.Step

// Faults break the commit protocol on purpose, to show that verification
// and fault injection catch a broken runtime.
type Faults struct {
	// CommitBeforeWrite writes the progress word before the task's outputs.
	CommitBeforeWrite bool
}

// Event is something the board did that the log records (boards.Event).
type Event = boards.Event

// Board is a simulated board running one plan.
type Board struct {
	m      *model.Model
	p      *plan.Plan
	prof   *profiles.Profile
	faults Faults

	nvm      []byte
	tag      uint32
	sram     [][]byte // per tensor: the SRAM buffer of a layer output being computed
	tensors  [][]byte // per tensor: its bytes in NVM (nil without a placement)
	scratch  *kernels.Scratch
	acc      []int32 // SRAM partial sums of a split reduction
	accBytes []byte  // the same, as the bytes written to NVM
	// accLost says a brown-out has wiped acc and accBytes since they were
	// last used: they are scrambled before the next use (scrambling them
	// at every brown-out would cost the same and show nothing more).
	accLost bool
	pending []byte // input the host will load next
	// loaded is how much of pending the host already has in NVM: it loads
	// the input in acknowledged chunks, so a brown-out in the middle of the
	// load keeps what was written and the host sends only the rest.
	loaded int

	// Volatile execution state: lost at a brown-out.
	on      bool
	booted  bool
	running bool // an inference is in progress (progress < tasks)
	task    int
	phase   Kind
	seg     Segment
	hasSeg  bool
	woke    bool // just woke from a rule sleep: run the next task whatever the voltage
	jit     jitState
	// lastDone is the last task whose segments all ran since the last
	// power-on: its inputs and weights are still in SRAM. -1 after a boot.
	lastDone int

	// Counters of work that happened.
	Executions []int // per task: how many times its compute ran
	MemoMisses int   // whole-layer computations of the memo (applied ones: see SetSeeds)

	// The memo of whole-layer outputs (see compute): host-side, not the
	// board's SRAM, keyed on the write generation of the layer's inputs.
	memoOff  bool
	gen      []uint64     // per tensor: count of NVM writes into its bytes
	overlaps [][]int      // per tensor: the activations sharing any of its NVM bytes (itself included)
	memo     []*memoEntry // per layer
	seeds    *Seeds
	segCache [boards.NumStepKinds + 1]segTiming // per kind, and the resident read last
	jitCosts [][]jitCost                        // per task, its chunks' costs (plan.JIT), made at first use

	// Deferred data operations (see SetSeeds): queued in order, applied
	// when the seeds they need are there.
	deferData  bool
	headerSafe bool     // no activation or partial-sum slot overlaps the NVM header
	q          *opQueue // nil while nothing waits
}

// opQueue holds deferred data operations, in order. Queues are kept from
// one board to the next (a queue is needed only while a reference
// executor is computing the seeds, and then grows to thousands of
// operations).
type opQueue struct {
	ops     []dataOp
	head    int
	args    []opArg // the inputs and callbacks of the queued loads and snapshots, in order
	argHead int
	snaps   int // snapshots among the queued operations
}

var queues = sync.Pool{New: func() any { return new(opQueue) }}

// opKind is a data operation of the board: what it does to NVM (beyond
// the header), to SRAM and to the memo.
type opKind uint8

const (
	opLoad         opKind = iota // the host writes input[lo:hi] into NVM
	opCompute                    // a task computes its region
	opWrite                      // a task writes its region: all of it, or its first hi bytes if hi >= 0
	opLost                       // a brown-out wipes the SRAM of a task's results
	opSnapshot                   // the output in NVM is handed to snap
	opComputeWrite               // opCompute then opWrite of all the task's region, nothing between
	opChunk                      // a task computes chunk lo (hi = 1: the first since the task started; plan.JIT)
	opCheckpoint                 // the packed region of lo chunks goes to the snapshot area (hi >= 0: only its first hi bytes)
	opRestore                    // the snapshot's packed region of lo chunks comes back into SRAM
)

// computes reports whether an operation computes a task (and may wait
// for a seed).
func (k opKind) computes() bool { return k == opCompute || k == opComputeWrite || k == opChunk }

// dataOp is a data operation, small: many may wait for a seed.
type dataOp struct {
	kind   opKind
	task   int32 // opCompute, opWrite, opLost
	lo, hi int32 // opLoad: the input's byte range; opWrite: hi is the limit
}

// opArg is what an opLoad (input) or opSnapshot (snap) carries besides.
type opArg struct {
	input []byte
	snap  func(out []byte)
}

// maxDeferred bounds the queued data operations (16 bytes each): past it,
// the board waits for the seeds.
const maxDeferred = 1 << 16

// memoEntry is a layer's whole output computed from the input bytes ins,
// which NVM held at input generations gens.
type memoEntry struct {
	gens []uint64
	ins  [][]byte
	out  []byte
}

// Generations of a memo entry's input that match no NVM write count, so
// that the input bytes are compared before the entry is used.
const (
	genNever  = ^uint64(0)     // nothing computed yet: the entry is invalid
	genSeeded = ^uint64(0) - 1 // seeded: valid for exactly the seed's input bytes
)

// SetMemo turns the memo of whole-layer outputs on (the default) or off.
// Off, every task computes its region from NVM itself; the results are the
// same, only slower (tests compare the two).
func (b *Board) SetMemo(on bool) { b.memoOff = !on }

// SetSeeds offers the memo whole-layer outputs computed elsewhere (see
// Seeds). The board takes the seeds' buffers over.
//
// With seeds, the board's data operations (the input's load, the tasks'
// computations and writes, what a brown-out wipes) are deferred: they are
// queued in order and applied once a snapshot needs them, as soon as the
// seeds they need are there, so that the board runs on while the seeds are
// being computed (see also FlushSnapshots). What the board
// does next never depends on them (only on the NVM header with the progress
// word, which is written at once), and NVM, SRAM and the memo go through
// exactly the same states in the same order; Output, NVM and Snapshot see
// them as if nothing had been deferred. (When some activation shares the
// header's bytes, nothing is deferred.)
func (b *Board) SetSeeds(s *Seeds) {
	b.Flush()
	b.seeds = s
	b.deferData = s != nil && b.headerSafe
}

// Flush applies the deferred data operations, waiting for the seeds they
// need.
func (b *Board) Flush() { b.drain(true, false) }

// FlushSnapshots applies the deferred data operations up to the last
// snapshot among them, waiting for the seeds they need, so that every
// snapshot taken is handed over; those after it stay deferred (a replay
// that ends in the middle of an inference never needs them).
func (b *Board) FlushSnapshots() { b.drain(true, true) }

// Snapshot hands the output tensor's bytes in NVM, as they are now, to f:
// at once, or once the data operations before it are applied (f must copy
// the bytes to keep them).
func (b *Board) Snapshot(f func(out []byte)) { b.do(dataOp{kind: opSnapshot}, opArg{snap: f}) }

// do applies a data operation, or queues it behind those deferred.
//
// Deferred operations are applied in order when a snapshot waits for
// them (as their seeds come), when they grow too many, or on Flush: what
// a replay runs after its last completed inference is never looked at,
// and costs nothing (see FlushSnapshots).
func (b *Board) do(op dataOp, arg opArg) {
	if !b.deferData {
		b.apply(op, arg)
		return
	}
	if b.q == nil {
		b.q = queues.Get().(*opQueue)
	}
	q := b.q
	q.ops = append(q.ops, op)
	if op.kind == opLoad || op.kind == opSnapshot {
		q.args = append(q.args, arg)
	}
	if op.kind == opSnapshot {
		q.snaps++
	}
	switch {
	case len(q.ops)-q.head > maxDeferred:
		b.drain(true, false)
	case q.snaps > 0:
		b.drain(false, true)
	}
}

// drain applies the queued data operations in order: all of them, or up
// to the last snapshot among them if toSnapshot. Unless block, it stops at
// a computation whose seed is not there yet.
func (b *Board) drain(block, toSnapshot bool) {
	q := b.q
	if q == nil {
		return
	}
	for q.head < len(q.ops) && !(toSnapshot && q.snaps == 0) {
		op := q.ops[q.head]
		if !block && op.kind.computes() && !b.seedReady(int(op.task)) {
			break
		}
		var arg opArg
		if op.kind == opLoad || op.kind == opSnapshot {
			arg = q.args[q.argHead]
			q.args[q.argHead] = opArg{}
			q.argHead++
		}
		if op.kind == opSnapshot {
			q.snaps--
		}
		q.head++
		b.apply(op, arg)
	}
	if q.head == len(q.ops) {
		// Empty: the queue goes back to the pool.
		q.ops, q.head = q.ops[:0], 0
		q.args, q.argHead = q.args[:0], 0
		b.q = nil
		queues.Put(q)
	} else if q.head >= 1024 && 2*q.head >= len(q.ops) {
		q.ops, q.head = q.ops[:copy(q.ops, q.ops[q.head:])], 0
		n := copy(q.args, q.args[q.argHead:])
		clear(q.args[n:])
		q.args, q.argHead = q.args[:n], 0
	}
}

// seedReady reports whether computing a task would not wait for a seed.
func (b *Board) seedReady(task int) bool {
	t := &b.p.Tasks[task]
	if t.Part.Split() || b.memoOff || b.seeds == nil {
		return true
	}
	l := b.m.Layers[t.Layer]
	return b.memo[l.Index] != nil || b.seeds.ready(l)
}

func (b *Board) apply(op dataOp, arg opArg) {
	switch task := int(op.task); op.kind {
	case opLoad:
		copy(b.tensorNVM(b.p.InputTensor)[op.lo:op.hi], arg.input[op.lo:op.hi])
		b.written(b.p.InputTensor)
	case opCompute:
		b.compute(task)
	case opWrite:
		b.writeOutput(task, int(op.hi))
	case opLost:
		// The SRAM that held the task's results is gone.
		l := b.m.Layers[b.p.Tasks[task].Layer]
		scramble(b.sramOf(l.Output), b.p.Tasks[task].Region, b.m.Tensors[l.Output])
		b.accLost = true
	case opSnapshot:
		arg.snap(b.tensorNVM(b.p.OutputTensor))
	case opComputeWrite:
		b.computeWrite(task)
	case opChunk:
		b.chunkData(task, int(op.lo), op.hi == 1)
	case opCheckpoint:
		b.checkpointData(task, int(op.lo), int(op.hi))
	case opRestore:
		b.restoreData(task, int(op.lo))
	}
}

// Seeds are whole-layer outputs computed outside the board (by the reference
// executor, which computes every layer of an inference on the same input
// anyway) and offered to the board's memo, so that the work is done once.
// Each seed is a layer's output together with the exact input bytes it was
// computed from, and it is keyed and checked like any memo entry: a task
// uses it only while the layer's inputs in NVM are, byte for byte, those
// bytes; otherwise the board computes the layer from NVM itself. So a wrong
// commit protocol still gives a wrong output.
//
// Seeds may be put from another goroutine while the board runs: a board
// that needs a layer's seed waits until it is put, or until Close says it
// never will be. A Seeds serves one board.
type Seeds struct {
	layers []seed
	closed atomic.Bool
	wake   chan struct{} // closed by Close, and by a Put a board is blocked on
	mu     sync.Mutex    // guards waiting
	// waiting is the layer a board is blocked on, -1 if none.
	waiting int
}

type seed struct {
	ready atomic.Bool // set once ins and out are
	ins   [][]byte
	out   []byte
}

// NewSeeds makes empty seeds for the layers of model m.
func NewSeeds(m *model.Model) *Seeds {
	return &Seeds{layers: make([]seed, len(m.Layers)), wake: make(chan struct{}), waiting: -1}
}

// Put seeds layer l's whole output out, computed from the input bytes ins
// (in l.Inputs order); both are copied. Each layer is put at most once, and
// none after Close.
func (s *Seeds) Put(l *model.Layer, ins [][]byte, out []byte) {
	sd := &s.layers[l.Index]
	sd.ins = make([][]byte, len(ins))
	for i, in := range ins {
		sd.ins[i] = append([]byte(nil), in...)
	}
	sd.out = append([]byte(nil), out...)
	sd.ready.Store(true)
	s.mu.Lock()
	if s.waiting == l.Index {
		s.waiting = -1
		close(s.wake)
		s.wake = make(chan struct{})
	}
	s.mu.Unlock()
}

// Close says that no more layers will be put: a board waiting for one
// computes it itself. Close is called once, after the last Put.
func (s *Seeds) Close() {
	s.closed.Store(true)
	s.mu.Lock()
	close(s.wake)
	s.mu.Unlock()
}

// ready reports whether layer l's seed is there, or will never be.
func (s *Seeds) ready(l *model.Layer) bool {
	return s.layers[l.Index].ready.Load() || s.closed.Load()
}

// seedSpins is how many times a board yields its processor, waiting for a
// seed, before it blocks. The seeds' producer usually runs on another
// processor, and a goroutine it woke would queue behind it there; yielding
// instead keeps the board's goroutine where it runs, and lets whatever else
// is runnable (the trace's parser) use the wait.
const seedSpins = 2000

// take waits for layer l's seed and hands its buffers over; ok is false if
// the layer was not seeded or the seed does not fit the layer.
func (s *Seeds) take(m *model.Model, l *model.Layer) (ins [][]byte, out []byte, ok bool) {
	sd := &s.layers[l.Index]
	for i := 0; !sd.ready.Load() && !s.closed.Load(); i++ {
		if i < seedSpins {
			runtime.Gosched()
			continue
		}
		s.mu.Lock()
		if sd.ready.Load() || s.closed.Load() {
			s.mu.Unlock()
			break
		}
		s.waiting = l.Index
		wake := s.wake
		s.mu.Unlock()
		<-wake
	}
	if !sd.ready.Load() {
		return nil, nil, false // closed without it
	}
	ins, out = sd.ins, sd.out
	sd.ins, sd.out = nil, nil
	if ins == nil || len(ins) != len(l.Inputs) || len(out) != m.Tensors[l.Output].Bytes() {
		return nil, nil, false
	}
	for i, t := range l.Inputs {
		if len(ins[i]) != m.Tensors[t].Bytes() {
			return nil, nil, false
		}
	}
	return ins, out, true
}

// New makes a board for plan p of model m on a device. The NVM image starts
// blank (erased to zero).
func New(m *model.Model, p *plan.Plan, prof *profiles.Profile, faults Faults) (*Board, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.NVMBytes > prof.NVMBytes {
		return nil, fmt.Errorf("sim: plan needs %d bytes of NVM, %s has %d", p.NVMBytes, prof.Name, prof.NVMBytes)
	}
	b := &Board{m: m, p: p, prof: prof, faults: faults,
		nvm:        make([]byte, p.NVMBytes),
		tag:        p.Tag(),
		sram:       make([][]byte, len(m.Tensors)),
		tensors:    make([][]byte, len(m.Tensors)),
		scratch:    new(kernels.Scratch),
		Executions: make([]int, len(p.Tasks)),
		lastDone:   -1,
		gen:        make([]uint64, len(m.Tensors)),
		overlaps:   make([][]int, len(m.Tensors)),
		memo:       make([]*memoEntry, len(m.Layers)),
	}
	b.headerSafe = true
	for _, a := range p.Activations {
		if a.Offset < plan.HeaderBytes {
			b.headerSafe = false
		}
	}
	for i := range p.Layers {
		if lp := &p.Layers[i]; lp.PartialSlots > 0 && lp.PartialBase < plan.HeaderBytes {
			b.headerSafe = false
		}
	}
	for _, a := range p.Activations {
		for _, o := range p.Activations {
			if a.Offset < o.Offset+o.Bytes && o.Offset < a.Offset+a.Bytes {
				b.overlaps[a.Tensor] = append(b.overlaps[a.Tensor], o.Tensor)
			}
		}
	}
	most := 0
	for i := range p.Tasks {
		if t := &p.Tasks[i]; t.Part.Split() {
			most = max(most, t.Region.Elems())
		}
	}
	b.acc, b.accBytes = make([]int32, most), make([]byte, 4*most)
	return b, nil
}

// NVM is the board's NVM image (for inspection by tests and verification).
func (b *Board) NVM() []byte {
	b.Flush()
	return b.nvm
}

// Plan is the board's plan.
func (b *Board) Plan() *plan.Plan { return b.p }

// Progress is the progress word in NVM.
func (b *Board) Progress() int {
	if b.p.WordBytes == 2 {
		return int(binary.LittleEndian.Uint16(b.nvm[plan.ProgressOffset:]))
	}
	return int(binary.LittleEndian.Uint32(b.nvm[plan.ProgressOffset:]))
}

func (b *Board) setProgress(v int) {
	if b.p.WordBytes == 2 {
		binary.LittleEndian.PutUint16(b.nvm[plan.ProgressOffset:], uint16(v))
	} else {
		binary.LittleEndian.PutUint32(b.nvm[plan.ProgressOffset:], uint32(v))
	}
}

// sramOf is the SRAM buffer of layer output tensor t, made at first use:
// a task computed and written in one go (see computeWrite) needs none,
// and a replay should not touch memory it does not need.
func (b *Board) sramOf(t int) []byte {
	if buf := b.sram[t]; buf != nil {
		return buf
	}
	b.sram[t] = make([]byte, b.m.Tensors[t].Bytes())
	return b.sram[t]
}

// tensorNVM is the NVM bytes of an activation tensor.
func (b *Board) tensorNVM(t int) []byte {
	if nv := b.tensors[t]; nv != nil {
		return nv
	}
	pl, ok := b.p.Placement(t)
	if !ok {
		panic(fmt.Sprintf("sim: tensor %d has no NVM placement", t))
	}
	b.tensors[t] = b.nvm[pl.Offset : pl.Offset+pl.Bytes : pl.Offset+pl.Bytes]
	return b.tensors[t]
}

// Output is the output tensor's bytes in NVM.
func (b *Board) Output() []byte {
	b.Flush()
	return b.tensorNVM(b.p.OutputTensor)
}

// QueueInput gives the board (through the host) the input of the next
// inference; it is loaded when the board is on and idle.
func (b *Board) QueueInput(input []byte) error {
	if len(input) != b.m.InputTensor().Bytes() {
		return fmt.Errorf("sim: input is %d bytes, the model needs %d", len(input), b.m.InputTensor().Bytes())
	}
	b.pending = input
	b.loaded = 0
	return nil
}

// Loading reports whether the host is loading an input (no inference runs).
func (b *Board) Loading() bool { return !b.running && b.pending != nil }

// Running reports whether an inference is in progress (from NVM's view).
func (b *Board) Running() bool { return b.running }

// PowerOn starts the board: the next segment is the boot.
func (b *Board) PowerOn() {
	b.on, b.booted, b.hasSeg = true, false, false
	b.lastDone = -1
}

func (b *Board) segment(k Kind, task int, energy, cycles float64) Segment {
	var s Segment
	b.fillSegment(&s, int(k), k, task, energy, cycles)
	return s
}

// residentSlot is segCache's slot for the reads of a task whose
// predecessor's data is still in SRAM.
const residentSlot = boards.NumStepKinds

// fillSegment is segment writing into s, with the timing kept in slot
// slot of segCache. (The replay's loop reads segments field by field
// right after they are made: filled in place, they are not copied as
// whole structs, whose wide loads would wait on the narrow stores.)
func (b *Board) fillSegment(s *Segment, slot int, k Kind, task int, energy, cycles float64) {
	// Consecutive tasks of a layer mostly cost the same: the last
	// segment of each kind keeps its duration and power (two divisions).
	c := &b.segCache[slot]
	if !c.ok || math.Float64bits(c.energy) != math.Float64bits(energy) || math.Float64bits(c.cycles) != math.Float64bits(cycles) {
		*c = segTiming{energy: energy, cycles: cycles, seconds: b.prof.Seconds(cycles), ok: true}
		if c.seconds > 0 {
			c.power = energy / c.seconds
		}
	}
	s.Kind, s.Task, s.Seconds, s.Power, s.Energy = k, task, c.seconds, c.power, energy
}

// segTiming is a segment's duration and power for its energy and cycles.
type segTiming struct {
	energy, cycles, seconds, power float64
	ok                             bool
}

// Next returns the segment the board runs now, given the energy the
// capacitor holds above brown-out (what the run-time rule's voltage reading
// tells; pass +Inf when there is no power model). ok is false when the
// board is idle with nothing queued (the caller decides whether to stop).
// A Sleep segment lasts until the caller's power model is back at the
// turn-on voltage; its Seconds is 0.
func (b *Board) Next(availableJ float64) (seg Segment, ok bool) {
	if b.hasSeg {
		return b.seg, true
	}
	if b.p.JIT != nil && b.booted && b.running && b.task < len(b.p.Tasks) {
		if k, ok := b.jitNext(availableJ); ok {
			b.seg, b.hasSeg = k, true
			return k, true
		}
	}
	if b.p.RuntimeRule && b.booted && b.running && b.phase == Read && b.task < len(b.p.Tasks) {
		if k, ok := b.rule(availableJ); ok {
			b.seg, b.hasSeg = k, true
			return k, true
		}
	}
	switch {
	case !b.booted:
		s := Segment{Kind: Boot, Task: -1, Seconds: b.prof.Reboot.Seconds, Energy: b.prof.Reboot.Energy}
		s.Power = s.Energy / s.Seconds
		b.seg = s
	case !b.running && b.pending != nil:
		n := float64((len(b.pending) - b.loaded + 1) / 2)
		b.seg = b.segment(LoadInput, -1, b.prof.NVMWrite.Energy(n), b.prof.NVMWrite.Cycles(n))
	case !b.running:
		return Segment{Kind: Idle, Task: -1, Power: b.prof.SleepPowerW}, false
	default:
		b.fillTaskSegment(&b.seg, b.phase)
	}
	b.hasSeg = true
	return b.seg, true
}

// fillTaskSegment writes the segment of kind k of the current task into s.
func (b *Board) fillTaskSegment(s *Segment, k Kind) {
	t := &b.p.Tasks[b.task]
	switch k {
	case Read:
		e, c, slot := t.ReadEnergy, t.ReadCycles, int(Read)
		if b.lastDone == b.task-1 && b.task > 0 {
			// What the task before left in SRAM is not read again.
			e, c, slot = t.ResidentReadEnergy, t.ResidentReadCycles, residentSlot
		}
		if b.p.ReadsSupply() {
			// The voltage reading before the task.
			e, c = e+b.p.SenseEnergy, c+b.p.SenseCycles
		}
		b.fillSegment(s, slot, Read, b.task, e, c)
	case Compute:
		b.fillSegment(s, int(Compute), Compute, b.task, t.ComputeEnergy, t.ComputeCycles)
	case Write:
		b.fillSegment(s, int(Write), Write, b.task, t.WriteEnergy, t.WriteCycles)
	default:
		b.fillSegment(s, int(Commit), Commit, b.task, t.CommitEnergy, t.CommitCycles)
	}
}

// Steps is the rest of the task a board runs: the segments that Next would
// return one after the other, each completed (boards.Steps).
type Steps = boards.Steps

// RestOfTask fills r with the segments left of the task the board runs,
// from the one Next would return on, and reports whether there is such a
// task: false when the board is off, booting, idle or loading an input, or
// when its plan has the run-time rule (which decides before each task).
// A caller runs them in turn, reporting each with CompleteStep, as it would
// with Next and Complete, until one is cut (then Next returns it, for
// BrownOut) or the task ends; it spares a call of Next per segment.
func (b *Board) RestOfTask(r *Steps) bool {
	if !b.on || !b.booted || !b.running || b.p.ReadsSupply() || b.task >= len(b.p.Tasks) {
		return false
	}
	ph := b.phases(&b.p.Tasks[b.task])
	i := 0
	for b.phase != Read && i < len(ph) && ph[i] != b.phase {
		i++
	}
	r.N = 0
	for ; i < len(ph); i++ {
		b.fillTaskSegment(&r.Segs[r.N], ph[i])
		r.N++
	}
	return r.N > 0
}

// CompleteRest reports that all the segments RestOfTask gave in r ran to
// their end, as CompleteStep for each in turn would; the event is the
// last segment's, and says whether any committed. A task's computation
// and the write of its results then make one data operation, which
// copies the results to NVM without the copy in SRAM that only the
// task's own write reads.
func (b *Board) CompleteRest(r *Steps) Event {
	if r.N == 0 {
		return Event{Kind: Idle, Task: -1}
	}
	task := b.task
	var computes, writes bool
	for k := range r.N {
		computes = computes || r.Segs[k].Kind == Compute
		writes = writes || r.Segs[k].Kind == Write
	}
	if !computes || !writes || b.faults.CommitBeforeWrite || !b.headerSafe {
		var ev Event
		committed := false
		for k := range r.N {
			ev = b.CompleteStep(&r.Segs[k])
			committed = committed || ev.Committed
		}
		ev.Committed = committed
		return ev
	}
	b.hasSeg = false
	ev := Event{Kind: r.Segs[r.N-1].Kind, Task: task}
	b.Executions[task]++
	b.do(dataOp{kind: opComputeWrite, task: int32(task)}, opArg{})
	if b.p.Tasks[task].Commit {
		b.setProgress(task + 1)
		ev.Committed = true
	}
	b.lastDone = task
	b.task++
	b.phase = Read
	if b.running && b.task == len(b.p.Tasks) {
		b.running = false
		ev.InferenceDone = b.Progress() == len(b.p.Tasks)
	}
	return ev
}

// CompleteStep reports that s, the next of the segments RestOfTask gave,
// ran to its end, and applies it as Complete does.
func (b *Board) CompleteStep(s *Segment) Event {
	b.hasSeg = false
	return b.completed(s.Kind, s.Task)
}

var (
	phasesNoCommit    = []Kind{Read, Compute, Write}
	phasesCommit      = []Kind{Read, Compute, Write, Commit}
	phasesCommitFirst = []Kind{Read, Compute, Commit, Write}
)

// rule is the run-time voltage rule at the start of a task: when the energy
// left does not cover the task, the reading and a commit of uncommitted
// work, commit that work now and then sleep. A task that needs more than
// plan.RuleRunAnyway of a full charge runs anyway (sleeping would not help),
// as does the first task after a wake.
func (b *Board) rule(available float64) (Segment, bool) {
	if b.woke {
		b.woke = false
		return Segment{}, false
	}
	commitE, commitC := b.p.Tasks[len(b.p.Tasks)-1].CommitEnergy, b.p.Tasks[len(b.p.Tasks)-1].CommitCycles
	uncommitted := b.Progress() < b.task
	need := b.p.RuleNeed(b.task) // (the firmware's image carries it: plan.EncodeImage)
	if available >= need || need > b.p.RuleLimit() {
		return Segment{}, false
	}
	if uncommitted {
		return b.segment(EarlyCommit, b.task, commitE, commitC), true
	}
	return Segment{Kind: Sleep, Task: -1, Power: b.prof.SleepPowerW}, true
}

// phases is the order of a task's segments.
func (b *Board) phases(t *plan.Task) []Kind {
	switch {
	case !t.Commit:
		return phasesNoCommit
	case b.faults.CommitBeforeWrite:
		return phasesCommitFirst
	}
	return phasesCommit
}

func (b *Board) nextPhase() {
	ph := b.phases(&b.p.Tasks[b.task])
	for i, k := range ph {
		if k == b.phase {
			if i+1 < len(ph) {
				b.phase = ph[i+1]
				return
			}
			break
		}
	}
	b.lastDone = b.task
	b.task++
	b.phase = Read
}

// Complete reports that the current segment ran to its end, and applies it.
func (b *Board) Complete() Event {
	b.hasSeg = false
	return b.completed(b.seg.Kind, b.seg.Task)
}

// completed applies a segment of kind k of task task that ran to its end.
func (b *Board) completed(k Kind, task int) Event {
	if b.p.JIT != nil {
		if ev, ok := b.jitCompleted(k, task); ok {
			return ev
		}
	}
	ev := Event{Kind: k, Task: task}
	switch k {
	case Boot:
		b.booted = true
		b.resume()
	case LoadInput:
		b.do(dataOp{kind: opLoad, lo: int32(b.loaded), hi: int32(len(b.pending))}, opArg{input: b.pending})
		binary.LittleEndian.PutUint32(b.nvm[plan.MagicOffset:], plan.Magic)
		binary.LittleEndian.PutUint32(b.nvm[plan.PlanTagOffset:], b.tag)
		b.setProgress(0)
		if b.p.JIT != nil {
			b.setSnapshotValid(false) // (the firmware: before the input)
		}
		b.pending, b.loaded = nil, 0
		b.running, b.task, b.phase = true, 0, Read
	case Read:
		b.nextPhase()
	case Compute:
		b.Executions[task]++
		b.do(dataOp{kind: opCompute, task: int32(task)}, opArg{})
		b.nextPhase()
	case Write:
		b.do(dataOp{kind: opWrite, task: int32(task), hi: -1}, opArg{})
		b.nextPhase()
	case Commit:
		b.setProgress(task + 1)
		ev.Committed = true
		b.nextPhase()
	case EarlyCommit:
		// Everything before the current task is done.
		b.setProgress(task)
		ev.Committed = true
	case Sleep:
		b.woke = true
	}
	if b.running && b.task == len(b.p.Tasks) {
		// Done once the last task's segments have all run (its commit, or
		// its write when the broken order commits first).
		b.running = false
		ev.InferenceDone = b.Progress() == len(b.p.Tasks)
	}
	return ev
}

// resume reads the NVM header at boot, as the firmware does.
func (b *Board) resume() {
	valid := binary.LittleEndian.Uint32(b.nvm[plan.MagicOffset:]) == plan.Magic &&
		binary.LittleEndian.Uint32(b.nvm[plan.PlanTagOffset:]) == b.tag
	prog := b.Progress()
	b.jit = jitState{}
	if !valid || prog >= len(b.p.Tasks) {
		b.running = false
		return
	}
	if b.p.JIT != nil && b.jitResume(prog) {
		return
	}
	b.running, b.task, b.phase = true, prog, Read
}

// compute runs the task's region with the reference kernels, reading its
// inputs from NVM and writing into the layer's SRAM output buffer.
func (b *Board) compute(task int) {
	t := &b.p.Tasks[task]
	l := b.m.Layers[t.Layer]
	var ins [2][]byte
	for i, tt := range l.Inputs {
		ins[i] = b.tensorNVM(tt)
	}
	if !t.Part.Split() {
		if b.memoOff {
			refexec.RunLayer(b.m, l, ins[:len(l.Inputs)], b.sramOf(l.Output), t.Region, b.scratch)
		} else {
			b.regionFromMemo(l, ins[:len(l.Inputs)], t.Region)
		}
		return
	}
	b.accInSRAM()
	acc := b.acc[:t.Region.Elems()]
	if t.Part.Step == 0 {
		clear(acc)
	} else {
		prev := b.partialNVM(task - 1)
		for i := range acc {
			acc[i] = int32(binary.LittleEndian.Uint32(prev[4*i:]))
		}
	}
	refexec.AccumulateLayer(l, ins[:len(l.Inputs)], t.Region, t.Part.Lo, t.Part.Hi, acc)
	if t.Part.Last() {
		refexec.FinishLayer(l, acc, b.sramOf(l.Output), t.Region)
		return
	}
	for i, v := range acc {
		binary.LittleEndian.PutUint32(b.accBytes[4*i:], uint32(v))
	}
}

// written counts a write into tensor t's NVM bytes against every
// activation that shares them.
func (b *Board) written(t int) {
	for _, o := range b.overlaps[t] {
		b.gen[o]++
	}
}

// computeWrite is compute then writeOutput of the whole region of a task,
// with nothing between: from the memo, the region goes straight to NVM.
// The SRAM copy is left as it was: only the task's own write reads it,
// and the task's next computation overwrites it first.
func (b *Board) computeWrite(task int) {
	t := &b.p.Tasks[task]
	if t.Part.Split() || b.memoOff {
		b.compute(task)
		b.writeOutput(task, -1)
		return
	}
	l := b.m.Layers[t.Layer]
	var ins [2][]byte
	for i, tt := range l.Inputs {
		ins[i] = b.tensorNVM(tt)
	}
	e := b.memoOf(l, ins[:len(l.Inputs)])
	out := b.m.Tensors[l.Output]
	dst := b.tensorNVM(l.Output)
	b.written(l.Output)
	copyRegion(dst, e.out, out.Shape, out.DType.Size(), t.Region)
}

// regionFromMemo fills the task's region of the layer's SRAM output from the
// memo of the layer's whole output. The memo is a pure function of the
// layer's input bytes: it is recomputed from NVM whenever an input differs,
// byte for byte, from the bytes it was computed from (checked only after a
// write into an input's NVM bytes). So a task gets exactly what computing
// its region from NVM gives, a wrong commit protocol still yields wrong
// numbers, and a layer whose inputs repeat is computed once.
func (b *Board) regionFromMemo(l *model.Layer, ins [][]byte, r kernels.Region) {
	e := b.memoOf(l, ins)
	out := b.m.Tensors[l.Output]
	copyRegion(b.sramOf(l.Output), e.out, out.Shape, out.DType.Size(), r)
}

// memoOf is the memo of layer l's whole output, valid for the input bytes
// ins (recomputed from them if need be).
func (b *Board) memoOf(l *model.Layer, ins [][]byte) *memoEntry {
	e := b.memo[l.Index]
	if e == nil {
		e = &memoEntry{gens: make([]uint64, len(l.Inputs))}
		if b.seeds != nil {
			e.ins, e.out, _ = b.seeds.take(b.m, l)
		}
		if e.out != nil {
			for i := range e.gens {
				e.gens[i] = genSeeded // compared byte for byte at first use
			}
		} else {
			e.ins, e.out = make([][]byte, len(l.Inputs)), make([]byte, b.m.Tensors[l.Output].Bytes())
			for i, t := range l.Inputs {
				e.gens[i] = genNever // never valid before the first computation
				e.ins[i] = make([]byte, b.m.Tensors[t].Bytes())
			}
		}
		b.memo[l.Index] = e
	}
	same := true
	for i, t := range l.Inputs {
		if e.gens[i] != b.gen[t] {
			// Written since (or seeded): still the same bytes? (Every
			// inference on the same input gives the same activations.)
			same = same && e.gens[i] != genNever && bytes.Equal(e.ins[i], ins[i])
			e.gens[i] = b.gen[t]
		}
	}
	if !same {
		refexec.RunLayer(b.m, l, ins, e.out, b.m.OutputShape(l).Full(), b.scratch)
		for i := range l.Inputs {
			copy(e.ins[i], ins[i])
		}
		b.MemoMisses++
	}
	return e
}

// copyRegion copies region r of a tensor of shape s, with elements of size
// bytes, from src to dst, in as few contiguous spans as the region allows.
func copyRegion(dst, src []byte, s kernels.Shape, size int, r kernels.Region) {
	span := (r.C1 - r.C0) * size // bytes of one (n, y, x) span
	pixel := s.C * size
	nx := r.X1 - r.X0
	if r.C0 == 0 && r.C1 == s.C {
		// Whole pixels: the spans of a row of x are contiguous.
		span, nx = span*nx, 1
		if r.X0 == 0 && r.X1 == s.W {
			// Whole rows: so are those of a block of y.
			span *= r.Y1 - r.Y0
			for n := r.N0; n < r.N1; n++ {
				lo := (n*s.H + r.Y0) * s.W * pixel
				copy(dst[lo:lo+span], src[lo:lo+span])
			}
			return
		}
	}
	for n := r.N0; n < r.N1; n++ {
		for y := r.Y0; y < r.Y1; y++ {
			lo := ((n*s.H+y)*s.W+r.X0)*pixel + r.C0*size
			for range nx {
				d, c := dst[lo:lo+span], src[lo:lo+span]
				if span == 8 {
					// A tile's 8 channels of a pixel: one word (a call
					// of copy costs more than its bytes).
					binary.LittleEndian.PutUint64(d, binary.LittleEndian.Uint64(c))
				} else {
					copy(d, c)
				}
				lo += pixel
			}
		}
	}
}

// partialNVM is the NVM slot a task writes its partial sums to.
func (b *Board) partialNVM(task int) []byte {
	off, n, ok := b.p.PartialSlot(task)
	if !ok {
		panic(fmt.Sprintf("sim: task %d has no partial-sum slot", task))
	}
	// Only the task's region is written (an edge tile is smaller).
	return b.nvm[off : off+min(n, 4*b.p.Tasks[task].Region.Elems())]
}

// writeOutput copies the task's output region from SRAM to NVM, span by
// span; limit < 0 copies all of it, otherwise only the first limit bytes
// (a write cut by a brown-out).
func (b *Board) writeOutput(task, limit int) {
	t := &b.p.Tasks[task]
	if t.Part.Split() && !t.Part.Last() {
		dst := b.partialNVM(task)
		n := len(dst)
		if limit >= 0 {
			n = min(n, limit)
		}
		b.accInSRAM()
		copy(dst[:n], b.accBytes[:n])
		return
	}
	l := b.m.Layers[t.Layer]
	out := b.m.Tensors[l.Output]
	src, dst := b.sramOf(l.Output), b.tensorNVM(l.Output)
	b.written(l.Output)
	s, r := out.Shape, t.Region
	size := out.DType.Size()
	if limit < 0 {
		copyRegion(dst, src, s, size, r)
		return
	}
	written := 0
	for n := r.N0; n < r.N1; n++ {
		for y := r.Y0; y < r.Y1; y++ {
			for x := r.X0; x < r.X1; x++ {
				lo := (((n*s.H+y)*s.W+x)*s.C + r.C0) * size
				hi := lo + (r.C1-r.C0)*size
				if limit >= 0 && written+(hi-lo) > limit {
					hi = lo + (limit - written)
				}
				copy(dst[lo:hi], src[lo:hi])
				written += hi - lo
				if limit >= 0 && written >= limit {
					return
				}
			}
		}
	}
}

// BrownOut reports that power failed after the given fraction of the
// current segment. NVM keeps what was written; SRAM and the execution state
// are lost.
func (b *Board) BrownOut(fraction float64) {
	if b.hasSeg && b.on {
		s := b.seg
		switch s.Kind {
		case Write:
			t := &b.p.Tasks[s.Task]
			// Whole NVM words only: the write unit completes or not.
			words := int(fraction * float64(t.WriteBytes) / float64(b.p.WordBytes))
			b.do(dataOp{kind: opWrite, task: int32(s.Task), hi: int32(words * b.p.WordBytes)}, opArg{})
		case LoadInput:
			n := int(fraction*float64(len(b.pending)-b.loaded)) / b.p.WordBytes * b.p.WordBytes
			b.do(dataOp{kind: opLoad, lo: int32(b.loaded), hi: int32(b.loaded + n)}, opArg{input: b.pending})
			b.loaded += n
		}
		if b.p.JIT != nil {
			b.jitBrownOut(&s, fraction)
		}
		if s.Task >= 0 {
			b.do(dataOp{kind: opLost, task: int32(s.Task)}, opArg{})
		}
	}
	b.on, b.booted, b.hasSeg, b.running = false, false, false, false
	b.lastDone = -1
}

// accInSRAM scrambles the SRAM of the partial sums if a brown-out has
// wiped it since its last use, so that no partial sum computed before a
// brown-out can leak into one after it.
func (b *Board) accInSRAM() {
	if !b.accLost {
		return
	}
	for i := range b.acc {
		b.acc[i] = -0x5A5A5A5A
	}
	for i := range b.accBytes {
		b.accBytes[i] = 0xA5
	}
	b.accLost = false
}

// scramble overwrites a region of an SRAM buffer with a pattern, so that no
// result computed before a brown-out can leak into one after it.
func scramble(buf []byte, r kernels.Region, t *model.Tensor) {
	s, size := t.Shape, t.DType.Size()
	for n := r.N0; n < r.N1; n++ {
		for y := r.Y0; y < r.Y1; y++ {
			for x := r.X0; x < r.X1; x++ {
				lo := (((n*s.H+y)*s.W+x)*s.C + r.C0) * size
				for i := lo; i < lo+(r.C1-r.C0)*size; i++ {
					buf[i] = 0xA5
				}
			}
		}
	}
}
