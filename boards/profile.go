package boards

// Device profiles: the YAML schema, units, loading and validation.
//
// # File format
//
// A profile is one YAML mapping with the string fields name and description
// and the sections cpu, costs, reboot, power and adc (see the embedded files
// in profiles/ for every field). Every number is a quantity, a mapping of
// exactly three keys:
//
//	clock: {value: 16, unit: MHz, source: "MSP430FR5994 datasheet SLASE54: 16 MHz max"}
//
// The unit must have the field's dimension; it may carry an SI prefix
// (p n u µ m k M G) where the dimension allows one. The loader converts every
// value to SI base units (Hz, W, B, V, F, ohm, J, s, cycles, J/element,
// cycles/element, or a plain ratio) and records each source in
// Profile.Sources. Values must be finite and not negative.
//
// # Calibrated costs (optional)
//
// Two sections may be added under costs, as harness calibrate writes them
// (package boards/calibrate); the embedded profiles have neither:
//
//   - costs.kernels.<kernel> (a kernel of KernelNames, e.g. conv_2d): the
//     compute cost of one operator's kernel as the board's firmware runs
//     it, per task, per output value, per window tap and per input element
//     (KernelCost), each {cycles_per_*, energy_per_*}. A layer whose
//     operator has one is priced with it instead of vector_mac and the
//     scalar operations.
//   - costs.layer_scan {energy, cycles}: what the runtime spends per layer
//     before a task's own when it looks the task's schedule up, once per
//     task.
//
// Every field of a section that is present is required.
//
// # Errors
//
// Every error of ParseProfile and LoadProfile is one line. Errors about the
// content say where and what, as "file:line: field: problem", e.g.
//
//	profiles/x.yaml:12: cpu.clock.unit: "mW" is a power, want a frequency (Hz with an SI prefix, e.g. MHz)
//
// A YAML syntax error says "file:line: yaml: problem" (or "file: yaml:
// problem" when the YAML library gives no line).

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

//go:embed profiles/*.yaml
var profileFS embed.FS

// MaxProfileBytes is the largest profile file ParseProfile accepts.
const MaxProfileBytes = 1 << 20

// LinearCost is the cost of an operation on n elements (n = number of 16-bit
// elements), linear in n.
type LinearCost struct {
	EnergyPerElem float64 // J per element
	EnergyFixed   float64 // J per operation
	CyclesPerElem float64 // CPU cycles per element
	CyclesFixed   float64 // CPU cycles per operation
}

// Energy returns the energy in joules of the operation on n elements.
func (c LinearCost) Energy(n float64) float64 { return c.EnergyPerElem*n + c.EnergyFixed }

// Cycles returns the CPU cycles of the operation on n elements.
func (c LinearCost) Cycles(n float64) float64 { return c.CyclesPerElem*n + c.CyclesFixed }

// OpCost is the cost of one scalar operation.
type OpCost struct {
	Energy float64 // J
	Cycles float64 // CPU cycles
}

// KernelCost is the compute cost of one operator's kernel on a board, as
// calibrated against its firmware (costs.kernels.<kernel>). A task of the
// operator costs PerTask, plus PerOutput per output value, PerTap per
// window position inside the input summed over the outputs, and PerElement
// per input element combined (harness/plan.Needs says what each counts for
// each operator).
type KernelCost struct {
	PerTask    OpCost // once per task: dispatch, parameters, loop set-up
	PerOutput  OpCost // per output value: its loop, bias, requantization, store
	PerTap     OpCost // per window position inside the input (per output value)
	PerElement OpCost // per input element: a multiply-accumulate, a pooled value
}

// Cycles is the cycles of a task with the given counts.
func (k *KernelCost) Cycles(outputs, taps, elements float64) float64 {
	return k.PerTask.Cycles + outputs*k.PerOutput.Cycles + taps*k.PerTap.Cycles + elements*k.PerElement.Cycles
}

// Energy is the energy in joules of a task with the given counts.
func (k *KernelCost) Energy(outputs, taps, elements float64) float64 {
	return k.PerTask.Energy + outputs*k.PerOutput.Energy + taps*k.PerTap.Energy + elements*k.PerElement.Energy
}

// kernelNames are the kernels a profile may give costs for: the operators
// of harness/model, lower case.
var kernelNames = []string{"conv_2d", "depthwise_conv_2d", "fully_connected", "average_pool_2d", "max_pool_2d",
	"add", "mul", "reshape", "softmax", "quantize", "dequantize"}

// KernelNames lists the kernels of costs.kernels, in file order.
func KernelNames() []string { return slices.Clone(kernelNames) }

// RebootCost is what a power-on costs before the runtime can resume work.
type RebootCost struct {
	Energy  float64 // J
	Seconds float64 // s
}

// PowerDefaults are the default storage, thresholds and converter of the
// board's power system (the harness's power package models them).
type PowerDefaults struct {
	CapacitanceF float64 // storage capacitor, F
	VonV         float64 // turn-on threshold, V
	VoffV        float64 // brown-out threshold, V
	VmaxV        float64 // overvoltage clamp, V
	LeakageOhm   float64 // leakage resistance in parallel with the capacitor, ohm
	Efficiency   float64 // input converter efficiency, 0 < eta <= 1
}

// ADCCosts are the costs of the supply-voltage measurement that the run-time
// commit rule uses.
type ADCCosts struct {
	VoltageSense OpCost // one reading of the supply voltage
}

