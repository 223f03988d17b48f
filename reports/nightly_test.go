package reports

import (
	"bytes"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batteryless/harness/harness/testenv"
)

func fp(v float64) *float64 { return &v }
func ip(v int) *int         { return &v }

// sampleRun makes a run folder with a result of every outcome, logs
// written by the LogWriter (one with voltage records and a spike, one
// with cycle records only, one torn by a kill) and awkward text.
func sampleRun(t *testing.T) *Run {
	t.Helper()
	dir := t.TempDir()
	writeLog := func(rel string, voltages bool, torn bool) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		var b bytes.Buffer
		w := NewLogWriter(&b)
		w.Write(HeaderRecord{Type: "header", Board: "sim", Scheduler: "tile"})
		tm := 0.0
		for c := 0; c < 300; c++ {
			w.Write(CycleRecord{Type: "cycle", Cycle: c, Start: tm + 0.5, End: tm + 0.7, VStart: 2.8, VEnd: 2.4, Tasks: 3, Commits: 3, Progress: 3 * c, Inference: 0, Reason: "brownout"})
			if voltages {
				for k := 0; k < 10; k++ {
					v := 2.4 + 0.04*float64(k)
					if c == 150 && k == 5 {
						v = 3.5 // a one-sample spike
					}
					w.Write(VoltageRecord{Type: "voltage", T: tm + 0.05*float64(k), V: v})
				}
			}
			tm += 0.7
		}
		w.Write(InferenceRecord{Type: "inference", Index: 0, End: tm, Latency: tm, PowerCycles: 300, Verified: true, LowerBound: tm / 2})
		w.End("completed", nil)
		data := b.Bytes()
		if torn {
			data = data[:len(data)-25]
		}
		os.WriteFile(p, data, 0o644)
	}
	writeLog("cells/a/attempt-1/log.jsonl", true, false)
	writeLog("cells/b/attempt-1/log.jsonl", false, false)
	writeLog("cells/c/attempt-1/log.jsonl", false, true)
	os.WriteFile(filepath.Join(dir, "cells/c/attempt-1/stderr.txt"), []byte("harness: qemu died <&> \x01 ]]>\n"), 0o644)
	rep := func(lat float64) *Replay {
		return &Replay{Inferences: ip(2), Verified: ip(2), Mismatches: ip(0), PowerCycles: ip(300), Commits: ip(900),
			Latency: &Latency{Mean: fp(lat), P50: fp(lat), P95: fp(lat * 1.1), Max: fp(lat * 1.2)}, LowerBoundS: fp(lat / 2),
			MinEnergyJ: fp(0.001), Energy: &EnergySplit{Total: fp(0.003)}}
	}
	run := &Run{Dir: dir, Title: "sample <run>", Plan: "0123456789abcdef", Boards: []RunBoard{{"sim", "sim", "msp430fr5994"}, {"qemu", "qemu-stm32", ""}},
		Health: []Health{{Board: "sim", OK: true}, {Board: "qemu", OK: true}}}
	base := Result{Board: "sim", BoardKind: "sim", Model: "kws", Trace: "rf-office", Run: 1, Requested: 2}
	add := func(cell, sched, outcome, reason, msg string, attempt int, final bool, r *Replay, log string) {
		res := base
		res.Cell, res.Scheduler, res.Outcome, res.Reason, res.Message, res.Attempt, res.Final, res.Replay, res.Log = cell, sched, outcome, reason, msg, attempt, final, r, log
		res.Name = res.Board + "/" + res.Model + "/" + sched + "/" + res.Trace
		res.Seconds = 1.5
		run.Results = append(run.Results, res)
	}
	add("a", "tile", OutcomePass, "", "", 1, true, rep(10), "cells/a/attempt-1/log.jsonl")
	add("b", "inas", OutcomeFail, "mismatch", "an output differed: 1 of 2 <x> & \"y\"", 1, true, rep(8), "cells/b/attempt-1/log.jsonl")
	add("c", "sonic", OutcomeError, "exit-2", "port lost \x01\x02", 1, false, nil, "cells/c/attempt-1/log.jsonl")
	run.Results[len(run.Results)-1].Artifacts = []string{"cells/c/attempt-1/stderr.txt"}
	add("c", "sonic", OutcomeFlaky, "", "passed on attempt 2", 2, true, rep(30), "")
	add("d", "hawaii", OutcomeError, "missing", "never ran", 1, true, nil, "")
	q := base
	q.Cell, q.Board, q.BoardKind, q.Scheduler, q.Outcome, q.Attempt, q.Final, q.Name = "e", "qemu", "qemu-stm32", "tile", OutcomePass, 1, true, "qemu/kws/tile/rf-office"
	q.Replay = rep(12)
	q.Replay.LowerBoundS = nil
	q.Replay.Prediction = &Prediction{PowerCyclesError: fp(-0.08), TaskCyclesMaxError: fp(0.04)}
	run.Results = append(run.Results, q)
	return run
}

