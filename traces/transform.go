package traces

import (
	"fmt"
	"io"
	"math"
)

// Every transform below is a streaming Reader over another Reader: it holds a
// sample or two, never the trace. Transforms add a note to Meta.Comments (so a
// written CSV records what was done) and report errors in their arguments on
// the first call to Next.

// nameOf names a trace in a one-line message.
func nameOf(r Reader) string { return oneLine(r.Meta().Name) }

// outTimes checks that a transform's output times still increase strictly
// (float rounding could merge two times when shifting by a large offset).
type outTimes struct {
	last float64
	n    int64
}

func (o *outTimes) check(name func() string, what string, t float64) error {
	if !finite(t) || (o.n > 0 && !(t > o.last)) {
		return fmt.Errorf("%s: %s: output time %s s does not follow %s s (time values too large for the step)", name(), what, fmtNum(t), fmtNum(o.last))
	}
	o.last = t
	o.n++
	return nil
}

// Slice returns the part of r from time from (inclusive) to time to
// (exclusive), with times rebased so that from becomes 0. When from falls
// inside a sample's hold, the slice starts with that sample's power at 0, so
// the slice's energy is the trace's energy over the window. Samples keep their
// grid, so a window whose ends are not on it ends with a hold of the nominal
// period. to may be +Inf for "to the end". Reading stops at the first sample
// at or after to.
func Slice(r Reader, from, to float64) Reader {
	return &sliceT{r: r, from: from, to: to}
}

type sliceT struct {
	r        Reader
	from, to float64
	started  bool
	done     bool
	err      error
	prev     Sample // last sample before from
	havePrev bool
	lastDT   float64
	pending  Sample // a sample read but not yet returned
	havePend bool
	out      outTimes
}

func (s *sliceT) Meta() Meta {
	m := s.r.Meta().clone()
	m.Comments = append(m.Comments, fmt.Sprintf("transform: slice from %s s to %s s, rebased to 0", fmtNum(s.from), fmtNum(s.to)))
	return m
}

func (s *sliceT) name() string { return nameOf(s.r) }

func (s *sliceT) fail(err error) (Sample, error) {
	s.err = err
	return Sample{}, err
}

func (s *sliceT) emit(t, p float64) (Sample, error) {
	if err := s.out.check(s.name, "slice", t); err != nil {
		return s.fail(err)
	}
	return Sample{T: t, P: p}, nil
}

func (s *sliceT) Next() (Sample, error) {
	if s.err != nil {
		return Sample{}, s.err
	}
	if s.done {
		return Sample{}, io.EOF
	}
	if !s.started {
		s.started = true
		if !finite(s.from) || math.IsNaN(s.to) || !(s.to > s.from) {
			return s.fail(fmt.Errorf("%s: slice: window from %s s to %s s is empty or not finite", nameOf(s.r), fmtNum(s.from), fmtNum(s.to)))
		}
		for {
			x, err := s.r.Next()
			if err == io.EOF {
				if s.havePrev && s.from < s.prev.T+s.r.Meta().LastHold(s.lastDT) {
					s.done = true
					return s.emit(0, s.prev.P)
				}
				end := "no samples"
				if s.havePrev {
					end = "ends at " + fmtNum(s.prev.T+s.r.Meta().LastHold(s.lastDT)) + " s"
				}
				return s.fail(fmt.Errorf("%s: slice: window from %s s is past the end of the trace (%s)", nameOf(s.r), fmtNum(s.from), end))
			}
			if err != nil {
				return s.fail(err)
			}
			if x.T < s.from {
				if s.havePrev {
					s.lastDT = x.T - s.prev.T
				}
				s.prev, s.havePrev = x, true
				continue
			}
			if x.T >= s.to {
				s.done = true
				if s.havePrev {
					return s.emit(0, s.prev.P)
				}
				return s.fail(fmt.Errorf("%s: slice: no samples between %s s and %s s (the trace starts at %s s)", nameOf(s.r), fmtNum(s.from), fmtNum(s.to), fmtNum(x.T)))
			}
			if x.T > s.from && s.havePrev {
				s.pending, s.havePend = x, true
				return s.emit(0, s.prev.P)
			}
			return s.emit(x.T-s.from, x.P)
		}
	}
	var x Sample
	if s.havePend {
		x, s.havePend = s.pending, false
	} else {
		var err error
		x, err = s.r.Next()
		if err == io.EOF {
			s.done = true
			return Sample{}, io.EOF
		}
		if err != nil {
			return s.fail(err)
		}
	}
	if x.T >= s.to {
		s.done = true
		return Sample{}, io.EOF
	}
	return s.emit(x.T-s.from, x.P)
}

// Scale returns r with every power multiplied by k (k >= 0), e.g. to model a
// harvester k times larger.
func Scale(r Reader, k float64) Reader { return &scaleT{r: r, k: k} }

