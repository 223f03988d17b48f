// Package bench is a board on a bench: a board running the wire firmware
// on a serial port (boards/serialboard), whose power comes from a
// programmable supply (boards/supply) that plays the harvester's energy,
// driven by the replay engine (harness/replay) like any boards.Board. It is
// the registry's "serial" board; its power strategy is the supply.
//
// A real board cannot be stopped at a task's start as QEMU's gdbstub stops
// the emulated one: it runs in real time. So the board is a boards.RealTime:
// Next offers the step the board is running (a task, priced by the cycles
// a warm-up inference measured on bench power), the engine runs its power
// model through it at once, and Complete, BrownOut and PowerOn then happen
// in real time: Complete waits for the board's TASK_DONE (or BOOT, or
// RESULT), BrownOut switches the output off at the wall instant the model's
// brown-out falls at, measured from the step's start, and PowerOn switches
// it on once the off time has passed. Three modes (Mode), each faithful to
// something else:
//
//   - Gate (closed loop, a virtual capacitor, as Shepherd's virtual source
//     does in hardware): the power model runs fed by the board's own events,
//     the output goes on at the modelled turn-on and off at the modelled
//     brown-out, and while it is on the voltage follows the modelled
//     capacitor as fast as the instrument takes setpoints, so that a board
//     that reads its supply sees what a capacitor would give it. Faithful
//     to the model's capacitor and thresholds with the board's real timing.
//     Off time may be compressed (OffMin): the model's clock advances by the
//     whole charging time while the output is off for MinOff.
//   - Curve (open loop): the capacitor voltage the model predicts for this
//     board, compiled to a list the instrument plays by itself once
//     triggered, with the threshold crossings on step boundaries. Faithful
//     to the predicted supply, played by the instrument's own clock.
//   - Harvester (open loop, the board's own capacitor and power management):
//     the supply is the harvester, its current limit following the trace's
//     harvested power sample by sample; the board turns itself on and off,
//     and the model's edges are compared with the board's. Faithful to the
//     board's own power hardware.
//
// Timing is measured, not assumed: every modelled edge is paired with the
// instant its command was written and, where the board shows it, with its
// BOOT minus the boot latency measured at calibration (EdgeErrors).
//
// Off means off only with a sink on the rail (a load switch with active
// discharge, a bleed resistor, an electronic load): a supply drives its
// output down only through the load.
package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/bench/emubench"
	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/serialboard"
	"github.com/batteryless/harness/boards/supply"
	"github.com/batteryless/harness/boards/supply/scpi"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/replay"
	"github.com/batteryless/harness/harness/wire"
	"github.com/batteryless/harness/traces"
)

// Mode is how the supply gives the board its power.
type Mode int

// The modes (see the package comment).
const (
	Gate Mode = iota
	Curve
	Harvester
)

var modeNames = [...]string{"gate", "curve", "harvester"}

func (m Mode) String() string {
	if m < 0 || int(m) >= len(modeNames) {
		return "unknown"
	}
	return modeNames[m]
}

// ParseMode reads a mode's name ("" is Gate).
func ParseMode(s string) (Mode, error) {
	if s == "" {
		return Gate, nil
	}
	for i, n := range modeNames {
		if strings.EqualFold(s, n) {
			return Mode(i), nil
		}
	}
	return Gate, fmt.Errorf("power mode %q: want gate, curve or harvester", s)
}

// OffTime is how long the output stays off between a brown-out and the
// next turn-on.
type OffTime int

const (
	// OffMin: MinOff, long enough for a real reset, while the model's
	// clock advances by the whole charging time.
	OffMin OffTime = iota
	// OffReal: as long as the model's charging time (at least MinOff).
	OffReal
)

func (o OffTime) String() string {
	if o == OffReal {
		return "real"
	}
	return "min"
}

// ParseOffTime reads "min" or "real" ("" is OffMin).
func ParseOffTime(s string) (OffTime, error) {
	switch strings.ToLower(s) {
	case "", "min":
		return OffMin, nil
	case "real":
		return OffReal, nil
	}
	return OffMin, fmt.Errorf("off time %q: want min or real", s)
}

// DefaultMinOff is the shortest time off: enough for a board to reset
// (its supply supervisor and decoupling), as a real brown-out would.
const DefaultMinOff = 50 * time.Millisecond

// Deadman is the watchdog of a run: started before the output first goes
// on, it switches the output off over its own connection when the run dies
// (boards/supply/deadman). Disarm tells it the run ended with the output
// off; Close without Disarm leaves it to switch the output off.
type Deadman interface {
	Disarm() error
	Close() error
}

