// Package plan is the deployment plan of a model on an intermittently
// powered board: an ordered list of tasks, each one rectangular region of one
// layer's output with its data movement and estimated cost, the commit points
// (where a progress marker is written), and the placement of every
// activation in non-volatile memory.
//
// The commit rules, which the simulated board and the firmware both follow:
//
//  1. Every activation tensor has its own NVM region for as long as any task
//     between two commits may read it (see Layout): no task ever overwrites
//     what a task of the same uncommitted stretch reads.
//  2. A task reads its inputs from NVM, computes in SRAM, and writes only its
//     own output region back to NVM.
//  3. After a task marked Commit, and after all its NVM writes, the runtime
//     writes the progress word: the number of tasks done. It is one aligned
//     NVM word (WordBytes), which the NVM completes atomically, and nothing
//     else is written with it.
//  4. At boot the runtime reads the progress word and resumes at that task.
//     Tasks after the last commit run again and, reading the same inputs,
//     rewrite the same outputs: a brown-out anywhere gives the same result.
//  5. An inference starts when the host has written the input tensor and
//     then sets the progress word to 0; it is done when the word equals the
//     number of tasks.
//
// A plan with just-in-time checkpoints (JIT) adds a snapshot of the task
// in progress, kept in its own NVM area and taken only when the supply
// runs low; a boot resumes a valid snapshot of a task at or after the
// progress word instead (every task before it had written its outputs when
// the snapshot was taken, and the commit rules keep them).
//
// A boot checks the plan image's CRC-32 only once per image: it records
// the image's CRC field in the NVM header once the whole image is accepted
// (VerifiedCRCOffset) and skips the check while the record matches, so that
// no power cycle pays for reading the whole image (FORMAT.md).
package plan

import (
	"fmt"

	"github.com/batteryless/harness/harness/kernels"
)

// Version is the version of the plan format (JSON view and binary encoding).
const Version = 1

// Part is one step of a reduction split across tasks: when one output value
// needs more input than a task can read in a power cycle, the sum behind it
// is cut into Steps steps over a range of the reduced dimension (input
// channels of CONV_2D, inputs of FULLY_CONNECTED, window rows of
// AVERAGE_POOL_2D). Every step but the last writes int32 partial sums to an
// NVM slot (Plan.PartialSlot), which the next task reads. Slots rotate
// through enough of them that a slot is overwritten only after a commit
// has passed its reader: no re-run step ever reads a slot written after it.
// The zero Part is a task that computes whole outputs.
type Part struct {
	Lo    int `json:"lo"`
	Hi    int `json:"hi"`
	Step  int `json:"step"`
	Steps int `json:"steps"`
}

// Split reports whether the task is one step of a split reduction.
func (p Part) Split() bool { return p.Steps > 1 }

// Last reports whether the task finishes its outputs (true for unsplit tasks).
func (p Part) Last() bool { return p.Step == p.Steps-1 || p.Steps <= 1 }

// Task is one unit of intermittent work.
type Task struct {
	Layer  int            `json:"layer"`
	Region kernels.Region `json:"region"`
	// Part is the step of a split reduction this task computes.
	Part Part `json:"part,omitzero"`
	// Commit says the progress word is written after this task.
	Commit bool `json:"commit,omitempty"`

	MACs       int64 `json:"macs"`
	ReadBytes  int   `json:"read_bytes"`  // NVM -> SRAM: inputs and weights the task needs
	WriteBytes int   `json:"write_bytes"` // SRAM -> NVM: the task's output region
	SRAMBytes  int   `json:"sram_bytes"`  // the task's working set in SRAM

	// Estimated from the device profile; the commit's cost is included
	// when Commit is set (CommitEnergy and CommitCycles say how much).
	Energy       float64 `json:"energy_j"`
	Cycles       float64 `json:"cycles"`
	CommitEnergy float64 `json:"commit_energy_j,omitempty"`
	CommitCycles float64 `json:"commit_cycles,omitempty"`
	// The parts of Energy, for the energy split of a replay.
	ReadEnergy    float64 `json:"read_energy_j"`
	ComputeEnergy float64 `json:"compute_energy_j"`
	WriteEnergy   float64 `json:"write_energy_j"`
	ReadCycles    float64 `json:"read_cycles"`
	ComputeCycles float64 `json:"compute_cycles"`
	WriteCycles   float64 `json:"write_cycles"`
	// ResidentReadEnergy and ResidentReadCycles are the read's cost when
	// the task before it ran in the same power cycle: the inputs it shares
	// with that task (the same input regions) and the weights (the same
	// channel block and reduction step) are still in SRAM and are not read
	// again. A brown-out empties SRAM; a rule sleep keeps it.
	ResidentReadEnergy float64 `json:"resident_read_energy_j"`
	ResidentReadCycles float64 `json:"resident_read_cycles"`
}

