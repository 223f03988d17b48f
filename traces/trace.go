// Package traces reads, checks, summarizes, transforms, generates and writes
// harvested-energy traces: harvested power over time, as the power system model
// of the harness replays it into a capacitor.
//
// A trace is a sequence of samples (t seconds, p watts of power delivered by the
// harvester) with strictly increasing times, read through a streaming [Reader]:
// nothing in this package holds a whole trace in memory, so a day at 1 kHz
// (86.4 million rows) is read, summarized, resampled or converted in a few
// kilobytes.
//
// Power is a zero-order hold: sample i's power holds from t_i to t_{i+1}; the
// last sample holds for one nominal period ([Meta.Period]), or for the last
// interval between samples when the period is unknown (see [Meta.LastHold]). A
// REACT file of N rows therefore lasts N x 20 ms.
//
// Three file formats are read (see FORMAT.md beside this file): the project's
// canonical CSV, REACT's RF traces (50 Hz, mW) and Mementos' voltage traces
// (1 kHz, voltage across a 30 kOhm load). Every error names the file and line in
// one line of text, e.g. "rf.csv:17: time 0.04 s is not after the previous 0.06 s".
package traces

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
)

// Sample is one reading: from time T (seconds) the harvester delivers P watts,
// until the next sample's time.
type Sample struct {
	T float64 // seconds
	P float64 // watts, finite and non-negative
}

// Kind says how the source gave power.
type Kind int

const (
	// KindPower: the source gives power directly.
	KindPower Kind = iota
	// KindVoltageCurrent: the source gives voltage and current; P = V*I.
	KindVoltageCurrent
	// KindVoltageLoad: the source gives the voltage across a known load
	// resistance; P = V^2/R.
	KindVoltageLoad
)