// Options configure a bench board.
type Options struct {
	// Port is the board's serial port, Baud its rate (0: the link's).
	Port string
	Baud int
	// Supply is the supply's URL (boards/supply.Open) and SupplyOptions
	// what Open gets besides.
	Supply        string
	SupplyOptions supply.Options
	Mode          Mode
	OffTime       OffTime
	// MinOff is the shortest time off; default DefaultMinOff.
	MinOff time.Duration
	// Rate is the gate mode's setpoint period: default the instrument's
	// least command interval, at least 5 ms.
	Rate time.Duration
	// BootTimeout: no BOOT this long after the output went on is a board
	// that did not boot; default 1 s. NeverBoots such power cycles in a
	// row stop the run; default 3.
	BootTimeout time.Duration
	NeverBoots  int
	// HangSlack: a step whose event has not come this long after its
	// modelled end is a hang (the board is power-cycled); default 500 ms.
	HangSlack time.Duration
	// Calibrations is how many power-ons (after a first one) measure the
	// boot latency; default 7.
	Calibrations int
	// CurveTolerance is the largest error of a compiled curve (curve
	// mode); default 20 mV.
	CurveTolerance float64
	// StartDeadman, if set, starts the run's deadman for the supply URL
	// before the output first goes on.
	StartDeadman func(url string) (Deadman, error)
	// Logf, if set, receives a line per decision and board event.
	Logf func(format string, args ...any)
}

// Stats say what the bench did: calibration, the rail's updates, faults.
type Stats struct {
	Mode       string `json:"mode"`
	OffTime    string `json:"off_time"`
	Supply     string `json:"supply"`
	Instrument string `json:"instrument"`
	// BootLatencyS is the median of the calibration's output-on to BOOT
	// less the boot's own time (its BOOT's cycles), BootLatencySpreadS its
	// max - min.
	BootLatencyS       float64 `json:"boot_latency_s"`
	BootLatencySpreadS float64 `json:"boot_latency_spread_s"`
	// Setpoints streamed while the output was on (gate), SetpointRateHz
	// their achieved rate.
	Setpoints      int     `json:"setpoints"`
	SetpointRateHz float64 `json:"setpoint_rate_hz"`
	// CurrentLimits streamed (harvester).
	CurrentLimits int `json:"current_limits,omitempty"`
	// Reconnects: commands that failed with a lost connection and went
	// through on a new one (or the SCPI client's redials, if more).
	Reconnects int `json:"reconnects"`
	// Hangs: steps without their event (power-cycled); NoBoots: power-ons
	// without a BOOT; UnexpectedBoots: a BOOT while the model had the board
	// running.
	Hangs           int `json:"hangs"`
	NoBoots         int `json:"no_boots"`
	UnexpectedBoots int `json:"unexpected_boots"`
	// LateCuts: brown-outs the board's event beat (the board finished the
	// step before the cut).
	LateCuts int `json:"late_cuts"`
	// RuleDisagreements: the board's run-time rule decided otherwise than
	// the model's reading of the same voltage.
	RuleDisagreements int `json:"rule_disagreements"`
	// LagS is the mean of the board's events' lateness against their
	// modelled instants (board time against wall time).
	LagS float64 `json:"lag_s"`
	lagN int
	// Curve is the compiled list (curve mode).
	Curve *CurveInfo `json:"curve,omitempty"`
	// Restarts: inferences whose START the board lost with its power,
	// loaded again.
	Restarts int `json:"restarts,omitempty"`
	// ObservedBoots counts every BOOT seen during the run.
	ObservedBoots int `json:"observed_boots"`
	streamOn      time.Duration
}

// state is where the board is, as the engine sees it.
type state int

const (
	off     state = iota // no power
	booting              // powered; its next step is the boot
	idle                 // booted, nothing running
	atTask               // running b.task
)

