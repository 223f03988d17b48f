package traces

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// MementosPeriod is the sample period of the Mementos traces (1 kHz).
const MementosPeriod = 0.001

const dayMS = 24 * 60 * 60 * 1000

// mementosReader reads the Mementos traces: "<timestamp>\t<volts>" lines, no
// header, one sample per millisecond, voltage across a load.
//
// The timestamps are the time of day written as digits HHMMSSmmm, with two
// artefacts: minute rollovers (a raw jump of +40001) and one-second glitches
// (+1001 then -999). Time is taken as row index x 1 ms; the timestamps are
// still checked, and anything but +1, a rollover or a glitch is an error.
type mementosReader struct {
	lr     *lineReader
	meta   Meta
	load   float64
	fields [2][]byte
	n      int64 // rows read

	prevTS    int64
	prevLine  int
	pending   bool // the previous timestamp jumped +1001 ms: a glitch must step back now
	rollovers int
	glitches  int
	done      bool
}

func newMementosReader(br *bufio.Reader, file string, opt Options) *mementosReader {
	load := opt.LoadOhms
	if load == 0 {
		load = MementosLoadOhms
	}
	return &mementosReader{
		lr:   newLineReader(br, file),
		load: load,
		meta: Meta{Name: baseName(file), Format: "mementos", Kind: KindVoltageLoad, Period: MementosPeriod, LoadOhms: load},
	}
}

func (r *mementosReader) Meta() Meta { return r.meta.clone() }

// clockMS decodes a HHMMSSmmm timestamp into milliseconds since midnight.
func clockMS(ts int64) (int64, bool) {
	ms := ts % 1000
	s := ts / 1000 % 100
	m := ts / 100000 % 100
	h := ts / 10000000
	if s >= 60 || m >= 60 || h >= 24 {
		return 0, false
	}
	return ((h*60+m)*60+s)*1000 + ms, true
}

// clockStep returns the step from a to b in clock milliseconds, wrapped over
// midnight into (-12 h, 12 h], and whether both decode as clock times.
func clockStep(a, b int64) (int64, bool) {
	ca, ok1 := clockMS(a)
	cb, ok2 := clockMS(b)
	if !ok1 || !ok2 {
		return 0, false
	}
	d := (cb - ca) % dayMS
	if d <= -dayMS/2 {
		d += dayMS
	} else if d > dayMS/2 {
		d -= dayMS
	}
	return d, true
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// mementosWarning describes the timestamp artefacts met, or returns "".
func mementosWarning(rollovers, glitches int) string {
	var parts []string
	if rollovers > 0 {
		parts = append(parts, plural(rollovers, "minute rollover", "minute rollovers"))
	}
	if glitches > 0 {
		parts = append(parts, plural(glitches, "seconds glitch", "seconds glitches"))
	}
	if len(parts) == 0 {
		return ""
	}
	return "mementos: " + strings.Join(parts, " and ") + " in timestamps; time taken as row index x 1 ms"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (r *mementosReader) Next() (Sample, error) {
	lr := r.lr
	for {
		b, err := lr.next()
		if err == io.EOF {
			if r.n == 0 {
				return Sample{}, lr.fail(errorf(lr.file, max(lr.line, 1), "empty file (no samples)"))
			}
			if !r.done {
				r.done = true
				if r.pending {
					r.glitches++ // the last timestamp jumped +1001 ms: the glitch, seen from one side
				}
				if w := mementosWarning(r.rollovers, r.glitches); w != "" {
					r.meta.Warnings = append(r.meta.Warnings, w)
				}
			}
			return Sample{}, io.EOF
		}
		if err != nil {
			return Sample{}, err
		}
		if isBlank(b) {
			continue
		}
		if n := splitWS(b, r.fields[:]); n != 2 {
			return Sample{}, lr.errf("%d fields, expected 2 (timestamp<TAB>volts)", n)
		}
		ts, err := strconv.ParseInt(string(r.fields[0]), 10, 64)
		if err != nil {
			return Sample{}, lr.errf("timestamp %s is not an integer", quote(string(r.fields[0])))
		}
		if ts < 0 {
			return Sample{}, lr.errf("timestamp %d is negative", ts)
		}
		v, err := parseFloat(r.fields[1], "voltage")
		if err != nil {
			return Sample{}, lr.errf("%s", err)
		}
		if v < 0 {
			return Sample{}, lr.errf("voltage %s V is negative", fmtNum(v))
		}
		if r.n > 0 {
			if err := r.checkStep(ts); err != nil {
				return Sample{}, err
			}
		}
		p := v * v / r.load
		if !finite(p) {
			return Sample{}, lr.errf("power V^2/R overflows (%s V)", fmtNum(v))
		}
		t := float64(r.n) / 1000 // row index x 1 ms, the nearest float64
		r.n++
		r.prevTS, r.prevLine = ts, lr.line
		return Sample{T: t, P: p + 0}, nil
	}
}

// checkStep checks the timestamp of the current row against the previous one.
func (r *mementosReader) checkStep(ts int64) error {
	lr := r.lr
	raw := ts - r.prevTS
	d, clock := clockStep(r.prevTS, ts)
	if r.pending {
		r.pending = false
		if clock && d == -999 {
			r.glitches++
			return nil
		}
		return lr.errf("timestamp %d after %d does not step back 999 ms after the one-second jump at line %d: a 1 s gap the Mementos artefacts do not explain", ts, r.prevTS, r.prevLine)
	}
	switch {
	case raw == 1:
		return nil
	case clock && d == 1:
		r.rollovers++ // +40001 (minute), +4040001 (hour) or over midnight
		return nil
	case clock && d == 1001 && ts%1000 == 0:
		r.pending = true // a seconds glitch: the next timestamp must step back
		return nil
	case clock:
		return lr.errf("timestamp %d after %d is a step of %s ms in HHMMSSmmm clock time (raw %+d); only +1 ms, minute rollovers (+40001) and one-second glitches (+1001, -999) are known artefacts", ts, r.prevTS, itoa(d), raw)
	}
	return lr.errf("timestamp %d after %d is a step of %+d that is neither +1 ms nor a known artefact of HHMMSSmmm timestamps", ts, r.prevTS, raw)
}
