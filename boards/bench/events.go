package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/serialboard"
	"github.com/batteryless/harness/boards/supply"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/wire"
)

// portPatience is how long the board's port may stay lost before the run
// stops.
const portPatience = 10 * time.Second

// harvestBootPatience is how long after the model's turn-on the harvester
// mode waits for the board's own.
const harvestBootPatience = 10 * time.Second

// segment is the stretch of the model the rail follows while a step runs:
// from (w0, v0) to (w1, v1), the energy linear in time between them (the
// harvest and the load are constant within a step, or nearly).
type segment struct {
	w0, w1 time.Time
	v0, v1 float64
	set    bool
}

// begin sets the rail's segment for the step Next gave, now that the
// engine has run the model to its end (or its brown-out).
func (b *Board) begin() time.Time {
	end := b.wallOf(b.now())
	b.seg = segment{w0: b.stepWall, w1: end, v0: b.stepV, v1: b.volts(), set: true}
	return end
}

// railAt is the model's voltage at wall instant w within the segment.
func (s *segment) railAt(w time.Time) float64 {
	if !s.set {
		return math.NaN()
	}
	span := s.w1.Sub(s.w0)
	x := 1.0
	if span > 0 {
		x = min(max(float64(w.Sub(s.w0))/float64(span), 0), 1)
	}
	return math.Sqrt(max(s.v0*s.v0+(s.v1*s.v1-s.v0*s.v0)*x, 0))
}

// stream sends the rail its next setpoint (gate mode, output on), at most
// one per Rate (unless atEnd: the segment's end), when it moved by a
// millivolt or more.
func (b *Board) stream(ctx context.Context, now time.Time, atEnd bool) error {
	if b.opt.Mode != Gate || !b.outputOn || (!atEnd && now.Sub(b.lastSetp) < b.opt.Rate) {
		return nil
	}
	v := b.seg.railAt(now)
	if math.IsNaN(v) || math.Abs(v-b.lastSent) < 0.001 {
		return nil
	}
	if err := b.retry("setpoint", func() error { _, err := b.g.Follow(ctx, supply.FromVolts(v)); return err }); err != nil {
		return err
	}
	b.lastSent, b.lastSetp = v, now
	b.stats.Setpoints++
	return nil
}

// note follows the port's state; a port lost for portPatience stops the
// run.
func (b *Board) note(ev link.Event) error {
	switch ev.Kind {
	case link.PortLost:
		if b.portLost.IsZero() {
			b.portLost = ev.Time
		}
		b.logf("port lost: %v", ev.Err)
	case link.PortBack:
		b.portLost = time.Time{}
		b.logf("port back")
	}
	if !b.portLost.IsZero() && time.Since(b.portLost) > portPatience {
		return fmt.Errorf("bench: port %s lost for %v: %w", b.opt.Port, portPatience, serialboard.ErrPortLost)
	}
	return nil
}

// digest takes one board event: through the inference's session when one
// runs, else only a BOOT's contents.
func (b *Board) digest(ev link.Event) (serialboard.Update, error) {
	if ev.Kind != link.BoardEvent {
		return serialboard.Update{Task: -1}, b.note(ev)
	}
	if _, ok := ev.Msg.(*wire.Boot); ok {
		b.stats.ObservedBoots++
	}
	if b.ses != nil && !b.ses.Finished() {
		u, err := b.ses.Handle(ev)
		if errors.Is(err, serialboard.ErrProgressLost) {
			err = fmt.Errorf("%w: %w", boards.ErrProgressLost, err)
		}
		if u.Committed {
			b.progress, b.committed = int(u.Progress), int(u.Progress)
		}
		return u, err
	}
	u := serialboard.Update{Task: -1}
	if boot, ok := ev.Msg.(*wire.Boot); ok {
		u.Boot = boot
	}
	if l, ok := ev.Msg.(*wire.Log); ok {
		b.logf("board log %d: %s", l.Level, l.Text)
	}
	return u, nil
}

