package profiles

import (
	"embed"
	"maps"
	"slices"
)

//go:embed *.yaml
var profileFS embed.FS

// MaxBytes is the largest profile file Parse accepts.
const MaxBytes = 1 << 20

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
