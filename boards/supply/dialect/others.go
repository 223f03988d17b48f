package dialect

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"periph.io/x/conn/v3/physic"

	"github.com/batteryless/harness/boards/supply"
	"github.com/batteryless/harness/boards/supply/scpi"
)

func init() {
	must(Register(Dialect{
		Name:   "rigol-dp800",
		Family: "Rigol DP800 (DP832, DP831, DP821, ...)",
		Match: func(id scpi.Identity) bool {
			return strings.Contains(strings.ToUpper(id.Manufacturer), "RIGOL") && strings.HasPrefix(strings.ToUpper(id.Model), "DP8")
		},
		Port:         5555,
		Capabilities: dp800Caps,
		New:          func(b *Base) supply.Channel { return &dp800Channel{Base: b} },
	}))
	must(Register(Dialect{
		Name:   "siglent-spd3303x",
		Family: "Siglent SPD3303X and SPD3303X-E",
		Match: func(id scpi.Identity) bool {
			return strings.Contains(strings.ToUpper(id.Manufacturer), "SIGLENT") && strings.HasPrefix(strings.ToUpper(id.Model), "SPD3303")
		},
		Port: 5025,
		// About 10 ms between queries, and no *OPC?: a harmless query
		// syncs instead.
		Client:       scpi.Options{MinInterval: 10 * time.Millisecond, SyncQuery: "*IDN?", SyncAnswer: ""},
		Capabilities: spdCaps,
		New:          func(b *Base) supply.Channel { return &spdChannel{Base: b} },
	}))
	must(Register(Dialect{
		Name:   "keithley-2280s",
		Family: "Keithley 2280S precision supplies (2280S-32-6, 2280S-60-3)",
		Match: func(id scpi.Identity) bool {
			return strings.Contains(strings.ToUpper(id.Manufacturer), "KEITHLEY") && strings.Contains(strings.ToUpper(id.Model), "2280S")
		},
		Port:         5025,
		Capabilities: k2280Caps,
		New:          func(b *Base) supply.Channel { return &k2280Channel{Base: b} },
	}))
	must(Register(Dialect{
		Name:   "rs-hmp",
		Family: "R&S (HAMEG) HMP series and NGx (NGM, NGL, NGP) supplies",
		Match: func(id scpi.Identity) bool {
			m, mod := strings.ToUpper(id.Manufacturer), strings.ToUpper(id.Model)
			return (strings.Contains(m, "HAMEG") || strings.Contains(m, "ROHDE")) && (strings.HasPrefix(mod, "HMP") || strings.HasPrefix(mod, "NG"))
		},
		Port:         5025,
		Capabilities: hmpCaps,
		New:          func(b *Base) supply.Channel { return &hmpChannel{Base: b} },
	}))
}

// ---------------------------------------------------------------------------
// Rigol DP800.

var dp800Ranges = map[string][]float64{ // per channel: volts, amps
	"DP832":  {30, 3, 30, 3, 5, 3},
	"DP832A": {30, 3, 30, 3, 5, 3},
	"DP831":  {8, 5, 30, 2, 30, 2},
	"DP831A": {8, 5, 30, 2, 30, 2},
	"DP821":  {60, 1, 8, 10},
	"DP821A": {60, 1, 8, 10},
	"DP811":  {20, 10},
	"DP811A": {20, 10},
}

func dp800Caps(id scpi.Identity, ch int) (supply.Capabilities, error) {
	r, ok := dp800Ranges[strings.ToUpper(id.Model)]
	notes := []string{
		"raw socket on port 5555",
		"timer (:TIMEr): steps of 1 s minimum, so not offered as a list: too coarse to replay harvested energy",
	}
	if !ok {
		r = []float64{30, 3, 30, 3, 5, 3}
		notes = append(notes, "model "+id.Model+" not in the table: a DP832's ranges assumed")
	}
	n := len(r) / 2
	if ch > n {
		return supply.Capabilities{}, fmt.Errorf("%s %s has %d outputs; ?channel=%d", id.Manufacturer, id.Model, n, ch)
	}
	return supply.Capabilities{Channels: n, MaxVoltage: supply.FromVolts(r[2*ch-2]), MaxCurrent: supply.FromAmps(r[2*ch-1]),
		OVP: true, OCP: true, Sync: "*OPC?", Notes: notes}, nil
}

