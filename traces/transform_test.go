package traces

import (
	"io"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

func steps(period float64, p ...float64) Reader {
	s := make([]Sample, len(p))
	for i, v := range p {
		s[i] = Sample{T: float64(i) * period, P: v}
	}
	return FromSamples(Meta{Name: "steps", Format: "synth", Period: period}, s)
}

func all(t *testing.T, r Reader) []Sample {
	t.Helper()
	s, err := ReadAll(r, 1<<22)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func summary(t *testing.T, r Reader) Stats {
	t.Helper()
	st, err := Summarize(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func same(t *testing.T, got, want []Sample) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	for i := range got {
		if math.Abs(got[i].T-want[i].T) > 1e-12 || math.Abs(got[i].P-want[i].P) > 1e-12 {
			t.Fatalf("sample %d: got %v\nwant %v", i, got, want)
		}
	}
}

func TestSummarize(t *testing.T) {
	st := summary(t, steps(1, 1, 3, 0, 2))
	if st.Samples != 4 || st.Duration != 4 || st.EnergyJ != 6 || st.MeanW != 1.5 || st.MinW != 0 || st.MaxW != 3 {
		t.Errorf("%+v", st)
	}
	if want := math.Sqrt((0.25 + 2.25 + 2.25 + 0.25) / 4); math.Abs(st.StdW-want) > 1e-15 {
		t.Errorf("std %g, want %g", st.StdW, want)
	}
	st, _ = Summarize(steps(1, 1, 3, 0, 2, 2, 0, 5), 2)
	if st.FractionAbove != 4.0/7 || st.OnStretches != 3 || st.MeanOnS != 4.0/3 || st.LongestOnS != 2 || st.MeanOffS != 1 || st.LongestOffS != 1 {
		t.Errorf("%+v", st)
	}
	// Irregular samples without a period: the last one holds for the last interval.
	st = summary(t, FromSamples(Meta{Name: "irr"}, []Sample{{0, 1}, {1, 1}, {3, 2}}))
	if st.Duration != 5 || st.EnergyJ != 7 {
		t.Errorf("%+v", st)
	}
	st = summary(t, FromSamples(Meta{Name: "one"}, []Sample{{2, 1}}))
	if st.Duration != 0 || st.MeanW != 1 || st.Samples != 1 {
		t.Errorf("%+v", st)
	}
	if _, err := Summarize(steps(1, 1), math.NaN()); err == nil {
		t.Error("NaN threshold accepted")
	}
	if _, err := Summarize(FromSamples(Meta{Name: "e"}, nil), 0); err == nil || err.Error() != "e: empty trace (no samples)" {
		t.Errorf("err = %v", err)
	}
}

func TestSlice(t *testing.T) {
	same(t, all(t, Slice(steps(1, 1, 2, 3, 4, 5), 1, 3)), []Sample{{0, 2}, {1, 3}})
	same(t, all(t, Slice(steps(1, 1, 2, 3, 4, 5), 1.5, 3.5)), []Sample{{0, 2}, {0.5, 3}, {1.5, 4}})
	same(t, all(t, Slice(steps(1, 1, 2, 3, 4, 5), 1.2, 1.7)), []Sample{{0, 2}})
	same(t, all(t, Slice(steps(1, 1, 2, 3), 2.5, math.Inf(1))), []Sample{{0, 3}})
	same(t, all(t, Slice(steps(1, 1, 2, 3), -1, 10)), []Sample{{1, 1}, {2, 2}, {3, 3}})
	st := summary(t, Slice(steps(1, 1, 2, 3, 4, 5), 1, 3))
	if st.Duration != 2 || st.EnergyJ != 5 {
		t.Errorf("%+v", st)
	}
	for _, c := range []struct {
		from, to float64
		want     string
	}{
		{3, 10, "steps: slice: window from 3 s is past the end of the trace (ends at 3 s)"},
		{2, 2, "steps: slice: window from 2 s to 2 s is empty or not finite"},
		{math.NaN(), 2, "steps: slice: window from NaN s to 2 s is empty or not finite"},
	} {
		_, err := ReadAll(Slice(steps(1, 1, 2, 3), c.from, c.to), 10)
		if err == nil || err.Error() != c.want {
			t.Errorf("Slice(%g, %g): %v, want %s", c.from, c.to, err, c.want)
		}
	}
	if m := Slice(steps(1, 1), 0, 1).Meta(); len(m.Comments) != 1 || m.Comments[0] != "transform: slice from 0 s to 1 s, rebased to 0" {
		t.Errorf("comments %q", m.Comments)
	}
}

func TestScaleLimit(t *testing.T) {
	same(t, all(t, Scale(steps(1, 1, 2), 2.5)), []Sample{{0, 2.5}, {1, 5}})
	if _, err := ReadAll(Scale(steps(1, 1), -1), 10); err == nil {
		t.Error("negative scale accepted")
	}
	if _, err := ReadAll(Scale(steps(1, 1e300), 1e300), 10); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Errorf("err = %v", err)
	}
	same(t, all(t, Limit(steps(1, 1, 2, 3), 2)), []Sample{{0, 1}, {1, 2}})
	if _, err := ReadAll(Limit(steps(1, 1), 0), 10); err == nil {
		t.Error("Limit 0 accepted")
	}
}

func TestLoop(t *testing.T) {
	open := func() (Reader, error) { return steps(1, 1, 2), nil }
	same(t, all(t, Loop(open, 5)), []Sample{{0, 1}, {1, 2}, {2, 1}, {3, 2}, {4, 1}})
	same(t, all(t, Loop(open, 4.5)), []Sample{{0, 1}, {1, 2}, {2, 1}, {3, 2}, {4, 1}})

	// The bundled 60 s square wave looped to 150 s: 2.5 repetitions.
	r := Loop(func() (Reader, error) { return OpenBundled("square-2mW") }, 150)
	if m := r.Meta(); m.Name != "square-2mW.csv" {
		t.Errorf("meta %+v", m)
	}
	s := all(t, r)
	if len(s) != 15000 {
		t.Fatalf("%d samples", len(s))
	}
	for i := 1; i < len(s); i++ {
		if d := s[i].T - s[i-1].T; math.Abs(d-0.01) > 1e-9 {
			t.Fatalf("step %g at sample %d", d, i)
		}
	}
	st := summary(t, FromSamples(Meta{Period: 0.01}, s))
	if math.Abs(st.Duration-150) > 1e-9 || math.Abs(st.EnergyJ-0.120) > 1e-12 {
		t.Errorf("%+v", st)
	}

	if _, err := ReadAll(Loop(func() (Reader, error) { return FromSamples(Meta{Name: "z"}, []Sample{{0, 1}}), nil }, 10), 10); err == nil || err.Error() != "z: loop: the trace lasts 0 s, it cannot be repeated" {
		t.Errorf("err = %v", err)
	}
	if _, err := ReadAll(Loop(open, math.Inf(1)), 10); err == nil {
		t.Error("infinite loop accepted")
	}
}

// Loop closes the files it opens.
type closeCount struct {
	Reader
	n *int
}

func (c closeCount) Close() error { *c.n++; return nil }

func TestLoopCloses(t *testing.T) {
	opened, closed := 0, 0
	open := func() (Reader, error) { opened++; return closeCount{steps(1, 1, 2), &closed}, nil }
	all(t, Loop(open, 5))
	if opened != 3 || closed != 3 {
		t.Errorf("opened %d, closed %d", opened, closed)
	}
}

func TestResample(t *testing.T) {
	// Upsampling repeats, downsampling averages, odd bins split energy.
	same(t, all(t, Resample(steps(1, 1, 2), 0.5)), []Sample{{0, 1}, {0.5, 1}, {1, 2}, {1.5, 2}})
	same(t, all(t, Resample(steps(1, 1, 3, 5, 7), 2)), []Sample{{0, 2}, {2, 6}})
	got := all(t, Resample(steps(1, 1, 2, 3), 0.3))
	if len(got) != 10 || math.Abs(got[3].P-(0.1*1+0.2*2)/0.3) > 1e-12 || got[9].T != 2.7 || math.Abs(got[9].P-3) > 1e-12 {
		t.Errorf("%v", got)
	}
	st := summary(t, Resample(steps(1, 1, 2, 3), 0.4)) // 3 s in 8 bins: the last one holds 0.2 s of 3 W
	if math.Abs(st.EnergyJ-6) > 1e-12 || math.Abs(st.Duration-3.2) > 1e-12 {
		t.Errorf("%+v", st)
	}
	if _, err := ReadAll(Resample(steps(1, 1), 0), 10); err == nil {
		t.Error("period 0 accepted")
	}
	if m := Resample(steps(1, 1), 0.5).Meta(); m.Period != 0.5 {
		t.Errorf("period %g", m.Period)
	}
}

func TestResampleReal(t *testing.T) {
	needReal(t)
	path := filepath.Join(realDir, "react", "rf-cart.trace")
	open := func() Reader {
		r, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	orig := summary(t, open())
	for _, period := range []float64{0.02, 0.1, 0.3, 1, 0.001} {
		st := summary(t, Resample(open(), period))
		if math.Abs(st.EnergyJ-orig.EnergyJ) > 1e-9*orig.EnergyJ {
			t.Errorf("period %g: energy %.12g, want %.12g", period, st.EnergyJ, orig.EnergyJ)
		}
		if want := math.Ceil(orig.Duration/period-1e-9) * period; math.Abs(st.Duration-want) > 1e-6 {
			t.Errorf("period %g: duration %g, want %g", period, st.Duration, want)
		}
	}
	// At its own period a resample is the trace itself.
	a, b := open(), Resample(open(), 0.02)
	for {
		x, err1 := a.Next()
		y, err2 := b.Next()
		if err1 == io.EOF && err2 == io.EOF {
			break
		}
		if err1 != nil || err2 != nil || math.Abs(x.T-y.T) > 1e-9 || math.Abs(x.P-y.P) > 1e-12*x.P {
			t.Fatalf("%v %v: %+v vs %+v", err1, err2, x, y)
		}
	}
	// A slice over whole samples carries exactly their energy.
	st := summary(t, Slice(open(), 10, 20))
	full := all(t, open())
	var e float64
	for _, s := range full[500:1000] {
		e += s.P * 0.02
	}
	if st.Samples != 500 || math.Abs(st.EnergyJ-e) > 1e-12 || math.Abs(st.Duration-10) > 1e-9 {
		t.Errorf("%+v, want energy %g", st, e)
	}
}
