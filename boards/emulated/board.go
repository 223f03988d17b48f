// Package emulated is the emulated board: the real STM32 firmware in QEMU,
// behind the board contract (boards.Board), so that the replay engine runs
// it as it runs the simulated board. Three parts, kept apart as labgrid keeps
// resources, drivers and strategies:
//
//   - the resource: QEMU (boards/qemu), owning the process, its serial pty,
//     QMP (reset, with the volatile SRAM scrubbed) and its gdbstub;
//   - the driver: the wire firmware's driver (boards/serialboard) over the
//     serial line (harness/link): the input, START, the board's events, the
//     output;
//   - the strategy, which is the engine's: the power model decides when the
//     board is on. This package lets it decide at exact instructions: QEMU's
//     gdbstub stops the guest at the start of every task, where the board
//     says what it does next (the task, priced by its cycles as the warm-up
//     inference measured them: -icount makes them the same in every run),
//     and the engine either lets it run to its next stop (Complete) or cuts
//     its power there (BrownOut: a reset that scrubs the SRAM).
//
// Time: the power model's time is the board's virtual time; a stop costs no
// simulated time, and the host's own I/O (writing an input, reading an
// output) happens while the guest idles, off the books, as on a bench whose
// host talks to the board between tasks. Off time costs no wall time.
//
// The firmware reads its supply (the run-time rule) from a word the harness
// writes when the guest stops at port_supply_mv: the modelled capacitor's
// voltage at that instant. Its sleep until the capacitor is charged is a
// stop at port_sleep_until_charged, where the engine charges the capacitor
// back to the turn-on voltage.
package emulated

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/qemu"
	"github.com/batteryless/harness/boards/serialboard"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/wire"
)

// Symbols of the firmware the board stops at.
const (
	// symTaskBegin is called after the run-time rule, before a task's work,
	// with the task's index in r0.
	symTaskBegin = "ih_task_begin"
	// symTaskGet is the fallback of a firmware without ih_task_begin: the
	// task's index is in r1 (ih_task_get(&img, index, &task)).
	symTaskGet = "ih_task_get"
	// symSupply is the port's supply reading, and symSupplyWord the word
	// it returns (millivolts, 0 without a reading).
	symSupply     = "port_supply_mv"
	symSupplyWord = "ih_supply_mv"
	// symSleep is the port's sleep until the capacitor is charged.
	symSleep = "port_sleep_until_charged"
)

// Options of an emulated board.
type Options struct {
	// ELF is the STM32 wire firmware built without a plan
	// (firmware-noplan.elf); the plan image is loaded at qemu.PlanAddr.
	ELF string
	// HangTimeout: a step that brings no stop and no event for this long
	// (wall) is a hang; default 5 s.
	HangTimeout time.Duration
	// NoScrub keeps the volatile SRAM across power failures (unlike a real
	// chip): the control of the test that shows the scrub matters.
	NoScrub bool
	// CounterHz is the firmware's cycle counter rate in virtual time;
	// default qemu.CounterHz.
	CounterHz float64
	// Logf, if set, receives one line per decision and board event.
	Logf func(format string, args ...any)
	// QEMUStarted, if set, is called with the running machine (tests kill it).
	QEMUStarted func(*qemu.Machine)
}

// state is where the guest is, as the engine sees it.
type state int

const (
	off     state = iota // reset and stopped: no power
	booting              // powered, stopped at the reset vector: its next step is the boot
	idle                 // booted, nothing running: the guest waits for commands
	atTask               // stopped at the start of a task's work
	atSleep              // stopped at the rule's sleep
)

// Board is the emulated STM32 behind boards.Board.
type Board struct {
	opt  Options
	dep  boards.Deployment
	m    *qemu.Machine
	g    *qemu.GDB
	l    *link.Link
	drv  *serialboard.Board
	dir  string
	addr struct{ task, supply, supplyWord, sleep uint32 }
	// taskReg is the register that holds the task index at the task stop.
	taskReg int

	st         state
	task       int      // atTask: the task about to run
	taskCycles []uint32 // each task's cycles, measured by the warm-up
	bootCycles uint32   // the last BOOT's cycles
	ses        *serialboard.Session
	pending    []byte // input to load
	number     uint32 // the last inference number started
	progress   int    // the progress word, as the board's events told it
	volts      func() float64
	events     int // board events seen, for the hang timer
}

