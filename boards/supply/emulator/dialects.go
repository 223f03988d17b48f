package emulator

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// The command subsets below follow the vendors' programming guides: the
// Keysight E3632A/E3633A user's guides (remote interface reference), the
// Keysight N6700 series programmer's reference, the Rigol DP800
// programming guide, the Siglent SPD3303X quick start (remote commands),
// the Keithley 2280S reference manual (SCPI command reference) and the
// R&S HMP SCPI programmer's manual. Where a guide was not at hand for a
// detail, the comment says "assumed".

type rng struct{ v, i float64 } // one output's range: max volts, max amps

type model struct {
	name   string
	idn    string
	ranges []rng
	// arbPoints and arbMinDwell bound the model's list or arbitrary
	// waveform (0: the dialect's).
	arbPoints   int
	arbMinDwell time.Duration
}

type call struct {
	params []string
	suffix []int
	query  bool
}

func (c *call) sfx(i int) int {
	if i < len(c.suffix) {
		return c.suffix[i]
	}
	return 0
}

// nparams checks the number of parameters.
func (c *call) nparams(lo, hi int) *scpiErr {
	switch {
	case len(c.params) < lo:
		return fail(errMissingParam, "")
	case len(c.params) > hi:
		return fail(errParamNotAllowed, "")
	}
	return nil
}

type handler func(in *Instrument, c *call) (string, *scpiErr)

type entry struct {
	pat   pattern
	query bool
	fn    handler
}

func cmd(p string, fn handler) entry { return entry{compile(p), false, fn} }
func qry(p string, fn handler) entry { return entry{compile(p), true, fn} }

type dialect struct {
	name    string
	models  []model
	entries []entry
	// masterSwitch: an output is on when selected and the master output
	// is on (R&S HMP: OUTP:SEL and OUTP:GEN).
	masterSwitch bool
	// fuseAtLimit: OCP is an electronic fuse that trips when the output
	// reaches its current limit (R&S).
	fuseAtLimit  bool
	ovpOnAtReset bool
	// minInterval: a message that arrives sooner after the last answer is
	// dropped unanswered (Siglent needs about 10 ms between queries).
	minInterval time.Duration
	errFormat   func(code int, msg string) string
	num         func(v float64) string
}

func (d *dialect) lookup(toks []string, query bool) (*entry, []int) {
	for i := range d.entries {
		e := &d.entries[i]
		if e.query != query {
			continue
		}
		if s, ok := match(e.pat, toks); ok {
			return e, s
		}
	}
	return nil, nil
}

