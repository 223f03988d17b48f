package emubench

import (
	"sync"
	"time"

	"github.com/batteryless/harness/boards/profiles"
)

// capRail is the board's own capacitor and power management between the
// supply's output and the board (a Capacitor rail): the output charges the
// capacitor in constant current up to its voltage setpoint, and holds it
// there in constant voltage; the board draws its active power (its sleep
// power while halted in the rule's sleep) while its power management has
// it on: on at Von, off below Voff, as the device profile says. It is
// integrated in real time, in steps of at most 20 us.
type capRail struct {
	mu                    sync.Mutex
	c, von, voff, rleak   float64
	activeP, sleepP       float64
	v                     float64 // the capacitor's voltage
	t                     time.Time
	out                   bool    // the output is on
	vset, ilim            float64 // its setpoint and current limit
	iin                   float64 // the current the output gives now
	on, sleeping          bool    // the board's power, and its rule's sleep
	power                 func(on bool) error
	check                 func(v float64) // sees the voltage of a powered board
	powerOns, brownOuts   int
	lastOnAt, lastOffAt   time.Time
	maxStep, tick         time.Duration
	pendingOn, pendingOff bool
}

func newCapRail(p *profiles.Profile, power func(bool) error) *capRail {
	return &capRail{c: p.Power.CapacitanceF, von: p.Power.VonV, voff: p.Power.VoffV, rleak: p.Power.LeakageOhm,
		activeP: p.ActivePowerW, sleepP: p.SleepPowerW, t: time.Now(), power: power,
		maxStep: 20 * time.Microsecond, tick: 500 * time.Microsecond}
}

// advance integrates the capacitor up to now. Called with mu held.
func (r *capRail) advance(now time.Time) {
	for r.t.Before(now) {
		dt := min(now.Sub(r.t), r.maxStep)
		r.t = r.t.Add(dt)
		s := dt.Seconds()
		load := 0.0
		if r.on && r.v > 0 {
			p := r.activeP
			if r.sleeping {
				p = r.sleepP
			}
			load = p / r.v
		}
		if r.rleak > 0 {
			load += r.v / r.rleak
		}
		in := 0.0
		if r.out {
			if r.v < r.vset {
				in = r.ilim
			} else {
				in = min(r.ilim, load) // constant voltage: the output gives what is drawn
			}
		}
		r.iin = in
		r.v += (in - load) * s / r.c
		if r.out && r.v > r.vset && in > 0 {
			r.v = r.vset
		}
		r.v = max(r.v, 0)
		// The power management, within the step.
		switch {
		case !r.on && r.v >= r.von:
			r.on, r.pendingOn, r.pendingOff = true, true, false
			r.powerOns++
			r.lastOnAt = r.t
		case r.on && r.v < r.voff:
			r.on, r.sleeping, r.pendingOff, r.pendingOn = false, false, true, false
			r.brownOuts++
			r.lastOffAt = r.t
		}
	}
}

// settle integrates to now and passes a power change to the board.
func (r *capRail) settle() {
	r.mu.Lock()
	r.advance(time.Now())
	on, off := r.pendingOn, r.pendingOff
	r.pendingOn, r.pendingOff = false, false
	sleeping, v, on := r.sleeping, r.v, r.on
	r.mu.Unlock()
	if on && r.check != nil {
		r.check(v)
	}
	switch {
	case off:
		_ = r.power(false)
	case on:
		_ = r.power(true)
	case sleeping && v >= r.von-1e-6:
		_ = r.power(true) // (wakes the rule's sleep)
	}
}

// set takes the output's state after an instrument event.
func (r *capRail) set(out bool, vset, ilim float64) {
	r.mu.Lock()
	r.advance(time.Now())
	r.out, r.vset, r.ilim = out, vset, ilim
	r.mu.Unlock()
	r.settle()
}

// setSleeping says whether the board is halted in its rule's sleep.
func (r *capRail) setSleeping(s bool) {
	r.mu.Lock()
	r.advance(time.Now())
	r.sleeping = s && r.on
	r.mu.Unlock()
}

// volts is the capacitor's voltage now.
func (r *capRail) volts() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advance(time.Now())
	return r.v
}

// meter is what the output measures: the capacitor's voltage, the current
// it gives. (Called with the instrument's lock held.)
func (r *capRail) meter() (float64, float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.advance(time.Now())
	return r.v, r.iin
}

// run integrates the rail every tick until closing.
func (r *capRail) run(closing <-chan struct{}) {
	t := time.NewTicker(r.tick)
	defer t.Stop()
	for {
		select {
		case <-closing:
			return
		case <-t.C:
			r.settle()
		}
	}
}
