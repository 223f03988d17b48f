package power

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randomLoads are a task's worth of loads: up to four pieces of work of
// random length and draw, some of them free.
func randomLoads(rng *rand.Rand, c Config) []Load {
	loads := make([]Load, 1+rng.IntN(4))
	for i := range loads {
		loads[i] = Load{Seconds: logUniform(rng, 1e-6, 0.2), Watts: c.CycleBudget() * logUniform(rng, 0.01, 100)}
		if rng.IntN(8) == 0 {
			loads[i].Seconds = 0
		}
	}
	return loads
}

// poweredSystem is a system of config c that is on, at a random energy
// between brown-out and the clamp, under a random harvest.
func poweredSystem(t *testing.T, rng *rand.Rand, c Config) *System {
	s := mustNew(t, c)
	s.on = true
	s.e = s.eOff + (s.eMax-s.eOff)*rng.Float64()
	s.vStale = true
	s.t = 100 * rng.Float64()
	_ = s.SetHarvest(c.CycleBudget() * logUniform(rng, 1e-4, 1e3))
	return s
}

// TestAdvanceLoadsIsAdvance: AdvanceLoads leaves the state and every
// counter bit for bit as SetLoad and Advance, load after load, stopping
// at the same event, at the same place, with the same time run.
func TestAdvanceLoadsIsAdvance(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	events := 0
	for trial := 0; trial < 200_000; trial++ {
		c := randomConfig(rng, trial%3 != 0)
		a := poweredSystem(t, rng, c)
		b := *a
		loads := randomLoads(rng, c)
		until := a.t + logUniform(rng, 1e-6, 1)
		done, ran, ev, err := a.AdvanceLoads(loads, until)
		if err != nil {
			t.Fatal(err)
		}
		// The same, one load at a time.
		wantDone, wantRan, wantEv := len(loads), 0.0, None
		for i, ld := range loads {
			if until-b.t < ld.Seconds {
				wantDone = i
				break
			}
			_ = b.SetLoad(ld.Watts)
			adv, e := b.Advance(ld.Seconds)
			if e != None {
				wantDone, wantRan, wantEv = i, adv, e
				break
			}
			if b.t >= until {
				wantDone = i + 1
				break
			}
		}
		if done != wantDone || ran != wantRan || ev != wantEv || *a != b {
			t.Fatalf("trial %d: AdvanceLoads gives %d %v %v, state %+v; Advance gives %d %v %v, state %+v", trial, done, ran, ev, *a, wantDone, wantRan, wantEv, b)
		}
		if ev != None {
			events++
		}
	}
	if events < 2_000 {
		t.Fatalf("only %d runs met an event", events)
	}
}

// TestCompositeIsItsLoads: when AdvanceComposite takes a composite, the
// state and counters match those of the loads' own steps to within
// rounding, and it takes it exactly when the loads run to their end
// without an event, the harvest not above any draw and by time until;
// otherwise it changes nothing.
func TestCompositeIsItsLoads(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	taken, refused := 0, 0
	for trial := 0; trial < 200_000; trial++ {
		c := randomConfig(rng, trial%3 != 0)
		a := poweredSystem(t, rng, c)
		if trial%2 == 0 {
			// Mostly harvests below the draws, as on a running board.
			_ = a.SetHarvest(c.CycleBudget() * logUniform(rng, 1e-4, 1e-2))
		}
		b := *a
		loads := randomLoads(rng, c)
		until := a.t + logUniform(rng, 1e-6, 1)
		comp, err := a.Compose(loads)
		if err != nil {
			t.Fatal(err)
		}
		before := *a
		ok := a.AdvanceComposite(&comp, until)
		done, _, ev, _ := b.AdvanceLoads(loads, until)
		minW := math.Inf(1)
		for _, ld := range loads {
			minW = min(minW, ld.Watts)
		}
		if !ok {
			refused++
			if *a != before {
				t.Fatalf("trial %d: a refused composite changed the state", trial)
			}
			// Refused only for a reason.
			fits := comp.Seconds() <= until-before.t
			if done == len(loads) && ev == None && fits && before.eta*before.harvest <= minW && b.e > b.eOff*(1+1e-6) {
				t.Fatalf("trial %d: composite refused, but the loads run through (E %v -> %v, Eoff %v)", trial, before.e, b.e, b.eOff)
			}
			continue
		}
		taken++
		if done != len(loads) || ev != None {
			t.Fatalf("trial %d: composite taken, but the loads stop after %d at %v", trial, done, ev)
		}
		near := func(x, y, scale float64) bool { return math.Abs(x-y) <= 1e-9*scale }
		scale := b.eMax + b.cnt.Harvested + b.cnt.Delivered
		if !near(a.e, b.e, b.eMax) || !near(a.t, b.t, b.t) || !near(a.cnt.Harvested, b.cnt.Harvested, scale) ||
			!near(a.cnt.Delivered, b.cnt.Delivered, scale) || !near(a.cnt.Leaked, b.cnt.Leaked, scale) ||
			!near(a.cnt.TimeOn, b.cnt.TimeOn, b.cnt.TimeOn+b.t) || a.cnt.Clamped != b.cnt.Clamped || a.on != b.on {
			t.Fatalf("trial %d: composite gives %+v, the loads %+v", trial, *a, b)
		}
	}
	if taken < 20_000 || refused < 20_000 {
		t.Fatalf("composites taken %d times, refused %d: not a test of both", taken, refused)
	}
}