// Board is a board on a bench, behind boards.Board (and boards.RealTime,
// boards.SupplySensor, boards.TaskCycler).
type Board struct {
	opt  Options
	dep  boards.Deployment
	prof *profiles.Profile

	ch   supply.Channel
	g    *supply.Guard
	caps supply.Capabilities
	dm   Deadman
	l    *link.Link
	drv  *serialboard.Board
	ses  *serialboard.Session

	now, volts func() float64 // the engine's model: time and capacitor voltage

	st        state
	task      int  // atTask: the task the board runs
	woke      bool // the rule's sleep just ended: the next task runs
	sleeping  bool // the step is the rule's sleep
	number    uint32
	pending   []byte
	lastInput []byte // the running inference's input
	progress  int    // the progress word, as the board's events said
	committed int
	backlog   []link.Event // events read ahead, in order

	taskCycles  []uint32
	bootCycles  uint32
	bootLatency time.Duration
	// The host's I/O on bench power: SET_INPUT of the input, and START.
	inputIO, startIO, readIO time.Duration
	taskOverhead             float64 // s per task beyond its cycles, on the wall clock

	// The map from the model's clock to the wall clock.
	anchorWall  time.Time
	anchorModel float64
	fixed       bool // curve, harvester: the map is fixed from the start

	// The step Next gave.
	step      boards.Step
	stepOpen  bool
	stepModel float64
	stepV     float64
	stepWall  time.Time

	started  bool      // the run's first turn-on is past
	offWall  time.Time // when the output last went off (modelled instant)
	offModel float64
	on       *onEdge // the last turn-on, until its BOOT pairs it

	outputOn bool
	lastSent float64
	lastSetp time.Time
	seg      segment   // the rail's stretch of the model (gate)
	portLost time.Time // when the port went, while it is lost

	cmdEdges []float64 // edges against their commands' instants
	evEdges  []float64 // edges against the board's evidence
	noBoot   int
	stats    Stats

	curve *curvePlan     // curve mode
	harv  *harvestStream // harvester mode
	// early is a BOOT the board sent on its own power before the model
	// turned it on (harvester mode): the next turn-on's evidence.
	early *earlyBoot
	start time.Time // the run's first instant (curve, harvester)
	trace func() (traces.Reader, error)
}

// earlyBoot is a BOOT and its arrival.
type earlyBoot struct {
	boot *wire.Boot
	at   time.Time
	done bool // it ends the inference (its RESULT was lost)
}

// onEdge is a turn-on: its modelled wall instant and, for a command, when
// it was written.
type onEdge struct {
	model   time.Time
	written time.Time
}

// ErrNeverBoots is wrapped by the error of a board that did not boot in
// Options.NeverBoots power cycles in a row.
var ErrNeverBoots = errors.New("the board never booted")

// Open opens the supply and the board's port, measures the boot latency
// (the output switched on and off Calibrations times), runs a warm-up
// inference on bench power (its output checked against d.Want, each task's
// cycles kept as the engine's price list), checks that the board runs
// d.Plan (its NVM's plan tag), and leaves the output off.
func Open(ctx context.Context, d boards.Deployment, opt Options) (_ *Board, err error) {
	if d.Plan == nil || d.Profile == nil || d.Model == nil || len(d.Want) == 0 {
		return nil, errors.New("bench: the deployment needs a model, a plan, a profile and the reference output")
	}
	if opt.Port == "" {
		return nil, errors.New("bench: no serial port (--port, HARNESS_PORT, or resources.port in a bench file)")
	}
	if opt.Supply == "" {
		return nil, errors.New("bench: no supply URL (--supply, or resources.supply in a bench file)")
	}
	if opt.MinOff <= 0 {
		opt.MinOff = DefaultMinOff
	}
	if opt.BootTimeout <= 0 {
		opt.BootTimeout = time.Second
	}
	if opt.NeverBoots <= 0 {
		opt.NeverBoots = 3
	}
	if opt.HangSlack <= 0 {
		opt.HangSlack = 500 * time.Millisecond
	}
	if opt.Calibrations <= 0 {
		opt.Calibrations = 7
	}
	if opt.CurveTolerance <= 0 {
		opt.CurveTolerance = 0.02
	}
	b := &Board{opt: opt, dep: d, prof: d.Profile, number: rand.Uint32()>>1 + 1}
	b.stats.Mode, b.stats.OffTime, b.stats.Supply = opt.Mode.String(), opt.OffTime.String(), opt.Supply
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	if b.ch, err = supply.Open(ctx, opt.Supply, opt.SupplyOptions); err != nil {
		return nil, err
	}
	b.caps = b.ch.Capabilities()
	b.stats.Instrument = b.ch.String()
	if opt.Rate <= 0 {
		opt.Rate = max(5*time.Millisecond, b.caps.MinCommandInterval)
		b.opt.Rate = opt.Rate
	}
	if b.g, err = supply.NewGuard(b.ch, supply.LimitsFromProfile(b.prof)); err != nil {
		return nil, err
	}
	// The highest setpoint is the capacitor's clamp (the model's voltage
	// never goes above it); the current limit the board's maximum.
	vmax := min(b.prof.Power.VmaxV, b.prof.SupplyMaxV)
	if vmax <= 0 {
		vmax = b.prof.SupplyMaxV
	}
	if err := b.g.Prepare(ctx, supply.Plan{MaxVoltage: supply.FromVolts(vmax), CurrentLimit: supply.FromAmps(b.prof.SupplyMaxA)}); err != nil {
		return nil, err
	}
	if opt.StartDeadman != nil {
		if b.dm, err = opt.StartDeadman(opt.Supply); err != nil {
			return nil, fmt.Errorf("bench: the deadman: %w", err)
		}
	}
	if emubench.Renice(0, emubench.Boost) {
		b.logf("the harness runs at nice %d", emubench.Boost)
	}
	if b.l, err = link.Open(ctx, link.Config{Path: opt.Port, Baud: opt.Baud}); err != nil {
		return nil, fmt.Errorf("bench: port %s: %w", opt.Port, err)
	}
	b.drv = serialboard.New(b.l, serialboard.Config{Tasks: len(d.Plan.Tasks), OutputBytes: len(d.Want), Logf: opt.Logf})
	if err := b.calibrate(ctx); err != nil {
		return nil, err
	}
	if err := b.warmUp(ctx); err != nil {
		return nil, err
	}
	if err := b.setOutput(ctx, false); err != nil {
		return nil, err
	}
	b.offWall, b.offModel = time.Now(), 0
	b.st = off
	return b, nil
}

