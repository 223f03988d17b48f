package traces

import (
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batteryless/harness/harness/testenv"
)

// realDir holds the third-party traces (see its README.md); never copied here.
const realDir = "../../shared/data/traces"

func needReal(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(realDir); err != nil {
		testenv.SharedData(t, realDir)
	}
}

// near checks got against a value printed with the given number of decimals.
func near(t *testing.T, what string, got, want float64, decimals int) {
	t.Helper()
	tol := 0.5 * math.Pow(10, -float64(decimals))
	if math.Abs(got-want) > tol*1.0000001 {
		t.Errorf("%s = %.*f, want %.*f (+-%g)", what, decimals+2, got, decimals, want, tol)
	}
}

func TestGlobReal(t *testing.T) {
	needReal(t)
	files, err := Glob(realDir)
	if err != nil {
		t.Fatal(err)
	}
	var rel []string
	for _, f := range files {
		r, _ := filepath.Rel(realDir, f)
		rel = append(rel, r)
	}
	want := "mementos/1.txt mementos/2.txt mementos/3.txt mementos/4.txt mementos/5.txt mementos/6.txt react/rf-cart.trace react/rf-mobile.trace"
	if got := strings.Join(rel, " "); got != want {
		t.Errorf("Glob = %s\nwant %s", got, want)
	}
}

func TestRealReact(t *testing.T) {
	needReal(t)
	for _, c := range []struct {
		file                   string
		rows                   int64
		dur, min, mean, max, e float64 // s, mW, mJ
		floor, isolated        int
	}{
		{"rf-cart.trace", 15656, 313.12, 0, 2.1200, 10.00, 663.8, 987, 808},
		{"rf-mobile.trace", 15909, 318.18, 0, 0.4971, 4.95, 158.2, 2909, 626},
	} {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join(realDir, "react", c.file)
			r, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if m := r.Meta(); m.Format != "react" || m.Period != 0.02 || m.Kind != KindPower || m.Name != c.file {
				t.Errorf("meta = %+v", m)
			}
			st, err := Summarize(r, 0.5e-3)
			if err != nil {
				t.Fatal(err)
			}
			if st.Samples != c.rows {
				t.Errorf("rows = %d, want %d", st.Samples, c.rows)
			}
			near(t, "duration s", st.Duration, c.dur, 2)
			near(t, "min mW", st.MinW*1e3, c.min, 2)
			near(t, "mean mW", st.MeanW*1e3, c.mean, 4)
			near(t, "max mW", st.MaxW*1e3, c.max, 2)
			near(t, "energy mJ", st.EnergyJ*1e3, c.e, 1)
			if w := r.Meta().Warnings; len(w) != 0 {
				t.Errorf("warnings %q", w)
			}
			t.Log(st)

			// The README's artefacts: the first sample is 0, the floor is 0.03 mW,
			// isolated single-sample drops to the floor.
			r2, _ := Open(path, Options{})
			defer r2.Close()
			var p []float64
			for {
				s, err := r2.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(p) == 0 && (s.T != 0 || s.P != 0) {
					t.Errorf("first sample %+v, want 0 s, 0 W", s)
				}
				p = append(p, s.P)
			}
			floor, isolated := 0, 0
			for i, v := range p[1:] {
				if v < 0.03e-3-1e-12 {
					t.Errorf("sample %d: %g W below the 0.03 mW floor", i+1, v)
				}
				if math.Abs(v-0.03e-3) < 1e-12 {
					floor++
					if i+2 < len(p) && p[i] > 0.06e-3 && p[i+2] > 0.06e-3 {
						isolated++
					}
				}
			}
			if floor != c.floor || isolated != c.isolated {
				t.Errorf("floor samples %d, isolated drops %d; want %d, %d", floor, isolated, c.floor, c.isolated)
			}
		})
	}
}

func TestRealMementos(t *testing.T) {
	needReal(t)
	for _, c := range []struct {
		file                string
		rows                int64
		minV, maxV          float64
		meanUW, maxUW       float64
		rollovers, glitches int
	}{
		{"1.txt", 25274, 0.0291, 5.2826, 153.3, 930.2, 0, 0},
		{"2.txt", 39232, 0.1559, 5.2826, 189.3, 930.2, 1, 1},
		{"3.txt", 39460, 0.1795, 3.2385, 92.8, 349.6, 1, 2},
		{"4.txt", 26240, 0.0224, 4.3528, 77.4, 631.5, 1, 0},
		{"5.txt", 31118, 0.0356, 4.7886, 93.0, 764.3, 0, 0},
		{"6.txt", 51680, 0.0747, 5.2826, 131.1, 930.2, 1, 1},
	} {
		t.Run(c.file, func(t *testing.T) {
			r, err := Open(filepath.Join(realDir, "mementos", c.file), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			m := r.Meta()
			if m.Format != "mementos" || m.Kind != KindVoltageLoad || m.LoadOhms != 30e3 || m.Period != 0.001 {
				t.Errorf("meta = %+v", m)
			}
			st, err := Summarize(r, 100e-6)
			if err != nil {
				t.Fatal(err)
			}
			if st.Samples != c.rows {
				t.Errorf("rows = %d, want %d", st.Samples, c.rows)
			}
			near(t, "duration s", st.Duration, float64(c.rows)/1000, 3)
			near(t, "mean uW", st.MeanW*1e6, c.meanUW, 1)
			near(t, "max uW", st.MaxW*1e6, c.maxUW, 1)
			near(t, "min V", math.Sqrt(st.MinW*30e3), c.minV, 4)
			near(t, "max V", math.Sqrt(st.MaxW*30e3), c.maxV, 4)
			warn := strings.Join(r.Meta().Warnings, "; ")
			if c.rollovers+c.glitches == 0 {
				if warn != "" {
					t.Errorf("warnings %q, want none", warn)
				}
			} else {
				var parts []string
				if c.rollovers > 0 {
					parts = append(parts, plural(c.rollovers, "minute rollover", "minute rollovers"))
				}
				if c.glitches > 0 {
					parts = append(parts, plural(c.glitches, "seconds glitch", "seconds glitches"))
				}
				want := "mementos: " + strings.Join(parts, " and ") + " in timestamps; time taken as row index x 1 ms"
				if warn != want {
					t.Errorf("warnings %q\nwant %q", warn, want)
				}
			}
			t.Log(st, warn)
		})
	}
}

// Every real file converts to the canonical CSV and reads back to the same
// samples and statistics.
func TestRealRoundTrip(t *testing.T) {
	needReal(t)
	files, err := Glob(realDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			roundTrip(t, func() (Reader, error) { return Open(f, Options{}) })
		})
	}
}
