// Package boards holds the Board interface and its backends (sim, qemu,
// serial: later), and the device profiles.
//
// A device profile (type Profile) says what a board is and what each
// operation costs, so that the simulated board and the schedulers can predict
// time and energy. Profiles are YAML files embedded in the binary
// (profiles/*.yaml, listed by Profiles, loaded by LoadProfile) or read from a
// path; every number in them carries its unit and its source.
package boards