// Profile is a device profile. All values are in SI base units: Hz, bytes,
// J, s, F, V, ohm, W; cycles are CPU cycles at ClockHz.
type Profile struct {
	Name        string // short name, e.g. "msp430fr5994"
	Description string
	// Source is where the profile came from: "embedded:<name>" or the path
	// of the file.
	Source string

	// CPU and memories.
	ClockHz        float64 // CPU clock
	ActivePowerW   float64 // draw while running
	SleepPowerW    float64 // draw while idle between inferences
	SRAMBytes      int     // volatile RAM usable by the runtime
	AccelSRAMBytes int     // SRAM that VectorMAC operands may live in
	NVMBytes       int     // non-volatile memory for the model and state
	WordBytes      int     // the atomic NVM write unit (the commit word)
	SupplyMinV     float64 // lowest supply the board runs at
	SupplyMaxV     float64 // highest supply the board tolerates
	SupplyMaxA     float64 // current limit for a bench supply feeding the board, A

	// Costs; n is the number of 16-bit elements.
	NVMRead   LinearCost // NVM -> SRAM (DMA)
	NVMWrite  LinearCost // SRAM -> NVM
	VectorMAC LinearCost // multiply-accumulate of two vectors of length n
	Add       OpCost
	Mul       OpCost
	Div       OpCost
	Max       OpCost

	// Calibrated costs (optional, see the package documentation): per
	// kernel, by name (KernelNames; nil: none), and the runtime's cost per
	// layer scanned to find a task (nil: none).
	Kernels   map[string]*KernelCost
	LayerScan *OpCost

	Reboot RebootCost
	Power  PowerDefaults
	ADC    ADCCosts

	// Sources maps each field's path in the YAML file (e.g. "cpu.clock") to
	// the source given for its number.
	Sources map[string]string
}

// Kernel returns the calibrated cost of a kernel (KernelNames), nil when
// the profile has none.
func (p *Profile) Kernel(name string) *KernelCost {
	if p == nil || p.Kernels == nil {
		return nil
	}
	return p.Kernels[name]
}

// Clone returns a deep copy of the profile.
func (p *Profile) Clone() *Profile {
	q := *p
	q.Sources = maps.Clone(p.Sources)
	if p.Kernels != nil {
		q.Kernels = make(map[string]*KernelCost, len(p.Kernels))
		for k, v := range p.Kernels {
			c := *v
			q.Kernels[k] = &c
		}
	}
	if p.LayerScan != nil {
		c := *p.LayerScan
		q.LayerScan = &c
	}
	return &q
}

// CycleBudget returns C*(Von^2 - Voff^2)/2: the energy in joules that one
// power cycle can spend from storage alone, without harvesting and without a
// safety margin.
func (p *Profile) CycleBudget() float64 {
	c := p.Power
	return c.CapacitanceF * (c.VonV*c.VonV - c.VoffV*c.VoffV) / 2
}

// Seconds returns the time in seconds that the CPU takes for the given
// number of cycles.
func (p *Profile) Seconds(cycles float64) float64 { return cycles / p.ClockHz }

// ---------------------------------------------------------------------------
// Units.

// dimension is the physical dimension of a field.
type dimension int

const (
	dimFrequency dimension = iota
	dimPower
	dimBytes
	dimVoltage
	dimCapacitance
	dimResistance
	dimEnergy
	dimTime
	dimCycles
	dimEnergyPerElem
	dimCyclesPerElem
	dimRatio
	dimCurrent
)

// dimInfo describes the units of one dimension: either base symbols that take
// an SI prefix, or a fixed list of units with their factors.
type dimInfo struct {
	name  string   // "a frequency"
	bases []string // prefixable symbols; the first is used for display
	fixed []fixedUnit
	hint  string // what to write, for error messages
}

type fixedUnit struct {
	sym    string
	factor float64
}

