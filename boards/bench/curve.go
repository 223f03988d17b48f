package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"periph.io/x/conn/v3/physic"

	"github.com/batteryless/harness/boards/supply"
	"github.com/batteryless/harness/harness/replay"
)

// The curve mode (open loop): the capacitor voltage the power model
// predicts for this board, for the same plan and trace, played by the
// instrument itself. The prediction is a dry run of the engine on the
// board's twin (twin.go: every step priced as the bench prices it); its
// on-stretches are compiled to a staircase within a tolerance, with each
// brown-out on a step boundary (the voltage goes to 0 V there: off needs a
// sink on the rail), and its off-stretches compressed to the off time.
//
// The host's talk with the board (writing an input, reading an output)
// takes a time the prediction cannot know, as the model's clock stands
// while it runs (as in gate mode). So the curve is cut at every input's
// load into segments, one per inference (and one before the first): each
// is uploaded while the last one's final level holds the rail, and
// triggered once, as soon as the board has acknowledged its START. Within a segment the
// instrument's clock rules.
//
// LIST steps have a dwell each (the threshold crossings exact to the
// instrument's resolution); an arbitrary waveform of one dwell (N67xx ARB
// CDW) holds more points, its crossings within a dwell. A segment that
// neither form follows within the tolerance is refused, naming the error
// each could reach.

// CurveInfo describes the lists a curve-mode run played.
type CurveInfo struct {
	Kind      string  `json:"kind"` // the instrument's list form: "LIST", "ARB CDW", ...
	Segments  int     `json:"segments"`
	Points    int     `json:"points"` // the most steps of a segment
	DwellS    float64 `json:"dwell_s,omitempty"`
	ErrorV    float64 `json:"error_v"` // the staircase's largest error against the model's curve
	DurationS float64 `json:"duration_s"`
	// PowerCycles is the prediction's: the lists' on-stretches.
	PowerCycles int `json:"power_cycles"`
}

// curvePlan is a compiled curve: its segments, uploaded and triggered one
// after the other.
type curvePlan struct {
	segs []*curveSeg
	cur  int // the segment playing
	info CurveInfo
}

// curveSeg is one segment: the model's time from `from` to `to`, its
// on-stretches, where they fall in the list's time, its steps, and when
// it was triggered.
type curveSeg struct {
	from, to float64
	phases   []phase
	listOn   []float64 // phase i's turn-on and brown-out in the list's time, s
	listOff  []float64
	steps    []supply.Step
	info     CurveInfo
	start    time.Time // the trigger's write; zero until triggered
}

// seg is the segment of the model's instant t.
func (c *curvePlan) seg(t float64) *curveSeg {
	for _, s := range c.segs {
		if t < s.to || s == c.segs[len(c.segs)-1] {
			return s
		}
	}
	return c.segs[len(c.segs)-1]
}

// listTime is the segment's list time of the model's instant t: the
// on-stretches one to one, the off-stretches scaled to the list's off
// time.
func (s *curveSeg) listTime(t float64) float64 {
	prevModel, prevList := s.from, 0.0
	for i, ph := range s.phases {
		if t < ph.on {
			span := ph.on - prevModel
			if span <= 0 {
				return s.listOn[i]
			}
			return prevList + (s.listOn[i]-prevList)*(t-prevModel)/span
		}
		if t <= ph.off {
			return s.listOn[i] + (t - ph.on)
		}
		prevModel, prevList = ph.off, s.listOff[i]
	}
	return prevList + (t - prevModel)
}

// wall is the wall instant of the model's instant t.
func (c *curvePlan) wall(t float64) time.Time {
	s := c.seg(t)
	if s.start.IsZero() {
		return time.Now()
	}
	return s.start.Add(time.Duration(s.listTime(t) * 1e9))
}

// edgeError is how far the list's edge (on or off) nearest to the model's
// instant t falls from it, in seconds.
func (c *curvePlan) edgeError(t float64, on bool) float64 {
	s := c.seg(t)
	best, bestD := 0.0, math.Inf(1)
	for i, ph := range s.phases {
		model, list := ph.off, s.listOff[i]
		if on {
			model, list = ph.on, s.listOn[i]
		}
		if d := math.Abs(model - t); d < bestD {
			best, bestD = list-s.listTime(t), d
		}
	}
	return best
}

