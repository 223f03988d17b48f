package supply

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/supply/scpi"
	"periph.io/x/conn/v3/physic"
)

// ProtectionMargin is how far above a run's highest setpoint the Guard
// arms over-voltage protection (never above the board's maximum).
const ProtectionMargin = 100 * physic.MilliVolt

// Limits bound what a Guard lets reach a channel: the board's, from its
// device profile.
type Limits struct {
	MaxVoltage physic.ElectricPotential
	MaxCurrent physic.ElectricCurrent
	// SlewVoltsPerSecond bounds how fast a setpoint moves while the
	// output is on (0: no bound).
	SlewVoltsPerSecond float64
	// Source says where the limits come from, for errors ("profile
	// msp430fr5994").
	Source string
}

// LimitsFromProfile takes the limits from a board profile: cpu.supply_max
// and cpu.supply_max_current.
func LimitsFromProfile(p *profiles.Profile) Limits {
	return Limits{MaxVoltage: FromVolts(p.SupplyMaxV), MaxCurrent: FromAmps(p.SupplyMaxA), Source: "profile " + p.Name}
}

// Plan is what a run will ask of the supply, known before it starts.
type Plan struct {
	MaxVoltage   physic.ElectricPotential // the run's highest setpoint
	CurrentLimit physic.ElectricCurrent   // the current limit for the run
}

// ErrOverLimit marks a setpoint, plan or list refused by a Guard before
// anything reached the instrument.
var ErrOverLimit = errors.New("over the limit")

// LimitError is a refusal: what, the value and the limit it broke.
type LimitError struct {
	What   string // "setpoint", "list step 3 voltage", ...
	Value  string
	Limit  string
	Source string
}

func (e *LimitError) Error() string {
	src := ""
	if e.Source != "" {
		src = " (" + e.Source + ")"
	}
	return fmt.Sprintf("%s %s refused before anything was sent: beyond %s%s", e.What, e.Value, e.Limit, src)
}

func (e *LimitError) Unwrap() error { return ErrOverLimit }

// TripError is a protection that switched the output off during a run.
type TripError struct {
	Channel  string
	Trip     Trip
	Software bool // found by the Guard's own check (the instrument has no OVP)
	Reading  Reading
}

func (e *TripError) Error() string {
	how := "the instrument's protection"
	if e.Software {
		how = "the guard's software check (the instrument has no OVP)"
	}
	return fmt.Sprintf("%s: %s tripped (%s; measured %s, %s): the output is off", e.Channel, e.Trip, how, e.Reading.Voltage, e.Reading.Current)
}

// GuardStats count what the Guard changed in what it was asked.
type GuardStats struct {
	Clamped     int // Follow setpoints moved inside the limits
	SlewLimited int // setpoints held back by the slew bound
}

// Guard stands between a run and a channel: it refuses setpoints beyond the
// board's limits before they are sent, arms protection before the output
// goes on, clamps and slew-limits streamed setpoints, validates a list
// whole before uploading it, notices protection trips, and (through Run)
// switches the output off on every way out.
type Guard struct {
	ch  Channel
	lim Limits

	prepared bool
	plan     Plan
	ovp      physic.ElectricPotential
	ocp      physic.ElectricCurrent
	hardware bool // protection armed in the instrument

	on       bool
	last     physic.ElectricPotential
	lastAt   time.Time
	haveLast bool
	stats    GuardStats

	// stepEvery is the pace of a slew-limited ramp.
	stepEvery time.Duration
	now       func() time.Time
}

// NewGuard guards ch with the limits.
func NewGuard(ch Channel, lim Limits) (*Guard, error) {
	if lim.MaxVoltage <= 0 || lim.MaxCurrent <= 0 {
		return nil, fmt.Errorf("supply guard: limits %s / %s: both must be above zero (%s)", lim.MaxVoltage, lim.MaxCurrent, lim.Source)
	}
	if lim.SlewVoltsPerSecond < 0 {
		return nil, fmt.Errorf("supply guard: slew %g V/s: must not be negative", lim.SlewVoltsPerSecond)
	}
	step := 10 * time.Millisecond
	if d := ch.Capabilities().MinCommandInterval; d > step {
		step = d
	}
	return &Guard{ch: ch, lim: lim, stepEvery: step, now: time.Now}, nil
}

// Channel is the guarded channel.
func (g *Guard) Channel() Channel { return g.ch }

// Stats says what the guard changed so far.
func (g *Guard) Stats() GuardStats { return g.stats }

// Protection is where the guard armed OVP and OCP, and whether in the
// instrument (false: software checks only).
func (g *Guard) Protection() (ovp physic.ElectricPotential, ocp physic.ElectricCurrent, hardware bool) {
	return g.ovp, g.ocp, g.hardware
}