var dims = map[dimension]dimInfo{
	dimFrequency:     {name: "a frequency", bases: []string{"Hz"}, hint: "Hz with an SI prefix, e.g. MHz"},
	dimPower:         {name: "a power", bases: []string{"W"}, hint: "W with an SI prefix, e.g. mW"},
	dimBytes:         {name: "a size in bytes", fixed: []fixedUnit{{"B", 1}, {"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}}, hint: "B, KiB, MiB or GiB"},
	dimVoltage:       {name: "a voltage", bases: []string{"V"}, hint: "V with an SI prefix, e.g. mV"},
	dimCapacitance:   {name: "a capacitance", bases: []string{"F"}, hint: "F with an SI prefix, e.g. uF"},
	dimResistance:    {name: "a resistance", bases: []string{"Ohm", "ohm", "Ω"}, hint: "Ohm with an SI prefix, e.g. kOhm"},
	dimEnergy:        {name: "an energy", bases: []string{"J"}, hint: "J with an SI prefix, e.g. nJ"},
	dimTime:          {name: "a time", bases: []string{"s"}, hint: "s with an SI prefix, e.g. ms"},
	dimCycles:        {name: "a number of cycles", fixed: []fixedUnit{{"cycles", 1}}, hint: "cycles"},
	dimEnergyPerElem: {name: "an energy per element", bases: []string{"J/element"}, hint: "J/element with an SI prefix, e.g. nJ/element"},
	dimCyclesPerElem: {name: "cycles per element", fixed: []fixedUnit{{"cycles/element", 1}}, hint: "cycles/element"},
	dimRatio:         {name: "a ratio", fixed: []fixedUnit{{"1", 1}, {"%", 0.01}}, hint: `1 (a plain fraction) or "%"`},
	dimCurrent:       {name: "a current", bases: []string{"A"}, hint: "A with an SI prefix, e.g. mA"},
}

// dimOrder lists the dimensions in a fixed order, for deterministic hints.
var dimOrder = []dimension{dimFrequency, dimPower, dimBytes, dimVoltage, dimCapacitance, dimResistance,
	dimEnergy, dimTime, dimCycles, dimEnergyPerElem, dimCyclesPerElem, dimRatio, dimCurrent}

// prefixes maps an SI prefix to its power of ten.
var prefixes = map[string]int{
	"p": -12, "n": -9, "u": -6, "µ": -6, "μ": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9,
}

// displayPrefixes are the prefixes Table uses, by power of ten.
var displayPrefixes = []struct {
	exp int
	sym string
}{{9, "G"}, {6, "M"}, {3, "k"}, {0, ""}, {-3, "m"}, {-6, "u"}, {-9, "n"}, {-12, "p"}}

// unitScale reports how to convert a value in unit u of dimension d to the SI
// base unit: multiply by 10^exp (exact for the prefixes used), or by factor
// for the fixed units.
func unitScale(d dimension, u string) (exp int, factor float64, ok bool) {
	info := dims[d]
	for _, f := range info.fixed {
		if u == f.sym {
			return 0, f.factor, true
		}
	}
	for _, b := range info.bases {
		if p, found := strings.CutSuffix(u, b); found {
			if e, isPrefix := prefixes[p]; isPrefix {
				return e, 1, true
			}
		}
	}
	return 0, 0, false
}

// toSI converts v in unit u of dimension d to SI base units. A prefix
// shifts the decimal exponent of v's shortest decimal form, so that 77.88 uJ
// is exactly the float64 nearest to 77.88e-6 (as the literal would be).
func toSI(v float64, d dimension, u string) (float64, bool) {
	exp, factor, ok := unitScale(d, u)
	if !ok {
		return 0, false
	}
	if exp != 0 {
		v = shiftDecimal(v, exp)
	}
	return v * factor, true
}

// shiftDecimal returns v*10^exp, correctly rounded from v's shortest
// decimal form.
func shiftDecimal(v float64, exp int) float64 {
	mant, e, found := strings.Cut(strconv.FormatFloat(v, 'e', -1, 64), "e")
	if n, err := strconv.Atoi(e); found && err == nil {
		f, err := strconv.ParseFloat(mant+"e"+strconv.Itoa(n+exp), 64)
		if err == nil || errors.Is(err, strconv.ErrRange) {
			return f
		}
	}
	if exp < 0 {
		return v / math.Pow10(-exp)
	}
	return v * math.Pow10(exp)
}

// unitError explains why u is not a unit of dimension d.
func unitError(d dimension, u string) string {
	want := dims[d]
	if u == "" {
		return fmt.Sprintf("empty unit, want %s (%s)", want.name, want.hint)
	}
	for _, o := range dimOrder {
		if _, _, ok := unitScale(o, u); ok {
			return fmt.Sprintf("%q is %s, want %s (%s)", u, dims[o].name, want.name, want.hint)
		}
	}
	return fmt.Sprintf("%q is not a known unit, want %s (%s)", u, want.name, want.hint)
}

// formatSI formats v (in SI base units) with the display unit of dimension d.
func formatSI(v float64, d dimension) string {
	num := func(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }
	info := dims[d]
	switch d {
	case dimBytes:
		for i := len(info.fixed) - 1; i > 0; i-- {
			f := info.fixed[i].factor
			if v >= f && math.Mod(v, f) == 0 {
				return num(v/f) + " " + info.fixed[i].sym
			}
		}
		return num(v) + " B"
	case dimRatio:
		return num(v)
	}
	if len(info.bases) == 0 {
		return num(v) + " " + info.fixed[0].sym
	}
	base := info.bases[0]
	a := math.Abs(v)
	if a == 0 || math.IsNaN(a) || math.IsInf(a, 0) {
		return num(v) + " " + base
	}
	for _, p := range displayPrefixes {
		if a >= math.Pow10(p.exp)*(1-1e-12) || p.exp == -12 {
			var x float64
			if p.exp < 0 {
				x = v * math.Pow10(-p.exp)
			} else {
				x = v / math.Pow10(p.exp)
			}
			return num(x) + " " + p.sym + base
		}
	}
	return num(v) + " " + base
}

// ---------------------------------------------------------------------------
// Schema.

// bound is the lower bound a field's value must respect.
type bound int

const (
	nonNegative bound = iota // >= 0
	positive                 // > 0
)

// fieldSpec is one number of a profile: its path in the YAML file, its
// dimension, and where it lives in Profile.
type fieldSpec struct {
	path string
	dim  dimension
	min  bound
	get  func(*Profile) float64
	set  func(*Profile, float64)
	// has reports whether an optional field's section is present (nil:
	// a required field, always present).
	has func(*Profile) bool
}

func floatField(path string, d dimension, min bound, ptr func(*Profile) *float64) fieldSpec {
	return fieldSpec{path: path, dim: d, min: min,
		get: func(p *Profile) float64 { return *ptr(p) },
		set: func(p *Profile, v float64) { *ptr(p) = v }}
}

func bytesField(path string, ptr func(*Profile) *int) fieldSpec {
	return fieldSpec{path: path, dim: dimBytes, min: positive,
		get: func(p *Profile) float64 { return float64(*ptr(p)) },
		set: func(p *Profile, v float64) { *ptr(p) = int(v) }}
}

func linearFields(prefix string, ptr func(*Profile) *LinearCost) []fieldSpec {
	return []fieldSpec{
		floatField(prefix+".energy_per_element", dimEnergyPerElem, nonNegative, func(p *Profile) *float64 { return &ptr(p).EnergyPerElem }),
		floatField(prefix+".energy_fixed", dimEnergy, nonNegative, func(p *Profile) *float64 { return &ptr(p).EnergyFixed }),
		floatField(prefix+".cycles_per_element", dimCyclesPerElem, nonNegative, func(p *Profile) *float64 { return &ptr(p).CyclesPerElem }),
		floatField(prefix+".cycles_fixed", dimCycles, nonNegative, func(p *Profile) *float64 { return &ptr(p).CyclesFixed }),
	}
}

func opFields(prefix string, ptr func(*Profile) *OpCost) []fieldSpec {
	return []fieldSpec{
		floatField(prefix+".energy", dimEnergy, nonNegative, func(p *Profile) *float64 { return &ptr(p).Energy }),
		floatField(prefix+".cycles", dimCycles, nonNegative, func(p *Profile) *float64 { return &ptr(p).Cycles }),
	}
}

// specs lists every number of a profile, in file order.
var specs = func() []fieldSpec {
	s := []fieldSpec{
		floatField("cpu.clock", dimFrequency, positive, func(p *Profile) *float64 { return &p.ClockHz }),
		floatField("cpu.active_power", dimPower, positive, func(p *Profile) *float64 { return &p.ActivePowerW }),
		floatField("cpu.sleep_power", dimPower, nonNegative, func(p *Profile) *float64 { return &p.SleepPowerW }),
		bytesField("cpu.sram", func(p *Profile) *int { return &p.SRAMBytes }),
		bytesField("cpu.accel_sram", func(p *Profile) *int { return &p.AccelSRAMBytes }),
		bytesField("cpu.nvm", func(p *Profile) *int { return &p.NVMBytes }),
		bytesField("cpu.word", func(p *Profile) *int { return &p.WordBytes }),
		floatField("cpu.supply_min", dimVoltage, positive, func(p *Profile) *float64 { return &p.SupplyMinV }),
		floatField("cpu.supply_max", dimVoltage, positive, func(p *Profile) *float64 { return &p.SupplyMaxV }),
		floatField("cpu.supply_max_current", dimCurrent, positive, func(p *Profile) *float64 { return &p.SupplyMaxA }),
	}
	s = append(s, linearFields("costs.nvm_read", func(p *Profile) *LinearCost { return &p.NVMRead })...)
	s = append(s, linearFields("costs.nvm_write", func(p *Profile) *LinearCost { return &p.NVMWrite })...)
	s = append(s, linearFields("costs.vector_mac", func(p *Profile) *LinearCost { return &p.VectorMAC })...)
	s = append(s, opFields("costs.add", func(p *Profile) *OpCost { return &p.Add })...)
	s = append(s, opFields("costs.mul", func(p *Profile) *OpCost { return &p.Mul })...)
	s = append(s, opFields("costs.div", func(p *Profile) *OpCost { return &p.Div })...)
	s = append(s, opFields("costs.max", func(p *Profile) *OpCost { return &p.Max })...)
	s = append(s,
		floatField("reboot.energy", dimEnergy, nonNegative, func(p *Profile) *float64 { return &p.Reboot.Energy }),
		floatField("reboot.time", dimTime, nonNegative, func(p *Profile) *float64 { return &p.Reboot.Seconds }),
		floatField("power.capacitance", dimCapacitance, positive, func(p *Profile) *float64 { return &p.Power.CapacitanceF }),
		floatField("power.von", dimVoltage, positive, func(p *Profile) *float64 { return &p.Power.VonV }),
		floatField("power.voff", dimVoltage, positive, func(p *Profile) *float64 { return &p.Power.VoffV }),
		floatField("power.vmax", dimVoltage, positive, func(p *Profile) *float64 { return &p.Power.VmaxV }),
		floatField("power.leakage", dimResistance, positive, func(p *Profile) *float64 { return &p.Power.LeakageOhm }),
		floatField("power.efficiency", dimRatio, positive, func(p *Profile) *float64 { return &p.Power.Efficiency }),
	)
	s = append(s, opFields("adc.voltage_sense", func(p *Profile) *OpCost { return &p.ADC.VoltageSense })...)
	return s
}()

// optionalSpecs lists the numbers of the optional sections, in file order:
// costs.kernels.<kernel>.* for every kernel, then costs.layer_scan.
var optionalSpecs = func() []fieldSpec {
	var s []fieldSpec
	for _, name := range kernelNames {
		kern := func(p *Profile) *KernelCost {
			if p.Kernels == nil {
				p.Kernels = map[string]*KernelCost{}
			}
			if p.Kernels[name] == nil {
				p.Kernels[name] = &KernelCost{}
			}
			return p.Kernels[name]
		}
		has := func(p *Profile) bool { return p.Kernel(name) != nil }
		prefix := "costs.kernels." + name
		for _, f := range []struct {
			key    string
			dim    dimension
			cycles bool
			op     func(*KernelCost) *OpCost
		}{
			{"cycles_per_task", dimCycles, true, func(k *KernelCost) *OpCost { return &k.PerTask }},
			{"cycles_per_output", dimCyclesPerElem, true, func(k *KernelCost) *OpCost { return &k.PerOutput }},
			{"cycles_per_tap", dimCyclesPerElem, true, func(k *KernelCost) *OpCost { return &k.PerTap }},
			{"cycles_per_element", dimCyclesPerElem, true, func(k *KernelCost) *OpCost { return &k.PerElement }},
			{"energy_per_task", dimEnergy, false, func(k *KernelCost) *OpCost { return &k.PerTask }},
			{"energy_per_output", dimEnergyPerElem, false, func(k *KernelCost) *OpCost { return &k.PerOutput }},
			{"energy_per_tap", dimEnergyPerElem, false, func(k *KernelCost) *OpCost { return &k.PerTap }},
			{"energy_per_element", dimEnergyPerElem, false, func(k *KernelCost) *OpCost { return &k.PerElement }},
		} {
			field := func(p *Profile) *float64 {
				if f.cycles {
					return &f.op(kern(p)).Cycles
				}
				return &f.op(kern(p)).Energy
			}
			s = append(s, fieldSpec{path: prefix + "." + f.key, dim: f.dim, min: nonNegative, has: has,
				get: func(p *Profile) float64 {
					if !has(p) {
						return 0
					}
					return *field(p)
				},
				set: func(p *Profile, v float64) { *field(p) = v }})
		}
	}
	scan := func(p *Profile) *OpCost {
		if p.LayerScan == nil {
			p.LayerScan = &OpCost{}
		}
		return p.LayerScan
	}
	hasScan := func(p *Profile) bool { return p.LayerScan != nil }
	for _, f := range []struct {
		key   string
		dim   dimension
		field func(*OpCost) *float64
	}{
		{"energy", dimEnergy, func(o *OpCost) *float64 { return &o.Energy }},
		{"cycles", dimCycles, func(o *OpCost) *float64 { return &o.Cycles }},
	} {
		s = append(s, fieldSpec{path: "costs.layer_scan." + f.key, dim: f.dim, min: nonNegative, has: hasScan,
			get: func(p *Profile) float64 {
				if !hasScan(p) {
					return 0
				}
				return *f.field(p.LayerScan)
			},
			set: func(p *Profile, v float64) { *f.field(scan(p)) = v }})
	}
	return s
}()

// stringFields are the top-level string fields, in file order.
var stringFields = []string{"name", "description"}

// schemaNode is a mapping of the file: its keys in order, each a section, a
// quantity (spec) or a string field.
type schemaNode struct {
	keys     []string // required, in file order
	optional []string // keys that may be absent (optional sections), in file order
	children map[string]*schemaNode
	spec     *fieldSpec // a quantity
	str      bool       // a string field
}

var schema = func() *schemaNode {
	root := &schemaNode{children: map[string]*schemaNode{}}
	add := func(n *schemaNode, key string, child *schemaNode) *schemaNode {
		if c, ok := n.children[key]; ok {
			return c
		}
		n.keys = append(n.keys, key)
		n.children[key] = child
		return child
	}
	for _, k := range stringFields {
		add(root, k, &schemaNode{str: true})
	}
	for i := range specs {
		parts := strings.Split(specs[i].path, ".")
		n := root
		for _, k := range parts[:len(parts)-1] {
			n = add(n, k, &schemaNode{children: map[string]*schemaNode{}})
		}
		add(n, parts[len(parts)-1], &schemaNode{spec: &specs[i]})
	}
	// The optional sections: each is an optional key of its parent; the
	// fields inside a section are required.
	for i := range optionalSpecs {
		parts := strings.Split(optionalSpecs[i].path, ".")
		n := root
		for d, k := range parts[:len(parts)-1] {
			c, ok := n.children[k]
			if !ok {
				c = &schemaNode{children: map[string]*schemaNode{}}
				n.children[k] = c
				if d >= 1 { // costs.kernels, costs.kernels.<kernel>, costs.layer_scan
					n.optional = append(n.optional, k)
				} else {
					n.keys = append(n.keys, k)
				}
			}
			n = c
		}
		k := parts[len(parts)-1]
		n.keys = append(n.keys, k)
		n.children[k] = &schemaNode{spec: &optionalSpecs[i]}
	}
	return root
}()

// quantityKeys are the keys of a quantity, in the order they are checked.
var quantityKeys = []string{"value", "unit", "source"}

// ---------------------------------------------------------------------------
// Errors.

// FieldError is an error about one field of a profile. Its message is one
// line: "file:line: field: problem" (without "line:" when unknown, without
// "file:" when the profile has no source).
type FieldError struct {
	File  string // file name, or the profile's Source
	Line  int    // 1-based; 0 if unknown
	Field string // path of the field, e.g. "power.voff"
	Msg   string
}

func (e *FieldError) Error() string {
	var s string
	switch {
	case e.File != "" && e.Line > 0:
		s = fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
	case e.File != "":
		s = fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Msg)
	default:
		s = fmt.Sprintf("%s: %s", e.Field, e.Msg)
	}
	return oneLine(s)
}

// oneLine replaces control characters and line separators with spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) {
			return ' '
		}
		return r
	}, s)
}

