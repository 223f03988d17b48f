package power

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// segment is one piece of a schedule: harvest and load held for dur seconds.
type segment struct{ dur, harvest, load float64 }

// timedEvent is an event and the absolute time it happened.
type timedEvent struct {
	t  float64
	ev Event
}

// refSim integrates the same model with fixed-step classical RK4 (of the
// unclamped dynamics, each step's result clipped at Emax), and finds threshold crossings by bisecting the last step. It
// shares nothing with System but the model's definition.
type refSim struct {
	eta, b, eOn, eOff, eMax float64
	e, t                    float64
	on                      bool
	ph, pl                  float64
	h                       float64
}

func newRef(c Config, h float64) *refSim {
	return &refSim{
		eta:  c.Efficiency,
		b:    2 / (c.Cap.Rleak * c.Cap.C),
		eOn:  c.Cap.C * c.Th.Von * c.Th.Von / 2,
		eOff: c.Cap.C * c.Th.Voff * c.Th.Voff / 2,
		eMax: c.Cap.C * c.Cap.Vmax * c.Cap.Vmax / 2,
		e:    c.Cap.C * c.V0 * c.V0 / 2,
		h:    h,
	}
}

func (r *refSim) f(e float64) float64 {
	p := r.eta * r.ph
	if r.on {
		p -= r.pl
	}
	return p - r.b*e
}

func (r *refSim) step(e, h float64) float64 {
	k1 := r.f(e)
	k2 := r.f(e + h/2*k1)
	k3 := r.f(e + h/2*k2)
	k4 := r.f(e + h*k3)
	e += h / 6 * (k1 + 2*k2 + 2*k3 + k4)
	return math.Min(e, r.eMax)
}

func (r *refSim) crossed(e float64) bool {
	if r.on {
		return e <= r.eOff
	}
	return e >= r.eOn
}

// flip toggles the device at a threshold already reached.
func (r *refSim) flip() Event {
	r.on = !r.on
	if r.on {
		return TurnedOn
	}
	return BrownedOut
}

// run holds harvest and load for dur seconds and returns the events.
func (r *refSim) run(sg segment) []timedEvent {
	r.ph, r.pl = sg.harvest, sg.load
	var evs []timedEvent
	end := r.t + sg.dur
	for {
		if r.crossed(r.e) {
			evs = append(evs, timedEvent{r.t, r.flip()})
			continue
		}
		left := end - r.t
		if left <= 0 {
			break
		}
		h := math.Min(r.h, left)
		en := r.step(r.e, h)
		if !r.crossed(en) {
			r.e, r.t = en, r.t+h
			if h == left {
				r.t = end
			}
			continue
		}
		lo, hi := 0.0, h
		for i := 0; i < 200 && hi-lo > 0; i++ {
			mid := (lo + hi) / 2
			if mid == lo || mid == hi {
				break
			}
			if r.crossed(r.step(r.e, mid)) {
				hi = mid
			} else {
				lo = mid
			}
		}
		r.t += hi
		r.e = r.eOn
		if r.on {
			r.e = r.eOff
		}
		evs = append(evs, timedEvent{r.t, r.flip()})
	}
	return evs
}

// runSystem plays sg on s the way a replay loop would.
func runSystem(s *System, sg segment) []timedEvent {
	if err := s.SetHarvest(sg.harvest); err != nil {
		panic(err)
	}
	if err := s.SetLoad(sg.load); err != nil {
		panic(err)
	}
	var evs []timedEvent
	for left := sg.dur; ; {
		adv, ev := s.Advance(left)
		left -= adv
		if ev != None {
			evs = append(evs, timedEvent{s.Time(), ev})
		}
		if left <= 0 && ev == None {
			break
		}
	}
	return evs
}

func logUniform(rng *rand.Rand, lo, hi float64) float64 {
	return lo * math.Exp(rng.Float64()*math.Log(hi/lo))
}

// randomConfig draws a plausible configuration whose power cycles last from
// milliseconds to seconds; leaky says whether Rleak is finite, with an energy
// time constant R*C/2 of 0.3 to 30 s.
func randomConfig(rng *rand.Rand, leaky bool) Config {
	von := 1.8 + 1.5*rng.Float64()
	c := Config{
		Cap: Capacitor{
			C:     logUniform(rng, 47e-6, 2.2e-3),
			Vmax:  von * (1 + 0.3*rng.Float64()),
			Rleak: math.Inf(1),
		},
		Th:         Thresholds{Von: von, Voff: von * (0.6 + 0.35*rng.Float64())},
		Efficiency: 0.3 + 0.7*rng.Float64(),
	}
	if rng.IntN(4) == 0 {
		c.Cap.Vmax = von
	}
	c.V0 = c.Cap.Vmax * rng.Float64()
	if leaky {
		c.Cap.Rleak = 2 * logUniform(rng, 0.3, 30) / c.Cap.C
	}
	return c
}

