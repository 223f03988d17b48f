// Package emubench is a whole bench in emulation, for CI: an emulated
// programmable supply (boards/supply/emulator) whose output powers the
// STM32 wire firmware in QEMU, which runs in real time. The harness drives
// it as it drives a real bench: SCPI to the supply, the wire protocol on the
// board's serial port (a pseudo-terminal).
//
// What it models, kept apart as labgrid keeps resources and drivers:
//
//   - the instrument: a strict SCPI emulator of a dialect, with its output
//     events (Config.OnChange) and its measurements;
//   - the rail between the output and the board (Rail): Direct, the output
//     is the board's supply (a board without a capacitor of its own, whose
//     power a supply gates: gate and curve modes); Capacitor, the board's
//     own capacitor and power management from the device profile (turn-on at
//     Von, brown-out at Voff) charged by the output in constant current
//     (harvester mode), whose voltage MEAS:VOLT? reads;
//   - the board: QEMU with -icount shift=6 (an instruction is 64 ns of
//     the board's time, as for boards/emulated, so its cycle counts are
//     the calibrated profile's) and a TCG plugin (pace/pace.c) that holds
//     the guest to the wall clock: it sleeps whenever the guest is ahead
//     by more than 50 us, and lets it catch up at most 2 ms when it falls
//     behind (QEMU 7.2's -icount align=on does not hold it back: measured,
//     the firmware ran 15 times faster than real time with it). No
//     gdbstub stepping: the firmware runs free. A host too busy to run
//     QEMU when it should makes the board late; it is never early. Power off stops the guest and resets it with its volatile
//     SRAM scrubbed (as boards/emulated does); power on lets it run from
//     its reset vector.
//
// The firmware's supply reading: QEMU's netduinoplus2 has no ADC input, and
// QMP cannot write guest memory, so the gdbstub stops the guest at
// port_supply_mv, writes the rail's voltage into ih_supply_mv and lets it
// go on (about 0.2 ms per reading), from the first time the powered rail
// falls below the turn-on voltage (see maybeArm);
// the run-time rule's sleep (port_sleep_until_charged) halts the CPU until
// the rail is back at the turn-on voltage, as a chip waiting in a low-power
// mode for its supply comparator does. A firmware without those symbols
// runs without them (it reads no supply).
package emubench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/qemu"
	"github.com/batteryless/harness/boards/supply/emulator"
)

// Rail is what sits between the supply's output and the board.
type Rail int

const (
	// Direct: the output is the board's supply; the board runs while the
	// output is on at or above its brown-out reset (the profile's minimum
	// supply less 50 mV).
	Direct Rail = iota
	// Capacitor: the board's own capacitor and power management (the
	// profile's power section) between the output and the board.
	Capacitor
)

func (r Rail) String() string {
	if r == Capacitor {
		return "capacitor"
	}
	return "direct"
}

// ParseRail reads "direct" or "capacitor".
func ParseRail(s string) (Rail, error) {
	switch strings.ToLower(s) {
	case "", "direct":
		return Direct, nil
	case "capacitor":
		return Capacitor, nil
	}
	return Direct, fmt.Errorf("emubench: rail %q: want direct or capacitor", s)
}

// Symbols of the firmware the bench stops at (the same as boards/emulated's).
const (
	symSupply     = "port_supply_mv"
	symSupplyWord = "ih_supply_mv"
	symSleep      = "port_sleep_until_charged"
)

// Config describes an emulated bench.
type Config struct {
	// Dialect and Model of the emulated instrument.
	Dialect, Model string
	// Listen is the SCPI socket's address; default 127.0.0.1:0.
	Listen string
	// Channel is the output that powers the board; default 1.
	Channel int
	// ELF is the STM32 wire firmware. With Image it is the firmware built
	// without a plan (firmware-noplan.elf) and Image is loaded at
	// qemu.PlanAddr; without, the ELF carries its plan.
	ELF   string
	Image []byte
	// Profile gives the rail's thresholds, the board's draw and, for a
	// Capacitor rail, its capacitor.
	Profile *profiles.Profile
	Rail    Rail
	// ICountShift is QEMU's -icount shift (0: qemu.BoardICountShift).
	ICountShift int
	// Timeline, when set, receives the instrument's output events.
	Timeline io.Writer
	// Latency delays every answer of the instrument.
	Latency time.Duration
	// Logf, if set, receives a line per power change and fault.
	Logf func(format string, args ...any)
}