// TestJUnitValidates: the JUnit of a run with every outcome validates
// against junit.xsd (xmllint), passes the structural check, and says
// what each case needs said.
func TestJUnitValidates(t *testing.T) {
	run := sampleRun(t)
	var b bytes.Buffer
	if err := WriteJUnit(&b, run); err != nil {
		t.Fatal(err)
	}
	if err := CheckJUnit(bytes.NewReader(b.Bytes())); err != nil {
		t.Fatal(err)
	}
	doc := JUnit(run)
	if doc.Tests != 5 || doc.Failures != 1 || doc.Errors != 1 || len(doc.Suites) != 2 {
		t.Errorf("tests %d failures %d errors %d suites %d", doc.Tests, doc.Failures, doc.Errors, len(doc.Suites))
	}
	x := b.String()
	for _, want := range []string{`classname="kws.inas" name="rf-office"`, `<failure message="an output differed: 1 of 2 &lt;x&gt; &amp; &#34;y&#34;" type="mismatch">`,
		"last lines of the board&#39;s log", `[[ATTACHMENT|` + filepath.ToSlash(run.Dir) + `/cells/a/attempt-1/log.jsonl]]`,
		`<property name="latency.p95_s" value="11"></property>`, `<property name="lower_bound_ratio" value="2"></property>`,
		`<property name="outcome" value="flaky"></property>`, `<error message="never ran" type="missing">`} {
		if !strings.Contains(x, want) {
			t.Errorf("junit.xml lacks %s", want)
		}
	}
	file := filepath.Join(t.TempDir(), "junit.xml")
	os.WriteFile(file, b.Bytes(), 0o644)
	testenv.NeedTool(t, "xmllint", "libxml2-utils")
	if out, err := exec.Command("xmllint", "--noout", "--schema", "junit.xsd", file).CombinedOutput(); err != nil {
		t.Fatalf("xmllint: %v\n%s", err, out)
	}
	// The schema is not vacuous: it refuses what readers would choke on.
	bad := map[string]string{
		"a case without a name": strings.Replace(x, `name="rf-office"`, `nom="rf-office"`, 1),
		"a negative count":      strings.Replace(x, `tests="5"`, `tests="-5"`, 1),
		"failure and error":     strings.Replace(x, `</failure>`, `</failure><error message="m" type="t"></error>`, 1),
		"a stray element":       strings.Replace(x, `<testsuite `, `<testsuit></testsuit><testsuite `, 1),
	}
	for what, doc := range bad {
		f := filepath.Join(t.TempDir(), "bad.xml")
		os.WriteFile(f, []byte(doc), 0o644)
		if out, err := exec.Command("xmllint", "--noout", "--schema", "junit.xsd", f).CombinedOutput(); err == nil {
			t.Errorf("the schema accepts %s:\n%s", what, out)
		}
	}
}

func TestCheckJUnitRefuses(t *testing.T) {
	var b bytes.Buffer
	WriteJUnit(&b, sampleRun(t))
	x := b.String()
	for what, doc := range map[string]string{
		"wrong count":    strings.Replace(x, `failures="1"`, `failures="2"`, 1),
		"duplicate case": strings.Replace(x, `classname="kws.inas"`, `classname="kws.tile"`, 1),
		"not XML":        "<testsuites",
	} {
		if err := CheckJUnit(strings.NewReader(doc)); err == nil {
			t.Errorf("CheckJUnit accepts %s", what)
		}
	}
}