// dialectByName builds a dialect's command set afresh: its handlers keep
// per-instrument state (lists being written) in their closures.
func dialectByName(name string) *dialect {
	for _, mk := range dialects {
		if d := mk(); d.name == name {
			return d
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// Shared handlers.

func stdErr(code int, msg string) string { return fmt.Sprintf("%d,%q", code, msg) }

func sciNum(v float64) string { return strconv.FormatFloat(v, 'E', 8, 64) }
func fixNum(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
func boolAns(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// common are IEEE 488.2 common commands and SYST:ERR?.
func common(opc, trg bool) []entry {
	e := []entry{
		qry("*IDN", func(in *Instrument, c *call) (string, *scpiErr) { return in.model.idn, c.nparams(0, 0) }),
		cmd("*RST", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(0, 0); err != nil {
				return "", err
			}
			for _, ch := range in.chans {
				if in.outputOn(ch) {
					in.switchOffLocked(ch)
					in.emit(ch, "output", "*RST")
				}
			}
			in.reset()
			for _, ch := range in.chans {
				in.emit(ch, "reset", "")
			}
			return "", nil
		}),
		cmd("*CLS", func(in *Instrument, c *call) (string, *scpiErr) { in.queue = nil; return "", c.nparams(0, 0) }),
		qry("*ESR", func(in *Instrument, c *call) (string, *scpiErr) { return "0", c.nparams(0, 0) }),
		qry("*STB", func(in *Instrument, c *call) (string, *scpiErr) {
			if len(in.queue) > 0 {
				return "4", nil
			}
			return "0", nil
		}),
		qry("SYSTem:ERRor[:NEXT]", func(in *Instrument, c *call) (string, *scpiErr) {
			e := in.popErr()
			f := in.d.errFormat
			if f == nil {
				f = stdErr
			}
			return f(e.code, e.msg), c.nparams(0, 0)
		}),
		qry("SYSTem:VERSion", func(in *Instrument, c *call) (string, *scpiErr) { return "1999.0", nil }),
	}
	if opc {
		e = append(e,
			qry("*OPC", func(in *Instrument, c *call) (string, *scpiErr) { return "1", c.nparams(0, 0) }),
			cmd("*OPC", func(in *Instrument, c *call) (string, *scpiErr) { return "", c.nparams(0, 0) }),
			cmd("*WAI", func(in *Instrument, c *call) (string, *scpiErr) { return "", c.nparams(0, 0) }),
		)
	}
	if trg {
		e = append(e, cmd("*TRG", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(0, 0); err != nil {
				return "", err
			}
			return "", in.busTrigger()
		}))
	}
	return e
}

// busTrigger fires what is armed for a bus trigger: the pending triggered
// levels (E36) or lists (N67, Keithley).
func (in *Instrument) busTrigger() *scpiErr {
	for _, c := range in.chans {
		if !c.armed {
			continue
		}
		in.fire(c)
	}
	return nil
}

// fire starts what c has armed.
func (in *Instrument) fire(c *channel) {
	c.armed = false
	if len(c.list) > 0 {
		in.runListLocked(c, c.list, c.listCount, c.listTermLast)
		return
	}
	// A single triggered step (E36).
	if !math.IsNaN(c.trigV) {
		c.setV = c.trigV
	}
	if !math.IsNaN(c.trigI) {
		c.setI = c.trigI
	}
	in.emit(c, "list-step", "triggered level")
	in.checkProtectionLocked(c)
}

func setVolts(in *Instrument, ch *channel, p string) *scpiErr {
	v, err := number(p, "V", 0, ch.maxV, 0)
	if err != nil {
		return err
	}
	in.setVoltageLocked(ch, v, "voltage")
	return nil
}

func setAmps(in *Instrument, ch *channel, p string) *scpiErr {
	i, err := number(p, "A", 0, ch.maxI, ch.maxI)
	if err != nil {
		return err
	}
	in.setCurrentLocked(ch, i, "current")
	return nil
}

func setOVP(in *Instrument, ch *channel, p string) *scpiErr {
	v, err := number(p, "V", 0, ch.maxV*1.1, ch.maxV*1.1)
	if err != nil {
		return err
	}
	ch.ovp = v
	in.emit(ch, "ovp", fmt.Sprintf("level %.4g V", v))
	in.checkProtectionLocked(ch)
	return nil
}

func setOCP(in *Instrument, ch *channel, p string) *scpiErr {
	v, err := number(p, "A", 0, ch.maxI*1.1, ch.maxI*1.1)
	if err != nil {
		return err
	}
	ch.ocp = v
	in.emit(ch, "ocp", fmt.Sprintf("level %.4g A", v))
	in.checkProtectionLocked(ch)
	return nil
}

func stateOVP(in *Instrument, ch *channel, on bool) {
	ch.ovpOn = on
	in.emit(ch, "ovp", map[bool]string{true: "on", false: "off"}[on])
	in.checkProtectionLocked(ch)
}

func stateOCP(in *Instrument, ch *channel, on bool) {
	ch.ocpOn = on
	in.emit(ch, "ocp", map[bool]string{true: "on", false: "off"}[on])
	in.checkProtectionLocked(ch)
}

func clearTrips(in *Instrument, ch *channel, ovp, ocp bool) {
	if (ovp && ch.tripOVP) || (ocp && ch.tripOCP) {
		if ovp {
			ch.tripOVP = false
		}
		if ocp {
			ch.tripOCP = false
		}
		in.emit(ch, "clear", "")
	}
}

// ---------------------------------------------------------------------------
// Keysight E363x: one output, triggered levels (one step), OVP and OCP.

func e36() *dialect {
	d := &dialect{name: "keysight-e36", ovpOnAtReset: true, num: sciNum,
		models: []model{
			{name: "E3632A", idn: "Agilent Technologies,E3632A,0,1.7-5.0-1.0", ranges: []rng{{30, 7}}},
			{name: "E3633A", idn: "Agilent Technologies,E3633A,0,1.7-5.0-1.0", ranges: []rng{{20, 10}}},
			{name: "E3634A", idn: "Agilent Technologies,E3634A,0,1.7-5.0-1.0", ranges: []rng{{50, 7}}},
		}}
	ch := func(in *Instrument) *channel { return in.chans[0] }
	num := func(v float64) string { return strconv.FormatFloat(v, 'E', 5, 64) }
	one := func(set func(in *Instrument, c *channel, p string) *scpiErr) handler {
		return func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			return "", set(in, ch(in), c.params[0])
		}
	}
	d.entries = append(common(true, true),
		cmd("APPLy", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 2); err != nil {
				return "", err
			}
			k := ch(in)
			v, err := number(c.params[0], "V", 0, k.maxV, 0)
			if err != nil {
				return "", err
			}
			i := k.setI
			if len(c.params) == 2 {
				if i, err = number(c.params[1], "A", 0, k.maxI, k.maxI); err != nil {
					return "", err
				}
			}
			in.setVoltageLocked(k, v, "voltage")
			in.setCurrentLocked(k, i, "current")
			return "", nil
		}),
		qry("APPLy", func(in *Instrument, c *call) (string, *scpiErr) {
			k := ch(in)
			return fmt.Sprintf("%q", fmt.Sprintf("%.6f,%.6f", k.setV, k.setI)), nil
		}),
		cmd("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", one(setVolts)),
		qry("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", func(in *Instrument, c *call) (string, *scpiErr) { return num(ch(in).setV), nil }),
		cmd("[SOURce:]VOLTage[:LEVel]:TRIGgered[:AMPLitude]", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			v, err := number(c.params[0], "V", 0, ch(in).maxV, 0)
			ch(in).trigV = v
			return "", err
		}),
		cmd("[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]", one(setAmps)),
		qry("[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]", func(in *Instrument, c *call) (string, *scpiErr) { return num(ch(in).setI), nil }),
		cmd("[SOURce:]CURRent[:LEVel]:TRIGgered[:AMPLitude]", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			i, err := number(c.params[0], "A", 0, ch(in).maxI, ch(in).maxI)
			ch(in).trigI = i
			return "", err
		}),
		cmd("[SOURce:]VOLTage:PROTection[:LEVel]", one(setOVP)),
		qry("[SOURce:]VOLTage:PROTection[:LEVel]", func(in *Instrument, c *call) (string, *scpiErr) { return num(ch(in).ovp), nil }),
		cmd("[SOURce:]VOLTage:PROTection:STATe", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			b, err := boolean(c.params[0])
			if err == nil {
				stateOVP(in, ch(in), b)
			}
			return "", err
		}),
		qry("[SOURce:]VOLTage:PROTection:STATe", func(in *Instrument, c *call) (string, *scpiErr) { return boolAns(ch(in).ovpOn), nil }),
		qry("[SOURce:]VOLTage:PROTection:TRIPped", func(in *Instrument, c *call) (string, *scpiErr) { return boolAns(ch(in).tripOVP), nil }),
		cmd("[SOURce:]VOLTage:PROTection:CLEar", func(in *Instrument, c *call) (string, *scpiErr) {
			clearTrips(in, ch(in), true, false)
			return "", c.nparams(0, 0)
		}),
		cmd("[SOURce:]CURRent:PROTection[:LEVel]", one(setOCP)),
		qry("[SOURce:]CURRent:PROTection[:LEVel]", func(in *Instrument, c *call) (string, *scpiErr) { return num(ch(in).ocp), nil }),
		cmd("[SOURce:]CURRent:PROTection:STATe", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			b, err := boolean(c.params[0])
			if err == nil {
				stateOCP(in, ch(in), b)
			}
			return "", err
		}),
		qry("[SOURce:]CURRent:PROTection:TRIPped", func(in *Instrument, c *call) (string, *scpiErr) { return boolAns(ch(in).tripOCP), nil }),
		cmd("[SOURce:]CURRent:PROTection:CLEar", func(in *Instrument, c *call) (string, *scpiErr) {
			clearTrips(in, ch(in), false, true)
			return "", c.nparams(0, 0)
		}),
		cmd("OUTPut[:STATe]", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			b, err := boolean(c.params[0])
			if err != nil {
				return "", err
			}
			return "", in.setOutputLocked(ch(in), b)
		}),
		qry("OUTPut[:STATe]", func(in *Instrument, c *call) (string, *scpiErr) { return boolAns(in.outputOn(ch(in))), nil }),
		qry("MEASure[:SCALar]:VOLTage[:DC]", func(in *Instrument, c *call) (string, *scpiErr) {
			v, _ := in.measureLocked(ch(in))
			return num(v), nil
		}),
		qry("MEASure[:SCALar]:CURRent[:DC]", func(in *Instrument, c *call) (string, *scpiErr) {
			_, i := in.measureLocked(ch(in))
			return num(i), nil
		}),
		cmd("TRIGger[:SEQuence]:SOURce", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			switch s := strings.ToUpper(c.params[0]); s {
			case "BUS", "IMM", "IMMEDIATE":
				in.trigSrc = s[:3]
				return "", nil
			}
			return "", fail(errIllegalValue, "trigger source %q", c.params[0])
		}),
		qry("TRIGger[:SEQuence]:SOURce", func(in *Instrument, c *call) (string, *scpiErr) { return in.trigSrc, nil }),
		cmd("INITiate[:IMMediate]", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(0, 0); err != nil {
				return "", err
			}
			k := ch(in)
			k.list = nil
			if in.trigSrc == "IMM" {
				in.fire(k)
			} else {
				k.armed = true
			}
			return "", nil
		}),
	)
	return d
}