type dp800Channel struct{ *Base }

func (c *dp800Channel) ch() string { return "CH" + strconv.Itoa(c.Ch) }

func (c *dp800Channel) SetVoltage(ctx context.Context, v physic.ElectricPotential) error {
	return c.C.Write(ctx, ":APPL "+c.ch()+","+V(v))
}

func (c *dp800Channel) SetCurrentLimit(ctx context.Context, i physic.ElectricCurrent) error {
	return c.C.Write(ctx, ":SOUR"+strconv.Itoa(c.Ch)+":CURR "+A(i))
}

func (c *dp800Channel) SetOutput(ctx context.Context, on bool) error {
	return c.C.Write(ctx, ":OUTP "+c.ch()+","+onOff(on))
}

func (c *dp800Channel) Measure(ctx context.Context) (supply.Reading, error) {
	return measure(ctx, c.C, ":MEAS:VOLT? "+c.ch(), ":MEAS:CURR? "+c.ch(), ":OUTP? "+c.ch())
}

func (c *dp800Channel) ArmProtection(ctx context.Context, ovp physic.ElectricPotential, ocp physic.ElectricCurrent) error {
	cmds := []string{":OUTP:OVP:VAL " + c.ch() + "," + V(ovp), ":OUTP:OVP " + c.ch() + ",ON"}
	if ocp > 0 {
		cmds = append(cmds, ":OUTP:OCP:VAL "+c.ch()+","+A(ocp), ":OUTP:OCP "+c.ch()+",ON")
	}
	return writeAll(ctx, c.C, cmds...)
}

func (c *dp800Channel) Tripped(ctx context.Context) (supply.Trip, error) {
	var t supply.Trip
	var err error
	if t.OVP, err = c.C.QueryBool(ctx, ":OUTP:OVP:QUES? "+c.ch()); err != nil {
		return t, err
	}
	t.OCP, err = c.C.QueryBool(ctx, ":OUTP:OCP:QUES? "+c.ch())
	return t, err
}

func (c *dp800Channel) ClearProtection(ctx context.Context) error {
	return writeAll(ctx, c.C, ":OUTP:OVP:CLE "+c.ch(), ":OUTP:OCP:CLE "+c.ch())
}

// ---------------------------------------------------------------------------
// Siglent SPD3303X.

func spdCaps(id scpi.Identity, ch int) (supply.Capabilities, error) {
	if ch > 2 {
		return supply.Capabilities{}, fmt.Errorf("%s %s has 2 programmable outputs (CH3 is fixed); ?channel=%d", id.Manufacturer, id.Model, ch)
	}
	return supply.Capabilities{Channels: 2, MaxVoltage: 32 * physic.Volt, MaxCurrent: 3200 * physic.MilliAmpere,
		Sync: "*IDN? (the SPD3303X has no *OPC?)", MinCommandInterval: 10 * time.Millisecond,
		Notes: []string{
			"no OVP or OCP command: the current limit and the guard's software checks are the protection",
			"about 10 ms needed between queries (a query sent sooner is lost)",
			"timer: 5 groups of at least 1 s each, not offered as a list",
		}}, nil
}

type spdChannel struct{ *Base }

func (c *spdChannel) ch() string { return "CH" + strconv.Itoa(c.Ch) }

func (c *spdChannel) SetVoltage(ctx context.Context, v physic.ElectricPotential) error {
	return c.C.Write(ctx, c.ch()+":VOLT "+V(v))
}

func (c *spdChannel) SetCurrentLimit(ctx context.Context, i physic.ElectricCurrent) error {
	return c.C.Write(ctx, c.ch()+":CURR "+A(i))
}

func (c *spdChannel) SetOutput(ctx context.Context, on bool) error {
	return c.C.Write(ctx, "OUTP "+c.ch()+","+onOff(on))
}

