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

// A task's pieces of work (reading its inputs, computing, writing its
// results, committing) run one after the other: AdvanceLoads steps through
// them and stops at the first event; a Composite folds them into one step,
// taken only when no event can fall inside.
func ExampleSystem_AdvanceComposite() {
	cfg := power.Config{
		Cap:        power.Capacitor{C: 100e-6, Vmax: 3.3, Rleak: 1e7},
		Th:         power.Thresholds{Von: 2.8, Voff: 2.4},
		Efficiency: 0.8,
		V0:         2.8,
	}
	s, err := power.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = s.SetHarvest(1e-3)
	s.Advance(0) // boots at once (V0 = Von)
	task := []power.Load{{Seconds: 2e-3, Watts: 3e-3}, {Seconds: 5e-3, Watts: 6e-3}, {Seconds: 1e-3, Watts: 4e-3}}
	c, err := s.Compose(task)
	if err != nil {
		fmt.Println(err)
		return
	}
	tasks := 0
	for s.AdvanceComposite(&c, math.Inf(1)) {
		tasks++
	}
	fmt.Printf("%d whole tasks in one step each, then %.3f V left\n", tasks, s.Voltage())
	done, ran, ev, _ := s.AdvanceLoads(task, math.Inf(1))
	fmt.Printf("the next task: %d pieces done, %v after %.2f ms of the next\n", done, ev, ran*1e3)
	// Output:
	// 3 whole tasks in one step each, then 2.413 V left
	// the next task: 0 pieces done, browned-out after 1.45 ms of the next
}
