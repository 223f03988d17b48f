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
		if r.n > 0 {
			if !(t > r.prevT) {
				return Sample{}, lr.errf("time %s s is not after the previous %s s", fmtNum(t), fmtNum(r.prevT))
			}
			if d := t - r.prevT; math.Abs(d-ReactPeriod) > 0.01*ReactPeriod {
				r.offGrid++
				if math.Abs(d-ReactPeriod) > math.Abs(r.worst-ReactPeriod) {
					r.worst = d
				}
			}
		}
		r.n++
		r.prevT = t
		return Sample{T: t, P: mw/1000 + 0}, nil
	}
}