func (b *Board) logf(format string, args ...any) {
	if b.opt.Logf != nil {
		b.opt.Logf(format, args...)
	}
}

// calibrate measures the boot latency: the output switched on at the
// turn-on voltage, the BOOT's arrival, the output off for MinOff; the
// median of Calibrations.
func (b *Board) calibrate(ctx context.Context) error {
	if err := b.setVoltage(ctx, b.prof.Power.VonV); err != nil {
		return err
	}
	var lat []time.Duration
	for i := range b.opt.Calibrations + 1 {
		b.drainEvents()
		w, err := b.switchOn(ctx)
		if err != nil {
			return err
		}
		boot, at, err := b.awaitBootPlain(ctx, b.opt.BootTimeout)
		if err != nil {
			if i == 0 {
				return fmt.Errorf("bench: no BOOT on %s within %v of the output of %s going on: check that the board runs the wire firmware, its wiring and the port: %w",
					b.opt.Port, b.opt.BootTimeout, b.opt.Supply, err)
			}
			return fmt.Errorf("bench: calibration power-on %d: %w", i+1, err)
		}
		if boot.Cycles > 0 {
			b.bootCycles = boot.Cycles
		}
		// The latency besides the boot's own time, which the BOOT says:
		// the supply's, the board's start-up and the line's (and, with the
		// board's own capacitor, its charge from brown-out to turn-on at
		// the current limit, which is the model's to say).
		lat = append(lat, at.Sub(w)-b.bootTime(boot)-b.chargeTime())
		if i < b.opt.Calibrations {
			if err := b.setOutput(ctx, false); err != nil {
				return err
			}
			if err := supply.Pause(ctx, b.offForReset()); err != nil {
				return err
			}
		}
	}
	// The first power-on also translates the firmware's boot code in
	// QEMU, or warms a real board's caches: not counted.
	lat = lat[1:]
	slices.Sort(lat)
	b.bootLatency = lat[len(lat)/2]
	b.stats.BootLatencyS = b.bootLatency.Seconds()
	b.stats.BootLatencySpreadS = (lat[len(lat)-1] - lat[0]).Seconds()
	b.logf("boot latency %v besides the boot's own %d cycles (spread %v over %d power-ons after the first)", b.bootLatency, b.bootCycles, lat[len(lat)-1]-lat[0], len(lat))
	return nil
}

// chargeTime is how long the board's own capacitor (harvester mode) takes
// from brown-out to turn-on at the calibration's current limit.
func (b *Board) chargeTime() time.Duration {
	if b.opt.Mode != Harvester || b.prof.SupplyMaxA <= 0 {
		return 0
	}
	pw := b.prof.Power
	return time.Duration(pw.CapacitanceF * (pw.VonV - pw.VoffV) / b.prof.SupplyMaxA * 1e9)
}

// offForReset is how long the output stays off for the board to reset:
// MinOff, or with the board's own capacitor (harvester mode) three times
// what the board takes to drain it from turn-on to brown-out.
func (b *Board) offForReset() time.Duration {
	if b.opt.Mode != Harvester || b.prof.ActivePowerW <= 0 {
		return b.opt.MinOff
	}
	pw := b.prof.Power
	drain := pw.CapacitanceF * (pw.VonV*pw.VonV - pw.VoffV*pw.VoffV) / 2 / b.prof.ActivePowerW
	return max(b.opt.MinOff, time.Duration(3*drain*1e9))
}

// awaitBootPlain waits for a BOOT outside an inference.
func (b *Board) awaitBootPlain(ctx context.Context, within time.Duration) (*wire.Boot, time.Time, error) {
	t := time.NewTimer(within)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, time.Time{}, ctx.Err()
		case <-t.C:
			return nil, time.Time{}, fmt.Errorf("no BOOT within %v", within)
		case ev, ok := <-b.l.Events():
			if !ok {
				return nil, time.Time{}, errors.New("the serial link closed")
			}
			if boot, isBoot := ev.Msg.(*wire.Boot); isBoot && ev.Kind == link.BoardEvent {
				return boot, ev.Time, nil
			}
		}
	}
}

