// Package mcp4725 drives a Microchip MCP4725, a 12-bit I2C DAC, on
// periph's i2c.Dev: the rail voltage of a bench without a lab supply (the
// DAC behind a buffer that can source the board's current).
//
// Register formats are those of the MCP4725 datasheet (DS22039): the fast
// write (2 bytes: 0 0 PD1 PD0 D11..D8, D7..D0), the DAC register write
// (3 bytes: 0x40 | PD<<1, D11..D4, D3..D0 << 4), the write of the DAC
// register and the EEPROM (command 0x60), and the 5-byte read.
package mcp4725

import (
	"fmt"
	"math"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// DefaultAddr is the address of an MCP4725A0 with A0 low.
const DefaultAddr = 0x60

// MaxCode is the highest DAC code.
const MaxCode = 4095

// PowerDown is the output state: on (PowerOn), or off with the output
// pulled to ground through 1 k, 100 k or 500 k.
type PowerDown uint8

// The power-down modes of the datasheet (PD1 PD0).
const (
	PowerOn PowerDown = iota
	Down1k
	Down100k
	Down500k
)

// Opts configures a Dev.
type Opts struct {
	Addr uint16                   // DefaultAddr when 0
	Vref physic.ElectricPotential // the DAC's supply, its reference (3.3 V when 0)
}

// Dev is one MCP4725.
type Dev struct {
	d    i2c.Dev
	vref physic.ElectricPotential
}

// New returns a Dev on bus (nothing is sent).
func New(bus i2c.Bus, opts *Opts) (*Dev, error) {
	o := Opts{}
	if opts != nil {
		o = *opts
	}
	if o.Addr == 0 {
		o.Addr = DefaultAddr
	}
	if o.Addr < 0x60 || o.Addr > 0x67 {
		return nil, fmt.Errorf("mcp4725: address %#x: the MCP4725 answers at 0x60 to 0x67", o.Addr)
	}
	if o.Vref == 0 {
		o.Vref = 3300 * physic.MilliVolt
	}
	if o.Vref < 2700*physic.MilliVolt || o.Vref > 5500*physic.MilliVolt {
		return nil, fmt.Errorf("mcp4725: reference %s: the MCP4725 runs from 2.7 V to 5.5 V", o.Vref)
	}
	return &Dev{d: i2c.Dev{Bus: bus, Addr: o.Addr}, vref: o.Vref}, nil
}

func (d *Dev) String() string { return fmt.Sprintf("MCP4725{%s}", &d.d) }

// Vref is the reference the codes are scaled to.
func (d *Dev) Vref() physic.ElectricPotential { return d.vref }

// Code is the code nearest to v, refused outside 0 to the full scale
// (Vref * 4095/4096).
func (d *Dev) Code(v physic.ElectricPotential) (uint16, error) {
	x := float64(v) / float64(d.vref) * 4096
	c := math.Round(x)
	if v < 0 || c > MaxCode {
		return 0, fmt.Errorf("mcp4725: %s is outside 0 to %s", v, d.Voltage(MaxCode))
	}
	return uint16(c), nil
}

// Voltage is the output of a code.
func (d *Dev) Voltage(code uint16) physic.ElectricPotential {
	return physic.ElectricPotential(int64(code) * int64(d.vref) / 4096)
}

// SetCode sets the output with a fast write (volatile).
func (d *Dev) SetCode(code uint16) error {
	if code > MaxCode {
		return fmt.Errorf("mcp4725: code %d above %d", code, MaxCode)
	}
	return d.d.Tx([]byte{byte(code >> 8), byte(code)}, nil)
}

// SetVoltage sets the output nearest to v and returns its code.
func (d *Dev) SetVoltage(v physic.ElectricPotential) (uint16, error) {
	c, err := d.Code(v)
	if err != nil {
		return 0, err
	}
	return c, d.SetCode(c)
}

// Write writes the DAC register with a power-down mode; persist also
// writes the EEPROM (the value at power-up: write 0 there, so that the
// rail comes up at 0 V).
func (d *Dev) Write(code uint16, pd PowerDown, persist bool) error {
	if code > MaxCode || pd > Down500k {
		return fmt.Errorf("mcp4725: code %d, power-down %d out of range", code, pd)
	}
	cmd := byte(0x40)
	if persist {
		cmd = 0x60
	}
	return d.d.Tx([]byte{cmd | byte(pd)<<1, byte(code >> 4), byte(code&0xF) << 4}, nil)
}

// State is what a read returns.
type State struct {
	Busy       bool // an EEPROM write is in progress
	PowerOnRst bool // the POR bit
	PowerDown  PowerDown
	Code       uint16
	EEPROMPD   PowerDown
	EEPROMCode uint16
}

// Read reads the DAC register and the EEPROM.
func (d *Dev) Read() (State, error) {
	var b [5]byte
	if err := d.d.Tx(nil, b[:]); err != nil {
		return State{}, err
	}
	return State{
		Busy:       b[0]&0x80 == 0,
		PowerOnRst: b[0]&0x40 != 0,
		PowerDown:  PowerDown(b[0] >> 1 & 3),
		Code:       uint16(b[1])<<4 | uint16(b[2]>>4),
		EEPROMPD:   PowerDown(b[3] >> 5 & 3),
		EEPROMCode: uint16(b[3]&0x0F)<<8 | uint16(b[4]),
	}, nil
}
