// Package emulated is the emulated board: the real STM32 firmware in QEMU
// (boards/qemu), driven over its serial line by the same driver as a real
// board (boards/serialboard), with its power cut and restored by the power
// system model (harness/power) running in real time.
//
// Time. QEMU runs with -icount (qemu.BoardICountShift), so the guest's
// virtual clock advances by a fixed time per instruction, near the profile's
// clock, and the firmware's cycle counter (SysTick at qemu.CounterHz of
// virtual time) reports the same count for the same work on any host. The
// power model's simulated time is that virtual time. QEMU itself runs at the
// host's speed, so one simulated second lasts TimeScale wall seconds; with
// TimeScale 0 the run measures it first: a warm-up inference on bench power,
// whose wall time over its virtual time (the sum of its tasks' cycles over
// CounterHz) is the scale. So the board draws the profile's ActivePowerW for
// as long, in simulated time, as the real chip would compute.
//
// Power. While the model says the board is on, QEMU runs; at a brown-out it
// is stopped and reset (the reset re-applies a scrub of the volatile SRAM:
// nothing volatile survives; NVM does) and stays stopped while off; at
// turn-on it continues. The host's own I/O (writing an input, reading an
// output) happens on held power: the model stands still meanwhile
// (serialboard.Power). A board silent while powered is power-cycled (a hang).
// QEMU is closed on every exit path.
package emulated

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/qemu"
	"github.com/batteryless/harness/boards/serialboard"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/power"
	"github.com/batteryless/harness/harness/replay"
	"github.com/batteryless/harness/harness/wire"
	"github.com/batteryless/harness/reports"
)

// Config of an emulated run.
type Config struct {
	// ELF is the STM32 wire firmware (make -C firmware stm32f4). With
	// Image set it is the build without a plan (firmware-noplan.elf) and
	// Image is loaded at qemu.PlanAddr; without, the ELF's own plan runs.
	ELF   string
	Image []byte
	// Tasks is the plan's task count, OutputBytes its output tensor's size.
	Tasks       int
	OutputBytes int
	Profile     *profiles.Profile // ActivePowerW; power defaults unless Power is set
	Power       *power.Config     // the power system; nil: the profile's
	Input       []byte            // the input tensor
	Want        []byte            // the expected output (the reference executor's)

	// Harvest is the harvested power in W at simulated time t (s).
	Harvest func(t float64) float64
	// Charge: by the board's cycles (default) or by wall time.
	Charge Charge
	// TimeScale (ChargeTime): wall seconds per simulated second; 0 measures
	// it with the warm-up inference and follows QEMU's speed after.
	TimeScale float64
	// Inferences to run; default 1.
	Inferences int
	// Step is the wall time between two advances of the model; default 1 ms.
	Step time.Duration
	// HangTimeout: no event for this long (wall) while on is a hang; default 5 s.
	HangTimeout time.Duration
	// MaxSimTime ends the run (TraceEnded) after this many simulated seconds; 0: none.
	MaxSimTime float64
	// V0 is the capacitor's initial voltage.
	V0 float64
	// CounterHz is the firmware's cycle counter rate in virtual time;
	// default qemu.CounterHz.
	CounterHz float64
	// NoScrub keeps the volatile SRAM across power failures (unlike a real
	// chip): the control of the test that shows the scrub matters.
	NoScrub bool
	// Log, if set, receives a record per power cycle and per inference
	// (the simulated board's JSON Lines schema).
	Log *reports.LogWriter
	// Logf, if set, receives one line per power event and board event.
	Logf func(format string, args ...any)
	// QEMUStarted, if set, is called with the running machine (tests kill it).
	QEMUStarted func(*qemu.Machine)
}