// ---------------------------------------------------------------------------
// Parsing.

// parser walks a YAML tree against the schema.
type parser struct {
	file  string
	p     *Profile
	lines map[string]int // field path -> line of its value
}

func (ps *parser) errf(line int, field, format string, args ...any) error {
	return &FieldError{File: ps.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// resolve follows aliases (bounded: an alias never points at an alias).
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; i < 4 && n != nil && n.Kind == yaml.AliasNode; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing (null)"
		}
		return "a scalar"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	return "an unknown node"
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// pair is one key and value of a mapping.
type pair struct {
	key  string
	line int // the key's line
	val  *yaml.Node
}

// mapping checks that n is a mapping and calls fn on its pairs in document
// order, each after checking that its key is one of allowed or optional and
// appears once; then it reports the first key of allowed that is missing,
// at line (the line of the mapping's own key).
func (ps *parser) mapping(n *yaml.Node, field string, line int, allowed, optional []string, want string, fn func(pair) error) error {
	if n == nil || n.Kind != yaml.MappingNode {
		what := "nothing"
		if n != nil {
			what = kindName(n)
			line = n.Line
		}
		return ps.errf(line, field, "want %s, got %s", want, what)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if k == nil || k.Kind != yaml.ScalarNode {
			l := n.Line
			if k != nil {
				l = k.Line
			}
			return ps.errf(l, field, "keys must be plain names, got %s", kindNameOr(k))
		}
		if !slices.Contains(allowed, k.Value) && !slices.Contains(optional, k.Value) {
			return ps.errf(k.Line, join(field, quoteKey(k.Value)), "unknown field (want %s)", strings.Join(slices.Concat(allowed, optional), ", "))
		}
		if first, dup := seen[k.Value]; dup {
			return ps.errf(k.Line, join(field, k.Value), "duplicate field (first at line %d)", first)
		}
		seen[k.Value] = k.Line
		if err := fn(pair{key: k.Value, line: k.Line, val: resolve(n.Content[i+1])}); err != nil {
			return err
		}
	}
	for _, a := range allowed {
		if _, ok := seen[a]; !ok {
			return ps.errf(line, join(field, a), "missing field")
		}
	}
	return nil
}

var plainKeyRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// quoteKey returns a key as it can appear in a field path: as is when plain,
// else quoted (and cut to 64 bytes).
func quoteKey(k string) string {
	if plainKeyRE.MatchString(k) {
		return k
	}
	if len(k) > 64 {
		k = k[:64] + "..."
	}
	return strconv.Quote(k)
}

func kindNameOr(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	return kindName(n)
}

// section parses a mapping of the schema, in document order.
func (ps *parser) section(n *yaml.Node, s *schemaNode, field string, line int) error {
	return ps.mapping(n, field, line, s.keys, s.optional, "a mapping", func(kv pair) error {
		child, path := s.children[kv.key], join(field, kv.key)
		switch {
		case child.str:
			return ps.str(kv.val, path, kv.line)
		case child.spec != nil:
			return ps.quantity(kv.val, child.spec, kv.line)
		}
		return ps.section(kv.val, child, path, kv.line)
	})
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// str parses a top-level string field.
func (ps *parser) str(n *yaml.Node, field string, line int) error {
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		return ps.errf(line, field, "want a string, got %s", kindNameOr(n))
	}
	ps.lines[field] = n.Line
	switch field {
	case "name":
		ps.p.Name = n.Value
	case "description":
		ps.p.Description = n.Value
	}
	return nil
}

// quantity parses {value, unit, source} into the field of spec.
func (ps *parser) quantity(n *yaml.Node, spec *fieldSpec, line int) error {
	vals := map[string]*yaml.Node{}
	err := ps.mapping(n, spec.path, line, quantityKeys, nil, "a quantity {value, unit, source}", func(kv pair) error {
		vals[kv.key] = kv.val
		return nil
	})
	if err != nil {
		return err
	}
	vn, un, sn := vals["value"], vals["unit"], vals["source"]

	// The value: a YAML number.
	vf := spec.path + ".value"
	if vn.Kind != yaml.ScalarNode || (vn.ShortTag() != "!!int" && vn.ShortTag() != "!!float") {
		what := kindName(vn)
		if vn.Kind == yaml.ScalarNode && vn.ShortTag() != "!!null" {
			what = strconv.Quote(vn.Value)
		}
		return ps.errf(vn.Line, vf, "want a number, got %s", what)
	}
	var v float64
	if err := vn.Decode(&v); err != nil {
		return ps.errf(vn.Line, vf, "%q is not a number", vn.Value)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return ps.errf(vn.Line, vf, "%s must be finite and not negative", vn.Value)
	}

	// The unit: one of the field's dimension.
	uf := spec.path + ".unit"
	if un.Kind != yaml.ScalarNode || un.ShortTag() == "!!null" {
		return ps.errf(un.Line, uf, "want a unit, got %s", kindName(un))
	}
	si, ok := toSI(v, spec.dim, un.Value)
	if !ok {
		return ps.errf(un.Line, uf, "%s", unitError(spec.dim, un.Value))
	}
	if math.IsInf(si, 0) || math.IsNaN(si) {
		return ps.errf(vn.Line, vf, "%s %s overflows", vn.Value, un.Value)
	}
	if spec.dim == dimBytes && (si != math.Trunc(si) || si > 1<<53) {
		return ps.errf(vn.Line, vf, "%s %s is not a whole number of bytes (at most 2^53)", vn.Value, un.Value)
	}

	// The source: a non-empty string.
	sf := spec.path + ".source"
	if sn.Kind != yaml.ScalarNode || sn.ShortTag() == "!!null" || strings.TrimSpace(sn.Value) == "" {
		return ps.errf(sn.Line, sf, "want a non-empty source (a document, a measurement, or \"assumed: why\")")
	}

	spec.set(ps.p, si)
	ps.p.Sources[spec.path] = strings.TrimSpace(sn.Value)
	ps.lines[spec.path] = vn.Line
	return nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// yamlParserProblems are the problems of yaml.v3's parser (as opposed to its
// scanner). yaml.v3 v3.0.1 reports their line 0-based (decode.go, fail: only
// scanner errors get the +1), and no line at all for 0.
var yamlParserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found undefined tag handle",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
}

// yamlError turns an error of the YAML library into one line with file:line
// (or file alone when the library gives no line).
//
// yaml.v3 reports a parser error at the start of the enclosing block or flow
// collection (its context mark), and 0-based. For such errors in files up to
// refineMaxBytes, the line is instead the first line at which the file's
// prefix fails with the same error: where a reader would look.
func yamlError(file string, data []byte, err error) error {
	msg := oneLine(err.Error())
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return fmt.Errorf("%s: %s", file, msg)
	}
	line, _ := strconv.Atoi(m[1]) // 0 when absent
	if slices.Contains(yamlParserProblems, m[2]) {
		line++
		if l := firstFailingLine(data, err.Error()); l > 0 {
			line = l
		}
	}
	if line <= 0 {
		return fmt.Errorf("%s: yaml: %s", file, m[2])
	}
	return fmt.Errorf("%s:%d: yaml: %s", file, line, m[2])
}