// String returns "power", "voltage-current" or "voltage-load".
func (k Kind) String() string {
	switch k {
	case KindPower:
		return "power"
	case KindVoltageCurrent:
		return "voltage-current"
	case KindVoltageLoad:
		return "voltage-load"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Meta describes a trace: where it came from and how to read its power.
//
// Warnings (and, for CSV files with comments after the header, Comments) may
// grow while a trace is read; they are complete once Next has returned io.EOF.
type Meta struct {
	Name     string   // file base name or generator spec
	Format   string   // "csv", "react", "mementos", "synth"
	Kind     Kind     // how the source gave power
	Period   float64  // nominal sample period in s (0 if irregular or unknown)
	LoadOhms float64  // load resistance for KindVoltageLoad, else 0
	Comments []string // '#' lines of a CSV (metadata) without the '#', in order; notes of transforms
	Warnings []string // tolerated artefacts of the source
}

// LastHold returns how long the last sample of a trace holds its power: the
// nominal Period when it is known, else lastInterval (the time between the last
// two samples; pass 0 for a trace of one sample).
func (m Meta) LastHold(lastInterval float64) float64 {
	if m.Period > 0 {
		return m.Period
	}
	if lastInterval > 0 {
		return lastInterval
	}
	return 0
}

// clone returns a deep copy of m, so callers can append to its slices freely.
func (m Meta) clone() Meta {
	m.Comments = slices.Clone(m.Comments)
	m.Warnings = slices.Clone(m.Warnings)
	return m
}

// Reader is a stream of samples with strictly increasing times.
type Reader interface {
	// Meta describes the trace. It may be called at any time; see [Meta] for
	// the fields that grow while reading.
	Meta() Meta
	// Next returns the next sample, or io.EOF after the last one. Any other
	// error is final (later calls return it again) and, for files, names the
	// file and line.
	Next() (Sample, error)
}

// ReadCloser is a Reader over an open file.
type ReadCloser interface {
	Reader
	io.Closer
}

// Options tell a reader how to read a trace file.
type Options struct {
	// Format is "" to detect it from the first line, or "csv", "react",
	// "mementos".
	Format string
	// LoadOhms is the load resistance for traces that give the voltage across a
	// load (P = V^2/R). 0 means the file's "# load_ohms:" comment for CSV and
	// 30e3 (the load stated upstream) for Mementos. When non-zero it overrides
	// the file's comment.
	LoadOhms float64
}

// MementosLoadOhms is the load across which the Mementos traces were recorded.
const MementosLoadOhms = 30e3

// MaxLineBytes is the longest line (without its line ending) any reader accepts.
const MaxLineBytes = 4096

// Formats lists the file formats that Open and NewReader read.
var Formats = []string{"csv", "react", "mementos"}

// Error is a problem with a trace, at a line of a file (Line 0 when it is not
// about one line). Its message is always one line of text.
type Error struct {
	File string // file name as given to Open or NewReader
	Line int    // 1-based line number, or 0
	Msg  string // what is wrong
	Err  error  // underlying error (e.g. an I/O error), if any
}

// Error returns "file:line: msg".
func (e *Error) Error() string {
	if e.Line > 0 {
		return oneLine(e.File) + ":" + strconv.Itoa(e.Line) + ": " + oneLine(e.Msg)
	}
	return oneLine(e.File) + ": " + oneLine(e.Msg)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// errorf makes an *Error at a line.
func errorf(file string, line int, format string, args ...any) *Error {
	return &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// quote returns s quoted on one line, cut to a readable length.
func quote(s string) string {
	const max = 40
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

// fmtNum formats a number as short as round-trips.
func fmtNum(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// grid computes the times of a regular grid: sample i's time is the float64
// nearest to the exact product i x period when the period is a short decimal
// (0.02, 0.3, 1e-3) or the rate a whole number, so 50 Hz gives 0.02, 0.04,
// 0.06 and not 0.06000000000000001, and a 0.3 s grid gives 0.9, not
// 0.8999999999999999.
type grid struct {
	num    int64
	den    float64
	period float64
}

func newGrid(period float64) grid {
	num, den := gridFraction(period)
	return grid{num: num, den: den, period: period}
}

// at returns the time of sample i.
func (g grid) at(i int64) float64 {
	if g.den > 0 {
		if n := i * g.num; n/g.num == i && n < 1<<53 && n > -(1<<53) {
			return float64(n) / g.den
		}
	}
	return float64(i) * g.period
}

// gridFraction writes a period as num/den exactly in decimal (den a power of
// ten) or as 1/rate for a whole rate; den is 0 when neither fits.
func gridFraction(period float64) (num int64, den float64) {
	if !(period > 0) || !finite(period) {
		return 0, 0
	}
	scale := 1.0
	for range 16 {
		x := period * scale
		if r := math.Round(x); r >= 1 && r < 1<<40 && math.Abs(x-r) <= 1e-9*r && strconv.FormatFloat(r/scale, 'g', -1, 64) == strconv.FormatFloat(period, 'g', -1, 64) {
			return int64(r), scale
		}
		scale *= 10
	}
	if r := 1 / period; r >= 1 && r < 1<<40 && math.Abs(r-math.Round(r)) <= 1e-9*r && 1/math.Round(r) == period {
		return 1, math.Round(r)
	}
	return 0, 0
}

// FromSamples returns a Reader over samples held in memory (for tests and small
// traces). The samples are checked as they are read: times must increase
// strictly, powers be finite and non-negative.
func FromSamples(meta Meta, samples []Sample) Reader {
	return &sliceReader{meta: meta.clone(), s: samples}
}

type sliceReader struct {
	meta Meta
	s    []Sample
	i    int
	err  error
}

func (r *sliceReader) Meta() Meta { return r.meta.clone() }

func (r *sliceReader) Next() (Sample, error) {
	if r.err != nil {
		return Sample{}, r.err
	}
	if r.i >= len(r.s) {
		if r.i == 0 {
			r.err = errorf(r.meta.Name, 0, "empty trace (no samples)")
			return Sample{}, r.err
		}
		return Sample{}, io.EOF
	}
	s := r.s[r.i]
	if err := checkSample(s); err != nil {
		r.err = errorf(r.meta.Name, 0, "sample %d: %s", r.i, err)
		return Sample{}, r.err
	}
	if r.i > 0 && !(s.T > r.s[r.i-1].T) {
		r.err = errorf(r.meta.Name, 0, "sample %d: time %s s is not after the previous %s s", r.i, fmtNum(s.T), fmtNum(r.s[r.i-1].T))
		return Sample{}, r.err
	}
	r.i++
	return s, nil
}

// checkSample returns a one-line reason why s is not a valid sample, or "".
func checkSample(s Sample) error {
	switch {
	case !finite(s.T):
		return fmt.Errorf("time %s is not a finite number", fmtNum(s.T))
	case !finite(s.P):
		return fmt.Errorf("power %s is not a finite number", fmtNum(s.P))
	case s.P < 0:
		return fmt.Errorf("power %s W is negative", fmtNum(s.P))
	}
	return nil
}

// ReadAll reads a whole trace into memory, for small traces: it fails when the
// trace has more than limit samples rather than growing without bound.
func ReadAll(r Reader, limit int) ([]Sample, error) {
	var out []Sample
	for {
		s, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if len(out) >= limit {
			return out, fmt.Errorf("%s: more than %d samples", nameOf(r), limit)
		}
		out = append(out, s)
	}
}
