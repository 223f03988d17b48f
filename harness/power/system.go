package power

import (
	"errors"
	"fmt"
	"math"
)

// Event is what stopped a call to System.Advance early.
type Event int

const (
	// None: the call advanced the whole requested time without a power event.
	None Event = iota
	// TurnedOn: the capacitor reached Von while the device was off; the
	// device is now on (and draws the load set with SetLoad).
	TurnedOn
	// BrownedOut: the capacitor fell to Voff while the device was on; the
	// device is now off (volatile state lost) until V reaches Von again.
	BrownedOut
)

// String returns "none", "turned-on" or "browned-out".
func (e Event) String() string {
	switch e {
	case None:
		return "none"
	case TurnedOn:
		return "turned-on"
	case BrownedOut:
		return "browned-out"
	}
	return fmt.Sprintf("Event(%d)", int(e))
}

// Counters are cumulative totals since New. Energies are in joules, times in
// seconds. The stored energy's change since New equals Harvested minus
// Delivered, Leaked and Clamped, up to rounding.
type Counters struct {
	// Harvested is the energy delivered into the capacitor by the converter,
	// that is eta times the integral of the harvested power.
	Harvested float64
	// Delivered is the energy drawn by the device while on.
	Delivered float64
	// Leaked is the energy lost in the leakage resistance.
	Leaked float64
	// Clamped is the surplus burnt by the overvoltage protection at Vmax.
	Clamped float64
	// TimeOn and TimeOff are the times spent with the device on and off.
	TimeOn, TimeOff float64
	// TurnOns and BrownOuts count the TurnedOn and BrownedOut events.
	TurnOns, BrownOuts int
}

// System is the state of a power system: time, stored energy, whether the
// device is on, the current harvest and load, and cumulative counters. The
// zero value is not usable; call New. A System is not safe for concurrent use.
type System struct {
	cfg Config
	eta float64
	b   float64 // leakage rate 2/(Rleak*C), 1/s; 0 without leakage

	eOn, eOff, eMax float64

	t float64
	e float64 // stored energy, J
	// v is the voltage, exactly Von/Voff/Vmax after a snap, else
	// sqrt(2e/C); after an integration it is computed when asked (vStale).
	v      float64
	vStale bool
	on     bool

	harvest float64 // W, before the converter
	load    float64 // W, applied only while on

	cnt Counters
}

// New validates c and returns a system at time 0, voltage c.V0, device off,
// no harvest and no load.
func New(c Config) (*System, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cp := c.Cap
	return &System{
		cfg:  c,
		eta:  c.Efficiency,
		b:    cp.leakRate(),
		eOn:  cp.Energy(c.Th.Von),
		eOff: cp.Energy(c.Th.Voff),
		eMax: cp.Energy(cp.Vmax),
		e:    cp.Energy(c.V0),
		v:    c.V0,
	}, nil
}

// Config returns the configuration the system was built with.
func (s *System) Config() Config { return s.cfg }

// Time returns the simulated time in seconds since New.
func (s *System) Time() float64 { return s.t }

// Voltage returns the capacitor voltage. It is exactly Von after a turn-on,
// exactly Voff after a brown-out and exactly Vmax while clamped.
func (s *System) Voltage() float64 {
	if s.vStale {
		s.v, s.vStale = s.cfg.Cap.Voltage(s.e), false
	}
	return s.v
}

// Energy returns the stored energy C*V^2/2 in joules.
func (s *System) Energy() float64 { return s.e }

// On reports whether the device is powered.
func (s *System) On() bool { return s.on }

// Harvest returns the harvested power set by SetHarvest (before efficiency).
func (s *System) Harvest() float64 { return s.harvest }

// Load returns the device draw set by SetLoad (drawn only while on).
func (s *System) Load() float64 { return s.load }

// Counters returns the cumulative counters.
func (s *System) Counters() Counters { return s.cnt }

// Harvested returns Counters().Harvested (without copying the counters).
func (s *System) Harvested() float64 { return s.cnt.Harvested }

var (
	errHarvest = errors.New("power: harvest must be a finite power >= 0 W")
	errLoad    = errors.New("power: load must be a finite power >= 0 W")
)

// SetHarvest sets the harvested power in watts (before the converter's
// efficiency) from now on. A negative, NaN or infinite power is an error and
// leaves the system unchanged.
func (s *System) SetHarvest(pW float64) error {
	if !(pW >= 0) || math.IsInf(pW, 1) {
		return fmt.Errorf("%w, got %g", errHarvest, pW)
	}
	s.harvest = pW
	return nil
}

