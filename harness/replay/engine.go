// Package replay is the engine that runs a deployment plan on any board
// under a harvested-energy trace: the power system model integrates the trace
// exactly between events, the board (boards.Board: the simulated board, the
// emulated STM32, a board on a serial line) runs while the capacitor holds it
// up, every power cycle and inference is logged, and every output is checked
// bit for bit against the reference executor. One loop, one set of records,
// one latency summary, one lower bound and one energy account serve every
// board; what differs between boards is behind the board contract.
package replay

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/sim"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/power"
	"github.com/batteryless/harness/reports"
	"github.com/batteryless/harness/traces"
)

// DefaultLivelockCycles is how many full power cycles in a row may pass
// without a commit before a replay declares a livelock.
const DefaultLivelockCycles = 50

// MaxOffSeconds is the longest stretch of simulated time a board may stay
// off before the replay gives up on the harvest ever turning it on (a trace
// that never reaches turn-on, looped, would otherwise run forever).
const MaxOffSeconds = 24 * 3600

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
	// Log, if set, receives a record per power cycle and per inference,
	// after Header (if set), and an end record.
	Log    *reports.LogWriter
	Header *reports.HeaderRecord
	// Board is the board to run; nil runs the simulated board (with Faults
	// and NoMemo). Whoever opened it closes it.
	Board boards.Board
	// BoardName names Board in the result ("sim" when Board is nil).
	BoardName string
	// Faults break the simulated board's commit protocol on purpose (tests).
	Faults sim.Faults
	// LivelockCycles overrides DefaultLivelockCycles.
	LivelockCycles int
	// Progress, if set, is called now and then with the simulated time.
	Progress func(simTime float64)
	// Reference, if set, is the expected output (else the reference
	// executor computes it).
	Reference []byte
	// NoMemo makes every task of the simulated board compute its region
	// from NVM itself instead of through the board's memo of whole-layer
	// outputs (same results, slower; for tests).
	NoMemo bool
}

// PowerConfig is the power system a device profile describes: its
// capacitor, thresholds and converter (the one mapping every board uses).
func PowerConfig(p *profiles.Profile) power.Config {
	return power.Config{
		Cap:        power.Capacitor{C: p.Power.CapacitanceF, Vmax: p.Power.VmaxV, Rleak: p.Power.LeakageOhm},
		Th:         power.Thresholds{Von: p.Power.VonV, Voff: p.Power.VoffV},
		Efficiency: p.Power.Efficiency,
	}
}

// Run replays the trace on cfg.Board (the simulated board when nil). The
// result is returned also with an error (a livelock, a board that failed, a
// cancelled ctx): it then holds what the replay did until it stopped,
// Interrupted or Error saying why. The log ends with a record of why.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	res, err := run(ctx, &cfg)
	if res != nil {
		res.EndReason = endReason(res, err)
		if err != nil {
			res.Error = err.Error()
		}
	}
	if cfg.Log != nil {
		reason := "error"
		if res != nil {
			reason = res.EndReason
		}
		cfg.Log.End(reason, err)
		if ferr := cfg.Log.Flush(); err == nil {
			err = ferr
		}
	}
	return res, err
}

// endReason names why a replay ended, for the result and the log.
func endReason(res *Result, err error) string {
	var ll *LivelockError
	switch {
	case res.Interrupted:
		return "interrupted"
	case errors.As(err, &ll):
		return "livelock"
	case err != nil:
		return "error"
	case res.Mismatches > 0:
		return "mismatch"
	case res.TraceEnded:
		return "trace-ended"
	}
	return "completed"
}