// Result is replay.Result plus what only an emulated board has.
type Result struct {
	replay.Result
	Hangs      int `json:"hangs"`
	Boots      int `json:"boots"` // BOOT events seen during the trace
	EventsLost int `json:"events_lost"`
	// CyclesPerInference: the brown-outs during each inference.
	CyclesPerInference []int `json:"cycles_per_inference"`
	// TimeScale is the wall seconds per simulated second at the end (it
	// follows QEMU's measured speed unless Config.TimeScale fixed it);
	// ScaleSamples the tasks that refined it.
	TimeScale    float64 `json:"time_scale"`
	ScaleSamples int     `json:"time_scale_samples"`
	// WarmupTaskCycles: each task's cycles in the warm-up inference on bench
	// power (the board's own measurement; nil without a warm-up).
	WarmupTaskCycles []uint32 `json:"warmup_task_cycles,omitempty"`
	// Overruns (ChargeCycles): tasks that finished although the model had
	// browned the board out inside them (the host's timer cut too late).
	Overruns int `json:"overruns"`
	// Link counts what happened on the serial line.
	Link link.Stats `json:"link"`
}

// Run runs cfg.Inferences inferences on the emulated board.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	if cfg.Inferences <= 0 {
		cfg.Inferences = 1
	}
	if cfg.Step <= 0 {
		cfg.Step = time.Millisecond
	}
	if cfg.HangTimeout <= 0 {
		cfg.HangTimeout = 5 * time.Second
	}
	if cfg.CounterHz <= 0 {
		cfg.CounterHz = qemu.CounterHz
	}
	if cfg.Profile == nil || cfg.Harvest == nil || len(cfg.Want) == 0 || cfg.Tasks <= 0 {
		return res, errors.New("emulated: Config needs Profile, Harvest, Want and Tasks")
	}
	if cfg.OutputBytes == 0 {
		cfg.OutputBytes = len(cfg.Want)
	}
	pc := profilePower(cfg.Profile)
	if cfg.Power != nil {
		pc = *cfg.Power
	}
	pc.V0 = cfg.V0
	sys, err := power.New(pc)
	if err != nil {
		return res, fmt.Errorf("emulated: %w", err)
	}
	wall0 := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	qc := qemu.Config{ELF: cfg.ELF, ICountShift: qemu.BoardICountShift, GDB: cfg.Charge == ChargeCycles}
	if !cfg.NoScrub {
		qc.Scrub = &qemu.Scrub{Addr: qemu.SRAMAddr, Pattern: 0xA5}
	}
	if cfg.Image != nil {
		dir, err := tempDir()
		if err != nil {
			return res, err
		}
		defer removeAll(dir)
		file, err := writeFile(dir, "plan.bin", cfg.Image)
		if err != nil {
			return res, err
		}
		qc.Loaders = append(qc.Loaders, qemu.Loader{File: file, Addr: qemu.PlanAddr})
	}
	m, err := qemu.Start(ctx, qc)
	if err != nil {
		return res, fmt.Errorf("emulated: %w", err)
	}
	defer m.Close()
	if cfg.QEMUStarted != nil {
		cfg.QEMUStarted(m)
	}
	l, err := link.Open(ctx, link.Config{Path: m.SerialPath()})
	if err != nil {
		return res, fmt.Errorf("emulated: %w", err)
	}
	defer l.Close()
	brd := serialboard.New(l, serialboard.Config{Tasks: cfg.Tasks, OutputBytes: cfg.OutputBytes, HangTimeout: cfg.HangTimeout, Logf: cfg.Logf})
	// QEMU dying fails the run at once, whatever it is waiting for.
	go func() {
		select {
		case <-m.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	var cm *cycleModel
	fail := func(err error) (Result, error) {
		if errors.Is(err, context.Canceled) {
			// Cancelled from inside: QEMU dying or the power model
			// failing is the cause; give QEMU a moment to be reaped.
			select {
			case <-m.Done():
			case <-time.After(time.Second):
			}
		}
		if merr := m.Err(); merr != nil {
			if !strings.Contains(err.Error(), merr.Error()) {
				err = fmt.Errorf("%w (QEMU: %v)", err, merr)
			}
		} else if cm != nil {
			if perr := cm.error(); perr != nil && !errors.Is(perr, errTraceEnded) {
				err = fmt.Errorf("%w (power model: %v)", err, perr)
			}
		}
		return res, fmt.Errorf("emulated: %w", err)
	}

	// Charging by cycles, the board stops at the start of every task: the
	// gdbstub's breakpoint, followed from the start (the warm-up's stops
	// just continue).
	if cfg.Charge == ChargeCycles {
		g, err := m.ConnectGDB(ctx)
		if err != nil {
			return fail(err)
		}
		defer g.Close()
		entry, err := qemu.Symbol(cfg.ELF, taskEntry)
		if err != nil {
			return fail(fmt.Errorf("charging by cycles needs the runtime's task entry: %w", err))
		}
		cm = &cycleModel{modelBase: newModelBase(sys, m, &cfg), g: g,
			stop: make(chan struct{}), tookOver: make(chan error, 1), pending: -1, entry: entry}
		rctx, rcancel := context.WithCancel(ctx)
		defer rcancel()
		go cm.run(rctx)
		go func() {
			select {
			case <-cm.stop:
				cancel() // the model stopped: the trace ended, or it failed
			case <-ctx.Done():
			}
		}()
		if err := g.Continue(); err != nil {
			return fail(err)
		}
	}

	// Set-up on bench power: HELLO, and the warm-up inference that checks
	// the board computes the right numbers and measures QEMU's speed.
	if _, err := brd.Hello(ctx); err != nil {
		return fail(err)
	}
	bench := &serialboard.Bench{Reset: func(ctx context.Context) error { return m.SystemReset(ctx) }}
	scale := cfg.TimeScale
	{
		inf, err := brd.Infer(ctx, 1, cfg.Input, bench, nil)
		if err != nil {
			return fail(fmt.Errorf("warm-up on bench power: %w", err))
		}
		if ok, why := serialboard.Verify(inf.Output, cfg.Want); !ok {
			return fail(fmt.Errorf("warm-up on bench power: %s", why))
		}
		// The scale: wall time over virtual time from the first TASK_DONE's
		// arrival to RESULT's, the tasks in between (no host I/O there).
		var ticks float64
		res.WarmupTaskCycles = make([]uint32, cfg.Tasks)
		for i, t := range inf.Tasks {
			if i > 0 {
				ticks += float64(t.Cycles)
			}
			if int(t.Task) < cfg.Tasks {
				res.WarmupTaskCycles[t.Task] = t.Cycles
			}
		}
		if scale <= 0 {
			if ticks <= 0 || len(inf.Tasks) < 2 || inf.ResultAt.IsZero() {
				return fail(errors.New("warm-up: too few task events to measure QEMU's speed; give a time scale"))
			}
			scale = inf.ResultAt.Sub(inf.Tasks[0].At).Seconds() / (ticks / cfg.CounterHz)
		}
	}
	res.TimeScale = scale
	if cfg.Logf != nil {
		cfg.Logf("warm-up verified; time scale %.4f wall s per simulated s", scale)
	}

	var pw strategy
	var stopPower func() error
	if cfg.Charge == ChargeTime {
		// Now the power model owns the supply: off until it turns on.
		if err := m.Stop(ctx); err != nil {
			return fail(err)
		}
		if err := m.SystemReset(ctx); err != nil {
			return fail(err)
		}
		tm := &powerModel{modelBase: newModelBase(sys, m, &cfg), scale: scale, adaptive: cfg.TimeScale <= 0}
		pw = tm
		pctx, pcancel := context.WithCancel(ctx)
		perr := make(chan error, 1)
		go func() {
			e := tm.run(pctx)
			if pctx.Err() != nil && e != nil && errors.Is(e, context.Canceled) {
				e = nil // stopped by Run
			}
			perr <- e
			if e != nil {
				cancel() // the board cannot go on without its power
			}
		}()
		stopPower = func() error {
			pcancel()
			return <-perr
		}
	} else {
		cm.taskCycles = res.WarmupTaskCycles
		if err := cm.start(ctx); err != nil {
			return fail(fmt.Errorf("the power model taking over: %w", err))
		}
		pw = cm
		stopPower = func() error {
			if e := cm.error(); e != nil && e != errTraceEnded {
				return e
			}
			return nil
		}
	}
	powerStopped := false
	defer func() {
		if !powerStopped {
			if e := stopPower(); e != nil && err == nil {
				err = fmt.Errorf("emulated: power loop: %w", e)
			}
		}
	}()

	for i := 0; i < cfg.Inferences; i++ {
		n := uint32(i + 2) // 1 was the warm-up
		pw.beginInference(i)
		inf, ierr := brd.Infer(ctx, n, cfg.Input, pw, pw.observe)
		if ierr != nil && pw.ended() {
			res.TraceEnded = true
			pw.endInference()
			break
		}
		cycles := pw.endInference()
		if inf != nil {
			res.Hangs += inf.Hangs
			res.Boots += inf.Boots
			res.EventsLost += inf.EventsLost
			res.Commits += inf.Commits
			res.TasksRun += len(inf.Tasks)
			res.ReexecutedTasks += inf.Reexecuted
			for _, t := range inf.Tasks {
				// At the warm-up's cycles: under the cycles model a task's
				// own count is inflated by the stops (cycles.go).
				c := float64(t.Cycles)
				if int(t.Task) < len(res.WarmupTaskCycles) && res.WarmupTaskCycles[t.Task] > 0 {
					c = float64(res.WarmupTaskCycles[t.Task])
				}
				res.Energy.Compute += c / cfg.CounterHz * cfg.Profile.ActivePowerW
			}
		}
		if errors.Is(ierr, serialboard.ErrProgressLost) {
			// A verification failure found before the output: what the
			// board will compute from here is not to be trusted.
			res.Inferences++
			res.Mismatches++
			cfg.Log.Write(reports.InferenceRecord{Type: "inference", Index: i, Start: inf.Start, End: pw.Now(),
				PowerCycles: cycles, Verified: false, Argmax: -1})
			pw.logf("inference %d: %v", i, ierr)
			powerStopped = true
			_ = stopPower()
			pw.finish(&res, wall0)
			_ = cfg.Log.Flush()
			return res, fmt.Errorf("emulated: %w", ierr)
		}
		if ierr != nil {
			if pw.ended() {
				res.TraceEnded = true
				break
			}
			if e := pw.error(); e != nil {
				ierr = fmt.Errorf("%w (power loop: %v)", ierr, e)
			}
			return fail(ierr)
		}
		ok, why := serialboard.Verify(inf.Output, cfg.Want)
		res.Inferences++
		if ok {
			res.Verified++
		} else {
			res.Mismatches++
			pw.logf("inference %d: %s", i, why)
		}
		res.CyclesPerInference = append(res.CyclesPerInference, cycles)
		res.Latencies = append(res.Latencies, inf.End-inf.Start)
		cfg.Log.Write(reports.InferenceRecord{Type: "inference", Index: i, Start: inf.Start, End: inf.End,
			Latency: inf.End - inf.Start, PowerCycles: cycles, Verified: ok, Argmax: replay.Argmax(model.BytesAsInt8(inf.Output))})
	}
	powerStopped = true
	if e := stopPower(); e != nil {
		return fail(fmt.Errorf("power loop: %w", e))
	}
	res.Link = l.Stats()
	pw.finish(&res, wall0)
	return res, cfg.Log.Flush()
}

func profilePower(p *profiles.Profile) power.Config {
	return power.Config{
		Cap:        power.Capacitor{C: p.Power.CapacitanceF, Vmax: p.Power.VmaxV, Rleak: p.Power.LeakageOhm},
		Th:         power.Thresholds{Von: p.Power.VonV, Voff: p.Power.VoffV},
		Efficiency: p.Power.Efficiency,
	}
}

// strategy is the power strategy of a run: charge by wall time or by the
// board's cycles.
type strategy interface {
	serialboard.Power
	observe(link.Event)
	logf(format string, args ...any)
	beginInference(i int)
	endInference() int
	ended() bool
	error() error
	finish(res *Result, wall0 time.Time)
}

// Charge says how the emulated board pays for its work.
type Charge int

const (
	// ChargeCycles: the model's clock is the board's virtual time, advanced
	// by the cycles it reports per boot and per task; brown-outs are cut
	// at the instant the look-ahead computes (see cycleModel). The power
	// cycles do not depend on the host's speed. The default.
	ChargeCycles Charge = iota
	// ChargeTime: the model runs on the wall clock, scaled by TimeScale
	// (measured by the warm-up, then following QEMU's speed when 0), and
	// the board draws power for as long as QEMU runs.
	ChargeTime
)

// errTraceEnded stops the power model at MaxSimTime.
var errTraceEnded = errors.New("the trace ended")

// modelBase is what both power strategies keep, under mu: the model, QEMU,
// the per-cycle records, and the run's bookkeeping.
type modelBase struct {
	mu     sync.Mutex
	sys    *power.System
	m      *qemu.Machine
	cfg    *Config
	rec    *recorder
	on     bool
	onCh   chan struct{} // closed and replaced at every turn-on
	cyc    int           // brown-outs
	endErr error         // why the model stopped by itself
	// the inference running: its index and the brown-outs at its start
	inf, infCyc0 int
}

func newModelBase(sys *power.System, m *qemu.Machine, cfg *Config) modelBase {
	return modelBase{sys: sys, m: m, cfg: cfg, rec: newRecorder(cfg.Log), onCh: make(chan struct{})}
}

func (p *modelBase) logf(format string, args ...any) {
	if p.cfg.Logf != nil {
		p.cfg.Logf(format, args...)
	}
}

// Now implements serialboard.Power: the simulated time.
func (p *modelBase) Now() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sys.Time()
}