// drainEvents drops the events read so far (outside an inference).
func (b *Board) drainEvents() {
	b.backlog = nil
	for {
		select {
		case <-b.l.Events():
		default:
			return
		}
	}
}

// warmUp runs one inference on bench power (the output on at the turn-on
// voltage): its output is verified, each task's cycles are the engine's
// price list, and SET_INPUT + START's time is the price of loading an input.
func (b *Board) warmUp(ctx context.Context) error {
	id, err := b.drv.Hello(ctx)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	b.logf("board %s on %s", id.Name, b.opt.Port)
	t0 := time.Now()
	if err := b.l.SetInput(ctx, b.dep.Input); err != nil {
		return fmt.Errorf("bench: warm-up: SET_INPUT: %w", err)
	}
	t1 := time.Now()
	ses, err := b.drv.Begin(ctx, b.number, nil)
	if err != nil {
		return fmt.Errorf("bench: warm-up: %w", err)
	}
	b.inputIO, b.startIO = t1.Sub(t0), time.Since(t1)
	cycles := make([]uint32, len(b.dep.Plan.Tasks))
	var first, last time.Time
	var between float64 // the cycles of the tasks after the first
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for !ses.Finished() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return errors.New("bench: warm-up on bench power: no RESULT within 30 s")
		case ev, ok := <-b.l.Events():
			if !ok {
				return errors.New("bench: warm-up: the serial link closed")
			}
			u, err := ses.Handle(ev)
			if err != nil {
				return fmt.Errorf("bench: warm-up: %w", err)
			}
			if u.Boot != nil {
				return fmt.Errorf("bench: warm-up on bench power: the board rebooted (BOOT reason %d): its supply or its firmware is not steady", u.Boot.Reason)
			}
			if u.Task >= 0 && u.Task < len(cycles) {
				cycles[u.Task] = u.Cycles
				if first.IsZero() {
					first = ev.Time
				} else {
					between += b.secs(u.Cycles)
				}
				last = ev.Time
			}
		}
	}
	t2 := time.Now()
	out, err := ses.Output(ctx)
	if err != nil {
		return fmt.Errorf("bench: warm-up: %w", err)
	}
	b.readIO = time.Since(t2)
	if ok, why := serialboard.Verify(out, b.dep.Want); !ok {
		return fmt.Errorf("bench: warm-up on bench power: %s", why)
	}
	for i, c := range cycles {
		if c == 0 {
			return fmt.Errorf("bench: warm-up on bench power: no TASK_DONE for task %d of %d: the board runs another plan", i, len(cycles))
		}
	}
	b.taskCycles = cycles
	// What a task takes on the wall clock beyond its cycles: the board's
	// events and its loop between tasks (the open-loop modes' clock).
	if n := len(cycles); n > 1 {
		b.taskOverhead = max(0, (last.Sub(first).Seconds()-between)/float64(n-1))
	}
	// The board must run the replay's plan: its NVM holds the tag of the
	// plan it runs.
	tag, err := b.l.ReadNVM(ctx, plan.PlanTagOffset, 4)
	if err != nil {
		return fmt.Errorf("bench: reading the board's plan tag: %w", err)
	}
	if got, want := uint32(tag[0])|uint32(tag[1])<<8|uint32(tag[2])<<16|uint32(tag[3])<<24, b.dep.Plan.Tag(); got != want {
		return fmt.Errorf("bench: the board runs a plan of tag %#08x, the replay's plan (%s) is %#08x: flash or deploy the replay's plan (harness schedule --image), or schedule for the board's", got, b.dep.Plan.Scheduler, want)
	}
	b.progress = len(b.dep.Plan.Tasks)
	b.logf("warm-up verified in %v; input written in %v, START answered in %v; %d tasks measured, %.3f ms each beyond its cycles", time.Since(t0).Round(time.Millisecond),
		b.inputIO.Round(time.Microsecond), b.startIO.Round(time.Microsecond), len(cycles), b.taskOverhead*1e3)
	return nil
}

// Close switches the output off (a fresh context: the run's may be what
// ended it), checks for a protection trip, and closes the port and the
// supply. The deadman is disarmed only when the output was confirmed off.
func (b *Board) Close() error {
	var errs []error
	if b.harv != nil {
		b.harv.stop()
	}
	if b.g != nil {
		if err := b.g.Shutdown(); err != nil {
			errs = append(errs, err)
		} else if b.dm != nil {
			errs = append(errs, b.dm.Disarm())
		}
	}
	if b.dm != nil {
		errs = append(errs, b.dm.Close())
	}
	if b.l != nil {
		b.l.Close()
	}
	if b.ch != nil {
		b.ch.Close()
	}
	return errors.Join(errs...)
}