func run(ctx context.Context, cfg *Config) (*Result, error) {
	if cfg.OpenTrace == nil {
		return nil, fmt.Errorf("replay: no trace")
	}
	if cfg.Loop && cfg.Inferences <= 0 {
		return nil, fmt.Errorf("replay: --loop needs a number of inferences")
	}
	if cfg.Header != nil && cfg.Log != nil {
		cfg.Log.Write(*cfg.Header)
	}
	// The wall time covers the whole replay: the reference computation,
	// reading the trace and the board's run.
	start := time.Now()
	board, name := cfg.Board, cfg.BoardName
	if board == nil {
		b, err := sim.New(cfg.Model, cfg.Plan, cfg.Profile, cfg.Faults)
		if err != nil {
			return nil, err
		}
		b.SetMemo(!cfg.NoMemo)
		board, name = b.AsBoard(), "sim"
	}
	seeder, seeded := board.(interface{ SetSeeds(*sim.Seeds) })
	ref, err := newReference(cfg.Model, cfg.Input, cfg.Reference, seeded && !cfg.NoMemo)
	if err != nil {
		return nil, err
	}
	if ref.seeds != nil {
		// The reference's layer outputs seed the board's memo, checked on
		// their exact input bytes like any memo entry.
		seeder.SetSeeds(ref.seeds)
	}
	en, err := newEngine(ctx, cfg, board, name, ref)
	if err != nil {
		return nil, err
	}
	if ref.seeds != nil {
		// The reference, the longest piece of work, is computed on this
		// goroutine from the start; the board runs on another (its data
		// operations wait for the reference's layers, see
		// sim.Board.SetSeeds). A new goroutine may wait a while for an
		// idle processor to wake up: better the board than the reference.
		ran := make(chan error, 1)
		go func() { ran <- en.replay() }()
		ref.compute()
		err = <-ran
	} else {
		// A board that computes its own numbers needs the reference only
		// to check them: first, then the run.
		ref.compute()
		err = en.replay()
	}
	if _, rerr := ref.wait(); err == nil {
		err = rerr
	}
	en.res.WallS = time.Since(start).Seconds()
	en.finish()
	if err == nil || en.res.Inferences > 0 {
		en.res.ReferenceWallS = referenceWall(cfg.Model, cfg.Input, en.res.Inferences)
	}
	return en.res, err
}

// engine is the state of one replay: the power model, the trace, the board,
// and the books.
type engine struct {
	ctx     context.Context
	done    <-chan struct{} // ctx.Done(), checked now and then
	cfg     *Config
	board   boards.Board
	stepper boards.TaskStepper       // nil: the board goes step by step
	snap    boards.OutputSnapshotter // nil: outputs come with the events
	sys     *power.System
	src     *source
	ref     *reference
	res     *Result

	cycle          reports.CycleRecord
	cycleOpen      bool
	cycleStartE    power.Counters
	sinceCommit    float64 // energy of task work since the last commit
	computedSince  int     // tasks computed since the last commit
	noProgress     int     // full power cycles in a row without a commit
	livelockCycles int
	offSince       float64 // when the board last went off
	polls          int     // loop turns since the last look at ctx

	steps      boards.Steps  // the rest of the board's task (see runTask)
	loads      [4]power.Load // its segments' loads
	composites composites
	eOff       float64   // the energy stored at brown-out
	records    []*record // log records waiting for verifications
	shares     []taskShares

	inference      int // index of the inference in progress, -1 if none
	infStart       float64
	lbTarget       float64 // harvested energy (counter) at which the bound is met
	lbAt           float64 // when it was met, -1 while pending
	lbSum          float64
	infCycles      int
	queued         bool
	lastProgressCB float64
}

func newEngine(ctx context.Context, cfg *Config, board boards.Board, name string, ref *reference) (*engine, error) {
	sys, err := power.New(cfg.Power)
	if err != nil {
		return nil, err
	}
	livelockCycles := cfg.LivelockCycles
	if livelockCycles <= 0 {
		livelockCycles = DefaultLivelockCycles
	}
	en := &engine{ctx: ctx, done: ctx.Done(), cfg: cfg, board: board, sys: sys, ref: ref,
		res: &Result{Board: name, EnergyBasis: energyBasisProfile}, livelockCycles: livelockCycles, inference: -1,
		eOff: cfg.Power.Cap.Energy(cfg.Power.Th.Voff)}
	en.stepper, _ = board.(boards.TaskStepper)
	en.snap, _ = board.(boards.OutputSnapshotter)
	if s, ok := board.(boards.SupplySensor); ok {
		s.SenseSupply(sys.Voltage)
	}
	if rt, ok := board.(boards.RealTime); ok {
		rt.ModelClock(sys.Time)
	}
	minE, minCycles := plan.MinimumCost(cfg.Profile, cfg.Model)
	en.res.MinEnergyJ, en.res.MinComputeS = minE, cfg.Profile.Seconds(minCycles)
	return en, nil
}