func (p *modelBase) ended() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Is(p.endErr, errTraceEnded)
}

func (p *modelBase) error() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.endErr
}

func (p *modelBase) beginInference(i int) {
	p.mu.Lock()
	p.inf, p.infCyc0 = i, p.cyc
	p.rec.inference = i
	p.mu.Unlock()
}

// chargeToOn advances the model while the board is off until it turns on
// (nothing runs meanwhile, so no wall time passes), then the board draws its
// active power and a cycle record opens; errTraceEnded at MaxSimTime. QEMU
// is stopped; the caller lets it run. p.mu held.
func (p *modelBase) chargeToOn(ctx context.Context) error {
	const chunk = 0.01       // s: the harvest is read every 10 ms of simulated time
	const maxOff = 24 * 3600 // s: a harvest that never turns the board on
	t0 := p.sys.Time()
	for !p.sys.On() {
		if p.cfg.MaxSimTime > 0 && p.sys.Time() >= p.cfg.MaxSimTime {
			return errTraceEnded
		}
		if p.sys.Time()-t0 > maxOff {
			return fmt.Errorf("the harvest did not turn the board on within %d h of simulated time (V=%.3f V, turn-on at %.3f V)", maxOff/3600, p.sys.Voltage(), p.sys.Config().Th.Von)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.sys.SetHarvest(max(p.cfg.Harvest(p.sys.Time()), 0)); err != nil {
			return err
		}
		p.sys.Advance(chunk)
	}
	if err := p.sys.SetLoad(p.cfg.Profile.ActivePowerW); err != nil {
		return err
	}
	p.on = true
	p.rec.on(p.sys)
	p.logf("turn-on at t=%.4f s (V=%.3f)", p.sys.Time(), p.sys.Voltage())
	return nil
}

func (p *modelBase) endInference() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rec.inference = -1
	return p.cyc - p.infCyc0
}

