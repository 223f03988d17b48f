package dialect

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"periph.io/x/conn/v3/physic"

	"github.com/batteryless/harness/boards/supply"
	"github.com/batteryless/harness/boards/supply/scpi"
)

func init() {
	must(Register(Dialect{
		Name:   "keysight-e36",
		Family: "Keysight (Agilent) E36xx single-output bench supplies (E3632A, E3633A, E3634A, ...)",
		Match: func(id scpi.Identity) bool {
			return isKeysight(id.Manufacturer) && strings.HasPrefix(strings.ToUpper(id.Model), "E36")
		},
		Port:         5025,
		Capabilities: e36Caps,
		New:          func(b *Base) supply.Channel { return &e36Channel{Base: b} },
	}))
	must(Register(Dialect{
		Name:   "keysight-n67",
		Family: "Keysight N67xx modular power systems (N6705C, N6700C, ...)",
		Match: func(id scpi.Identity) bool {
			return isKeysight(id.Manufacturer) && strings.HasPrefix(strings.ToUpper(id.Model), "N67")
		},
		Port:         5025,
		Capabilities: n67Caps,
		New:          func(b *Base) supply.Channel { return &n67Channel{Base: b} },
	}))
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func isKeysight(m string) bool {
	m = strings.ToUpper(m)
	return strings.Contains(m, "KEYSIGHT") || strings.Contains(m, "AGILENT") || strings.Contains(m, "HEWLETT")
}

// single is the error for a channel other than 1 on a one-output model.
func single(id scpi.Identity, ch int) error {
	if ch != 1 {
		return fmt.Errorf("%s %s has one output; ?channel=%d", id.Manufacturer, id.Model, ch)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Keysight E36xx.

// e36Models are the E36xx models with their highest range and protection
// (E3632A/E3633A/E3634A user's guides: OVP and OCP; the E3631A/E3630A have
// none).
var e36Models = map[string]struct {
	v, i     float64
	ovp, ocp bool
}{
	"E3632A": {30, 7, true, true}, // 15 V/7 A or 30 V/4 A
	"E3633A": {20, 10, true, true},
	"E3634A": {50, 7, true, true}, // 25 V/7 A or 50 V/4 A
	"E3640A": {20, 3, true, false},
	"E3641A": {60, 0.8, true, false},
	"E3642A": {20, 5, true, false},
	"E3643A": {60, 1.4, true, false},
	"E3644A": {20, 8, true, false},
	"E3645A": {60, 2.2, true, false},
}

func e36Caps(id scpi.Identity, ch int) (supply.Capabilities, error) {
	if err := single(id, ch); err != nil {
		return supply.Capabilities{}, err
	}
	m, ok := e36Models[strings.ToUpper(id.Model)]
	notes := []string{"one triggered step only (VOLT:TRIG, CURR:TRIG, TRIG:SOUR BUS, INIT, *TRG): no list"}
	if !ok {
		m.v, m.i = 30, 3
		notes = append(notes, "model not in the table: range assumed 30 V / 3 A, no OVP or OCP")
	}
	return supply.Capabilities{Channels: 1, MaxVoltage: supply.FromVolts(m.v), MaxCurrent: supply.FromAmps(m.i), OVP: m.ovp, OCP: m.ocp,
		List: &supply.ListLimits{Kind: "triggered level", MaxPoints: 1, Triggered: true},
		Sync: "*OPC?", Notes: notes}, nil
}

type e36Channel struct{ *Base }

func (c *e36Channel) SetVoltage(ctx context.Context, v physic.ElectricPotential) error {
	return c.C.Write(ctx, "VOLT "+V(v))
}

func (c *e36Channel) SetCurrentLimit(ctx context.Context, i physic.ElectricCurrent) error {
	return c.C.Write(ctx, "CURR "+A(i))
}

func (c *e36Channel) SetOutput(ctx context.Context, on bool) error {
	return c.C.Write(ctx, "OUTP "+onOff(on))
}

func (c *e36Channel) Measure(ctx context.Context) (supply.Reading, error) {
	return measure(ctx, c.C, "MEAS:VOLT?", "MEAS:CURR?", "OUTP?")
}

func (c *e36Channel) ArmProtection(ctx context.Context, ovp physic.ElectricPotential, ocp physic.ElectricCurrent) error {
	cmds := []string{"VOLT:PROT " + V(ovp), "VOLT:PROT:STAT ON"}
	if ocp > 0 && c.Caps.OCP {
		cmds = append(cmds, "CURR:PROT "+A(ocp), "CURR:PROT:STAT ON")
	}
	return writeAll(ctx, c.C, cmds...)
}

func (c *e36Channel) Tripped(ctx context.Context) (supply.Trip, error) {
	var t supply.Trip
	var err error
	if t.OVP, err = c.C.QueryBool(ctx, "VOLT:PROT:TRIP?"); err != nil {
		return t, err
	}
	if c.Caps.OCP {
		t.OCP, err = c.C.QueryBool(ctx, "CURR:PROT:TRIP?")
	}
	return t, err
}

func (c *e36Channel) ClearProtection(ctx context.Context) error {
	cmds := []string{"VOLT:PROT:CLE"}
	if c.Caps.OCP {
		cmds = append(cmds, "CURR:PROT:CLE")
	}
	return writeAll(ctx, c.C, cmds...)
}

// UploadList sets the one triggered level the E36xx holds.
func (c *e36Channel) UploadList(ctx context.Context, steps []supply.Step) error {
	if len(steps) != 1 {
		return fmt.Errorf("%s: holds one triggered level, not %d steps", c, len(steps))
	}
	return writeAll(ctx, c.C, "VOLT:TRIG "+V(steps[0].Voltage), "CURR:TRIG "+A(steps[0].Current), "TRIG:SOUR BUS")
}

func (c *e36Channel) ArmList(ctx context.Context) error     { return c.C.Write(ctx, "INIT") }
func (c *e36Channel) TriggerList(ctx context.Context) error { return c.C.Write(ctx, "*TRG") }

// ---------------------------------------------------------------------------
// Keysight N67xx.

var n67Model = regexp.MustCompile(`^N67\d\d[A-Z]?$`)

func n67Caps(id scpi.Identity, ch int) (supply.Capabilities, error) {
	if ch > 4 {
		return supply.Capabilities{}, fmt.Errorf("%s %s has up to 4 outputs; ?channel=%d", id.Manufacturer, id.Model, ch)
	}
	notes := []string{
		"the range depends on the module in the slot: 20 V / 5 A assumed (an N6731B-class module); the guard's limits are the board's",
		"LIST: up to 512 steps, dwell 0 to 262.144 s (1 us resolution below 0.262 s), trigger out per step (LIST:TOUT:BOST)",
		"ARB CDW: up to 65,535 points of one dwell (10.24 us to 0.3 s)",
	}
	if !n67Model.MatchString(strings.ToUpper(id.Model)) {
		notes = append(notes, "model "+id.Model+" not recognised: capabilities of an N6705C assumed")
	}
	return supply.Capabilities{Channels: 4, MaxVoltage: 20 * physic.Volt, MaxCurrent: 5 * physic.Ampere, OVP: true, OCP: true,
		List: &supply.ListLimits{Kind: "LIST", MaxPoints: 512, MinDwell: time.Microsecond, MaxDwell: 262144 * time.Microsecond,
			DwellResolution: time.Microsecond, Triggered: true},
		Arb: &supply.ListLimits{Kind: "ARB CDW", MaxPoints: 65535, MinDwell: 10240 * time.Nanosecond, MaxDwell: 300 * time.Millisecond,
			DwellResolution: 1024 * time.Nanosecond, Triggered: true},
		TriggerOut: true, Sync: "*OPC?", Notes: notes}, nil
}

type n67Channel struct {
	*Base
	tout bool // pulse the trigger out at every list step
}

func (c *n67Channel) at() string { return ",(@" + strconv.Itoa(c.Ch) + ")" }
func (c *n67Channel) on() string { return " (@" + strconv.Itoa(c.Ch) + ")" }

func (c *n67Channel) SetVoltage(ctx context.Context, v physic.ElectricPotential) error {
	return c.C.Write(ctx, "VOLT "+V(v)+c.at())
}

func (c *n67Channel) SetCurrentLimit(ctx context.Context, i physic.ElectricCurrent) error {
	return c.C.Write(ctx, "CURR "+A(i)+c.at())
}

func (c *n67Channel) SetOutput(ctx context.Context, on bool) error {
	return c.C.Write(ctx, "OUTP "+onOff(on)+c.at())
}

func (c *n67Channel) Measure(ctx context.Context) (supply.Reading, error) {
	return measure(ctx, c.C, "MEAS:VOLT?"+c.on(), "MEAS:CURR?"+c.on(), "OUTP?"+c.on())
}

// ArmProtection sets OVP; OCP on the N67xx switches the output off when it
// enters constant current, so its level is the current limit.
func (c *n67Channel) ArmProtection(ctx context.Context, ovp physic.ElectricPotential, ocp physic.ElectricCurrent) error {
	cmds := []string{"VOLT:PROT " + V(ovp) + c.at()}
	if ocp > 0 {
		cmds = append(cmds, "CURR:PROT:STAT ON"+c.at())
	}
	return writeAll(ctx, c.C, cmds...)
}

func (c *n67Channel) Tripped(ctx context.Context) (supply.Trip, error) {
	ans, err := c.C.Query(ctx, "STAT:QUES:COND?"+c.on())
	if err != nil {
		return supply.Trip{}, err
	}
	bits, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(ans, "+")))
	if err != nil {
		return supply.Trip{}, &scpi.CommandError{Instrument: c.C.String(), Command: "STAT:QUES:COND?", Err: fmt.Errorf("answer %q is not a register value", ans)}
	}
	return supply.Trip{OVP: bits&1 != 0, OCP: bits&2 != 0}, nil
}

func (c *n67Channel) ClearProtection(ctx context.Context) error {
	return c.C.Write(ctx, "OUTP:PROT:CLE"+c.on())
}

func (c *n67Channel) SetTriggerOut(ctx context.Context, everyStep bool) error {
	c.tout = everyStep
	return nil
}

// UploadList writes a LIST (up to 512 steps) or, for a longer list of one
// dwell, an ARB constant-dwell waveform; both wait for a bus trigger and
// end on their last value.
func (c *n67Channel) UploadList(ctx context.Context, steps []supply.Step) error {
	if len(steps) == 0 {
		return fmt.Errorf("%s: empty list", c)
	}
	at := c.at()
	if len(steps) <= c.Caps.List.MaxPoints {
		vs, is, ds, bs := make([]string, len(steps)), make([]string, len(steps)), make([]string, len(steps)), make([]string, len(steps))
		for i, s := range steps {
			vs[i], is[i], ds[i] = V(s.Voltage), A(s.Current), seconds(s.Dwell)
			bs[i] = "0"
			if c.tout {
				bs[i] = "1"
			}
		}
		return writeAll(ctx, c.C,
			"VOLT:MODE LIST"+at, "CURR:MODE LIST"+at,
			"LIST:VOLT "+strings.Join(vs, ",")+at,
			"LIST:CURR "+strings.Join(is, ",")+at,
			"LIST:DWEL "+strings.Join(ds, ",")+at,
			"LIST:TOUT:BOST "+strings.Join(bs, ",")+at,
			"LIST:COUN 1"+at, "LIST:TERM:LAST ON"+at, "TRIG:TRAN:SOUR BUS"+at)
	}
	for _, s := range steps[1:] {
		if s.Dwell != steps[0].Dwell {
			return fmt.Errorf("%s: %d steps: more than a LIST's 512, and an ARB CDW needs one dwell for all", c, len(steps))
		}
	}
	vs := make([]string, len(steps))
	for i, s := range steps {
		vs[i] = V(s.Voltage)
	}
	return writeAll(ctx, c.C,
		"VOLT:MODE ARB"+at, "ARB:FUNC:TYPE VOLT"+at, "ARB:FUNC:SHAP CDW"+at,
		"ARB:VOLT:CDW:DWEL "+seconds(steps[0].Dwell)+at,
		"ARB:VOLT:CDW "+strings.Join(vs, ",")+at,
		"ARB:COUN 1"+at, "ARB:TERM:LAST ON"+at, "TRIG:TRAN:SOUR BUS"+at)
}

func (c *n67Channel) ArmList(ctx context.Context) error {
	return c.C.Write(ctx, "INIT:TRAN"+c.on())
}

func (c *n67Channel) TriggerList(ctx context.Context) error {
	return c.C.Write(ctx, "TRIG:TRAN"+c.on())
}

// ---------------------------------------------------------------------------
// Shared helpers.

func onOff(on bool) string {
	if on {
		return "ON"
	}
	return "OFF"
}

func writeAll(ctx context.Context, c *scpi.Client, cmds ...string) error {
	for _, cmd := range cmds {
		if err := c.Write(ctx, cmd); err != nil {
			return err
		}
	}
	return nil
}

// measure asks the voltage, the current and the output state.
func measure(ctx context.Context, c *scpi.Client, qv, qi, qo string) (supply.Reading, error) {
	var r supply.Reading
	v, err := c.QueryFloat(ctx, qv)
	if err != nil {
		return r, err
	}
	i, err := c.QueryFloat(ctx, qi)
	if err != nil {
		return r, err
	}
	on, err := c.QueryBool(ctx, qo)
	if err != nil {
		return r, err
	}
	return supply.Reading{Voltage: supply.FromVolts(v), Current: supply.FromAmps(i), Output: on}, nil
}

// seconds formats a dwell in seconds, to the microsecond.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}
