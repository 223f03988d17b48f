package emulated

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/batteryless/harness/boards/qemu"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/power"
	"github.com/batteryless/harness/harness/wire"
)

// progressAddr is the NVM progress word in the STM32 port's memory
// (harness/plan/FORMAT.md: NVM header bytes 8..11), followed by the number
// of the inference START began (bytes 12..15): the watchpoint covers both.
const (
	progressAddr = qemu.NVMAddr + 8
	watchBytes   = 8
)

// cycleModel is the power strategy that charges the board by its cycles
// (Config.Charge == ChargeCycles, the default): the model's clock is the
// board's own virtual time, so the power cycles do not depend on how fast
// the host runs QEMU.
//
// QEMU's gdbstub holds a write watchpoint on the progress word: the guest
// stops, at the exact instruction, at every commit (and at START's reset of
// the word). -icount makes each task's cycles the same in every run, so the
// warm-up inference's cycles say what each stretch of tasks costs. At every
// stop the model charges the tasks done since the last one, then looks
// ahead: if the capacitor cannot carry the board through the next commit
// group, the board browns out inside it, so it is cut right there (the
// model advances to the instant the energy runs out; the work in between
// would be lost anyway, as the progress word says where it resumes). At
// turn-on the same look-ahead covers the boot and the first group. The
// same decisions as the simulated board's, on the real firmware.
type cycleModel struct {
	mu   sync.Mutex
	sys  *power.System
	m    *qemu.Machine
	g    *qemu.GDB
	cfg  *Config
	rec  *recorder
	cyc  int
	on   bool
	onCh chan struct{} // closed and replaced at every turn-on

	modelOn    bool     // the power model drives the board (after the warm-up)
	taskCycles []uint32 // each task's cycles (the warm-up's measurement)
	commits    []bool   // task i commits after it
	bootCycles uint32   // the last BOOT's cycles
	progress   uint32   // the progress word at the last stop
	started    uint32   // the started inference's number at the last stop
	stalled    int      // power cycles in a row without a new commit
	inf, infC0 int

	stepAddr uint32 // ih_rt_step in the ELF: where a doomed group is cut
	doomed   bool   // the breakpoint at stepAddr is in

	takeoverReq bool
	tookOver    chan error

	endErr error
	stop   chan struct{}
}

func (p *cycleModel) logf(format string, args ...any) {
	if p.cfg.Logf != nil {
		p.cfg.Logf(format, args...)
	}
}

// On implements serialboard.Power.
func (p *cycleModel) On() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.on || !p.modelOn
}

// Now implements serialboard.Power: the simulated time.
func (p *cycleModel) Now() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sys.Time()
}

// Hold implements serialboard.Power: the model only moves at the board's
// stops, and the board is idle while the host writes an input or reads an
// output; Hold waits until the board is on.
func (p *cycleModel) Hold(ctx context.Context) error {
	p.mu.Lock()
	for p.modelOn && !p.on {
		if p.endErr != nil {
			err := p.endErr
			p.mu.Unlock()
			return err
		}
		ch := p.onCh
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.mu.Lock()
	}
	p.mu.Unlock()
	return nil
}

// Release implements serialboard.Power.
func (p *cycleModel) Release() {}

// Cycle implements serialboard.Power: a hang; the board is reset without
// touching the model.
func (p *cycleModel) Cycle(ctx context.Context) error {
	if err := p.m.SystemReset(ctx); err != nil {
		return err
	}
	p.logf("hang: reset at t=%.4f s", p.Now())
	return nil
}

func (p *cycleModel) beginInference(i int) {
	p.mu.Lock()
	p.inf, p.infC0 = i, p.cyc
	p.rec.inference = i
	p.mu.Unlock()
}

func (p *cycleModel) endInference() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rec.inference = -1
	return p.cyc - p.infC0
}

func (p *cycleModel) ended() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Is(p.endErr, errTraceEnded)
}

func (p *cycleModel) error() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.endErr
}

// fail stops the model for good (p.mu held).
func (p *cycleModel) fail(err error) {
	if p.endErr == nil {
		p.endErr = err
		p.logf("power model stopped: %v", err)
		close(p.stop)
		close(p.onCh)
		p.onCh = make(chan struct{})
	}
}