func (g *Guard) check(ctx context.Context, where string) error {
	if c, ok := g.ch.(Checker); ok {
		return c.Check(ctx, where)
	}
	return nil
}

// Prepare switches the output off, checks the plan against the limits and
// the instrument, arms OVP at min(highest setpoint + 0.1 V, the board's
// maximum) and OCP (where there is one) at the run's current limit, sets
// the current limit, and drains the error queue. A plan beyond the limits
// is refused before anything is sent.
func (g *Guard) Prepare(ctx context.Context, plan Plan) error {
	if plan.MaxVoltage <= 0 {
		return fmt.Errorf("supply guard: plan: the highest setpoint %s must be above zero", plan.MaxVoltage)
	}
	if plan.MaxVoltage > g.lim.MaxVoltage {
		return &LimitError{"the run's highest setpoint", plan.MaxVoltage.String(), "the board's maximum " + g.lim.MaxVoltage.String(), g.lim.Source}
	}
	if plan.CurrentLimit <= 0 {
		return fmt.Errorf("supply guard: plan: the current limit %s must be above zero", plan.CurrentLimit)
	}
	if plan.CurrentLimit > g.lim.MaxCurrent {
		return &LimitError{"the run's current limit", plan.CurrentLimit.String(), "the board's maximum " + g.lim.MaxCurrent.String(), g.lim.Source}
	}
	caps := g.ch.Capabilities()
	if caps.MaxVoltage > 0 && plan.MaxVoltage > caps.MaxVoltage {
		return &LimitError{"the run's highest setpoint", plan.MaxVoltage.String(), "the channel's range " + caps.MaxVoltage.String(), caps.Dialect}
	}
	if err := g.ch.SetOutput(ctx, false); err != nil {
		return err
	}
	g.on = false
	g.plan = plan
	g.ovp = min(plan.MaxVoltage+ProtectionMargin, g.lim.MaxVoltage)
	g.ocp = plan.CurrentLimit
	if p, ok := g.ch.(Protector); ok && caps.OVP {
		ocp := physic.ElectricCurrent(0)
		if caps.OCP {
			ocp = g.ocp
		}
		if err := p.ArmProtection(ctx, g.ovp, ocp); err != nil {
			return err
		}
		g.hardware = true
	}
	if err := g.ch.SetCurrentLimit(ctx, plan.CurrentLimit); err != nil {
		return err
	}
	if err := g.check(ctx, "after configuration"); err != nil {
		return err
	}
	g.prepared = true
	return nil
}

// voltageCeiling is the highest setpoint allowed now.
func (g *Guard) voltageCeiling() physic.ElectricPotential {
	if g.prepared {
		return min(g.plan.MaxVoltage, g.lim.MaxVoltage)
	}
	return g.lim.MaxVoltage
}

func (g *Guard) currentCeiling() physic.ElectricCurrent {
	if g.prepared {
		return min(g.plan.CurrentLimit, g.lim.MaxCurrent)
	}
	return g.lim.MaxCurrent
}

func (g *Guard) ceilingName() string {
	if g.prepared {
		return "the run's highest setpoint " + g.voltageCeiling().String()
	}
	return "the board's maximum " + g.lim.MaxVoltage.String()
}

// SetVoltage sets a setpoint: refused (nothing sent) when negative or above
// the ceiling (the plan's highest setpoint once prepared, else the board's
// maximum); with a slew bound and the output on, reached by a ramp.
func (g *Guard) SetVoltage(ctx context.Context, v physic.ElectricPotential) error {
	if v < 0 || v > g.voltageCeiling() {
		return &LimitError{"setpoint", v.String(), g.ceilingName(), g.lim.Source}
	}
	if g.lim.SlewVoltsPerSecond > 0 && g.on && g.haveLast {
		stepV := FromVolts(g.lim.SlewVoltsPerSecond * g.stepEvery.Seconds())
		for stepV > 0 && absV(v-g.last) > stepV {
			next := g.last + stepV
			if v < g.last {
				next = g.last - stepV
			}
			if err := g.send(ctx, next); err != nil {
				return err
			}
			g.stats.SlewLimited++
			if err := Pause(ctx, g.stepEvery); err != nil {
				return err
			}
		}
	}
	return g.send(ctx, v)
}

// Follow streams a setpoint from a model: clamped into [0, ceiling] and,
// with a slew bound, moved at most the bound times the time since the last
// setpoint. It returns what was sent.
func (g *Guard) Follow(ctx context.Context, v physic.ElectricPotential) (physic.ElectricPotential, error) {
	want := v
	v = max(0, min(v, g.voltageCeiling()))
	if v != want {
		g.stats.Clamped++
	}
	if g.lim.SlewVoltsPerSecond > 0 && g.on && g.haveLast {
		maxStep := FromVolts(g.lim.SlewVoltsPerSecond * g.now().Sub(g.lastAt).Seconds())
		if d := v - g.last; absV(d) > maxStep {
			if d > 0 {
				v = g.last + maxStep
			} else {
				v = g.last - maxStep
			}
			g.stats.SlewLimited++
		}
	}
	return v, g.send(ctx, v)
}