// Stats count what the bench did.
type Stats struct {
	PowerOns, PowerOffs int
	SupplyReadings      int // answered at port_supply_mv
	Sleeps              int // halts at port_sleep_until_charged
}

// Bench is a running emulated bench.
type Bench struct {
	cfg   Config
	in    *emulator.Instrument
	addr  net.Addr
	m     *qemu.Machine
	g     *qemu.GDB
	dir   string
	sym   struct{ supply, word, sleep uint32 }
	rail  *capRail // nil for a Direct rail
	epoch *epoch   // tells the pacing plugin to start counting again

	threshold    float64 // Direct: the brown-out reset
	von          float64 // the turn-on voltage (the rule's sleep ends there)
	activeP      float64
	sleepP       float64
	req          chan request
	stops        chan string  // the gdbstub's stop replies, forwarded
	draws        chan float64 // the board's draw for MEAS:CURR? (the latest only)
	closing      chan struct{}
	loopDone     chan struct{}
	closeOnce    sync.Once
	mu           sync.Mutex // guards the fields below
	powered      bool       // the board is powered
	st           guestState
	dead         bool
	stats        Stats
	failed       error
	lastPowerOff time.Time
	armed        bool // the supply's breakpoints are in
	lastPowerOn  time.Time
	// history is the output's recent states, the last one its state now
	// (a Direct rail): a supply reading is answered with the rail as it
	// was when the guest stopped to take it, not as it is once the bench
	// gets to the stop.
	history []railChange
}

// railChange is the output's state from an instant on.
type railChange struct {
	at    time.Time
	out   bool
	volts float64
}

// historyLen bounds the setpoints kept: at the gate mode's 100 per second,
// over a second's worth, far beyond any stop the bench is late to.
const historyLen = 128

// guestState is where the guest is.
type guestState int

const (
	guestOff      guestState = iota // powered off: stopped after a reset
	guestRunning                    // running free
	guestSleeping                   // halted at the rule's sleep, waiting for the turn-on voltage
	guestHung                       // stopped while powered (Hang)
	guestDead                       // powered, but never started (SetDead)
)

type request struct {
	kind reqKind
	done chan error
}

type reqKind int

const (
	reqOn reqKind = iota
	reqOff
	reqHang
	reqWake // the rail changed: a sleeping guest may wake
	reqArm  // the rail fell below the turn-on voltage: arm the supply's breakpoints
)