// Stats says what the bench did so far.
func (b *Board) Stats() Stats {
	s := b.stats
	if s.streamOn > 0 {
		s.SetpointRateHz = float64(s.Setpoints) / s.streamOn.Seconds()
	}
	if s.lagN > 0 {
		s.LagS /= float64(s.lagN)
	}
	if b.harv != nil {
		b.harv.mu.Lock()
		s.CurrentLimits = b.harv.sent
		b.harv.mu.Unlock()
	}
	if c, ok := b.ch.(interface {
		Client() interface{ Reconnects() int }
	}); ok {
		s.Reconnects += c.Client().Reconnects()
	}
	return s
}

// TaskCycles implements boards.TaskCycler: the warm-up's cycles.
func (b *Board) TaskCycles() []uint32 { return b.taskCycles }

// SenseSupply implements boards.SupplySensor: the model's voltage, which
// the gate mode's rail follows.
func (b *Board) SenseSupply(volts func() float64) { b.volts = volts }

// ModelClock implements boards.RealTime.
func (b *Board) ModelClock(now func() float64) { b.now = now }

// EdgeErrors implements boards.RealTime.
func (b *Board) EdgeErrors() (commands, evidence []float64) { return b.cmdEdges, b.evEdges }

// wallOf is the wall instant of the model's instant t.
func (b *Board) wallOf(t float64) time.Time {
	if b.curve != nil {
		return b.curve.wall(t)
	}
	if b.harv != nil {
		return b.harv.wall(t)
	}
	return b.anchorWall.Add(time.Duration((t - b.anchorModel) * 1e9))
}

// anchor ties the model's instant t to the wall instant w (gate mode's
// closed loop: the board's events move the model's clock).
func (b *Board) anchor(t float64, w time.Time) {
	if b.fixed {
		return
	}
	b.anchorModel, b.anchorWall = t, w
}

func (b *Board) secs(cycles uint32) float64 { return b.prof.Seconds(float64(cycles)) }

// bootTime is a boot's own time, as its BOOT's cycles say (0 from a board
// whose BOOT does not say).
func (b *Board) bootTime(boot *wire.Boot) time.Duration {
	return time.Duration(b.secs(boot.Cycles) * 1e9)
}

// ---------------------------------------------------------------------------
// The supply, its commands surviving one reconnect.

// retry runs f, and once more after a failure that lost the connection
// (the SCPI client dials again); a second failure is the supply's loss.
func (b *Board) retry(what string, f func() error) error {
	err := f()
	if err == nil {
		return nil
	}
	var te *supply.TripError
	if errors.As(err, &te) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	b.logf("supply: %s: %v: trying again", what, err)
	if err := f(); err != nil {
		return fmt.Errorf("bench: the supply %s is lost (%s failed twice): %w", b.opt.Supply, what, err)
	}
	b.stats.Reconnects++
	return nil
}

func (b *Board) setVoltage(ctx context.Context, v float64) error {
	return b.retry("voltage", func() error { return b.g.SetVoltage(ctx, supply.FromVolts(v)) })
}

func (b *Board) setOutput(ctx context.Context, on bool) error {
	err := b.retry("output", func() error { return b.g.SetOutput(ctx, on) })
	if err == nil {
		b.outputOn = on
	}
	return err
}

// switchOn writes the output-on command and returns the instant it was
// written.
func (b *Board) switchOn(ctx context.Context) (time.Time, error) {
	return b.edge(ctx, true)
}

// edge switches the output and waits until the instrument has carried it
// out (an edge must not be lost with a dropped connection: a command
// written just before the instrument closed the connection is lost
// silently, so a failed wait sends the command again). It returns the
// instant the command was first written.
func (b *Board) edge(ctx context.Context, on bool) (time.Time, error) {
	return b.edgeAt(ctx, on, time.Time{})
}

// edgeAt is edge at the wall instant at (now when zero): the command
// written at that instant (supply.Guard.SwitchAt).
func (b *Board) edgeAt(ctx context.Context, on bool, at time.Time) (time.Time, error) {
	var w time.Time
	err := b.retry("output", func() error {
		t, err := b.g.SwitchAt(ctx, on, at)
		if err != nil {
			return err
		}
		if w.IsZero() {
			w = t
		}
		return b.syncOnce(ctx)
	})
	if err == nil {
		b.outputOn = on
	}
	return w, err
}