func (g *Guard) send(ctx context.Context, v physic.ElectricPotential) error {
	if err := g.ch.SetVoltage(ctx, v); err != nil {
		return err
	}
	g.last, g.lastAt, g.haveLast = v, g.now(), true
	return nil
}

func absV(v physic.ElectricPotential) physic.ElectricPotential {
	if v < 0 {
		return -v
	}
	return v
}

// Pause waits d, or until ctx ends (its error then); a d of zero or
// less returns at once. Bench code waits with it between power edges.
func Pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// SetCurrentLimit changes the current limit within the plan's.
func (g *Guard) SetCurrentLimit(ctx context.Context, i physic.ElectricCurrent) error {
	if i <= 0 || i > g.currentCeiling() {
		return &LimitError{"current limit", i.String(), "the limit " + g.currentCeiling().String(), g.lim.Source}
	}
	return g.ch.SetCurrentLimit(ctx, i)
}

// SetOutput switches the output. On is refused until Prepare armed the
// protection, and comes after an error-queue checkpoint.
func (g *Guard) SetOutput(ctx context.Context, on bool) error {
	if !on {
		err := g.ch.SetOutput(ctx, false)
		if err == nil {
			g.on = false
		}
		return err
	}
	if !g.prepared {
		return errors.New("supply guard: output on refused: protection not armed (Prepare the run first)")
	}
	if err := g.check(ctx, "before output on"); err != nil {
		return err
	}
	if err := g.ch.SetOutput(ctx, true); err != nil {
		return err
	}
	g.on = true
	return nil
}

// SwitchAt switches the output at the wall instant at, for a run whose
// edges are timed: what switching on needs first (protection armed, the
// error-queue checkpoint), then a wait until at (a timer to within 10 ms,
// then a spin), then the command; a zero at is now. It
// returns the instant the command was written.
func (g *Guard) SwitchAt(ctx context.Context, on bool, at time.Time) (time.Time, error) {
	if on {
		if !g.prepared {
			return time.Time{}, errors.New("supply guard: output on refused: protection not armed (Prepare the run first)")
		}
		if err := g.check(ctx, "before output on"); err != nil {
			return time.Time{}, err
		}
	}
	// A timer wakes a busy host's process late by milliseconds: the last
	// 10 ms are a spin, on a thread of its own (a yield to the process's
	// other goroutines could come back too late).
	if d := time.Until(at); !at.IsZero() && d > 10*time.Millisecond {
		if err := Pause(ctx, d-10*time.Millisecond); err != nil {
			return time.Time{}, err
		}
	}
	runtime.LockOSThread()
	for time.Now().Before(at) && ctx.Err() == nil {
	}
	w := time.Now()
	runtime.UnlockOSThread()
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	if err := g.ch.SetOutput(ctx, on); err != nil {
		return w, err
	}
	g.on = on
	return w, nil
}

// Measure measures; an output found off that the guard had on is a trip
// (a *TripError) or, when no protection says so, an error of its own.
func (g *Guard) Measure(ctx context.Context) (Reading, error) {
	r, err := g.ch.Measure(ctx)
	if err != nil {
		return r, err
	}
	if g.on && !r.Output {
		if err := g.CheckTrip(ctx); err != nil {
			return r, err
		}
		g.on = false
		return r, fmt.Errorf("%s: the output went off by itself (no protection reports a trip)", g.ch)
	}
	return r, nil
}

// CheckTrip asks the instrument's protection whether it tripped; an
// instrument without OVP is measured instead, and a voltage above the OVP
// level switches the output off. A trip is a *TripError.
func (g *Guard) CheckTrip(ctx context.Context) error {
	if p, ok := g.ch.(Protector); ok && g.hardware {
		t, err := p.Tripped(ctx)
		if err != nil {
			return err
		}
		if t.Any() {
			g.on = false
			r, _ := g.ch.Measure(ctx)
			return &TripError{Channel: g.ch.String(), Trip: t, Reading: r}
		}
		return nil
	}
	if !g.prepared || !g.on {
		return nil
	}
	r, err := g.ch.Measure(ctx)
	if err != nil {
		return err
	}
	if r.Output && r.Voltage > g.ovp {
		offErr := g.ch.SetOutput(ctx, false)
		g.on = false
		return errors.Join(&TripError{Channel: g.ch.String(), Trip: Trip{OVP: true}, Software: true, Reading: r}, offErr)
	}
	return nil
}