// SetLoad sets the device's draw in watts from now on. It is remembered while
// the device is off and applies whenever the device is on. A negative, NaN or
// infinite power is an error and leaves the system unchanged.
func (s *System) SetLoad(pW float64) error {
	if !(pW >= 0) || math.IsInf(pW, 1) {
		return fmt.Errorf("%w, got %g", errLoad, pW)
	}
	s.load = pW
	return nil
}

// rate returns a = eta*Ph - Pload for the current on/off state, and the load
// actually drawn.
func (s *System) rate() (a, pl float64) {
	if s.on {
		pl = s.load
	}
	return s.eta*s.harvest - pl, pl
}

// clamped reports whether the capacitor sits at Emax with a surplus (net
// power at Emax positive), so that it stays there.
func (s *System) clamped(a float64) bool {
	return s.e >= s.eMax && a-s.b*s.eMax > 0
}

// Advance moves time forward by at most dt seconds, stopping early at the
// first power event: the device turning on (V reaches Von while off) or
// browning out (V reaches Voff while on). It returns the time actually
// advanced and the event. Reaching the clamp at Vmax is not an event: it is
// integrated piecewise within the call.
//
// Advance returns (dt, None) when no event occurs within dt, and (t, e) with
// 0 <= t <= dt when event e occurs after t seconds, so a caller can run a
// task of duration d with
//
//	for left := d; left > 0; {
//		adv, ev := s.Advance(left)
//		left -= adv
//		if ev == power.BrownedOut { ... }
//	}
//
// A zero advance comes only with an event that flips the on/off state, and
// never twice in a row; for dt > 0, Advance never returns (0, None). A zero
// advance happens only when the state is already past a threshold: a first
// call with V0 >= Von reports TurnedOn immediately. If the computed state at
// the end of dt lies on or past a threshold (rounding), the event is reported
// at dt, never left pending. A negative, NaN or infinite dt counts as 0:
// Advance then only reports a pending event.
func (s *System) Advance(dt float64) (float64, Event) {
	if !(dt > 0) || math.IsInf(dt, 1) {
		dt = 0
	}
	if !s.on && s.e >= s.eOn {
		s.flip(false)
		return 0, TurnedOn
	}
	if s.on && s.e <= s.eOff {
		s.flip(false)
		return 0, BrownedOut
	}
	if dt == 0 {
		return 0, None
	}
	t0 := s.t
	elapsed, rem := 0.0, dt
	for {
		a, pl := s.rate()
		if s.clamped(a) {
			s.integrate(rem)
			break
		}
		target, ev := s.eOn, TurnedOn
		if s.on {
			target, ev = s.eOff, BrownedOut
		}
		// Off, the target Von lies at or below the clamp and is reached
		// first (timeTo is monotone in the target); on, the target Voff
		// is reached only while falling, never clamping. So an event within
		// rem comes before any clamp, and only an on device can clamp
		// within rem.
		d := a - s.b*s.e // net power now
		if mayReach(target-s.e, d, s.b, rem) {
			if tEv := s.timeTo(target, a); tEv <= rem {
				s.integrateFree(tEv, a, pl)
				s.flip(true)
				s.t = t0 + elapsed + tEv
				return elapsed + tEv, ev
			}
		}
		if s.on && s.e < s.eMax && mayReach(s.eMax-s.e, d, s.b, rem) {
			if tClamp := s.timeTo(s.eMax, a); tClamp <= rem {
				s.integrateFree(tClamp, a, pl)
				s.snapE(s.eMax, s.cfg.Cap.Vmax)
				elapsed += tClamp
				rem -= tClamp
				continue
			}
		}
		s.integrateFree(rem, a, pl)
		// The event time said "after dt", but rounding may have put the
		// state on or past the threshold: report it now, at dt.
		if (s.on && s.e <= s.eOff) || (!s.on && s.e >= s.eOn) {
			s.flip(true)
			s.t = t0 + dt
			return dt, ev
		}
		break
	}
	s.t = t0 + dt
	return dt, None
}