// syncOnce waits until the instrument has carried out what was sent.
func (b *Board) syncOnce(ctx context.Context) error {
	if c, ok := b.ch.(interface{ Sync(context.Context) error }); ok {
		return c.Sync(ctx)
	}
	if c, ok := b.ch.(interface{ Client() *scpi.Client }); ok {
		return c.Client().Sync(ctx)
	}
	return nil
}

// ---------------------------------------------------------------------------
// The board contract.

// PowerOn implements boards.Board: the model reached the turn-on voltage.
func (b *Board) PowerOn(ctx context.Context) error {
	t := b.now()
	b.on = nil
	switch b.opt.Mode {
	case Gate:
		wait := b.opt.MinOff
		if b.opt.OffTime == OffReal {
			wait = max(wait, time.Duration((t-b.offModel)*1e9))
		}
		at := b.offWall.Add(wait)
		if !b.started {
			// The run's first turn-on: the model's clock starts here.
			at = time.Now().Add(50 * time.Millisecond)
		}
		if err := b.setVoltage(ctx, b.volts()); err != nil {
			return err
		}
		w, err := b.edgeAt(ctx, true, at)
		if err != nil {
			return err
		}
		b.on = &onEdge{model: at, written: w}
		b.cmdEdges = append(b.cmdEdges, w.Sub(at).Seconds())

		b.anchor(t, at)
		b.lastSent, b.lastSetp = b.volts(), w
	case Curve:
		// The list raises the rail by itself at its edge nearest to t.
		e := b.curve.edgeError(t, true)
		b.cmdEdges = append(b.cmdEdges, e)
		if math.Abs(e) > curveSlack {
			return b.offCurve("a turn-on", t, t+e)
		}
		b.on = &onEdge{model: b.wallOf(t).Add(time.Duration(e * 1e9))}
	case Harvester:
		b.on = &onEdge{model: b.wallOf(t)}
	}
	b.started = true
	b.st = booting
	return nil
}

// Next implements boards.Board.
func (b *Board) Next(_ context.Context, avail float64) (boards.Step, bool, error) {
	if b.stepOpen {
		return b.step, true, nil
	}
	p := b.prof
	var s boards.Step
	switch b.st {
	case booting:
		s = b.bootStep()
	case atTask:
		s = b.taskStep(avail)
	case idle:
		if b.pending == nil || b.ses != nil {
			return boards.Step{Kind: boards.Idle, Task: -1, Power: p.SleepPowerW}, false, nil
		}
		s = b.loadStep(len(b.pending))
	default:
		return boards.Step{}, false, errors.New("bench: Next while the board is off")
	}
	b.step, b.stepOpen = s, true
	b.stepModel, b.stepV = b.now(), b.volts()
	b.stepWall = b.wallOf(b.stepModel)
	return s, true, nil
}

func mkStep(k boards.StepKind, task int, secs, power float64) boards.Step {
	return boards.Step{Kind: k, Task: task, Seconds: secs, Power: power, Energy: secs * power}
}

// taskStep is the task the board runs next, or, with the run-time rule,
// what the rule on the board decides reading the model's voltage.
func (b *Board) taskStep(avail float64) boards.Step {
	s := b.ruleStep(b.task, b.committed, b.woke, avail)
	if s.Kind == boards.Task {
		b.woke = false
	}
	return s
}

// ruleStep is task k's step (priced by the warm-up's cycles), or what the
// run-time rule decides before it with avail joules above brown-out, the
// progress word at committed and woke after its sleep: the rule of
// boards/sim, which the firmware's image carries the numbers of, so that
// the model follows the board.
func (b *Board) ruleStep(k, committed int, woke bool, avail float64) boards.Step {
	pl, p := b.dep.Plan, b.prof
	secs := b.secs(b.taskCycles[k])
	if b.opt.Mode != Gate {
		secs += b.taskOverhead // open loop: the supply's clock runs on between tasks
	}
	task := mkStep(boards.Task, k, secs, p.ActivePowerW)
	if !pl.RuntimeRule || woke {
		return task
	}
	t := &pl.Tasks[k]
	last := &pl.Tasks[len(pl.Tasks)-1]
	need := t.Energy + pl.SenseEnergy
	if !t.Commit {
		need += last.CommitEnergy
	}
	if avail >= need || need > 0.95*pl.Budget {
		return task
	}
	if committed < k {
		secs := p.Seconds(last.CommitCycles)
		return boards.Step{Kind: boards.EarlyCommit, Task: k, Seconds: secs, Power: last.CommitEnergy / math.Max(secs, 1e-9), Energy: last.CommitEnergy}
	}
	return boards.Step{Kind: boards.Sleep, Task: -1, Power: p.SleepPowerW}
}

