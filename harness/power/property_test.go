package power

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// checkBalance fails unless the stored energy's change since e0 equals
// harvested - delivered - leaked - clamped within tol relative to the largest
// energy involved.
func checkBalance(t *testing.T, where string, s *System, e0 float64, tol float64) float64 {
	t.Helper()
	c := s.Counters()
	lhs := s.Energy() - e0
	rhs := c.Harvested - c.Delivered - c.Leaked - c.Clamped
	scale := math.Max(math.Max(c.Harvested, c.Delivered), math.Max(math.Max(c.Leaked, c.Clamped), math.Max(e0, s.Energy())))
	rel := math.Abs(lhs-rhs) / scale
	if rel > tol {
		t.Fatalf("%s: stored change %.17g, flows %.17g (relative %.3g > %.3g); %+v", where, lhs, rhs, rel, tol, c)
	}
	return rel
}

// Energy balance over long random schedules: stored(t) - stored(0) ==
// harvested - delivered - leaked - clamped to 1e-9 relative overall, and to
// 1e-12 relative for every single call.
func TestEnergyBalance(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := 0; trial < 16; trial++ {
		c := randomConfig(rng, trial%2 == 1)
		sched := randomSchedule(rng, c, 20000, 0.3)
		t.Run(fmt.Sprintf("%d", trial), func(t *testing.T) {
			s := mustNew(t, c)
			e0 := s.Energy()
			var worst float64
			for i, sg := range sched {
				_ = s.SetHarvest(sg.harvest)
				_ = s.SetLoad(sg.load)
				for left := sg.dur; left > 0; {
					// One call on a copy with zeroed counters: its own
					// flows, free of the cumulative sums' rounding.
					one := *s
					one.cnt = Counters{}
					advOne, _ := one.Advance(left)
					f := one.cnt
					in, out := f.Harvested, f.Delivered+f.Leaked+f.Clamped
					if d := math.Abs((one.Energy() - s.Energy()) - (in - out)); d > 1e-12*math.Max(math.Max(in, out), math.Max(one.Energy(), s.Energy())) {
						t.Fatalf("segment %d: one call stored %.17g, flows %.17g", i, one.Energy()-s.Energy(), in-out)
					}
					adv, _ := s.Advance(left)
					left -= adv
					if adv != advOne || s.Energy() != one.Energy() {
						t.Fatalf("segment %d: a copy advanced differently", i)
					}
				}
				if i%1000 == 999 {
					worst = math.Max(worst, checkBalance(t, fmt.Sprintf("segment %d", i), s, e0, 1e-9))
				}
			}
			cnt := s.Counters()
			worst = math.Max(worst, checkBalance(t, "end", s, e0, 1e-9))
			if cnt.BrownOuts < 10 || cnt.Clamped == 0 {
				t.Errorf("schedule too tame: %+v", cnt)
			}
			if relErr(cnt.TimeOn+cnt.TimeOff, s.Time()) > 1e-12 {
				t.Errorf("TimeOn+TimeOff %v, Time %v", cnt.TimeOn+cnt.TimeOff, s.Time())
			}
			t.Logf("%.0f s simulated, %d brown-outs, worst relative imbalance %.2g", s.Time(), cnt.BrownOuts, worst)
		})
	}
}

// step is one call's result, for bit-for-bit comparisons.
type step struct {
	adv, e, v, t float64
	ev           Event
}

// nastyDt draws a dt for the property run: usually ordinary, sometimes tiny,
// huge, or within a few ULPs of the next event time.
func nastyDt(rng *rand.Rand, s *System) float64 {
	switch rng.IntN(8) {
	case 0:
		return logUniform(rng, 1e-300, 1e-9)
	case 1:
		return logUniform(rng, 1, 1e4)
	case 2, 3:
		th := s.Config().Th.Von
		if s.On() {
			th = s.Config().Th.Voff
		}
		te := s.TimeUntilVoltage(th)
		if math.IsInf(te, 1) || te == 0 {
			return 1e-3
		}
		for k := rng.IntN(9) - 4; k != 0; {
			if k > 0 {
				te = math.Nextafter(te, math.Inf(1))
				k--
			} else {
				te = math.Nextafter(te, 0)
				k++
			}
		}
		if te <= 0 {
			te = math.SmallestNonzeroFloat64
		}
		return te
	}
	return logUniform(rng, 1e-5, 0.1)
}

