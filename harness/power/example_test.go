package power_test

import (
	"fmt"
	"math"

	"github.com/batteryless/harness/harness/power"
)

// A device on iNAS's default capacitor runs a 6 mW task for 50 ms while
// harvesting 1 mW: it browns out inside the task, recharges, and turns on again.
func Example() {
	cfg := power.Config{
		Cap:        power.Capacitor{C: 100e-6, Vmax: 3.3, Rleak: math.Inf(1)},
		Th:         power.Thresholds{Von: 2.8, Voff: 2.4},
		Efficiency: 0.8,
		V0:         2.8,
	}
	fmt.Printf("cycle budget %.0f uJ\n", cfg.CycleBudget()*1e6)
	s, err := power.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = s.SetHarvest(1e-3)
	_ = s.SetLoad(6e-3)

	_, ev := s.Advance(0) // V0 = Von: the device boots at once
	fmt.Println(ev)
	fmt.Printf("brown-out expected after %.2f ms\n", s.TimeUntilVoltage(cfg.Th.Voff)*1e3)

	// Run the 50 ms task; a brown-out cuts it short.
	for left := 50e-3; left > 0; {
		adv, ev := s.Advance(left)
		left -= adv
		if ev == power.BrownedOut {
			fmt.Printf("t=%.2f ms: %v at %.2f V\n", s.Time()*1e3, ev, s.Voltage())
			break
		}
	}
	// Wait (up to a second) for the capacitor to recharge to Von.
	if _, ev := s.Advance(1); ev == power.TurnedOn {
		fmt.Printf("t=%.2f ms: %v at %.2f V\n", s.Time()*1e3, ev, s.Voltage())
	}
	c := s.Counters()
	fmt.Printf("turn-ons %d, brown-outs %d, delivered %.1f uJ\n", c.TurnOns, c.BrownOuts, c.Delivered*1e6)
	// Output:
	// cycle budget 104 uJ
	// turned-on
	// brown-out expected after 20.00 ms
	// t=20.00 ms: browned-out at 2.40 V
	// t=150.00 ms: turned-on at 2.80 V
	// turn-ons 2, brown-outs 1, delivered 120.0 uJ
}