type scaleT struct {
	r   Reader
	k   float64
	err error
}

func (s *scaleT) Meta() Meta {
	m := s.r.Meta().clone()
	m.Comments = append(m.Comments, "transform: power scaled by "+fmtNum(s.k))
	return m
}

func (s *scaleT) Next() (Sample, error) {
	if s.err != nil {
		return Sample{}, s.err
	}
	if !finite(s.k) || s.k < 0 {
		s.err = fmt.Errorf("%s: scale: factor %s is not a finite non-negative number", nameOf(s.r), fmtNum(s.k))
		return Sample{}, s.err
	}
	x, err := s.r.Next()
	if err != nil {
		if err != io.EOF {
			s.err = err
		}
		return Sample{}, err
	}
	x.P *= s.k
	if math.IsInf(x.P, 0) {
		s.err = fmt.Errorf("%s: scale: power overflows at %s s", nameOf(s.r), fmtNum(x.T))
		return Sample{}, s.err
	}
	return x, nil
}

// Limit returns the first n samples of r.
func Limit(r Reader, n int64) Reader { return &limitT{r: r, n: n} }

type limitT struct {
	r    Reader
	n, i int64
}

func (l *limitT) Meta() Meta {
	m := l.r.Meta().clone()
	m.Comments = append(m.Comments, "transform: first "+itoa(l.n)+" samples")
	return m
}

func (l *limitT) Next() (Sample, error) {
	if l.i >= l.n {
		if l.n <= 0 {
			return Sample{}, fmt.Errorf("%s: limit: %d samples is not a positive count", nameOf(l.r), l.n)
		}
		return Sample{}, io.EOF
	}
	x, err := l.r.Next()
	if err == nil {
		l.i++
	}
	return x, err
}

// Loop repeats a trace end to end until a total duration: each repetition
// starts where the previous one's last sample ends its hold, so time is
// continuous; times are rebased to start at 0. open is called for each
// repetition; Readers it returns that are also io.Closers are closed when
// their repetition ends (or when until is reached).
func Loop(open func() (Reader, error), until float64) Reader {
	return &loopT{open: open, until: until}
}

type loopT struct {
	open   func() (Reader, error)
	until  float64
	cur    Reader
	meta   *Meta
	offset float64
	first  Sample
	prev   Sample
	lastDT float64
	n      int64 // samples of the current repetition
	reps   int64
	err    error
	done   bool
	out    outTimes
}

func (l *loopT) name() string {
	if l.meta != nil {
		return oneLine(l.meta.Name)
	}
	return "loop"
}

func (l *loopT) Meta() Meta {
	if l.meta == nil && l.err == nil {
		l.openNext()
	}
	var m Meta
	if l.meta != nil {
		m = l.meta.clone()
	}
	m.Comments = append(m.Comments, "transform: looped to "+fmtNum(l.until)+" s")
	return m
}

func (l *loopT) openNext() error {
	r, err := l.open()
	if err == nil && r == nil {
		err = fmt.Errorf("%s: loop: open returned no reader", l.name())
	}
	if err != nil {
		l.err = err
		return err
	}
	l.cur, l.n = r, 0
	l.reps++
	if l.meta == nil {
		m := r.Meta()
		l.meta = &m
	}
	return nil
}

func (l *loopT) closeCur() {
	if c, ok := l.cur.(io.Closer); ok {
		c.Close()
	}
	l.cur = nil
}

func (l *loopT) fail(err error) (Sample, error) {
	if l.cur != nil {
		l.closeCur()
	}
	l.err = err
	return Sample{}, err
}

func (l *loopT) Next() (Sample, error) {
	if l.err != nil {
		return Sample{}, l.err
	}
	if l.done {
		return Sample{}, io.EOF
	}
	if !(l.until > 0) || math.IsInf(l.until, 0) {
		return l.fail(fmt.Errorf("%s: loop: total duration %s s is not a positive finite time", l.name(), fmtNum(l.until)))
	}
	for {
		if l.cur == nil {
			if err := l.openNext(); err != nil {
				return Sample{}, err
			}
		}
		x, err := l.cur.Next()
		if err == io.EOF {
			if l.n == 0 {
				return l.fail(fmt.Errorf("%s: loop: repetition %d has no samples", l.name(), l.reps))
			}
			dur := l.prev.T - l.first.T + l.cur.Meta().LastHold(l.lastDT)
			if !(dur > 0) {
				return l.fail(fmt.Errorf("%s: loop: the trace lasts 0 s, it cannot be repeated", l.name()))
			}
			l.offset += dur
			l.closeCur()
			continue
		}
		if err != nil {
			return l.fail(err)
		}
		if l.n == 0 {
			l.first = x
		} else {
			l.lastDT = x.T - l.prev.T
		}
		l.prev = x
		l.n++
		t := l.offset + (x.T - l.first.T)
		if t >= l.until {
			l.done = true
			l.closeCur()
			return Sample{}, io.EOF
		}
		if err := l.out.check(l.name, "loop", t); err != nil {
			return l.fail(err)
		}
		return Sample{T: t, P: x.P}, nil
	}
}