// Measure reads the output state from SYST:STAT? (bit 4: CH1 on, bit 5:
// CH2 on), the SPD3303X having no output query.
func (c *spdChannel) Measure(ctx context.Context) (supply.Reading, error) {
	var r supply.Reading
	v, err := c.C.QueryFloat(ctx, "MEAS:VOLT? "+c.ch())
	if err != nil {
		return r, err
	}
	i, err := c.C.QueryFloat(ctx, "MEAS:CURR? "+c.ch())
	if err != nil {
		return r, err
	}
	ans, err := c.C.Query(ctx, "SYST:STAT?")
	if err != nil {
		return r, err
	}
	w, perr := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(ans), "0x"), "0X"), 16, 32)
	if perr != nil {
		return r, &scpi.CommandError{Instrument: c.C.String(), Command: "SYST:STAT?", Err: fmt.Errorf("answer %q is not a hexadecimal status word", ans)}
	}
	return supply.Reading{Voltage: supply.FromVolts(v), Current: supply.FromAmps(i), Output: w&(1<<(3+c.Ch)) != 0}, nil
}

// ---------------------------------------------------------------------------
// Keithley 2280S.

func k2280Caps(id scpi.Identity, ch int) (supply.Capabilities, error) {
	if err := single(id, ch); err != nil {
		return supply.Capabilities{}, err
	}
	v, i := 32.0, 6.0
	if strings.Contains(strings.ToUpper(id.Model), "60-3") {
		v, i = 60, 3.2
	}
	return supply.Capabilities{Channels: 1, MaxVoltage: supply.FromVolts(v), MaxCurrent: supply.FromAmps(i), OVP: true, OCP: true,
		List: &supply.ListLimits{Kind: "LIST", MaxPoints: 99, MinDwell: time.Millisecond, MaxDwell: 60 * time.Second,
			DwellResolution: time.Millisecond, Triggered: true},
		Sync: "*OPC?",
		Notes: []string{
			"lists: 9 lists of up to 99 points, dwell up to 60 s (reference manual); the 1 ms minimum dwell and the recall/trigger sequence are assumed, check on the bench",
		}}, nil
}

type k2280Channel struct{ *Base }

func (c *k2280Channel) SetVoltage(ctx context.Context, v physic.ElectricPotential) error {
	return c.C.Write(ctx, ":VOLT "+V(v))
}

func (c *k2280Channel) SetCurrentLimit(ctx context.Context, i physic.ElectricCurrent) error {
	return c.C.Write(ctx, ":CURR "+A(i))
}

func (c *k2280Channel) SetOutput(ctx context.Context, on bool) error {
	return c.C.Write(ctx, ":OUTP "+onOff(on))
}

func (c *k2280Channel) Measure(ctx context.Context) (supply.Reading, error) {
	return measure(ctx, c.C, ":MEAS:VOLT?", ":MEAS:CURR?", ":OUTP?")
}

func (c *k2280Channel) ArmProtection(ctx context.Context, ovp physic.ElectricPotential, ocp physic.ElectricCurrent) error {
	cmds := []string{":VOLT:PROT " + V(ovp)}
	if ocp > 0 {
		cmds = append(cmds, ":CURR:PROT "+A(ocp), ":CURR:PROT:STAT ON")
	}
	return writeAll(ctx, c.C, cmds...)
}

func (c *k2280Channel) Tripped(ctx context.Context) (supply.Trip, error) {
	var t supply.Trip
	var err error
	if t.OVP, err = c.C.QueryBool(ctx, ":VOLT:PROT:TRIP?"); err != nil {
		return t, err
	}
	t.OCP, err = c.C.QueryBool(ctx, ":CURR:PROT:TRIP?")
	return t, err
}

func (c *k2280Channel) ClearProtection(ctx context.Context) error {
	return c.C.Write(ctx, ":OUTP:PROT:CLE")
}

