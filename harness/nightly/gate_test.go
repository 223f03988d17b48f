package nightly

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batteryless/harness/reports"
)

// slowedTile is a test-only knob, added to package sched by `go build
// -overlay` (it is never in the tree): the tile scheduler plans for a
// capacitor 10 % smaller than the board's, so its tiles are smaller and
// its commits more. A deliberately slowed scheduler whose runs are real.
const slowedTile = `package sched

import (
	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
)

type slowedTile struct{ Scheduler }

func (s slowedTile) Schedule(m *model.Model, prof *profiles.Profile, opt Options) (*plan.Plan, error) {
	p := prof.Clone()
	p.Power.CapacitanceF *= 0.9
	return s.Scheduler.Schedule(m, p, opt)
}

func init() {
	tile, err := Get("tile")
	if err != nil {
		panic(err)
	}
	register(slowedTile{tile})
}
`

// slowedHarness builds the harness with the tile scheduler slowed.
func slowedHarness(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	sched, err := filepath.Abs("../sched")
	if err != nil {
		t.Fatal(err)
	}
	knob := filepath.Join(dir, "zz_slowed_test_knob.go")
	overlay := filepath.Join(dir, "overlay.json")
	ov, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(sched, "zz_slowed_test_knob.go"): knob}})
	if err := os.WriteFile(knob, []byte(slowedTile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(overlay, ov, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "harness-slowed")
	if out, err := exec.Command("go", "build", "-overlay", overlay, "-o", bin, "github.com/batteryless/harness/harness").CombinedOutput(); err != nil {
		t.Fatalf("building the harness with a slowed tile scheduler (the knob may need updating to package sched): %v\n%s", err, out)
	}
	return bin
}

// TestGateSlowedScheduler is the check of the gate: between two
// real runs of the same build it passes; against a run whose tile
// scheduler was slowed it flags the tile cells (and only those), through
// the library and through `harness gate`.
func TestGateSlowedScheduler(t *testing.T) {
	cfg := writeConfig(t, `boards:
  - {name: sim, board: sim, profile: msp430fr5994}
schedulers: [tile, inas]
traces: [rf-office, square-2mW]
inferences: 2
loop: true
`)
	tmp := t.TempDir()
	base, same, slow := filepath.Join(tmp, "base"), filepath.Join(tmp, "same"), filepath.Join(tmp, "slow")
	runMatrix(t, cfg, Options{Dir: base})
	runMatrix(t, cfg, Options{Dir: same})
	if s := runMatrix(t, cfg, Options{Dir: slow, Harness: slowedHarness(t)}); s.Counts.Pass != 4 {
		t.Fatalf("slowed run: %+v", s.Counts)
	}
	g := reports.Gate(readResultsFile(t, base), readResultsFile(t, same), reports.DefaultGate)
	if !g.Pass || len(g.Rows) != 0 || g.Compared != 4 {
		t.Errorf("unchanged: %+v", g)
	}
	g = reports.Gate(readResultsFile(t, base), readResultsFile(t, slow), reports.DefaultGate)
	if g.Pass {
		t.Fatal("the gate passed a slowed scheduler")
	}
	flagged := map[string]bool{}
	for _, r := range g.Rows {
		if r.Verdict != reports.VerdictRegression {
			continue
		}
		if !strings.Contains(r.Cell, "/tile/") {
			t.Errorf("flagged %s %s, not a tile cell", r.Cell, r.Metric)
		}
		if r.Metric == "latency-s" {
			flagged[r.Cell] = true
			t.Logf("%s: latency %.3g s -> %.3g s (%+.1f %%)", r.Cell, *r.Baseline, *r.Current, 100**r.Change)
		}
	}
	if len(flagged) != 2 {
		t.Errorf("latency regressions in %v, want both tile cells", flagged)
	}
	// The command: exit 1 on the regression, 0 without.
	bin := harnessBin(t)
	out, err := exec.Command(bin, "gate", "--baseline", base, "--current", slow).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "REGRESSION") {
		t.Errorf("harness gate on the slowed run: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "gate", "--baseline", base, "--current", same, "--json").CombinedOutput(); err != nil || !strings.Contains(string(out), `"pass": true`) {
		t.Errorf("harness gate on an unchanged run: %v\n%s", err, out)
	}
}