// ---------------------------------------------------------------------------
// Keysight N67xx: channel lists (@n), LIST of up to 512 steps with per-step
// dwell and trigger out, ARB constant-dwell waveforms of up to 65,535
// points, transient trigger system.

const (
	n67ListMax  = 512
	n67CDWMax   = 65535
	n67DwellMax = 262.144
)

func n67() *dialect {
	d := &dialect{name: "keysight-n67", num: sciNum, ovpOnAtReset: true,
		models: []model{
			{name: "N6705C", idn: "Keysight Technologies,N6705C,MY56001234,D.03.01", ranges: []rng{{20, 5}, {20, 5}, {20, 5}, {20, 5}}},
			{name: "N6700C", idn: "Keysight Technologies,N6700C,MY56004321,D.03.01", ranges: []rng{{20, 5}, {20, 5}, {20, 5}, {20, 5}}},
		}}
	// chans splits the channel list off the parameters; without one, the
	// command applies to output 1 (assumed).
	chans := func(in *Instrument, c *call) ([]*channel, []string, *scpiErr) {
		ps := c.params
		list := []int{1}
		if n := len(ps); n > 0 && strings.HasPrefix(strings.TrimSpace(ps[n-1]), "(@") {
			var err *scpiErr
			if list, err = chanList(ps[n-1], len(in.chans)); err != nil {
				return nil, nil, err
			}
			ps = ps[:n-1]
		}
		out := make([]*channel, len(list))
		for i, n := range list {
			out[i] = in.chans[n-1]
		}
		return out, ps, nil
	}
	each := func(n int, f func(in *Instrument, k *channel, ps []string) *scpiErr) handler {
		return func(in *Instrument, c *call) (string, *scpiErr) {
			ks, ps, err := chans(in, c)
			if err != nil {
				return "", err
			}
			if len(ps) < n {
				return "", fail(errMissingParam, "")
			}
			if len(ps) > n {
				return "", fail(errParamNotAllowed, "")
			}
			for _, k := range ks {
				if err := f(in, k, ps); err != nil {
					return "", err
				}
			}
			return "", nil
		}
	}
	ask := func(f func(in *Instrument, k *channel) string) handler {
		return func(in *Instrument, c *call) (string, *scpiErr) {
			ks, ps, err := chans(in, c)
			if err != nil {
				return "", err
			}
			if len(ps) > 0 {
				return "", fail(errParamNotAllowed, "")
			}
			var out []string
			for _, k := range ks {
				out = append(out, f(in, k))
			}
			return strings.Join(out, ","), nil
		}
	}
	values := func(in *Instrument, c *call, unit string, lo, hi float64, max int) ([]*channel, []float64, *scpiErr) {
		ks, ps, err := chans(in, c)
		if err != nil {
			return nil, nil, err
		}
		if len(ps) == 0 {
			return nil, nil, fail(errMissingParam, "")
		}
		if len(ps) > max {
			return nil, nil, fail(errTooMuchData, "%d values, at most %d", len(ps), max)
		}
		vs := make([]float64, len(ps))
		for i, p := range ps {
			if vs[i], err = number(p, unit, lo, hi, lo); err != nil {
				return nil, nil, err
			}
		}
		return ks, vs, nil
	}
	listV := map[int][]float64{}
	listI := map[int][]float64{}
	listD := map[int][]float64{}
	listB := map[int][]bool{}
	modeI := map[int]string{}
	arbCount := map[int]int{}
	arbLast := map[int]bool{}
	d.entries = append(common(true, true),
		cmd("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", each(1, func(in *Instrument, k *channel, ps []string) *scpiErr { return setVolts(in, k, ps[0]) })),
		qry("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", ask(func(in *Instrument, k *channel) string { return sciNum(k.setV) })),
		cmd("[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]", each(1, func(in *Instrument, k *channel, ps []string) *scpiErr { return setAmps(in, k, ps[0]) })),
		qry("[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]", ask(func(in *Instrument, k *channel) string { return sciNum(k.setI) })),
		cmd("[SOURce:]VOLTage:PROTection[:LEVel]", each(1, func(in *Instrument, k *channel, ps []string) *scpiErr { return setOVP(in, k, ps[0]) })),
		qry("[SOURce:]VOLTage:PROTection[:LEVel]", ask(func(in *Instrument, k *channel) string { return sciNum(k.ovp) })),
		// N67xx OCP: with CURR:PROT:STAT ON the output switches off when it
		// goes into constant current.
		cmd("[SOURce:]CURRent:PROTection:STATe", each(1, func(in *Instrument, k *channel, ps []string) *scpiErr {
			b, err := boolean(ps[0])
			if err == nil {
				k.ocp = k.setI
				stateOCP(in, k, b)
			}
			return err
		})),
		qry("[SOURce:]CURRent:PROTection:STATe", ask(func(in *Instrument, k *channel) string { return boolAns(k.ocpOn) })),
		cmd("OUTPut[:STATe]", each(1, func(in *Instrument, k *channel, ps []string) *scpiErr {
			b, err := boolean(ps[0])
			if err != nil {
				return err
			}
			return in.setOutputLocked(k, b)
		})),
		qry("OUTPut[:STATe]", ask(func(in *Instrument, k *channel) string { return boolAns(in.outputOn(k)) })),
		cmd("OUTPut:PROTection:CLEar", each(0, func(in *Instrument, k *channel, ps []string) *scpiErr {
			clearTrips(in, k, true, true)
			return nil
		})),
		qry("STATus:QUEStionable[:EVENt]", ask(func(in *Instrument, k *channel) string { return "0" })),
		qry("STATus:QUEStionable:CONDition", ask(func(in *Instrument, k *channel) string {
			bits := 0
			if k.tripOVP {
				bits |= 1
			}
			if k.tripOCP {
				bits |= 2
			}
			return strconv.Itoa(bits)
		})),
		qry("MEASure[:SCALar]:VOLTage[:DC]", ask(func(in *Instrument, k *channel) string { v, _ := in.measureLocked(k); return sciNum(v) })),
		qry("MEASure[:SCALar]:CURRent[:DC]", ask(func(in *Instrument, k *channel) string { _, i := in.measureLocked(k); return sciNum(i) })),
		cmd("[SOURce:]VOLTage:MODE", each(1, func(in *Instrument, k *channel, ps []string) *scpiErr {
			m := strings.ToUpper(ps[0])
			switch m {
			case "FIX", "FIXED":
				k.modeV = "FIX"
			case "STEP", "LIST", "ARB":
				k.modeV = m
			default:
				return fail(errIllegalValue, "mode %q", ps[0])
			}
			return nil
		})),
		cmd("[SOURce:]CURRent:MODE", each(1, func(in *Instrument, k *channel, ps []string) *scpiErr {
			modeI[k.num] = strings.ToUpper(ps[0])
			return nil
		})),
		cmd("[SOURce:]LIST:VOLTage[:LEVel]", func(in *Instrument, c *call) (string, *scpiErr) {
			ks, vs, err := values(in, c, "V", 0, 20, n67ListMax)
			for _, k := range ks {
				listV[k.num] = vs
			}
			return "", err
		}),
		qry("[SOURce:]LIST:VOLTage:POINts", ask(func(in *Instrument, k *channel) string { return strconv.Itoa(len(listV[k.num])) })),
		cmd("[SOURce:]LIST:CURRent[:LEVel]", func(in *Instrument, c *call) (string, *scpiErr) {
			ks, vs, err := values(in, c, "A", 0, 5, n67ListMax)
			for _, k := range ks {
				listI[k.num] = vs
			}
			return "", err
		}),
		cmd("[SOURce:]LIST:DWELl", func(in *Instrument, c *call) (string, *scpiErr) {
			ks, vs, err := values(in, c, "S", 0, n67DwellMax, n67ListMax)
			for _, k := range ks {
				listD[k.num] = vs
			}
			return "", err
		}),
		cmd("[SOURce:]LIST:TOUTput:BOSTep[:DATA]", func(in *Instrument, c *call) (string, *scpiErr) {
			ks, ps, err := chans(in, c)
			if err != nil {
				return "", err
			}
			if len(ps) > n67ListMax {
				return "", fail(errTooMuchData, "")
			}
			bs := make([]bool, len(ps))
			for i, p := range ps {
				if bs[i], err = boolean(p); err != nil {
					return "", err
				}
			}
			for _, k := range ks {
				listB[k.num] = bs
			}
			return "", nil
		}),
		cmd("[SOURce:]LIST:COUNt", each(1, func(in *Instrument, k *channel, ps []string) *scpiErr {
			if strings.EqualFold(ps[0], "INF") || strings.EqualFold(ps[0], "INFinity") {
				k.listCount = 0
				return nil
			}
			n, err := number(ps[0], "", 1, 256, 1)
			k.listCount = int(n)
			return err
		})),
		cmd("[SOURce:]LIST:TERMinate:LAST", each(1, func(in *Instrument, k *channel, ps []string) *scpiErr {
			b, err := boolean(ps[0])
			k.listTermLast = b
			return err
		})),
		cmd("[SOURce:]ARB:FUNCtion:TYPE", each(1, func(in *Instrument, k *channel, ps []string) *scpiErr { return nil })),
		cmd("[SOURce:]ARB:FUNCtion:SHAPe", each(1, func(in *Instrument, k *channel, ps []string) *scpiErr {
			if s := strings.ToUpper(ps[0]); s != "CDW" && s != "CDWELL" {
				return fail(errIllegalValue, "only CDWell is emulated")
			}
			return nil
		})),
		cmd("[SOURce:]ARB:VOLTage:CDWell:DWELl", each(1, func(in *Instrument, k *channel, ps []string) *scpiErr {
			v, err := number(ps[0], "S", 10.24e-6, 0.30, 0.001)
			k.cdwDwell = v
			return err
		})),
		cmd("[SOURce:]ARB:VOLTage:CDWell[:LEVel]", func(in *Instrument, c *call) (string, *scpiErr) {
			ks, vs, err := values(in, c, "V", 0, 20, n67CDWMax)
			for _, k := range ks {
				k.cdw = vs
			}
			return "", err
		}),
		cmd("[SOURce:]ARB:COUNt", each(1, func(in *Instrument, k *channel, ps []string) *scpiErr {
			n, err := number(ps[0], "", 1, 1e6, 1)
			arbCount[k.num] = int(n)
			return err
		})),
		cmd("[SOURce:]ARB:TERMinate:LAST", each(1, func(in *Instrument, k *channel, ps []string) *scpiErr {
			b, err := boolean(ps[0])
			arbLast[k.num] = b
			return err
		})),
		cmd("TRIGger:TRANsient:SOURce", each(1, func(in *Instrument, k *channel, ps []string) *scpiErr {
			switch s := strings.ToUpper(ps[0]); s {
			case "BUS", "IMM", "IMMEDIATE":
				in.trigSrc = s[:3]
				return nil
			}
			return fail(errIllegalValue, "trigger source %q", ps[0])
		})),
		cmd("INITiate[:IMMediate]:TRANsient", each(0, func(in *Instrument, k *channel, ps []string) *scpiErr {
			switch k.modeV {
			case "LIST":
				vs, is, ds, bs := listV[k.num], listI[k.num], listD[k.num], listB[k.num]
				n := max(len(vs), len(is), len(ds), len(bs))
				for _, l := range []int{len(vs), len(ds)} {
					if l != n && l != 1 {
						return fail(errSettingsConflct, "list lengths not equivalent")
					}
				}
				if (len(is) != n && len(is) > 1) || (len(bs) != n && len(bs) > 1) {
					return fail(errSettingsConflct, "list lengths not equivalent")
				}
				steps := make([]step, n)
				for j := range steps {
					steps[j] = step{v: pick(vs, j), i: k.setI, dwell: time.Duration(pick(ds, j) * 1e9)}
					if modeI[k.num] == "LIST" && len(is) > 0 {
						steps[j].i = pick(is, j)
					}
					if len(bs) > 0 {
						steps[j].bost = bs[min(j, len(bs)-1)]
					}
				}
				k.list = steps
			case "ARB":
				if len(k.cdw) == 0 {
					return fail(errSettingsConflct, "no ARB data")
				}
				steps := make([]step, len(k.cdw))
				for j, v := range k.cdw {
					steps[j] = step{v: v, i: k.setI, dwell: time.Duration(k.cdwDwell * 1e9)}
				}
				k.list = steps
				k.listCount = max(arbCount[k.num], 1)
				k.listTermLast = arbLast[k.num]
			default:
				k.list = nil
				return nil // a FIX transient does nothing visible
			}
			if in.trigSrc == "IMM" {
				in.fire(k)
			} else {
				k.armed = true
			}
			return nil
		})),
		cmd("TRIGger:TRANsient[:IMMediate]", each(0, func(in *Instrument, k *channel, ps []string) *scpiErr {
			if !k.armed {
				return fail(errSettingsConflct, "trigger ignored: not initiated")
			}
			in.fire(k)
			return nil
		})),
		cmd("ABORt:TRANsient", each(0, func(in *Instrument, k *channel, ps []string) *scpiErr {
			k.armed = false
			in.stopListLocked(k)
			return nil
		})),
	)
	return d
}