// refineMaxBytes bounds the files whose parser errors firstFailingLine
// locates.
const refineMaxBytes = 64 << 10

// firstFailingLine returns the 1-based number of the first line such that
// the file up to and including it fails to parse with the error msg, or 0 if
// the file is too large to search. The parser streams, so once a prefix
// holds the offending token it fails as the whole file does, and shorter
// prefixes fail otherwise or not at all: a binary search finds the line in
// a few parses.
func firstFailingLine(data []byte, msg string) int {
	if len(data) > refineMaxBytes {
		return 0
	}
	var ends []int // ends[k] is the end of line k+1
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	fails := func(k int) bool {
		err := checkYAML(data[:ends[k]])
		return err != nil && err.Error() == msg
	}
	lo, hi := 0, len(ends)-1
	if !fails(hi) {
		return 0
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo + 1
}

// checkYAML parses every document of data, never panicking.
func checkYAML(data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// decodeYAML decodes exactly one YAML document, never panicking.
func decodeYAML(data []byte, file string) (root *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("%s: yaml: %s", file, oneLine(fmt.Sprint(r)))
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s:1: profile: empty file", file)
		}
		return nil, yamlError(file, data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, yamlError(file, data, err)
		}
		return nil, fmt.Errorf("%s:%d: profile: a second YAML document; a profile is one document", file, extra.Line)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("%s:1: profile: empty file", file)
	}
	return resolve(doc.Content[0]), nil
}