// replay runs the board through the trace and verifies the outputs.
func (en *engine) replay() error {
	// The board runs as soon as the trace's first samples are parsed.
	src, err := newSource(en.cfg.OpenTrace, en.cfg.Loop)
	if err != nil {
		return err
	}
	en.src = src
	defer src.close()
	err = en.run()
	src.close()
	if verr := en.verify(true); err == nil {
		err = verr
	}
	if errors.Is(err, boards.ErrProgressLost) && en.inference >= 0 {
		// The board's output cannot be trusted from here: the inference
		// in progress fails verification, and the run stops.
		en.res.Inferences++
		en.res.Mismatches++
		if en.cfg.Log != nil {
			en.cfg.Log.Write(reports.InferenceRecord{Type: "inference", Index: en.inference, Start: en.infStart, End: en.sys.Time(),
				PowerCycles: en.infCycles, Verified: false, Argmax: -1})
		}
		en.inference = -1
	}
	return err
}

// errInterrupted stops the loop when the context is done.
var errInterrupted = errors.New("interrupted")

// interrupted looks at the context every so many turns of a loop (a look
// costs little, but the loop turns millions of times).
func (en *engine) interrupted() error {
	en.polls++
	if en.polls&1023 != 0 {
		return nil
	}
	return en.checkCtx()
}

func (en *engine) checkCtx() error {
	select {
	case <-en.done:
		en.res.Interrupted = true
		return fmt.Errorf("replay: %w at %.3f s of simulated time: %w", errInterrupted, en.sys.Time(), context.Cause(en.ctx))
	default:
		return nil
	}
}

