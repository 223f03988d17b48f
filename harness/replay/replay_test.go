package replay

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/harness/testenv"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/sim"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/power"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/reports"
	"github.com/batteryless/harness/traces"
)

func powerOf(p *profiles.Profile) power.Config {
	return power.Config{
		Cap:        power.Capacitor{C: p.Power.CapacitanceF, Vmax: p.Power.VmaxV, Rleak: p.Power.LeakageOhm},
		Th:         power.Thresholds{Von: p.Power.VonV, Voff: p.Power.VoffV},
		Efficiency: p.Power.Efficiency,
	}
}

func setup(t testing.TB, scheduler string) Config {
	t.Helper()
	m, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := profiles.Load("msp430fr5994")
	if err != nil {
		t.Fatal(err)
	}
	s, err := sched.Get(scheduler)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Schedule(m, prof, sched.Options{})
	if err != nil {
		t.Fatal(err)
	}
	name := traces.Bundled()[0]
	return Config{Model: m, Plan: p, Profile: prof, Power: powerOf(prof), Input: bundled.Input(),
		OpenTrace: func() (traces.Reader, error) { return traces.OpenBundled(name) }}
}

func TestReplayBundledVerifies(t *testing.T) {
	cfg := setup(t, "tile")
	var log bytes.Buffer
	cfg.Log = reports.NewLogWriter(&log)
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)
	if res.Inferences == 0 || res.Mismatches != 0 || res.Verified != res.Inferences {
		t.Fatalf("replay: %d inferences, %d verified, %d mismatches", res.Inferences, res.Verified, res.Mismatches)
	}
	if res.PowerCycles < 2 {
		t.Fatalf("only %d power cycles", res.PowerCycles)
	}
	cycles, infs, err := reports.ReadLog(&log, "log")
	if err != nil {
		t.Fatal(err)
	}
	if len(cycles) != res.PowerCycles || len(infs) != res.Inferences {
		t.Fatalf("log has %d cycles and %d inferences, result says %d and %d", len(cycles), len(infs), res.PowerCycles, res.Inferences)
	}
}

