package profiles

import "strings"

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
