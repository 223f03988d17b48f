package traces

import (
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

func TestCSVFormats(t *testing.T) {
	for _, c := range []struct {
		name, data string
		opt        Options
		want       []Sample
		kind       Kind
		period     float64
		warn       string
	}{
		{"power_w", "time_s,power_w\n0,0.001\n0.5,0.002\n", Options{}, []Sample{{0, 0.001}, {0.5, 0.002}}, KindPower, 0, ""},
		{"ms and mW, CRLF, BOM, blanks", "\xef\xbb\xbftime_ms,power_mw\r\n\r\n0,1\r\n20,2\r\n", Options{}, []Sample{{0, 0.001}, {0.02, 0.002}}, KindPower, 0, ""},
		{"us and uW, columns swapped, spaces", "# period_s: 0.00002\n power_uw , time_us \n 5 , 0\n7,20\n", Options{}, []Sample{{0, 5e-6}, {2e-5, 7e-6}}, KindPower, 2e-5, ""},
		{"voltage current", "time_s,voltage_v,current_ma\n0,2,0.5\n1,3,1\n", Options{}, []Sample{{0, 0.001}, {1, 0.003}}, KindVoltageCurrent, 0, ""},
		{"voltage load comment", "# load_ohms: 1000\ntime_s,voltage_v\n0,1\n1,2\n", Options{}, []Sample{{0, 0.001}, {1, 0.004}}, KindVoltageLoad, 0, ""},
		{"voltage load option", "time_s,voltage_mv\n0,1000\n", Options{LoadOhms: 500}, []Sample{{0, 0.002}}, KindVoltageLoad, 0, ""},
		{"option overrides comment", "# load_ohms: 1000\ntime_s,voltage_v\n0,1\n", Options{LoadOhms: 500}, []Sample{{0, 0.002}}, KindVoltageLoad, 0, "overrides"},
		{"extra columns", "time_s,note,power_w,voltage_v\n0,a,1,9\n", Options{}, []Sample{{0, 1}}, KindPower, 0, "ignored columns note, voltage_v"},
		{"comments anywhere", "# a\ntime_s,power_w\n0,1\n# b\n1,1\n", Options{}, []Sample{{0, 1}, {1, 1}}, KindPower, 0, ""},
		{"negative zero and no final newline", "time_s,power_w\n-1,-0\n0,0", Options{}, []Sample{{-1, 0}, {0, 0}}, KindPower, 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, m, err := readString(t, "x.csv", c.data, c.opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for i := range got {
				if math.Abs(got[i].T-c.want[i].T) > 1e-15 || math.Abs(got[i].P-c.want[i].P) > 1e-15 || math.Signbit(got[i].P) {
					t.Errorf("sample %d = %+v, want %+v", i, got[i], c.want[i])
				}
			}
			if m.Kind != c.kind || m.Period != c.period || m.Format != "csv" || m.Name != "x.csv" {
				t.Errorf("meta %+v", m)
			}
			if w := strings.Join(m.Warnings, "; "); c.warn == "" && w != "" || !strings.Contains(w, c.warn) {
				t.Errorf("warnings %q, want %q", w, c.warn)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	for _, c := range []struct{ data, format string }{
		{"time_s,power_w\n0,1\n", "csv"},
		{"# comment\ntime_s,power_w\n0,1\n", "csv"},
		{"\n\n  \npower_mw,TIME_MS\n0,1\n", "csv"},
		{"sec RSSI,mW\n0.00\t0.00\n", "react"},
		{"sec\tRSSI,mW\r\n0.00\t0.10\r\n", "react"},
		{"103717744\t0.0723148\n103717745\t0.0697371\n", "mementos"},
		{"5 1e-3", "mementos"},
	} {
		r, err := NewReader(strings.NewReader(c.data), "d", Options{})
		if err != nil {
			t.Errorf("%q: %v", c.data, err)
			continue
		}
		if f := r.Meta().Format; f != c.format {
			t.Errorf("%q detected as %s, want %s", c.data, f, c.format)
		}
		if _, err := ReadAll(r, 10); err != nil {
			t.Errorf("%q: %v", c.data, err)
		}
	}
	// Detection peeks: a reader that gives one byte at a time still works, and
	// nothing is lost.
	r, err := NewReader(iotest.OneByteReader(strings.NewReader("\n\nsec RSSI,mW\n0.00\t1.00\n0.02\t2.00\n")), "slow", Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := ReadAll(r, 10)
	if err != nil || len(s) != 2 || s[1] != (Sample{0.02, 0.002}) {
		t.Errorf("got %v, %v", s, err)
	}
}

// Every malformed input gives a one-line error naming the file and line.
func TestMalformed(t *testing.T) {
	long := strings.Repeat("1", MaxLineBytes+1)
	for _, c := range []struct {
		name, data string
		opt        Options
		want       string // the whole error message
	}{
		{"time not increasing", "time_s,power_w\n0.02,1\n0.06,1\n0.04,1\n", Options{}, "rf.csv:4: time 0.04 s is not after the previous 0.06 s"},
		{"time repeated ms", "time_ms,power_w\n1,1\n1,1\n", Options{}, "rf.csv:3: time 1 ms is not after the previous 1 ms"},
		{"NaN power", "time_s,power_w\n0,NaN\n", Options{}, `rf.csv:2: power_w "NaN" is not a finite number`},
		{"Inf time", "time_s,power_w\n+Inf,1\n", Options{}, `rf.csv:2: time_s "+Inf" is not a finite number`},
		{"negative power", "time_s,power_mw\n0,1\n1,-2\n", Options{}, "rf.csv:3: power -2 mW is negative"},
		{"negative voltage", "# load_ohms: 30000\ntime_s,voltage_v\n0,-1\n", Options{}, "rf.csv:3: voltage -1 V is negative"},
		{"negative current", "time_s,voltage_v,current_a\n0,1,-1\n", Options{}, "rf.csv:2: current -1 A is negative"},
		{"missing power column", "time_s,foo\n0,1\n", Options{}, `rf.csv:1: header "time_s,foo" has no power column: expected power_w (or _mw, _uw), voltage_v with current_a, or voltage_v with a load`},
		{"missing time column", "power_w\n1\n", Options{Format: "csv"}, `rf.csv:1: header "power_w" has no time column (time_s, time_ms or time_us)`},
		{"missing load", "time_s,voltage_v\n0,1\n", Options{}, `rf.csv:1: column voltage_v without a load resistance: add a "# load_ohms: R" comment or give the load (--load, Options.LoadOhms)`},
		{"bad load", "# load_ohms: -3\ntime_s,voltage_v\n0,1\n", Options{}, `rf.csv:1: load_ohms "-3" is not a positive resistance`},
		{"unknown unit", "time_s,power_kw\n0,1\n", Options{}, `rf.csv:1: column "power_kw": unknown unit (accepted: power_w, power_mw, power_uw)`},
		{"tab-separated header", "time_s\tpower_w\n0\t1\n", Options{}, `rf.csv:1: header "time_s\tpower_w" is not comma-separated (expected e.g. time_s,power_w)`},
		{"two time columns", "time_s,time_ms,power_w\n0,1,1\n", Options{}, "rf.csv:1: header has two time columns: time_s and time_ms"},
		{"too few fields", "time_s,power_w\n0,1\n1\n", Options{}, "rf.csv:3: 1 fields, but the header has 2 columns"},
		{"too many fields", "time_s,power_w\n0,1,\n", Options{}, "rf.csv:2: 3 fields, but the header has 2 columns"},
		{"unparsable", "time_s,power_w\n0,1\n1,1.2.3\n", Options{}, `rf.csv:3: power_w: cannot parse "1.2.3" as a number`},
		{"out of range", "time_s,power_w\n0,1e999\n", Options{}, `rf.csv:2: power_w "1e999" is out of range`},
		{"overflow V*I", "time_s,voltage_v,current_a\n0,1e200,1e200\n", Options{}, "rf.csv:2: power overflows (+Inf W)"},
		{"empty file", "", Options{}, "rf.csv:1: empty file (no samples)"},
		{"blank file", "\n \n", Options{}, "rf.csv:1: empty file (no samples)"},
		{"empty csv", "", Options{Format: "csv"}, "rf.csv:1: empty file (no samples)"},
		{"header only", "# c\ntime_s,power_w\n\n", Options{}, "rf.csv:3: no data rows after the header"},
		{"comments only", "# a\n# b\n", Options{}, "rf.csv:2: no header row: expected a header such as time_s,power_w after the comments"},
		{"line too long", "time_s,power_w\n0,1\n1," + long + "\n", Options{}, "rf.csv:3: line is longer than 4096 bytes"},
		{"first line too long", long, Options{}, "rf.csv:1: line is longer than 4096 bytes"},
		{"first line too long csv", long, Options{Format: "csv"}, "rf.csv:1: line is longer than 4096 bytes"},
		{"unknown format", "hello world\n", Options{}, `rf.csv:1: unknown trace format: first line "hello world" is neither a CSV header (time_s,power_w ...), the REACT header "sec RSSI,mW" nor a Mementos row "<integer><TAB><volts>"; give the format (--format csv, react or mementos)`},
		{"unknown format option", "x", Options{Format: "xml"}, `rf.csv: unknown format "xml" (known: csv, react, mementos)`},
		{"bad load option", "x", Options{LoadOhms: -1}, `rf.csv: load -1 ohm is not a positive resistance`},

		{"react header missing", "0.00\t0.00\n", Options{Format: "react"}, `rf.csv:1: expected the REACT header "sec RSSI,mW", found "0.00\t0.00"`},
		{"react fields", "sec RSSI,mW\n0.00\t0.00\t1\n", Options{}, "rf.csv:2: 3 fields, expected 2 (seconds<TAB>milliwatts)"},
		{"react time", "sec RSSI,mW\n0.00\t0.00\n0.04\t0.00\n0.02\t0.00\n", Options{}, "rf.csv:4: time 0.02 s is not after the previous 0.04 s"},
		{"react negative", "sec RSSI,mW\n0.00\t-0.01\n", Options{}, "rf.csv:2: power -0.01 mW is negative"},
		{"react nan", "sec RSSI,mW\nnan\t0.01\n", Options{}, `rf.csv:2: time "nan" is not a finite number`},
		{"react no rows", "sec RSSI,mW\n", Options{}, "rf.csv:1: no data rows after the header"},

		{"mementos non-integer", "1\t0.5\n2.5\t0.5\n", Options{}, `rf.csv:2: timestamp "2.5" is not an integer`},
		{"mementos negative voltage", "1\t0.5\n2\t-0.5\n", Options{}, "rf.csv:2: voltage -0.5 V is negative"},
		{"mementos fields", "1\t0.5\n2\n", Options{}, "rf.csv:2: 1 fields, expected 2 (timestamp<TAB>volts)"},
		{"mementos jump", "103717744\t1\n103720744\t1\n", Options{}, "rf.csv:2: timestamp 103720744 after 103717744 is a step of 3000 ms in HHMMSSmmm clock time (raw +3000); only +1 ms, minute rollovers (+40001) and one-second glitches (+1001, -999) are known artefacts"},
		{"mementos backwards", "103717744\t1\n103717743\t1\n", Options{}, "rf.csv:2: timestamp 103717743 after 103717744 is a step of -1 ms in HHMMSSmmm clock time (raw -1); only +1 ms, minute rollovers (+40001) and one-second glitches (+1001, -999) are known artefacts"},
		{"mementos glitch without return", "34934999\t1\n34936000\t1\n34936001\t1\n", Options{}, "rf.csv:3: timestamp 34936001 after 34936000 does not step back 999 ms after the one-second jump at line 2: a 1 s gap the Mementos artefacts do not explain"},
		{"mementos not a clock", "99999999\t1\n99999970\t1\n", Options{}, "rf.csv:2: timestamp 99999970 after 99999999 is a step of -29 that is neither +1 ms nor a known artefact of HHMMSSmmm timestamps"},
		{"mementos negative ts", "-5\t1\n", Options{Format: "mementos"}, "rf.csv:1: timestamp -5 is negative"},
		{"mementos empty", "\n", Options{Format: "mementos"}, "rf.csv:1: empty file (no samples)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := readString(t, "rf.csv", c.data, c.opt)
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != c.want {
				t.Errorf("error\n%s\nwant\n%s", err, c.want)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("error is not one line: %q", err)
			}
			var e *Error
			if !errors.As(err, &e) || e.File != "rf.csv" {
				t.Errorf("error %T does not name the file", err)
			}
		})
	}
}

// Errors are final: Next keeps returning the same error.
func TestErrorsAreFinal(t *testing.T) {
	r, err := NewReader(strings.NewReader("time_s,power_w\n0,1\n0,1\n1,1\n"), "f", Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Next()
	_, e1 := r.Next()
	_, e2 := r.Next()
	if e1 == nil || e1 != e2 {
		t.Errorf("errors %v then %v", e1, e2)
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("disk on fire\nreally")
	r, err := NewReader(io.MultiReader(strings.NewReader("time_s,power_w\n0,1\n"), iotest.ErrReader(boom)), "f.csv", Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ReadAll(r, 10)
	if err == nil || !errors.Is(err, boom) || err.Error() != "f.csv:3: read error: disk on fire really" {
		t.Errorf("err = %v", err)
	}
}

func TestMementosArtefacts(t *testing.T) {
	for _, c := range []struct{ data, warn string }{
		{"34934999\t1\n34936000\t1\n34935001\t1\n34935002\t3\n", "1 seconds glitch"},
		{"34959998\t1\n34959999\t1\n35000000\t1\n35000001\t3\n", "1 minute rollover"},
		{"35959999\t1\n40000000\t1\n40000001\t1\n40000002\t3\n", "1 minute rollover"},
		{"235959998\t1\n235959999\t1\n0\t1\n1\t3\n", "1 minute rollover"},
		{"34959999\t1\n35001000\t1\n35000001\t1\n35000002\t3\n", "1 seconds glitch"},
		{"34958999\t1\n34960000\t1\n34959001\t1\n34959002\t1\n34959999\t1\n35000000\t3\n", ""}, // 60 s is not a clock time: rejected below
		{"1\t1\n2\t1\n3\t1\n4\t3\n", ""},
		{"59998\t1\n59999\t1\n60000\t1\n60001\t3\n", ""}, // a plain millisecond counter
	} {
		s, m, err := readString(t, "m.txt", c.data, Options{})
		if strings.HasPrefix(c.data, "34958999") {
			if err == nil {
				t.Errorf("%q: no error for a 1 s gap", c.data)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.data, err)
			continue
		}
		if len(s) != 4 || s[3].T != 0.003 || s[3].P != 9/30e3 {
			t.Errorf("samples %v", s)
		}
		want := ""
		if c.warn != "" {
			want = "mementos: " + c.warn + " in timestamps; time taken as row index x 1 ms"
		}
		if got := strings.Join(m.Warnings, "; "); got != want {
			t.Errorf("%q: warnings %q, want %q", c.data, got, want)
		}
	}
	_, m, err := readString(t, "m.txt", "5\t1\n", Options{LoadOhms: 1000})
	if err != nil || m.LoadOhms != 1000 {
		t.Errorf("%v %+v", err, m)
	}
}

func TestReactOffGrid(t *testing.T) {
	_, m, err := readString(t, "r", "sec RSSI,mW\n0.00\t1\n0.02\t1\n0.10\t1\n", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Warnings) != 1 || !strings.Contains(m.Warnings[0], "1 intervals differ from the nominal 20 ms") {
		t.Errorf("warnings %q", m.Warnings)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("/nonexistent/x.csv", Options{}); err == nil || err.Error() != "/nonexistent/x.csv: cannot open: no such file or directory" {
		t.Errorf("err = %v", err)
	}
	if _, err := Open(t.TempDir(), Options{}); err == nil || !strings.HasSuffix(err.Error(), ": is a directory, not a trace file") {
		t.Errorf("err = %v", err)
	}
}

func TestGlob(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b.csv", "a/x.trace", "README", "README.md", "notes.md", ".hidden", ".git/config", "LICENSE"} {
		writeFile(t, dir, f, "x")
	}
	got, err := Glob(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !strings.HasSuffix(got[0], "a/x.trace") || !strings.HasSuffix(got[1], "b.csv") {
		t.Errorf("Glob = %q", got)
	}
	if _, err := Glob(dir + "/none"); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("err = %v", err)
	}
}

// TestSimpleDecimalMatchesStrconv: the fast decimal path gives exactly the
// float64 strconv.ParseFloat gives, and leaves everything else to it.
func TestSimpleDecimalMatchesStrconv(t *testing.T) {
	cases := []string{"0", "313.08", "0.22", "10.00", "0.0723148", "5.28258", "-2.5", "+7", "123456789012345", "0.000000000000001",
		"999999999999999", ".5", "5.", "1e3", "1.5e-3", "12345678901234567", "", "-", ".", "1.2.3", "0x10", "NaN", "inf"}
	r := rand.New(rand.NewPCG(4, 2))
	for i := 0; i < 20000; i++ {
		cases = append(cases, strconv.FormatFloat(r.Float64()*math.Pow(10, float64(r.IntN(12)-4)), 'f', r.IntN(9), 64))
	}
	for _, c := range cases {
		v, ok := parseSimpleDecimal([]byte(c))
		want, err := strconv.ParseFloat(c, 64)
		if ok && (err != nil || math.Float64bits(v) != math.Float64bits(want)) {
			t.Fatalf("%q: fast path %v, strconv %v (%v)", c, v, want, err)
		}
	}
	for _, c := range []string{"1e3", "12345678901234567", ".", "", "0x10"} {
		if _, ok := parseSimpleDecimal([]byte(c)); ok {
			t.Errorf("%q took the fast path", c)
		}
	}
}