func pick(v []float64, j int) float64 {
	if len(v) == 0 {
		return 0
	}
	return v[min(j, len(v)-1)]
}

// ---------------------------------------------------------------------------
// Rigol DP800: channels named CH1..CH3 in parameters, OVP/OCP per channel,
// answers ON/OFF and YES/NO.

func dp800() *dialect {
	d := &dialect{name: "rigol-dp800", num: fixNum,
		models: []model{
			{name: "DP832", idn: "RIGOL TECHNOLOGIES,DP832,DP8C000000001,00.01.16", ranges: []rng{{30, 3}, {30, 3}, {5, 3}}},
			{name: "DP831", idn: "RIGOL TECHNOLOGIES,DP831,DP8B000000001,00.01.16", ranges: []rng{{8, 5}, {30, 2}, {30, 2}}},
			{name: "DP821", idn: "RIGOL TECHNOLOGIES,DP821,DP8A000000001,00.01.16", ranges: []rng{{60, 1}, {8, 10}}},
		}}
	// opt takes an optional leading channel name; without one, the
	// selected channel.
	opt := func(in *Instrument, ps []string) (*channel, []string, *scpiErr) {
		if len(ps) > 0 && strings.HasPrefix(strings.ToUpper(strings.TrimSpace(ps[0])), "CH") {
			n, err := chName(ps[0], len(in.chans))
			if err != nil {
				return nil, nil, err
			}
			return in.chans[n-1], ps[1:], nil
		}
		return in.chans[in.sel-1], ps, nil
	}
	onoff := func(b bool) string {
		if b {
			return "ON"
		}
		return "OFF"
	}
	withCh := func(n int, f func(in *Instrument, k *channel, ps []string) (string, *scpiErr)) handler {
		return func(in *Instrument, c *call) (string, *scpiErr) {
			k, ps, err := opt(in, c.params)
			if err != nil {
				return "", err
			}
			if len(ps) < n {
				return "", fail(errMissingParam, "")
			}
			if len(ps) > n {
				return "", fail(errParamNotAllowed, "")
			}
			return f(in, k, ps)
		}
	}
	// srcCh is the channel of [:SOURce<n>] (the selected one without n).
	srcCh := func(in *Instrument, c *call) (*channel, *scpiErr) {
		n := c.sfx(0)
		if n == 0 {
			n = in.sel
		}
		if n > len(in.chans) {
			return nil, fail(errUndefinedHeader, "no source %d", n)
		}
		return in.chans[n-1], nil
	}
	d.entries = append(common(true, false),
		cmd("APPLy", func(in *Instrument, c *call) (string, *scpiErr) {
			k, ps, err := opt(in, c.params)
			if err != nil {
				return "", err
			}
			if len(ps) < 1 {
				return "", fail(errMissingParam, "")
			}
			if len(ps) > 2 {
				return "", fail(errParamNotAllowed, "")
			}
			v, err := number(ps[0], "V", 0, k.maxV, 0)
			if err != nil {
				return "", err
			}
			i := k.setI
			if len(ps) == 2 {
				if i, err = number(ps[1], "A", 0, k.maxI, k.maxI); err != nil {
					return "", err
				}
			}
			in.setVoltageLocked(k, v, "voltage")
			in.setCurrentLocked(k, i, "current")
			return "", nil
		}),
		qry("APPLy", withCh(0, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) {
			return fmt.Sprintf("CH%d:%gV/%gA,%.3f,%.4f", k.num, k.maxV, k.maxI, k.setV, k.setI), nil
		})),
		cmd("[SOURce<n>:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", func(in *Instrument, c *call) (string, *scpiErr) {
			k, err := srcCh(in, c)
			if err != nil {
				return "", err
			}
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			return "", setVolts(in, k, c.params[0])
		}),
		cmd("[SOURce<n>:]CURRent[:LEVel][:IMMediate][:AMPLitude]", func(in *Instrument, c *call) (string, *scpiErr) {
			k, err := srcCh(in, c)
			if err != nil {
				return "", err
			}
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			return "", setAmps(in, k, c.params[0])
		}),
		cmd("INSTrument[:SELect]", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			n, err := chName(c.params[0], len(in.chans))
			if err == nil {
				in.sel = n
			}
			return "", err
		}),
		qry("INSTrument[:SELect]", func(in *Instrument, c *call) (string, *scpiErr) { return fmt.Sprintf("CH%d", in.sel), nil }),
		cmd("OUTPut[:STATe]", withCh(1, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) {
			b, err := boolean(ps[0])
			if err != nil {
				return "", err
			}
			return "", in.setOutputLocked(k, b)
		})),
		qry("OUTPut[:STATe]", withCh(0, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) { return onoff(in.outputOn(k)), nil })),
		cmd("OUTPut:OVP:VALue", withCh(1, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) { return "", setOVP(in, k, ps[0]) })),
		qry("OUTPut:OVP:VALue", withCh(0, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) {
			return fmt.Sprintf("%.3f", k.ovp), nil
		})),
		cmd("OUTPut:OVP[:STATe]", withCh(1, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) {
			b, err := boolean(ps[0])
			if err == nil {
				stateOVP(in, k, b)
			}
			return "", err
		})),
		qry("OUTPut:OVP[:STATe]", withCh(0, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) { return onoff(k.ovpOn), nil })),
		qry("OUTPut:OVP:QUEStion", withCh(0, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) {
			return map[bool]string{true: "YES", false: "NO"}[k.tripOVP], nil
		})),
		cmd("OUTPut:OVP:CLEar", withCh(0, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) {
			clearTrips(in, k, true, false)
			return "", nil
		})),
		cmd("OUTPut:OCP:VALue", withCh(1, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) { return "", setOCP(in, k, ps[0]) })),
		qry("OUTPut:OCP:VALue", withCh(0, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) {
			return fmt.Sprintf("%.4f", k.ocp), nil
		})),
		cmd("OUTPut:OCP[:STATe]", withCh(1, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) {
			b, err := boolean(ps[0])
			if err == nil {
				stateOCP(in, k, b)
			}
			return "", err
		})),
		qry("OUTPut:OCP[:STATe]", withCh(0, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) { return onoff(k.ocpOn), nil })),
		qry("OUTPut:OCP:QUEStion", withCh(0, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) {
			return map[bool]string{true: "YES", false: "NO"}[k.tripOCP], nil
		})),
		cmd("OUTPut:OCP:CLEar", withCh(0, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) {
			clearTrips(in, k, false, true)
			return "", nil
		})),
		qry("MEASure:CURRent[:DC]", withCh(0, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) {
			_, i := in.measureLocked(k)
			return fmt.Sprintf("%.4f", i), nil
		})),
		qry("MEASure[:VOLTage][:DC]", withCh(0, func(in *Instrument, k *channel, ps []string) (string, *scpiErr) {
			v, _ := in.measureLocked(k)
			return fmt.Sprintf("%.3f", v), nil
		})),
	)
	return d
}