// await feeds f the board's events in order (those read ahead first) until
// f says done, hard passes (timedOut), or ctx ends; meanwhile the rail
// follows the model.
func (b *Board) await(ctx context.Context, hard time.Time, f func(link.Event) (bool, error)) (timedOut bool, err error) {
	for len(b.backlog) > 0 {
		ev := b.backlog[0]
		b.backlog = b.backlog[1:]
		if done, err := f(ev); err != nil || done {
			return false, err
		}
	}
	timer := time.NewTimer(time.Until(hard))
	defer timer.Stop()
	tick := time.NewTicker(b.opt.Rate)
	defer tick.Stop()
	// The rail reaches the segment's end voltage at its modelled instant,
	// not up to a period later: a board reads its supply right as its
	// task ends (the run-time rule), and must read what the model decides
	// on, not the last step of a staircase above it.
	var segEnd <-chan time.Time
	if d := time.Until(b.seg.w1); b.opt.Mode == Gate && b.seg.set && d > 0 && b.seg.w1.Before(hard) {
		t := time.NewTimer(d)
		defer t.Stop()
		segEnd = t.C
	}
	streamStart := time.Now()
	defer func() {
		if b.outputOn {
			b.stats.streamOn += time.Since(streamStart)
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-timer.C:
			return true, nil
		case now := <-tick.C:
			if err := b.stream(ctx, now, false); err != nil {
				return false, err
			}
		case now := <-segEnd:
			if err := b.stream(ctx, now, true); err != nil {
				return false, err
			}
		case ev, ok := <-b.l.Events():
			if !ok {
				return false, errors.New("bench: the serial link closed")
			}
			if done, err := f(ev); err != nil || done {
				return false, err
			}
		}
	}
}

// waitStreaming waits until until, the rail following the model; events
// that come meanwhile are kept for later, in order.
func (b *Board) waitStreaming(ctx context.Context, until time.Time) error {
	if !time.Now().Before(until) {
		return ctx.Err()
	}
	// Those already kept stay kept: await would hand them back to be kept
	// again, forever.
	kept := b.backlog
	b.backlog = nil
	_, err := b.await(ctx, until, func(ev link.Event) (bool, error) {
		kept = append(kept, ev)
		return false, b.note(ev)
	})
	b.backlog = kept
	return err
}

// sawTaskDone reports whether a TASK_DONE of task k was read ahead.
func (b *Board) sawTaskDone(k int) bool {
	for _, ev := range b.backlog {
		if td, ok := ev.Msg.(*wire.TaskDone); ok && int(td.Task) == k {
			return true
		}
	}
	return false
}

// lateness books how late an event came against its modelled instant.
func (b *Board) lateness(at, model time.Time) {
	b.stats.LagS += at.Sub(model).Seconds()
	b.stats.lagN++
}

// completeBoot waits for the BOOT of the turn-on: the board's evidence of
// the edge (its arrival less the calibrated boot latency), and where it
// resumes.
func (b *Board) completeBoot(ctx context.Context, end float64, _ time.Time) (boards.Event, error) {
	b.begin()
	on := b.on
	if on == nil {
		on = &onEdge{model: b.wallOf(b.stepModel)}
	}
	patience := b.opt.BootTimeout
	if b.opt.Mode == Harvester {
		patience = max(patience, harvestBootPatience) // the board's own power management decides
	}
	hard := on.model.Add(b.bootLatency + time.Duration(b.secs(b.bootCycles)*1e9) + patience)
	var ev boards.Event
	var boot *wire.Boot
	var bootAt time.Time
	var timedOut bool
	var err error
	if e := b.early; e != nil {
		// The board turned itself on before the model did (its BOOT was
		// read, and taken by the inference's session, already).
		b.early = nil
		boot, bootAt, ev.InferenceDone = e.boot, e.at, e.done
	} else {
		timedOut, err = b.await(ctx, hard, b.bootWaiter(&ev, &boot, &bootAt))
	}
	if err != nil {
		return ev, err
	}
	ev.Kind, ev.Task = boards.Boot, -1
	if timedOut && b.curve != nil {
		// The list did not power the board where the model turned it on.
		return ev, fmt.Errorf("bench: curve mode: %w at %.3f s of the model: the model turned the board on and no BOOT came within %v (the list was off there); an open-loop list replays only a board that keeps to its prediction; --power gate follows any board",
			ErrOffCurve, b.stepModel, (hard.Sub(on.model)).Round(time.Millisecond))
	}
	if timedOut {
		b.noBoot++
		b.stats.NoBoots++
		if err := b.checkTrip(ctx); err != nil {
			return ev, err
		}
		if b.noBoot >= b.opt.NeverBoots {
			return ev, fmt.Errorf("bench: %w: %d power cycles in a row brought no BOOT on %s within %v of the output going on (the calibration's boot latency was %v): the board, its firmware or its wiring failed",
				ErrNeverBoots, b.noBoot, b.opt.Port, (b.bootLatency + b.opt.BootTimeout).Round(time.Millisecond), b.bootLatency.Round(time.Microsecond))
		}
		b.logf("no BOOT within %v of the turn-on: power-cycling", b.bootLatency+b.opt.BootTimeout)
		b.anchor(end, time.Now()) // (as after a hang)
		ev.Hung = true
		return ev, nil
	}
	b.noBoot = 0
	evidence := bootAt.Add(-b.bootLatency - b.bootTime(boot))
	b.evEdges = append(b.evEdges, evidence.Sub(on.model).Seconds())
	b.anchor(end, bootAt)
	if boot.Cycles > 0 {
		ev.Cycles = boot.Cycles
	}
	b.progress, b.committed = int(boot.Resume), int(boot.Resume)
	if b.ses != nil && b.ses.Finished() {
		// The inference's RESULT came late, after the power cut, while
		// this boot was awaited: it is done.
		ev.InferenceDone = true
	}
	b.logf("BOOT resume=%d flags=%#x, %.3f ms after the modelled turn-on (boot latency %v)", boot.Resume, boot.Flags, bootAt.Sub(on.model).Seconds()*1e3, b.bootLatency.Round(time.Microsecond))
	switch {
	case ev.InferenceDone:
		return b.finish(ctx, ev)
	case boot.Flags&wire.BootRunning != 0 && int(boot.Resume) < len(b.dep.Plan.Tasks):
		b.st, b.task = atTask, int(boot.Resume)
	default:
		b.st = idle
		if b.ses != nil && !b.ses.Finished() {
			// The board runs nothing, but an inference was started: the
			// power failed before its START reached NVM. Load it again.
			b.logf("the board lost its START (BOOT: nothing runs, resume %d): loading the input again", boot.Resume)
			b.stats.Restarts++
			b.pending, b.ses = b.lastInput, nil
		}
	}
	return ev, nil
}

