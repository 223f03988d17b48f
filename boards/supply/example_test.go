package supply_test

import (
	"context"
	"fmt"

	"periph.io/x/conn/v3/physic"

	"github.com/batteryless/harness/boards/supply"
	_ "github.com/batteryless/harness/boards/supply/dialect" // tcp:// and serial:// URLs
	"github.com/batteryless/harness/boards/supply/emulator"
)

// ExampleRun guards a run on an emulated Keysight N6705C: OVP is armed
// 0.1 V above the run's highest setpoint before the output goes on, a
// setpoint beyond the board's limit is refused before it is sent, and the
// output goes off when the run ends.
func ExampleRun() {
	in, _ := emulator.New(emulator.Config{Dialect: "keysight-n67"})
	defer in.Close()
	ctx := context.Background()
	addr, _ := in.ServeTCP(ctx, "127.0.0.1:0")

	ch, err := supply.Open(ctx, "tcp://"+addr.String(), supply.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ch.Close()
	limits := supply.Limits{MaxVoltage: 3600 * physic.MilliVolt, MaxCurrent: 20 * physic.MilliAmpere, Source: "profile msp430fr5994"}
	plan := supply.Plan{MaxVoltage: 3300 * physic.MilliVolt, CurrentLimit: 10 * physic.MilliAmpere}
	err = supply.Run(ctx, ch, limits, plan, func(ctx context.Context, g *supply.Guard) error {
		if err := g.SetVoltage(ctx, 3300*physic.MilliVolt); err != nil {
			return err
		}
		if err := g.SetOutput(ctx, true); err != nil {
			return err
		}
		r, err := g.Measure(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("on: %s, %s\n", r.Voltage, r.Current)
		ovp, _, hw := g.Protection()
		fmt.Printf("OVP at %s in the instrument: %v\n", ovp, hw)
		fmt.Println(g.SetVoltage(ctx, 3700*physic.MilliVolt))
		return nil
	})
	fmt.Println("run:", err, "- output on afterwards:", in.State(1).On)
	// Output:
	// on: 3.300V, 3.300mA
	// OVP at 3.400V in the instrument: true
	// setpoint 3.700V refused before anything was sent: beyond the run's highest setpoint 3.300V (profile msp430fr5994)
	// run: <nil> - output on afterwards: false
}