// UploadList writes list 1 (voltages, currents, dwells as quoted strings),
// saves it and recalls it for the trigger.
func (c *k2280Channel) UploadList(ctx context.Context, steps []supply.Step) error {
	vs, is, ds := make([]string, len(steps)), make([]string, len(steps)), make([]string, len(steps))
	for i, s := range steps {
		vs[i], is[i], ds[i] = V(s.Voltage), A(s.Current), seconds(s.Dwell)
	}
	return writeAll(ctx, c.C,
		`:LIST1:VOLT "`+strings.Join(vs, ",")+`"`,
		`:LIST1:CURR "`+strings.Join(is, ",")+`"`,
		`:LIST1:DWEL "`+strings.Join(ds, ",")+`"`,
		":LIST:SAVE:INT 1", ":LIST:REC 1", ":TRIG:SOUR BUS")
}

func (c *k2280Channel) ArmList(ctx context.Context) error     { return c.C.Write(ctx, ":INIT") }
func (c *k2280Channel) TriggerList(ctx context.Context) error { return c.C.Write(ctx, "*TRG") }

// ---------------------------------------------------------------------------
// R&S HMP and NGx.

func hmpCaps(id scpi.Identity, ch int) (supply.Capabilities, error) {
	mod := strings.ToUpper(id.Model)
	n, v, i := 4, 32.0, 10.0
	switch {
	case strings.HasPrefix(mod, "HMP2020"):
		n, i = 2, 10
	case strings.HasPrefix(mod, "HMP2030"), strings.HasPrefix(mod, "HMP4030"):
		n, i = 3, 5
	case strings.HasPrefix(mod, "HMP4040"):
		n, i = 4, 10
	case strings.HasPrefix(mod, "NGM20"), strings.HasPrefix(mod, "NGL20"):
		n, v, i = int(mod[len(mod)-1]-'0'), 20, 6
	case strings.HasPrefix(mod, "NGP8"):
		n, v, i = 4, 64, 10
	}
	if n < 1 || n > 4 {
		n = 1
	}
	if ch > n {
		return supply.Capabilities{}, fmt.Errorf("%s %s has %d outputs; ?channel=%d", id.Manufacturer, id.Model, n, ch)
	}
	arb := &supply.ListLimits{Kind: "EasyArb", MaxPoints: 128, MinDwell: 10 * time.Millisecond, MaxDwell: 60 * time.Second, DwellResolution: time.Millisecond}
	notes := []string{
		"OCP is the electronic fuse (FUSE ON): it trips when the output reaches its current limit",
		"EasyArb: up to 128 points of voltage, current and dwell (10 ms minimum dwell on the HMP, as recalled from its data sheet: check), started by ARB:STAR",
	}
	if strings.HasPrefix(mod, "NG") {
		arb = &supply.ListLimits{Kind: "QuickArb", MaxPoints: 4096, MinDwell: time.Millisecond, MaxDwell: 60 * time.Second, DwellResolution: time.Millisecond}
		notes[1] = "QuickArb: up to 4096 points, 1 ms minimum dwell; driven with the HMP's ARB commands (check the NGx guide's form)"
	}
	return supply.Capabilities{Channels: n, MaxVoltage: supply.FromVolts(v), MaxCurrent: supply.FromAmps(i), OVP: true, OCP: true,
		List: arb, Sync: "*OPC?", Notes: notes}, nil
}

type hmpChannel struct{ *Base }

// sel prefixes a command with the channel's selection, in the same
// message, so that no other command can come between them.
func (c *hmpChannel) sel(cmd string) string { return "INST:NSEL " + strconv.Itoa(c.Ch) + ";:" + cmd }

func (c *hmpChannel) SetVoltage(ctx context.Context, v physic.ElectricPotential) error {
	return c.C.Write(ctx, c.sel("VOLT "+V(v)))
}

func (c *hmpChannel) SetCurrentLimit(ctx context.Context, i physic.ElectricCurrent) error {
	return c.C.Write(ctx, c.sel("CURR "+A(i)))
}