// Open starts QEMU with the firmware and the deployment's plan image, runs
// a warm-up inference on bench power (which checks the board computes the
// reference's numbers and measures every task's cycles), and leaves the
// board off, ready for the engine.
func Open(ctx context.Context, d boards.Deployment, opt Options) (_ *Board, err error) {
	if d.Plan == nil || d.Profile == nil || len(d.Want) == 0 || len(d.Image) == 0 {
		return nil, errors.New("emulated: the deployment needs a plan, its image, a profile and the reference output")
	}
	if opt.HangTimeout <= 0 {
		opt.HangTimeout = 5 * time.Second
	}
	if opt.CounterHz <= 0 {
		opt.CounterHz = qemu.CounterHz
	}
	b := &Board{opt: opt, dep: d, task: -1, progress: 0}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	if err := b.findSymbols(); err != nil {
		return nil, err
	}
	if b.m, b.dir, err = startMachine(ctx, opt.ELF, d.Image, opt.NoScrub, true); err != nil {
		return nil, err
	}
	if opt.QEMUStarted != nil {
		opt.QEMUStarted(b.m)
	}
	if b.g, err = b.m.ConnectGDB(ctx); err != nil {
		return nil, b.died(err)
	}
	if b.l, err = link.Open(ctx, link.Config{Path: b.m.SerialPath()}); err != nil {
		return nil, b.died(err)
	}
	b.drv = serialboard.New(b.l, serialboard.Config{Tasks: len(d.Plan.Tasks), OutputBytes: len(d.Want), HangTimeout: opt.HangTimeout, Logf: opt.Logf})
	if err := b.g.Continue(); err != nil {
		return nil, b.died(err)
	}
	// QEMU dying during the warm-up ends it at once.
	wctx, cancel := b.whileAlive(ctx)
	defer cancel()
	if err := b.warmUp(wctx); err != nil {
		return nil, b.died(err)
	}
	return b, nil
}

// whileAlive is ctx, also canceled when QEMU exits: a command waiting for
// the board's answer would otherwise go through all of the link's retries
// (seconds) before it fails.
func (b *Board) whileAlive(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-b.m.Done():
			cancel()
		case <-wctx.Done():
		}
	}()
	return wctx, cancel
}

// startMachine starts QEMU with the firmware elf, the plan image loaded at
// qemu.PlanAddr, the SRAM scrub at every reset (unless noScrub) and, with
// gdb, its gdbstub; dir holds the image (remove it after Close).
func startMachine(ctx context.Context, elf string, image []byte, noScrub, gdb bool) (m *qemu.Machine, dir string, err error) {
	if dir, err = os.MkdirTemp("", "ihemu"); err != nil {
		return nil, "", fmt.Errorf("emulated: %w", err)
	}
	planFile := filepath.Join(dir, "plan.bin")
	if err := os.WriteFile(planFile, image, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("emulated: %w", err)
	}
	qc := qemu.Config{ELF: elf, ICountShift: qemu.BoardICountShift, GDB: gdb,
		Loaders: []qemu.Loader{{File: planFile, Addr: qemu.PlanAddr}}}
	if !noScrub {
		qc.Scrub = &qemu.Scrub{Addr: qemu.SRAMAddr, Pattern: 0xA5}
	}
	if m, err = qemu.Start(ctx, qc); err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("emulated: %w", err)
	}
	return m, dir, nil
}

// findSymbols finds the firmware's functions the board stops at.
func (b *Board) findSymbols() error {
	var err error
	if b.addr.task, err = qemu.Symbol(b.opt.ELF, symTaskBegin); err == nil {
		b.taskReg = 0
	} else if b.addr.task, err = qemu.Symbol(b.opt.ELF, symTaskGet); err == nil {
		b.taskReg = 1
	} else {
		return fmt.Errorf("emulated: the firmware has neither %s nor %s to stop at: %w", symTaskBegin, symTaskGet, err)
	}
	if !b.dep.Plan.ReadsSupply() {
		return nil
	}
	// A plan with the run-time rule needs the supply reading.
	for _, s := range []struct {
		name string
		addr *uint32
	}{{symSupply, &b.addr.supply}, {symSupplyWord, &b.addr.supplyWord}, {symSleep, &b.addr.sleep}} {
		if *s.addr, err = qemu.Symbol(b.opt.ELF, s.name); err != nil {
			return fmt.Errorf("emulated: the plan has the run-time rule (%s), but this firmware cannot be given its supply voltage: %w", b.dep.Plan.Scheduler, err)
		}
	}
	return nil
}

