// Package profiles holds the device profiles: what a board is and what each
// operation costs, so that the simulated board and the schedulers can predict
// time and energy. Profiles are YAML files embedded in the binary (this
// folder's *.yaml, listed by Names, loaded by Load) or read from a path;
// every number in them carries its unit and its source.
//
// The YAML schema, units, loading and validation:
//
// # File format
//
// A profile is one YAML mapping with the string fields name and description
// and the sections cpu, costs, reboot, power and adc (see the embedded files
// in this folder for every field). Every number is a quantity, a mapping of
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
// Every error of Parse and Load is one line. Errors about the
// content say where and what, as "file:line: field: problem", e.g.
//
//	profiles/x.yaml:12: cpu.clock.unit: "mW" is a power, want a frequency (Hz with an SI prefix, e.g. MHz)
//
// A YAML syntax error says "file:line: yaml: problem" (or "file: yaml:
// problem" when the YAML library gives no line).
package profiles
