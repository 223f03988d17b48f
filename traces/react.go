package traces

import (
	"bufio"
	"bytes"
	"io"
	"math"
)

// ReactPeriod is the sample period of the REACT traces (50 Hz).
const ReactPeriod = 0.02

// reactReader reads REACT's RF traces: a header "sec RSSI,mW" (one space),
// then "<seconds>\t<milliwatts>" lines.
type reactReader struct {
	lr      *lineReader
	meta    Meta
	fields  [2][]byte
	n       int64
	prevT   float64
	offGrid int64   // intervals that differ from 20 ms by more than 1 %
	worst   float64 // the interval furthest from 20 ms
	done    bool
	// win is the read buffer's content as nextPlain last saw it, of which
	// the first used bytes are rows it has returned but not yet consumed
	// from the buffer (see flush).
	win  []byte
	used int
	// general turns nextPlain off (tests compare the two paths).
	general bool
}

// isReactHeader reports whether a line is REACT's header "sec RSSI,mW"
// (spaces or tabs between the names, any case).
func isReactHeader(b []byte) bool {
	var f [3][]byte
	n := splitWS(b, f[:])
	return n == 2 && bytes.EqualFold(f[0], []byte("sec")) && bytes.EqualFold(f[1], []byte("RSSI,mW"))
}

func newReactReader(br *bufio.Reader, file string) (*reactReader, error) {
	lr := newLineReader(br, file)
	r := &reactReader{lr: lr, meta: Meta{Name: baseName(file), Format: "react", Kind: KindPower, Period: ReactPeriod}}
	for {
		b, err := lr.next()
		if err == io.EOF {
			return nil, errorf(file, max(lr.line, 1), "empty file (no samples)")
		}
		if err != nil {
			return nil, err
		}
		if isBlank(b) {
			continue
		}
		if !isReactHeader(b) {
			return nil, errorf(file, lr.line, "expected the REACT header \"sec RSSI,mW\", found %s", quote(string(b)))
		}
		return r, nil
	}
}

func (r *reactReader) Meta() Meta { return r.meta.clone() }

func (r *reactReader) Next() (Sample, error) {
	if s, ok := r.nextPlain(); ok {
		return s, nil
	}
	lr := r.lr
	for {
		b, err := lr.next()
		if err == io.EOF {
			if r.n == 0 {
				return Sample{}, lr.errf("no data rows after the header")
			}
			if !r.done && r.offGrid > 0 {
				r.meta.Warnings = append(r.meta.Warnings, "react: "+itoa(r.offGrid)+" intervals differ from the nominal 20 ms by more than 1 % (furthest: "+fmtNum(r.worst)+" s)")
			}
			r.done = true
			return Sample{}, io.EOF
		}
		if err != nil {
			return Sample{}, err
		}
		if isBlank(b) {
			continue
		}
		if n := splitWS(b, r.fields[:]); n != 2 {
			return Sample{}, lr.errf("%d fields, expected 2 (seconds<TAB>milliwatts)", n)
		}
		t, err := parseFloat(r.fields[0], "time")
		if err != nil {
			return Sample{}, lr.errf("%s", err)
		}
		mw, err := parseFloat(r.fields[1], "power")
		if err != nil {
			return Sample{}, lr.errf("%s", err)
		}
		if mw < 0 {
			return Sample{}, lr.errf("power %s mW is negative", fmtNum(mw))
		}
		if r.n > 0 && !(t > r.prevT) {
			return Sample{}, lr.errf("time %s s is not after the previous %s s", fmtNum(t), fmtNum(r.prevT))
		}
		return r.accept(t, mw), nil
	}
}

// accept takes a checked row (time t in seconds, power mw in milliwatts)
// as the next sample, counting an interval off the 20 ms grid.
func (r *reactReader) accept(t, mw float64) Sample {
	if r.n > 0 {
		if d := t - r.prevT; math.Abs(d-ReactPeriod) > 0.01*ReactPeriod {
			r.offGrid++
			if math.Abs(d-ReactPeriod) > math.Abs(r.worst-ReactPeriod) {
				r.worst = d
			}
		}
	}
	r.n++
	r.prevT = t
	return Sample{T: t, P: mw/1000 + 0}
}