// ParseProfile parses and validates a profile from YAML. name is the file
// name used in error messages and recorded as the profile's Source.
func ParseProfile(data []byte, name string) (*Profile, error) {
	if len(data) > MaxProfileBytes {
		return nil, fmt.Errorf("%s: profile: %d bytes, more than the %d-byte limit", oneLine(name), len(data), MaxProfileBytes)
	}
	p, err := parse(data, oneLine(name))
	if err != nil {
		return nil, err
	}
	p.Source = name
	return p, nil
}

func parse(data []byte, file string) (*Profile, error) {
	root, err := decodeYAML(data, file)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, fmt.Errorf("%s:1: profile: empty file", file)
	}
	ps := &parser{file: file, p: &Profile{Sources: map[string]string{}}, lines: map[string]int{}}
	if err := ps.section(root, schema, "", root.Line); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) && fe.Field == "" {
			fe.Field = "profile"
		}
		return nil, err
	}
	if err := ps.p.Validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.File, fe.Line = file, ps.lines[fe.Field]
			return nil, fe
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return ps.p, nil
}

// ---------------------------------------------------------------------------
// Validation.

// Validate checks every field and the consistency between fields; it
// returns the first problem as a *FieldError naming the field by its YAML
// path, e.g. "power.voff: 2.9 V must be below power.von (2.8 V)".
func (p *Profile) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{File: p.Source, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if !nameRE.MatchString(p.Name) {
		return bad("name", "%q must be lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", p.Name)
	}
	for _, name := range slices.Sorted(maps.Keys(p.Kernels)) {
		if !slices.Contains(kernelNames, name) || p.Kernels[name] == nil {
			return bad("costs.kernels."+quoteKey(name), "unknown kernel (want %s)", strings.Join(kernelNames, ", "))
		}
	}
	for _, s := range slices.Concat(specs, optionalSpecs) {
		if s.has != nil && !s.has(p) {
			continue
		}
		v := s.get(p)
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0) || v < 0:
			return bad(s.path, "%s must be finite and not negative", formatSI(v, s.dim))
		case s.min == positive && v == 0:
			return bad(s.path, "must be positive")
		}
	}
	fv := formatSI
	switch {
	case p.SleepPowerW >= p.ActivePowerW:
		return bad("cpu.sleep_power", "%s must be below cpu.active_power (%s)", fv(p.SleepPowerW, dimPower), fv(p.ActivePowerW, dimPower))
	case p.AccelSRAMBytes > p.SRAMBytes:
		return bad("cpu.accel_sram", "%s must not exceed cpu.sram (%s)", fv(float64(p.AccelSRAMBytes), dimBytes), fv(float64(p.SRAMBytes), dimBytes))
	case p.WordBytes != 1 && p.WordBytes != 2 && p.WordBytes != 4 && p.WordBytes != 8:
		return bad("cpu.word", "%d B must be 1, 2, 4 or 8 bytes", p.WordBytes)
	case p.WordBytes > p.NVMBytes:
		return bad("cpu.word", "%d B must not exceed cpu.nvm (%s)", p.WordBytes, fv(float64(p.NVMBytes), dimBytes))
	case p.SupplyMinV >= p.SupplyMaxV:
		return bad("cpu.supply_min", "%s must be below cpu.supply_max (%s)", fv(p.SupplyMinV, dimVoltage), fv(p.SupplyMaxV, dimVoltage))
	}
	w := p.Power
	switch {
	case w.VoffV >= w.VonV:
		return bad("power.voff", "%s must be below power.von (%s)", fv(w.VoffV, dimVoltage), fv(w.VonV, dimVoltage))
	case w.VonV > w.VmaxV:
		return bad("power.von", "%s must not exceed power.vmax (%s)", fv(w.VonV, dimVoltage), fv(w.VmaxV, dimVoltage))
	case w.VmaxV > p.SupplyMaxV:
		return bad("power.vmax", "%s must not exceed cpu.supply_max (%s): the clamp protects the board", fv(w.VmaxV, dimVoltage), fv(p.SupplyMaxV, dimVoltage))
	case w.VoffV < p.SupplyMinV:
		return bad("power.voff", "%s must not be below cpu.supply_min (%s): the board must brown out before it leaves its supply range", fv(w.VoffV, dimVoltage), fv(p.SupplyMinV, dimVoltage))
	case w.Efficiency > 1:
		return bad("power.efficiency", "%s must be at most 1", fv(w.Efficiency, dimRatio))
	case math.IsInf(w.CapacitanceF*w.VmaxV*w.VmaxV, 0) || math.IsInf(w.CapacitanceF*w.LeakageOhm, 0) || 2/(w.CapacitanceF*w.LeakageOhm) == math.Inf(1):
		return bad("power.capacitance", "%s with power.leakage %s overflows float64", fv(w.CapacitanceF, dimCapacitance), fv(w.LeakageOhm, dimResistance))
	}
	return nil
}