// SetOutput selects the channel's output and switches the master output on
// (on), or deselects the channel (off), leaving the other channels alone.
func (c *hmpChannel) SetOutput(ctx context.Context, on bool) error {
	if on {
		return c.C.Write(ctx, c.sel("OUTP:SEL ON;:OUTP:GEN ON"))
	}
	return c.C.Write(ctx, c.sel("OUTP:SEL OFF"))
}

func (c *hmpChannel) Measure(ctx context.Context) (supply.Reading, error) {
	var r supply.Reading
	v, err := c.C.QueryFloat(ctx, c.sel("MEAS:VOLT?"))
	if err != nil {
		return r, err
	}
	i, err := c.C.QueryFloat(ctx, c.sel("MEAS:CURR?"))
	if err != nil {
		return r, err
	}
	q := c.sel("OUTP:SEL?;:OUTP:GEN?")
	ans, err := c.C.Query(ctx, q)
	if err != nil {
		return r, err
	}
	on, err := allTrue(ans)
	if err != nil {
		return r, &scpi.CommandError{Instrument: c.C.String(), Command: q, Err: err}
	}
	return supply.Reading{Voltage: supply.FromVolts(v), Current: supply.FromAmps(i), Output: on}, nil
}

// allTrue parses "1;1" (answers of one message) as a conjunction.
func allTrue(ans string) (bool, error) {
	parts := strings.Split(ans, ";")
	if len(parts) != 2 {
		return false, fmt.Errorf("answer %q: want two booleans", ans)
	}
	all := true
	for _, p := range parts {
		b, err := scpi.ParseBool(p)
		if err != nil {
			return false, err
		}
		all = all && b
	}
	return all, nil
}

func (c *hmpChannel) ArmProtection(ctx context.Context, ovp physic.ElectricPotential, ocp physic.ElectricCurrent) error {
	cmd := "VOLT:PROT " + V(ovp)
	if ocp > 0 {
		cmd += ";:FUSE ON"
	}
	return c.C.Write(ctx, c.sel(cmd))
}

func (c *hmpChannel) Tripped(ctx context.Context) (supply.Trip, error) {
	q := c.sel("VOLT:PROT:TRIP?;:FUSE:TRIP?")
	ans, err := c.C.Query(ctx, q)
	if err != nil {
		return supply.Trip{}, err
	}
	parts := strings.Split(ans, ";")
	if len(parts) != 2 {
		return supply.Trip{}, &scpi.CommandError{Instrument: c.C.String(), Command: q, Err: fmt.Errorf("answer %q: want two booleans", ans)}
	}
	ovp, err1 := scpi.ParseBool(parts[0])
	ocp, err2 := scpi.ParseBool(parts[1])
	if err1 != nil || err2 != nil {
		return supply.Trip{}, &scpi.CommandError{Instrument: c.C.String(), Command: q, Err: fmt.Errorf("answer %q: want two booleans", ans)}
	}
	return supply.Trip{OVP: ovp, OCP: ocp}, nil
}

// ClearProtection clears an OVP trip; a fuse trip clears when the output
// is switched on again.
func (c *hmpChannel) ClearProtection(ctx context.Context) error {
	return c.C.Write(ctx, c.sel("VOLT:PROT:CLE"))
}

// UploadList writes the arbitrary waveform (voltage, current, dwell
// triplets), plays it once, and transfers it to the channel.
func (c *hmpChannel) UploadList(ctx context.Context, steps []supply.Step) error {
	parts := make([]string, 0, 3*len(steps))
	for _, s := range steps {
		parts = append(parts, V(s.Voltage), A(s.Current), seconds(s.Dwell))
	}
	return writeAll(ctx, c.C, "ARB:DATA "+strings.Join(parts, ","), "ARB:REP 1", "ARB:TRAN "+strconv.Itoa(c.Ch))
}

// ArmList does nothing: the waveform was transferred by UploadList and
// starts with TriggerList.
func (c *hmpChannel) ArmList(ctx context.Context) error { return nil }

func (c *hmpChannel) TriggerList(ctx context.Context) error {
	return c.C.Write(ctx, "ARB:STAR "+strconv.Itoa(c.Ch))
}