// load writes the input and starts the inference (the board awake, in
// real time: the step's price is the warm-up's time for the same).
func (b *Board) load(ctx context.Context, end float64) (boards.Event, error) {
	b.begin()
	b.number++
	if err := b.beforeLoad(ctx, end); err != nil {
		return boards.Event{}, err
	}
	// The whole input every time: the plan may reuse the input's NVM for
	// a later layer's output. The open-loop modes' programs go on once the
	// board has its START.
	if err := b.holdRail(ctx); err != nil {
		return boards.Event{}, err
	}
	ses, err := b.drv.Begin(ctx, b.number, b.pending)
	if err != nil {
		return boards.Event{}, fmt.Errorf("bench: %w", err)
	}
	if err := b.afterLoad(ctx); err != nil {
		return boards.Event{}, err
	}
	if err := b.releaseRail(ctx, end); err != nil {
		return boards.Event{}, err
	}

	b.anchor(end, time.Now())
	b.ses, b.lastInput, b.pending = ses, b.pending, nil
	b.st, b.task, b.progress, b.committed = atTask, 0, 0, 0
	return boards.Event{Kind: boards.LoadInput, Task: -1}, nil
}

// completeTask waits for the task's TASK_DONE (and its COMMIT when it
// commits, and the RESULT after the last task), the rail following the
// model meanwhile. An event that does not come is a hang: the engine then
// runs the model to its brown-out, where the output goes off.
func (b *Board) completeTask(ctx context.Context, end float64, deadline time.Time) (boards.Event, error) {
	b.begin()
	k := b.task
	t := &b.dep.Plan.Tasks[k]
	last := k == len(b.dep.Plan.Tasks)-1
	ev := boards.Event{Kind: boards.Task, Task: k}
	sawDone, sawCommit := false, !t.Commit
	var doneAt time.Time
	var unexpected *wire.Boot
	var unexpectedAt time.Time
	var unexpectedDone bool // (its BOOT says the inference is done: RESULT lost)
	hard := deadline.Add(b.opt.HangSlack)
	timedOut, err := b.await(ctx, hard, func(le link.Event) (bool, error) {
		u, err := b.digest(le)
		if err != nil {
			return false, err
		}
		if u.Boot != nil {
			unexpected, unexpectedAt, unexpectedDone = u.Boot, le.Time, u.Done
			return true, nil
		}
		if u.Task == k && !sawDone {
			sawDone, doneAt, ev.Cycles = true, le.Time, u.Cycles
		}
		if u.Committed {
			ev.Committed, sawCommit = true, true
		}
		if u.Done {
			ev.InferenceDone = true
			return true, nil
		}
		return sawDone && sawCommit && !last, nil
	})
	if err != nil {
		return ev, err
	}
	if unexpected != nil {
		// The board rebooted by itself while the model had it running:
		// its supply failed (a trip?), it reset itself, or (harvester)
		// its own power management cycled it before the model's.
		b.stats.UnexpectedBoots++
		if b.opt.Mode == Harvester {
			b.early = &earlyBoot{boot: unexpected, at: unexpectedAt, done: unexpectedDone}
		}
		b.logf("an unexpected BOOT during task %d (reason %d, resume %d)", k, unexpected.Reason, unexpected.Resume)
		if err := b.checkTrip(ctx); err != nil {
			return ev, err
		}
		b.stats.Hangs++
		return boards.Event{Kind: boards.Task, Task: k, Hung: true}, nil
	}
	if timedOut {
		b.stats.Hangs++
		b.logf("task %d: no event within %v of its modelled end: a hang", k, b.opt.HangSlack)
		// The model's clock stood while the host waited for the board
		// (a fault, not the bench's timing): it goes on from now.
		b.anchor(end, time.Now())
		if err := b.checkTrip(ctx); err != nil {
			return ev, err
		}
		return boards.Event{Kind: boards.Task, Task: k, Hung: true}, nil
	}
	switch {
	case sawDone && doneAt.Before(b.stepWall):
		// Read ahead: the board ran the task while the model had it
		// elsewhere (asleep: the rule read the rail differently). Its
		// instant is no measure of this step: the model goes on from now,
		// not from a wall instant in its past.
		b.anchor(end, time.Now())
	case sawDone:
		b.lateness(doneAt, deadline)
		b.anchor(end, doneAt)
	}
	if ev.InferenceDone {
		return b.finish(ctx, ev)
	}
	b.task = k + 1
	return ev, nil
}

