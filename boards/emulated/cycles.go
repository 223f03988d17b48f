package emulated

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/batteryless/harness/boards/qemu"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/power"
	"github.com/batteryless/harness/harness/wire"
)

// taskEntry is the function the runtime calls once at the start of every
// task, with the task's index as its second argument (r1): ih_rt_step's
// ih_task_get(&img, next, &task).
const taskEntry = "ih_task_get"

// cycleModel is the power strategy that charges the board by its cycles
// (Config.Charge == ChargeCycles, the default): the model's clock is the
// board's own virtual time, so the power cycles do not depend on how fast
// the host runs QEMU.
//
// (The board's own TASK_DONE cycles under the model are not used: each
// stop lets QEMU's -icount clock jump to its next timer deadline, so the
// counts reported across a stop are inflated; the warm-up runs without
// stops.)
//
// QEMU's gdbstub holds a breakpoint at the start of every task (taskEntry):
// the guest stops there, at the exact instruction, whatever the host's
// scheduler does. -icount makes each task's cycles the same in every run,
// so the warm-up inference's TASK_DONE cycles say what each task costs. At
// each stop the model charges the task that ran since the previous stop,
// then looks ahead: if the capacitor cannot carry the board through the task
// that starts now, the board browns out inside it, so it is cut right there
// (the model spends the energy to the instant it runs out: what the task
// would have done before is lost anyway, its commit comes at its end). The
// boot is charged at turn-on by the BOOT event's cycles. These are the
// simulated board's decisions, made on the real firmware, whatever the
// firmware does with its progress (a broken one is cut all the same).
type cycleModel struct {
	modelBase
	g *qemu.GDB

	modelOn    bool     // the power model drives the board (after the warm-up)
	taskCycles []uint32 // each task's cycles (the warm-up's measurement)
	bootCycles uint32   // the last BOOT's cycles
	pending    int      // the task the board began at the last stop, -1: none
	stalled    int      // power cycles in a row without a finished task
	overruns   int      // tasks that ran past the model's brown-out

	entry uint32 // taskEntry's address in the ELF

	takeoverReq bool
	tookOver    chan error

	stop chan struct{}
}

// On implements serialboard.Power.
func (p *cycleModel) On() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.on || !p.modelOn
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
	case *wire.Result:
		// The last task ended; no task start follows to charge it at.
		if p.on && p.pending >= 0 {
			if err := p.charge(); err != nil {
				p.fail(err)
			}
		}
	}
}

// charge advances the model by the pending task's cycles. p.mu held.
func (p *cycleModel) charge() error {
	k := p.pending
	p.pending = -1
	if k < 0 || k >= len(p.taskCycles) {
		return nil
	}
	out, err := p.advance(p.secs(p.taskCycles[k]))
	if err != nil {
		return err
	}
	if out {
		// Its look-ahead said it fits; its cycles changed since the
		// warm-up (they should not under -icount).
		p.overruns++
		p.logf("task %d ran past the brown-out the model found inside it", k)
	}
	p.stalled = 0
	return nil
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

// runOn runs sys for d seconds of board time with the board on, reading
// harvest every 10 ms of simulated time; it reports whether the board
// browned out (sys then stands at that instant).
func runOn(sys *power.System, harvest func(float64) float64, d float64) (bool, error) {
	const chunk = 0.01
	for d > 0 {
		if err := sys.SetHarvest(max(harvest(sys.Time()), 0)); err != nil {
			return false, err
		}
		a, ev := sys.Advance(min(d, chunk))
		d -= a
		if ev == power.BrownedOut {
			return true, nil
		}
	}
	return false, nil
}

// advance runs the model for d seconds of board time. p.mu held.
func (p *cycleModel) advance(d float64) (bool, error) { return runOn(p.sys, p.cfg.Harvest, d) }

// fits says whether the board, on now, gets through d seconds of board time
// (a copy of the model runs ahead). p.mu held.
func (p *cycleModel) fits(d float64) bool {
	s := *p.sys
	out, err := runOn(&s, p.cfg.Harvest, d)
	return err == nil && !out
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
	p.pending = -1
	if err := p.sys.SetLoad(0); err != nil {
		return err
	}
	p.rec.off(p.sys, "brownout")
	p.logf("brown-out at t=%.4f s (V=%.3f)", p.sys.Time(), p.sys.Voltage())
	if p.stalled > livelockCycles {
		return fmt.Errorf("livelock: %d power cycles in a row without a finished task (the boot takes %.1f ms of board time)", p.stalled, 1e3*p.bootTime())
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
	for {
		if err := p.chargeToOn(ctx); err != nil {
			return err
		}
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
		return p.g.Continue()
	}
}

// atStop handles a stop at the start of a task: charge the task before it,
// then cut the board if it cannot finish this one.
func (p *cycleModel) atStop(ctx context.Context) error {
	r1, err := p.g.ReadRegister(1)
	if err != nil {
		return err
	}
	if err := p.g.StepOverBreak(p.entry); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.modelOn {
		return p.g.Continue() // bench power
	}
	if err := p.charge(); err != nil {
		return err
	}
	k := int(r1)
	if k < len(p.taskCycles) && !p.fits(p.secs(p.taskCycles[k])) {
		return p.brownOutAndBack(ctx)
	}
	p.pending = k
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
				err = p.takeOver(ctx)
			default:
				err = p.atStop(ctx)
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				// A failing stub is most often QEMU dying: name that.
				select {
				case <-p.m.Done():
					if merr := p.m.Err(); merr != nil {
						err = merr
					}
				case <-time.After(time.Second):
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
func (p *cycleModel) takeOver(ctx context.Context) error {
	// The breakpoint goes in only now: a stop makes QEMU's -icount clock
	// (sleep=off) jump to its next timer deadline, which would inflate the
	// warm-up's cycles, the model's price list.
	err := p.g.Break(p.entry)
	if err == nil {
		err = p.m.SystemReset(ctx)
	}
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
	res.Overruns = p.overruns
	p.fillPower(res, wall0)
}