// powerModel is the power system model driving QEMU: the
// serialboard.Power strategy of the emulated board.
type powerModel struct {
	modelBase
	scale float64
	holds int        // Hold calls not yet released
	act   sync.Mutex // one power action (QMP stop/reset/cont sequence) at a time
	// stopLead is how long QMP takes to stop QEMU (a running mean): the
	// loop wakes that much before a predicted brown-out.
	stopLead time.Duration
	// adaptive: scale follows the board's measured speed (TimeScale 0).
	adaptive     bool
	scaleSamples int
	holdGen      int // counts Hold and Release calls
	lastEv       time.Time
	lastEvOK     bool
	lastEvCyc    int
	lastEvHold   int
}

// On implements serialboard.Power.
func (p *powerModel) On() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.on
}

// Hold implements serialboard.Power: the model runs until the board is on,
// then stands still until Release.
func (p *powerModel) Hold(ctx context.Context) error {
	p.mu.Lock()
	p.holds++
	p.holdGen++
	for !p.on {
		ch := p.onCh
		if p.endErr != nil {
			err := p.endErr
			p.holds--
			p.mu.Unlock()
			return err
		}
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			p.holds--
			p.mu.Unlock()
			return ctx.Err()
		}
		p.mu.Lock()
	}
	p.mu.Unlock()
	return nil
}

