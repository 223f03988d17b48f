package power

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMayReachIsSafe: whenever mayReach rules a target out within dt,
// timeTo (the closed form Advance would otherwise evaluate) says the same,
// so the fast path decides exactly as the full one. States, targets and
// steps are random, many of them within a few ULPs of the event time.
func TestMayReachIsSafe(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	skipped := 0
	for i := 0; i < 2_000_000; i++ {
		c := randomConfig(rng, i%4 != 0)
		s := mustNew(t, c)
		s.e = c.Cap.Energy(c.Cap.Vmax) * rng.Float64()
		s.on = rng.IntN(2) == 0
		_ = s.SetHarvest(c.CycleBudget() * rng.Float64() * rng.Float64() * 20)
		_ = s.SetLoad(c.CycleBudget() * rng.Float64() * 30)
		a, _ := s.rate()
		targets := []float64{s.eOn, s.eOff, s.eMax, s.e, math.Nextafter(s.e, 0), math.Nextafter(s.e, math.Inf(1))}
		et := targets[rng.IntN(len(targets))]
		tt := s.timeTo(et, a)
		var dt float64
		switch rng.IntN(3) {
		case 0:
			dt = logUniform(rng, 1e-9, 1e4)
		default:
			// Near the event time, up to a few ULPs or a relative 1e-9 away.
			if math.IsInf(tt, 1) || tt == 0 {
				dt = logUniform(rng, 1e-9, 1e4)
				break
			}
			dt = tt * (1 + (rng.Float64()-0.5)*4e-9)
			for k := rng.IntN(9) - 4; k != 0; {
				if k > 0 {
					dt, k = math.Nextafter(dt, math.Inf(1)), k-1
				} else {
					dt, k = math.Nextafter(dt, 0), k+1
				}
			}
		}
		if !mayReach(et-s.e, a-s.b*s.e, s.b, dt) {
			skipped++
			if !(tt > dt) {
				t.Fatalf("config %+v, E %v, on %v: mayReach rules out E %v within %v s, but timeTo is %v s", c, s.e, s.on, et, dt, tt)
			}
		}
	}
	if skipped < 100_000 {
		t.Fatalf("the fast path was taken only %d times", skipped)
	}
}
