package profiles

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// near reports whether got is within a relative 1e-12 of want.
func near(got, want float64) bool {
	if want == 0 {
		return got == 0
	}
	return math.Abs(got-want) <= 1e-12*math.Abs(want)
}

func mustLoad(t testing.TB, name string) *Profile {
	t.Helper()
	p, err := Load(name)
	if err != nil {
		t.Fatalf("Load(%q): %v", name, err)
	}
	return p
}

func embeddedYAML(t testing.TB, name string) string {
	t.Helper()
	data, err := profileFS.ReadFile(name + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestEmbeddedProfiles(t *testing.T) {
	names := Names()
	if want := []string{"msp430fr5994", "qemu-stm32", "stm32f405"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("Names() = %v, want %v", names, want)
	}
	for _, name := range names {
		p := mustLoad(t, name)
		if p.Name != name || p.Source != "embedded:"+name {
			t.Errorf("%s: Name %q, Source %q", name, p.Name, p.Source)
		}
		if p.Description == "" {
			t.Errorf("%s: no description", name)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("%s: Validate: %v", name, err)
		}
		for _, s := range specs {
			if p.Sources[s.path] == "" {
				t.Errorf("%s: %s has no source", name, s.path)
			}
		}
		// Every base field, plus one row per field of the calibrated
		// sections (8 per kernel, 2 for the layer scan) when present.
		extra := 8 * len(p.Kernels)
		if p.LayerScan != nil {
			extra += 2
		}
		if got, want := len(p.Table()), 2+len(specs)+extra; got != want {
			t.Errorf("%s: Table has %d rows, want %d", name, got, want)
		}
	}
}

// TestMSP430Numbers checks the MSP430FR5994 profile against DESIGN.md's
// "Devices" facts (iNAS's measurements and the datasheet).
func TestMSP430Numbers(t *testing.T) {
	p := mustLoad(t, "msp430fr5994")
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"ClockHz", p.ClockHz, 16e6},
		{"ActivePowerW", p.ActivePowerW, 118e-6 * 16 * 3.0},
		{"SRAMBytes", float64(p.SRAMBytes), 8192},
		{"AccelSRAMBytes", float64(p.AccelSRAMBytes), 4096},
		{"NVMBytes", float64(p.NVMBytes), 256 * 1024},
		{"WordBytes", float64(p.WordBytes), 2},
		{"SupplyMinV", p.SupplyMinV, 1.8},
		{"SupplyMaxV", p.SupplyMaxV, 3.6},
		{"SupplyMaxA", p.SupplyMaxA, 0.020},
		{"SupplyMaxA", p.SupplyMaxA, 0.020},
		{"NVMRead.Energy(100)", p.NVMRead.Energy(100), 2.9e-6},
		{"NVMRead", p.NVMRead.Energy(1), 2.7e-8 + 2.0e-7},
		{"NVMRead.Cycles(100)", p.NVMRead.Cycles(100), 64*100 + 424},
		{"NVMWrite.Energy(10)", p.NVMWrite.Energy(10), 2.6815e-8*10 + 1.9336e-7},
		{"NVMWrite.Cycles(10)", p.NVMWrite.Cycles(10), 64*10 + 422},
		{"VectorMAC.Energy(256)", p.VectorMAC.Energy(256), 5.273e-10*256 + 2.044e-7},
		{"VectorMAC.Cycles(256)", p.VectorMAC.Cycles(256), 1.5*256 + 616},
		{"Add.Energy", p.Add.Energy, 3.94e-9},
		{"Add.Cycles", p.Add.Cycles, 12},
		{"Mul.Energy", p.Mul.Energy, 19.25e-9},
		{"Mul.Cycles", p.Mul.Cycles, 44},
		{"Div.Energy", p.Div.Energy, 43.7e-9},
		{"Div.Cycles", p.Div.Cycles, 160},
		{"Max.Energy", p.Max.Energy, 4.23e-9},
		{"Max.Cycles", p.Max.Cycles, 14},
		{"Reboot.Energy", p.Reboot.Energy, 77.88e-6},
		{"Reboot.Seconds", p.Reboot.Seconds, 70e-3},
		{"CapacitanceF", p.Power.CapacitanceF, 100e-6},
		{"VonV", p.Power.VonV, 2.8},
		{"VoffV", p.Power.VoffV, 2.4},
		{"VmaxV", p.Power.VmaxV, 3.6},
		{"LeakageOhm", p.Power.LeakageOhm, 10e6},
		{"Efficiency", p.Power.Efficiency, 0.8},
		{"CycleBudget", p.CycleBudget(), 100e-6 * (2.8*2.8 - 2.4*2.4) / 2},
		{"Seconds(16e6)", p.Seconds(16e6), 1},
	} {
		if !near(c.got, c.want) {
			t.Errorf("%s = %.10g, want %.10g", c.name, c.got, c.want)
		}
	}
	if p.Power.CapacitanceF != 100e-6 {
		t.Errorf("100 uF = %v, want exactly 100e-6", p.Power.CapacitanceF)
	}
}

