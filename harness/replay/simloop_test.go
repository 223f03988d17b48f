package replay

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/traces"
)

// BenchmarkSimulateKWSReactMobile times the simulation side of a replay
// alone (the board, the power model and the trace's parser; the
// reference and its seeds computed beforehand), over the plain reference
// executor's time for the same inference: what the replay costs beyond
// computing the numbers, on one processor.
func BenchmarkSimulateKWSReactMobile(b *testing.B) {
	m, err := model.Load(filepath.Join(sharedData, "models", "kws_dscnn_int8.tflite"))
	if err != nil {
		b.Skip("../shared/data absent")
	}
	input, _ := os.ReadFile(filepath.Join(sharedData, "inputs", "kws_ref_input0_int8.bin"))
	prof, _ := boards.LoadProfile("msp430fr5994")
	s, _ := sched.Get("tile")
	p, err := s.Schedule(m, prof, sched.Options{})
	if err != nil {
		b.Fatal(err)
	}
	trace := filepath.Join(sharedData, "traces", "react", "rf-mobile.trace")
	cfg := Config{Model: m, Plan: p, Profile: prof, Power: powerOf(prof), Input: input,
		OpenTrace: func() (traces.Reader, error) { return traces.Open(trace, traces.Options{}) }}
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
		st, err := simulate(&cfg, ref, DefaultLivelockCycles)
		simS += time.Since(start).Seconds()
		if err != nil || st.res.Verified != 1 {
			b.Fatalf("%v, %d verified", err, st.res.Verified)
		}
	}
	b.ReportMetric(simS/refS, "simulation/reference")
}
