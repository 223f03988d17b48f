package replay

import (
	"bytes"
	"testing"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/sim"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/model"
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

func setup(t *testing.T, scheduler string) Config {
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