// Start starts the instrument and QEMU (the board off: the output is off
// at *RST), and serves the instrument until Close or ctx ends.
func Start(ctx context.Context, cfg Config) (_ *Bench, err error) {
	if cfg.Profile == nil {
		return nil, errors.New("emubench: no device profile")
	}
	if cfg.ELF == "" {
		return nil, errors.New("emubench: no firmware ELF")
	}
	if _, err := os.Stat(cfg.ELF); err != nil {
		return nil, fmt.Errorf("emubench: firmware: %w", err)
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Channel == 0 {
		cfg.Channel = 1
	}
	if cfg.ICountShift == 0 {
		cfg.ICountShift = qemu.BoardICountShift
	}
	p := cfg.Profile
	b := &Bench{cfg: cfg, threshold: p.SupplyMinV - 0.05, von: p.Power.VonV, activeP: p.ActivePowerW, sleepP: p.SleepPowerW,
		req: make(chan request), stops: make(chan string, 4), draws: make(chan float64, 1), closing: make(chan struct{}), loopDone: make(chan struct{})}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	b.sym.supply, _ = qemu.Symbol(cfg.ELF, symSupply)
	b.sym.word, _ = qemu.Symbol(cfg.ELF, symSupplyWord)
	b.sym.sleep, _ = qemu.Symbol(cfg.ELF, symSleep)
	if b.sym.word == 0 {
		b.sym.supply = 0 // nowhere to put a reading
	}

	// The board first: its power follows the instrument's events from
	// the instrument's first command on.
	if b.dir, err = os.MkdirTemp("", "ihbench"); err != nil {
		return nil, fmt.Errorf("emubench: %w", err)
	}
	pace, err := pacePlugin()
	if err != nil {
		return nil, err
	}
	if b.epoch, err = newEpoch(filepath.Join(b.dir, "epoch")); err != nil {
		return nil, err
	}
	qc := qemu.Config{ELF: cfg.ELF, ICountShift: cfg.ICountShift, GDB: true,
		Scrub: &qemu.Scrub{Addr: qemu.SRAMAddr, Pattern: 0xA5},
		Args:  []string{"-plugin", fmt.Sprintf("%s,ns=%d,epoch=%s", pace, int64(1)<<cfg.ICountShift, b.epoch.path)}}
	if cfg.Image != nil {
		plan := filepath.Join(b.dir, "plan.bin")
		if err := os.WriteFile(plan, cfg.Image, 0o600); err != nil {
			return nil, fmt.Errorf("emubench: %w", err)
		}
		qc.Loaders = []qemu.Loader{{File: plan, Addr: qemu.PlanAddr}}
	}
	if b.m, err = qemu.Start(ctx, qc); err != nil {
		return nil, fmt.Errorf("emubench: %w", err)
	}
	// Connecting the gdbstub stops the guest: it stays stopped, reset
	// (scrubbed), until the output powers it.
	if b.g, err = b.m.ConnectGDB(ctx); err != nil {
		return nil, fmt.Errorf("emubench: %w", err)
	}
	if err := b.m.SystemReset(ctx); err != nil {
		return nil, fmt.Errorf("emubench: %w", err)
	}
	go b.forwardStops()
	go b.loop()

	if cfg.Rail == Capacitor {
		b.rail = newCapRail(p, b.railPower)
		b.rail.check = b.maybeArm
	}
	ec := emulator.Config{Dialect: cfg.Dialect, Model: cfg.Model, Timeline: cfg.Timeline, Latency: cfg.Latency,
		Seed: uint64(time.Now().UnixNano()), OnChange: b.onChange}
	if b.in, err = emulator.New(ec); err != nil {
		return nil, err
	}
	if cfg.Channel > b.in.Channels() {
		return nil, fmt.Errorf("emubench: the %s has %d outputs, not %d", b.in.Model(), b.in.Channels(), cfg.Channel)
	}
	if b.rail != nil {
		if err := b.in.SetMeter(cfg.Channel, b.rail.meter); err != nil {
			return nil, err
		}
		go b.rail.run(b.closing)
	}
	go b.feedDraw()
	if b.addr, err = b.in.ServeTCP(ctx, cfg.Listen); err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { b.Close() })
	return b, nil
}

// SCPI is the instrument's socket address (HOST:PORT).
func (b *Bench) SCPI() string { return b.addr.String() }

// URL is the supply URL of the bench's output.
func (b *Bench) URL() string {
	u := "tcp://" + b.addr.String()
	if b.cfg.Channel != 1 {
		u += fmt.Sprintf("?channel=%d", b.cfg.Channel)
	}
	return u
}

// Port is the board's serial port (a pseudo-terminal).
func (b *Bench) Port() string { return b.m.SerialPath() }

// Instrument is the emulated supply (tests inject faults through it).
func (b *Bench) Instrument() *emulator.Instrument { return b.in }

// Machine is the QEMU behind the board.
func (b *Bench) Machine() *qemu.Machine { return b.m }

// Powered reports whether the board has power now.
func (b *Bench) Powered() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.powered
}