// warmUp runs inference 1 on bench power, checks its output and keeps its
// tasks' cycles; then it stops the guest, sets the breakpoints and resets
// the board (off). The breakpoints go in only now: a stop makes QEMU's
// -icount clock jump to its next timer deadline, which would inflate the
// cycles the warm-up measures, the engine's price list.
func (b *Board) warmUp(ctx context.Context) error {
	id, err := b.drv.Hello(ctx)
	if err != nil {
		return err
	}
	b.logf("board %s, image %d bytes", id.Name, len(b.dep.Image))
	bench := &serialboard.Bench{Reset: func(ctx context.Context) error { return b.m.SystemReset(ctx) }}
	inf, err := b.drv.Infer(ctx, 1, b.dep.Input, bench, func(ev link.Event) {
		if boot, ok := ev.Msg.(*wire.Boot); ok && boot.Cycles > 0 {
			b.bootCycles = boot.Cycles
		}
	})
	if err != nil {
		return fmt.Errorf("warm-up on bench power: %w", err)
	}
	if ok, why := serialboard.Verify(inf.Output, b.dep.Want); !ok {
		return fmt.Errorf("warm-up on bench power: %s", why)
	}
	b.number = 1
	b.taskCycles = make([]uint32, len(b.dep.Plan.Tasks))
	for _, t := range inf.Tasks {
		if int(t.Task) < len(b.taskCycles) {
			b.taskCycles[t.Task] = t.Cycles
		}
	}
	for i, c := range b.taskCycles {
		if c == 0 {
			return fmt.Errorf("warm-up on bench power: no TASK_DONE for task %d", i)
		}
	}
	// The warm-up's first boot checked the image's CRC (the first boot of
	// an image does, once); every boot of the replay will not, so the
	// price of a boot is that of one more.
	if err := b.warmBoot(ctx); err != nil {
		return fmt.Errorf("warm-up on bench power: %w", err)
	}
	if err := b.stop(ctx); err != nil {
		return err
	}
	for _, a := range []uint32{b.addr.task, b.addr.supply, b.addr.sleep} {
		if a != 0 {
			if err := b.g.Break(a); err != nil {
				return err
			}
		}
	}
	if err := b.m.SystemReset(ctx); err != nil {
		return err
	}
	b.st = off
	b.logf("warm-up verified; %d tasks measured; boot %d cycles", len(b.taskCycles), b.bootCycles)
	return nil
}

// warmBoot resets the running guest on bench power and keeps the cycles of
// the BOOT that follows (the guest then idles: nothing runs).
func (b *Board) warmBoot(ctx context.Context) error {
	if err := b.m.SystemReset(ctx); err != nil {
		return err
	}
	hang := time.NewTimer(b.opt.HangTimeout)
	defer hang.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.m.Done():
			return errors.New("QEMU exited")
		case <-hang.C:
			return fmt.Errorf("no BOOT within %v of a reset", b.opt.HangTimeout)
		case ev, ok := <-b.l.Events():
			if !ok {
				return errors.New("the serial link closed")
			}
			if boot, isBoot := ev.Msg.(*wire.Boot); isBoot && ev.Kind == link.BoardEvent {
				if boot.Cycles > 0 {
					b.bootCycles = boot.Cycles
				}
				b.logf("warm boot: %d cycles", boot.Cycles)
				return nil
			}
		}
	}
}