// prepareCurve runs the twin, compiles its segments for the instrument (or
// refuses), uploads the first, switches the output on at 0 V and starts
// it.
func (b *Board) prepareCurve(ctx context.Context, cfg replay.Config) error {
	w := &twin{b: b}
	dry := cfg
	dry.Board, dry.BoardName, dry.Log, dry.Header, dry.Progress = w, "twin", nil, nil, nil
	res, err := replay.Run(ctx, dry)
	if err != nil {
		var ll *replay.LivelockError
		if !errors.As(err, &ll) {
			return fmt.Errorf("bench: curve: the prediction: %w", err)
		}
	}
	end := res.SimTime
	if n := len(w.phases); n > 0 && w.phases[n-1].off < 0 {
		w.phases[n-1].off = end // on at the run's end
	}
	plan, err := b.compilePlan(w.phases, w.loads, end)
	if err != nil {
		return fmt.Errorf("bench: curve mode on %s: %w", b.stats.Instrument, err)
	}
	b.logf("curve: %d power cycles predicted, %d segments of at most %d %s points (dwell %v), largest error %.1f mV, %.2f s",
		plan.info.PowerCycles, len(plan.segs), plan.info.Points, plan.info.Kind, time.Duration(plan.info.DwellS*1e9), plan.info.ErrorV*1e3, plan.info.DurationS)
	if err := b.setVoltage(ctx, 0); err != nil {
		return err
	}
	if _, err := b.edge(ctx, true); err != nil {
		return err
	}
	b.curve = plan
	b.stats.Curve = &plan.info
	b.fixed = true
	if err := b.uploadSegment(ctx, 0); err != nil {
		return err
	}
	return b.triggerSegment(ctx, 0)
}

// uploadSegment uploads and arms segment i (the last segment's final level
// holds the rail meanwhile).
func (b *Board) uploadSegment(ctx context.Context, i int) error {
	if err := b.g.UploadList(ctx, b.curve.segs[i].steps); err != nil {
		return fmt.Errorf("bench: curve segment %d: %w", i, err)
	}
	if err := b.g.ArmList(ctx); err != nil {
		return fmt.Errorf("bench: curve segment %d: %w", i, err)
	}
	return nil
}

// triggerSegment starts segment i; its clock starts now.
func (b *Board) triggerSegment(ctx context.Context, i int) error {
	s := b.curve.segs[i]
	s.start = time.Now()
	if err := b.g.TriggerList(ctx); err != nil {
		return fmt.Errorf("bench: curve segment %d: %w", i, err)
	}
	b.curve.cur = i
	return nil
}

// ErrOffCurve is wrapped by the error of a curve-mode run whose board
// left the predicted curve: the instrument's list no longer says what the
// run's model does.
var ErrOffCurve = errors.New("the board left the predicted curve")

// curveSlack is how far the run's model may drift from the prediction it
// plays before the run stops.
const curveSlack = 0.005

// offCurve is the error of a drift of the model's instant t from the
// prediction's instant want for what.
func (b *Board) offCurve(what string, t, want float64) error {
	return fmt.Errorf("bench: curve mode: %w at %.3f s of the model: %s %.1f ms from the prediction's (the board finished %d tasks in time the model had cut, and ran %d steps past their end: an open-loop list replays only a board that keeps to its prediction; --power gate follows any board)",
		ErrOffCurve, t, what, (t-want)*1e3, b.stats.LateCuts, b.stats.Hangs)
}

// beforeLoad readies the next segment before the host writes an input at
// the model's instant t, where the prediction loads it too.
func (b *Board) beforeLoad(ctx context.Context, t float64) error {
	if b.curve == nil || b.curve.cur+1 >= len(b.curve.segs) {
		return nil
	}
	next := b.curve.segs[b.curve.cur+1]
	if math.Abs(t-next.from) > curveSlack {
		return b.offCurve("an input loaded", t, next.from)
	}
	return b.uploadSegment(ctx, b.curve.cur+1)
}

// afterLoad starts the next segment: the board has its START.
func (b *Board) afterLoad(ctx context.Context) error {
	if b.curve == nil || b.curve.cur+1 >= len(b.curve.segs) {
		return nil
	}
	return b.triggerSegment(ctx, b.curve.cur+1)
}

