// Package boards holds the board contract that the replay engine runs every
// board through (the simulated board, the emulated STM32, a real board on a
// serial line), its optional capabilities, and the registry of board drivers.
// The device profiles are in package boards/profiles.
package boards