// UploadList checks a list whole against the limits and the instrument
// (points, dwell, every setpoint) and only then uploads it.
func (g *Guard) UploadList(ctx context.Context, steps []Step) error {
	l, ok := g.ch.(Lister)
	caps := g.ch.Capabilities()
	if !ok || caps.List == nil {
		return fmt.Errorf("%s: %s has no list", g.ch, caps.Dialect)
	}
	lim := caps.List
	if len(steps) > lim.MaxPoints && caps.Arb != nil {
		lim = caps.Arb // the longer form (N67xx ARB CDW)
	}
	if err := ValidateList(steps, lim, g.voltageCeiling(), g.currentCeiling(), g.lim.Source); err != nil {
		return err
	}
	if err := l.UploadList(ctx, steps); err != nil {
		return err
	}
	return g.check(ctx, "after the list upload")
}

// ValidateList checks every step of a list against an instrument's list
// limits and the setpoint ceilings; the first violation is the error,
// naming its step (from 1).
func ValidateList(steps []Step, lim *ListLimits, maxV physic.ElectricPotential, maxI physic.ElectricCurrent, source string) error {
	if len(steps) == 0 {
		return errors.New("list: no steps")
	}
	if len(steps) > lim.MaxPoints {
		return fmt.Errorf("list: %d steps: the %s holds at most %d: %w", len(steps), lim.Kind, lim.MaxPoints, ErrOverLimit)
	}
	for i, s := range steps {
		n := i + 1
		if s.Voltage < 0 || s.Voltage > maxV {
			return &LimitError{fmt.Sprintf("list step %d voltage", n), s.Voltage.String(), "the ceiling " + maxV.String(), source}
		}
		if s.Current <= 0 || s.Current > maxI {
			return &LimitError{fmt.Sprintf("list step %d current", n), s.Current.String(), "the limit " + maxI.String(), source}
		}
		if s.Dwell < lim.MinDwell || (lim.MaxDwell > 0 && s.Dwell > lim.MaxDwell) {
			return &LimitError{fmt.Sprintf("list step %d dwell", n), s.Dwell.String(), fmt.Sprintf("the %s's %v to %v", lim.Kind, lim.MinDwell, lim.MaxDwell), ""}
		}
	}
	return nil
}

// ArmList arms an uploaded list; TriggerList starts it.
func (g *Guard) ArmList(ctx context.Context) error {
	l, ok := g.ch.(Lister)
	if !ok {
		return fmt.Errorf("%s: no list", g.ch)
	}
	return l.ArmList(ctx)
}

// TriggerList starts an armed list.
func (g *Guard) TriggerList(ctx context.Context) error {
	l, ok := g.ch.(Lister)
	if !ok {
		return fmt.Errorf("%s: no list", g.ch)
	}
	return l.TriggerList(ctx)
}

// offTimeout bounds the switch-off on the way out: a fresh context, since
// the run's own may be what ended it.
const offTimeout = 5 * time.Second

// Shutdown switches the output off with a fresh context and drains the
// error queue ("at the end"), whose answer also confirms the instrument
// took the command: a command without an answer, written on a connection
// the instrument had not yet accepted (one client at a time, the previous
// connection just cut by a signal), is lost without an error, and the
// query after it then fails with the connection. Up to three tries (the
// connection redials).
func (g *Guard) Shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), offTimeout)
	defer cancel()
	var err error
	for range 3 {
		if err = g.ch.SetOutput(ctx, false); err == nil {
			g.on = false
			if err = g.check(ctx, "at the end"); !errors.Is(err, scpi.ErrConnectionLost) {
				return err
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("%s: switching the output off: %w", g.ch, err)
}

// Run guards a run: it prepares the plan, calls fn with the guard, checks
// for a protection trip at the end, and switches the output off on every
// way out (an error, a cancelled context, a signal that cancelled it, a
// panic in fn, which is raised again once the output is off).
func Run(ctx context.Context, ch Channel, lim Limits, plan Plan, fn func(ctx context.Context, g *Guard) error) (err error) {
	g, err := NewGuard(ch, lim)
	if err != nil {
		return err
	}
	defer func() {
		r := recover()
		offErr := g.Shutdown()
		if r != nil {
			panic(r)
		}
		err = errors.Join(err, offErr)
	}()
	if err := g.Prepare(ctx, plan); err != nil {
		return err
	}
	if err := fn(ctx, g); err != nil {
		if ctx.Err() == nil {
			if terr := g.CheckTrip(ctx); terr != nil && !errors.Is(err, terr) {
				return errors.Join(err, terr)
			}
		}
		return err
	}
	return g.CheckTrip(ctx)
}