// propertyRun drives a random system with nasty inputs for n calls, checking
// the invariants of Advance, and returns every call's result.
func propertyRun(t *testing.T, seed uint64, n int) []step {
	rng := rand.New(rand.NewPCG(seed, 99))
	c := randomConfig(rng, seed%2 == 0)
	s := mustNew(t, c)
	steps := make([]step, 0, n)
	zeroBefore := false
	for i := 0; i < n; i++ {
		if rng.IntN(4) == 0 {
			budget := c.CycleBudget()
			_ = s.SetHarvest(budget * rng.Float64() * rng.Float64() * 20)
			_ = s.SetLoad(budget * rng.Float64() * 30)
		}
		dt := nastyDt(rng, s)
		t0, wasOn := s.Time(), s.On()
		adv, ev := s.Advance(dt)
		steps = append(steps, step{adv, s.Energy(), s.Voltage(), s.Time(), ev})
		switch {
		case adv == 0 && ev == None:
			t.Fatalf("seed %d call %d: Advance(%g) = (0, none)", seed, i, dt)
		case !(adv >= 0 && adv <= dt):
			t.Fatalf("seed %d call %d: Advance(%g) advanced %g", seed, i, dt, adv)
		case ev == None && adv != dt:
			t.Fatalf("seed %d call %d: Advance(%g) = (%g, none), want the whole dt", seed, i, dt, adv)
		case adv == 0 && zeroBefore:
			t.Fatalf("seed %d call %d: two zero-progress events in a row", seed, i)
		case ev != None && s.On() == wasOn:
			t.Fatalf("seed %d call %d: %v without a state change", seed, i, ev)
		case ev == None && s.On() != wasOn:
			t.Fatalf("seed %d call %d: state changed without an event", seed, i)
		case s.Time() != t0+adv:
			t.Fatalf("seed %d call %d: time %v, want %v+%v", seed, i, s.Time(), t0, adv)
		case s.On() && !(s.Energy() > s.eOff):
			t.Fatalf("seed %d call %d: on at E %g <= E(Voff)", seed, i, s.Energy())
		case !s.On() && !(s.Energy() < s.eOn) && i > 0:
			t.Fatalf("seed %d call %d: off at E %g >= E(Von)", seed, i, s.Energy())
		case !(s.Voltage() >= 0 && s.Voltage() <= c.Cap.Vmax) || !(s.Energy() >= 0 && s.Energy() <= s.eMax):
			t.Fatalf("seed %d call %d: V %v E %v out of range", seed, i, s.Voltage(), s.Energy())
		}
		if ev == TurnedOn && adv > 0 && (s.Voltage() != c.Th.Von || s.Energy() != s.eOn) {
			t.Fatalf("seed %d call %d: turned on at V %v, not exactly Von %v", seed, i, s.Voltage(), c.Th.Von)
		}
		if ev == BrownedOut && (s.Voltage() != c.Th.Voff || s.Energy() != s.eOff) {
			t.Fatalf("seed %d call %d: browned out at V %v, not exactly Voff %v", seed, i, s.Voltage(), c.Th.Voff)
		}
		zeroBefore = adv == 0
	}
	return steps
}

// Advance never returns (0, None), never two zero-progress events in a row,
// keeps the state within its thresholds, and is deterministic bit for bit.
func TestAdvanceProperties(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for seed := uint64(1); seed <= 12; seed++ {
		a := propertyRun(t, seed, n)
		b := propertyRun(t, seed, n)
		for i := range a {
			if math.Float64bits(a[i].adv) != math.Float64bits(b[i].adv) || math.Float64bits(a[i].e) != math.Float64bits(b[i].e) ||
				math.Float64bits(a[i].v) != math.Float64bits(b[i].v) || math.Float64bits(a[i].t) != math.Float64bits(b[i].t) || a[i].ev != b[i].ev {
				t.Fatalf("seed %d call %d differs between two runs: %+v vs %+v", seed, i, a[i], b[i])
			}
		}
	}
}

// board is a minimal simulated board for the replay loop: a harvest sample
// every 20 ms from a deterministic RF-like trace, tasks alternating compute
// and commit powers, a task restarting from scratch after a brown-out.
type board struct {
	s        *System
	rng      *rand.Rand
	sample   float64 // seconds left in the current harvest sample
	task     int
	taskLeft float64
	calls    int
	done     int
}

const samplePeriod = 20e-3