// Charge advances a device that is off by dt seconds at the current harvest
// in one step, and reports true, when it stays clearly below the turn-on
// voltage all along (the energy moves monotonically within a step, so the
// end says it); otherwise it changes nothing and reports false: Advance
// then finds the turn-on. The state comes out as Advance would leave it,
// up to rounding (the leakage is what the energy balance leaves).
//
// Most of a replay's steps are the trace's samples while the device is
// off, charging: this is Advance for them, without its general cases.
func (s *System) Charge(dt float64) bool {
	if s.on || !(dt > 0) || math.IsInf(dt, 1) {
		return false
	}
	h := s.eta * s.harvest
	e0 := s.e
	x := s.b * dt
	if x >= 1e-4 {
		return false // (Advance takes the long steps)
	}
	g := dt * phi1(x)
	e := e0 + (h-s.b*e0)*g
	if !(e < s.eOn-compositeMargin*s.eOn) || e < 0 {
		return false
	}
	harvested := h * dt
	s.cnt.Harvested += harvested
	s.cnt.Leaked += harvested - (e - e0)
	s.cnt.TimeOff += dt
	s.e, s.vStale = e, true
	s.t += dt
	return true
}

// Load is a stretch of the device's work at a constant draw.
type Load struct {
	Seconds float64 // how long it runs
	Watts   float64 // what it draws meanwhile
}

// AdvanceLoads runs the device through loads one after the other at the
// current harvest, as SetLoad and Advance would for each in turn (state
// and counters come out bit for bit the same), without running past time
// until, where the harvest changes: it stops before a load that would end
// after until, after a load that ends at or past it, and at the first
// power event. It returns how many loads ran to their end, and the event
// that stopped it with how long the load it cut had run. A load of a
// negative, NaN or infinite draw is an error, as with SetLoad.
//
// A board that knows its next few pieces of work runs them in one call:
// between events, each costs one closed-form step.
func (s *System) AdvanceLoads(loads []Load, until float64) (done int, ran float64, ev Event, err error) {
	for i, ld := range loads {
		if until-s.t < ld.Seconds {
			return i, 0, None, nil
		}
		if !(ld.Watts >= 0) || math.IsInf(ld.Watts, 1) {
			return i, 0, None, fmt.Errorf("%w, got %g", errLoad, ld.Watts)
		}
		s.load = ld.Watts
		adv, ev := s.Advance(ld.Seconds)
		if ev != None {
			return i, adv, ev, nil
		}
		if s.t >= until {
			return i + 1, 0, None, nil
		}
	}
	return len(loads), 0, None, nil
}

// Composite is a sequence of loads folded into one closed-form step: run
// by a powered device at a constant harvest, the stored energy after all of
// them is an affine function of the energy before, E' = A E + G h - L (h is
// the converter's output, eta times the harvest), whatever their number.
// See Compose and AdvanceComposite.
type Composite struct {
	n       int
	seconds float64 // the loads' total duration
	drawn   float64 // the energy they draw, sum of Watts*Seconds
	minW    float64 // the least draw among them
	a, g, l float64 // E' = a E + g h - l
}

// Compose folds loads into a Composite for this system's capacitor (its
// leakage). A load of a negative, NaN or infinite draw or duration is an
// error.
func (s *System) Compose(loads []Load) (Composite, error) {
	c := Composite{n: len(loads), a: 1, minW: math.Inf(1)}
	for _, ld := range loads {
		if !(ld.Watts >= 0) || math.IsInf(ld.Watts, 1) {
			return Composite{}, fmt.Errorf("%w, got %g", errLoad, ld.Watts)
		}
		if !(ld.Seconds >= 0) || math.IsInf(ld.Seconds, 1) {
			return Composite{}, fmt.Errorf("power: a load's duration must be a finite time >= 0 s, got %g", ld.Seconds)
		}
		// After this load: E' = e E + g (h - W), with e = exp(-b t) and
		// g = (1 - e)/b (t without leakage); composed with what came before.
		x := s.b * ld.Seconds
		e, g := 1.0, ld.Seconds
		if s.b > 0 {
			em := math.Expm1(-x)
			e, g = 1+em, ld.Seconds*phi1(x)
		}
		c.a *= e
		c.g = c.g*e + g
		c.l = c.l*e + ld.Watts*g
		c.seconds += ld.Seconds
		c.drawn += ld.Watts * ld.Seconds
		c.minW = min(c.minW, ld.Watts)
	}
	return c, nil
}

// Len is the number of loads folded into c.
func (c *Composite) Len() int { return c.n }

// Seconds is the loads' total duration.
func (c *Composite) Seconds() float64 { return c.seconds }

