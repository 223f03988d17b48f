package traces

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkStream reads a Reader to its end (at most limit samples) and checks the
// invariants every reader keeps: samples finite, non-negative, strictly
// increasing in time; errors on one line, naming the file when there is one.
func checkStream(t *testing.T, r Reader, err error, file string, limit int) {
	t.Helper()
	checkErr := func(err error) {
		t.Helper()
		msg := err.Error()
		if strings.ContainsAny(msg, "\r\n") {
			t.Fatalf("error is not one line: %q", msg)
		}
		if file != "" && !strings.HasPrefix(msg, file+":") {
			t.Fatalf("error does not name the file: %q", msg)
		}
		var e *Error
		if file != "" && !errors.As(err, &e) {
			t.Fatalf("error %T is not an *Error: %q", err, msg)
		}
	}
	if err != nil {
		checkErr(err)
		return
	}
	var prev Sample
	for i := 0; i < limit; i++ {
		s, err := r.Next()
		if err == io.EOF {
			if i == 0 {
				t.Fatal("io.EOF before any sample: empty traces must be errors")
			}
			return
		}
		if err != nil {
			checkErr(err)
			_, err2 := r.Next()
			if err2 != err {
				t.Fatalf("error not final: %v then %v", err, err2)
			}
			return
		}
		if !finite(s.T) || !finite(s.P) || s.P < 0 || math.Signbit(s.P) {
			t.Fatalf("sample %d: %+v", i, s)
		}
		if i > 0 && !(s.T > prev.T) {
			t.Fatalf("sample %d: time %v after %v", i, s.T, prev.T)
		}
		prev = s
	}
}

// addRealSeeds adds the first lines of the real traces of one format.
func addRealSeeds(f *testing.F, sub string) {
	files, _ := filepath.Glob(filepath.Join(realDir, sub, "*"))
	for _, p := range files {
		if strings.HasPrefix(filepath.Base(p), "README") {
			continue
		}
		fh, err := os.Open(p)
		if err != nil {
			continue
		}
		var b bytes.Buffer
		sc := bufio.NewScanner(fh)
		for i := 0; i < 20 && sc.Scan(); i++ {
			b.Write(sc.Bytes())
			b.WriteByte('\n')
		}
		fh.Close()
		f.Add(b.Bytes())
	}
}

func fuzzRead(t *testing.T, data []byte, opt Options) {
	r, err := NewReader(bytes.NewReader(data), "fuzz.txt", opt)
	checkStream(t, r, err, "fuzz.txt", 1<<20)
}

func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		"time_s,power_w\n0,0.001\n0.5,0.002\n",
		"# load_ohms: 1000\n# period_s: 0.5\ntime_ms,voltage_v,x\n0,1,a\n20,2,b\n",
		"time_us,voltage_mv,current_ua\r\n0,1,1\r\n1,2,2\r\n",
		"power_uw,time_s\n1,-1e300\n2,1e300\n",
		"time_s,power_w\n0,1\n0,1\n",
		"time_s,power_w\n0,1e308\n",
		"time_s,voltage_v,current_a\n0,1e200,1e200\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(t, data, Options{Format: "csv"})
		fuzzRead(t, data, Options{Format: "csv", LoadOhms: 1e-300})
	})
}

func FuzzREACT(f *testing.F) {
	f.Add([]byte("sec RSSI,mW\n0.00\t0.00\n0.02\t0.21\n"))
	f.Add([]byte("sec RSSI,mW\n0.00\t1e308\n0.02\t-0\n"))
	addRealSeeds(f, "react")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(t, data, Options{Format: "react"})
		whole := func(r io.Reader) io.Reader { return r }
		if fast, slow := readAllREACT(data, false, whole), readAllREACT(data, true, whole); fast != slow {
			t.Fatalf("the plain-row path gives\n%s\nthe general path\n%s", fast, slow)
		}
	})
}

func FuzzMementos(f *testing.F) {
	f.Add([]byte("34934999\t1\n34936000\t1\n34935001\t1\n34959999\t2\n35000000\t2\n"))
	f.Add([]byte("235959999\t1e200\n0\t1\n"))
	f.Add([]byte("9223372036854775807\t1\n0\t1\n"))
	addRealSeeds(f, "mementos")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(t, data, Options{Format: "mementos"})
		fuzzRead(t, data, Options{Format: "mementos", LoadOhms: 1e-300})
	})
}

func FuzzDetect(f *testing.F) {
	for _, s := range []string{"time_s,power_w\n0,1\n", "sec RSSI,mW\n0.00\t0.00\n", "1\t0.5\n", "\n\n# x\n", "\xef\xbb\xbf5 1", ""} {
		f.Add([]byte(s))
	}
	addRealSeeds(f, "react")
	addRealSeeds(f, "mementos")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(t, data, Options{})
		// Through the transforms too.
		r, err := NewReader(bytes.NewReader(data), "fuzz.txt", Options{})
		if err == nil {
			checkStream(t, Resample(Slice(Scale(r, 2), 0.001, 1e6), 0.37), nil, "", 10000)
		}
	})
}

func FuzzSynthSpec(f *testing.F) {
	for _, s := range []string{
		"constant:power=1mW,duration=60s,period=10ms",
		"square:high=2mW,low=0,period_on=2s,period_off=3s,duration=60s,rate=100Hz",
		"rf:mean=1mW,peak=10mW,dropout=0.2,duration=300s,rate=50Hz,seed=1",
		"solar:peak=5mW,day=24h,clouds=0.3,rate=1Hz,seed=2",
		"rf:mean=1uW,peak=1kW,floor=0,sigma=4,coherence=1us,rate=1MHz",
		"solar:day=1us,rate=1MHz,clouds=1",
		"square:high=1W,period_on=1e-300s,period_off=0,rate=1Hz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		r, err := Synth(spec)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") || !strings.HasPrefix(msg, "synth: ") {
				t.Fatalf("bad error %q", msg)
			}
			return
		}
		checkStream(t, r, nil, "", 2000)
		// Deterministic.
		a := all(t, Limit(must(Synth(spec)), 50))
		b := all(t, Limit(must(Synth(spec)), 50))
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("sample %d differs: %v %v", i, a[i], b[i])
			}
		}
	})
}
