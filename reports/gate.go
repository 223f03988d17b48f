package reports

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"golang.org/x/perf/benchmath"
)

// GateOptions are the regression gate's thresholds.
type GateOptions struct {
	// Alpha is the Mann-Whitney U test's significance level (0.05).
	Alpha float64
	// MinEffect is the smallest relative change of a median that counts
	// on a board whose figures vary (0.05: 5 %).
	MinEffect float64
	// Tolerance is the relative difference below which two figures of a
	// deterministic board are equal (1e-9: JSON round-off only).
	Tolerance float64
}

// DefaultGate are the thresholds `harness gate` uses.
var DefaultGate = GateOptions{Alpha: 0.05, MinEffect: 0.05, Tolerance: 1e-9}

// Gate verdicts of a row.
const (
	VerdictRegression   = "regression"
	VerdictImprovement  = "improvement"
	VerdictInconclusive = "inconclusive" // moved, too few runs to tell
	VerdictNew          = "new"          // only in the current run
	VerdictNotCompared  = "not-compared" // the baseline did not pass
)

// GateRow is one figure of one cell that moved, or a problem.
type GateRow struct {
	Cell     string   `json:"cell"` // board/model/scheduler/trace
	Metric   string   `json:"metric"`
	Test     string   `json:"test,omitempty"` // exact, mann-whitney
	Baseline *float64 `json:"baseline,omitempty"`
	Current  *float64 `json:"current,omitempty"`
	Change   *float64 `json:"change,omitempty"` // relative, current/baseline - 1
	P        *float64 `json:"p,omitempty"`
	N1       int      `json:"n_baseline,omitempty"`
	N2       int      `json:"n_current,omitempty"`
	Verdict  string   `json:"verdict"`
	Note     string   `json:"note,omitempty"`
}

// GateResult is the gate's finding.
type GateResult struct {
	Compared     int       `json:"compared"` // cells (keys) compared
	Regressions  int       `json:"regressions"`
	Improvements int       `json:"improvements"`
	Rows         []GateRow `json:"rows"`
	Pass         bool      `json:"pass"`
}

// deterministicKinds are the boards whose every figure repeats exactly.
var deterministicKinds = map[string]bool{"sim": true}

// gateExact are the figures compared exactly on a deterministic board;
// gateStats those compared over the repeats elsewhere.
var (
	gateExact = []string{"latency-s", "p95-latency-s", "energy-J", "power-cycles", "commits", "reexecuted-tasks"}
	gateStats = []string{"latency-s", "energy-J", "power-cycles"}
)

func ptr(v float64) *float64 { return &v }

