package periphrail

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2creg"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/host/v3"

	"github.com/batteryless/harness/boards/supply"
	"github.com/batteryless/harness/boards/supply/ina219"
	"github.com/batteryless/harness/boards/supply/mcp4725"
)

func init() {
	if err := supply.Register(supply.Driver{Scheme: "periph", Usage: "periph://?enable=GPIO17&dac=/dev/i2c-1:0x60&monitor=/dev/i2c-1:0x40", Open: open}); err != nil {
		panic(err)
	}
}

// open brings up the host's drivers (periph.io/x/host) and opens the
// URL's parts.
func open(ctx context.Context, u *url.URL, opt supply.Options) (supply.Channel, error) {
	p, err := ParseURL(u)
	if err != nil {
		return nil, err
	}
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("periph host drivers: %w", err)
	}
	pin := gpioreg.ByName(p.Enable)
	if pin == nil {
		return nil, fmt.Errorf("enable=%s: no such GPIO line on this host (%d lines known)", p.Enable, len(gpioreg.All()))
	}
	cfg := Config{Name: "periph rail " + u.String(), Enable: pin, ActiveLow: p.ActiveLow, Gain: p.Gain}
	buses := map[string]i2c.BusCloser{}
	bus := func(name string) (i2c.Bus, error) {
		if b, ok := buses[name]; ok {
			return b, nil
		}
		b, err := i2creg.Open(strings.TrimPrefix(name, "/dev/"))
		if err != nil {
			b, err = i2creg.Open(name)
		}
		if err != nil {
			return nil, fmt.Errorf("I2C bus %s: %w", name, err)
		}
		buses[name] = b
		return b, nil
	}
	if p.DACBus != "" {
		b, err := bus(p.DACBus)
		if err != nil {
			return nil, err
		}
		if cfg.DAC, err = mcp4725.New(b, &mcp4725.Opts{Addr: p.DACAddr, Vref: supply.FromVolts(p.Vref)}); err != nil {
			return nil, err
		}
	}
	if p.MonBus != "" {
		b, err := bus(p.MonBus)
		if err != nil {
			return nil, err
		}
		if cfg.Monitor, err = ina219.New(b, &ina219.Opts{Addr: p.MonAddr, Shunt: physic.ElectricResistance(p.ShuntOhms * float64(physic.Ohm))}); err != nil {
			return nil, err
		}
	}
	r, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return &closingRail{Rail: r, buses: buses}, nil
}

// closingRail closes the I2C buses it opened.
type closingRail struct {
	*Rail
	buses map[string]i2c.BusCloser
}

func (c *closingRail) Close() error {
	var first error
	for _, b := range c.buses {
		if err := b.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