// AdvanceComposite runs a powered device through all of c's loads in one
// step at the current harvest, and reports true, when that is exact: the
// device is on, the harvest does not exceed any load's draw (so the
// energy only falls, and never reaches the clamp), the energy at the end
// stays above brown-out, and the loads end by time until (where the
// harvest changes). Otherwise it changes nothing and reports false: run
// the loads with AdvanceLoads, which finds the event. The counters come
// out as the loads' own steps give them, up to rounding (the leakage is
// what the energy balance leaves).
func (s *System) AdvanceComposite(c *Composite, until float64) bool {
	h := s.eta * s.harvest
	if !s.on || h > c.minW || until-s.t < c.seconds || c.n == 0 {
		return false
	}
	e := c.a*s.e + c.g*h - c.l
	if !(e > s.eOff+compositeMargin*s.eOff) {
		return false // a brown-out within, or too near to call
	}
	harvested := h * c.seconds
	s.cnt.Harvested += harvested
	s.cnt.Delivered += c.drawn
	s.cnt.Leaked += harvested - c.drawn - (e - s.e)
	s.cnt.TimeOn += c.seconds
	s.e, s.vStale = e, true
	s.t += c.seconds
	return true
}

// compositeMargin is how far above brown-out, relative to it, a composite
// step must end to be taken: far above the rounding in which it differs
// from the loads' own steps.
const compositeMargin = 1e-9

// flip toggles the device; with snap, the state is put exactly onto the
// threshold just reached.
func (s *System) flip(snap bool) {
	if s.on {
		if snap {
			s.snapE(s.eOff, s.cfg.Th.Voff)
		}
		s.on = false
		s.cnt.BrownOuts++
		return
	}
	if snap {
		s.snapE(s.eOn, s.cfg.Th.Von)
	}
	s.on = true
	s.cnt.TurnOns++
}

// snapE puts the state exactly at energy e and voltage v (a threshold or the
// clamp). The difference from the integrated energy is a few ULPs.
func (s *System) snapE(e, v float64) {
	s.e, s.v, s.vStale = e, v, false
}

// integrate evolves the energy and the counters over tau seconds at the
// current harvest and load, in closed form; the caller guarantees that no
// threshold is crossed and the clamp is reached at most at the end (a
// rounding overshoot above Emax is burnt and counted as Clamped). It does not
// update the time.
func (s *System) integrate(tau float64) {
	if !(tau > 0) {
		return
	}
	a, pl := s.rate()
	if s.clamped(a) {
		harvested := s.eta * s.harvest * tau
		delivered := pl * tau
		s.cnt.Harvested += harvested
		s.cnt.Delivered += delivered
		s.addTime(tau)
		leaked := s.b * s.eMax * tau
		s.cnt.Leaked += leaked
		s.cnt.Clamped += harvested - delivered - leaked
		return
	}
	s.integrateFree(tau, a, pl)
}

// addTime counts tau seconds on or off.
func (s *System) addTime(tau float64) {
	if s.on {
		s.cnt.TimeOn += tau
	} else {
		s.cnt.TimeOff += tau
	}
}

// integrateFree is integrate for a state that is not clamped, with the
// rate and load rate gives (Advance has them at hand).
func (s *System) integrateFree(tau, a, pl float64) {
	if !(tau > 0) {
		return
	}
	s.cnt.Harvested += s.eta * s.harvest * tau
	s.cnt.Delivered += pl * tau
	s.addTime(tau)
	b, e0 := s.b, s.e
	d := a - b*e0 // initial net power
	x := b * tau
	var g, ps float64 // (1 - exp(-b tau))/b (tau when b = 0), and psi(x)
	switch {
	case x < 1e-4:
		// phi1 and psi written out (the usual case: steps far shorter
		// than the leakage's time constant).
		g = tau * (1 + x*(-1.0/2+x*(1.0/6+x*(-1.0/24+x*(1.0/120)))))
		ps = 1.0/2 + x*(-1.0/6+x*(1.0/24+x*(-1.0/120+x*(1.0/720))))
	case x > 1:
		g, ps = -math.Expm1(-x)/b, psi(x)
	default:
		g, ps = tau*phi1(x), psi(x)
	}
	// leaked = b * integral of E = b*(e0*tau + d*(tau - g)/b),
	// with (tau - g)/b = tau^2 * psi(b tau).
	leaked := x * (e0 + d*tau*ps)
	s.cnt.Leaked += leaked
	e := e0 + d*g
	if e > s.eMax {
		s.cnt.Clamped += e - s.eMax
		e = s.eMax
	}
	if e < 0 {
		e = 0
	}
	s.e = e
	s.vStale = true // s.v = sqrt(2e/C) when asked
}

// phi1 returns (1 - exp(-x))/x for x >= 0 (1 at x = 0).
func phi1(x float64) float64 {
	if x < 1e-4 {
		// The Taylor series to x^4: the next term, x^5/720, is below
		// 2e-23, far under one ULP of the result.
		return 1 + x*(-1.0/2+x*(1.0/6+x*(-1.0/24+x*(1.0/120))))
	}
	return -math.Expm1(-x) / x
}

