package profiles

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

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
