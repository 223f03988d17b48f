// Package replay runs a deployment plan on a board under a harvested-energy
// trace: the power system model integrates the trace exactly between events,
// the board runs while the capacitor holds it up, every power cycle and
// inference is logged, and every output is checked bit for bit against the
// reference executor.
package replay

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/sim"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/power"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/reports"
	"github.com/batteryless/harness/traces"
)

// DefaultLivelockCycles is how many full power cycles in a row may pass
// without a commit before a replay declares a livelock.
const DefaultLivelockCycles = 50

// Config is one replay.
type Config struct {
	Model   *model.Model
	Plan    *plan.Plan
	Profile *profiles.Profile
	Power   power.Config
	// OpenTrace opens the trace from its start (called again to loop it).
	OpenTrace func() (traces.Reader, error)
	Input     []byte
	// Inferences to run; 0 runs back to back until the trace ends.
	Inferences int
	// Loop repeats the trace until Inferences are done.
	Loop bool
	// Log, if set, receives a record per power cycle and per inference.
	Log *reports.LogWriter
	// Faults break the board's commit protocol on purpose (tests).
	Faults sim.Faults
	// LivelockCycles overrides DefaultLivelockCycles.
	LivelockCycles int
	// Progress, if set, is called now and then with the simulated time.
	Progress func(simTime float64)
	// Reference, if set, is the expected output (else the reference
	// executor computes it).
	Reference []byte
	// NoMemo makes every task compute its region from NVM itself instead
	// of through the board's memo of whole-layer outputs (same results,
	// slower; for tests).
	NoMemo bool
}

// Latency summarizes inference latencies in seconds.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	Max  float64 `json:"max"`
}

// EnergySplit is where the board's energy went, in joules.
type EnergySplit struct {
	Compute float64 `json:"compute"`
	NVM     float64 `json:"nvm"` // reads, writes and input loads
	Commits float64 `json:"commits"`
	Reboots float64 `json:"reboots"`
	Idle    float64 `json:"idle"`
	Wasted  float64 `json:"wasted"` // of the above: work lost to brown-outs and done again
	Total   float64 `json:"total"`
}

// Result is the outcome of a replay.
type Result struct {
	Inferences      int     `json:"inferences"`
	Verified        int     `json:"verified"`
	Mismatches      int     `json:"mismatches"`
	PowerCycles     int     `json:"power_cycles"`
	Commits         int     `json:"commits"`
	TasksRun        int     `json:"tasks_run"`
	ReexecutedTasks int     `json:"reexecuted_tasks"`
	Sleeps          int     `json:"sleeps"` // run-time rule waits for recharge
	Latency         Latency `json:"latency_s"`
	// LowerBoundS is the mean over the completed inferences of their lower
	// bounds (see reports.InferenceRecord.LowerBound); MinEnergyJ and
	// MinComputeS the computation alone that the bound is made of.
	LowerBoundS    float64     `json:"lower_bound_s"`
	MinEnergyJ     float64     `json:"min_energy_j"`
	MinComputeS    float64     `json:"min_compute_s"`
	Energy         EnergySplit `json:"energy_j"`
	HarvestedJ     float64     `json:"harvested_j"`
	TimeOn         float64     `json:"time_on_s"`
	TimeOff        float64     `json:"time_off_s"`
	SimTime        float64     `json:"sim_time_s"`
	TraceEnded     bool        `json:"trace_ended"`
	WallS          float64     `json:"wall_s"`
	ReferenceWallS float64     `json:"reference_wall_s"`
	Latencies      []float64   `json:"-"`
}

// LivelockError says a commit group cannot finish in the power cycles the
// trace gives.
type LivelockError struct {
	Task    int
	Layer   int
	Energy  float64 // of the stretch from the last commit through the task's commit, J
	Budget  float64 // a power cycle's storage budget less the reboot, J
	Cycles  int     // power cycles without progress (0 when found from the plan)
	Message string
}

func (e *LivelockError) Error() string { return e.Message }