// Placement is where an activation tensor lives in NVM.
type Placement struct {
	Tensor int `json:"tensor"`
	Offset int `json:"offset"` // from the start of NVM
	Bytes  int `json:"bytes"`
}

// LayerPlan is how one layer is cut: the schedule that, with the model,
// determines the layer's tasks (see Expand), and what it costs.
type LayerPlan struct {
	Layer int    `json:"layer"`
	Op    string `json:"op"`
	TileH int    `json:"tile_h"`           // output rows per task
	TileW int    `json:"tile_w"`           // output columns per task
	TileC int    `json:"tile_c"`           // output channels per task
	TileR int    `json:"tile_r,omitempty"` // reduction step length (0: whole reductions)
	// CommitEvery commits after every CommitEvery-th task of the layer
	// (0: none inside the layer); NoCommitAtEnd skips the commit after the
	// layer's last task (the model's last task always commits).
	CommitEvery   int  `json:"commit_every"`
	NoCommitAtEnd bool `json:"no_commit_at_end,omitempty"`

	// Filled in by Expand and Layout.
	FirstTask        int `json:"first_task"`
	Tasks            int `json:"tasks"`
	PartialBase      int `json:"partial_base,omitempty"`       // NVM offset of the layer's partial-sum slots
	PartialSlots     int `json:"partial_slots,omitempty"`      // how many slots rotate
	PartialSlotBytes int `json:"partial_slot_bytes,omitempty"` // bytes of one slot

	// Estimates.
	// PredictedS is the layer's predicted latency (see sched.Predict).
	PredictedS     float64 `json:"predicted_s,omitempty"`
	TasksPerCommit float64 `json:"tasks_per_commit"`
	Energy         float64 `json:"energy_j"`
	MaxCommitGroup float64 `json:"max_commit_energy_j"` // the costliest stretch between two commits
}

// Plan is a model's deployment on a board.
type Plan struct {
	Version   int    `json:"version"`
	Model     string `json:"model"`
	ModelHash string `json:"model_sha256"`
	Profile   string `json:"profile"`
	Scheduler string `json:"scheduler"`

	Tasks  []Task      `json:"tasks"`
	Layers []LayerPlan `json:"layers"`

	// NVM layout: the header with the progress word, then the activations.
	WordBytes      int         `json:"word_bytes"`
	ProgressOffset int         `json:"progress_offset"`
	NVMBytes       int         `json:"nvm_bytes"` // header plus activations
	Activations    []Placement `json:"activations"`

	InputTensor  int `json:"input_tensor"`
	OutputTensor int `json:"output_tensor"`
	WeightBytes  int `json:"weight_bytes"` // constants, also in NVM

	// RuntimeRule turns on the board's voltage rule: before each task the
	// runtime reads the supply voltage; when the energy left above
	// brown-out does not cover the task (and a commit of the work not yet
	// committed), it commits now and sleeps until the capacitor is back at
	// the turn-on voltage, instead of running into a brown-out and a
	// reboot. SenseEnergy and SenseCycles are the cost of one reading.
	RuntimeRule bool    `json:"runtime_rule,omitempty"`
	SenseEnergy float64 `json:"sense_energy_j,omitempty"`
	SenseCycles float64 `json:"sense_cycles,omitempty"`
	// Storage is what the board's rule turns a voltage reading into
	// energy with (set with RuntimeRule; the image carries it).
	Storage *Storage `json:"storage,omitempty"`
	// JIT turns on just-in-time checkpoints (see JIT); SenseEnergy and
	// SenseCycles are then the cost of each reading, and Storage is set.
	JIT *JIT `json:"jit,omitempty"`

	// Budget is the energy a power cycle gives from storage alone, and
	// RebootEnergy what each boot costs before the first task.
	// PredictedS is the predicted latency of one inference (sched.Predict),
	// for the harvest power it was predicted with (PredictedForW; 0 means
	// continuous power).
	PredictedS    float64 `json:"predicted_s,omitempty"`
	PredictedForW float64 `json:"predicted_for_w,omitempty"`

	Budget       float64 `json:"cycle_budget_j"`
	RebootEnergy float64 `json:"reboot_energy_j"`
}

// PartialSlot returns the NVM bytes of the partial-sum slot that the given
// task writes (its successor reads it): slot (j mod PartialSlots) of its
// layer's partial area, j being the task's index within its layer.
func (p *Plan) PartialSlot(task int) (offset, bytes int, ok bool) {
	if task < 0 || task >= len(p.Tasks) {
		return 0, 0, false
	}
	lp := p.LayerPlan(p.Tasks[task].Layer)
	if lp == nil || lp.PartialSlots == 0 {
		return 0, 0, false
	}
	j := task - lp.FirstTask
	return lp.PartialBase + (j%lp.PartialSlots)*lp.PartialSlotBytes, lp.PartialSlotBytes, true
}