// ---------------------------------------------------------------------------
// Loading.

// Profiles returns the names of the embedded profiles, sorted.
func Profiles() []string {
	entries, err := fs.ReadDir(profileFS, "profiles")
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// LoadProfile loads an embedded profile by name (see Profiles), or else the
// YAML file at the path nameOrPath. An embedded name wins over a file of the
// same name in the working directory: write "./name" for the file.
func LoadProfile(nameOrPath string) (*Profile, error) {
	if !strings.ContainsAny(nameOrPath, `/\`) && nameOrPath != "" {
		data, err := profileFS.ReadFile(path.Join("profiles", nameOrPath+".yaml"))
		if err == nil {
			p, err := parse(data, "boards/profiles/"+nameOrPath+".yaml")
			if err != nil {
				return nil, err
			}
			if p.Name != nameOrPath {
				return nil, fmt.Errorf("boards/profiles/%s.yaml: name: %q differs from the file name", nameOrPath, p.Name)
			}
			p.Source = "embedded:" + nameOrPath
			return p, nil
		}
	}
	data, err := readLimited(nameOrPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !strings.ContainsAny(nameOrPath, `/\`) && !strings.HasSuffix(nameOrPath, ".yaml") && !strings.HasSuffix(nameOrPath, ".yml") {
			return nil, fmt.Errorf("profile %q: neither an embedded profile (%s) nor a file", oneLine(nameOrPath), strings.Join(Profiles(), ", "))
		}
		return nil, fmt.Errorf("profile: %s", oneLine(err.Error()))
	}
	return ParseProfile(data, nameOrPath)
}

// readLimited reads a file of at most MaxProfileBytes (+1 to detect more).
func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxProfileBytes+1))
}

// ---------------------------------------------------------------------------
// Table.

// TableHeader is the header of the rows that Table returns.
var TableHeader = []string{"field", "value", "source"}

// Table returns one row per field for people: the field's path in the YAML
// file, its value with its unit, and its source. The first rows are the
// profile's name (with where it came from) and description.
func (p *Profile) Table() [][]string {
	rows := [][]string{
		{"name", p.Name, p.Source},
		{"description", p.Description, ""},
	}
	for _, s := range slices.Concat(specs, optionalSpecs) {
		if s.has != nil && !s.has(p) {
			continue
		}
		rows = append(rows, []string{s.path, formatSI(s.get(p), s.dim), p.Sources[s.path]})
	}
	return rows
}

// ---------------------------------------------------------------------------
// Fields by path, and writing a profile.

// allSpecs are the required and the optional numbers, in file order.
var allSpecs = slices.Concat(specs, optionalSpecs)

func specOf(path string) *fieldSpec {
	for i := range allSpecs {
		if allSpecs[i].path == path {
			return &allSpecs[i]
		}
	}
	return nil
}

// FieldPaths lists the YAML paths of the numbers the profile has, in file
// order: every required one, and those of the optional sections present.
func (p *Profile) FieldPaths() []string {
	var paths []string
	for _, s := range allSpecs {
		if s.has == nil || s.has(p) {
			paths = append(paths, s.path)
		}
	}
	return paths
}

// Field returns the number at a YAML path (e.g. "costs.add.cycles") in SI
// base units; false when the path is no number of the schema or its
// optional section is absent.
func (p *Profile) Field(path string) (float64, bool) {
	s := specOf(path)
	if s == nil || s.has != nil && !s.has(p) {
		return 0, false
	}
	return s.get(p), true
}

// SetField sets the number at a YAML path (SI base units). Setting a field
// of an absent optional section adds the section, its other fields 0. The
// source is not changed.
func (p *Profile) SetField(path string, v float64) error {
	s := specOf(path)
	if s == nil {
		return fmt.Errorf("profile: %s: no such field", oneLine(path))
	}
	s.set(p, v)
	return nil
}

// YAML writes the profile in the file format ParseProfile reads, with every
// number's source; header, if not empty, becomes comment lines at the top.
// Numbers are written with a unit of their dimension (an SI prefix where
// the value reads better with one) and in full precision: the file parses
// back to the same values.
func (p *Profile) YAML(header string) []byte {
	var b bytes.Buffer
	if header != "" {
		for _, l := range strings.Split(strings.TrimRight(header, "\n"), "\n") {
			b.WriteString(strings.TrimRight("# "+oneLine(l), " ") + "\n")
		}
	}
	fmt.Fprintf(&b, "name: %s\ndescription: %s\n", yamlString(p.Name), yamlString(p.Description))
	var write func(n *schemaNode, prefix string, depth int)
	write = func(n *schemaNode, prefix string, depth int) {
		indent := strings.Repeat("  ", depth)
		width := 0
		for _, k := range n.keys {
			if n.children[k].spec != nil {
				width = max(width, len(k))
			}
		}
		for _, k := range slices.Concat(n.keys, n.optional) {
			c, path := n.children[k], join(prefix, k)
			if c.str {
				continue
			}
			if c.spec == nil {
				if slices.Contains(n.optional, k) && !hasAny(p, path) {
					continue
				}
				if depth == 0 {
					b.WriteString("\n")
				}
				fmt.Fprintf(&b, "%s%s:\n", indent, k)
				write(c, path, depth+1)
				continue
			}
			val, unit := formatExact(c.spec.get(p), c.spec.dim)
			fmt.Fprintf(&b, "%s%s:%s {value: %s, unit: %s, source: %s}\n", indent, k, strings.Repeat(" ", width-len(k)+1),
				val, yamlString(unit), yamlString(p.Sources[path]))
		}
	}
	write(schema, "", 0)
	return b.Bytes()
}

// hasAny reports whether an optional section (or a section holding
// optional ones) at path has a number in p.
func hasAny(p *Profile, path string) bool {
	for _, s := range optionalSpecs {
		if strings.HasPrefix(s.path, path+".") && s.has(p) {
			return true
		}
	}
	return false
}

// yamlString quotes s as a YAML double-quoted scalar (Go's escapes are
// YAML's for the characters strconv.Quote escapes).
func yamlString(s string) string { return strconv.Quote(s) }

// formatExact formats v (SI base units) as a value and a unit of dimension
// d that toSI converts back to exactly v: with the prefix or multiple that
// reads best when that round trip is exact, else in the base unit.
func formatExact(v float64, d dimension) (string, string) {
	num := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	info := dims[d]
	base := ""
	if len(info.bases) > 0 {
		base = info.bases[0]
	} else {
		base = info.fixed[0].sym
	}
	exact := func(x float64, unit string) bool {
		y, ok := toSI(x, d, unit)
		return ok && y == v
	}
	switch {
	case d == dimBytes:
		for i := len(info.fixed) - 1; i > 0; i-- {
			f := info.fixed[i].factor
			if v >= f && math.Mod(v, f) == 0 && exact(v/f, info.fixed[i].sym) {
				return num(v / f), info.fixed[i].sym
			}
		}
	case len(info.bases) > 0 && v != 0 && !math.IsInf(v, 0) && !math.IsNaN(v):
		a := math.Abs(v)
		for _, pr := range displayPrefixes {
			if a >= math.Pow10(pr.exp)*(1-1e-12) || pr.exp == -12 {
				x := shiftDecimal(v, -pr.exp)
				if exact(x, pr.sym+base) {
					return num(x), pr.sym + base
				}
				break
			}
		}
	}
	return num(v), base
}