// nextPlain reads the next row straight from the read buffer when it is a
// plain row (two short decimals, a non-negative power, a later time, whole
// in the buffer): what Next would do with it, without its general path, in
// one pass over the row's bytes. Anything else (blank lines, errors, other
// numbers, the end of the buffer or of the file) is left to Next, unread.
func (r *reactReader) nextPlain() (Sample, bool) {
	lr := r.lr
	if lr.err != nil || lr.eof || lr.line < 1 || r.general {
		r.flush()
		return Sample{}, false
	}
	rest := r.win[r.used:]
	t, mw, n, ok := scanRow(rest)
	if !ok {
		// Take in what the buffer holds now, and try again.
		r.flush()
		rest, _ = lr.br.Peek(lr.br.Buffered())
		if t, mw, n, ok = scanRow(rest); !ok {
			return Sample{}, false
		}
		r.win = rest
	}
	if mw < 0 || r.n > 0 && !(t > r.prevT) {
		r.flush()
		return Sample{}, false
	}
	r.used += n
	lr.line++
	return r.accept(t, mw), true
}

// scanRow reads a plain row at the start of b: spaces and tabs, a decimal,
// spaces and tabs, a decimal, spaces and tabs, an optional '\r' and '\n'.
// It returns the two numbers (as parseSimpleDecimal reads them) and the
// row's length with its '\n', or ok false for anything else.
func scanRow(b []byte) (v0, v1 float64, n int, ok bool) {
	if v0, v1, n, ok = scanTightRow(b); ok {
		return v0, v1, n, true
	}
	return scanLooseRow(b)
}

// scanTightRow reads the usual row: two unsigned decimals of digits with
// at most one point, one tab between them and a newline after, nothing
// else; it gives what scanLooseRow gives for such a row, and ok false for
// any other (which scanLooseRow then reads).
func scanTightRow(b []byte) (v0, v1 float64, n int, ok bool) {
	v0, p, ok := scanTightDecimal(b, 0)
	if !ok || p >= len(b) || b[p] != '\t' {
		return 0, 0, 0, false
	}
	v1, p, ok = scanTightDecimal(b, p+1)
	if !ok || p >= len(b) || b[p] != '\n' {
		return 0, 0, 0, false
	}
	return v0, v1, p + 1, true
}

// scanTightDecimal reads at b[p:] digits with at most one point, starting
// with a digit, as scanDecimal would (the same limits and value).
func scanTightDecimal(b []byte, p int) (float64, int, bool) {
	start := p
	var m uint64
	for ; p < len(b); p++ {
		d := b[p] - '0'
		if d > 9 {
			break
		}
		m = m*10 + uint64(d)
	}
	if p == start {
		return 0, p, false
	}
	frac, dot := 0, 0
	if p < len(b) && b[p] == '.' {
		p++
		dot = 1
		j := p
		for ; p < len(b); p++ {
			d := b[p] - '0'
			if d > 9 {
				break
			}
			m = m*10 + uint64(d)
		}
		frac = p - j
	}
	if n := p - start; n > 16 || n-dot > 15 {
		return 0, p, false
	}
	return float64(m) / pow10[frac], p, true
}

// scanLooseRow is scanRow for any row.
func scanLooseRow(b []byte) (v0, v1 float64, n int, ok bool) {
	p := skipWS(b, 0)
	if v0, p, ok = scanDecimal(b, p); !ok || p >= len(b) || b[p] != ' ' && b[p] != '\t' {
		return 0, 0, 0, false
	}
	if v1, p, ok = scanDecimal(b, skipWS(b, p)); !ok {
		return 0, 0, 0, false
	}
	p = skipWS(b, p)
	if p < len(b) && b[p] == '\r' {
		p++
	}
	if p >= len(b) || b[p] != '\n' || p > MaxLineBytes { // (longer rows: Next's errors)
		return 0, 0, 0, false
	}
	return v0, v1, p + 1, true
}

func skipWS(b []byte, p int) int {
	for p < len(b) && (b[p] == ' ' || b[p] == '\t') {
		p++
	}
	return p
}

// flush consumes from the read buffer the rows nextPlain has returned, so
// that the general path reads on from the right place.
func (r *reactReader) flush() {
	if r.used > 0 {
		r.lr.br.Discard(r.used)
	}
	r.win, r.used = nil, 0
}
