package ina219

import (
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"
)

// TestSense plays the datasheet's registers: the configuration write, then
// bus and shunt reads.
func TestSense(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		{Addr: 0x41, W: []byte{0x00, 0x01, 0x9F}},
		// Bus 3.300 V: 825 x 4 mV, <<3, CNVR set: 0x19CA.
		{Addr: 0x41, W: []byte{0x02}, R: []byte{0x19, 0xCA}},
		// Shunt 2.5 mV: 250 x 10 uV = 0x00FA; with 1 ohm, 2.5 mA.
		{Addr: 0x41, W: []byte{0x01}, R: []byte{0x00, 0xFA}},
		// Negative shunt voltage: -1 mV = 0xFF9C.
		{Addr: 0x41, W: []byte{0x02}, R: []byte{0x19, 0xC8}},
		{Addr: 0x41, W: []byte{0x01}, R: []byte{0xFF, 0x9C}},
		// Overflow.
		{Addr: 0x41, W: []byte{0x02}, R: []byte{0x19, 0xC9}},
	}}
	d, err := New(bus, &Opts{Addr: 0x41, Shunt: physic.Ohm})
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.Sense()
	if err != nil {
		t.Fatal(err)
	}
	if r.Bus != 3300*physic.MilliVolt || r.Shunt != 2500*physic.MicroVolt || r.Current != 2500*physic.MicroAmpere {
		t.Fatalf("reading %+v", r)
	}
	if r, err = d.Sense(); err != nil || r.Current != -1*physic.MilliAmpere {
		t.Fatalf("negative: %+v, %v", r, err)
	}
	if _, err = d.Sense(); err == nil || !strings.Contains(err.Error(), "OVF") {
		t.Fatalf("overflow: %v", err)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
	if d.MaxCurrent() != 40*physic.MilliAmpere {
		t.Fatalf("max current %v", d.MaxCurrent())
	}
}