// Close stops QEMU and removes its files.
func (b *Board) Close() error {
	if b.l != nil {
		b.l.Close()
	}
	if b.g != nil {
		b.g.Close()
	}
	var err error
	if b.m != nil {
		err = b.m.Close()
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
	return err
}

// Machine is the QEMU behind the board.
func (b *Board) Machine() *qemu.Machine { return b.m }

// TaskCycles implements boards.TaskCycler: each task's cycles as the
// warm-up inference measured them.
func (b *Board) TaskCycles() []uint32 { return b.taskCycles }

// SenseSupply implements boards.SupplySensor.
func (b *Board) SenseSupply(volts func() float64) { b.volts = volts }

// Link is the serial link's counters.
func (b *Board) Link() link.Stats { return b.l.Stats() }

func (b *Board) logf(format string, args ...any) {
	if b.opt.Logf != nil {
		b.opt.Logf(format, args...)
	}
}

// secs is the board time of n cycles.
func (b *Board) secs(n uint32) float64 { return float64(n) / b.opt.CounterHz }

// died names QEMU's death as the cause when it is one.
func (b *Board) died(err error) error {
	if b.m != nil {
		select {
		case <-b.m.Done():
		case <-time.After(200 * time.Millisecond):
		}
		if merr := b.m.Err(); merr != nil && !strings.Contains(err.Error(), merr.Error()) {
			err = fmt.Errorf("%w (QEMU: %v)", err, merr)
		}
	}
	return fmt.Errorf("emulated: %w", err)
}

// PowerOn implements boards.Board: the guest is at its reset vector; its
// boot is the next step.
func (b *Board) PowerOn(context.Context) error {
	b.st = booting
	return nil
}

// Next implements boards.Board.
func (b *Board) Next(_ context.Context, _ float64) (boards.Step, bool, error) {
	p := b.dep.Profile
	switch b.st {
	case booting:
		secs := p.Reboot.Seconds
		if b.bootCycles > 0 {
			secs = b.secs(b.bootCycles)
		}
		return b.step(boards.Boot, -1, secs, p.ActivePowerW), true, nil
	case atTask:
		return b.step(boards.Task, b.task, b.secs(b.taskCycles[b.task]), p.ActivePowerW), true, nil
	case atSleep:
		return boards.Step{Kind: boards.Sleep, Task: -1, Power: p.SleepPowerW}, true, nil
	case idle:
		if b.pending != nil && b.ses == nil {
			// The input is written into NVM by the board: priced as the
			// simulated board prices it.
			n := float64((len(b.pending) + 1) / 2)
			e, c := p.NVMWrite.Energy(n), p.NVMWrite.Cycles(n)
			s := boards.Step{Kind: boards.LoadInput, Task: -1, Seconds: p.Seconds(c), Energy: e}
			if s.Seconds > 0 {
				s.Power = e / s.Seconds
			}
			return s, true, nil
		}
		return boards.Step{Kind: boards.Idle, Task: -1, Power: p.SleepPowerW}, false, nil
	}
	return boards.Step{}, false, errors.New("emulated: Next while the board is off")
}

func (b *Board) step(k boards.StepKind, task int, secs, power float64) boards.Step {
	return boards.Step{Kind: k, Task: task, Seconds: secs, Power: power, Energy: secs * power}
}

// Complete implements boards.Board: the guest runs to its next stop (or,
// for the last task, to its RESULT), and the board's events on the way say
// what it did.
func (b *Board) Complete(ctx context.Context) (boards.Event, error) {
	switch b.st {
	case booting:
		return b.boot(ctx)
	case idle:
		return b.load(ctx)
	case atTask:
		k := b.task
		if err := b.g.StepOverBreak(b.addr.task); err != nil {
			return boards.Event{}, b.died(err)
		}
		ev, err := b.runToStop(ctx, k)
		ev.Kind, ev.Task = boards.Task, k
		return ev, err
	case atSleep:
		if err := b.g.StepOverBreak(b.addr.sleep); err != nil {
			return boards.Event{}, b.died(err)
		}
		ev, err := b.runToStop(ctx, -1)
		ev.Kind, ev.Task = boards.Sleep, -1
		return ev, err
	}
	return boards.Event{}, errors.New("emulated: Complete while the board is off")
}

// boot lets the guest boot: its BOOT event says where it resumes; an
// inference in progress goes on to its next task's stop.
func (b *Board) boot(ctx context.Context) (boards.Event, error) {
	ev, err := b.run(ctx, -1, true)
	ev.Kind, ev.Task = boards.Boot, -1
	return ev, err
}

// load writes the input and starts the inference (the guest idles and
// serves the host), then runs to the first task's stop.
func (b *Board) load(ctx context.Context) (boards.Event, error) {
	if b.pending == nil {
		return boards.Event{Kind: boards.Idle, Task: -1}, nil
	}
	b.number++
	actx, cancel := b.whileAlive(ctx)
	ses, err := b.drv.Begin(actx, b.number, b.pending)
	cancel()
	if err != nil {
		return boards.Event{}, b.died(err)
	}
	b.ses, b.pending, b.progress = ses, nil, 0
	b.st = idle // the guest runs until its first stop
	ev, err := b.run(ctx, -1, false)
	ev.Kind, ev.Task = boards.LoadInput, -1
	return ev, err
}

// afterStop is how long the events the guest sent before a stop may take to
// come through the pty once the stop is reported.
const afterStop = time.Second

// runToStop lets the guest run from a stop; see run.
func (b *Board) runToStop(ctx context.Context, done int) (boards.Event, error) {
	if err := b.g.Continue(); err != nil {
		return boards.Event{}, b.died(err)
	}
	return b.run(ctx, done, false)
}

// run follows the running guest until it stops at a task's start or at the
// rule's sleep, or its inference ends (its RESULT), or, booting (boot), its
// BOOT says nothing runs; supply readings on the way are answered. done is
// the task that runs (-1: none): after the stop its TASK_DONE is awaited,
// as are the BOOT of a boot, for afterStop at most (the pty may deliver the
// events of before the stop after it).
func (b *Board) run(ctx context.Context, done int, boot bool) (boards.Event, error) {
	if boot {
		if err := b.g.Continue(); err != nil {
			return boards.Event{}, b.died(err)
		}
	}
	var ev boards.Event
	stopped, sawDone, sawBoot := false, done < 0, !boot
	// A task that commits sends its COMMIT after its TASK_DONE: both
	// belong to this step.
	sawCommit := done < 0 || !b.dep.Plan.Tasks[done].Commit
	var bootMsg *wire.Boot
	err := b.await(ctx, func(u serialboard.Update, stop string) (bool, error) {
		if u.Task >= 0 && u.Task == done {
			sawDone = true
			ev.Cycles = u.Cycles
		}
		if u.Committed {
			ev.Committed, sawCommit = true, true
		}
		if u.Boot != nil && boot && !sawBoot {
			sawBoot, bootMsg = true, u.Boot
			if u.Boot.Cycles > 0 {
				b.bootCycles, ev.Cycles = u.Boot.Cycles, u.Boot.Cycles
			}
			b.logf("BOOT resume=%d flags=%#x cycles=%d", u.Boot.Resume, u.Boot.Flags, u.Boot.Cycles)
			b.progress = int(u.Boot.Resume)
			if u.Boot.Flags&wire.BootRunning == 0 && !u.Done {
				b.st = idle // nothing to resume: the guest waits for commands
				return true, nil
			}
		}
		if u.Done {
			ev.InferenceDone = true
			return true, nil
		}
		if stop != "" {
			again, err := b.atStop(stop)
			if err != nil || again {
				return false, err
			}
			stopped = true
		}
		return stopped && sawDone && sawCommit && sawBoot, nil
	}, &ev, func() bool { return stopped })
	if err != nil || ev.Hung {
		return ev, err
	}
	if ev.InferenceDone {
		b.st = idle
		return b.finish(ctx, ev)
	}
	if !sawBoot && boot {
		b.logf("the BOOT event of this boot did not come (lost): resuming at %d", b.progress)
	}
	_ = bootMsg
	return ev, nil
}

// atStop handles a stop of the guest: a supply reading is answered and the
// guest goes on (again is true); a task's start or the rule's sleep is where
// the engine takes over.
func (b *Board) atStop(stop string) (again bool, err error) {
	if strings.HasPrefix(stop, "E:") {
		return false, b.died(fmt.Errorf("gdbstub: %s", stop[2:]))
	}
	pc, err := b.g.ReadRegister(15)
	if err != nil {
		return false, b.died(err)
	}
	switch pc {
	case b.addr.task &^ 1:
		r, err := b.g.ReadRegister(b.taskReg)
		if err != nil {
			return false, b.died(err)
		}
		if int(r) >= len(b.dep.Plan.Tasks) {
			return false, fmt.Errorf("emulated: the board stopped at task %d of a %d-task plan", r, len(b.dep.Plan.Tasks))
		}
		b.st, b.task = atTask, int(r)
		return false, nil
	case b.addr.sleep &^ 1:
		if b.addr.sleep == 0 {
			break
		}
		b.st = atSleep
		return false, nil
	case b.addr.supply &^ 1:
		if b.addr.supply == 0 {
			break
		}
		mv := uint16(0)
		if b.volts != nil {
			mv = uint16(min(math.Round(b.volts()*1000), math.MaxUint16))
		}
		var w [2]byte
		binary.LittleEndian.PutUint16(w[:], mv)
		if err := b.g.WriteMemory(b.addr.supplyWord, w[:]); err != nil {
			return false, b.died(err)
		}
		if err := b.g.StepOverBreak(b.addr.supply); err != nil {
			return false, b.died(err)
		}
		return true, b.g.Continue()
	}
	return false, fmt.Errorf("emulated: the guest stopped at %#x, at none of its breakpoints (%q)", pc, stop)
}

// await feeds the board's events and the guest's stops to f until f says
// done, the board is silent for the hang timeout (ev.Hung), QEMU dies or ctx
// ends.
// Once stopped reports true (the guest stopped where the caller wanted), the
// wait for the events sent before the stop lasts afterStop at most.
func (b *Board) await(ctx context.Context, f func(u serialboard.Update, stop string) (bool, error), ev *boards.Event, stopped func() bool) error {
	wait := func() time.Duration {
		if stopped() {
			return afterStop
		}
		return b.opt.HangTimeout
	}
	hang := time.NewTimer(wait())
	defer hang.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("emulated: %w", ctx.Err())
		case <-b.m.Done():
			return b.died(errors.New("QEMU exited"))
		case <-hang.C:
			if stopped() {
				b.logf("events of before the stop did not come within %v (lost)", afterStop)
				return nil
			}
			b.logf("no event and no stop for %v: a hang", b.opt.HangTimeout)
			ev.Hung = true
			return nil
		case stop := <-b.g.Stopped():
			done, err := f(serialboard.Update{Task: -1}, stop)
			if err != nil || done {
				return err
			}
		case lev, ok := <-b.l.Events():
			if !ok {
				return b.died(errors.New("the serial link closed"))
			}
			if lev.Kind != link.BoardEvent {
				continue
			}
			b.events++
			u, err := b.handle(lev)
			if err != nil {
				return err
			}
			if u.Committed {
				b.progress = int(u.Progress)
			}
			done, err := f(u, "")
			if err != nil || done {
				return err
			}
		}
		if !hang.Stop() {
			select {
			case <-hang.C:
			default:
			}
		}
		hang.Reset(wait())
	}
}