func TestSTM32Numbers(t *testing.T) {
	p := mustLoad(t, "stm32f405")
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"ClockHz", p.ClockHz, 16e6},
		{"SRAMBytes", float64(p.SRAMBytes), 128 * 1024},
		{"NVMBytes", float64(p.NVMBytes), 256 * 1024},
		{"WordBytes", float64(p.WordBytes), 4},
		{"CapacitanceF", p.Power.CapacitanceF, 470e-6},
		{"VonV", p.Power.VonV, 3.3},
		{"VoffV", p.Power.VoffV, 2.0},
		{"CycleBudget", p.CycleBudget(), 470e-6 * (3.3*3.3 - 2.0*2.0) / 2},
	} {
		if !near(c.got, c.want) {
			t.Errorf("%s = %.10g, want %.10g", c.name, c.got, c.want)
		}
	}
	// The assumed energies are cycles x active power / clock (+ the FRAM's
	// own draw for NVM transfers): keep them consistent when either changes.
	perCycle := p.ActivePowerW / p.ClockHz
	for _, c := range []struct {
		name string
		op   OpCost
	}{{"add", p.Add}, {"mul", p.Mul}, {"div", p.Div}, {"max", p.Max}} {
		if !near(c.op.Energy, c.op.Cycles*perCycle) {
			t.Errorf("%s: energy %g J, want cycles x active power / clock = %g J", c.name, c.op.Energy, c.op.Cycles*perCycle)
		}
	}
	if !near(p.VectorMAC.Energy(1000), p.VectorMAC.Cycles(1000)*perCycle) {
		t.Errorf("vector MAC energy %g J, want %g J", p.VectorMAC.Energy(1000), p.VectorMAC.Cycles(1000)*perCycle)
	}
	if e, cpu := p.NVMRead.Energy(1000), p.NVMRead.Cycles(1000)*perCycle; e < cpu || e > 1.2*cpu {
		t.Errorf("NVM read energy %g J, want the CPU's %g J plus at most 20%% for the FRAM", e, cpu)
	}
	// One power cycle runs the CPU for tens of milliseconds.
	if run := p.CycleBudget() / p.ActivePowerW; run < 20e-3 || run > 200e-3 {
		t.Errorf("run time per power cycle %g s, want tens of ms", run)
	}
}