// loadStep is the step of loading an input of n bytes: written into NVM by
// the board, priced as the simulated board prices it. On the bench the
// host's SET_INPUT and START are set-up: the rail holds while they run (in
// every mode: the gate mode's model waits, the curve's list holds its last
// level until the next segment, the harvester's supply holds the rail).
func (b *Board) loadStep(n int) boards.Step {
	p := b.prof
	elems := float64((n + 1) / 2)
	e, c := p.NVMWrite.Energy(elems), p.NVMWrite.Cycles(elems)
	s := boards.Step{Kind: boards.LoadInput, Task: -1, Seconds: p.Seconds(c), Energy: e}
	if s.Seconds > 0 {
		s.Power = s.Energy / s.Seconds
	}
	return s
}

// bootStep is a boot: its BOOT's cycles, and the rest of the time from the
// rail's rise to the BOOT that the calibration measured (the chip's
// start-up before its cycle counter runs, the line): the board is powered
// and drawing all along.
func (b *Board) bootStep() boards.Step {
	secs := b.prof.Reboot.Seconds
	if b.bootCycles > 0 {
		secs = b.secs(b.bootCycles) + b.bootLatency.Seconds()
	}
	return mkStep(boards.Boot, -1, secs, b.prof.ActivePowerW)
}

// Complete implements boards.Board: the step ran to its end in the model;
// on the bench, its event is awaited in real time.
func (b *Board) Complete(ctx context.Context) (boards.Event, error) {
	defer func() { b.stepOpen = false }()
	end := b.now()
	deadline := b.wallOf(end)
	switch b.step.Kind {
	case boards.Boot:
		return b.completeBoot(ctx, end, deadline)
	case boards.LoadInput:
		return b.load(ctx, end)
	case boards.Task:
		return b.completeTask(ctx, end, deadline)
	case boards.EarlyCommit:
		// The board's early COMMIT comes with its task's TASK_DONE: in
		// the model it is done at its end.
		if err := b.waitStreaming(ctx, deadline); err != nil {
			return boards.Event{}, err
		}
		b.anchor(end, deadline)
		b.committed = b.task
		return boards.Event{Kind: boards.EarlyCommit, Task: b.task, Committed: true}, nil
	case boards.Sleep:
		return b.completeSleep(ctx, end, deadline)
	}
	return boards.Event{}, fmt.Errorf("bench: Complete of a %s step", b.step.Kind)
}

// BrownOut implements boards.Board: the model fell to brown-out after
// fraction of the step; the output goes off at that wall instant.
func (b *Board) BrownOut(ctx context.Context, _ float64) error {
	b.stepOpen = false
	t := b.now()
	at := b.wallOf(t)
	if err := b.waitStreaming(ctx, at.Add(-12*time.Millisecond)); err != nil {
		return err
	}
	if b.st == atTask && b.step.Kind == boards.Task && b.sawTaskDone(b.step.Task) {
		b.stats.LateCuts++
	}
	switch b.opt.Mode {
	case Gate:
		w, err := b.edgeAt(ctx, false, at)
		if err != nil {
			return err
		}
		b.cmdEdges = append(b.cmdEdges, w.Sub(at).Seconds())
	case Curve:
		e := b.curve.edgeError(t, false)
		b.cmdEdges = append(b.cmdEdges, e)
		if math.Abs(e) > curveSlack {
			return b.offCurve("a brown-out", t, t+e)
		}
	case Harvester:
		// The board's own power management cut it: nothing to command.
	}
	b.offWall, b.offModel = at, t
	b.st = off
	b.sleeping = false
	return nil
}

// QueueInput implements boards.Board.
func (b *Board) QueueInput(_ context.Context, input []byte) error {
	if len(input) != b.dep.Model.InputTensor().Bytes() {
		return fmt.Errorf("bench: input is %d bytes, the model needs %d", len(input), b.dep.Model.InputTensor().Bytes())
	}
	b.pending = input
	return nil
}

// Running implements boards.Board.
func (b *Board) Running() bool { return b.ses != nil && !b.ses.Finished() }

// Loading implements boards.Board.
func (b *Board) Loading() bool { return b.pending != nil && b.ses == nil }

// Progress implements boards.Board.
func (b *Board) Progress() int { return b.progress }

// Prepare readies the supply for the replay cfg (whose Board is b), just
// before replay.Run: the curve mode compiles and uploads its list and
// triggers it, the harvester mode starts streaming the trace, both fixing
// the map from the model's clock to the wall clock at that instant; the
// harvester mode also sets cfg's initial capacitor voltage to the board's
// own capacitor's. The gate mode needs nothing.
func (b *Board) Prepare(ctx context.Context, cfg *replay.Config) error {
	switch b.opt.Mode {
	case Curve:
		return b.prepareCurve(ctx, *cfg)
	case Harvester:
		return b.prepareHarvester(ctx, cfg)
	}
	return nil
}