// Resample returns r on a regular grid of the given period, starting at r's
// first sample: each output sample's power is the energy r delivers within its
// bin divided by the period, which is exact for a zero-order hold, so the
// energy over any whole number of bins is preserved. The last bin is emitted
// even when the trace ends inside it (its energy divided by the whole period),
// so the total energy is kept and the duration rounds up to whole bins.
func Resample(r Reader, period float64) Reader { return &resampleT{r: r, period: period} }

type resampleT struct {
	r       Reader
	period  float64
	started bool
	inEOF   bool
	done    bool
	err     error
	t0      float64
	p       float64 // power of the current segment [a, end)
	a, end  float64
	haveSeg bool
	next    Sample
	lastDT  float64
	k       int64   // current bin
	acc     float64 // energy of the current bin, without the open run
	covered float64
	haveRun bool // an open run of equal power in the current bin
	runP    float64
	runFrom float64
	runTo   float64
	emitted int64
	out     outTimes
	grid    grid
}

func (s *resampleT) Meta() Meta {
	m := s.r.Meta().clone()
	m.Period = s.period
	m.Comments = append(m.Comments, "transform: resampled to "+fmtNum(s.period)+" s bins, energy-preserving")
	return m
}

func (s *resampleT) name() string { return nameOf(s.r) }

func (s *resampleT) fail(err error) (Sample, error) {
	s.err = err
	return Sample{}, err
}

// segment moves to the next held sample. It returns false at the end.
func (s *resampleT) segment() (bool, error) {
	if s.inEOF {
		return false, nil
	}
	cur := s.next
	x, err := s.r.Next()
	switch {
	case err == io.EOF:
		s.inEOF = true
		s.end = cur.T + s.r.Meta().LastHold(s.lastDT)
	case err != nil:
		return false, err
	default:
		s.lastDT = x.T - cur.T
		s.end = x.T
		s.next = x
	}
	s.a, s.p, s.haveSeg = cur.T, cur.P, true
	return true, nil
}

func (s *resampleT) bin(k int64) float64 { return s.t0 + s.grid.at(k) }

func (s *resampleT) Next() (Sample, error) {
	if s.err != nil {
		return Sample{}, s.err
	}
	if s.done {
		return Sample{}, io.EOF
	}
	if !s.started {
		s.started = true
		if !finite(s.period) || !(s.period > 0) {
			return s.fail(fmt.Errorf("%s: resample: period %s s is not a positive finite time", nameOf(s.r), fmtNum(s.period)))
		}
		x, err := s.r.Next()
		if err == io.EOF {
			return s.fail(fmt.Errorf("%s: resample: empty trace (no samples)", nameOf(s.r)))
		}
		if err != nil {
			return s.fail(err)
		}
		s.next, s.t0 = x, x.T
		s.grid = newGrid(s.period)
	}
	for {
		if !s.haveSeg {
			ok, err := s.segment()
			if err != nil {
				return s.fail(err)
			}
			if !ok {
				s.done = true
				if s.covered > 1e-9*s.period {
					return s.emit()
				}
				if s.emitted == 0 {
					return s.fail(fmt.Errorf("%s: resample: the trace lasts 0 s", nameOf(s.r)))
				}
				return Sample{}, io.EOF
			}
		}
		bs, be := s.bin(s.k), s.bin(s.k+1)
		lo, hi := max(s.a, bs), min(s.end, be)
		if hi > lo {
			// Runs of equal power within a bin are integrated in one product,
			// so a constant stretch resamples to exactly its power.
			if !s.haveRun || s.p != s.runP {
				s.flushRun()
				s.runP, s.runFrom, s.haveRun = s.p, lo, true
			}
			s.runTo = hi
			s.covered += hi - lo
		}
		if s.end >= be {
			s.a = be
			if s.a >= s.end {
				s.haveSeg = false
			}
			return s.emit()
		}
		s.haveSeg = false
	}
}

func (s *resampleT) flushRun() {
	if s.haveRun {
		s.acc += s.runP * (s.runTo - s.runFrom)
		s.haveRun = false
	}
}

func (s *resampleT) emit() (Sample, error) {
	s.flushRun()
	t := s.bin(s.k)
	if err := s.out.check(s.name, "resample", t); err != nil {
		return s.fail(err)
	}
	// Dividing by the bin's width as float64 times give it (not the nominal
	// period) keeps P*width, and so Summarize's energy, equal to the bin's.
	x := Sample{T: t, P: s.acc / (s.bin(s.k+1) - t)}
	s.k++
	s.acc, s.covered = 0, 0
	s.emitted++
	return x, nil
}