// LayerPlan returns the schedule of a layer, nil if the plan has none.
func (p *Plan) LayerPlan(layer int) *LayerPlan {
	if layer >= 0 && layer < len(p.Layers) && p.Layers[layer].Layer == layer {
		return &p.Layers[layer]
	}
	for i := range p.Layers {
		if p.Layers[i].Layer == layer {
			return &p.Layers[i]
		}
	}
	return nil
}

// Placement returns the NVM placement of an activation tensor.
func (p *Plan) Placement(tensor int) (Placement, bool) {
	for _, pl := range p.Activations {
		if pl.Tensor == tensor {
			return pl, true
		}
	}
	return Placement{}, false
}

// Energy is the estimated energy of one inference (all tasks and commits,
// no reboots).
func (p *Plan) Energy() float64 {
	e := 0.0
	for _, t := range p.Tasks {
		e += t.Energy
	}
	return e
}

// Cycles is the estimated CPU cycles of one inference.
func (p *Plan) Cycles() float64 {
	c := 0.0
	for _, t := range p.Tasks {
		c += t.Cycles
	}
	return c
}

// Commits counts the commit points.
func (p *Plan) Commits() int {
	n := 0
	for _, t := range p.Tasks {
		if t.Commit {
			n++
		}
	}
	return n
}

// Group is a stretch of tasks that ends with a commit: [First, Last].
type Group struct {
	First, Last int
	Energy      float64 // tasks and the closing commit
	Cycles      float64
}

// Groups lists the commit groups in order.
func (p *Plan) Groups() []Group {
	var gs []Group
	g := Group{First: 0}
	for i, t := range p.Tasks {
		g.Energy += t.Energy
		g.Cycles += t.Cycles
		if t.Commit || i == len(p.Tasks)-1 {
			g.Last = i
			gs = append(gs, g)
			g = Group{First: i + 1}
		}
	}
	return gs
}

// Validate checks the plan's structure: task order, commits, NVM layout.
func (p *Plan) Validate() error {
	if p.Version != Version {
		return fmt.Errorf("plan: version %d, this harness reads version %d", p.Version, Version)
	}
	if len(p.Tasks) == 0 {
		return fmt.Errorf("plan: no tasks")
	}
	if n := MaxTasksFor(p.WordBytes); len(p.Tasks) > n {
		return fmt.Errorf("plan: %d tasks, more than the %d a %d-byte progress word can count", len(p.Tasks), n, p.WordBytes)
	}
	if !p.Tasks[len(p.Tasks)-1].Commit {
		return fmt.Errorf("plan: the last task does not commit")
	}
	for i := range p.Tasks {
		t := &p.Tasks[i] // (a Task is large: not copied)
		if t.Region.Empty() {
			return fmt.Errorf("plan: task %d has an empty region", i)
		}
		if i > 0 && t.Layer < p.Tasks[i-1].Layer {
			return fmt.Errorf("plan: task %d (layer %d) comes after a task of layer %d", i, t.Layer, p.Tasks[i-1].Layer)
		}
		if t.Part.Split() {
			// The steps of one reduction follow each other in order.
			prev := i > 0 && p.Tasks[i-1].Region == t.Region && p.Tasks[i-1].Part.Step == t.Part.Step-1
			if t.Part.Step > 0 && !prev || t.Part.Lo >= t.Part.Hi || t.Part.Step >= t.Part.Steps {
				return fmt.Errorf("plan: task %d is step %d of %d out of order", i, t.Part.Step, t.Part.Steps)
			}
		}
	}
	if p.WordBytes != 2 && p.WordBytes != 4 {
		return fmt.Errorf("plan: word size %d is not 2 or 4", p.WordBytes)
	}
	if j := p.JIT; j != nil {
		if p.RuntimeRule {
			return fmt.Errorf("plan: the run-time rule and just-in-time checkpoints together")
		}
		for _, lp := range p.Layers {
			if lp.Layer < 0 || lp.Layer >= len(j.ChunkPixels) || j.ChunkPixels[lp.Layer] < 1 {
				return fmt.Errorf("plan: just-in-time checkpoints: layer %d has no chunk size", lp.Layer)
			}
		}
		if j.SnapshotOffset < HeaderBytes || j.SnapshotBytes < SnapshotHeaderBytes || j.SnapshotOffset+j.SnapshotBytes > p.NVMBytes {
			return fmt.Errorf("plan: just-in-time checkpoints: snapshot area %d+%d outside NVM [%d, %d)", j.SnapshotOffset, j.SnapshotBytes, HeaderBytes, p.NVMBytes)
		}
	}
	return nil
}

// MaxTasks bounds any plan (the tasks are kept in memory while planning).
const MaxTasks = 1 << 22

// MaxTasksFor is the most tasks a plan may have on a board whose atomic NVM
// word is wordBytes long: the progress word counts tasks, with its largest
// value reserved (0xFFFE on a 16-bit MSP430 word).
func MaxTasksFor(wordBytes int) int {
	if wordBytes == 2 {
		return 0xFFFE
	}
	return MaxTasks
}