// Stats says what the bench did so far.
func (b *Bench) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

// LastPowerOn is when the board was last let run from its reset.
func (b *Bench) LastPowerOn() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastPowerOn
}

// Err is why the bench stopped working (QEMU died, the gdbstub failed), or nil.
func (b *Bench) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failed
}

// Hang stops the guest while it stays powered: a hung board, silent until
// its power is cycled.
func (b *Bench) Hang() error { return b.do(reqHang) }

// SetDead makes power-ons leave the guest stopped (a board that never
// boots: a missing firmware, a broken oscillator) until SetDead(false).
func (b *Bench) SetDead(dead bool) {
	b.mu.Lock()
	b.dead = dead
	b.mu.Unlock()
}

// Close stops serving, and stops QEMU.
func (b *Bench) Close() error {
	b.closeOnce.Do(func() {
		close(b.closing)
		if b.in != nil {
			b.in.Close()
		}
		if b.g != nil {
			b.g.Close()
		}
		if b.m != nil {
			b.m.Close()
		}
		if b.epoch != nil {
			b.epoch.close()
		}
		if b.dir != "" {
			os.RemoveAll(b.dir)
		}
	})
	return nil
}

func (b *Bench) logf(format string, args ...any) {
	if b.cfg.Logf != nil {
		b.cfg.Logf(format, args...)
	}
}

// onChange follows the instrument's output: with a Direct rail it powers
// the board; with a Capacitor rail it sets what charges the capacitor.
// The change takes effect before the instrument goes on to its next
// command.
func (b *Bench) onChange(e emulator.Event) {
	if e.Channel != b.cfg.Channel {
		return
	}
	if e.Kind == "list-step" && e.Detail == "step 1" && b.epoch != nil {
		// A list starts its program just after the host started the
		// board's inference: what the pacing owes from the host's talk
		// before it (the guest polling its UART, code translated for
		// the frames) is not the board's work, and caught up at full
		// speed it would run the board tens of ms ahead of the list.
		b.epoch.bump()
	}
	b.mu.Lock()
	if len(b.history) == historyLen {
		b.history = append(b.history[:0], b.history[historyLen/2:]...)
	}
	b.history = append(b.history, railChange{at: time.Now(), out: e.On, volts: e.Volts})
	b.mu.Unlock()
	if b.rail != nil {
		b.rail.set(e.On, e.Volts, e.Amps)
		return
	}
	powered := e.On && e.Volts >= b.threshold
	draw := 0.0
	if powered && e.Volts > 0 {
		draw = b.activeP / e.Volts
	}
	// What MEAS:CURR? reads; set from another goroutine, as a draw that
	// trips OCP makes an event, which must not come back into this call.
	select {
	case <-b.draws:
	default:
	}
	b.draws <- draw
	if err := b.railPower(powered); err != nil {
		b.logf("%v", err)
	}
	if powered {
		b.maybeArm(e.Volts)
	}
}

// railPower powers the board on or off (no-op when it already is), or
// lets a sleeping guest wake when the rail is back at the turn-on voltage.
func (b *Bench) railPower(on bool) error {
	b.mu.Lock()
	was := b.powered
	b.mu.Unlock()
	switch {
	case on && !was:
		return b.do(reqOn)
	case !on && was:
		return b.do(reqOff)
	case on:
		return b.do(reqWake)
	}
	return nil
}

// do hands a request to the control loop and waits for it.
func (b *Bench) do(k reqKind) error {
	r := request{kind: k, done: make(chan error, 1)}
	select {
	case b.req <- r:
	case <-b.loopDone:
		return b.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-b.loopDone:
		return b.Err()
	}
}

// feedDraw passes the board's draw to the instrument.
func (b *Bench) feedDraw() {
	for {
		select {
		case d := <-b.draws:
			_ = b.in.SetDraw(b.cfg.Channel, d)
		case <-b.closing:
			return
		}
	}
}