// finish reads the finished inference's output.
func (b *Board) finish(ctx context.Context, ev boards.Event) (boards.Event, error) {
	if err := b.holdRail(ctx); err != nil {
		return ev, err
	}
	out, err := b.ses.Output(ctx)
	if err != nil {
		return ev, fmt.Errorf("bench: %w", err)
	}
	if err := b.releaseRail(ctx, b.now()); err != nil {
		return ev, err
	}

	ev.InferenceDone, ev.Output = true, out
	b.progress, b.committed = len(b.dep.Plan.Tasks), len(b.dep.Plan.Tasks)
	b.ses = nil
	b.st = idle
	return ev, nil
}

// completeSleep: the model's capacitor is back at the turn-on voltage; the
// rail gets there at that instant, which ends the board's own sleep.
func (b *Board) completeSleep(ctx context.Context, end float64, deadline time.Time) (boards.Event, error) {
	b.begin()
	if err := b.waitStreaming(ctx, deadline); err != nil {
		return boards.Event{}, err
	}
	if b.opt.Mode == Gate {
		if err := b.setVoltage(ctx, b.volts()); err != nil {
			return boards.Event{}, err
		}
		b.lastSent, b.lastSetp = b.volts(), time.Now()
	}
	if b.sawTaskDone(b.task) {
		// The board ran the task instead of sleeping: its reading and the
		// model's voltage fell on either side of the rule's threshold.
		b.stats.RuleDisagreements++
	}
	b.anchor(end, deadline)
	b.woke = true
	return boards.Event{Kind: boards.Sleep, Task: -1}, nil
}

// checkTrip asks the supply whether a protection switched the output off
// (gate mode: the output is the harness's to switch).
func (b *Board) checkTrip(ctx context.Context) error {
	if b.opt.Mode != Gate {
		return nil
	}
	if err := b.g.CheckTrip(ctx); err != nil {
		var te *supply.TripError
		if errors.As(err, &te) {
			return fmt.Errorf("bench: the supply's protection switched the output off: %w", err)
		}
		return err
	}
	r, err := b.g.Measure(ctx)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if b.outputOn && !r.Output {
		return fmt.Errorf("bench: the output of %s is off, and the harness had it on", b.opt.Supply)
	}
	return nil
}

// bootWaiter is completeBoot's event handler: it keeps the first BOOT.
func (b *Board) bootWaiter(ev *boards.Event, boot **wire.Boot, at *time.Time) func(link.Event) (bool, error) {
	return func(le link.Event) (bool, error) {
		u, err := b.digest(le)
		if err != nil {
			return false, err
		}
		if u.Boot != nil {
			*boot, *at = u.Boot, le.Time
			if u.Done {
				ev.InferenceDone = true
			}
			return true, nil
		}
		return false, nil
	}
}