// compilePlan cuts the prediction at the loads and compiles each segment.
func (b *Board) compilePlan(phases []phase, loads []float64, end float64) (*curvePlan, error) {
	if len(phases) == 0 {
		return nil, errors.New("the prediction has no power cycle (the trace never turns the board on)")
	}
	cuts := append(append([]float64{0}, loads...), end)
	plan := &curvePlan{}
	last := 0.0 // the model's last brown-out
	for k := 0; k+1 < len(cuts); k++ {
		from, to := cuts[k], cuts[k+1]
		if k+2 == len(cuts) {
			to = math.Max(to, end)
		}
		s := &curveSeg{from: from, to: to}
		var offs []float64
		for _, ph := range phases {
			if ph.off <= from || ph.on >= to {
				continue
			}
			p := ph
			if p.on < from { // the phase goes on across the load
				p.on = from
			}
			p.off = math.Min(p.off, to)
			d := 0.0
			if ph.on >= from {
				d = b.opt.MinOff.Seconds()
				if b.opt.OffTime == OffReal {
					d = math.Max(d, ph.on-last)
				}
			}
			offs = append(offs, d)
			s.phases = append(s.phases, p)
			last = ph.off
		}
		if len(s.phases) == 0 {
			continue
		}
		info, err := s.compile(offs, b.caps.List, b.caps.Arb, b.opt.CurveTolerance, supply.FromAmps(b.prof.SupplyMaxA))
		if err != nil {
			return nil, fmt.Errorf("segment %d (%.3f s to %.3f s of the model): %w", k, from, to, err)
		}
		s.info = info
		plan.segs = append(plan.segs, s)
		plan.info.Kind = info.Kind
		plan.info.Points = max(plan.info.Points, info.Points)
		plan.info.DwellS = max(plan.info.DwellS, info.DwellS)
		plan.info.ErrorV = max(plan.info.ErrorV, info.ErrorV)
		plan.info.DurationS += info.DurationS
	}
	plan.info.Segments = len(plan.segs)
	plan.info.PowerCycles = len(phases)
	return plan, nil
}

// curveSample is how finely the model's curve is looked at when it is
// compiled.
const curveSample = 20e-6

// voltageAt is the model's voltage at t within a phase, the energy linear
// between the recorded points (as the gate mode's rail streams it).
func (ph *phase) voltageAt(t float64) float64 {
	pts := ph.points
	if len(pts) == 0 {
		return 0
	}
	if t <= pts[0].t {
		return pts[0].v
	}
	for i := 1; i < len(pts); i++ {
		if t <= pts[i].t {
			a, b := pts[i-1], pts[i]
			x := 0.0
			if b.t > a.t {
				x = (t - a.t) / (b.t - a.t)
			}
			return math.Sqrt(max(a.v*a.v+(b.v*b.v-a.v*a.v)*x, 0))
		}
	}
	return pts[len(pts)-1].v
}

// stairs covers the phase with holds within tol of the model's curve, at
// least minDwell each: their lengths and levels, and the largest error.
func (ph *phase) stairs(tol, minDwell float64) (lens, levels []float64, worst float64) {
	t := ph.on
	for t < ph.off-1e-12 {
		lo, hi := math.Inf(1), math.Inf(-1)
		end := t
		for {
			next := min(end+curveSample, ph.off)
			v := ph.voltageAt(next)
			nlo, nhi := min(lo, v, ph.voltageAt(t)), max(hi, v, ph.voltageAt(t))
			if nhi-nlo > 2*tol && end-t >= minDwell {
				break
			}
			lo, hi, end = nlo, nhi, next
			if end >= ph.off {
				break
			}
		}
		lens = append(lens, end-t)
		levels = append(levels, (lo+hi)/2)
		worst = max(worst, (hi-lo)/2)
		t = end
	}
	return lens, levels, worst
}

