package traces

import (
	"bufio"
	"bytes"
	"io"
	"math"
	"strings"
)

// maxComments caps the '#' lines kept in Meta.Comments, so that a file of
// comments cannot grow memory without bound.
const maxComments = 1000

// column roles in a canonical CSV header.
const (
	roleTime = iota
	rolePower
	roleVoltage
	roleCurrent
)

type columnDef struct {
	role int
	div  float64 // value in the column / div = value in SI units
	unit string
}

// csvColumns are the header names the canonical CSV accepts.
var csvColumns = map[string]columnDef{
	"time_s":     {roleTime, 1, "s"},
	"time_ms":    {roleTime, 1e3, "ms"},
	"time_us":    {roleTime, 1e6, "us"},
	"power_w":    {rolePower, 1, "W"},
	"power_mw":   {rolePower, 1e3, "mW"},
	"power_uw":   {rolePower, 1e6, "uW"},
	"voltage_v":  {roleVoltage, 1, "V"},
	"voltage_mv": {roleVoltage, 1e3, "mV"},
	"current_a":  {roleCurrent, 1, "A"},
	"current_ma": {roleCurrent, 1e3, "mA"},
	"current_ua": {roleCurrent, 1e6, "uA"},
}

// csvPrefixes map a column-name prefix to the names accepted with it, so that
// an unknown unit ("power_kw") is an error rather than an ignored column.
var csvPrefixes = []struct{ prefix, accepted string }{
	{"time_", "time_s, time_ms, time_us"},
	{"power_", "power_w, power_mw, power_uw"},
	{"voltage_", "voltage_v, voltage_mv"},
	{"current_", "current_a, current_ma, current_ua"},
}

type csvCol struct {
	idx  int
	def  columnDef
	name string
}

type csvReader struct {
	lr      *lineReader
	meta    Meta
	ncol    int
	time    csvCol
	power   csvCol // idx -1 when absent
	volt    csvCol
	curr    csvCol
	load    float64
	fields  [][]byte
	n       int64
	prevT   float64
	prevRT  float64 // previous time as written, for messages
	dropped bool    // comments beyond maxComments were dropped
}

func newCSVReader(br *bufio.Reader, file string, opt Options) (*csvReader, error) {
	lr := newLineReader(br, file)
	c := &csvReader{lr: lr, meta: Meta{Name: baseName(file), Format: "csv"}}
	var header []byte
	var commentLoad float64
	for {
		b, err := lr.next()
		if err == io.EOF {
			if lr.line == 0 {
				return nil, errorf(file, 1, "empty file (no samples)")
			}
			return nil, errorf(file, lr.line, "no header row: expected a header such as time_s,power_w after the comments")
		}
		if err != nil {
			return nil, err
		}
		if isBlank(b) {
			continue
		}
		if b[0] == '#' {
			key, val := c.comment(b)
			switch key {
			case "load_ohms":
				v, err := parseFloat([]byte(val), "load_ohms")
				if err == nil && !(v > 0) {
					err = errString("load_ohms " + quote(val) + " is not a positive resistance")
				}
				if err != nil {
					return nil, errorf(file, lr.line, "%s", err)
				}
				commentLoad = v
			case "period_s":
				v, err := parseFloat([]byte(val), "period_s")
				if err == nil && !(v > 0) {
					err = errString("period_s " + quote(val) + " is not a positive period")
				}
				if err != nil {
					return nil, errorf(file, lr.line, "%s", err)
				}
				c.meta.Period = v
			}
			continue
		}
		header = b
		break
	}
	if err := c.parseHeader(header, commentLoad, opt.LoadOhms); err != nil {
		return nil, err
	}
	c.fields = make([][]byte, c.ncol)
	return c, nil
}

type errString string

func (e errString) Error() string { return string(e) }

// comment records a '#' line and returns its "key: value" split, if any.
func (c *csvReader) comment(b []byte) (key, val string) {
	text := string(trimSpace(b[1:]))
	if len(c.meta.Comments) < maxComments {
		c.meta.Comments = append(c.meta.Comments, text)
	} else if !c.dropped {
		c.dropped = true
		c.meta.Warnings = append(c.meta.Warnings, "csv: more than 1000 comment lines; later ones are not kept")
	}
	k, v, ok := strings.Cut(text, ":")
	if !ok {
		return "", ""
	}
	return strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
}