// forwardStops passes the gdbstub's stop replies to the loop.
func (b *Bench) forwardStops() {
	for {
		select {
		case s := <-b.g.Stopped():
			select {
			case b.stops <- s:
			case <-b.closing:
				return
			}
		case <-b.closing:
			return
		}
	}
}

// loop owns QEMU and its gdbstub: power changes, faults, and the guest's
// stops at its supply reading and its sleep, one at a time.
func (b *Bench) loop() {
	defer close(b.loopDone)
	for {
		var err error
		select {
		case <-b.closing:
			return
		case <-b.m.Done():
			b.fail(fmt.Errorf("emubench: QEMU exited: %v", b.m.Err()))
			return
		case r := <-b.req:
			err = b.handle(r.kind)
			r.done <- err
		case s := <-b.stops:
			err = b.atStop(s)
		}
		if err != nil {
			b.fail(err)
			b.logf("%v", err)
		}
	}
}

func (b *Bench) fail(err error) {
	b.mu.Lock()
	if b.failed == nil {
		b.failed = err
	}
	b.mu.Unlock()
}

func (b *Bench) state() guestState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st
}

func (b *Bench) setState(s guestState) {
	b.mu.Lock()
	b.st = s
	b.mu.Unlock()
}

// handle carries out a request in the loop.
func (b *Bench) handle(k reqKind) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	switch k {
	case reqOn:
		b.mu.Lock()
		b.powered = true
		b.stats.PowerOns++
		dead := b.dead
		b.mu.Unlock()
		if dead {
			b.setState(guestDead)
			b.logf("power on: the board is dead (fault): it stays stopped")
			return nil
		}
		if b.state() != guestOff {
			return nil
		}
		b.setState(guestRunning)
		b.epoch.bump() // the time it was off is not owed
		b.mu.Lock()
		b.lastPowerOn = time.Now()
		b.mu.Unlock()
		return b.g.Continue()
	case reqOff:
		b.mu.Lock()
		b.powered = false
		b.stats.PowerOffs++
		b.lastPowerOff = time.Now()
		b.mu.Unlock()
		if err := b.halt(); err != nil {
			return err
		}
		b.setState(guestOff)
		// The reset re-applies the scrub: the volatile SRAM is lost, the
		// NVM region kept; the guest stays stopped at its reset vector.
		return b.m.SystemReset(ctx)
	case reqHang:
		if b.state() != guestRunning {
			return fmt.Errorf("emubench: hang: the board is not running")
		}
		if err := b.halt(); err != nil {
			return err
		}
		b.setState(guestHung)
		b.logf("the board hangs (fault): stopped while powered")
		return nil
	case reqWake:
		if b.state() == guestSleeping && b.railVolts() >= b.von-1e-6 {
			return b.resume(b.sym.sleep)
		}
	case reqArm:
		b.mu.Lock()
		armed := b.armed
		b.mu.Unlock()
		if armed || (b.sym.supply == 0 && b.sym.sleep == 0) {
			return nil
		}
		running := b.state() == guestRunning
		if err := b.halt(); err != nil {
			return err
		}
		for _, a := range []uint32{b.sym.supply, b.sym.sleep} {
			if a != 0 {
				if err := b.g.Break(a); err != nil {
					return fmt.Errorf("emubench: %w", err)
				}
			}
		}
		b.mu.Lock()
		b.armed = true
		b.mu.Unlock()
		b.logf("the rail fell below the turn-on voltage: the firmware's supply readings are answered from now on")
		if running {
			return b.g.Continue()
		}
	}
	return nil
}

