// Package periphrail is bench power without a lab supply: a load switch on
// a GPIO line switches the board's rail, an MCP4725 DAC behind a buffer
// sets its voltage, and an INA219 measures it, all through periph. It is a
// supply.Channel, opened from a URL:
//
//	periph://?enable=GPIO17&dac=/dev/i2c-1:0x60&monitor=/dev/i2c-1:0x40
//
// with the optional parameters active=low (the switch's enable is active
// low), vref=3.3 (the DAC's supply in volts), gain=1 (the buffer's gain
// from the DAC to the rail), shunt=0.1 (the INA219's shunt in ohms). Only
// enable= is required: without dac= the rail's voltage is fixed (SetVoltage
// is refused), without monitor= nothing is measured.
//
// The rail has no current limit of its own and no hardware protection:
// the load switch's current limit (a TPS22918-class switch has none; a
// TPS2553 has one) and the Guard's software checks are the protection.
// Off means off only with a sink on the rail: use a load switch with
// quick output discharge, or a bleed resistor.
package periphrail

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/physic"

	"github.com/batteryless/harness/boards/supply"
	"github.com/batteryless/harness/boards/supply/ina219"
	"github.com/batteryless/harness/boards/supply/mcp4725"
)

// Config are the parts of a rail.
type Config struct {
	Name      string     // for String
	Enable    gpio.PinIO // the load switch's enable
	ActiveLow bool       // the enable switches the rail on when low
	DAC       *mcp4725.Dev
	Gain      float64 // rail volts per DAC volt (1 when 0)
	Monitor   *ina219.Dev
}

// Rail is a supply.Channel made of periph parts.
type Rail struct {
	cfg   Config
	mu    sync.Mutex
	on    bool
	limit physic.ElectricCurrent
	set   physic.ElectricPotential
}

// New makes a rail; the enable line is driven to off at once, so the rail
// starts off whatever the line was.
func New(cfg Config) (*Rail, error) {
	if cfg.Enable == nil || cfg.Enable == gpio.INVALID {
		return nil, fmt.Errorf("periphrail: no enable line")
	}
	if cfg.Gain == 0 {
		cfg.Gain = 1
	}
	if cfg.Gain < 0 {
		return nil, fmt.Errorf("periphrail: gain %g must be above zero", cfg.Gain)
	}
	r := &Rail{cfg: cfg}
	if err := r.drive(false); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Rail) drive(on bool) error {
	lvl := gpio.Level(on != r.cfg.ActiveLow)
	if err := r.cfg.Enable.Out(lvl); err != nil {
		return fmt.Errorf("periphrail: %s: %w", r.cfg.Enable, err)
	}
	r.on = on
	return nil
}

func (r *Rail) String() string {
	if r.cfg.Name != "" {
		return r.cfg.Name
	}
	return fmt.Sprintf("periph rail (enable %s)", r.cfg.Enable)
}

// SetVoltage sets the DAC so that the rail is v (DAC volts x gain).
func (r *Rail) SetVoltage(ctx context.Context, v physic.ElectricPotential) error {
	if r.cfg.DAC == nil {
		return fmt.Errorf("%s: no DAC (dac=): the rail's voltage is fixed", r)
	}
	dacV := physic.ElectricPotential(float64(v) / r.cfg.Gain)
	if _, err := r.cfg.DAC.SetVoltage(dacV); err != nil {
		return fmt.Errorf("%s: %w", r, err)
	}
	r.mu.Lock()
	r.set = v
	r.mu.Unlock()
	return nil
}

// SetCurrentLimit records the limit: the rail has no current limit of its
// own (the guard's checks measure against it).
func (r *Rail) SetCurrentLimit(ctx context.Context, i physic.ElectricCurrent) error {
	r.mu.Lock()
	r.limit = i
	r.mu.Unlock()
	return nil
}

// SetOutput switches the load switch.
func (r *Rail) SetOutput(ctx context.Context, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.drive(on)
}