// TestEnvelope: the downsampled series keeps every bucket's extremes (so
// the global ones), its order, its ends, and stays small.
func TestEnvelope(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, n := range []int{0, 1, 5, 100, 10000, 100003} {
		xs := make([]float64, n)
		ys := make([]float64, n)
		x := 0.0
		for i := range xs {
			x += rng.ExpFloat64()
			xs[i], ys[i] = x, rng.NormFloat64()
		}
		if n > 10 {
			ys[n/3] = 100 // a spike
			ys[n/2] = -100
		}
		ex, ey := Envelope(xs, ys, 200)
		if len(ex) != len(ey) || len(ex) > 2*200+2 && n > 402 {
			t.Fatalf("n %d: %d points", n, len(ex))
		}
		if n == 0 {
			continue
		}
		lo, hi := minMax(ys)
		elo, ehi := minMax(ey)
		if lo != elo || hi != ehi || ex[0] != xs[0] || ex[len(ex)-1] != xs[n-1] {
			t.Errorf("n %d: extremes %g %g -> %g %g, ends %g %g -> %g %g", n, lo, hi, elo, ehi, xs[0], xs[n-1], ex[0], ex[len(ex)-1])
		}
		for i := 1; i < len(ex); i++ {
			if ex[i] < ex[i-1] {
				t.Fatalf("n %d: out of order at %d", n, i)
			}
		}
	}
}

func ExampleEnvelope() {
	xs := []float64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	ys := []float64{0, 0, 0, 9, 0, 0, 0, 0, -9, 0}
	ex, ey := Envelope(xs, ys, 2)
	fmt.Println(ex)
	fmt.Println(ey)
	// Output:
	// [0 1 3 5 8 9]
	// [0 0 9 0 -9 0]
}

func TestSummaryLimit(t *testing.T) {
	run := &Run{Title: "big", Dir: t.TempDir()}
	for i := 0; i < 6000; i++ {
		run.Results = append(run.Results, Result{Cell: fmt.Sprint(i), Name: fmt.Sprintf("bench-%d/kws/tile/trace-%d", i%7, i), Board: "b", Model: "kws",
			Scheduler: "tile", Trace: fmt.Sprint(i), Final: true, Outcome: OutcomeFail, Reason: "mismatch", Message: strings.Repeat("| long ", 40)})
	}
	var b bytes.Buffer
	if err := WriteSummary(&b, run); err != nil {
		t.Fatal(err)
	}
	if b.Len() > SummaryLimit {
		t.Errorf("summary.md is %d bytes, over %d", b.Len(), SummaryLimit)
	}
	s := b.String()
	if !strings.Contains(s, "**6000 cells**: 0 pass, 6000 fail") || !strings.Contains(s, "more rows (see report.html") {
		t.Errorf("summary:\n%s", s[:500])
	}
	if strings.Contains(s, "| long |") {
		t.Error("a | inside a cell was not escaped")
	}
}

func TestHTMLSample(t *testing.T) {
	run := sampleRun(t)
	var b bytes.Buffer
	if err := WriteHTML(&b, run); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	for _, want := range []string{`data-plot="heatmap" data-cells="5"`, `data-plot="prediction"`, `data-source="voltage"`, `data-source="cycles"`,
		"sample &lt;run&gt;", "default-src 'none'"} {
		if !strings.Contains(h, want) {
			t.Errorf("report.html lacks %s", want)
		}
	}
	noNS := strings.ReplaceAll(h, `xmlns="http://www.w3.org/2000/svg"`, "")
	for _, no := range []string{"<script", "http://", "https://", "src="} {
		if strings.Contains(noNS, no) {
			t.Errorf("report.html holds %s", no)
		}
	}
	// The spike of the voltage records survives the envelope.
	lg := mustLog(t, run, 0)
	_, ys := Envelope(voltT(lg), voltV(lg), plotBuckets)
	if _, hi := minMax(ys); hi != 3.5 {
		t.Errorf("the spike of 3.5 V was lost: max %g", hi)
	}
	if lg2 := mustLog(t, run, 2); len(lg2.Cycles) != 300 || lg2.End != nil {
		t.Errorf("torn log: %d cycles, end %v; want every whole line", len(lg2.Cycles), lg2.End)
	}
}

