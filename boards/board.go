package boards

import (
	"context"
	"errors"
)

// StepKind is what a step of a board does.
type StepKind int

// The kinds of steps. A board that reports only whole tasks (a real or
// emulated board) uses Task; the simulated board splits a task into Read,
// Compute, Write and Commit.
const (
	Boot        StepKind = iota // reboot: runtime start, reading the progress word
	LoadInput                   // the host writes an input tensor and resets progress
	Read                        // a task's DMA of inputs and weights into SRAM
	Compute                     // a task's arithmetic
	Write                       // a task's DMA of its output region into NVM
	Commit                      // the progress word write
	Idle                        // nothing to do: sleep
	EarlyCommit                 // the run-time rule commits before sleeping
	Sleep                       // the run-time rule waits for the capacitor to recharge
	Task                        // a whole task: read, compute, write (and commit)
	// Just-in-time checkpoints (plan.JIT): a task's arithmetic runs in
	// chunks between supply readings (ComputePart, then Compute for the
	// last); below the threshold the board writes a Checkpoint and sleeps;
	// a boot reads a valid one back (Restore).
	ComputePart // a chunk of a task's arithmetic that does not finish it
	Checkpoint  // the snapshot of the task's SRAM state written to NVM
	Restore     // the boot reads the snapshot back into SRAM
)

var stepKindNames = [...]string{"boot", "load_input", "read", "compute", "write", "commit", "idle", "early_commit", "sleep", "task",
	"compute_part", "checkpoint", "restore"}

func (k StepKind) String() string {
	if k < 0 || int(k) >= len(stepKindNames) {
		return "unknown"
	}
	return stepKindNames[k]
}

// NumStepKinds is the number of step kinds (for tables indexed by kind).
const NumStepKinds = len(stepKindNames)

// Step is the next piece of work of a board: what it does, for how long, at
// what power. A Sleep step lasts until the engine's power model is back at
// the turn-on voltage; its Seconds is 0.
type Step struct {
	Kind    StepKind
	Task    int     // the task, for task steps; -1 otherwise
	Seconds float64 // duration in the board's time
	Power   float64 // draw while it runs, W
	Energy  float64 // Seconds * Power
}

// Steps is the rest of a task that a TaskStepper runs in one call: the steps
// that Next would return one after the other.
type Steps struct {
	Segs [4]Step
	N    int
}

// Event is what a board did when a step ran to its end.
type Event struct {
	Kind          StepKind
	Task          int
	Committed     bool // the progress word advanced
	InferenceDone bool
	// Output is the finished inference's output, when the board hands it
	// over with the event (nil from an OutputSnapshotter: see there).
	Output []byte
	// Cycles is the board's own count for the step, when it reports one.
	Cycles uint32
	// Hung: the board did not finish the step. It draws its active power
	// until the supply browns it out (then BrownOut), as a hung chip does.
	Hung bool
}

// Board is one board running one deployment (a model's plan), driven by the
// replay engine, which owns the power: the board says what it does next, and
// the engine runs its power model through that step and reports back whether
// it ran to its end (Complete) or a brown-out cut it (BrownOut). The engine
// calls the methods from one goroutine.
type Board interface {
	// PowerOn: the supply reached the turn-on voltage. The board's next
	// step is its boot.
	PowerOn(ctx context.Context) error
	// Next returns the step the board runs now, given the energy the
	// capacitor holds above brown-out (what a run-time rule's voltage
	// reading tells). ok is false when the board is idle with nothing
	// queued. Next returns the same step until Complete or BrownOut.
	Next(ctx context.Context, availableJ float64) (step Step, ok bool, err error)
	// Complete: the step Next returned ran to its end.
	Complete(ctx context.Context) (Event, error)
	// BrownOut: the supply fell to brown-out after fraction (0 to 1) of the
	// step Next returned. Everything volatile is lost.
	BrownOut(ctx context.Context, fraction float64) error
	// QueueInput gives the board the input of the next inference; the host
	// loads it when the board is on and idle.
	QueueInput(ctx context.Context, input []byte) error
	// Running reports whether an inference is in progress (NVM's view).
	Running() bool
	// Loading reports whether an input is being loaded (no inference runs).
	Loading() bool
	// Progress is the progress word: the tasks committed.
	Progress() int
	// Close releases what the board holds (QEMU, a port). The engine does
	// not call it: whoever opened the board does.
	Close() error
}

// TaskStepper is a board that can hand the engine the rest of a task at once
// (the simulated board): the same states as Next and Complete per step, in
// fewer calls. RestOfTask reports false when the board is not in a task, or
// decides step by step (a run-time rule).
type TaskStepper interface {
	RestOfTask(r *Steps) bool
	// CompleteRest: every step of r ran to its end.
	CompleteRest(r *Steps) Event
	// CompleteStep: s, the next step of r, ran to its end.
	CompleteStep(s *Step) Event
}

// OutputSnapshotter is a board whose output the engine reads later, when
// the board's deferred work is done (the simulated board computes its
// numbers behind the power model's back): Snapshot hands the output as of
// now to f, at the latest after FlushSnapshots.
type OutputSnapshotter interface {
	Snapshot(f func(out []byte))
	FlushSnapshots()
}

// SupplySensor is a board whose firmware reads its supply voltage (the
// run-time rule): the engine tells it how to read the modelled capacitor's
// voltage at any instant.
type SupplySensor interface {
	SenseSupply(volts func() float64)
}

// TaskCycler is a board that measured each task's cycles (for the
// prediction's per-task comparison).
type TaskCycler interface {
	TaskCycles() []uint32
}

// RealTime is a board that runs in real time, as a board on a bench does: it
// cannot be stopped at a step's start, so it maps the power model's instants
// onto the wall clock itself (Next offers the step the board is running, the
// engine runs the model through it, and Complete, BrownOut and PowerOn wait
// for their wall instants). The engine gives it the model's clock before the
// run and reads back how far the bench's power edges fell from the model's.
type RealTime interface {
	// ModelClock gives the board the power model's time in seconds.
	ModelClock(now func() float64)
	// EdgeErrors returns how far the bench's power edges (on, off) fell
	// from the modelled instants, in seconds (late is positive): commands
	// pairs each edge with the instant its command was written (or the
	// instrument's list step), evidence with the board's own evidence of
	// it (its BOOT less the calibrated boot latency), where it shows one.
	EdgeErrors() (commands, evidence []float64)
}

// ErrProgressLost is wrapped by the error of a board that resumed, after a
// power failure, before what it had reported committed: its output cannot
// be trusted.
var ErrProgressLost = errors.New("committed progress lost across a power failure")