func TestReplayIsDeterministic(t *testing.T) {
	var logs [2]bytes.Buffer
	for i := range logs {
		cfg := setup(t, "tile")
		cfg.Inferences = 2
		cfg.Log = reports.NewLogWriter(&logs[i])
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(logs[0].Bytes(), logs[1].Bytes()) || logs[0].Len() == 0 {
		t.Fatal("two replays of the same input gave different logs")
	}
}

func TestCommitBeforeWriteIsCaught(t *testing.T) {
	cfg := setup(t, "tile")
	cfg.Faults = sim.Faults{CommitBeforeWrite: true}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inferences == 0 || res.Mismatches == 0 {
		t.Fatalf("progress written before the outputs went unnoticed: %d inferences, %d mismatches", res.Inferences, res.Mismatches)
	}
}

func injectCfg(t testing.TB, scheduler string) sim.InjectConfig {
	cfg := setup(t, scheduler)
	return sim.InjectConfig{Model: cfg.Model, Plan: cfg.Plan, Profile: cfg.Profile, Input: cfg.Input, Boundaries: true, Random: 200, Seed: 1}
}

func TestInjectEverySchedulerVerifies(t *testing.T) {
	for _, name := range sched.Names() {
		res, err := sim.Inject(injectCfg(t, name))
		if err != nil {
			t.Fatal(err)
		}
		if !res.Verified || res.Mismatches != 0 || res.Boundaries != res.Tasks-1 || res.Inside == 0 {
			t.Fatalf("%s: %+v", name, *res)
		}
		t.Logf("%s: %+v", name, *res)
	}
}

func TestInjectCatchesBrokenProtocols(t *testing.T) {
	cfg := injectCfg(t, "tile")
	cfg.Faults = sim.Faults{CommitBeforeWrite: true}
	res, err := sim.Inject(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified {
		t.Fatalf("progress written before the outputs passed fault injection: %+v", *res)
	}
	// An in-place update: the softmax writes over its own input in NVM.
	cfg = injectCfg(t, "tile")
	m, prof := cfg.Model, cfg.Profile
	s, _ := sched.Get("tile")
	p, err := s.Schedule(m, prof, sched.Options{Layout: plan.LayoutOptions{InPlace: true}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Plan = p
	clean := cfg
	clean.Boundaries, clean.Random = false, 0
	if res, err := sim.Inject(clean); err != nil || !res.Verified {
		t.Fatalf("the in-place plan is wrong even without brown-outs: %v %+v", err, res)
	}
	// Brown-outs in the middle of the last layer's writes.
	cfg.Boundaries, cfg.Random, cfg.Seed = false, 0, 3
	caught := false
	for seed := uint64(0); seed < 20 && !caught; seed++ {
		cfg.Random, cfg.Seed = 400, seed
		res, err := sim.Inject(cfg)
		if err != nil {
			t.Fatal(err)
		}
		caught = !res.Verified
	}
	if !caught {
		t.Fatal("an in-place update read back after a brown-out went unnoticed")
	}
}

// TestInjectSplitReductions runs fault injection on the keyword-spotting
// model, whose average pool and first convolutions are too big for one MSP430
// power cycle and are computed as reduction steps with partial sums in NVM.
func TestInjectSplitReductions(t *testing.T) {
	m, err := model.Load(filepath.Join(sharedData, "models", "kws_dscnn_int8.tflite"))
	if err != nil {
		testenv.SharedData(t, sharedData)
		t.Fatal(err)
	}
	input, err := os.ReadFile(filepath.Join(sharedData, "inputs", "kws_ref_input0_int8.bin"))
	if err != nil {
		t.Fatal(err)
	}
	prof, err := profiles.Load("msp430fr5994")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range sched.Names() {
		s, _ := sched.Get(name)
		p, err := s.Schedule(m, prof, sched.Options{})
		if err != nil {
			t.Fatal(err)
		}
		split := 0
		for _, task := range p.Tasks {
			if task.Part.Split() {
				split++
			}
		}
		if split == 0 && (name == "tile" || name == "layer") {
			// Their tasks fit what a power cycle gives after a reboot,
			// which the 25x5 average pool exceeds.
			t.Fatalf("%s: no task of the KWS plan splits a reduction", name)
		}
		res, err := sim.Inject(sim.InjectConfig{Model: m, Plan: p, Profile: prof, Input: input, Boundaries: name == "tile", Random: 300, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Verified {
			t.Fatalf("%s: %+v", name, *res)
		}
		t.Logf("%s: %d tasks (%d reduction steps), %+v", name, len(p.Tasks), split, *res)
	}
}

// TestMemoIsExact runs the same replays and fault injections with the
// board's memo of whole-layer outputs and without it: logs and outputs must
// be identical, also when the commit protocol is broken.
func TestMemoIsExact(t *testing.T) {
	for _, faults := range []sim.Faults{{}, {CommitBeforeWrite: true}} {
		var logs [2]bytes.Buffer
		var results [2]*Result
		for i, noMemo := range []bool{false, true} {
			cfg := setup(t, "tile")
			cfg.Faults, cfg.NoMemo = faults, noMemo
			cfg.Log = reports.NewLogWriter(&logs[i])
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			results[i] = res
		}
		if !bytes.Equal(logs[0].Bytes(), logs[1].Bytes()) || results[0].Mismatches != results[1].Mismatches {
			t.Fatalf("faults %+v: memo changes the replay (%d vs %d mismatches)", faults, results[0].Mismatches, results[1].Mismatches)
		}
		for _, seed := range []uint64{1, 2, 3} {
			var inj [2]*boards.InjectResult
			for i, noMemo := range []bool{false, true} {
				c := injectCfg(t, "tile")
				c.Faults, c.NoMemo, c.Seed = faults, noMemo, seed
				r, err := sim.Inject(c)
				if err != nil {
					t.Fatal(err)
				}
				inj[i] = r
			}
			if *inj[0] != *inj[1] {
				t.Fatalf("faults %+v seed %d: memo changes fault injection: %+v vs %+v", faults, seed, *inj[0], *inj[1])
			}
		}
	}
}

// TestRunTimeLivelock: the layer scheduler's first layer needs far more
// than a power cycle between its commits. A trace with short strong bursts
// passes the static check (its peak could carry the layer), but its
// average starves it: the replay must stop and name the stretch.
func TestRunTimeLivelock(t *testing.T) {
	cfg := setup(t, "layer")
	cfg.OpenTrace = func() (traces.Reader, error) {
		return traces.Synth("square:high=10mW,low=0.2mW,period_on=50ms,period_off=5s,duration=3000s,rate=100Hz")
	}
	if err := CheckPlan(cfg.Plan, cfg.Profile, cfg.Power, 10e-3); err != nil {
		t.Fatalf("the static check should pass with a 10 mW peak: %v", err)
	}
	_, err := Run(context.Background(), cfg)
	var ll *LivelockError
	if !errors.As(err, &ll) || ll.Cycles < DefaultLivelockCycles || ll.Energy <= ll.Budget {
		t.Fatalf("got %v, want a run-time livelock", err)
	}
	if !strings.Contains(err.Error(), "livelock") || !strings.Contains(err.Error(), " J") {
		t.Fatalf("the message does not name the stretch and the energies: %v", err)
	}
	// The static check refuses the same plan on a trace whose peak is weak.
	if err := CheckPlan(cfg.Plan, cfg.Profile, cfg.Power, 1e-3); !errors.As(err, &ll) {
		t.Fatalf("static check with a 1 mW peak: %v", err)
	}
}

// TestAdaptiveRuntimeRule: the adaptive plan's board sleeps instead of
// browning out, so it needs far fewer power cycles than tile, re-executes
// nothing it committed, and every output is verified.
func TestAdaptiveRuntimeRule(t *testing.T) {
	var res [2]*Result
	for i, name := range []string{"tile", "adaptive"} {
		cfg := setup(t, name)
		r, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if r.Inferences == 0 || r.Mismatches != 0 {
			t.Fatalf("%s: %d inferences, %d mismatches", name, r.Inferences, r.Mismatches)
		}
		res[i] = r
	}
	tile, ad := res[0], res[1]
	if ad.Sleeps == 0 || ad.PowerCycles*4 > tile.PowerCycles || ad.Latency.Mean >= tile.Latency.Mean {
		t.Fatalf("adaptive: %d sleeps, %d power cycles (tile %d), latency %.2f s (tile %.2f s)",
			ad.Sleeps, ad.PowerCycles, tile.PowerCycles, ad.Latency.Mean, tile.Latency.Mean)
	}
	t.Logf("tile %.2f s (%d cycles), adaptive %.2f s (%d cycles, %d sleeps), bound %.2f s",
		tile.Latency.Mean, tile.PowerCycles, ad.Latency.Mean, ad.PowerCycles, ad.Sleeps, ad.LowerBoundS)
}

// TestAdaptiveOnUnseenTraces: on synthetic traces that no constant was
// tuned on (seeds and shapes used nowhere else), adaptive keeps its
// standing against the best baseline and the lower bound.
func TestAdaptiveOnUnseenTraces(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	specs := []string{
		"rf:mean=1.5mW,peak=10mW,dropout=0.3,duration=240s,rate=50Hz,seed=11",
		"solar:peak=3mW,day=600s,clouds=0.4,rate=10Hz,seed=12,duration=600s",
		"square:high=4mW,low=0.05mW,period_on=3s,period_off=7s,duration=300s,rate=20Hz",
	}
	for _, spec := range specs {
		lat := map[string]float64{}
		var bound float64
		for _, name := range []string{"tile", "inas", "adaptive"} {
			cfg := setup(t, name)
			cfg.OpenTrace = func() (traces.Reader, error) { return traces.Synth(spec) }
			cfg.Loop, cfg.Inferences = true, 6
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatalf("%s on %s: %v", name, spec, err)
			}
			if res.Verified != res.Inferences || res.Inferences != 6 {
				t.Fatalf("%s on %s: %d of %d verified", name, spec, res.Verified, res.Inferences)
			}
			lat[name] = res.Latency.Mean
			if name == "adaptive" {
				bound = res.LowerBoundS
			}
		}
		best := min(lat["tile"], lat["inas"])
		if lat["adaptive"] > 0.7*best || lat["adaptive"] > 1.3*bound {
			t.Errorf("%s: adaptive %.2f s, best baseline %.2f s, bound %.2f s", spec, lat["adaptive"], best, bound)
		}
		t.Logf("%s: adaptive %.2f s = %.2fx the best baseline, %.2fx the bound", spec, lat["adaptive"], lat["adaptive"]/best, lat["adaptive"]/bound)
	}
}

// TestSummarizeTiming: nearest-rank percentiles of the absolute edge
// errors, early and late alike, for the commands and the evidence.
func TestSummarizeTiming(t *testing.T) {
	got := SummarizeTiming([]float64{-0.004, 0.001, 0.002, -0.0005}, []float64{0.003})
	want := EdgeTiming{P50: 0.001, P99: 0.004, Max: 0.004, Edges: 4}
	if got.EdgeTiming != want || got.Evidence == nil || *got.Evidence != (EdgeTiming{P50: 0.003, P99: 0.003, Max: 0.003, Edges: 1}) {
		t.Fatalf("SummarizeTiming = %+v (evidence %+v), want %+v and one evidence edge of 3 ms", got.EdgeTiming, got.Evidence, want)
	}
	if z := SummarizeTiming(nil, nil); z.Edges != 0 || z.Max != 0 || z.Evidence != nil {
		t.Fatalf("no edges: %+v", *z)
	}
}
