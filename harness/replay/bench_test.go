package replay

import "testing"

// BenchmarkReplayBundled replays the bundled RF trace with the bundled model
// on the simulated MSP430 and reports simulated seconds per wall second and
// the replay's wall time over the plain reference executor's.
func BenchmarkReplayBundled(b *testing.B) {
	cfg := setup(b, "tile")
	var sim, wall, ref float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := Run(cfg)
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
