package periphrail

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpiotest"
	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"

	"github.com/batteryless/harness/boards/supply"
	"github.com/batteryless/harness/boards/supply/ina219"
	"github.com/batteryless/harness/boards/supply/mcp4725"
)

// TestGuardedRail runs the guard over a rail of a load switch (a fake
// pin), a DAC behind a 1.5x buffer and a monitor (played I2C transcripts).
func TestGuardedRail(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO17", L: gpio.High}
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x40, W: []byte{0x00, 0x01, 0x9F}}, // INA219 configuration
		// 3.0 V on the rail = 2.0 V from the DAC (gain 1.5) = code 2482 (0x9B2).
		{Addr: 0x60, W: []byte{0x09, 0xB2}},
		// Measure: bus 3.0 V (750 x 4 mV = 0x1770), shunt 0.5 mV -> 5 mA with 0.1 ohm.
		{Addr: 0x40, W: []byte{0x02}, R: []byte{0x17, 0x72}},
		{Addr: 0x40, W: []byte{0x01}, R: []byte{0x00, 0x32}},
		// The guard's software check at the end (no hardware OVP) measures again.
		{Addr: 0x40, W: []byte{0x02}, R: []byte{0x17, 0x72}},
		{Addr: 0x40, W: []byte{0x01}, R: []byte{0x00, 0x32}},
	}}
	dac, err := mcp4725.New(bus, &mcp4725.Opts{Vref: 3300 * physic.MilliVolt})
	if err != nil {
		t.Fatal(err)
	}
	mon, err := ina219.New(bus, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Enable: pin, DAC: dac, Gain: 1.5, Monitor: mon})
	if err != nil {
		t.Fatal(err)
	}
	if pin.Read() != gpio.Low {
		t.Fatal("New did not switch the rail off")
	}
	lim := supply.Limits{MaxVoltage: 3600 * physic.MilliVolt, MaxCurrent: 20 * physic.MilliAmpere}
	var levels []gpio.Level
	err = supply.Run(context.Background(), r, lim, supply.Plan{MaxVoltage: 3 * physic.Volt, CurrentLimit: 20 * physic.MilliAmpere},
		func(ctx context.Context, g *supply.Guard) error {
			if err := g.SetVoltage(ctx, 3*physic.Volt); err != nil {
				return err
			}
			if err := g.SetVoltage(ctx, 3100*physic.MilliVolt); err == nil {
				t.Error("a setpoint above the plan reached the rail")
			}
			if err := g.SetOutput(ctx, true); err != nil {
				return err
			}
			levels = append(levels, pin.Read())
			rd, err := g.Measure(ctx)
			if err != nil {
				return err
			}
			if rd.Voltage != 3*physic.Volt || rd.Current != 5*physic.MilliAmpere || !rd.Output {
				t.Errorf("reading %+v", rd)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(levels) != 1 || levels[0] != gpio.High || pin.Read() != gpio.Low {
		t.Fatalf("enable levels %v then %v", levels, pin.Read())
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
	caps := r.Capabilities()
	if caps.OVP || caps.MaxVoltage < 4900*physic.MilliVolt || caps.MaxCurrent != 400*physic.MilliAmpere {
		t.Fatalf("capabilities %+v", caps)
	}
}

// TestActiveLowAndNoDAC: an active-low enable, and a fixed rail that
// refuses setpoints.
func TestActiveLowAndNoDAC(t *testing.T) {
	pin := &gpiotest.Pin{N: "GPIO4", L: gpio.Low}
	r, err := New(Config{Enable: pin, ActiveLow: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if pin.Read() != gpio.High {
		t.Fatal("active-low rail not off at start")
	}
	if err := r.SetOutput(ctx, true); err != nil || pin.Read() != gpio.Low {
		t.Fatalf("on: %v, %v", err, pin.Read())
	}
	if err := r.SetVoltage(ctx, physic.Volt); err == nil || !strings.Contains(err.Error(), "dac=") {
		t.Fatalf("fixed rail: %v", err)
	}
	if rd, err := r.Measure(ctx); err != nil || !rd.Output {
		t.Fatalf("%+v, %v", rd, err)
	}
}

func TestParseURL(t *testing.T) {
	u, _ := url.Parse("periph://?enable=GPIO17&dac=/dev/i2c-1:0x60&monitor=/dev/i2c-1:0x40&active=low&gain=1.5&shunt=1")
	p, err := ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	want := Params{Enable: "GPIO17", ActiveLow: true, DACBus: "/dev/i2c-1", DACAddr: 0x60, MonBus: "/dev/i2c-1", MonAddr: 0x40, Vref: 3.3, Gain: 1.5, ShuntOhms: 1}
	if p != want {
		t.Fatalf("%+v", p)
	}
	for _, bad := range []string{"periph://?dac=/dev/i2c-1:0x60", "periph://?enable=X&dac=/dev/i2c-1", "periph://?enable=X&dac=b:0x99",
		"periph://?enable=X&gain=-1", "periph://?enable=X&colour=red", "periph://host/?enable=X"} {
		u, _ := url.Parse(bad)
		if _, err := ParseURL(u); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestOpenOnAHostWithoutTheLine: opening a rail through the registry
// brings up periph's host drivers; a line this machine does not have is a
// clear error, not a panic.
func TestOpenOnAHostWithoutTheLine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := supply.Open(ctx, "periph://?enable=NO_SUCH_LINE_42", supply.Options{})
	if err == nil || !strings.Contains(err.Error(), "NO_SUCH_LINE_42") {
		t.Fatalf("err = %v", err)
	}
}

// FuzzParseURL: any periph:// URL is parsed or refused with an error,
// never a panic; what is accepted names an enable line.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"periph://?enable=GPIO17&dac=/dev/i2c-1:0x60&monitor=/dev/i2c-1:0x40", "periph://?enable=X&gain=1e400",
		"periph://?enable=&enable=", "periph://?dac=:", "periph://h/p?enable=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		p, err := ParseURL(u)
		if err == nil && (p.Enable == "" || !(p.Gain > 0) || !(p.Vref > 0) || p.DACAddr > 0x7F || p.MonAddr > 0x7F) {
			t.Fatalf("%q accepted as %+v", s, p)
		}
	})
}