func TestUnits(t *testing.T) {
	for _, c := range []struct {
		dim  dimension
		unit string
		v    float64
		want float64
	}{
		{dimFrequency, "Hz", 16e6, 16e6},
		{dimFrequency, "MHz", 16, 16e6},
		{dimFrequency, "kHz", 32.768, 32768},
		{dimFrequency, "GHz", 1, 1e9},
		{dimPower, "W", 1, 1},
		{dimPower, "mW", 5.664, 5.664e-3},
		{dimPower, "uW", 1.5, 1.5e-6},
		{dimPower, "µW", 1.5, 1.5e-6},
		{dimPower, "μW", 1.5, 1.5e-6},
		{dimPower, "nW", 2, 2e-9},
		{dimBytes, "B", 2, 2},
		{dimBytes, "KiB", 8, 8192},
		{dimBytes, "MiB", 1, 1 << 20},
		{dimBytes, "GiB", 2, 2 << 30},
		{dimVoltage, "V", 2.8, 2.8},
		{dimVoltage, "mV", 2800, 2.8},
		{dimCapacitance, "uF", 100, 100e-6},
		{dimCapacitance, "mF", 5, 5e-3},
		{dimCapacitance, "nF", 470, 470e-9},
		{dimCapacitance, "pF", 9, 9e-12},
		{dimResistance, "Ohm", 1000, 1000},
		{dimResistance, "ohm", 1000, 1000},
		{dimResistance, "kOhm", 1, 1000},
		{dimResistance, "MOhm", 10, 10e6},
		{dimResistance, "kΩ", 4.7, 4700},
		{dimEnergy, "J", 2e-7, 2e-7},
		{dimEnergy, "nJ", 3.94, 3.94e-9},
		{dimEnergy, "uJ", 77.88, 77.88e-6},
		{dimEnergy, "mJ", 1, 1e-3},
		{dimTime, "s", 1, 1},
		{dimTime, "ms", 70, 70e-3},
		{dimTime, "us", 2, 2e-6},
		{dimTime, "ns", 5, 5e-9},
		{dimCycles, "cycles", 424, 424},
		{dimEnergyPerElem, "J/element", 2.7e-8, 2.7e-8},
		{dimEnergyPerElem, "nJ/element", 27, 2.7e-8},
		{dimEnergyPerElem, "pJ/element", 527.3, 5.273e-10},
		{dimCyclesPerElem, "cycles/element", 1.5, 1.5},
		{dimRatio, "1", 0.8, 0.8},
		{dimRatio, "%", 80, 0.8},
	} {
		got, ok := toSI(c.v, c.dim, c.unit)
		if !ok || !near(got, c.want) {
			t.Errorf("%v %s (%s) = %v, %v; want %v", c.v, c.unit, dims[c.dim].name, got, ok, c.want)
		}
	}
	// Exactness: a prefix divides by an exact power of ten, so that the
	// value is the float64 nearest to the decimal written in the file.
	for _, c := range []struct {
		v    float64
		dim  dimension
		unit string
		want float64
	}{
		{100, dimCapacitance, "uF", 100e-6},
		{470, dimCapacitance, "uF", 470e-6},
		{70, dimTime, "ms", 70e-3},
		{5.664, dimPower, "mW", 5.664e-3},
		{77.88, dimEnergy, "uJ", 77.88e-6},
		{3.94, dimEnergy, "nJ", 3.94e-9},
	} {
		if got, _ := toSI(c.v, c.dim, c.unit); got != c.want {
			t.Errorf("%v %s = %v, want exactly %v", c.v, c.unit, got, c.want)
		}
	}

	for _, c := range []struct {
		dim  dimension
		unit string
		msg  string
	}{
		{dimFrequency, "mW", `"mW" is a power, want a frequency`},
		{dimPower, "mw", `"mw" is not a known unit, want a power (W with an SI prefix, e.g. mW)`},
		{dimPower, "MHz", `"MHz" is a frequency, want a power`},
		{dimBytes, "KB", `"KB" is not a known unit, want a size in bytes (B, KiB, MiB or GiB)`},
		{dimBytes, "kB", `"kB" is not a known unit`},
		{dimBytes, "kiB", `"kiB" is not a known unit`},
		{dimCapacitance, "uf", `"uf" is not a known unit`},
		{dimCapacitance, "V", `"V" is a voltage, want a capacitance`},
		{dimEnergy, "nJ/element", `"nJ/element" is an energy per element, want an energy`},
		{dimEnergyPerElem, "nJ", `"nJ" is an energy, want an energy per element`},
		{dimCycles, "kcycles", `"kcycles" is not a known unit`},
		{dimCycles, "cycles/element", `"cycles/element" is cycles per element, want a number of cycles`},
		{dimTime, "min", `"min" is not a known unit, want a time`},
		{dimTime, "", `empty unit, want a time`},
		{dimResistance, "KOhm", `"KOhm" is not a known unit`},
		{dimRatio, "0.8", `"0.8" is not a known unit, want a ratio`},
		{dimFrequency, "xHz", `"xHz" is not a known unit`},
	} {
		if _, ok := toSI(1, c.dim, c.unit); ok {
			t.Errorf("%q accepted as %s", c.unit, dims[c.dim].name)
			continue
		}
		if msg := unitError(c.dim, c.unit); !strings.Contains(msg, c.msg) {
			t.Errorf("unitError(%s, %q) = %q, want it to contain %q", dims[c.dim].name, c.unit, msg, c.msg)
		}
	}
}

func TestFormatSI(t *testing.T) {
	for _, c := range []struct {
		v    float64
		dim  dimension
		want string
	}{
		{16e6, dimFrequency, "16 MHz"},
		{5.664e-3, dimPower, "5.664 mW"},
		{1.5e-6, dimPower, "1.5 uW"},
		{0, dimPower, "0 W"},
		{8192, dimBytes, "8 KiB"},
		{262144, dimBytes, "256 KiB"},
		{1 << 20, dimBytes, "1 MiB"},
		{2, dimBytes, "2 B"},
		{1500, dimBytes, "1500 B"},
		{100e-6, dimCapacitance, "100 uF"},
		{10e6, dimResistance, "10 MOhm"},
		{2.6815e-8, dimEnergyPerElem, "26.815 nJ/element"},
		{5.273e-10, dimEnergyPerElem, "527.3 pJ/element"},
		{77.88e-6, dimEnergy, "77.88 uJ"},
		{1e-3, dimEnergy, "1 mJ"},
		{70e-3, dimTime, "70 ms"},
		{424, dimCycles, "424 cycles"},
		{1.5, dimCyclesPerElem, "1.5 cycles/element"},
		{0.8, dimRatio, "0.8"},
		{2.8, dimVoltage, "2.8 V"},
		{1e-15, dimEnergy, "0.001 pJ"},
	} {
		if got := formatSI(c.v, c.dim); got != c.want {
			t.Errorf("formatSI(%g, %s) = %q, want %q", c.v, dims[c.dim].name, got, c.want)
		}
	}
}