// CheckPlan finds commit groups that can never finish: those whose energy
// exceeds what a power cycle gives from storage after the reboot plus what
// the converter can harvest at the trace's peak power while they run.
func CheckPlan(p *plan.Plan, prof *profiles.Profile, cfg power.Config, peakHarvestW float64) error {
	budget := cfg.CycleBudget() - prof.Reboot.Energy
	groups := p.Groups()
	if p.RuntimeRule {
		// The board commits whenever energy runs low and wakes from its
		// sleeps without a reboot: each task alone, with a commit, must
		// fit a full charge.
		budget = cfg.CycleBudget()
		commitE, commitC := plan.CommitCost(prof)
		groups = groups[:0]
		for i, t := range p.Tasks {
			groups = append(groups, plan.Group{First: i, Last: i, Energy: t.Energy + commitE + p.SenseEnergy, Cycles: t.Cycles + commitC + p.SenseCycles})
		}
	}
	for _, g := range groups {
		secs := prof.Seconds(g.Cycles)
		extra := cfg.Efficiency * peakHarvestW * secs
		if g.Energy > budget+extra {
			t := p.Tasks[g.Last]
			return &LivelockError{Task: g.Last, Layer: t.Layer, Energy: g.Energy, Budget: budget,
				Message: fmt.Sprintf("livelock: tasks %d..%d (layer %d) need %.4g J between commits, but a power cycle gives %.4g J after the reboot (plus at most %.4g J harvested at the trace's peak)",
					g.First, g.Last, t.Layer, g.Energy, budget, extra)}
		}
	}
	return nil
}

// Run replays the trace.
func Run(cfg Config) (*Result, error) {
	if cfg.OpenTrace == nil {
		return nil, fmt.Errorf("replay: no trace")
	}
	if cfg.Loop && cfg.Inferences <= 0 {
		return nil, fmt.Errorf("replay: --loop needs a number of inferences")
	}
	livelockCycles := cfg.LivelockCycles
	if livelockCycles <= 0 {
		livelockCycles = DefaultLivelockCycles
	}
	// The wall time covers the whole replay: the reference computation,
	// reading the trace and the simulation.
	start := time.Now()
	ref, err := newReference(cfg.Model, cfg.Input, cfg.Reference, !cfg.NoMemo)
	if err != nil {
		return nil, err
	}
	// The reference, the longest piece of work, is computed on this
	// goroutine from the start; the simulation runs on another (the
	// board's data operations wait for the reference's layers, see
	// sim.Board.SetSeeds). A new goroutine may wait a while for an idle
	// processor to wake up: better the simulation than the reference.
	type outcome struct {
		st  *state
		err error
	}
	simulated := make(chan outcome, 1)
	go func() {
		st, err := simulate(&cfg, ref, livelockCycles)
		simulated <- outcome{st, err}
	}()
	ref.compute()
	o := <-simulated
	st, err := o.st, o.err
	if st == nil {
		return nil, err
	}
	if _, rerr := ref.wait(); err == nil {
		err = rerr
	}
	st.res.WallS = time.Since(start).Seconds()
	if err != nil {
		return st.res, err
	}
	st.finish()
	st.res.ReferenceWallS = referenceWall(cfg.Model, cfg.Input, st.res.Inferences)
	return st.res, cfg.Log.Flush()
}

// simulate replays the trace on the simulated board and verifies the
// outputs against ref; a nil state comes with an error from before the
// replay began.
func simulate(cfg *Config, ref *reference, livelockCycles int) (*state, error) {
	board, err := sim.New(cfg.Model, cfg.Plan, cfg.Profile, cfg.Faults)
	if err != nil {
		return nil, err
	}
	board.SetMemo(!cfg.NoMemo)
	if ref.seeds != nil {
		board.SetSeeds(ref.seeds)
	}
	sys, err := power.New(cfg.Power)
	if err != nil {
		return nil, err
	}
	// The board runs as soon as the trace's first samples are parsed.
	src, err := newSource(cfg.OpenTrace, cfg.Loop)
	if err != nil {
		return nil, err
	}
	defer src.close()
	st := &state{cfg: cfg, board: board, sys: sys, src: src, ref: ref, res: &Result{}, livelockCycles: livelockCycles, inference: -1,
		eOff: cfg.Power.Cap.Energy(cfg.Power.Th.Voff)}
	minE, minCycles := plan.MinimumCost(cfg.Profile, cfg.Model)
	st.res.MinEnergyJ, st.res.MinComputeS = minE, cfg.Profile.Seconds(minCycles)
	err = st.run()
	src.close()
	if verr := st.verify(true); err == nil {
		err = verr
	}
	return st, err
}

