// Package supply is the bench power of the harness: what a programmable
// supply channel can do, as small interfaces (in periph's style), the
// registry that opens one from a URL, and the Guard that keeps a board safe
// while a run drives it.
//
// Every channel can set a voltage and a current limit, switch its output and
// measure (Channel). What only some instruments can do is found by type
// assertion, as database/sql/driver does: hardware protection (Protector),
// lists or arbitrary waveforms played by the instrument itself (Lister,
// with its minimum dwell and maximum points stated in Capabilities), a
// trigger output per step (TriggerOuter), error-queue checkpoints (Checker).
// Quantities use periph's physic units.
//
// URLs name a channel:
//
//	tcp://HOST:PORT[?dialect=D&channel=N]         a SCPI socket (boards/supply/dialect)
//	serial:///dev/ttyUSB0?baud=9600[&dialect=D]   a SCPI instrument on a serial line
//	periph://?enable=GPIO17&dac=/dev/i2c-1:0x60&monitor=/dev/i2c-1:0x40
//	                                              a load switch, a DAC and a monitor (boards/supply/periphrail)
//
// The drivers register themselves (import them for their side effect, as
// database/sql drivers are): see Register and Open.
package supply

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"periph.io/x/conn/v3/physic"

	"github.com/batteryless/harness/boards/supply/scpi"
)

// Reading is one measurement of a channel.
type Reading struct {
	Voltage physic.ElectricPotential
	Current physic.ElectricCurrent
	Output  bool // the output is on
}

// Channel is one output of a supply: the capability every driver has.
type Channel interface {
	// String names the channel, e.g. "tcp://10.0.0.5:5025 ch1 (Keysight N6705C)".
	String() string
	SetVoltage(ctx context.Context, v physic.ElectricPotential) error
	SetCurrentLimit(ctx context.Context, i physic.ElectricCurrent) error
	SetOutput(ctx context.Context, on bool) error
	Measure(ctx context.Context) (Reading, error)
	// Capabilities describes the channel's instrument; the optional
	// interfaces the channel implements agree with it.
	Capabilities() Capabilities
	Close() error
}

// Trip says which protection has switched an output off.
type Trip struct {
	OVP bool `json:"ovp"`
	OCP bool `json:"ocp"`
}

// Any reports whether a protection tripped.
func (t Trip) Any() bool { return t.OVP || t.OCP }

func (t Trip) String() string {
	switch {
	case t.OVP && t.OCP:
		return "OVP and OCP"
	case t.OVP:
		return "OVP"
	case t.OCP:
		return "OCP"
	}
	return "none"
}

// Protector is hardware protection: an over-voltage (and, where the
// instrument has one, an over-current) trip that switches the output off
// by itself.
type Protector interface {
	// ArmProtection sets and enables OVP at ovp and, when ocp > 0 and the
	// instrument has OCP, OCP at ocp.
	ArmProtection(ctx context.Context, ovp physic.ElectricPotential, ocp physic.ElectricCurrent) error
	Tripped(ctx context.Context) (Trip, error)
	ClearProtection(ctx context.Context) error
}

// Step is one step of a list: a setpoint held for Dwell.
type Step struct {
	Voltage physic.ElectricPotential
	Current physic.ElectricCurrent
	Dwell   time.Duration
}

// Lister plays a list of setpoints in the instrument itself, timed by its
// own clock: uploaded whole, armed, then started by one trigger.
type Lister interface {
	UploadList(ctx context.Context, steps []Step) error
	ArmList(ctx context.Context) error
	TriggerList(ctx context.Context) error
}

// TriggerOuter makes the instrument pulse its trigger output at the start
// of every list step (a timing reference for the bench).
type TriggerOuter interface {
	SetTriggerOut(ctx context.Context, everyStep bool) error
}

// Checker drains the instrument's error queue at a checkpoint ("after
// configuration", "before output on", "at the end"); an entry found is an
// error naming it (a *scpi.QueueError).
type Checker interface {
	Check(ctx context.Context, where string) error
}

// Identifier tells what instrument a channel is on.
type Identifier interface {
	Identity() scpi.Identity
}

// ListLimits are what an instrument's list or arbitrary waveform can
// hold, from its programming guide.
type ListLimits struct {
	Kind            string        // how the guide calls it: "LIST", "ARB CDW", "EasyArb", ...
	MaxPoints       int           // steps in one list
	MinDwell        time.Duration // shortest step
	MaxDwell        time.Duration // longest step
	DwellResolution time.Duration
	// Triggered: the list starts on a bus trigger (else when armed).
	Triggered bool
}