func (c *csvReader) parseHeader(h []byte, commentLoad, optLoad float64) error {
	file, line := c.lr.file, c.lr.line
	names := bytes.Split(h, []byte{','})
	if len(names) == 1 && bytes.ContainsAny(h, "\t;") {
		return errorf(file, line, "header %s is not comma-separated (expected e.g. time_s,power_w)", quote(string(h)))
	}
	c.ncol = len(names)
	c.time.idx, c.power.idx, c.volt.idx, c.curr.idx = -1, -1, -1, -1
	var ignored []string
	for i, nb := range names {
		name := strings.ToLower(strings.Trim(string(trimSpace(nb)), `"'`))
		def, ok := csvColumns[name]
		if !ok {
			for _, p := range csvPrefixes {
				if strings.HasPrefix(name, p.prefix) {
					return errorf(file, line, "column %s: unknown unit (accepted: %s)", quote(name), p.accepted)
				}
			}
			if name == "" {
				name = "(empty)"
			}
			ignored = append(ignored, name)
			continue
		}
		col := &c.time
		switch def.role {
		case rolePower:
			col = &c.power
		case roleVoltage:
			col = &c.volt
		case roleCurrent:
			col = &c.curr
		}
		if col.idx >= 0 {
			role, _, _ := strings.Cut(name, "_")
			return errorf(file, line, "header has two %s columns: %s and %s", role, col.name, name)
		}
		*col = csvCol{idx: i, def: def, name: name}
	}
	if c.time.idx < 0 {
		return errorf(file, line, "header %s has no time column (time_s, time_ms or time_us)", quote(string(h)))
	}
	switch {
	case c.power.idx >= 0:
		c.meta.Kind = KindPower
		if c.volt.idx >= 0 {
			ignored = append(ignored, c.volt.name)
			c.volt.idx = -1
		}
		if c.curr.idx >= 0 {
			ignored = append(ignored, c.curr.name)
			c.curr.idx = -1
		}
	case c.volt.idx >= 0 && c.curr.idx >= 0:
		c.meta.Kind = KindVoltageCurrent
	case c.volt.idx >= 0:
		c.meta.Kind = KindVoltageLoad
		c.load = commentLoad
		if optLoad > 0 {
			if commentLoad > 0 && commentLoad != optLoad {
				c.meta.Warnings = append(c.meta.Warnings, "csv: load "+fmtNum(optLoad)+" ohm given overrides the file's load_ohms "+fmtNum(commentLoad))
			}
			c.load = optLoad
		}
		if c.load == 0 {
			return errorf(file, line, "column %s without a load resistance: add a \"# load_ohms: R\" comment or give the load (--load, Options.LoadOhms)", c.volt.name)
		}
		c.meta.LoadOhms = c.load
	case c.curr.idx >= 0:
		return errorf(file, line, "column %s without a voltage column (voltage_v)", c.curr.name)
	default:
		return errorf(file, line, "header %s has no power column: expected power_w (or _mw, _uw), voltage_v with current_a, or voltage_v with a load", quote(string(h)))
	}
	if len(ignored) > 0 {
		c.meta.Warnings = append(c.meta.Warnings, "csv: ignored columns "+strings.Join(ignored, ", "))
	}
	return nil
}

func (c *csvReader) Meta() Meta { return c.meta.clone() }

func (c *csvReader) Next() (Sample, error) {
	lr := c.lr
	for {
		b, err := lr.next()
		if err == io.EOF {
			if c.n == 0 {
				return Sample{}, lr.errf("no data rows after the header")
			}
			return Sample{}, io.EOF
		}
		if err != nil {
			return Sample{}, err
		}
		if isBlank(b) {
			continue
		}
		if b[0] == '#' {
			c.comment(b)
			continue
		}
		return c.row(b)
	}
}

func (c *csvReader) row(b []byte) (Sample, error) {
	lr := c.lr
	n := 0
	for {
		i := bytes.IndexByte(b, ',')
		if n < c.ncol {
			if i < 0 {
				c.fields[n] = trimSpace(b)
			} else {
				c.fields[n] = trimSpace(b[:i])
			}
		}
		n++
		if i < 0 {
			break
		}
		b = b[i+1:]
	}
	if n != c.ncol {
		return Sample{}, lr.errf("%d fields, but the header has %d columns", n, c.ncol)
	}
	rt, err := parseFloat(c.fields[c.time.idx], c.time.name)
	if err != nil {
		return Sample{}, lr.errf("%s", err)
	}
	t := rt / c.time.def.div
	if c.n > 0 && !(t > c.prevT) {
		u := c.time.def.unit
		return Sample{}, lr.errf("time %s %s is not after the previous %s %s", fmtNum(rt), u, fmtNum(c.prevRT), u)
	}
	var p float64
	switch c.meta.Kind {
	case KindPower:
		p, err = c.value(c.power, "power")
		if err != nil {
			return Sample{}, err
		}
	case KindVoltageCurrent:
		v, err := c.value(c.volt, "voltage")
		if err != nil {
			return Sample{}, err
		}
		i, err := c.value(c.curr, "current")
		if err != nil {
			return Sample{}, err
		}
		p = v * i
	case KindVoltageLoad:
		v, err := c.value(c.volt, "voltage")
		if err != nil {
			return Sample{}, err
		}
		p = v * v / c.load
	}
	if math.IsInf(p, 0) {
		return Sample{}, lr.errf("power overflows (%s W)", fmtNum(p))
	}
	c.n++
	c.prevT, c.prevRT = t, rt
	return Sample{T: t, P: p + 0}, nil
}

// value parses a non-negative column of the current row into SI units.
func (c *csvReader) value(col csvCol, what string) (float64, error) {
	raw, err := parseFloat(c.fields[col.idx], col.name)
	if err != nil {
		return 0, c.lr.errf("%s", err)
	}
	if raw < 0 {
		return 0, c.lr.errf("%s %s %s is negative", what, fmtNum(raw), col.def.unit)
	}
	return raw / col.def.div, nil
}