// Gate compares a current run with a baseline, cell by cell (by board,
// model, scheduler and trace; the repeats of a cell are its samples):
//   - every current cell must pass with every inference verified (an error
//     is not a pass; a cell missing from the current run is a regression);
//   - on a deterministic board (the simulated one) every figure is
//     compared exactly: any worse figure is a regression;
//   - elsewhere latency, energy and power cycles are compared over the
//     repeats with a Mann-Whitney U test: a regression when p < Alpha and
//     the median moved by at least MinEffect the wrong way.
func Gate(baseline, current []Result, opt GateOptions) *GateResult {
	group := func(rs []Result) map[string][]Result {
		m := map[string][]Result{}
		for _, r := range rs {
			if r.Final {
				m[r.Key()] = append(m[r.Key()], r)
			}
		}
		return m
	}
	base, cur := group(baseline), group(current)
	keys := map[string]bool{}
	for k := range base {
		keys[k] = true
	}
	for k := range cur {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	g := &GateResult{}
	add := func(row GateRow) {
		switch row.Verdict {
		case VerdictRegression:
			g.Regressions++
		case VerdictImprovement:
			g.Improvements++
		}
		g.Rows = append(g.Rows, row)
	}
	for _, k := range sorted {
		b, c := base[k], cur[k]
		switch {
		case len(c) == 0:
			add(GateRow{Cell: k, Metric: "cell", Verdict: VerdictRegression, Note: "in the baseline, missing from the current run"})
			continue
		case len(b) == 0:
			add(GateRow{Cell: k, Metric: "cell", Verdict: VerdictNew, Note: "only in the current run"})
		}
		g.Compared++
		if bad := notPassing(c); bad != "" {
			add(GateRow{Cell: k, Metric: "outcome", Verdict: VerdictRegression, Note: bad})
			continue
		}
		if len(b) == 0 {
			continue
		}
		if bad := notPassing(b); bad != "" {
			add(GateRow{Cell: k, Metric: "outcome", Verdict: VerdictNotCompared, Note: "baseline: " + bad})
			continue
		}
		if deterministicKinds[c[0].BoardKind] && deterministicKinds[b[0].BoardKind] {
			for _, name := range gateExact {
				if row, ok := exactRow(k, name, b, c, opt); ok {
					add(row)
				}
			}
			continue
		}
		for _, name := range gateStats {
			if row, ok := statsRow(k, name, b, c, opt); ok {
				add(row)
			}
		}
	}
	g.Pass = g.Regressions == 0
	return g
}

// notPassing says why a cell's runs do not all pass, or "".
func notPassing(rs []Result) string {
	var why []string
	for _, r := range rs {
		switch {
		case r.Outcome != OutcomePass && r.Outcome != OutcomeFlaky:
			why = append(why, fmt.Sprintf("run %d %s (%s)", r.Run, r.Outcome, r.Reason))
		case !r.Replay.AllVerified():
			why = append(why, fmt.Sprintf("run %d: not every inference verified", r.Run))
		}
	}
	return strings.Join(why, "; ")
}

func samples(rs []Result, name string) []float64 {
	m := MetricByName(name)
	var out []float64
	for _, r := range rs {
		if r.Replay == nil {
			continue
		}
		if v := m.Get(r.Replay); v.OK {
			out = append(out, v.V)
		}
	}
	return out
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func relChange(b, c float64) float64 {
	if b == 0 {
		if c == 0 {
			return 0
		}
		return math.Inf(int(math.Copysign(1, c)))
	}
	return c/b - 1
}

// worse reports whether a move from b to c is the wrong way for metric.
func worse(name string, b, c float64) bool {
	if m := MetricByName(name); m != nil && !m.LowerIsBetter {
		return c < b
	}
	return c > b
}

func exactRow(k, name string, b, c []Result, opt GateOptions) (GateRow, bool) {
	sb, sc := samples(b, name), samples(c, name)
	if len(sb) == 0 && len(sc) == 0 {
		return GateRow{}, false
	}
	if len(sb) == 0 || len(sc) == 0 {
		return GateRow{Cell: k, Metric: name, Test: "exact", Verdict: VerdictInconclusive, Note: "reported by one run only"}, true
	}
	mb, mc := median(sb), median(sc)
	if math.Abs(mc-mb) <= opt.Tolerance*math.Max(math.Abs(mb), math.Abs(mc)) {
		return GateRow{}, false
	}
	ch := relChange(mb, mc)
	row := GateRow{Cell: k, Metric: name, Test: "exact", Baseline: ptr(mb), Current: ptr(mc), Change: ptr(ch), N1: len(sb), N2: len(sc), Verdict: VerdictImprovement}
	if worse(name, mb, mc) {
		row.Verdict = VerdictRegression
	}
	return row, true
}

func statsRow(k, name string, b, c []Result, opt GateOptions) (GateRow, bool) {
	sb, sc := samples(b, name), samples(c, name)
	if len(sb) == 0 || len(sc) == 0 {
		return GateRow{}, false
	}
	th := benchmath.DefaultThresholds
	th.CompareAlpha = opt.Alpha
	s1, s2 := benchmath.NewSample(sb, &th), benchmath.NewSample(sc, &th)
	cmp := benchmath.AssumeNothing.Compare(s1, s2)
	mb, mc := median(sb), median(sc)
	ch := relChange(mb, mc)
	row := GateRow{Cell: k, Metric: name, Test: "mann-whitney", Baseline: ptr(mb), Current: ptr(mc), Change: ptr(ch),
		P: ptr(cmp.P), N1: cmp.N1, N2: cmp.N2}
	big := math.Abs(ch) >= opt.MinEffect
	switch {
	case !big:
		return GateRow{}, false
	case cmp.P < opt.Alpha:
		row.Verdict = VerdictImprovement
		if worse(name, mb, mc) {
			row.Verdict = VerdictRegression
		}
	default:
		row.Verdict = VerdictInconclusive
		var notes []string
		for _, w := range cmp.Warnings {
			notes = append(notes, w.Error())
		}
		if len(notes) == 0 {
			notes = append(notes, fmt.Sprintf("p = %.3g, not below %g", cmp.P, opt.Alpha))
		}
		row.Note = strings.Join(notes, "; ")
	}
	return row, true
}