func (en *engine) wantMore() bool {
	n := en.cfg.Inferences
	return n <= 0 || en.res.Inferences+boolInt(en.inference >= 0) < n
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// advancePower moves the power model forward by at most dt, crossing trace
// stretches as they end. It stops early at an event.
func (en *engine) advancePower(dt float64) (float64, power.Event, error) {
	moved := 0.0
	for dt-moved > 0 {
		step := dt - moved
		if left := en.src.until - en.sys.Time(); left < step {
			step = left
		}
		if step < 0 {
			step = 0
		}
		// The lower bound of a running inference follows the harvest.
		tracking := en.inference >= 0 && en.lbAt < 0
		var h0 float64
		if tracking {
			h0 = en.sys.Harvested()
		}
		adv, ev := en.sys.Advance(step)
		moved += adv
		if tracking {
			en.trackBound(h0, adv)
		}
		if ev == power.None && adv == step && en.sys.Time() >= en.src.until {
			if err := en.nextStretch(); err != nil || en.src.ended {
				return moved, ev, err
			}
		}
		if ev != power.None {
			return moved, ev, nil
		}
		if adv == 0 && step == 0 && en.sys.Time() < en.src.until {
			break
		}
	}
	return moved, power.None, nil
}

// run is the replay's loop: charge the board while it is off, run its task
// (or step) under the power model while it is on, and book what happened.
func (en *engine) run() error {
	if err := en.sys.SetHarvest(en.src.power); err != nil {
		return err
	}
	if err := en.queue(); err != nil {
		return err
	}
	for !en.src.ended {
		if err := en.interrupted(); err != nil {
			return err
		}
		if en.cfg.Progress != nil && en.sys.Time()-en.lastProgressCB > 1 {
			en.cfg.Progress(en.sys.Time())
			en.lastProgressCB = en.sys.Time()
		}
		if !en.sys.On() {
			if err := en.charge(); err != nil {
				return err
			}
			continue
		}
		if ran, err := en.runTask(); ran || err != nil {
			if err != nil {
				return err
			}
			continue
		}
		avail := 0.0 // (read by the board's run-time rule only)
		if en.cfg.Plan.ReadsSupply() {
			avail = en.available()
		}
		seg, ok, err := en.board.Next(en.ctx, avail)
		if err != nil {
			return err
		}
		if !ok {
			if !en.wantMore() {
				return nil
			}
			if err := en.queue(); err != nil {
				return err
			}
			if _, ok, err := en.board.Next(en.ctx, en.available()); !ok || err != nil {
				return err
			}
			continue
		}
		if seg.Kind == boards.Sleep {
			if err := en.sleep(&seg); err != nil {
				return err
			}
			continue
		}
		if seg.Kind == boards.LoadInput && en.inference < 0 {
			en.startInference()
		}
		if stop, err := en.runSegment(&seg); stop || err != nil {
			if err != nil {
				return err
			}
			break
		}
	}
	en.res.TraceEnded = true
	return nil
}

// startInference opens the books of an inference whose input the board
// begins to load.
func (en *engine) startInference() {
	en.inference = en.res.Inferences
	en.infStart = en.sys.Time()
	en.infCycles = 1
	// The bound counts what the capacitor holds above brown-out now, and
	// everything harvested from now on.
	stored := max(en.sys.Energy()-en.cfg.Power.Cap.Energy(en.cfg.Power.Th.Voff), 0)
	en.lbTarget = en.sys.Harvested() + max(en.res.MinEnergyJ-stored, 0)
	en.lbAt = -1
	en.trackBound(en.sys.Harvested(), 0)
}

// powerSegment runs a segment's draw under the power model, across
// stretches of the trace: how long it ran, and the event that stopped it.
func (en *engine) powerSegment(seg *boards.Step) (float64, power.Event, error) {
	if err := en.sys.SetLoad(seg.Power); err != nil {
		return 0, power.None, fmt.Errorf("replay: segment %s of task %d: %w", seg.Kind, seg.Task, err)
	}
	return en.advancePower(seg.Seconds)
}

// runSegment runs the step Next gave under the power model, across
// stretches of the trace, and books it: run to its end, cut by a brown-out,
// or cut by the end of the trace (then stop is true).
func (en *engine) runSegment(seg *boards.Step) (stop bool, err error) {
	moved, ev, err := en.powerSegment(seg)
	if err != nil {
		return true, err
	}
	if ev == power.BrownedOut {
		return false, en.brownOut(seg, moved)
	}
	if en.src.ended && moved < seg.Seconds {
		en.spend(seg, moved*seg.Power)
		return true, nil
	}
	bev, err := en.board.Complete(en.ctx)
	if err != nil {
		return true, err
	}
	if bev.Hung {
		return en.hung(seg)
	}
	en.spend(seg, seg.Energy)
	return false, en.complete(seg, bev)
}

// hung books a step the board did not finish: it keeps drawing its power
// until the supply browns it out (or the trace ends).
func (en *engine) hung(seg *boards.Step) (bool, error) {
	en.res.Hangs++
	en.spend(seg, seg.Energy)
	stuck := *seg
	stuck.Seconds = math.Inf(1)
	moved, ev, err := en.powerSegment(&stuck)
	if err != nil {
		return true, err
	}
	if ev != power.BrownedOut {
		en.spend(&stuck, moved*stuck.Power)
		return true, nil
	}
	return false, en.brownOut(&stuck, moved)
}

// runTask runs the segments left of the board's task in a row, as the
// loop of run would one by one, without asking the board for each (see
// boards.TaskStepper): the power model runs them first, in one step
// when it can (runComposite), else a stretch of constant harvest at a time
// (power.System.AdvanceLoads); the board and the books hear of them
// afterwards, all at once when the task ran to its end (nothing on the
// way looks at them). It returns false, having done nothing, when the
// board runs no task. It stops where run would look again: at a
// brown-out, at the end of the trace, or when the task is done.
func (en *engine) runTask() (bool, error) {
	rest := &en.steps
	if en.stepper == nil || !en.stepper.RestOfTask(rest) {
		return false, nil
	}
	loads := en.loads[:rest.N]
	for i := range loads {
		loads[i].Seconds, loads[i].Watts = rest.Segs[i].Seconds, rest.Segs[i].Power
	}
	i := 0 // segments run to their end
	if t0, h0 := en.sys.Time(), en.sys.Harvested(); en.runComposite(loads) {
		i = rest.N // the whole task in one step
		en.trackSteps(t0, h0)
	}
	for i < rest.N {
		t0, h0 := en.sys.Time(), en.sys.Harvested()
		done, ran, ev, err := en.sys.AdvanceLoads(loads[i:], en.src.until)
		if err != nil {
			seg := &rest.Segs[i+done]
			return true, fmt.Errorf("replay: segment %s of task %d: %w", seg.Kind, seg.Task, err)
		}
		en.trackSteps(t0, h0)
		i += done
		if ev == power.BrownedOut {
			return true, en.cutTask(rest, i, ran)
		}
		if i == rest.N {
			break
		}
		if en.sys.Time() >= en.src.until {
			// The stretch of constant harvest ended with a segment.
			if err := en.nextStretch(); err != nil || en.src.ended {
				if err == nil {
					err = en.completeSteps(rest, i)
				}
				return true, err
			}
			continue
		}
		// Segment i crosses into the next stretch.
		seg := &rest.Segs[i]
		moved, ev, err := en.powerSegment(seg)
		if err != nil {
			return true, err
		}
		if ev == power.BrownedOut {
			return true, en.cutTask(rest, i, moved)
		}
		if en.src.ended && moved < seg.Seconds {
			if err := en.completeSteps(rest, i); err != nil {
				return true, err
			}
			en.spend(seg, moved*seg.Power)
			return true, nil
		}
		i++
		if en.src.ended {
			return true, en.completeSteps(rest, i)
		}
	}
	for k := range rest.N {
		en.spend(&rest.Segs[k], rest.Segs[k].Energy)
	}
	return true, en.completeRest(rest, en.stepper.CompleteRest(rest))
}

// trackSteps follows the running inference's lower bound over the power
// model's steps since time t0 and harvested counter h0, at one harvest.
func (en *engine) trackSteps(t0, h0 float64) {
	if en.inference >= 0 && en.lbAt < 0 {
		en.trackBound(h0, en.sys.Time()-t0)
	}
}

// completeSteps books the first n segments of rest, run to their end, one
// by one.
func (en *engine) completeSteps(rest *boards.Steps, n int) error {
	for k := range n {
		seg := &rest.Segs[k]
		en.spend(seg, seg.Energy)
		if err := en.complete(seg, en.stepper.CompleteStep(seg)); err != nil {
			return err
		}
	}
	return nil
}

// cutTask books a task whose segment i a brown-out cut after ran seconds,
// the segments before it having run to their end.
func (en *engine) cutTask(rest *boards.Steps, i int, ran float64) error {
	if err := en.completeSteps(rest, i); err != nil {
		return err
	}
	// Segment i is the board's next step, for BrownOut.
	if _, _, err := en.board.Next(en.ctx, 0); err != nil {
		return err
	}
	return en.brownOut(&rest.Segs[i], ran)
}

// runComposite runs the loads of a whole task in one step of the power
// model, when that is exact (see power.System.AdvanceComposite).
func (en *engine) runComposite(loads []power.Load) bool {
	c := en.composites.get(en.sys, loads)
	return c != nil && en.sys.AdvanceComposite(c, en.src.until)
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
func (en *engine) nextStretch() error {
	if err := en.src.advance(); err != nil || en.src.ended {
		return err
	}
	return en.sys.SetHarvest(en.src.power)
}

// brownOut books a segment cut by a brown-out after moved seconds, and
// closes the power cycle.
func (en *engine) brownOut(seg *boards.Step, moved float64) error {
	frac := 1.0
	if seg.Seconds > 0 && !math.IsInf(seg.Seconds, 1) {
		frac = moved / seg.Seconds
	}
	en.spend(seg, moved*seg.Power)
	en.res.Energy.Wasted += en.sinceCommit
	en.res.ReexecutedTasks += en.computedSince
	en.sinceCommit, en.computedSince = 0, 0
	if err := en.board.BrownOut(en.ctx, frac); err != nil {
		return err
	}
	en.offSince = en.sys.Time()
	return en.closeCycle("brownout")
}

// charge runs the power model while the device is off, stretch after
// stretch of the trace, until it turns on (then the board powers on) or
// the trace ends: what the loop of run does then, in a loop of its own. A
// board off for MaxOffSeconds of simulated time in a row is an error: the
// harvest does not turn it on.
func (en *engine) charge() error {
	sys, src := en.sys, en.src
	for !src.ended {
		if err := en.interrupted(); err != nil {
			return err
		}
		if en.cfg.Progress != nil && sys.Time()-en.lastProgressCB > 1 {
			en.cfg.Progress(sys.Time())
			en.lastProgressCB = sys.Time()
		}
		if sys.Time()-en.offSince > MaxOffSeconds {
			return fmt.Errorf("replay: the harvest did not turn the board on within %d h of simulated time (at %.0f s, %.3f V, turn-on at %.3f V)",
				MaxOffSeconds/3600, sys.Time(), sys.Voltage(), en.cfg.Power.Th.Von)
		}
		step := max(src.until-sys.Time(), 0)
		tracking := en.inference >= 0 && en.lbAt < 0
		var h0 float64
		if tracking {
			h0 = sys.Harvested()
		}
		adv, ev := step, power.None
		if !sys.Charge(step) {
			adv, ev = sys.Advance(step)
		}
		if tracking {
			en.trackBound(h0, adv)
		}
		switch {
		case ev == power.TurnedOn:
			en.openCycle()
			return en.board.PowerOn(en.ctx)
		case ev != power.None:
			return fmt.Errorf("replay: %s while the device is off", ev) // (cannot happen)
		case sys.Time() >= src.until:
			if err := en.nextStretch(); err != nil {
				return err
			}
		}
	}
	return nil
}

// available is the energy the capacitor holds above brown-out: what the
// board's voltage reading tells its run-time rule.
func (en *engine) available() float64 {
	return max(en.sys.Energy()-en.eOff, 0)
}

// sleep runs a rule sleep: the board draws its sleep power until the
// capacitor is back at the turn-on voltage (it wakes without a reboot), or
// browns out if the harvest cannot even cover sleeping.
func (en *engine) sleep(seg *boards.Step) error {
	if err := en.sys.SetLoad(seg.Power); err != nil {
		return err
	}
	en.res.Sleeps++
	von := en.cfg.Power.Th.Von
	wake := func() error {
		_, err := en.board.Complete(en.ctx)
		return err
	}
	for !en.src.ended {
		if err := en.interrupted(); err != nil {
			return err
		}
		wait := en.sys.TimeUntilVoltage(von)
		if en.sys.Voltage() >= von || wait == 0 {
			return wake()
		}
		dt := math.Min(wait, en.src.until-en.sys.Time())
		moved, ev, err := en.advancePower(dt)
		if err != nil {
			return err
		}
		en.spend(seg, moved*seg.Power)
		if ev == power.BrownedOut {
			if err := en.board.BrownOut(en.ctx, 0); err != nil {
				return err
			}
			en.offSince = en.sys.Time()
			return en.closeCycle("brownout")
		}
		if moved == wait && moved > 0 {
			return wake()
		}
	}
	return nil
}

func (en *engine) queue() error {
	if en.queued && en.board.Running() {
		return nil
	}
	en.queued = true
	return en.board.QueueInput(en.ctx, en.cfg.Input)
}

// spend books a segment's energy.
func (en *engine) spend(seg *boards.Step, e float64) {
	split := &en.res.Energy
	switch seg.Kind {
	case boards.Boot:
		split.Reboots += e
	case boards.LoadInput, boards.Read, boards.Write:
		split.NVM += e
	case boards.Compute, boards.ComputePart:
		split.Compute += e
	case boards.Commit, boards.EarlyCommit, boards.Checkpoint:
		split.Commits += e
	case boards.Restore:
		split.NVM += e
	case boards.Idle, boards.Sleep:
		split.Idle += e
	case boards.Task:
		en.spendTask(seg.Task, e)
	}
	if seg.Task >= 0 {
		en.sinceCommit += e
	}
}

// completeRest books the segments of a task the board completed together
// with event ev (see boards.TaskStepper.CompleteRest), as complete would
// each.
func (en *engine) completeRest(rest *boards.Steps, ev boards.Event) error {
	last := &rest.Segs[rest.N-1]
	for k := range rest.N - 1 {
		if rest.Segs[k].Kind == boards.Compute {
			en.res.TasksRun++
			en.computedSince++
			en.cycle.Tasks++
		}
		if rest.Segs[k].Kind == boards.Write && en.cfg.Faults.CommitBeforeWrite {
			en.sinceCommit, en.computedSince = 0, 0
		}
	}
	return en.complete(last, ev)
}

// complete books a segment the board completed with event ev.
func (en *engine) complete(seg *boards.Step, ev boards.Event) error {
	switch seg.Kind {
	case boards.Compute, boards.Task:
		en.res.TasksRun++
		en.computedSince++
		en.cycle.Tasks++
	case boards.Boot:
		en.res.Boots++
	}
	if ev.Committed {
		en.res.Commits++
		en.cycle.Commits++
		en.sinceCommit, en.computedSince = 0, 0
		en.noProgress = 0
	}
	if seg.Kind == boards.Write && en.cfg.Faults.CommitBeforeWrite {
		en.sinceCommit, en.computedSince = 0, 0
	}
	if ev.InferenceDone || (seg.Task == len(en.cfg.Plan.Tasks)-1 && !en.board.Running() && en.inference >= 0) {
		en.finishInference(ev.Output)
		if err := en.verify(false); err != nil {
			return err
		}
		en.queued = false
		if en.wantMore() {
			return en.queue()
		}
	}
	return nil
}

func (en *engine) openCycle() {
	c := en.sys.Counters()
	en.cycleStartE = c
	en.cycle = reports.CycleRecord{Type: "cycle", Cycle: en.res.PowerCycles, Start: en.sys.Time(), VStart: en.sys.Voltage()}
	en.cycleOpen = true
	en.res.PowerCycles++
	if en.inference >= 0 {
		en.infCycles++
	}
}

func (en *engine) closeCycle(reason string) error {
	if !en.cycleOpen {
		return nil
	}
	c := en.sys.Counters()
	en.cycle.End, en.cycle.VEnd = en.sys.Time(), en.sys.Voltage()
	en.cycle.HarvestedJ = c.Harvested - en.cycleStartE.Harvested
	en.cycle.UsedJ = c.Delivered - en.cycleStartE.Delivered
	en.cycle.Progress = en.board.Progress()
	en.cycle.Inference = en.inference
	en.cycle.Reason = reason
	en.logCycle(en.cycle)
	en.cycleOpen = false
	if reason == "brownout" && en.board.Running() || reason == "brownout" && en.inference >= 0 {
		if en.cycle.Commits == 0 && en.cycle.VStart >= en.cfg.Power.Th.Von*0.999 {
			en.noProgress++
		}
		if en.noProgress >= en.livelockCycles {
			return en.livelock()
		}
	}
	if err := en.checkCtx(); err != nil {
		return err
	}
	return nil
}

// livelock is the error of a run that went livelockCycles full power
// cycles without a commit.
func (en *engine) livelock() error {
	if en.board.Loading() {
		return &LivelockError{Cycles: en.noProgress, Task: -1, Layer: -1,
			Message: fmt.Sprintf("livelock at %.3f s: %d power cycles without loading the %d-byte input (the host resends only what is missing, and even that does not fit what a power cycle gives after the reboot)",
				en.sys.Time(), en.noProgress, len(en.cfg.Input))}
	}
	task := en.board.Progress()
	if task >= len(en.cfg.Plan.Tasks) {
		task = len(en.cfg.Plan.Tasks) - 1
	}
	g := groupOf(en.cfg.Plan, task)
	budget := en.cfg.Power.CycleBudget() - en.cfg.Profile.Reboot.Energy
	return &LivelockError{Task: task, Layer: en.cfg.Plan.Tasks[task].Layer, Energy: g.Energy, Budget: budget, Cycles: en.noProgress,
		Message: fmt.Sprintf("livelock at %.3f s: %d power cycles without a commit; tasks %d..%d (layer %d) need %.4g J between commits, a power cycle gives %.4g J after the reboot, and the trace does not make up the difference",
			en.sys.Time(), en.noProgress, g.First, g.Last, en.cfg.Plan.Tasks[task].Layer, g.Energy, budget)}
}

func (en *engine) finish() {
	if en.cycleOpen {
		_ = en.closeCycle("end")
	}
	c := en.sys.Counters()
	r := en.res
	r.HarvestedJ = c.Harvested
	r.TimeOn, r.TimeOff = c.TimeOn, c.TimeOff
	r.SimTime = en.sys.Time()
	e := &r.Energy
	e.Total = e.Compute + e.NVM + e.Commits + e.Reboots + e.Idle
	r.Latency = Summarize(r.Latencies)
	if r.Inferences > 0 {
		r.LowerBoundS = en.lbSum / float64(r.Inferences)
	}
	if rt, ok := en.board.(boards.RealTime); ok {
		r.TimingError = SummarizeTiming(rt.EdgeErrors())
	}
}
