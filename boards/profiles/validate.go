package profiles

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
)

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