func mustLog(t *testing.T, run *Run, i int) *Log {
	t.Helper()
	lg, err := run.ReadCellLog(&run.Results[i])
	if err != nil || lg == nil {
		t.Fatalf("log %d: %v", i, err)
	}
	return lg
}

func voltT(lg *Log) []float64 {
	var out []float64
	for _, v := range lg.Voltages {
		out = append(out, v.T)
	}
	return out
}

func voltV(lg *Log) []float64 {
	var out []float64
	for _, v := range lg.Voltages {
		out = append(out, v.V)
	}
	return out
}

func TestBenchLines(t *testing.T) {
	run := sampleRun(t)
	var b bytes.Buffer
	if err := WriteBench(&b, run.Results); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	// pkg line, then the passing and flaky finals: a, c (flaky), e.
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "pkg: ") {
		t.Fatalf("bench.txt:\n%s", b.String())
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if !strings.HasPrefix(f[0], "BenchmarkReplay/board=") || f[1] != "1" || len(f)%2 != 0 {
			t.Errorf("not a benchmark line: %q", l)
		}
		for i := 2; i+1 < len(f); i += 2 {
			if _, err := fmt.Sscan(f[i], new(float64)); err != nil || MetricByName(f[i+1]) == nil {
				t.Errorf("%q: value %q unit %q", l, f[i], f[i+1])
			}
		}
	}
	if !strings.Contains(b.String(), "BenchmarkReplay/board=sim/model=kws/sched=tile/trace=rf-office 1 10 latency-s 11 p95-latency-s 0.003 energy-J 300 power-cycles 900 commits") {
		t.Errorf("bench.txt:\n%s", b.String())
	}
}

func TestResultsRoundTrip(t *testing.T) {
	run := sampleRun(t)
	var b bytes.Buffer
	if err := WriteResults(&b, run.Results); err != nil {
		t.Fatal(err)
	}
	back, err := ReadResults(&b, "results.jsonl")
	if err != nil || len(back) != len(run.Results) {
		t.Fatalf("%d results, %v", len(back), err)
	}
	if *back[0].Replay.Latency.Mean != 10 || back[4].Replay != nil || back[5].Replay.LowerBoundS != nil {
		t.Errorf("round trip lost figures: %+v", back[0].Replay)
	}
	if _, err := ReadResults(strings.NewReader("{\"cell\":\"a\"}\n{\"cell\":3}\n"), "r"); err == nil || !strings.Contains(err.Error(), "r:2:") {
		t.Errorf("bad line: %v", err)
	}
}

func FuzzParseReplay(f *testing.F) {
	f.Add([]byte(`{"inferences":2,"verified":2,"mismatches":0,"latency_s":{"mean":1,"p50":1,"p95":2,"max":2},"energy_j":{"total":0.1},"simulated":{"power_cycles":3}}`))
	f.Add([]byte(`{"latency_s":null,"prediction":{"latency_s":{"mean":"x"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseReplay(data)
		if err != nil {
			return
		}
		for _, m := range Metrics {
			if v := m.Get(r); v.OK && (math.IsNaN(v.V) || math.IsInf(v.V, 0)) {
				t.Fatalf("%s = %g", m.Name, v.V)
			}
		}
		r.AllVerified()
	})
}

func FuzzReadResults(f *testing.F) {
	f.Add([]byte(`{"cell":"a","final":true,"outcome":"pass","replay":{"inferences":1,"verified":1}}` + "\n"))
	f.Add([]byte("{\"cell\":\"b\"}\n\n{\"cell\":\"c\",\"replay\":{\"energy_j\":{}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ReadResults(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := WriteResults(&b, rs); err != nil {
			t.Fatal(err)
		}
		back, err := ReadResults(&b, "again")
		if err != nil || len(back) != len(rs) {
			t.Fatalf("results do not read back: %d of %d, %v", len(back), len(rs), err)
		}
		Gate(rs, back, DefaultGate)
		WriteBench(&b, rs)
	})
}