// compile compiles the segment (each phase after its off time) for the
// instrument's list, or its arbitrary waveform, or says what each could
// reach.
func (s *curveSeg) compile(offs []float64, list, arb *supply.ListLimits, tol float64, current physic.ElectricCurrent) (CurveInfo, error) {
	if list == nil && arb == nil {
		return CurveInfo{}, errors.New("the instrument has no list: use --power gate")
	}
	var errs []string
	if list != nil && list.MaxPoints > 1 {
		if info, err := s.compileList(offs, list, tol, current); err == nil {
			return info, nil
		} else {
			errs = append(errs, err.Error())
		}
	}
	if arb != nil {
		if info, err := s.compileArb(offs, arb, tol, current); err == nil {
			return info, nil
		} else {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) == 0 {
		errs = append(errs, "the instrument's list holds one step (a triggered level): it cannot play a curve")
	}
	return CurveInfo{}, fmt.Errorf("the predicted curve cannot be followed within %.1f mV: %s; use --power gate, or a larger tolerance", tol*1e3, strings.Join(errs, "; "))
}

// quantize rounds d to the list's resolution, within its dwell range.
func quantize(d float64, l *supply.ListLimits) time.Duration {
	q := time.Duration(math.Round(d * 1e9))
	if r := l.DwellResolution; r > 0 {
		q = (q + r/2) / r * r
	}
	return max(q, l.MinDwell)
}

// compileList makes LIST steps: an off step (0 V, split at the longest
// dwell) before each phase that starts in the segment, its stairs; the
// last level holds after the list's end (until the next segment).
func (s *curveSeg) compileList(offs []float64, l *supply.ListLimits, tol float64, current physic.ElectricCurrent) (CurveInfo, error) {
	build := func(tol float64) ([]supply.Step, []float64, []float64, float64, float64) {
		var steps []supply.Step
		var on, off []float64
		at, worst := 0.0, 0.0
		put := func(v, d float64) {
			for d > 1e-12 {
				part := d
				if l.MaxDwell > 0 {
					part = min(part, l.MaxDwell.Seconds())
				}
				q := quantize(part, l)
				steps = append(steps, supply.Step{Voltage: supply.FromVolts(max(v, 0)), Current: current, Dwell: q})
				at += q.Seconds()
				d -= part
			}
		}
		for i := range s.phases {
			ph := &s.phases[i]
			put(0, offs[i])
			on = append(on, at)
			lens, levels, w := ph.stairs(tol, l.MinDwell.Seconds())
			worst = max(worst, w)
			for k := range lens {
				put(levels[k], lens[k])
			}
			off = append(off, at)
		}
		if s.phases[len(s.phases)-1].off < s.to-1e-9 {
			put(0, l.MinDwell.Seconds()) // the segment ends off
		}
		return steps, on, off, worst, at
	}
	steps, on, off, worst, dur := build(tol)
	if len(steps) <= l.MaxPoints {
		s.steps, s.listOn, s.listOff = steps, on, off
		return CurveInfo{Kind: l.Kind, Points: len(steps), ErrorV: worst, DurationS: dur}, nil
	}
	// The best this list could do: the smallest tolerance that fits.
	lo, hi := tol, 4.0
	for range 30 {
		mid := (lo + hi) / 2
		if st, _, _, _, _ := build(mid); len(st) <= l.MaxPoints {
			hi = mid
		} else {
			lo = mid
		}
	}
	return CurveInfo{}, fmt.Errorf("the %s would need %d steps, it holds %d (within its %d steps the error would be %.1f mV)", l.Kind, len(steps), l.MaxPoints, l.MaxPoints, hi*1e3)
}

// compileArb samples the segment at one dwell, the shortest the
// waveform's points allow.
func (s *curveSeg) compileArb(offs []float64, l *supply.ListLimits, tol float64, current physic.ElectricCurrent) (CurveInfo, error) {
	total := 0.0
	for i, ph := range s.phases {
		total += offs[i] + (ph.off - ph.on)
	}
	total += l.MinDwell.Seconds()
	d := quantize(max(total/float64(l.MaxPoints), l.MinDwell.Seconds()), l)
	for d.Seconds()*float64(l.MaxPoints) < total {
		d += max(l.DwellResolution, time.Nanosecond)
	}
	if l.MaxDwell > 0 && d > l.MaxDwell {
		return CurveInfo{}, fmt.Errorf("the %s's points at its longest dwell cover less than the segment's %.1f s", l.Kind, total)
	}
	ds := d.Seconds()
	var steps []supply.Step
	var on, off []float64
	at, worst := 0.0, 0.0
	for i := range s.phases {
		ph := &s.phases[i]
		for n := int(math.Round(offs[i] / ds)); n > 0; n-- {
			steps = append(steps, supply.Step{Voltage: 0, Current: current, Dwell: d})
			at += ds
		}
		on = append(on, at)
		n := max(int(math.Round((ph.off-ph.on)/ds)), 1)
		for k := range n {
			a, b := ph.on+float64(k)*ds, min(ph.on+float64(k+1)*ds, ph.off)
			va, vb := ph.voltageAt(a), ph.voltageAt(b)
			worst = max(worst, math.Abs(va-vb)/2)
			steps = append(steps, supply.Step{Voltage: supply.FromVolts((va + vb) / 2), Current: current, Dwell: d})
			at += ds
		}
		off = append(off, at)
	}
	if s.phases[len(s.phases)-1].off < s.to-1e-9 {
		steps = append(steps, supply.Step{Voltage: 0, Current: current, Dwell: d})
		at += ds
	}
	if len(steps) > l.MaxPoints {
		return CurveInfo{}, fmt.Errorf("the %s would need %d points of %v, it holds %d", l.Kind, len(steps), d, l.MaxPoints)
	}
	if worst > tol {
		return CurveInfo{}, fmt.Errorf("the %s's %d points of at least %v follow the curve within %.1f mV at best", l.Kind, l.MaxPoints, d, worst*1e3)
	}
	s.steps, s.listOn, s.listOff = steps, on, off
	return CurveInfo{Kind: l.Kind, Points: len(steps), DwellS: ds, ErrorV: worst, DurationS: at}, nil
}
