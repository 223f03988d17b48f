package replay

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/traces"
)

// BenchmarkReplayBundled replays the bundled RF trace with the bundled model
// on the simulated MSP430 and reports simulated seconds per wall second and
// the replay's wall time over the plain reference executor's.
func BenchmarkReplayBundled(b *testing.B) {
	cfg := setup(b, "tile")
	var sim, wall, ref float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := Run(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		sim += res.SimTime
		wall += res.WallS
		ref += res.ReferenceWallS
	}
	b.ReportMetric(sim/b.Elapsed().Seconds(), "sim-s/s")
	if ref > 0 {
		b.ReportMetric(wall/ref, "wall/reference")
	}
}

// BenchmarkReplayKWSReact replays the REACT rf-cart trace with the MLPerf
// Tiny keyword-spotting model on the simulated MSP430 (tile scheduler) and
// reports the replay's wall time over the reference executor's for the same
// inferences (the target is at most 1.25).
func BenchmarkReplayKWSReact(b *testing.B) {
	benchKWSReact(b, "rf-cart.trace")
}

// benchKWSReact replays one pass of a REACT trace with the keyword-spotting
// model and reports wall/reference.
func benchKWSReact(b *testing.B, traceFile string) {
	cfg := kwsReactConfig(b, traceFile)
	var wall, ref float64
	ratios := make([]float64, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := Run(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		if res.Inferences == 0 || res.Mismatches != 0 {
			b.Fatalf("%d inferences, %d mismatches", res.Inferences, res.Mismatches)
		}
		wall += res.WallS
		ref += res.ReferenceWallS
		ratios = append(ratios, res.WallS/res.ReferenceWallS)
	}
	b.ReportMetric(wall/ref, "wall/reference")
	// The median replay too: a busy machine's slow moments weigh on the
	// sums, not on it.
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "p50-wall/reference")
}

// BenchmarkReplayKWSReactMobile replays one pass of the REACT rf-mobile
// trace with the keyword-spotting model on the simulated MSP430 (tile
// scheduler): a weak trace, over which one inference spans most of the
// file's samples and some ten thousand board segments. It reports the
// replay's wall time over the reference executor's for the same inferences
// (the target is at most 1.25).
func BenchmarkReplayKWSReactMobile(b *testing.B) {
	benchKWSReact(b, "rf-mobile.trace")
}

// kwsReactConfig is a replay of one pass of a shared REACT trace with the
// keyword-spotting model on the simulated MSP430 (tile scheduler); it
// skips without ../shared/data.
func kwsReactConfig(b *testing.B, traceFile string) Config {
	m, err := model.Load(filepath.Join(sharedData, "models", "kws_dscnn_int8.tflite"))
	if err != nil {
		b.Skip("../shared/data absent")
	}
	input, err := os.ReadFile(filepath.Join(sharedData, "inputs", "kws_ref_input0_int8.bin"))
	if err != nil {
		b.Fatal(err)
	}
	prof, err := profiles.Load("msp430fr5994")
	if err != nil {
		b.Fatal(err)
	}
	s, _ := sched.Get("tile")
	p, err := s.Schedule(m, prof, sched.Options{})
	if err != nil {
		b.Fatal(err)
	}
	trace := filepath.Join(sharedData, "traces", "react", traceFile)
	return Config{Model: m, Plan: p, Profile: prof, Power: powerOf(prof), Input: input,
		OpenTrace: func() (traces.Reader, error) { return traces.Open(trace, traces.Options{}) }}
}