// maybeArm arms the supply's breakpoints the first time the powered rail
// is below the turn-on voltage. Until then the firmware's reading returns
// 0 ("cannot measure": its rule runs every task, as it would at the
// turn-on voltage): a bench's calibration and warm-up run on steady power
// at the turn-on voltage, and every gdbstub stop lets QEMU's -icount clock
// jump to its next timer deadline, which would inflate the cycles the
// warm-up measures (the engine's price list; measured: task 0 of the
// adaptive plan counted 18.9 M cycles instead of 10.3 M).
func (b *Bench) maybeArm(v float64) {
	b.mu.Lock()
	need := !b.armed && b.powered && v < b.von-1e-3 && (b.sym.supply != 0 || b.sym.sleep != 0)
	b.mu.Unlock()
	if need {
		if err := b.do(reqArm); err != nil {
			b.logf("%v", err)
		}
	}
}

// halt stops a running guest and waits for its stop (a stop at a
// breakpoint that raced the interrupt is as good).
func (b *Bench) halt() error {
	if b.state() != guestRunning {
		return nil
	}
	if err := b.g.Interrupt(); err != nil {
		return fmt.Errorf("emubench: gdbstub interrupt: %w", err)
	}
	select {
	case s := <-b.stops:
		if strings.HasPrefix(s, "E:") {
			return fmt.Errorf("emubench: gdbstub: %s", s[2:])
		}
		return nil
	case <-b.m.Done():
		return fmt.Errorf("emubench: QEMU exited: %v", b.m.Err())
	case <-time.After(5 * time.Second):
		return errors.New("emubench: the guest did not stop within 5 s")
	}
}

// resume lets a guest stopped at breakpoint addr go on.
func (b *Bench) resume(addr uint32) error {
	if err := b.g.StepOverBreak(addr); err != nil {
		return fmt.Errorf("emubench: %w", err)
	}
	if addr == b.sym.sleep {
		if b.rail != nil {
			b.rail.setSleeping(false)
		}
		b.epoch.bump() // nor the time it slept
	}
	b.setState(guestRunning)
	return b.g.Continue()
}

// railVolts is the board's supply voltage now.
func (b *Bench) railVolts() float64 { return b.railVoltsAt(time.Now()) }

// railVoltsAt is the board's supply voltage at instant t (now, for a
// Capacitor rail, whose board reads it as it stops): the output's setpoint
// then, by its history (the oldest kept, for an instant before it; off,
// as at *RST, before any change).
func (b *Bench) railVoltsAt(t time.Time) float64 {
	if b.rail != nil {
		return b.rail.volts()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.history) - 1; i >= 0; i-- {
		if c := b.history[i]; !c.at.After(t) || i == 0 {
			if !c.out {
				return 0
			}
			return c.volts
		}
	}
	return 0
}

// atStop handles a stop of the running guest at one of its breakpoints.
func (b *Bench) atStop(s string) error {
	if strings.HasPrefix(s, "E:") {
		return fmt.Errorf("emubench: gdbstub: %s", s[2:])
	}
	if b.state() != guestRunning {
		return nil // (a stop the loop already waited for)
	}
	pc, err := b.g.ReadRegister(15)
	if err != nil {
		return fmt.Errorf("emubench: %w", err)
	}
	switch {
	case b.sym.supply != 0 && pc == b.sym.supply&^1:
		mv := uint16(min(math.Round(b.railVoltsAt(b.g.StoppedAt())*1000), math.MaxUint16))
		var w [2]byte
		binary.LittleEndian.PutUint16(w[:], mv)
		if err := b.g.WriteMemory(b.sym.word, w[:]); err != nil {
			return fmt.Errorf("emubench: %w", err)
		}
		b.mu.Lock()
		b.stats.SupplyReadings++
		b.mu.Unlock()
		return b.resume(b.sym.supply)
	case b.sym.sleep != 0 && pc == b.sym.sleep&^1:
		b.mu.Lock()
		b.stats.Sleeps++
		b.st = guestSleeping
		b.mu.Unlock()
		if b.rail != nil {
			b.rail.setSleeping(true)
		}
		if b.railVolts() >= b.von-1e-6 {
			return b.resume(b.sym.sleep)
		}
		return nil
	}
	b.logf("the guest stopped at %#x, at none of the bench's breakpoints (%q): going on", pc, s)
	return b.g.Continue()
}
