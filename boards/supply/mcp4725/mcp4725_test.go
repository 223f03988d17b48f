package mcp4725

import (
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"
	"periph.io/x/conn/v3/physic"
)

// TestWrites plays the datasheet's frames: a fast write, a DAC register
// write with power-down, a DAC+EEPROM write, and a read.
func TestWrites(t *testing.T) {
	bus := &i2ctest.Playback{DontPanic: true, Ops: []i2ctest.IO{
		// 1.65 V of 3.3 V: code 2048 = 0x800, fast write 0x08 0x00.
		{Addr: 0x60, W: []byte{0x08, 0x00}},
		// Code 0xABC with power-down 500 k: 0x40|3<<1, 0xAB, 0xC0.
		{Addr: 0x60, W: []byte{0x46, 0xAB, 0xC0}},
		// Code 0 to the DAC and the EEPROM: 0x60, 0, 0.
		{Addr: 0x60, W: []byte{0x60, 0x00, 0x00}},
		// Read: ready, POR, PD 00, code 0x123, EEPROM PD 01 code 0x456.
		{Addr: 0x60, R: []byte{0xC0, 0x12, 0x30, 0x24, 0x56}},
	}}
	d, err := New(bus, &Opts{Vref: 3300 * physic.MilliVolt})
	if err != nil {
		t.Fatal(err)
	}
	code, err := d.SetVoltage(1650 * physic.MilliVolt)
	if err != nil || code != 2048 {
		t.Fatalf("SetVoltage: code %d, %v", code, err)
	}
	if err := d.Write(0xABC, Down500k, false); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(0, PowerOn, true); err != nil {
		t.Fatal(err)
	}
	st, err := d.Read()
	if err != nil {
		t.Fatal(err)
	}
	want := State{Busy: false, PowerOnRst: true, PowerDown: PowerOn, Code: 0x123, EEPROMPD: Down1k, EEPROMCode: 0x456}
	if st != want {
		t.Fatalf("read %+v, want %+v", st, want)
	}
	if err := bus.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRangeRefused(t *testing.T) {
	d, err := New(&i2ctest.Playback{DontPanic: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []physic.ElectricPotential{-1, 3300 * physic.MilliVolt, 5 * physic.Volt} {
		if _, err := d.SetVoltage(v); err == nil {
			t.Errorf("%v accepted", v)
		}
	}
	if got := d.Voltage(MaxCode); got < 3299*physic.MilliVolt || got >= 3300*physic.MilliVolt {
		t.Fatalf("full scale %v", got)
	}
	if _, err := New(&i2ctest.Playback{}, &Opts{Addr: 0x40}); err == nil {
		t.Fatal("address 0x40 accepted")
	}
}