// handle digests a board event: through the inference's session when one
// runs, else only a BOOT's contents.
func (b *Board) handle(ev link.Event) (serialboard.Update, error) {
	if b.ses != nil && !b.ses.Finished() {
		u, err := b.ses.Handle(ev)
		if errors.Is(err, serialboard.ErrProgressLost) {
			err = fmt.Errorf("%w: %w", boards.ErrProgressLost, err)
		}
		return u, err
	}
	u := serialboard.Update{Task: -1}
	if boot, ok := ev.Msg.(*wire.Boot); ok {
		u.Boot = boot
	}
	return u, nil
}

// finish reads the finished inference's output into ev.
func (b *Board) finish(ctx context.Context, ev boards.Event) (boards.Event, error) {
	actx, cancel := b.whileAlive(ctx)
	out, err := b.ses.Output(actx)
	cancel()
	if err != nil {
		return ev, b.died(err)
	}
	ev.InferenceDone, ev.Output = true, out
	b.progress = len(b.dep.Plan.Tasks)
	b.ses = nil
	return ev, nil
}

// stop stops a running guest (QEMU's gdbstub interrupt) and waits for the
// stop.
func (b *Board) stop(ctx context.Context) error {
	if err := b.g.Interrupt(); err != nil {
		return err
	}
	select {
	case s := <-b.g.Stopped():
		if strings.HasPrefix(s, "E:") {
			return fmt.Errorf("gdbstub: %s", s[2:])
		}
		return nil
	case <-b.m.Done():
		return errors.New("QEMU exited")
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
		return errors.New("gdbstub: the guest did not stop within 10 s")
	}
}

// BrownOut implements boards.Board: the guest is stopped (stopped first if
// it idles) and reset, which scrubs its volatile SRAM; NVM survives.
func (b *Board) BrownOut(ctx context.Context, _ float64) error {
	if b.st == idle {
		if err := b.stop(ctx); err != nil {
			return b.died(err)
		}
	}
	if err := b.m.SystemReset(ctx); err != nil {
		return b.died(err)
	}
	b.st = off
	return nil
}

// QueueInput implements boards.Board.
func (b *Board) QueueInput(_ context.Context, input []byte) error {
	if len(input) != b.dep.Model.InputTensor().Bytes() {
		return fmt.Errorf("emulated: input is %d bytes, the model needs %d", len(input), b.dep.Model.InputTensor().Bytes())
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