// Release implements serialboard.Power.
func (p *powerModel) Release() {
	p.mu.Lock()
	p.holds--
	p.holdGen++
	p.mu.Unlock()
}

// Cycle implements serialboard.Power: a hang; the board is reset without
// touching the model (the energy it wasted is already spent).
func (p *powerModel) Cycle(ctx context.Context) error {
	p.act.Lock()
	defer p.act.Unlock()
	if !p.On() {
		return nil // the model cut it already
	}
	if err := p.m.Stop(ctx); err != nil {
		return err
	}
	if err := p.m.SystemReset(ctx); err != nil {
		return err
	}
	if err := p.m.Cont(ctx); err != nil {
		return err
	}
	p.logf("hang: power-cycled at t=%.4f s", p.Now())
	return nil
}

// observe counts the board's events into the power cycle they belong to.
func (p *powerModel) observe(ev link.Event) {
	if ev.Kind != link.BoardEvent {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// QEMU's speed drifts with the host's load: each task timed within one
	// on-window, without host I/O in between, refreshes the scale.
	prev, prevOK := p.lastEv, p.lastEvOK && p.lastEvCyc == p.cyc && p.lastEvHold == p.holdGen && p.on && p.holds == 0
	p.lastEv, p.lastEvOK, p.lastEvCyc, p.lastEvHold = ev.Time, true, p.cyc, p.holdGen
	switch e := ev.Msg.(type) {
	case *wire.TaskDone:
		if prevOK && p.adaptive && e.Cycles > 0 {
			virt := float64(e.Cycles) / p.cfg.CounterHz
			if w := ev.Time.Sub(prev).Seconds(); virt > 2*p.cfg.Step.Seconds()/p.scale && w > p.scale*virt/4 && w < 4*p.scale*virt {
				// Only tasks long against the loop's step (short ones
				// measure the event latency more than QEMU), and not 4x
				// off (a stall of the host, not a speed).
				p.scale = 0.7*p.scale + 0.3*(w/virt)
				p.scaleSamples++
			}
		}
		p.rec.task()
	case *wire.Commit:
		p.rec.commit(int(e.Progress))
	case *wire.Boot:
		p.rec.progress = int(e.Resume)
	}
}

// run drives QEMU from the model until ctx is done, the trace ends or a QMP
// command fails. While the board runs, the model follows the wall clock
// (scaled) and the next brown-out is predicted, so that QEMU is stopped at
// its instant rather than at the next tick. While the board is off nothing
// runs, so the model jumps straight to the turn-on: off time costs no wall
// time.
func (p *powerModel) run(ctx context.Context) (err error) {
	defer func() {
		p.mu.Lock()
		if err == nil {
			err = ctx.Err()
		}
		p.endErr = err
		close(p.onCh) // wake Hold callers
		p.onCh = make(chan struct{})
		p.mu.Unlock()
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	wait := func(d time.Duration) error {
		timer.Reset(max(d, 0))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.m.Done():
			return p.m.Err()
		case <-timer.C:
			return nil
		}
	}
	last := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case <-p.m.Done():
			return p.m.Err()
		default:
		}
		p.mu.Lock()
		if p.cfg.MaxSimTime > 0 && p.sys.Time() >= p.cfg.MaxSimTime {
			p.mu.Unlock()
			return errTraceEnded
		}
		if !p.on {
			err := p.offUntilOn(ctx)
			p.mu.Unlock()
			if err != nil {
				return err
			}
			last = time.Now()
			continue
		}
		if p.holds > 0 {
			p.mu.Unlock()
			if err := wait(p.cfg.Step); err != nil {
				return err
			}
			last = time.Now()
			continue
		}
		// Peek: does the board brown out within the next step?
		peek := *p.sys
		if err := peek.SetHarvest(max(p.cfg.Harvest(peek.Time()), 0)); err != nil {
			p.mu.Unlock()
			return err
		}
		adv, ev := peek.Advance(p.cfg.Step.Seconds() / p.scale)
		lead, scale := p.stopLead, p.scale
		p.mu.Unlock()
		if ev == power.BrownedOut {
			// Wake early by the time QMP takes to stop QEMU.
			if err := wait(time.Until(last.Add(time.Duration(adv*scale*float64(time.Second)) - lead))); err != nil {
				return err
			}
			if err := p.brownOut(ctx, adv); err != nil {
				return err
			}
			last = time.Now()
			continue
		}
		if err := wait(time.Until(last.Add(p.cfg.Step))); err != nil {
			return err
		}
		now := time.Now()
		dt := now.Sub(last).Seconds() / scale
		last = now
		if err := p.advanceOn(ctx, dt); err != nil {
			return err
		}
	}
}

