package bench

import (
	"context"

	"github.com/batteryless/harness/boards"
)

// twin is the bench board as the engine would see it if it ran exactly as
// its warm-up measured: every step priced as the bench board prices it
// (tasks by their cycles, the boot by its BOOT's, the run-time rule by the
// same rule), progress kept by the plan's commits across brown-outs. The
// engine run on it (a dry run, before the bench's) predicts the capacitor's
// voltage and the power edges of the real run: the curve mode plays that
// prediction. It records the model's voltage at every step's ends.
type twin struct {
	b          *Board
	now, volts func() float64

	st        state
	task      int
	committed int
	woke      bool
	running   bool
	pending   []byte
	step      boards.Step
	open      bool

	phases []phase   // the on-stretches: turn-on to brown-out
	loads  []float64 // when each input was loaded (the host's talk: the model's clock stands)
}

// curvePoint is the model's capacitor voltage at time t.
type curvePoint struct{ t, v float64 }

// phase is a stretch with the board on, from turn-on to brown-out (or the
// run's end), and the model's voltage at its steps' ends.
type phase struct {
	on, off float64
	points  []curvePoint
}

func (w *twin) mark() {
	if w.now == nil || w.volts == nil || len(w.phases) == 0 {
		return
	}
	ph := &w.phases[len(w.phases)-1]
	p := curvePoint{w.now(), w.volts()}
	if n := len(ph.points); n > 0 && ph.points[n-1].t == p.t {
		ph.points[n-1] = p
		return
	}
	ph.points = append(ph.points, p)
}

func (w *twin) ModelClock(now func() float64)                 { w.now = now }
func (w *twin) SenseSupply(volts func() float64)              { w.volts = volts }
func (w *twin) EdgeErrors() (c, e []float64)                  { return nil, nil }
func (w *twin) QueueInput(_ context.Context, in []byte) error { w.pending = in; return nil }
func (w *twin) Running() bool                                 { return w.running }
func (w *twin) Loading() bool                                 { return w.pending != nil && !w.running }
func (w *twin) Progress() int                                 { return w.committed }
func (w *twin) Close() error                                  { return nil }

func (w *twin) PowerOn(context.Context) error {
	t := w.now()
	w.phases = append(w.phases, phase{on: t, off: -1})
	w.mark()
	w.st = booting
	return nil
}

func (w *twin) Next(_ context.Context, avail float64) (boards.Step, bool, error) {
	if w.open {
		return w.step, true, nil
	}
	var s boards.Step
	switch w.st {
	case booting:
		s = w.b.bootStep()
	case atTask:
		s = w.b.ruleStep(w.task, w.committed, w.woke, avail)
		if s.Kind == boards.Task {
			w.woke = false
		}
	case idle:
		if w.pending == nil || w.running {
			return boards.Step{Kind: boards.Idle, Task: -1}, false, nil
		}
		s = w.b.loadStep(len(w.pending))
	}
	w.mark()
	w.step, w.open = s, true
	return s, true, nil
}

func (w *twin) Complete(context.Context) (boards.Event, error) {
	w.open = false
	w.mark()
	pl := w.b.dep.Plan
	ev := boards.Event{Kind: w.step.Kind, Task: w.step.Task}
	switch w.step.Kind {
	case boards.Boot:
		if w.running && w.committed < len(pl.Tasks) {
			w.st, w.task = atTask, w.committed
		} else {
			w.st = idle
		}
	case boards.LoadInput:
		w.pending, w.running = nil, true
		w.st, w.task, w.committed = atTask, 0, 0
		w.loads = append(w.loads, w.now())
	case boards.Task:
		k := w.step.Task
		if pl.Tasks[k].Commit {
			w.committed, ev.Committed = k+1, true
		}
		w.task = k + 1
		if k == len(pl.Tasks)-1 {
			w.committed, w.running, w.st = len(pl.Tasks), false, idle
			ev.InferenceDone, ev.Output = true, w.b.dep.Want
		}
	case boards.EarlyCommit:
		w.committed, ev.Committed = w.task, true
	case boards.Sleep:
		w.woke = true
	}
	return ev, nil
}

func (w *twin) BrownOut(context.Context, float64) error {
	w.open = false
	w.mark()
	if n := len(w.phases); n > 0 {
		w.phases[n-1].off = w.now()
	}
	w.st = off
	return nil
}