// ---------------------------------------------------------------------------
// Siglent SPD3303X: CH1:VOLT, OUTP CH1,ON, no *OPC?, no OVP, about 10 ms
// between queries.

func spd3303x() *dialect {
	d := &dialect{name: "siglent-spd3303x", num: fixNum, minInterval: 10 * time.Millisecond,
		errFormat: func(code int, msg string) string {
			if code == 0 {
				return "0  No Error"
			}
			return fmt.Sprintf("%d  %s", code, msg)
		},
		models: []model{
			{name: "SPD3303X", idn: "Siglent Technologies,SPD3303X,SPD3XIDD4R0000,1.01.01.02.05,V3.0", ranges: []rng{{32, 3.2}, {32, 3.2}}},
			{name: "SPD3303X-E", idn: "Siglent Technologies,SPD3303X-E,SPD3EEEC0R0000,1.01.01.02.07R2,V3.0", ranges: []rng{{32, 3.2}, {32, 3.2}}},
		}}
	prefCh := func(in *Instrument, c *call) (*channel, *scpiErr) {
		n := c.sfx(0)
		if n == 0 {
			n = in.sel
		}
		if n > len(in.chans) {
			return nil, fail(errUndefinedHeader, "no CH%d", n)
		}
		return in.chans[n-1], nil
	}
	optCh := func(in *Instrument, c *call) (*channel, *scpiErr) {
		if err := c.nparams(0, 1); err != nil {
			return nil, err
		}
		if len(c.params) == 1 {
			n, err := chName(c.params[0], len(in.chans))
			if err != nil {
				return nil, err
			}
			return in.chans[n-1], nil
		}
		return in.chans[in.sel-1], nil
	}
	d.entries = append(common(false, false),
		cmd("[CH<n>:]VOLTage", func(in *Instrument, c *call) (string, *scpiErr) {
			k, err := prefCh(in, c)
			if err != nil {
				return "", err
			}
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			return "", setVolts(in, k, c.params[0])
		}),
		qry("[CH<n>:]VOLTage", func(in *Instrument, c *call) (string, *scpiErr) {
			k, err := prefCh(in, c)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%.3f", k.setV), nil
		}),
		cmd("[CH<n>:]CURRent", func(in *Instrument, c *call) (string, *scpiErr) {
			k, err := prefCh(in, c)
			if err != nil {
				return "", err
			}
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			return "", setAmps(in, k, c.params[0])
		}),
		qry("[CH<n>:]CURRent", func(in *Instrument, c *call) (string, *scpiErr) {
			k, err := prefCh(in, c)
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("%.3f", k.setI), nil
		}),
		cmd("OUTPut[:STATe]", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(2, 2); err != nil {
				return "", err
			}
			n, err := chName(c.params[0], len(in.chans)+1)
			if err != nil {
				return "", err
			}
			b, err := boolean(c.params[1])
			if err != nil {
				return "", err
			}
			if n > len(in.chans) { // CH3 is the fixed 2.5/3.3/5 V output
				return "", nil
			}
			return "", in.setOutputLocked(in.chans[n-1], b)
		}),
		cmd("OUTPut:TRACK", func(in *Instrument, c *call) (string, *scpiErr) { return "", c.nparams(1, 1) }),
		qry("MEASure:CURRent", func(in *Instrument, c *call) (string, *scpiErr) {
			k, err := optCh(in, c)
			if err != nil {
				return "", err
			}
			_, i := in.measureLocked(k)
			return fmt.Sprintf("%.3f", i), nil
		}),
		qry("MEASure:VOLTage", func(in *Instrument, c *call) (string, *scpiErr) {
			k, err := optCh(in, c)
			if err != nil {
				return "", err
			}
			v, _ := in.measureLocked(k)
			return fmt.Sprintf("%.3f", v), nil
		}),
		qry("MEASure:POWEr", func(in *Instrument, c *call) (string, *scpiErr) {
			k, err := optCh(in, c)
			if err != nil {
				return "", err
			}
			v, i := in.measureLocked(k)
			return fmt.Sprintf("%.3f", v*i), nil
		}),
		cmd("INSTrument[:SELect]", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			n, err := chName(c.params[0], len(in.chans))
			if err == nil {
				in.sel = n
			}
			return "", err
		}),
		qry("INSTrument[:SELect]", func(in *Instrument, c *call) (string, *scpiErr) { return fmt.Sprintf("CH%d", in.sel), nil }),
		// SYST:STAT?: bit 4 CH1 output on, bit 5 CH2 output on (the
		// quick start's status word, hexadecimal).
		qry("SYSTem:STATus", func(in *Instrument, c *call) (string, *scpiErr) {
			w := 0
			for j, k := range in.chans {
				if in.outputOn(k) {
					w |= 1 << (4 + j)
				}
			}
			return fmt.Sprintf("0x%04X", w), nil
		}),
	)
	return d
}