func TestTable(t *testing.T) {
	p := mustLoad(t, "msp430fr5994")
	rows := p.Table()
	if !reflect.DeepEqual(rows[0], []string{"name", "msp430fr5994", "embedded:msp430fr5994"}) {
		t.Errorf("row 0 = %q", rows[0])
	}
	want := map[string][2]string{
		"cpu.clock":                   {"16 MHz", "MSP430FR5994 datasheet SLASE54: 16 MHz max (FRAM reads need 1 wait state above 8 MHz)"},
		"cpu.sram":                    {"8 KiB", "SLASE54: 8 KB SRAM"},
		"costs.nvm_read.cycles_fixed": {"424 cycles", "iNAS CostModel/microbench_measurements.py: DMA NVM->SRAM 64*n + 424 cycles"},
		"power.capacitance":           {"100 uF", "iNAS function defaults: 100 uF"},
		"reboot.time":                 {"70 ms", "iNAS: reboot 70 ms"},
	}
	found := 0
	for _, r := range rows {
		if len(r) != len(TableHeader) {
			t.Fatalf("row %q has %d columns, want %d", r, len(r), len(TableHeader))
		}
		if w, ok := want[r[0]]; ok {
			found++
			if r[1] != w[0] || r[2] != w[1] {
				t.Errorf("row %s = %q, want %q", r[0], r[1:], w)
			}
		}
	}
	if found != len(want) {
		t.Errorf("found %d of the %d expected rows", found, len(want))
	}
}