// psi returns (exp(-x) - 1 + x)/x^2 for x >= 0 (1/2 at x = 0), by its series
// sum (-x)^k/(k+2)! below 1/2 where the direct form cancels.
func psi(x float64) float64 {
	if x >= 0.5 {
		return (x + math.Expm1(-x)) / (x * x)
	}
	if x < 1e-4 {
		// The series to x^4, as phi1: the next term, x^5/5040, is below
		// 2e-24, far under one ULP of the result (about 1/2).
		return 1.0/2 + x*(-1.0/6+x*(1.0/24+x*(-1.0/120+x*(1.0/720))))
	}
	term, sum := 0.5, 0.5
	for k := 3; k < 40; k++ {
		term *= -x / float64(k)
		sum += term
		if math.Abs(term) <= 1e-18*sum {
			break
		}
	}
	return sum
}

// mayReach is false when the free evolution from the current energy, at
// net power d = a - b e now and leakage rate b, certainly does not move by
// de (to a target energy e + de) within dt: that is when timeTo would return
// more than dt. It spares timeTo's logarithm for the many steps (trace
// samples, short tasks) that end far from any threshold. The energy moves
// toward its equilibrium a/b at a speed that only falls on the way, so
// moving by de takes at least |de| / |d|; when that exceeds dt by a margin
// far above rounding, and r = b de / d <= 1/2 (where timeTo's log1p is well
// conditioned and its result at least |de| / |d| up to a few ULPs), timeTo
// would exceed dt too. So Advance decides exactly as if it had called
// timeTo.
func mayReach(de, d, b, dt float64) bool {
	if de == 0 {
		return true
	}
	if d == 0 || (de > 0) != (d > 0) {
		return false // timeTo is +Inf
	}
	ade, ad := math.Abs(de), math.Abs(d)
	return !(ade > ad*dt*(1+1e-9) && b*ade <= 0.5*ad)
}

// timeTo returns how long, from the current energy with net constant a and the
// leakage rate b, until the free (unclamped) evolution reaches energy et:
// 0 if already there, +Inf if never.
func (s *System) timeTo(et, a float64) float64 {
	de := et - s.e
	if de == 0 {
		return 0
	}
	d := a - s.b*s.e
	if d == 0 || (de > 0) != (d > 0) {
		return math.Inf(1)
	}
	if s.b == 0 {
		return de / d
	}
	// exp(-b t) = (et - a/b)/(e - a/b) = 1 - b*de/d
	r := s.b * de / d
	if r >= 1 {
		return math.Inf(1)
	}
	if r < 1e-4 && r > -1e-4 {
		// -log1p(-r) by its series to r^5: the next term, r^6/6, is
		// below 2e-25 (relative 2e-21), far under one ULP.
		return r * (1 + r*(1.0/2+r*(1.0/3+r*(1.0/4+r*(1.0/5))))) / s.b
	}
	return -math.Log1p(-r) / s.b
}

// TimeUntilEnergy returns how long, at the current harvest and load and
// on/off state, until the stored energy reaches e joules (falling or rising),
// ignoring any on/off transition on the way: 0 if it is there now, +Inf if
// never (e above the clamp, or beyond the equilibrium energy). NaN gives NaN.
// It uses the same closed form as Advance, so Advance(TimeUntilEnergy(E(Voff)))
// on a powered device reports BrownedOut after exactly that time.
func (s *System) TimeUntilEnergy(e float64) float64 {
	if math.IsNaN(e) {
		return math.NaN()
	}
	if e < 0 || e > s.eMax {
		return math.Inf(1)
	}
	a, _ := s.rate()
	return s.timeTo(e, a)
}

// TimeUntilVoltage returns how long, at the current harvest and load and
// on/off state, until the capacitor voltage reaches v, ignoring any on/off
// transition on the way; +Inf if never; see TimeUntilEnergy. A board asks
// TimeUntilVoltage(Voff) whether a task will finish before brown-out: on a
// powered device at constant harvest and load, a task of duration d finishes
// if TimeUntilVoltage(Voff) > d, and Advance(d) then reports no brown-out
// (up to a few ULPs of d: a state rounded onto Voff at d browns out at d).
func (s *System) TimeUntilVoltage(v float64) float64 {
	if math.IsNaN(v) {
		return math.NaN()
	}
	if v < 0 {
		return math.Inf(1)
	}
	return s.TimeUntilEnergy(s.cfg.Cap.Energy(v))
}