// ---------------------------------------------------------------------------
// Keithley 2280S: one output, OVP, OCP, lists of up to 99 points (9 lists).

const k2280ListMax = 99

func k2280s() *dialect {
	d := &dialect{name: "keithley-2280s", num: sciNum,
		models: []model{
			{name: "2280S-32-6", idn: "KEITHLEY INSTRUMENTS,MODEL 2280S-32-6,4300001,01.03.00a", ranges: []rng{{32, 6}}},
			{name: "2280S-60-3", idn: "KEITHLEY INSTRUMENTS,MODEL 2280S-60-3,4300002,01.03.00a", ranges: []rng{{60, 3.2}}},
		}}
	ch := func(in *Instrument) *channel { return in.chans[0] }
	num := func(v float64) string { return strconv.FormatFloat(v, 'E', 4, 64) }
	lists := map[int]*[3][]float64{} // list number -> V, I, dwell
	saved := map[int][]step{}
	one := func(f func(in *Instrument, k *channel, p string) *scpiErr) handler {
		return func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			return "", f(in, ch(in), c.params[0])
		}
	}
	listSet := func(elem int, appendTo bool) handler {
		return func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			n := c.sfx(1)
			if n < 1 || n > 9 {
				return "", fail(errOutOfRange, "list %d (1 to 9)", n)
			}
			s, err := quoted(c.params[0])
			if err != nil {
				return "", err
			}
			parts := strings.Split(s, ",")
			l := lists[n]
			if l == nil {
				l = &[3][]float64{}
				lists[n] = l
			}
			base := l[elem]
			if !appendTo {
				base = nil
			}
			if len(base)+len(parts) > k2280ListMax {
				return "", fail(errTooManyPoints, "")
			}
			hi := []float64{ch(in).maxV, ch(in).maxI, 60}[elem]
			unit := []string{"V", "A", "S"}[elem]
			for _, p := range parts {
				v, err := number(p, unit, 0, hi, 0)
				if err != nil {
					return "", err
				}
				base = append(base, v)
			}
			l[elem] = base
			return "", nil
		}
	}
	d.entries = append(common(true, true),
		cmd("[SOURce<n>:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", one(setVolts)),
		qry("[SOURce<n>:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", func(in *Instrument, c *call) (string, *scpiErr) { return num(ch(in).setV), nil }),
		cmd("[SOURce<n>:]CURRent[:LEVel][:IMMediate][:AMPLitude]", one(setAmps)),
		qry("[SOURce<n>:]CURRent[:LEVel][:IMMediate][:AMPLitude]", func(in *Instrument, c *call) (string, *scpiErr) { return num(ch(in).setI), nil }),
		// Assumed from the guide's protection chapter: OVP is always armed
		// at its level; the trip is read with :TRIPped?.
		cmd("[SOURce<n>:]VOLTage:PROTection[:LEVel]", one(func(in *Instrument, k *channel, p string) *scpiErr {
			k.ovpOn = true
			return setOVP(in, k, p)
		})),
		qry("[SOURce<n>:]VOLTage:PROTection[:LEVel]", func(in *Instrument, c *call) (string, *scpiErr) { return num(ch(in).ovp), nil }),
		qry("[SOURce<n>:]VOLTage:PROTection:TRIPped", func(in *Instrument, c *call) (string, *scpiErr) { return boolAns(ch(in).tripOVP), nil }),
		cmd("[SOURce<n>:]CURRent:PROTection[:LEVel]", one(setOCP)),
		cmd("[SOURce<n>:]CURRent:PROTection:STATe", one(func(in *Instrument, k *channel, p string) *scpiErr {
			b, err := boolean(p)
			if err == nil {
				stateOCP(in, k, b)
			}
			return err
		})),
		qry("[SOURce<n>:]CURRent:PROTection:TRIPped", func(in *Instrument, c *call) (string, *scpiErr) { return boolAns(ch(in).tripOCP), nil }),
		cmd("OUTPut<n>:PROTection:CLEar", func(in *Instrument, c *call) (string, *scpiErr) {
			clearTrips(in, ch(in), true, true)
			return "", c.nparams(0, 0)
		}),
		cmd("OUTPut<n>[:STATe]", one(func(in *Instrument, k *channel, p string) *scpiErr {
			b, err := boolean(p)
			if err != nil {
				return err
			}
			return in.setOutputLocked(k, b)
		})),
		qry("OUTPut<n>[:STATe]", func(in *Instrument, c *call) (string, *scpiErr) { return boolAns(in.outputOn(ch(in))), nil }),
		qry("MEASure<n>[:SCALar]:VOLTage[:DC]", func(in *Instrument, c *call) (string, *scpiErr) { v, _ := in.measureLocked(ch(in)); return num(v), nil }),
		qry("MEASure<n>[:SCALar]:CURRent[:DC]", func(in *Instrument, c *call) (string, *scpiErr) { _, i := in.measureLocked(ch(in)); return num(i), nil }),
		cmd("[SOURce<n>:]LIST<n>:VOLTage", listSet(0, false)),
		cmd("[SOURce<n>:]LIST<n>:CURRent", listSet(1, false)),
		cmd("[SOURce<n>:]LIST<n>:DWELl", listSet(2, false)),
		cmd("[SOURce<n>:]LIST<n>:VOLTage:APPend", listSet(0, true)),
		cmd("[SOURce<n>:]LIST<n>:CURRent:APPend", listSet(1, true)),
		cmd("[SOURce<n>:]LIST<n>:DWELl:APPend", listSet(2, true)),
		cmd("[SOURce<n>:]LIST:SAVE:INTernal", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			n, err := number(c.params[0], "", 1, 9, 1)
			if err != nil {
				return "", err
			}
			l := lists[int(n)]
			if l == nil || len(l[0]) == 0 || len(l[0]) != len(l[1]) || len(l[0]) != len(l[2]) {
				return "", fail(errListLengths, "")
			}
			steps := make([]step, len(l[0]))
			for j := range steps {
				steps[j] = step{v: l[0][j], i: l[1][j], dwell: time.Duration(l[2][j] * 1e9)}
			}
			saved[int(n)] = steps
			return "", nil
		}),
		// Assumed: recall a saved list as the one the trigger runs.
		cmd("[SOURce<n>:]LIST:RECall", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			n, err := number(c.params[0], "", 1, 9, 1)
			if err != nil {
				return "", err
			}
			if saved[int(n)] == nil {
				return "", fail(errSettingsConflct, "list %d not saved", int(n))
			}
			ch(in).list = saved[int(n)]
			ch(in).listTermLast = true
			return "", nil
		}),
		cmd("TRIGger[:SEQuence]:SOURce", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			switch s := strings.ToUpper(c.params[0]); s {
			case "BUS", "IMM", "IMMEDIATE":
				in.trigSrc = s[:3]
				return "", nil
			}
			return "", fail(errIllegalValue, "trigger source %q", c.params[0])
		}),
		cmd("INITiate[:IMMediate]", func(in *Instrument, c *call) (string, *scpiErr) {
			k := ch(in)
			if len(k.list) == 0 {
				return "", fail(errSettingsConflct, "no list recalled")
			}
			if in.trigSrc == "IMM" {
				in.fire(k)
			} else {
				k.armed = true
			}
			return "", c.nparams(0, 0)
		}),
	)
	return d
}