// randomSchedule draws n segments with harvests up to a few mW (some zero,
// some large enough to reach the clamp) and loads up to tens of mW.
func randomSchedule(rng *rand.Rand, c Config, n int, maxDur float64) []segment {
	budget := c.CycleBudget()
	sched := make([]segment, n)
	for i := range sched {
		sg := segment{dur: maxDur * rng.Float64()}
		switch rng.IntN(5) {
		case 0:
		case 1:
			sg.harvest = budget / logUniform(rng, 0.005, 0.2) // strong: clamps
		default:
			sg.harvest = budget / logUniform(rng, 0.1, 5)
		}
		if rng.IntN(3) > 0 {
			sg.load = budget / logUniform(rng, 0.01, 2)
		}
		sched[i] = sg
	}
	return sched
}

// Closed forms against a fine RK4 integration: voltages at every schedule
// boundary and every event time agree to 1e-6 relative.
func TestAgainstRK4(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const h = 2e-5
	n := 24
	if testing.Short() {
		n = 6
	}
	for trial := 0; trial < n; trial++ {
		leaky := trial%2 == 1
		c := randomConfig(rng, leaky)
		sched := randomSchedule(rng, c, 40, 0.25)
		t.Run(fmt.Sprintf("%d-leak=%v", trial, leaky), func(t *testing.T) {
			s := mustNew(t, c)
			r := newRef(c, h)
			var got, want []timedEvent
			var maxV, maxT float64
			for i, sg := range sched {
				got = append(got, runSystem(s, sg)...)
				want = append(want, r.run(sg)...)
				d := math.Abs(s.Voltage() - math.Sqrt(2*r.e/c.Cap.C))
				maxV = math.Max(maxV, d/math.Max(s.Voltage(), 1e-3))
				if d > 1e-6*math.Max(s.Voltage(), 1e-3) {
					t.Fatalf("segment %d (%+v): V %.12g, RK4 %.12g", i, sg, s.Voltage(), math.Sqrt(2*r.e/c.Cap.C))
				}
				if s.On() != r.on {
					t.Fatalf("segment %d: on %v, RK4 on %v", i, s.On(), r.on)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d events, RK4 %d\n%v\n%v", len(got), len(want), got, want)
			}
			for i := range got {
				maxT = math.Max(maxT, math.Abs(got[i].t-want[i].t)/math.Max(want[i].t, 1e-3))
				if got[i].ev != want[i].ev || math.Abs(got[i].t-want[i].t) > 1e-6*math.Max(want[i].t, 1e-3) {
					t.Errorf("event %d: %v at %.12g, RK4 %v at %.12g", i, got[i].ev, got[i].t, want[i].ev, want[i].t)
				}
			}
			t.Logf("%d events, max relative difference: voltage %.2g, event time %.2g; clamped %.3g J",
				len(got), maxV, maxT, s.Counters().Clamped)
		})
	}
}

// A single free evolution against RK4 at many times, including from the clamp
// and toward a leakage equilibrium, without events in the way.
func TestFreeEvolutionAgainstRK4(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 40; trial++ {
		c := randomConfig(rng, trial%2 == 0)
		// Voff tiny and Von = Vmax: keep the device on with no events
		// unless the capacitor fully discharges.
		c.Th = Thresholds{Von: c.Cap.Vmax, Voff: 1e-6}
		c.V0 = c.Cap.Vmax
		s := mustNew(t, c)
		if _, ev := s.Advance(0); ev != TurnedOn {
			t.Fatal("no turn-on")
		}
		r := newRef(c, 1e-5)
		r.on = true
		sg := segment{harvest: c.CycleBudget() * rng.Float64() * 5, load: c.CycleBudget() * rng.Float64() * 5}
		for k := 0; k < 20; k++ {
			sg.dur = 0.05 * rng.Float64()
			if ev := runSystem(s, sg); len(ev) != 0 {
				break
			}
			if ev := r.run(sg); len(ev) != 0 {
				t.Fatalf("trial %d: RK4 event %v but none from System", trial, ev)
			}
			if relErr(s.Energy(), r.e) > 1e-9 && math.Abs(s.Energy()-r.e) > 1e-15 {
				t.Fatalf("trial %d step %d: E %.15g, RK4 %.15g", trial, k, s.Energy(), r.e)
			}
		}
	}
}