// Measure reads the monitor; without one, the voltage is the setpoint
// when on and the current 0.
func (r *Rail) Measure(ctx context.Context) (supply.Reading, error) {
	r.mu.Lock()
	on, set := r.on, r.set
	r.mu.Unlock()
	if r.cfg.Monitor == nil {
		if !on {
			set = 0
		}
		return supply.Reading{Voltage: set, Output: on}, nil
	}
	s, err := r.cfg.Monitor.Sense()
	if err != nil {
		return supply.Reading{}, fmt.Errorf("%s: %w", r, err)
	}
	return supply.Reading{Voltage: s.Bus, Current: s.Current, Output: on}, nil
}

// Capabilities describe the rail.
func (r *Rail) Capabilities() supply.Capabilities {
	c := supply.Capabilities{Dialect: "periph", Channels: 1, Sync: "none (I2C and GPIO writes complete in the call)",
		Notes: []string{
			"no current limit and no hardware protection: the load switch's own limit and the guard's software checks",
			"off needs a sink on the rail: a load switch with quick output discharge, or a bleed resistor",
		}}
	if r.cfg.DAC != nil {
		c.MaxVoltage = physic.ElectricPotential(float64(r.cfg.DAC.Voltage(mcp4725.MaxCode)) * r.cfg.Gain)
	}
	if r.cfg.Monitor != nil {
		c.MaxCurrent = r.cfg.Monitor.MaxCurrent()
	}
	return c
}

// Close leaves the rail as it is (a guard switches it off first).
func (r *Rail) Close() error { return nil }

// Params are a periph:// URL's parts.
type Params struct {
	Enable     string // pin name, e.g. GPIO17
	ActiveLow  bool
	DACBus     string // e.g. /dev/i2c-1
	DACAddr    uint16
	MonBus     string
	MonAddr    uint16
	Vref, Gain float64
	ShuntOhms  float64
}

// ParseURL reads a periph:// URL.
func ParseURL(u *url.URL) (Params, error) {
	p := Params{Vref: 3.3, Gain: 1, ShuntOhms: 0.1}
	if u.Scheme != "periph" || u.Host != "" || (u.Path != "" && u.Path != "/") {
		return p, fmt.Errorf("want periph://?enable=GPIO17[&dac=/dev/i2c-1:0x60][&monitor=/dev/i2c-1:0x40]")
	}
	q := u.Query()
	for k, v := range q {
		if len(v) != 1 {
			return p, fmt.Errorf("?%s= given %d times", k, len(v))
		}
		var err error
		switch k {
		case "enable":
			p.Enable = v[0]
		case "active":
			switch v[0] {
			case "low":
				p.ActiveLow = true
			case "high":
			default:
				err = fmt.Errorf("?active=%q: want low or high", v[0])
			}
		case "dac":
			p.DACBus, p.DACAddr, err = busAddr(v[0])
		case "monitor":
			p.MonBus, p.MonAddr, err = busAddr(v[0])
		case "vref":
			p.Vref, err = positive(k, v[0])
		case "gain":
			p.Gain, err = positive(k, v[0])
		case "shunt":
			p.ShuntOhms, err = positive(k, v[0])
		default:
			err = fmt.Errorf("unknown URL parameter %q (known: enable, active, dac, monitor, vref, gain, shunt)", k)
		}
		if err != nil {
			return p, err
		}
	}
	if p.Enable == "" {
		return p, fmt.Errorf("?enable= is required: the load switch's GPIO line, e.g. enable=GPIO17")
	}
	return p, nil
}

func positive(k, s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0) || v > 1e6 {
		return 0, fmt.Errorf("?%s=%q: want a number above zero", k, s)
	}
	return v, nil
}

// busAddr splits "/dev/i2c-1:0x60".
func busAddr(s string) (string, uint16, error) {
	i := strings.LastIndex(s, ":")
	if i <= 0 {
		return "", 0, fmt.Errorf("%q: want BUS:ADDRESS, e.g. /dev/i2c-1:0x60", s)
	}
	a, err := strconv.ParseUint(s[i+1:], 0, 16)
	if err != nil || a > 0x7F {
		return "", 0, fmt.Errorf("%q: the address %q is not a 7-bit I2C address", s, s[i+1:])
	}
	return s[:i], uint16(a), nil
}