// ---------------------------------------------------------------------------
// R&S HMP (and NGx): a selected channel (INST:NSEL), OUTP:SEL and the master
// OUTP:GEN, OVP, an electronic fuse as OCP, EasyArb/QuickArb (v,i,t
// triplets) transferred to a channel and started.

func hmp() *dialect {
	d := &dialect{name: "rs-hmp", num: fixNum, masterSwitch: true, fuseAtLimit: true,
		models: []model{
			{name: "HMP4040", idn: "HAMEG,HMP4040,100000,HW50020001/SW2.51", ranges: []rng{{32, 10}, {32, 10}, {32, 10}, {32, 10}},
				arbPoints: 128, arbMinDwell: 10 * time.Millisecond},
			{name: "HMP2030", idn: "ROHDE&SCHWARZ,HMP2030,100001,HW50020001/SW2.51", ranges: []rng{{32, 5}, {32, 5}, {32, 5}},
				arbPoints: 128, arbMinDwell: 10 * time.Millisecond},
			{name: "NGM202", idn: "Rohde&Schwarz,NGM202,3638.4472k02/100002,02.071", ranges: []rng{{20, 6}, {20, 6}},
				arbPoints: 4096, arbMinDwell: time.Millisecond},
		}}
	sel := func(in *Instrument) *channel { return in.chans[in.sel-1] }
	var arbData []step
	reps := 1
	onePar := func(f func(in *Instrument, k *channel, p string) *scpiErr) handler {
		return func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			return "", f(in, sel(in), c.params[0])
		}
	}
	chArg := func(in *Instrument, c *call) (*channel, *scpiErr) {
		if err := c.nparams(1, 1); err != nil {
			return nil, err
		}
		n, err := number(c.params[0], "", 1, float64(len(in.chans)), 1)
		if err != nil {
			return nil, err
		}
		return in.chans[int(n)-1], nil
	}
	d.entries = append(common(true, false),
		cmd("INSTrument:NSELect", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			n, err := number(c.params[0], "", 1, float64(len(in.chans)), 1)
			if err == nil {
				in.sel = int(n)
			}
			return "", err
		}),
		qry("INSTrument:NSELect", func(in *Instrument, c *call) (string, *scpiErr) { return strconv.Itoa(in.sel), nil }),
		cmd("INSTrument[:SELect]", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			t := strings.ToUpper(c.params[0])
			for _, p := range []string{"OUTPUT", "OUTP", "OUT", "CH"} {
				if rest, ok := strings.CutPrefix(t, p); ok {
					if n, err := strconv.Atoi(rest); err == nil && n >= 1 && n <= len(in.chans) {
						in.sel = n
						return "", nil
					}
				}
			}
			return "", fail(errIllegalValue, "no output %q", c.params[0])
		}),
		cmd("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", onePar(setVolts)),
		qry("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", func(in *Instrument, c *call) (string, *scpiErr) { return fmt.Sprintf("%.3f", sel(in).setV), nil }),
		cmd("[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]", onePar(setAmps)),
		qry("[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]", func(in *Instrument, c *call) (string, *scpiErr) { return fmt.Sprintf("%.4f", sel(in).setI), nil }),
		cmd("APPLy", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(2, 2); err != nil {
				return "", err
			}
			if err := setVolts(in, sel(in), c.params[0]); err != nil {
				return "", err
			}
			return "", setAmps(in, sel(in), c.params[1])
		}),
		cmd("OUTPut:SELect[:STATe]", onePar(func(in *Instrument, k *channel, p string) *scpiErr {
			b, err := boolean(p)
			if err != nil {
				return err
			}
			if b {
				if k.tripOVP {
					return fail(errSettingsConflct, "OVP tripped: clear it first")
				}
				if k.tripOCP {
					k.tripOCP = false // selecting the output again resets the fuse
					in.emit(k, "clear", "fuse")
				}
			}
			was := in.outputOn(k)
			k.selected = b
			if in.outputOn(k) != was {
				in.emit(k, "output", "OUTP:SEL")
			}
			in.checkProtectionLocked(k)
			return nil
		})),
		qry("OUTPut:SELect[:STATe]", func(in *Instrument, c *call) (string, *scpiErr) { return boolAns(sel(in).selected), nil }),
		cmd("OUTPut:GENeral[:STATe]", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			b, err := boolean(c.params[0])
			if err != nil {
				return "", err
			}
			var was []bool
			for _, k := range in.chans {
				was = append(was, in.outputOn(k))
			}
			in.general = b
			for j, k := range in.chans {
				if !in.outputOn(k) {
					in.stopListLocked(k)
				}
				if in.outputOn(k) != was[j] {
					in.emit(k, "output", "OUTP:GEN")
				}
				in.checkProtectionLocked(k)
			}
			return "", nil
		}),
		qry("OUTPut:GENeral[:STATe]", func(in *Instrument, c *call) (string, *scpiErr) { return boolAns(in.general), nil }),
		cmd("OUTPut[:STATe]", onePar(func(in *Instrument, k *channel, p string) *scpiErr {
			b, err := boolean(p)
			if err != nil {
				return err
			}
			return in.setOutputLocked(k, b)
		})),
		qry("OUTPut[:STATe]", func(in *Instrument, c *call) (string, *scpiErr) { return boolAns(in.outputOn(sel(in))), nil }),
		qry("MEASure[:SCALar]:VOLTage[:DC]", func(in *Instrument, c *call) (string, *scpiErr) {
			v, _ := in.measureLocked(sel(in))
			return fmt.Sprintf("%.4f", v), nil
		}),
		qry("MEASure[:SCALar]:CURRent[:DC]", func(in *Instrument, c *call) (string, *scpiErr) {
			_, i := in.measureLocked(sel(in))
			return fmt.Sprintf("%.4f", i), nil
		}),
		cmd("[SOURce:]VOLTage:PROTection[:LEVel]", onePar(func(in *Instrument, k *channel, p string) *scpiErr {
			k.ovpOn = true // the HMP's OVP is always armed at its level
			return setOVP(in, k, p)
		})),
		qry("[SOURce:]VOLTage:PROTection[:LEVel]", func(in *Instrument, c *call) (string, *scpiErr) { return fmt.Sprintf("%.3f", sel(in).ovp), nil }),
		qry("[SOURce:]VOLTage:PROTection:TRIPped", func(in *Instrument, c *call) (string, *scpiErr) { return boolAns(sel(in).tripOVP), nil }),
		cmd("[SOURce:]VOLTage:PROTection:CLEar", func(in *Instrument, c *call) (string, *scpiErr) {
			clearTrips(in, sel(in), true, false)
			return "", c.nparams(0, 0)
		}),
		cmd("[SOURce:]VOLTage:PROTection:MODE", onePar(func(in *Instrument, k *channel, p string) *scpiErr { return nil })),
		cmd("FUSE[:STATe]", onePar(func(in *Instrument, k *channel, p string) *scpiErr {
			b, err := boolean(p)
			if err == nil {
				stateOCP(in, k, b)
			}
			return err
		})),
		qry("FUSE[:STATe]", func(in *Instrument, c *call) (string, *scpiErr) { return boolAns(sel(in).ocpOn), nil }),
		qry("FUSE:TRIPped", func(in *Instrument, c *call) (string, *scpiErr) { return boolAns(sel(in).tripOCP), nil }),
		cmd("FUSE:DELay[:INITial]", onePar(func(in *Instrument, k *channel, p string) *scpiErr { return nil })),
		cmd("ARBitrary:DATA", func(in *Instrument, c *call) (string, *scpiErr) {
			ps := c.params
			if len(ps) == 0 {
				return "", fail(errMissingParam, "")
			}
			if len(ps)%3 != 0 {
				return "", fail(errMissingParam, "ARB:DATA takes voltage,current,time triplets")
			}
			if len(ps)/3 > in.model.arbPoints {
				return "", fail(errTooMuchData, "%d points, at most %d", len(ps)/3, in.model.arbPoints)
			}
			var data []step
			top := in.chans[0]
			for j := 0; j < len(ps); j += 3 {
				v, err := number(ps[j], "V", 0, top.maxV, 0)
				if err != nil {
					return "", err
				}
				i, err := number(ps[j+1], "A", 0, top.maxI, 0)
				if err != nil {
					return "", err
				}
				t, err := number(ps[j+2], "S", in.model.arbMinDwell.Seconds(), 60, 0)
				if err != nil {
					return "", err
				}
				data = append(data, step{v: v, i: i, dwell: time.Duration(t*1e9 + 0.5)})
			}
			arbData = data
			return "", nil
		}),
		cmd("ARBitrary:REPetitions", func(in *Instrument, c *call) (string, *scpiErr) {
			if err := c.nparams(1, 1); err != nil {
				return "", err
			}
			n, err := number(c.params[0], "", 0, 255, 1)
			reps = int(n)
			return "", err
		}),
		cmd("ARBitrary:CLEar", func(in *Instrument, c *call) (string, *scpiErr) { arbData = nil; return "", c.nparams(0, 0) }),
		cmd("ARBitrary:TRANsfer", func(in *Instrument, c *call) (string, *scpiErr) {
			k, err := chArg(in, c)
			if err != nil {
				return "", err
			}
			if len(arbData) == 0 {
				return "", fail(errSettingsConflct, "no ARB data")
			}
			k.list = append([]step(nil), arbData...)
			k.listCount = reps // 0: endless
			k.listTermLast = true
			return "", nil
		}),
		cmd("ARBitrary:STARt", func(in *Instrument, c *call) (string, *scpiErr) {
			k, err := chArg(in, c)
			if err != nil {
				return "", err
			}
			if len(k.list) == 0 {
				return "", fail(errSettingsConflct, "no ARB transferred to channel %d", k.num)
			}
			in.fire(k)
			return "", nil
		}),
		cmd("ARBitrary:STOP", func(in *Instrument, c *call) (string, *scpiErr) {
			k, err := chArg(in, c)
			if err != nil {
				return "", err
			}
			in.stopListLocked(k)
			return "", nil
		}),
	)
	return d
}

// dialects are the emulated instruments' constructors.
var dialects = []func() *dialect{e36, n67, dp800, spd3303x, k2280s, hmp}