// advanceOn advances the model by dt while the board runs (a brown-out that
// the peek did not foresee is handled too).
func (p *powerModel) advanceOn(ctx context.Context, dt float64) error {
	p.act.Lock()
	defer p.act.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holds > 0 || !p.on {
		return nil
	}
	for dt > 0 {
		if err := p.sys.SetHarvest(max(p.cfg.Harvest(p.sys.Time()), 0)); err != nil {
			return err
		}
		adv, ev := p.sys.Advance(dt)
		dt -= adv
		if ev == power.BrownedOut {
			t0 := time.Now()
			if err := p.m.Stop(ctx); err != nil {
				return err
			}
			p.noteStop(time.Since(t0))
			p.logf("brown-out found by advance (scale %.4f)", p.scale)
			return p.cut(ctx)
		}
		if ev == power.None {
			return nil
		}
	}
	return nil
}

// brownOut stops QEMU, then advances the model to the predicted brown-out
// (adv simulated seconds after the last advance) and cuts the board.
func (p *powerModel) brownOut(ctx context.Context, adv float64) error {
	p.act.Lock()
	defer p.act.Unlock()
	t0 := time.Now()
	if err := p.m.Stop(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.noteStop(time.Since(t0))
	if p.holds > 0 {
		// A Hold came in meanwhile: the board stays on, frozen.
		return p.m.Cont(ctx)
	}
	// Reach the event: the peek's interval, nudged past rounding.
	for dt := adv*(1+1e-9) + 1e-12; dt > 0; {
		if err := p.sys.SetHarvest(max(p.cfg.Harvest(p.sys.Time()), 0)); err != nil {
			return err
		}
		a, ev := p.sys.Advance(dt)
		dt -= a
		if ev == power.BrownedOut {
			return p.cut(ctx)
		}
		if ev == power.None {
			break
		}
	}
	// Rounding kept it just above Voff: let it run on.
	return p.m.Cont(ctx)
}

// noteStop keeps a running mean of how long QMP takes to stop QEMU
// (p.mu held).
func (p *powerModel) noteStop(d time.Duration) {
	if p.stopLead == 0 {
		p.stopLead = d
	} else {
		p.stopLead = (7*p.stopLead + d) / 8
	}
}

// cut finishes a brown-out: QEMU is stopped; reset it (the SRAM scrub) and
// mark the board off (p.mu held).
func (p *powerModel) cut(ctx context.Context) error {
	if err := p.m.SystemReset(ctx); err != nil {
		return err
	}
	p.on = false
	p.cyc++
	if err := p.sys.SetLoad(0); err != nil {
		return err
	}
	p.rec.off(p.sys, "brownout")
	p.logf("brown-out at t=%.4f s (V=%.3f)", p.sys.Time(), p.sys.Voltage())
	return nil
}

// offUntilOn advances the model while the board is off until it turns on
// (or the trace ends), then continues QEMU (p.mu held).
func (p *powerModel) offUntilOn(ctx context.Context) error {
	if err := p.chargeToOn(ctx); err != nil {
		return err
	}
	if err := p.m.Cont(ctx); err != nil {
		return err
	}
	close(p.onCh)
	p.onCh = make(chan struct{})
	return nil
}

// finish fills the result's power figures and writes the last cycle record.
func (p *powerModel) finish(res *Result, wall0 time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	res.TimeScale = p.scale
	res.ScaleSamples = p.scaleSamples
	p.fillPower(res, wall0)
}

// fillPower closes the last cycle record and fills a result's power
// figures from the model (p.mu held).
func (p *modelBase) fillPower(res *Result, wall0 time.Time) {
	if p.on {
		p.rec.off(p.sys, "end")
	}
	p.rec.flush()
	sys := p.sys
	c := sys.Counters()
	res.PowerCycles = p.cyc
	res.HarvestedJ = c.Harvested
	res.TimeOn, res.TimeOff = c.TimeOn, c.TimeOff
	res.SimTime = sys.Time()
	res.WallS = time.Since(wall0).Seconds()
	res.Energy.Total = c.Delivered
	// The board reports whole tasks only: Compute holds their cycles'
	// energy (NVM traffic included), Wasted the re-executed ones', Idle the
	// rest (boots, partial tasks cut by brown-outs, waiting for the host).
	if res.TasksRun > 0 {
		res.Energy.Wasted = res.Energy.Compute * float64(res.ReexecutedTasks) / float64(res.TasksRun)
	}
	res.Energy.Idle = math.Max(0, res.Energy.Total-res.Energy.Compute)
	if n := len(res.Latencies); n > 0 {
		s := slices.Clone(res.Latencies)
		slices.Sort(s)
		sum := 0.0
		for _, v := range s {
			sum += v
		}
		res.Latency = replay.Latency{Mean: sum / float64(n), P50: s[n/2], P95: s[min(n-1, n*95/100)], Max: s[n-1]}
	}
}

// recorder turns power events and board events into the simulated board's
// per-cycle records. A record is written at the next turn-on (or the end),
// so that board events that arrive after their brown-out still count in it.
type recorder struct {
	log       *reports.LogWriter
	cur       *reports.CycleRecord // the cycle on now, or the last one until the next turn-on
	open      bool
	n         int
	h0, d0    float64
	progress  int
	inference int
}

func newRecorder(l *reports.LogWriter) *recorder { return &recorder{log: l, inference: -1} }

func (r *recorder) on(sys *power.System) {
	r.flush()
	c := sys.Counters()
	r.h0, r.d0 = c.Harvested, c.Delivered
	r.cur = &reports.CycleRecord{Type: "cycle", Cycle: r.n, Start: sys.Time(), VStart: sys.Voltage(), Progress: r.progress, Inference: r.inference}
	r.open = true
	r.n++
}

func (r *recorder) off(sys *power.System, reason string) {
	if !r.open {
		return
	}
	c := sys.Counters()
	r.cur.End, r.cur.VEnd = sys.Time(), sys.Voltage()
	r.cur.HarvestedJ, r.cur.UsedJ = c.Harvested-r.h0, c.Delivered-r.d0
	r.cur.Reason = reason
	r.cur.Inference = r.inference
	r.open = false
}

func (r *recorder) task() {
	if r.cur != nil {
		r.cur.Tasks++
	}
}

func (r *recorder) commit(progress int) {
	r.progress = progress
	if r.cur != nil {
		r.cur.Commits++
		r.cur.Progress = progress
	}
}

func (r *recorder) flush() {
	if r.cur != nil && !r.open {
		r.log.Write(*r.cur)
		r.cur = nil
	}
}

func tempDir() (string, error) {
	d, err := os.MkdirTemp("", "ihemu")
	if err != nil {
		return "", fmt.Errorf("emulated: %w", err)
	}
	return d, nil
}

func writeFile(dir, name string, b []byte) (string, error) {
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, b, 0o600); err != nil {
		return "", fmt.Errorf("emulated: %w", err)
	}
	return f, nil
}

func removeAll(dir string) { os.RemoveAll(dir) }
