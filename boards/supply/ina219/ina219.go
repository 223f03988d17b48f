// Package ina219 drives a TI INA219, an I2C bus voltage and shunt current
// monitor, on periph's i2c.Dev: what a bench without a lab supply measures
// the rail with.
//
// Registers from the INA219 datasheet (SBOS448): 0x00 configuration, 0x01
// shunt voltage (signed, 10 uV per bit), 0x02 bus voltage (bits 15..3, 4 mV
// per bit; bit 1 CNVR, bit 0 OVF). The current is computed from the shunt
// voltage and the shunt resistor here, so the calibration register is not
// used.
package ina219

import (
	"fmt"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// DefaultAddr is the address with A0 and A1 at ground.
const DefaultAddr = 0x40

// Register addresses.
const (
	regConfig  = 0x00
	regShunt   = 0x01
	regBus     = 0x02
	configWord = 0x019F // BRNG 16 V, PGA /1 (+-40 mV), 12-bit bus and shunt ADC, shunt and bus continuous
)

// ShuntRange is the shunt voltage range of the configuration written
// (PGA /1).
const ShuntRange = 40 * physic.MilliVolt

// Opts configures a Dev.
type Opts struct {
	Addr  uint16                    // DefaultAddr when 0
	Shunt physic.ElectricResistance // 100 mOhm when 0 (the usual breakout board)
}

// Dev is one INA219.
type Dev struct {
	d     i2c.Dev
	shunt physic.ElectricResistance
}

// New configures the INA219 (16 V bus range, +-40 mV shunt range, 12-bit,
// continuous).
func New(bus i2c.Bus, opts *Opts) (*Dev, error) {
	o := Opts{}
	if opts != nil {
		o = *opts
	}
	if o.Addr == 0 {
		o.Addr = DefaultAddr
	}
	if o.Addr < 0x40 || o.Addr > 0x4F {
		return nil, fmt.Errorf("ina219: address %#x: the INA219 answers at 0x40 to 0x4F", o.Addr)
	}
	if o.Shunt == 0 {
		o.Shunt = 100 * physic.MilliOhm
	}
	if o.Shunt < 0 {
		return nil, fmt.Errorf("ina219: shunt %s: must be above zero", o.Shunt)
	}
	d := &Dev{d: i2c.Dev{Bus: bus, Addr: o.Addr}, shunt: o.Shunt}
	if err := d.d.Tx([]byte{regConfig, configWord >> 8, configWord & 0xFF}, nil); err != nil {
		return nil, fmt.Errorf("ina219: configure: %w", err)
	}
	return d, nil
}

func (d *Dev) String() string { return fmt.Sprintf("INA219{%s}", &d.d) }

// MaxCurrent is the current at the shunt range's end.
func (d *Dev) MaxCurrent() physic.ElectricCurrent {
	return physic.ElectricCurrent(int64(ShuntRange) * int64(physic.Ohm) / int64(d.shunt))
}

// Reading is one measurement.
type Reading struct {
	Bus     physic.ElectricPotential // bus voltage (IN- to ground)
	Shunt   physic.ElectricPotential // across the shunt
	Current physic.ElectricCurrent
}

func (d *Dev) read(reg byte) (uint16, error) {
	var b [2]byte
	if err := d.d.Tx([]byte{reg}, b[:]); err != nil {
		return 0, err
	}
	return uint16(b[0])<<8 | uint16(b[1]), nil
}

// Sense reads the bus and shunt voltages and computes the current. A
// conversion that overflowed (OVF) is an error, not a number.
func (d *Dev) Sense() (Reading, error) {
	bus, err := d.read(regBus)
	if err != nil {
		return Reading{}, fmt.Errorf("ina219: bus voltage: %w", err)
	}
	if bus&1 != 0 {
		return Reading{}, fmt.Errorf("ina219: overflow (OVF): the current is beyond the shunt range %s / %s", ShuntRange, d.shunt)
	}
	sh, err := d.read(regShunt)
	if err != nil {
		return Reading{}, fmt.Errorf("ina219: shunt voltage: %w", err)
	}
	shunt := physic.ElectricPotential(int64(int16(sh)) * 10 * int64(physic.MicroVolt))
	return Reading{
		Bus:     physic.ElectricPotential(int64(bus>>3) * 4 * int64(physic.MilliVolt)),
		Shunt:   shunt,
		Current: physic.ElectricCurrent(int64(shunt) * int64(physic.Ohm) / int64(d.shunt)),
	}, nil
}