var tasks = []struct{ dur, power float64 }{
	{4e-3, 6e-3},     // compute: 24 uJ
	{1.5e-3, 3.5e-3}, // commit
	{7e-3, 5e-3},     // compute: 35 uJ
	{0.5e-3, 2e-3},   // progress marker
}

func newBoard(t testing.TB, seed uint64) *board {
	c := Config{
		Cap:        Capacitor{C: 100e-6, Vmax: 3.6, Rleak: 2e6},
		Th:         Thresholds{Von: 2.8, Voff: 2.4},
		Efficiency: 0.7,
	}
	return &board{s: mustNew(t, c), rng: rand.New(rand.NewPCG(seed, 7)), taskLeft: tasks[0].dur}
}

// nextSample draws an RF-like harvested power: 0.2 to 2 mW, with 10 mW peaks
// and dropouts.
func (bd *board) nextSample() {
	p := 0.2e-3 + 1.8e-3*bd.rng.Float64()
	switch bd.rng.IntN(20) {
	case 0:
		p = 10e-3
	case 1, 2:
		p = 0
	}
	_ = bd.s.SetHarvest(p)
	bd.sample = samplePeriod
}

// call makes one Advance call of the replay loop.
func (bd *board) call() Event {
	if bd.sample <= 0 {
		bd.nextSample()
	}
	dt := bd.sample
	if bd.s.On() {
		_ = bd.s.SetLoad(tasks[bd.task].power)
		dt = math.Min(dt, bd.taskLeft)
	}
	adv, ev := bd.s.Advance(dt)
	bd.calls++
	bd.sample -= adv
	switch {
	case ev == BrownedOut:
		bd.taskLeft = tasks[bd.task].dur // re-execute the task from scratch
	case ev == None && bd.s.On():
		bd.taskLeft -= adv
		if bd.taskLeft <= 0 {
			bd.done++
			bd.task = (bd.task + 1) % len(tasks)
			bd.taskLeft = tasks[bd.task].dur
		}
	}
	return ev
}

// A long replay run terminates (every call ends a sample, a task or a power
// cycle) and is deterministic bit for bit.
func TestReplayLoopTerminates(t *testing.T) {
	run := func() (*board, []step) {
		bd := newBoard(t, 42)
		var steps []step
		for bd.s.Time() < 600 {
			ev := bd.call()
			steps = append(steps, step{0, bd.s.Energy(), bd.s.Voltage(), bd.s.Time(), ev})
			if bd.calls > 10_000_000 {
				t.Fatalf("no end in sight at t=%v", bd.s.Time())
			}
		}
		return bd, steps
	}
	a, sa := run()
	b, sb := run()
	if a.s.Counters() != b.s.Counters() || len(sa) != len(sb) {
		t.Fatalf("two runs differ: %+v vs %+v", a.s.Counters(), b.s.Counters())
	}
	for i := range sa {
		if sa[i] != sb[i] {
			t.Fatalf("call %d differs: %+v vs %+v", i, sa[i], sb[i])
		}
	}
	c := a.s.Counters()
	// Calls are bounded by what ends them: samples, finished tasks, events.
	bound := int(600/samplePeriod) + a.done + c.TurnOns + c.BrownOuts + 2
	if a.calls > bound {
		t.Errorf("%d calls, more than %d samples+tasks+events", a.calls, bound)
	}
	if c.BrownOuts < 100 || a.done < 1000 {
		t.Errorf("unrealistic run: %d tasks done, %+v", a.done, c)
	}
	t.Logf("600 s: %d calls, %d tasks, %d turn-ons, %d brown-outs, on %.1f%%", a.calls, a.done, c.TurnOns, c.BrownOuts, 100*c.TimeOn/a.s.Time())
}

// BenchmarkAdvance runs the replay loop of a simulated board (harvest changing
// every 20 ms, load toggling per task, brown-outs in the middle of tasks); one
// op is one Advance call, and every call ends at an event of the loop: a
// sample change, a task end, a turn-on or a brown-out.
func BenchmarkAdvance(b *testing.B) {
	bd := newBoard(b, 1)
	b.ResetTimer()
	for range b.N {
		bd.call()
	}
	b.StopTimer()
	c := bd.s.Counters()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(bd.s.Time()/b.Elapsed().Seconds(), "simsec/s")
	b.ReportMetric(float64(c.BrownOuts)/bd.s.Time(), "brownouts/simsec")
}