// Capabilities describe a channel's instrument, as its programming guide
// states them. `harness supply identify --json` prints them.
type Capabilities struct {
	Dialect    string                   // the driver's dialect, e.g. "keysight-n67"
	Channels   int                      // outputs of the instrument
	MaxVoltage physic.ElectricPotential // of this channel's range
	MaxCurrent physic.ElectricCurrent
	OVP, OCP   bool // hardware protection (Protector)
	// List is the instrument's list (nil: none usable by Lister);
	// Arb, a second form where the instrument has one (N67xx CDW).
	List, Arb  *ListLimits
	TriggerOut bool   // TriggerOuter
	Sync       string // how to wait for completion: "*OPC?" or another query
	// MinCommandInterval is the least time between two commands the
	// instrument copes with (Siglent: about 10 ms).
	MinCommandInterval time.Duration
	// Notes are facts from the guide that limit the bench, one line each.
	Notes []string
}

// MarshalJSON writes quantities as SI numbers with their unit in the key.
func (c Capabilities) MarshalJSON() ([]byte, error) {
	type list struct {
		Kind        string  `json:"kind"`
		MaxPoints   int     `json:"max_points"`
		MinDwellS   float64 `json:"min_dwell_s"`
		MaxDwellS   float64 `json:"max_dwell_s"`
		ResolutionS float64 `json:"dwell_resolution_s"`
		Triggered   bool    `json:"triggered"`
	}
	conv := func(l *ListLimits) *list {
		if l == nil {
			return nil
		}
		return &list{l.Kind, l.MaxPoints, l.MinDwell.Seconds(), l.MaxDwell.Seconds(), l.DwellResolution.Seconds(), l.Triggered}
	}
	return json.Marshal(struct {
		Dialect            string   `json:"dialect"`
		Channels           int      `json:"channels"`
		MaxVolts           float64  `json:"max_volts"`
		MaxAmps            float64  `json:"max_amps"`
		OVP                bool     `json:"ovp"`
		OCP                bool     `json:"ocp"`
		List               *list    `json:"list"`
		Arb                *list    `json:"arb,omitempty"`
		TriggerOut         bool     `json:"trigger_out"`
		Sync               string   `json:"sync"`
		MinCommandInterval float64  `json:"min_command_interval_s"`
		Notes              []string `json:"notes,omitempty"`
	}{c.Dialect, c.Channels, Volts(c.MaxVoltage), Amps(c.MaxCurrent), c.OVP, c.OCP, conv(c.List), conv(c.Arb),
		c.TriggerOut, c.Sync, c.MinCommandInterval.Seconds(), c.Notes})
}

// Summary is the capabilities in one line, for tables.
func (c Capabilities) Summary() string {
	var parts []string
	prot := "no OVP/OCP (software limits only)"
	switch {
	case c.OVP && c.OCP:
		prot = "OVP+OCP"
	case c.OVP:
		prot = "OVP"
	}
	parts = append(parts, fmt.Sprintf("%d ch", c.Channels), fmt.Sprintf("%s/%s", c.MaxVoltage, c.MaxCurrent), prot)
	for _, l := range []*ListLimits{c.List, c.Arb} {
		if l != nil {
			parts = append(parts, fmt.Sprintf("%s %d pts, dwell >= %v", l.Kind, l.MaxPoints, l.MinDwell))
		}
	}
	if c.TriggerOut {
		parts = append(parts, "trigger out")
	}
	return strings.Join(parts, ", ")
}

// Volts converts a potential to volts.
func Volts(v physic.ElectricPotential) float64 { return float64(v) / float64(physic.Volt) }

// Amps converts a current to amperes.
func Amps(i physic.ElectricCurrent) float64 { return float64(i) / float64(physic.Ampere) }

// FromVolts converts volts (rounded to the nanovolt).
func FromVolts(v float64) physic.ElectricPotential {
	return physic.ElectricPotential(roundNano(v))
}

// FromAmps converts amperes (rounded to the nanoampere).
func FromAmps(a float64) physic.ElectricCurrent { return physic.ElectricCurrent(roundNano(a)) }

// roundNano saturates: a value beyond about 9.2 GV or GA is no setpoint,
// and a guard refuses it as over its limit.
func roundNano(x float64) int64 {
	switch {
	case x != x:
		return math.MaxInt64
	case x >= 9.2e9:
		return math.MaxInt64
	case x <= -9.2e9:
		return math.MinInt64
	case x >= 0:
		return int64(x*1e9 + 0.5)
	default:
		return int64(x*1e9 - 0.5)
	}
}