// TestComposeRejectsBadLoads: a draw or a duration that is negative, NaN
// or infinite is an error (for AdvanceLoads, a draw: a bad duration is an
// Advance of nothing, as for Advance).
func TestComposeRejectsBadLoads(t *testing.T) {
	s := mustNew(t, Config{Cap: Capacitor{C: 100e-6, Vmax: 3.6, Rleak: 1e6}, Th: Thresholds{Von: 2.8, Voff: 2.4}, Efficiency: 0.8})
	for _, ld := range []Load{{1e-3, -1}, {1e-3, math.NaN()}, {1e-3, math.Inf(1)}, {-1, 1e-3}, {math.NaN(), 1e-3}, {math.Inf(1), 1e-3}} {
		if _, err := s.Compose([]Load{{1e-3, 1e-3}, ld}); err == nil {
			t.Errorf("%+v: no error", ld)
		}
		if _, _, _, err := s.AdvanceLoads([]Load{ld}, math.Inf(1)); err == nil && !(ld.Watts >= 0 && !math.IsInf(ld.Watts, 1)) {
			t.Errorf("%+v: AdvanceLoads takes the draw", ld)
		}
	}
}

// BenchmarkTaskSteps compares a four-load task run load by load with the
// same task as one composite step (the replay's fast path).
func BenchmarkTaskSteps(b *testing.B) {
	c := Config{Cap: Capacitor{C: 100e-6, Vmax: 3.6, Rleak: 1e7}, Th: Thresholds{Von: 2.8, Voff: 2.4}, Efficiency: 0.8}
	loads := []Load{{2e-4, 3e-3}, {8e-4, 2e-3}, {1e-4, 4e-3}, {2e-5, 4e-3}}
	run := func(b *testing.B, step func(s *System) bool) {
		s, _ := New(c)
		_ = s.SetHarvest(2e-4)
		s.on, s.e = true, s.eMax
		for b.Loop() {
			if !step(s) {
				s.on, s.e = true, s.eMax
			}
		}
	}
	b.Run("loads", func(b *testing.B) {
		run(b, func(s *System) bool {
			_, _, ev, _ := s.AdvanceLoads(loads, math.Inf(1))
			return ev == None
		})
	})
	b.Run("composite", func(b *testing.B) {
		s, _ := New(c)
		comp, _ := s.Compose(loads)
		run(b, func(s *System) bool { return s.AdvanceComposite(&comp, math.Inf(1)) })
	})
}

// TestChargeIsAdvance: when Charge takes a step of an off device, the
// state and counters match Advance's to within rounding; it declines
// exactly where Advance turns the device on within the step (and for long
// or near-threshold steps, which Advance then takes), changing nothing.
func TestChargeIsAdvance(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	taken, turnOns := 0, 0
	for trial := 0; trial < 300_000; trial++ {
		c := randomConfig(rng, trial%3 != 0)
		a := mustNew(t, c)
		a.on = false
		a.e = a.eOn * rng.Float64()
		a.vStale = true
		a.t = 100 * rng.Float64()
		_ = a.SetHarvest(c.CycleBudget() * logUniform(rng, 1e-5, 1e2))
		b := *a
		dt := logUniform(rng, 1e-6, 10)
		before := *a
		ok := a.Charge(dt)
		adv, ev := b.Advance(dt)
		if ev == TurnedOn {
			turnOns++
		}
		if !ok {
			if *a != before {
				t.Fatalf("trial %d: a declined step changed the state", trial)
			}
			continue
		}
		taken++
		if ev != None || adv != dt {
			t.Fatalf("trial %d: Charge stepped, Advance turned on after %v of %v s", trial, adv, dt)
		}
		scale := b.eOn + b.cnt.Harvested
		near := func(x, y, s float64) bool { return math.Abs(x-y) <= 1e-12*s }
		if !near(a.e, b.e, b.eOn) || a.t != b.t || a.on || !near(a.cnt.Harvested, b.cnt.Harvested, scale) ||
			!near(a.cnt.Leaked, b.cnt.Leaked, scale) || a.cnt.TimeOff != b.cnt.TimeOff || a.cnt.Delivered != b.cnt.Delivered {
			t.Fatalf("trial %d: Charge gives %+v, Advance %+v", trial, *a, b)
		}
	}
	if taken < 50_000 || turnOns < 10_000 {
		t.Fatalf("%d steps taken, %d turn-ons: not a test of both", taken, turnOns)
	}
}