// TestMalformed edits the MSP430 profile into bad files and checks that each
// gives one line "file:line: field: ..." with the right line and field.
func TestMalformed(t *testing.T) {
	good := embeddedYAML(t, "msp430fr5994")
	const file = "bad.yaml"
	for _, c := range []struct {
		name     string
		old, new string // replace old (which must occur exactly once) with new
		mark     string // the error's line is the first line holding mark; "" = no line
		field    string
		msg      string
	}{
		{"unknown top-level field", "\nadc:", "\ncolour: red\nadc:", "colour: red", "colour", "unknown field (want name, description, cpu, costs, reboot, power, adc)"},
		{"unknown cpu field", "  clock: ", "  clok: ", "clok:", "cpu.clok", "unknown field (want clock, active_power,"},
		{"unknown quantity key", `{value: 16, unit: MHz,`, `{value: 16, per: 1, unit: MHz,`, "per: 1", "cpu.clock.per", "unknown field (want value, unit, source)"},
		{"odd key", "\nadc:", "\n\"a b\": 1\nadc:", `"a b": 1`, `"a b"`, "unknown field"},
		{"missing field", "  sram:         {value: 8, unit: KiB, source: \"SLASE54: 8 KB SRAM\"}\n", "", "cpu:", "cpu.sram", "missing field"},
		{"missing section", "name: msp430fr5994\n", "", "description:", "name", "missing field"},
		{"missing value", "{value: 16, unit: MHz, ", "{unit: MHz, ", "clock:", "cpu.clock.value", "missing field"},
		{"missing unit", "{value: 100, unit: uF, ", "{value: 100, ", "capacitance:", "power.capacitance.unit", "missing field"},
		{"missing source", `unit: uJ, source: "iNAS: reboot 77.88 uJ"}`, `unit: uJ}`, "energy: {value: 77.88", "reboot.energy.source", "missing field"},
		{"empty source", `source: "iNAS: reboot 77.88 uJ"`, `source: "  "`, "energy: {value: 77.88", "reboot.energy.source", "want a non-empty source"},
		{"null source", `source: "iNAS: reboot 77.88 uJ"`, `source: ~`, "energy: {value: 77.88", "reboot.energy.source", "want a non-empty source"},
		{"duplicate field", "  sleep_power:", "  clock: {value: 1, unit: Hz, source: x}\n  sleep_power:", "clock: {value: 1, unit: Hz", "cpu.clock", "duplicate field (first at line"},
		{"wrong unit", "{value: 16, unit: MHz,", "{value: 16, unit: mW,", "clock:", "cpu.clock.unit", `"mW" is a power, want a frequency (Hz with an SI prefix, e.g. MHz)`},
		{"unknown unit", "{value: 100, unit: uF,", "{value: 100, unit: microfarad,", "capacitance:", "power.capacitance.unit", `"microfarad" is not a known unit, want a capacitance`},
		{"sequence unit", "{value: 100, unit: uF,", "{value: 100, unit: [uF],", "capacitance:", "power.capacitance.unit", "want a unit, got a sequence"},
		{"per-element unit on a fixed cost", "{value: 424,    unit: cycles,", "{value: 424,    unit: cycles/element,", "value: 424", "costs.nvm_read.cycles_fixed.unit", `"cycles/element" is cycles per element, want a number of cycles`},
		{"negative value", "{value: 2.4, unit: V,", "{value: -2.4, unit: V,", "voff:", "power.voff.value", "-2.4 must be finite and not negative"},
		{"NaN value", "{value: 2.4, unit: V,", "{value: .nan, unit: V,", "voff:", "power.voff.value", ".nan must be finite and not negative"},
		{"infinite value", "{value: 2.4, unit: V,", "{value: .inf, unit: V,", "voff:", "power.voff.value", ".inf must be finite and not negative"},
		{"overflow", "{value: 16, unit: MHz,", "{value: 1e305, unit: MHz,", "clock:", "cpu.clock.value", "1e305 MHz overflows"},
		{"string value", "{value: 16, unit: MHz,", `{value: "16", unit: MHz,`, "clock:", "cpu.clock.value", `want a number, got "16"`},
		{"value with unit", "{value: 16, unit: MHz,", `{value: 16MHz, unit: MHz,`, "clock:", "cpu.clock.value", `want a number, got "16MHz"`},
		{"null value", "{value: 16, unit: MHz,", `{value: , unit: MHz,`, "clock:", "cpu.clock.value", `want a number, got nothing (null)`},
		{"fractional bytes", "{value: 2, unit: B,", "{value: 2.5, unit: B,", "word:", "cpu.word.value", "2.5 B is not a whole number of bytes"},
		{"scalar quantity", "  clock:        {value: 16, unit: MHz, source: \"MSP430FR5994 datasheet SLASE54: 16 MHz max (FRAM reads need 1 wait state above 8 MHz)\"}", "  clock: 16 MHz", "clock: 16 MHz", "cpu.clock", "want a quantity {value, unit, source}, got a scalar"},
		{"scalar section", "\nadc:\n", "\nadc: 5\nxadc:\n", "adc: 5", "adc", "want a mapping, got a scalar"},
		{"unknown field after a bad one", "\nadc:\n", "\nadc: 5\nxadc:\n", "adc: 5", "adc", "want a mapping, got a scalar"},
		{"zero clock", "{value: 16, unit: MHz,", "{value: 0, unit: MHz,", "clock:", "cpu.clock", "must be positive"},
		{"Voff above Von", "{value: 2.4, unit: V,", "{value: 2.9, unit: V,", "voff:", "power.voff", "2.9 V must be below power.von (2.8 V)"},
		{"Voff equal to Von", "{value: 2.4, unit: V,", "{value: 2800, unit: mV,", "voff:", "power.voff", "2.8 V must be below power.von (2.8 V)"},
		{"Von above Vmax", "{value: 2.8, unit: V,", "{value: 3.7, unit: V,", "von:", "power.von", "3.7 V must not exceed power.vmax (3.6 V)"},
		{"Vmax above supply", "vmax:        {value: 3.6,", "vmax:        {value: 4,", "vmax:", "power.vmax", "4 V must not exceed cpu.supply_max (3.6 V)"},
		{"Voff below supply", "{value: 2.4, unit: V,", "{value: 1.5, unit: V,", "voff:", "power.voff", "1.5 V must not be below cpu.supply_min (1.8 V)"},
		{"supply range", "supply_min:   {value: 1.8,", "supply_min:   {value: 3.6,", "supply_min:", "cpu.supply_min", "3.6 V must be below cpu.supply_max (3.6 V)"},
		{"efficiency above 1", "{value: 0.8, unit: \"1\",", "{value: 120, unit: \"%\",", "efficiency:", "power.efficiency", "1.2 must be at most 1"},
		{"zero leakage", "{value: 10,  unit: MOhm,", "{value: 0,  unit: MOhm,", "leakage:", "power.leakage", "must be positive"},
		{"accel above SRAM", "{value: 4, unit: KiB,", "{value: 16, unit: KiB,", "accel_sram:", "cpu.accel_sram", "16 KiB must not exceed cpu.sram (8 KiB)"},
		{"odd word", "{value: 2, unit: B,", "{value: 3, unit: B,", "word:", "cpu.word", "3 B must be 1, 2, 4 or 8 bytes"},
		{"sleep above active", "{value: 1.5, unit: uW,", "{value: 6, unit: mW,", "sleep_power:", "cpu.sleep_power", "6 mW must be below cpu.active_power (5.664 mW)"},
		{"bad name", "name: msp430fr5994", "name: MSP 430", "name: MSP 430", "name", `"MSP 430" must be lower-case`},
		{"name not a string", "name: msp430fr5994", "name: [a]", "name: [a]", "name", "want a string, got a sequence"},
		{"syntax error", "  sram:", "  sram: {value: 8\n  x:", "sram: {value: 8", "yaml", "did not find expected ',' or '}'"},
		{"bad indentation", "  sram:", " sram:", " sram:", "yaml", "did not find expected key"},
		{"tab indentation", "  sram:", "\tsram:", "\tsram:", "yaml", "found character that cannot start any token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if n := strings.Count(good, c.old); n != 1 {
				t.Fatalf("%q occurs %d times in the profile", c.old, n)
			}
			bad := strings.Replace(good, c.old, c.new, 1)
			_, err := Parse([]byte(bad), file)
			if err == nil {
				t.Fatalf("no error")
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error is not one line: %q", msg)
			}
			line := 0
			for i, l := range strings.Split(bad, "\n") {
				if strings.Contains(l, c.mark) {
					line = i + 1
					break
				}
			}
			if line == 0 {
				t.Fatalf("mark %q not in the bad file", c.mark)
			}
			prefix := fmt.Sprintf("%s:%d: %s: ", file, line, c.field)
			if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, c.msg) {
				t.Errorf("error %q\nwant prefix %q and %q", msg, prefix, c.msg)
			}
		})
	}
}

