// Package power models the power system of a battery-less device: a harvester
// whose power comes from a trace, an input converter of fixed efficiency, a
// storage capacitor (capacitance, overvoltage clamp, leakage resistance) and
// the device, which turns on when the capacitor reaches Von, browns out when it
// falls to Voff, and keeps harvesting while on.
//
// # Physics
//
// The stored energy is E = C*V^2/2. Between events the harvested power Ph and
// the device's draw Pload are constant, and the net power into the capacitor is
//
//	dE/dt = eta*Ph - Pload - V^2/Rleak = a - b*E,  a = eta*Ph - Pload, b = 2/(Rleak*C),
//
// with Pload = 0 while the device is off. On such an interval
//
//	E(t) = E0 + (a - b*E0) * (1 - exp(-b*t))/b     (E0 + a*t when b = 0),
//
// and the time to reach a given energy is closed form too (a logarithm, or a
// division without leakage). System integrates exactly between events, never
// with fixed time steps: a call to Advance covers at most two closed-form
// pieces (free evolution, then the clamp).
//
// The overvoltage protection burns whatever would lift E above
// Emax = C*Vmax^2/2: once E reaches Emax with net power still positive, E stays
// at Emax and the surplus a - b*Emax is counted as Clamped, until the harvest or
// the load changes so that the net power at Emax is no longer positive.
//
// Every energy flow is integrated in closed form as well (the leaked energy is
// b times the integral of E(t)), so that over any run
//
//	Energy(now) - Energy(0) = Harvested - Delivered - Leaked - Clamped
//
// holds to rounding: the tests find 1e-14 relative over an hour of random
// harvest and load (threshold snaps move E by a few ULPs, which no counter
// books).
//
// # Conventions
//
//   - SI units in float64: seconds, joules, watts, volts, farads, ohms.
//   - Rleak = +Inf (math.Inf(1)) means no leakage. Zero, negative or NaN
//     leakage resistances are rejected by Validate: a short circuit is not
//     a capacitor.
//   - Harvested power is counted after the converter (eta*Ph).
//   - The device starts off. If V0 >= Von, the first call to Advance reports
//     TurnedOn without advancing time.
//   - Threshold crossings snap the state exactly onto the threshold (V = Von,
//     E = C*Von^2/2 on turn-on; likewise Voff on brown-out) so that the on/off
//     state never chatters.
//   - Everything is deterministic: the same calls give bit-identical results.
package power

import (
	"fmt"
	"math"
)

// Capacitor is the storage element with its overvoltage clamp and leakage.
type Capacitor struct {
	// C is the capacitance in farads; positive and finite.
	C float64
	// Vmax is the overvoltage clamp in volts: the stored energy never exceeds
	// C*Vmax^2/2; the excess harvested energy is burnt. Positive and finite.
	Vmax float64
	// Rleak is the leakage resistance in ohms, in parallel with the capacitor.
	// math.Inf(1) means no leakage; zero, negative and NaN are invalid.
	Rleak float64
}

// Energy returns the energy in joules that the capacitor stores at voltage v:
// C*v^2/2.
func (c Capacitor) Energy(v float64) float64 { return c.C * v * v / 2 }

// Voltage returns the voltage at which the capacitor stores energy e joules:
// sqrt(2e/C), or 0 for e <= 0.
func (c Capacitor) Voltage(e float64) float64 {
	if e <= 0 {
		return 0
	}
	return math.Sqrt(2 * e / c.C)
}

// leakRate returns b = 2/(Rleak*C), the relative rate at which leakage drains
// the stored energy (1/s); 0 without leakage.
func (c Capacitor) leakRate() float64 { return 2 / (c.Rleak * c.C) }

// Validate reports the first invalid field, in one line naming it.
func (c Capacitor) Validate() error {
	switch {
	case !(c.C > 0) || math.IsInf(c.C, 1):
		return fmt.Errorf("power: capacitor: C %g F must be positive and finite", c.C)
	case !(c.Vmax > 0) || math.IsInf(c.Vmax, 1):
		return fmt.Errorf("power: capacitor: Vmax %g V must be positive and finite", c.Vmax)
	case !(c.Rleak > 0):
		return fmt.Errorf("power: capacitor: Rleak %g ohm must be positive (math.Inf(1) for no leakage)", c.Rleak)
	case math.IsInf(c.leakRate(), 0) || math.IsInf(c.Energy(c.Vmax), 0):
		return fmt.Errorf("power: capacitor: C %g F, Vmax %g V, Rleak %g ohm overflow float64", c.C, c.Vmax, c.Rleak)
	}
	return nil
}

// Thresholds are the device's turn-on and brown-out voltages.
type Thresholds struct {
	// Von is the turn-on voltage: an off device turns on when V >= Von.
	Von float64
	// Voff is the brown-out voltage: an on device browns out when V <= Voff,
	// and then stays off until V >= Von again.
	Voff float64
}

// Validate checks 0 < Voff < Von (finite); Config.Validate also checks
// Von <= Vmax.
func (t Thresholds) Validate() error {
	switch {
	case !(t.Voff > 0) || math.IsInf(t.Voff, 1):
		return fmt.Errorf("power: thresholds: Voff %g V must be positive and finite", t.Voff)
	case math.IsNaN(t.Von) || math.IsInf(t.Von, 1):
		return fmt.Errorf("power: thresholds: Von %g V must be finite", t.Von)
	case !(t.Voff < t.Von):
		return fmt.Errorf("power: thresholds: Voff %g V must be below Von %g V", t.Voff, t.Von)
	}
	return nil
}

// Config describes a power system: storage, thresholds, converter and the
// initial state.
type Config struct {
	// Cap is the storage capacitor.
	Cap Capacitor
	// Th are the device's on/off thresholds.
	Th Thresholds
	// Efficiency is the input converter's efficiency eta, 0 < eta <= 1: the
	// capacitor receives eta times the harvested power.
	Efficiency float64
	// V0 is the initial capacitor voltage, 0 <= V0 <= Vmax. The device starts
	// off whatever V0 is; see System.Advance.
	V0 float64
}

// Validate reports the first invalid field, in one line naming it, e.g.
// "power: thresholds: Voff 2.9 V must be below Von 2.8 V".
func (c Config) Validate() error {
	if err := c.Cap.Validate(); err != nil {
		return err
	}
	if err := c.Th.Validate(); err != nil {
		return err
	}
	if c.Th.Von > c.Cap.Vmax {
		return fmt.Errorf("power: thresholds: Von %g V must not exceed the capacitor's Vmax %g V", c.Th.Von, c.Cap.Vmax)
	}
	if !(c.Efficiency > 0 && c.Efficiency <= 1) {
		return fmt.Errorf("power: efficiency %g must be in (0, 1]", c.Efficiency)
	}
	if !(c.V0 >= 0 && c.V0 <= c.Cap.Vmax) {
		return fmt.Errorf("power: V0 %g V must be in [0, Vmax %g V]", c.V0, c.Cap.Vmax)
	}
	return nil
}

// CycleBudget returns C*(Von^2 - Voff^2)/2: the energy in joules that one power
// cycle can spend from storage alone, without harvesting (apply a safety
// margin before planning with it).
func (c Config) CycleBudget() float64 {
	return c.Cap.C * (c.Th.Von*c.Th.Von - c.Th.Voff*c.Th.Voff) / 2
}
