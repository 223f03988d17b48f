package reports

import (
	"testing"
)

// results makes n final results of one cell whose latency (and energy
// and power cycles) are base*(1+step*i).
func gateResults(kind, sched string, base, step float64, n int) []Result {
	var out []Result
	for i := 0; i < n; i++ {
		v := base * (1 + step*float64(i))
		out = append(out, Result{Cell: sched, Board: "b", BoardKind: kind, Model: "m", Scheduler: sched, Trace: "t", Run: i + 1, Final: true,
			Outcome: OutcomePass, Replay: &Replay{Inferences: ip(1), Verified: ip(1), Mismatches: ip(0), PowerCycles: ip(int(v)),
				Latency: &Latency{Mean: fp(v), P95: fp(v)}, Energy: &EnergySplit{Total: fp(v / 1000)}}})
	}
	return out
}

func verdicts(g *GateResult) map[string]string {
	m := map[string]string{}
	for _, r := range g.Rows {
		m[r.Cell+" "+r.Metric] = r.Verdict
	}
	return m
}

// TestGateStatistics: on a board whose figures vary, a 10 % slower median
// over 5 runs each is a regression (Mann-Whitney p < 0.05), the same over
// 2 runs is inconclusive, 2 % is below the effect that counts, and faster
// is an improvement that passes.
func TestGateStatistics(t *testing.T) {
	base := gateResults("serial", "s", 100, 0.01, 5)
	cases := []struct {
		name    string
		cur     []Result
		pass    bool
		verdict string
	}{
		{"10 % slower", gateResults("serial", "s", 110, 0.01, 5), false, VerdictRegression},
		{"2 % slower", gateResults("serial", "s", 102, 0.01, 5), true, ""},
		{"10 % faster", gateResults("serial", "s", 90, 0.01, 5), true, VerdictImprovement},
		{"10 % slower, 2 runs", gateResults("serial", "s", 110, 0.01, 2), true, VerdictInconclusive},
	}
	for _, c := range cases {
		b := base
		if len(c.cur) == 2 {
			b = base[:2]
		}
		g := Gate(b, c.cur, DefaultGate)
		v := verdicts(g)["b/m/s/t latency-s"]
		if g.Pass != c.pass || v != c.verdict {
			t.Errorf("%s: pass %v verdict %q, want %v %q (%+v)", c.name, g.Pass, v, c.pass, c.verdict, g.Rows)
		}
		if v == VerdictRegression {
			for _, r := range g.Rows {
				if r.Metric == "latency-s" && (r.P == nil || *r.P >= 0.05 || r.Test != "mann-whitney") {
					t.Errorf("%s: %+v", c.name, r)
				}
			}
		}
	}
}

// TestGateExact: on the simulated board any worse figure fails, a better
// one passes; failures, errors, unverified and missing cells fail.
func TestGateExact(t *testing.T) {
	base := gateResults("sim", "s", 100, 0, 1)
	if g := Gate(base, gateResults("sim", "s", 100.0001, 0, 1), DefaultGate); g.Pass || verdicts(g)["b/m/s/t latency-s"] != VerdictRegression {
		t.Errorf("one in a million slower on sim: %+v", g)
	}
	if g := Gate(base, gateResults("sim", "s", 99, 0, 1), DefaultGate); !g.Pass || g.Improvements == 0 {
		t.Errorf("faster on sim: %+v", g)
	}
	if g := Gate(base, gateResults("sim", "s", 100, 0, 1), DefaultGate); !g.Pass || len(g.Rows) != 0 {
		t.Errorf("unchanged: %+v", g)
	}
	bad := func(f func(*Result)) []Result {
		r := gateResults("sim", "s", 100, 0, 1)
		f(&r[0])
		return r
	}
	for name, cur := range map[string][]Result{
		"error":      bad(func(r *Result) { r.Outcome, r.Reason = OutcomeError, "timeout" }),
		"fail":       bad(func(r *Result) { r.Outcome = OutcomeFail }),
		"unverified": bad(func(r *Result) { r.Replay.Verified = ip(0) }),
		"missing":    nil,
	} {
		if g := Gate(base, cur, DefaultGate); g.Pass {
			t.Errorf("%s passes the gate: %+v", name, g)
		}
	}
	// A new cell is noted, not a regression; a baseline that failed is
	// not compared.
	g := Gate(nil, base, DefaultGate)
	if !g.Pass || verdicts(g)["b/m/s/t cell"] != VerdictNew {
		t.Errorf("new cell: %+v", g)
	}
	g = Gate(bad(func(r *Result) { r.Outcome = OutcomeFail }), base, DefaultGate)
	if !g.Pass || verdicts(g)["b/m/s/t outcome"] != VerdictNotCompared {
		t.Errorf("failed baseline: %+v", g)
	}
}
