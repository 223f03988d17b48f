package replay

import (
	"context"
	"testing"
	"time"

	"github.com/batteryless/harness/boards/sim"
)

// BenchmarkSimulateKWSReactMobile times the simulation side of a replay
// alone (the board, the power model and the trace's parser, which has a
// goroutine of its own; the reference and its seeds computed beforehand),
// over the plain reference executor's time for the same inference: what
// the replay costs beyond computing the numbers, whether or not a second
// processor is there to overlap the two.
func BenchmarkSimulateKWSReactMobile(b *testing.B) {
	cfg := kwsReactConfig(b, "rf-mobile.trace")
	m, input := cfg.Model, cfg.Input
	var simS, refS float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ref, err := newReference(m, input, nil, true)
		if err != nil {
			b.Fatal(err)
		}
		ref.compute()
		refS += referenceWall(m, input, 1)
		b.StartTimer()
		start := time.Now()
		board, err := sim.New(cfg.Model, cfg.Plan, cfg.Profile, sim.Faults{})
		if err != nil {
			b.Fatal(err)
		}
		board.SetSeeds(ref.seeds)
		en, err := newEngine(context.Background(), &cfg, board.AsBoard(), "sim", ref)
		if err == nil {
			err = en.replay()
		}
		simS += time.Since(start).Seconds()
		if err != nil {
			b.Fatal(err)
		}
		if en.res.Verified != 1 {
			b.Fatalf("%d verified, want 1", en.res.Verified)
		}
	}
	b.ReportMetric(simS/refS, "simulation/reference")
}
