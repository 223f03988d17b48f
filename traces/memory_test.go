package traces

import (
	"io"
	"runtime"
	"strconv"
	"testing"
)

// genLines is an io.Reader that makes a trace on the fly: a header, then
// rows from a function, never more than one row held.
type genLines struct {
	header string
	rows   int64
	row    func(buf []byte, i int64) []byte
	i      int64
	buf    []byte
	off    int
	onRow  func(i int64) // called every 1<<20 rows
}

func (g *genLines) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if g.off == len(g.buf) {
			switch {
			case g.header != "":
				g.buf = append(g.buf[:0], g.header...)
				g.header = ""
			case g.i < g.rows:
				g.buf = g.row(g.buf[:0], g.i)
				g.i++
				if g.onRow != nil && g.i%(1<<20) == 0 {
					g.onRow(g.i)
				}
			default:
				if n == 0 {
					return 0, io.EOF
				}
				return n, nil
			}
			g.off = 0
		}
		c := copy(p[n:], g.buf[g.off:])
		n += c
		g.off += c
	}
	return n, nil
}

// reactRows makes REACT rows: i x 20 ms, a power that cycles 0.00..9.99 mW.
func reactRows(buf []byte, i int64) []byte {
	buf = strconv.AppendInt(buf, i/50, 10)
	c := i % 50 * 2
	buf = append(buf, '.', byte('0'+c/10), byte('0'+c%10), '\t')
	buf = strconv.AppendInt(buf, i%10, 10)
	return append(buf, '.', byte('0'+i%7), '0', '\n')
}

// A 10-million-row stream is summarized with the heap staying flat and no
// allocation per row.
func TestBoundedMemory(t *testing.T) {
	rows := int64(10_000_000)
	if testing.Short() {
		rows = 1_000_000
	}
	var before, now runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	peak := uint64(0)
	g := &genLines{header: "sec RSSI,mW\n", rows: rows, row: reactRows, onRow: func(int64) {
		runtime.ReadMemStats(&now)
		peak = max(peak, now.HeapInuse)
	}}
	r, err := NewReader(g, "stream.trace", Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := Summarize(r, 5e-3)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&now)
	peak = max(peak, now.HeapInuse)
	growth := int64(peak) - int64(before.HeapInuse)
	mallocs := now.Mallocs - before.Mallocs
	t.Logf("%d rows: heap in use grew by at most %d KB, %d allocations in all (%.2g per row); %v", rows, growth>>10, mallocs, float64(mallocs)/float64(rows), st)
	if st.Samples != rows || st.Duration != float64(rows)*0.02 {
		t.Errorf("%d samples, %g s", st.Samples, st.Duration)
	}
	if growth > 4<<20 {
		t.Errorf("heap grew by %d KB reading a stream", growth>>10)
	}
	if float64(mallocs)/float64(rows) > 0.001 {
		t.Errorf("%d allocations for %d rows", mallocs, rows)
	}
}

// Per-row work allocates nothing, for every reader and the CSV writer.
func TestNoAllocsPerRow(t *testing.T) {
	for _, c := range []struct{ name, header string }{
		{"react", "sec RSSI,mW\n"},
		{"csv", "time_s,power_w\n"},
		{"mementos", ""},
	} {
		row := func(buf []byte, i int64) []byte {
			switch c.name {
			case "csv":
				buf = strconv.AppendFloat(buf, float64(i)/1000, 'g', -1, 64)
				buf = append(buf, ',')
				return append(strconv.AppendFloat(buf, float64(i%977)*1e-6, 'g', -1, 64), '\n')
			case "mementos":
				buf = strconv.AppendInt(buf, 103717744+i, 10)
				return append(buf, "\t0.0723148\n"...)
			}
			return reactRows(buf, i)
		}
		r, err := NewReader(&genLines{header: c.header, rows: 1 << 40, row: row}, "x", Options{})
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			r.Next()
		}
		if a := testing.AllocsPerRun(10000, func() {
			if _, err := r.Next(); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("%s: %g allocations per row", c.name, a)
		}
	}
	w := Resample(Scale(must(Synth("rf:duration=1e6s")), 2), 0.1)
	if a := testing.AllocsPerRun(10000, func() { w.Next() }); a != 0 {
		t.Errorf("synth+scale+resample: %g allocations per sample", a)
	}
}

func TestDay(t *testing.T) {
	if testing.Short() {
		t.Skip("a day at 1 kHz takes a few seconds")
	}
	// 24 hours at 1 kHz (86.4 million samples) through Summarize.
	st, err := Summarize(must(Synth("square:high=1mW,period_on=1h,period_off=1h,duration=24h,rate=1kHz")), 0.5e-3)
	if err != nil {
		t.Fatal(err)
	}
	if st.Samples != 86_400_000 || st.Duration != 86400 || st.EnergyJ != 43.2 || st.OnStretches != 12 {
		t.Errorf("%v", st)
	}
}