func TestMalformedWholeFile(t *testing.T) {
	good := embeddedYAML(t, "msp430fr5994")
	for _, c := range []struct {
		name, data, want string
	}{
		{"empty", "", "f.yaml:1: profile: empty file"},
		{"only a comment", "# nothing\n", "f.yaml:1: profile: empty file"},
		{"empty document", "---\n", "f.yaml:2: profile: want a mapping, got nothing (null)"},
		{"sequence", "- a\n- b\n", "f.yaml:1: profile: want a mapping, got a sequence"},
		{"scalar", "hello\n", "f.yaml:1: profile: want a mapping, got a scalar"},
		{"two documents", good + "---\nname: x\n", fmt.Sprintf("f.yaml:%d: profile: a second YAML document", strings.Count(good, "\n")+1)},
		{"missing sections", "name: x\ndescription: y\n", "f.yaml:1: cpu: missing field"},
		{"alias loop", "name: &a x\ncpu: &c {cpu: *c}\n", "f.yaml:2: cpu.cpu: unknown field"},
		{"binary", "\x00\x01", "f.yaml: yaml: control characters are not allowed"},
	} {
		_, err := Parse([]byte(c.data), "f.yaml")
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want prefix %q", c.name, err, c.want)
		}
	}
	big := make([]byte, MaxBytes+1)
	if _, err := Parse(big, "big.yaml"); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized file: %v", err)
	}
}

// TestYAMLErrorLines checks that YAML syntax errors point at the right line
// despite yaml.v3 giving parser errors 0-based lines.
func TestYAMLErrorLines(t *testing.T) {
	for _, c := range []struct{ data, want string }{
		{"a: 1\nb: {c: 2\nd: 3\n", "y.yaml:2: yaml: did not find expected ',' or '}'"},
		{"a: 1\nb: [1, 2\nd: 3\n", "y.yaml:2: yaml: did not find expected ',' or ']'"},
		{"a: 1\n- b\n", "y.yaml:2: yaml: did not find expected key"},
		{"a: 1\nb:\n  c: 1\n d: 2\n", "y.yaml:4: yaml: did not find expected key"},
		{"a: 1\nb: 2\n  c: 3\n", "y.yaml:3: yaml: mapping values are not allowed in this context"},
		{"a: 1\nb: c: d\n", "y.yaml:2: yaml: mapping values are not allowed in this context"},
		{"a: {b\n", "y.yaml:1: yaml: did not find expected ',' or '}'"},
		{"a: 1\nb: *x\n", "y.yaml: yaml: unknown anchor 'x' referenced"},
	} {
		_, err := Parse([]byte(c.data), "y.yaml")
		if err == nil || err.Error() != c.want {
			t.Errorf("%q: error %v, want %q", c.data, err, c.want)
		}
	}
}