// reference is the expected output of the replay's inferences: given, or
// computed by the reference executor in a goroutine while the replay runs.
// With seeds, the executor also hands every layer's output to the board's
// memo (see sim.Seeds), so that the numbers are computed once, not twice.
type reference struct {
	out   []byte
	err   error
	seeds *sim.Seeds
	run   func()        // computes out; nil when given
	once  sync.Once     // starts run, once
	began atomic.Bool   // run was started
	done  chan struct{} // closed when out (or err) is set
}

// newReference prepares the reference output of input (see start and
// compute), unless given (then there are no seeds either).
func newReference(m *model.Model, input, given []byte, seeded bool) (*reference, error) {
	r := &reference{done: make(chan struct{})}
	if given != nil {
		r.out = given
		close(r.done)
		return r, nil
	}
	e := refexec.New(m)
	if err := e.SetInput(input); err != nil {
		return nil, err
	}
	if seeded {
		r.seeds = sim.NewSeeds(m)
	}
	r.run = func() {
		defer close(r.done)
		defer func() {
			if r.seeds != nil {
				r.seeds.Close()
			}
			if p := recover(); p != nil {
				r.err = fmt.Errorf("replay: reference executor: %v", p)
			}
		}()
		if r.seeds != nil {
			e.InvokeEach(r.seeds.Put)
		} else {
			e.Invoke()
		}
		r.out = append([]byte(nil), e.Output()...)
	}
	return r, nil
}

// start starts computing the reference output in a goroutine, unless it
// is given or already started.
func (r *reference) start() {
	r.once.Do(func() {
		if r.run != nil {
			r.began.Store(true)
			go r.run()
		}
	})
}

// compute computes the reference output on the calling goroutine, unless
// it is given or already started (then it returns at once).
func (r *reference) compute() {
	r.once.Do(func() {
		if r.run != nil {
			r.began.Store(true)
			r.run()
		}
	})
}

// wait waits for the reference output (starting its computation if need
// be).
func (r *reference) wait() ([]byte, error) {
	r.start()
	<-r.done
	return r.out, r.err
}

// join waits for the reference's computation, if it was started.
func (r *reference) join() {
	if r.began.Load() {
		<-r.done
	}
}

// ready reports whether the reference output is there.
func (r *reference) ready() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// referenceWall times the plain reference executor on the same number of
// inferences, for comparison with the replay's wall time.
func referenceWall(m *model.Model, input []byte, n int) float64 {
	e := refexec.New(m)
	if err := e.SetInput(input); err != nil || n == 0 {
		return 0
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		e.Invoke()
	}
	return time.Since(start).Seconds()
}

type state struct {
	cfg   *Config
	board *sim.Board
	sys   *power.System
	src   *source
	ref   *reference
	res   *Result

	cycle          reports.CycleRecord
	cycleOpen      bool
	cycleStartE    power.Counters
	sinceCommit    float64 // energy of task work since the last commit
	computedSince  int     // tasks computed since the last commit
	noProgress     int     // full power cycles in a row without a commit
	livelockCycles int

	steps      sim.Steps     // the rest of the board's task (see runTask)
	loads      [4]power.Load // its segments' loads
	composites composites
	eOff       float64   // the energy stored at brown-out
	records    []*record // log records waiting for verifications

	inference      int // index of the inference in progress, -1 if none
	infStart       float64
	lbTarget       float64 // harvested energy (counter) at which the bound is met
	lbAt           float64 // when it was met, -1 while pending
	lbSum          float64
	infCycles      int
	queued         bool
	lastProgressCB float64
}