// observe keeps the per-cycle records and the boot's cost.
func (p *cycleModel) observe(ev link.Event) {
	if ev.Kind != link.BoardEvent {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e := ev.Msg.(type) {
	case *wire.Boot:
		if e.Cycles > 0 {
			p.bootCycles = e.Cycles
		}
	case *wire.TaskDone:
		p.rec.task()
	case *wire.Commit:
		p.rec.commit(int(e.Progress))
	}
}

// secs is the board time of n cycles.
func (p *cycleModel) secs(n uint32) float64 { return float64(n) / p.cfg.CounterHz }

// bootTime is what a boot costs in board time.
func (p *cycleModel) bootTime() float64 {
	if p.bootCycles > 0 {
		return p.secs(p.bootCycles)
	}
	return p.cfg.Profile.Reboot.Seconds
}

// group is the board time of the tasks from task through the next commit.
func (p *cycleModel) group(task uint32) float64 {
	d := 0.0
	for k := int(task); k < len(p.taskCycles); k++ {
		d += p.secs(p.taskCycles[k])
		if p.commits[k] {
			break
		}
	}
	return d
}

// advance runs the model for d seconds of board time while on, reading the
// harvest every 10 ms; it reports whether the board browned out (the model
// then stands at that instant). p.mu held.
func (p *cycleModel) advance(d float64) (bool, error) {
	const chunk = 0.01
	for d > 0 {
		if err := p.sys.SetHarvest(max(p.cfg.Harvest(p.sys.Time()), 0)); err != nil {
			return false, err
		}
		a, ev := p.sys.Advance(min(d, chunk))
		d -= a
		if ev == power.BrownedOut {
			return true, nil
		}
	}
	return false, nil
}

// fits says whether the board, on now, gets through d seconds of board time
// (a copy of the model runs ahead). p.mu held.
func (p *cycleModel) fits(d float64) bool {
	s := *p.sys
	const chunk = 0.01
	for d > 0 {
		if s.SetHarvest(max(p.cfg.Harvest(s.Time()), 0)) != nil {
			return false
		}
		a, ev := s.Advance(min(d, chunk))
		d -= a
		if ev == power.BrownedOut {
			return false
		}
	}
	return true
}

// brownOut spends the rest of the energy (the board runs into the group it
// cannot finish), resets QEMU (the SRAM scrub) and marks the board off. QEMU
// is stopped. p.mu held.
func (p *cycleModel) brownOut(ctx context.Context) error {
	for p.sys.On() {
		if _, err := p.advance(1); err != nil {
			return err
		}
	}
	if err := p.m.SystemReset(ctx); err != nil {
		return err
	}
	p.on = false
	p.cyc++
	p.stalled++
	if err := p.sys.SetLoad(0); err != nil {
		return err
	}
	p.rec.off(p.sys, "brownout")
	p.logf("brown-out at t=%.4f s (V=%.3f)", p.sys.Time(), p.sys.Voltage())
	if p.stalled > livelockCycles {
		return fmt.Errorf("livelock: %d power cycles in a row without a commit: the stretch from task %d through its commit needs %.1f ms of board time, more than a power cycle gives", p.stalled, p.progress, 1e3*(p.bootTime()+p.group(p.progress)))
	}
	return nil
}

// livelockCycles is how many power cycles in a row may pass without a
// commit before the run fails.
const livelockCycles = 50

// turnOn charges the model until the board turns on (off time costs no wall
// time: nothing runs), charges the boot and, if the first commit group fits,
// lets QEMU run; if not, the board browns out again at once. QEMU is
// stopped. It returns once QEMU runs or the model failed. p.mu held.
func (p *cycleModel) turnOn(ctx context.Context) error {
	const chunk = 0.01
	const maxOff = 24 * 3600
	for {
		t0 := p.sys.Time()
		for !p.sys.On() {
			if p.cfg.MaxSimTime > 0 && p.sys.Time() >= p.cfg.MaxSimTime {
				return errTraceEnded
			}
			if p.sys.Time()-t0 > maxOff {
				return fmt.Errorf("the harvest did not turn the board on within %d h of simulated time (V=%.3f V, turn-on at %.3f V)", maxOff/3600, p.sys.Voltage(), p.sys.Config().Th.Von)
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
		// The progress word says where the board will resume.
		b, err := p.g.ReadMemory(progressAddr, watchBytes)
		if err != nil {
			return err
		}
		p.progress, p.started = binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
		running := int(p.progress) < len(p.taskCycles)
		if !p.fits(p.bootTime()) {
			// Not even the boot: nothing runs.
			if err := p.brownOut(ctx); err != nil {
				return err
			}
			continue
		}
		if out, err := p.advance(p.bootTime()); err != nil || out {
			return errors.Join(err, errors.New("the boot browned out although it fitted"))
		}
		close(p.onCh)
		p.onCh = make(chan struct{})
		if running && !p.fits(p.group(p.progress)) {
			// It boots, says so, and browns out in its first group.
			return p.doom(ctx)
		}
		return p.g.Continue()
	}
}

// atStop handles a stop: at the breakpoint of a doomed group, the
// brown-out; at the watchpoint, the progress word or the started number is
// about to be written: the store is stepped over, then the model decides.
func (p *cycleModel) atStop(ctx context.Context, reply string) error {
	p.mu.Lock()
	doomed := p.doomed
	p.mu.Unlock()
	if doomed && !strings.Contains(reply, "watch") {
		if err := p.g.Unbreak(p.stepAddr); err != nil {
			return err
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.doomed = false
		return p.brownOutAndBack(ctx)
	}
	if err := p.g.StepOverWatch(progressAddr, watchBytes); err != nil {
		return err
	}
	b, err := p.g.ReadMemory(progressAddr, watchBytes)
	if err != nil {
		return err
	}
	v, started := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
	p.mu.Lock()
	defer p.mu.Unlock()
	prev, prevStarted := p.progress, p.started
	p.progress, p.started = v, started
	if !p.modelOn || v == 0xFFFFFFFF {
		// Bench power, or an input being written.
		return p.g.Continue()
	}
	if started != prevStarted {
		// START's second write: the inference is begun (its first write
		// set the progress to 0), task 0 runs next.
		if len(p.taskCycles) > 0 && !p.fits(p.group(0)) {
			return p.doom(ctx)
		}
		return p.g.Continue()
	}
	if v > prev && int(v) <= len(p.taskCycles) {
		// A commit: charge the tasks since the last stop.
		d := 0.0
		for k := prev; k < v; k++ {
			d += p.secs(p.taskCycles[k])
		}
		out, err := p.advance(d)
		if err != nil {
			return err
		}
		if out {
			return fmt.Errorf("the model browned out inside tasks %d..%d, which its look-ahead said would fit", prev, v-1)
		}
		p.stalled = 0
		if int(v) < len(p.taskCycles) && !p.fits(p.group(v)) {
			return p.doom(ctx)
		}
	}
	// Anything else (START's reset of the progress word to 0) runs on.
	return p.g.Continue()
}

// doom lets the board run on to the start of its next task (it sends the
// events of what it finished), where a breakpoint on the runtime's task
// step stops it for the brown-out: the group it cannot finish is cut at its
// start. Without the symbol, the cut is here and now. p.mu held.
func (p *cycleModel) doom(ctx context.Context) error {
	if p.stepAddr == 0 {
		return p.brownOutAndBack(ctx)
	}
	if err := p.g.Break(p.stepAddr); err != nil {
		return err
	}
	p.doomed = true
	return p.g.Continue()
}

// brownOutAndBack browns the board out and turns it on again. p.mu held.
func (p *cycleModel) brownOutAndBack(ctx context.Context) error {
	if err := p.brownOut(ctx); err != nil {
		return err
	}
	return p.turnOn(ctx)
}

// run follows the gdbstub's stops until ctx is done or the model fails.
func (p *cycleModel) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.m.Done():
			p.mu.Lock()
			p.fail(p.m.Err())
			p.mu.Unlock()
			return
		case r := <-p.g.Stopped():
			var err error
			switch {
			case strings.HasPrefix(r, "E:"):
				err = fmt.Errorf("gdbstub: %s", r[2:])
			case p.takeOverNow():
				err = p.takeOver(ctx, strings.Contains(r, "watch"))
			default:
				err = p.atStop(ctx, r)
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				p.mu.Lock()
				p.fail(err)
				p.mu.Unlock()
				return
			}
		}
	}
}

// start hands the board to the power model: the stop loop interrupts
// QEMU, resets it (off) and turns it on under the model. It returns when
// that is done.
func (p *cycleModel) start(ctx context.Context) error {
	p.mu.Lock()
	p.takeoverReq = true
	p.mu.Unlock()
	if err := p.g.Interrupt(); err != nil {
		return fmt.Errorf("gdbstub: interrupt: %w", err)
	}
	select {
	case err := <-p.tookOver:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
		return errors.New("gdbstub: QEMU did not stop for the power model within 10 s")
	}
}

func (p *cycleModel) takeOverNow() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.takeoverReq && !p.modelOn
}

// takeOver, at a stop: reset (off) and turn on under the model.
func (p *cycleModel) takeOver(ctx context.Context, atWatch bool) error {
	if atWatch {
		if err := p.g.StepOverWatch(progressAddr, watchBytes); err != nil {
			p.tookOver <- err
			return err
		}
	}
	err := p.m.SystemReset(ctx)
	if err == nil {
		p.mu.Lock()
		p.modelOn = true
		p.on = false
		err = p.turnOn(ctx)
		p.mu.Unlock()
	}
	p.tookOver <- err
	return err
}

// finish fills the result's power figures and writes the last cycle record.
func (p *cycleModel) finish(res *Result, wall0 time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.on {
		p.rec.off(p.sys, "end")
	}
	p.rec.flush()
	fillPower(res, p.sys, p.cyc, wall0)
}