// Anchors and aliases are plain YAML: a file may share a source text.
func TestAliases(t *testing.T) {
	good := embeddedYAML(t, "msp430fr5994")
	data := strings.Replace(good, `source: "iNAS: reboot 77.88 uJ"`, `source: &inas "iNAS: reboot"`, 1)
	data = strings.Replace(data, `source: "iNAS: reboot 70 ms"`, `source: *inas`, 1)
	p, err := Parse([]byte(data), "alias.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Sources["reboot.time"] != "iNAS: reboot" || p.Source != "alias.yaml" {
		t.Errorf("reboot.time source %q, profile source %q", p.Sources["reboot.time"], p.Source)
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	good := embeddedYAML(t, "stm32f405")
	path := filepath.Join(dir, "lab.yaml")
	data := strings.Replace(good, "name: stm32f405", "name: stm32f405-lab", 1)
	data = strings.Replace(data, "{value: 470, unit: uF,", "{value: 1, unit: mF,", 1)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "stm32f405-lab" || p.Source != path || p.Power.CapacitanceF != 1e-3 {
		t.Errorf("got %q from %q with C = %g F", p.Name, p.Source, p.Power.CapacitanceF)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(good, "unit: MHz", "unit: MW", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.HasPrefix(err.Error(), bad+":") || !strings.Contains(err.Error(), "cpu.clock.unit") {
		t.Errorf("bad file: %v", err)
	}

	for _, c := range []struct{ arg, want string }{
		{"msp430", `profile "msp430": neither an embedded profile (msp430fr5994, qemu-stm32, stm32f405) nor a file`},
		{"", `profile "": neither an embedded profile`},
		{filepath.Join(dir, "none.yaml"), "profile: open " + filepath.Join(dir, "none.yaml")},
		{"none.yaml", "profile: open none.yaml"},
	} {
		if _, err := Load(c.arg); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("Load(%q) = %v, want prefix %q", c.arg, err, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		field string
		edit  func(p *Profile)
	}{
		{"name", func(p *Profile) { p.Name = "" }},
		{"cpu.clock", func(p *Profile) { p.ClockHz = math.NaN() }},
		{"cpu.sram", func(p *Profile) { p.SRAMBytes = -1 }},
		{"costs.vector_mac.cycles_fixed", func(p *Profile) { p.VectorMAC.CyclesFixed = math.Inf(1) }},
		{"adc.voltage_sense.energy", func(p *Profile) { p.ADC.VoltageSense.Energy = -1e-9 }},
		{"power.voff", func(p *Profile) { p.Power.VoffV = 3.4 }},
		{"power.capacitance", func(p *Profile) { p.Power.CapacitanceF = 1e300; p.Power.LeakageOhm = 1e300 }},
		{"cpu.word", func(p *Profile) { p.NVMBytes = 2; p.AccelSRAMBytes = 1; p.WordBytes = 4 }},
	} {
		p := mustLoad(t, "stm32f405")
		c.edit(p)
		err := p.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: Validate() = %v", c.field, err)
			continue
		}
		if want := "embedded:stm32f405: " + c.field + ": "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %q, want prefix %q", c.field, err, want)
		}
	}
}

// compactYAML writes p as a compact flow-style profile in SI base units,
// with one-letter sources, one line per section.
func compactYAML(p *Profile) string { return compactYAMLWith(p, "", "") }

// compactYAMLWith is compactYAML with the quantity at path written as text.
func compactYAMLWith(p *Profile, path, text string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\ndescription: d\n", p.Name)
	var write func(n *schemaNode, prefix string)
	write = func(n *schemaNode, prefix string) {
		b.WriteString("{")
		for i, k := range n.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			c := n.children[k]
			b.WriteString(k + ": ")
			if c.spec != nil && c.spec.path == path {
				b.WriteString(text)
				continue
			}
			if c.spec != nil {
				info := dims[c.spec.dim]
				unit := ""
				if len(info.bases) > 0 {
					unit = info.bases[0]
				} else {
					unit = info.fixed[0].sym
				}
				fmt.Fprintf(&b, "{value: %s, unit: %q, source: s}", strconv.FormatFloat(c.spec.get(p), 'g', -1, 64), unit)
				continue
			}
			write(c, join(prefix, k))
		}
		b.WriteString("}")
	}
	for _, k := range schema.keys {
		if c := schema.children[k]; !c.str {
			b.WriteString(k + ": ")
			write(c, k)
			b.WriteString("\n")
		}
	}
	return b.String()
}

// The compact SI form of each embedded profile parses back to the same
// numbers: the schema, the units and Table's fields agree.
func TestCompactRoundTrip(t *testing.T) {
	for _, name := range Names() {
		p := mustLoad(t, name)
		q, err := Parse([]byte(compactYAML(p)), "compact.yaml")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		q.Description, q.Source, q.Sources = p.Description, p.Source, p.Sources
		// The optional calibrated sections (costs.kernels, costs.layer_scan)
		// are not in the compact schema; profile_yaml_test.go round-trips them.
		q.Kernels, q.LayerScan = p.Kernels, p.LayerScan
		if !reflect.DeepEqual(p, q) {
			t.Errorf("%s: round trip differs:\n%+v\n%+v", name, p, q)
		}
	}
}

// FuzzParse checks that no input panics, that every error is one line
// starting with the file name, and that whatever parses is valid.
//
// Each input is parsed twice: as a whole file, and spliced into a valid
// compact profile, where its first byte picks a quantity (or a section line)
// and the rest replaces it. The splice reaches the unit, value and
// cross-field checks with small inputs: Go's minimizer is quadratic in the
// input's length, so whole profiles as inputs would spend a 30 s run
// minimizing a single one.
func FuzzParse(f *testing.F) {
	base := mustLoad(f, "msp430fr5994")
	baseLines := strings.SplitAfter(compactYAML(base), "\n")
	for _, s := range []string{
		"", "---\n", "- a", "name: x", "name: &a x\ncpu: &c {cpu: *c}\n",
		"cpu: {clock: {value: 1, unit: Hz, source: s}}",
		"a: &a [*a]", "<<: {name: x}", "? [a]\n: b", "\"\\u2028\": 1", "a: {b\n",
		string(rune(len(specs)+4)) + "reboot: {energy: {value: 1, unit: uJ, source: s}}\n",
	} {
		f.Add([]byte(s))
	}
	for _, s := range []struct{ path, text string }{
		{"cpu.clock", "{value: 16, unit: MHz, source: s}"},
		{"cpu.clock", "{value: 16, unit: mW, source: s}"},
		{"cpu.sram", "{value: 8, unit: KiB, source: s}"},
		{"power.voff", "{value: 2.4, unit: V, source: s}"},
		{"power.voff", "{value: 2900, unit: mV, source: s}"},
		{"power.efficiency", "{value: 80, unit: \"%\", source: s}"},
		{"power.leakage", "{value: .nan, unit: kOhm, source: s}"},
	} {
		i := slices.IndexFunc(specs, func(f fieldSpec) bool { return f.path == s.path })
		f.Add(append([]byte{byte(i)}, s.text...))
	}
	check := func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz.yaml")
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "fuzz.yaml") || strings.ContainsAny(msg, "\n\r\u2028\u2029") {
				t.Fatalf("bad error message %q", msg)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("parsed but invalid: %v", err)
		}
		if b := p.CycleBudget(); !(b > 0) || math.IsInf(b, 0) {
			t.Fatalf("cycle budget %g", b)
		}
		_ = p.Table()
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, data)
		if len(data) == 0 {
			return
		}
		var spliced string
		if i := int(data[0]); i < len(specs) {
			spliced = compactYAMLWith(base, specs[i].path, string(data[1:]))
		} else {
			lines := slices.Clone(baseLines)
			lines[(i-len(specs))%len(lines)] = string(data[1:])
			spliced = strings.Join(lines, "")
		}
		check(t, []byte(spliced))
	})
}

