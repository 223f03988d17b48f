package replay

import (
	"bytes"
	"testing"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/sim"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/power"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/reports"
	"github.com/batteryless/harness/traces"
)

func powerOf(p *boards.Profile) power.Config {
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
	prof, err := boards.LoadProfile("msp430fr5994")
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
	res, err := Run(cfg)
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
		if _, err := Run(cfg); err != nil {
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
	res, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Inferences == 0 || res.Mismatches == 0 {
		t.Fatalf("progress written before the outputs went unnoticed: %d inferences, %d mismatches", res.Inferences, res.Mismatches)
	}
}

func injectCfg(t testing.TB, scheduler string) InjectConfig {
	cfg := setup(t, scheduler)
	return InjectConfig{Model: cfg.Model, Plan: cfg.Plan, Profile: cfg.Profile, Input: cfg.Input, Boundaries: true, Random: 200, Seed: 1}
}

func TestInjectEverySchedulerVerifies(t *testing.T) {
	for _, name := range sched.Names() {
		res, err := Inject(injectCfg(t, name))
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
	res, err := Inject(cfg)
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
	if res, err := Inject(clean); err != nil || !res.Verified {
		t.Fatalf("the in-place plan is wrong even without brown-outs: %v %+v", err, res)
	}
	// Brown-outs in the middle of the last layer's writes.
	cfg.Boundaries, cfg.Random, cfg.Seed = false, 0, 3
	caught := false
	for seed := uint64(0); seed < 20 && !caught; seed++ {
		cfg.Random, cfg.Seed = 400, seed
		res, err := Inject(cfg)
		if err != nil {
			t.Fatal(err)
		}
		caught = !res.Verified
	}
	if !caught {
		t.Fatal("an in-place update read back after a brown-out went unnoticed")
	}
}