func (st *state) wantMore() bool {
	n := st.cfg.Inferences
	return n <= 0 || st.res.Inferences+boolInt(st.inference >= 0) < n
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// advancePower moves the power model forward by at most dt, crossing trace
// stretches as they end. It stops early at an event.
func (st *state) advancePower(dt float64) (float64, power.Event, error) {
	moved := 0.0
	for dt-moved > 0 {
		step := dt - moved
		if left := st.src.until - st.sys.Time(); left < step {
			step = left
		}
		if step < 0 {
			step = 0
		}
		// The lower bound of a running inference follows the harvest.
		tracking := st.inference >= 0 && st.lbAt < 0
		var h0 float64
		if tracking {
			h0 = st.sys.Harvested()
		}
		adv, ev := st.sys.Advance(step)
		moved += adv
		if tracking {
			st.trackBound(h0, adv)
		}
		if ev == power.None && adv == step && st.sys.Time() >= st.src.until {
			if err := st.nextStretch(); err != nil || st.src.ended {
				return moved, ev, err
			}
		}
		if ev != power.None {
			return moved, ev, nil
		}
		if adv == 0 && step == 0 && st.sys.Time() < st.src.until {
			break
		}
	}
	return moved, power.None, nil
}

func (st *state) run() error {
	if err := st.sys.SetHarvest(st.src.power); err != nil {
		return err
	}
	if err := st.queue(); err != nil {
		return err
	}
	for !st.src.ended {
		if st.cfg.Progress != nil && st.sys.Time()-st.lastProgressCB > 1 {
			st.cfg.Progress(st.sys.Time())
			st.lastProgressCB = st.sys.Time()
		}
		if !st.sys.On() {
			if err := st.charge(); err != nil {
				return err
			}
			continue
		}
		if ran, err := st.runTask(); ran || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		avail := 0.0 // (read by the board's run-time rule only)
		if st.cfg.Plan.RuntimeRule {
			avail = st.available()
		}
		seg, ok := st.board.Next(avail)
		if !ok {
			if !st.wantMore() {
				return nil
			}
			if err := st.queue(); err != nil {
				return err
			}
			if _, ok := st.board.Next(st.available()); !ok {
				return nil
			}
			continue
		}
		if seg.Kind == sim.Sleep {
			if err := st.sleep(&seg); err != nil {
				return err
			}
			continue
		}
		if seg.Kind == sim.LoadInput && st.inference < 0 {
			st.inference = st.res.Inferences
			st.infStart = st.sys.Time()
			st.infCycles = 1
			// The bound counts what the capacitor holds above brown-out
			// now, and everything harvested from now on.
			stored := max(st.sys.Energy()-st.cfg.Power.Cap.Energy(st.cfg.Power.Th.Voff), 0)
			st.lbTarget = st.sys.Harvested() + max(st.res.MinEnergyJ-stored, 0)
			st.lbAt = -1
			st.trackBound(st.sys.Harvested(), 0)
		}
		if stop, err := st.runSegment(&seg); stop || err != nil {
			if err != nil {
				return err
			}
			break
		}
	}
	st.res.TraceEnded = true
	return nil
}

// powerSegment runs a segment's draw under the power model, across
// stretches of the trace: how long it ran, and the event that stopped it.
func (st *state) powerSegment(seg *sim.Segment) (float64, power.Event, error) {
	if err := st.sys.SetLoad(seg.Power); err != nil {
		return 0, power.None, fmt.Errorf("replay: segment %s of task %d: %w", seg.Kind, seg.Task, err)
	}
	return st.advancePower(seg.Seconds)
}

// runSegment runs a segment of the board (the one Next gives, or the next
// that RestOfTask gave) under the power model, across stretches of the
// trace, and books it: run to its end, cut by a brown-out, or cut by the
// end of the trace (then stop is true).
func (st *state) runSegment(seg *sim.Segment) (stop bool, err error) {
	moved, ev, err := st.powerSegment(seg)
	if err != nil {
		return true, err
	}
	if ev == power.BrownedOut {
		st.board.Next(0) // (seg is the board's segment, for BrownOut)
		return false, st.brownOut(seg, moved)
	}
	if st.src.ended && moved < seg.Seconds {
		st.spend(seg, moved*seg.Power)
		return true, nil
	}
	st.spend(seg, seg.Energy)
	return false, st.complete(seg, st.board.CompleteStep(seg))
}

// runTask runs the segments left of the board's task in a row, as the
// loop of run would one by one, without asking the board for each (see
// sim.Board.RestOfTask): the power model runs them first, in one step
// when it can (runComposite), else a stretch of constant harvest at a time
// (power.System.AdvanceLoads); the board and the books hear of them
// afterwards, all at once when the task ran to its end (nothing on the
// way looks at them). It returns false, having done nothing, when the
// board runs no task. It stops where run would look again: at a
// brown-out, at the end of the trace, or when the task is done.
func (st *state) runTask() (bool, error) {
	rest := &st.steps
	if !st.board.RestOfTask(rest) {
		return false, nil
	}
	loads := st.loads[:rest.N]
	for i := range loads {
		loads[i].Seconds, loads[i].Watts = rest.Segs[i].Seconds, rest.Segs[i].Power
	}
	i := 0 // segments run to their end
	if t0, h0 := st.sys.Time(), st.sys.Harvested(); st.runComposite(loads) {
		i = rest.N // the whole task in one step
		st.trackSteps(t0, h0)
	}
	for i < rest.N {
		t0, h0 := st.sys.Time(), st.sys.Harvested()
		done, ran, ev, err := st.sys.AdvanceLoads(loads[i:], st.src.until)
		if err != nil {
			seg := &rest.Segs[i+done]
			return true, fmt.Errorf("replay: segment %s of task %d: %w", seg.Kind, seg.Task, err)
		}
		st.trackSteps(t0, h0)
		i += done
		if ev == power.BrownedOut {
			return true, st.cutTask(rest, i, ran)
		}
		if i == rest.N {
			break
		}
		if st.sys.Time() >= st.src.until {
			// The stretch of constant harvest ended with a segment.
			if err := st.nextStretch(); err != nil || st.src.ended {
				if err == nil {
					err = st.completeSteps(rest, i)
				}
				return true, err
			}
			continue
		}
		// Segment i crosses into the next stretch.
		seg := &rest.Segs[i]
		moved, ev, err := st.powerSegment(seg)
		if err != nil {
			return true, err
		}
		if ev == power.BrownedOut {
			return true, st.cutTask(rest, i, moved)
		}
		if st.src.ended && moved < seg.Seconds {
			if err := st.completeSteps(rest, i); err != nil {
				return true, err
			}
			st.spend(seg, moved*seg.Power)
			return true, nil
		}
		i++
		if st.src.ended {
			return true, st.completeSteps(rest, i)
		}
	}
	for k := range rest.N {
		st.spend(&rest.Segs[k], rest.Segs[k].Energy)
	}
	return true, st.completeRest(rest, st.board.CompleteRest(rest))
}

// trackSteps follows the running inference's lower bound over the power
// model's steps since time t0 and harvested counter h0, at one harvest.
func (st *state) trackSteps(t0, h0 float64) {
	if st.inference >= 0 && st.lbAt < 0 {
		st.trackBound(h0, st.sys.Time()-t0)
	}
}

// completeSteps books the first n segments of rest, run to their end, one
// by one.
func (st *state) completeSteps(rest *sim.Steps, n int) error {
	for k := range n {
		seg := &rest.Segs[k]
		st.spend(seg, seg.Energy)
		if err := st.complete(seg, st.board.CompleteStep(seg)); err != nil {
			return err
		}
	}
	return nil
}

// cutTask books a task whose segment i a brown-out cut after ran seconds,
// the segments before it having run to their end.
func (st *state) cutTask(rest *sim.Steps, i int, ran float64) error {
	if err := st.completeSteps(rest, i); err != nil {
		return err
	}
	st.board.Next(0) // segment i is the board's segment, for BrownOut
	return st.brownOut(&rest.Segs[i], ran)
}

// runComposite runs the loads of a whole task in one step of the power
// model, when that is exact (see power.System.AdvanceComposite).
func (st *state) runComposite(loads []power.Load) bool {
	c := st.composites.get(st.sys, loads)
	return c != nil && st.sys.AdvanceComposite(c, st.src.until)
}

// composites caches the loads of tasks folded into one step of the power
// model (see power.Composite): the tasks of a layer mostly cost the same.
type composites struct {
	slots [256]compositeSlot
}

type compositeSlot struct {
	loads [4]power.Load
	c     power.Composite
	ok    bool
}

// get returns the composite of loads (at most 4), or nil if they cannot
// be folded (then AdvanceLoads reports why).
func (cs *composites) get(sys *power.System, loads []power.Load) *power.Composite {
	h := uint64(len(loads))
	for i := range loads {
		h = (h^math.Float64bits(loads[i].Seconds))*0x9E3779B97F4A7C15 ^ math.Float64bits(loads[i].Watts)
	}
	sl := &cs.slots[(h*0x9E3779B97F4A7C15)>>56]
	if sl.ok && sl.c.Len() == len(loads) {
		same := true
		for i := range loads {
			same = same && sl.loads[i].Seconds == loads[i].Seconds && sl.loads[i].Watts == loads[i].Watts
		}
		if same {
			return &sl.c
		}
	}
	c, err := sys.Compose(loads)
	if err != nil {
		return nil
	}
	sl.c, sl.ok = c, true
	copy(sl.loads[:], loads)
	return &sl.c
}

// nextStretch moves the trace on to its next stretch of constant harvest.
func (st *state) nextStretch() error {
	if err := st.src.advance(); err != nil || st.src.ended {
		return err
	}
	return st.sys.SetHarvest(st.src.power)
}

// brownOut books a segment cut by a brown-out after moved seconds, and
// closes the power cycle.
func (st *state) brownOut(seg *sim.Segment, moved float64) error {
	frac := 1.0
	if seg.Seconds > 0 {
		frac = moved / seg.Seconds
	}
	st.spend(seg, moved*seg.Power)
	st.res.Energy.Wasted += st.sinceCommit
	st.res.ReexecutedTasks += st.computedSince
	st.sinceCommit, st.computedSince = 0, 0
	st.board.BrownOut(frac)
	return st.closeCycle("brownout")
}

// charge runs the power model while the device is off, stretch after
// stretch of the trace, until it turns on (then the board powers on) or
// the trace ends: what the loop of run does then, in a loop of its own.
func (st *state) charge() error {
	sys, src := st.sys, st.src
	for !src.ended {
		if st.cfg.Progress != nil && sys.Time()-st.lastProgressCB > 1 {
			st.cfg.Progress(sys.Time())
			st.lastProgressCB = sys.Time()
		}
		step := max(src.until-sys.Time(), 0)
		tracking := st.inference >= 0 && st.lbAt < 0
		var h0 float64
		if tracking {
			h0 = sys.Harvested()
		}
		adv, ev := step, power.None
		if !sys.Charge(step) {
			adv, ev = sys.Advance(step)
		}
		if tracking {
			st.trackBound(h0, adv)
		}
		switch {
		case ev == power.TurnedOn:
			st.openCycle()
			st.board.PowerOn()
			return nil
		case ev != power.None:
			return fmt.Errorf("replay: %s while the device is off", ev) // (cannot happen)
		case sys.Time() >= src.until:
			if err := st.nextStretch(); err != nil {
				return err
			}
		}
	}
	return nil
}

// available is the energy the capacitor holds above brown-out: what the
// board's voltage reading tells its run-time rule.
func (st *state) available() float64 {
	return max(st.sys.Energy()-st.eOff, 0)
}

// sleep runs a rule sleep: the board draws its sleep power until the
// capacitor is back at the turn-on voltage (it wakes without a reboot), or
// browns out if the harvest cannot even cover sleeping.
func (st *state) sleep(seg *sim.Segment) error {
	if err := st.sys.SetLoad(seg.Power); err != nil {
		return err
	}
	st.res.Sleeps++
	von := st.cfg.Power.Th.Von
	for !st.src.ended {
		wait := st.sys.TimeUntilVoltage(von)
		if st.sys.Voltage() >= von || wait == 0 {
			st.board.Complete()
			return nil
		}
		dt := math.Min(wait, st.src.until-st.sys.Time())
		moved, ev, err := st.advancePower(dt)
		if err != nil {
			return err
		}
		st.spend(seg, moved*seg.Power)
		if ev == power.BrownedOut {
			st.board.BrownOut(0)
			return st.closeCycle("brownout")
		}
		if moved == wait && moved > 0 {
			st.board.Complete()
			return nil
		}
	}
	return nil
}

func (st *state) queue() error {
	if st.queued && st.board.Running() {
		return nil
	}
	st.queued = true
	return st.board.QueueInput(st.cfg.Input)
}

// spend books a segment's energy.
func (st *state) spend(seg *sim.Segment, e float64) {
	en := &st.res.Energy
	switch seg.Kind {
	case sim.Boot:
		en.Reboots += e
	case sim.LoadInput, sim.Read, sim.Write:
		en.NVM += e
	case sim.Compute:
		en.Compute += e
	case sim.Commit, sim.EarlyCommit:
		en.Commits += e
	case sim.Idle, sim.Sleep:
		en.Idle += e
	}
	if seg.Task >= 0 {
		st.sinceCommit += e
	}
}

// completeRest books the segments of a task the board completed together
// with event ev (see sim.Board.CompleteRest), as complete would each.
func (st *state) completeRest(rest *sim.Steps, ev sim.Event) error {
	last := &rest.Segs[rest.N-1]
	for k := range rest.N - 1 {
		if rest.Segs[k].Kind == sim.Compute {
			st.res.TasksRun++
			st.computedSince++
			st.cycle.Tasks++
		}
		if rest.Segs[k].Kind == sim.Write && st.cfg.Faults.CommitBeforeWrite {
			st.sinceCommit, st.computedSince = 0, 0
		}
	}
	return st.complete(last, ev)
}

// complete books a segment the board completed with event ev.
func (st *state) complete(seg *sim.Segment, ev sim.Event) error {
	if seg.Kind == sim.Compute {
		st.res.TasksRun++
		st.computedSince++
		st.cycle.Tasks++
	}
	if ev.Committed {
		st.res.Commits++
		st.cycle.Commits++
		st.sinceCommit, st.computedSince = 0, 0
		st.noProgress = 0
	}
	if seg.Kind == sim.Write && st.cfg.Faults.CommitBeforeWrite {
		st.sinceCommit, st.computedSince = 0, 0
	}
	if ev.InferenceDone || (seg.Task == len(st.cfg.Plan.Tasks)-1 && !st.board.Running() && st.inference >= 0) {
		st.finishInference()
		if err := st.verify(false); err != nil {
			return err
		}
		st.queued = false
		if st.wantMore() {
			return st.queue()
		}
	}
	return nil
}

// trackBound notes when the harvested energy reaches the running
// inference's lower-bound target; h0 is the harvested counter before an
// advance of adv seconds at constant harvest.
func (st *state) trackBound(h0, adv float64) {
	if st.inference < 0 || st.lbAt >= 0 {
		return
	}
	h1 := st.sys.Harvested()
	if h1 < st.lbTarget {
		return
	}
	t1 := st.sys.Time()
	if rate := (h1 - h0); rate > 0 && adv > 0 && h0 < st.lbTarget {
		// Harvest is constant over the advance: interpolate exactly.
		t1 -= adv * (h1 - st.lbTarget) / rate
	}
	st.lbAt = t1
}

func (st *state) finishInference() {
	end := st.sys.Time()
	lb := st.res.MinComputeS
	if st.lbAt >= 0 {
		lb = max(lb, st.lbAt-st.infStart)
	}
	st.lbSum += lb
	// The output is verified once the board's data operations up to here
	// are applied and the reference is there (see verify).
	rec := &record{inference: true, inf: reports.InferenceRecord{Type: "inference", Index: st.inference, Start: st.infStart, End: end,
		Latency: end - st.infStart, PowerCycles: st.infCycles, LowerBound: lb}}
	st.board.Snapshot(func(out []byte) { rec.out, rec.snapped = append([]byte(nil), out...), true })
	st.records = append(st.records, rec)
	st.res.Inferences++
	st.res.Latencies = append(st.res.Latencies, rec.inf.Latency)
	st.inference = -1
}

// record is a log record waiting for the verification of an inference
// before it (or its own).
type record struct {
	inference bool
	inf       reports.InferenceRecord
	cycle     reports.CycleRecord
	out       []byte // the inference's output, once snapped
	snapped   bool
}

// logCycle logs a power cycle, after the inferences still being verified.
func (st *state) logCycle(c reports.CycleRecord) {
	if len(st.records) > 0 {
		st.records = append(st.records, &record{cycle: c})
		return
	}
	if st.cfg.Log != nil { // (a record passed as an interface is copied to the heap)
		st.cfg.Log.Write(c)
	}
}

// verify checks the outputs of the finished inferences against the
// reference, bit for bit, and logs the records waiting for them, in order.
// Unless block, it stops at an inference whose output or reference is not
// there yet (the board's data operations wait for the reference executor's
// layers, see sim.Board.SetSeeds).
func (st *state) verify(block bool) error {
	for len(st.records) > 0 {
		r := st.records[0]
		if r.inference {
			if !r.snapped && block {
				st.board.FlushSnapshots()
			}
			if !r.snapped || !block && !st.ref.ready() {
				return nil
			}
			ref, err := st.ref.wait()
			if err != nil {
				return err
			}
			ok := bytes.Equal(r.out, ref)
			r.inf.Verified, r.inf.Argmax = ok, Argmax(model.BytesAsInt8(r.out))
			if ok {
				st.res.Verified++
			} else {
				st.res.Mismatches++
			}
			if st.cfg.Log != nil {
				st.cfg.Log.Write(r.inf)
			}
		} else if st.cfg.Log != nil {
			st.cfg.Log.Write(r.cycle)
		}
		st.records[0] = nil
		st.records = st.records[1:]
	}
	st.records = st.records[:0]
	return nil
}

// Argmax is the index of the largest value (the first of equals): the
// class an int8 output picks.
func Argmax(v []int8) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func (st *state) openCycle() {
	c := st.sys.Counters()
	st.cycleStartE = c
	st.cycle = reports.CycleRecord{Type: "cycle", Cycle: st.res.PowerCycles, Start: st.sys.Time(), VStart: st.sys.Voltage()}
	st.cycleOpen = true
	st.res.PowerCycles++
	if st.inference >= 0 {
		st.infCycles++
	}
}

func (st *state) closeCycle(reason string) error {
	if !st.cycleOpen {
		return nil
	}
	c := st.sys.Counters()
	st.cycle.End, st.cycle.VEnd = st.sys.Time(), st.sys.Voltage()
	st.cycle.HarvestedJ = c.Harvested - st.cycleStartE.Harvested
	st.cycle.UsedJ = c.Delivered - st.cycleStartE.Delivered
	st.cycle.Progress = st.board.Progress()
	st.cycle.Inference = st.inference
	st.cycle.Reason = reason
	st.logCycle(st.cycle)
	st.cycleOpen = false
	if reason == "brownout" && st.board.Running() || reason == "brownout" && st.inference >= 0 {
		if st.cycle.Commits == 0 && st.cycle.VStart >= st.cfg.Power.Th.Von*0.999 {
			st.noProgress++
		}
		if st.noProgress >= st.livelockCycles && st.board.Loading() {
			return &LivelockError{Cycles: st.noProgress, Task: -1, Layer: -1,
				Message: fmt.Sprintf("livelock at %.3f s: %d power cycles without loading the %d-byte input (the host resends only what is missing, and even that does not fit what a power cycle gives after the reboot)",
					st.sys.Time(), st.noProgress, len(st.cfg.Input))}
		}
		if st.noProgress >= st.livelockCycles {
			task := st.board.Progress()
			if task >= len(st.cfg.Plan.Tasks) {
				task = len(st.cfg.Plan.Tasks) - 1
			}
			g := groupOf(st.cfg.Plan, task)
			budget := st.cfg.Power.CycleBudget() - st.cfg.Profile.Reboot.Energy
			return &LivelockError{Task: task, Layer: st.cfg.Plan.Tasks[task].Layer, Energy: g.Energy, Budget: budget, Cycles: st.noProgress,
				Message: fmt.Sprintf("livelock at %.3f s: %d power cycles without a commit; tasks %d..%d (layer %d) need %.4g J between commits, a power cycle gives %.4g J after the reboot, and the trace does not make up the difference",
					st.sys.Time(), st.noProgress, g.First, g.Last, st.cfg.Plan.Tasks[task].Layer, g.Energy, budget)}
		}
	}
	return nil
}

func groupOf(p *plan.Plan, task int) plan.Group {
	for _, g := range p.Groups() {
		if g.First <= task && task <= g.Last {
			return g
		}
	}
	return plan.Group{First: task, Last: task}
}

func (st *state) finish() {
	_ = st.closeCycle("end")
	c := st.sys.Counters()
	r := st.res
	r.HarvestedJ = c.Harvested
	r.TimeOn, r.TimeOff = c.TimeOn, c.TimeOff
	r.SimTime = st.sys.Time()
	e := &r.Energy
	e.Total = e.Compute + e.NVM + e.Commits + e.Reboots + e.Idle
	r.Latency = summarize(r.Latencies)
	if r.Inferences > 0 {
		r.LowerBoundS = st.lbSum / float64(r.Inferences)
	}
}

// summarize computes mean and nearest-rank percentiles.
func summarize(v []float64) Latency {
	if len(v) == 0 {
		return Latency{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Latency{Mean: sum / float64(len(s)), P50: rank(0.5), P95: rank(0.95), Max: s[len(s)-1]}
}