func ExampleLoad() {
	p, err := Load("msp430fr5994")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Source)
	fmt.Printf("%.0f MHz, %d B SRAM, %d B NVM, %d-byte commit word\n", p.ClockHz/1e6, p.SRAMBytes, p.NVMBytes, p.WordBytes)
	n := 100.0 // 16-bit elements
	fmt.Printf("read %v elements: %.2f uJ, %.0f cycles = %.1f us\n",
		n, p.NVMRead.Energy(n)*1e6, p.NVMRead.Cycles(n), p.Seconds(p.NVMRead.Cycles(n))*1e6)
	fmt.Printf("one power cycle: %.0f uJ\n", p.CycleBudget()*1e6)
	fmt.Println(p.Sources["power.capacitance"])

	_, err = Parse([]byte("name: x\ncpu:\n  clock: {value: 16, unit: mW, source: x}\n"), "my.yaml")
	fmt.Println(err)
	// Output:
	// embedded:msp430fr5994
	// 16 MHz, 8192 B SRAM, 262144 B NVM, 2-byte commit word
	// read 100 elements: 2.90 uJ, 6824 cycles = 426.5 us
	// one power cycle: 104 uJ
	// iNAS function defaults: 100 uF
	// my.yaml:3: cpu.clock.unit: "mW" is a power, want a frequency (Hz with an SI prefix, e.g. MHz)
}
