package power

import (
	"math"
	"strings"
	"testing"
)

var noLeak = math.Inf(1)

// inas is iNAS's default capacitor: 100 uF, 2.8 V / 2.4 V.
func inas(v0 float64) Config {
	return Config{
		Cap:        Capacitor{C: 100e-6, Vmax: 3.3, Rleak: noLeak},
		Th:         Thresholds{Von: 2.8, Voff: 2.4},
		Efficiency: 1,
		V0:         v0,
	}
}

func mustNew(t testing.TB, c Config) *System {
	t.Helper()
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func relErr(got, want float64) float64 {
	if got == want {
		return 0
	}
	return math.Abs(got-want) / math.Max(math.Abs(want), math.SmallestNonzeroFloat64)
}

func TestValidate(t *testing.T) {
	ok := inas(2.5)
	if err := ok.Validate(); err != nil {
		t.Fatalf("iNAS defaults: %v", err)
	}
	leaky := ok
	leaky.Cap.Rleak = 1e3
	if err := leaky.Validate(); err != nil {
		t.Fatalf("1 kOhm leakage: %v", err)
	}
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"Voff above Von", func(c *Config) { c.Th.Voff = 2.9 }, "power: thresholds: Voff 2.9 V must be below Von 2.8 V"},
		{"Voff equals Von", func(c *Config) { c.Th.Voff = 2.8 }, "power: thresholds: Voff 2.8 V must be below Von 2.8 V"},
		{"Voff zero", func(c *Config) { c.Th.Voff = 0 }, "power: thresholds: Voff 0 V must be positive"},
		{"Von NaN", func(c *Config) { c.Th.Von = math.NaN() }, "power: thresholds: Von NaN V"},
		{"Von above Vmax", func(c *Config) { c.Th.Von = 3.4 }, "power: thresholds: Von 3.4 V must not exceed the capacitor's Vmax 3.3 V"},
		{"C zero", func(c *Config) { c.Cap.C = 0 }, "power: capacitor: C 0 F"},
		{"C NaN", func(c *Config) { c.Cap.C = math.NaN() }, "power: capacitor: C NaN F"},
		{"C Inf", func(c *Config) { c.Cap.C = math.Inf(1) }, "power: capacitor: C +Inf F"},
		{"Vmax negative", func(c *Config) { c.Cap.Vmax = -1 }, "power: capacitor: Vmax -1 V"},
		{"Rleak zero", func(c *Config) { c.Cap.Rleak = 0 }, "power: capacitor: Rleak 0 ohm must be positive (math.Inf(1) for no leakage)"},
		{"Rleak NaN", func(c *Config) { c.Cap.Rleak = math.NaN() }, "power: capacitor: Rleak NaN ohm"},
		{"Rleak negative", func(c *Config) { c.Cap.Rleak = -5 }, "power: capacitor: Rleak -5 ohm"},
		{"Rleak*C underflow", func(c *Config) { c.Cap.Rleak = 1e-310 }, "overflow float64"},
		{"efficiency zero", func(c *Config) { c.Efficiency = 0 }, "power: efficiency 0 must be in (0, 1]"},
		{"efficiency above 1", func(c *Config) { c.Efficiency = 1.01 }, "power: efficiency 1.01"},
		{"efficiency NaN", func(c *Config) { c.Efficiency = math.NaN() }, "power: efficiency NaN"},
		{"V0 negative", func(c *Config) { c.V0 = -0.1 }, "power: V0 -0.1 V must be in [0, Vmax 3.3 V]"},
		{"V0 above Vmax", func(c *Config) { c.V0 = 3.31 }, "power: V0 3.31 V"},
		{"V0 NaN", func(c *Config) { c.V0 = math.NaN() }, "power: V0 NaN V"},
	}
	for _, tc := range cases {
		c := inas(2.5)
		tc.mod(&c)
		err := c.Validate()
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, tc.want) && !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, msg, tc.want)
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("%s: multi-line error %q", tc.name, msg)
		}
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted it", tc.name)
		}
	}
}

func TestCycleBudget(t *testing.T) {
	if got := inas(0).CycleBudget(); relErr(got, 104e-6) > 1e-14 {
		t.Errorf("iNAS defaults: %g J, want 104 uJ", got)
	}
	exp := Config{Cap: Capacitor{C: 5e-3, Vmax: 3.0, Rleak: 1e3}, Th: Thresholds{Von: 2.99, Voff: 2.8}, Efficiency: 1}
	if got := exp.CycleBudget(); relErr(got, 2.75025e-3) > 1e-12 {
		t.Errorf("iNAS experiment: %g J, want 2.75025 mJ", got)
	}
}

func TestEventString(t *testing.T) {
	for ev, want := range []string{"none", "turned-on", "browned-out"} {
		if got := Event(ev).String(); got != want {
			t.Errorf("Event(%d) = %q, want %q", ev, got, want)
		}
	}
	if got := Event(7).String(); got != "Event(7)" {
		t.Errorf("Event(7) = %q", got)
	}
}

// With no harvest and no leakage, a load P browns out after exactly
// (E(V) - E(Voff))/P.
func TestBrownOutTimeExact(t *testing.T) {
	for _, p := range []float64{1e-6, 3e-3, 6.5e-3, 0.1, 7.77} {
		for _, v0 := range []float64{2.8, 2.95, 3.3} {
			c := inas(v0)
			s := mustNew(t, c)
			if adv, ev := s.Advance(1); adv != 0 || ev != TurnedOn {
				t.Fatalf("V0 %g: first Advance = (%g, %v), want (0, turned-on)", v0, adv, ev)
			}
			if s.Voltage() != v0 {
				t.Fatalf("V0 %g: pending turn-on moved V to %g", v0, s.Voltage())
			}
			if err := s.SetLoad(p); err != nil {
				t.Fatal(err)
			}
			want := (c.Cap.Energy(v0) - c.Cap.Energy(c.Th.Voff)) / p
			if got := s.TimeUntilVoltage(c.Th.Voff); got != want {
				t.Errorf("P %g V0 %g: TimeUntilVoltage(Voff) %v, want %v", p, v0, got, want)
			}
			adv, ev := s.Advance(want * 3)
			if ev != BrownedOut || adv != want || s.Time() != want {
				t.Errorf("P %g V0 %g: Advance = (%v, %v) at %v, want (%v, browned-out)", p, v0, adv, ev, s.Time(), want)
			}
			if s.Voltage() != c.Th.Voff || s.Energy() != c.Cap.Energy(c.Th.Voff) || s.On() {
				t.Errorf("P %g V0 %g: after brown-out V %v E %v on %v", p, v0, s.Voltage(), s.Energy(), s.On())
			}
			cnt := s.Counters()
			if relErr(cnt.Delivered, c.Cap.Energy(v0)-c.Cap.Energy(c.Th.Voff)) > 1e-15 || cnt.TimeOn != want || cnt.BrownOuts != 1 || cnt.TurnOns != 1 {
				t.Errorf("P %g V0 %g: counters %+v", p, v0, cnt)
			}
		}
	}
}

// Advancing in pieces browns out at the same instant as one call.
func TestBrownOutInPieces(t *testing.T) {
	c := inas(2.8)
	s := mustNew(t, c)
	s.Advance(0)
	_ = s.SetLoad(5e-3)
	want := s.TimeUntilVoltage(2.4)
	var ev Event
	for ev == None {
		_, ev = s.Advance(1e-3)
	}
	if ev != BrownedOut || relErr(s.Time(), want) > 1e-13 {
		t.Errorf("brown-out at %v (%v), want %v", s.Time(), ev, want)
	}
}

func TestHysteresis(t *testing.T) {
	c := inas(2.6) // between Voff and Von, off
	c.Efficiency = 0.5
	s := mustNew(t, c)
	_ = s.SetLoad(10e-3)
	// Off: the load is remembered but not drawn.
	if adv, ev := s.Advance(10); adv != 10 || ev != None || s.Voltage() != 2.6 || s.On() {
		t.Fatalf("off with load: (%v, %v) V %v on %v", adv, ev, s.Voltage(), s.On())
	}
	if s.Counters().Delivered != 0 || s.Counters().TimeOff != 10 {
		t.Fatalf("off with load: counters %+v", s.Counters())
	}
	// Harvest 2 mW at 50 %: on at exactly Von after (E(Von)-E(2.6))/1 mW.
	_ = s.SetHarvest(2e-3)
	wantOn := (c.Cap.Energy(2.8) - c.Cap.Energy(2.6)) / 1e-3
	adv, ev := s.Advance(100)
	if ev != TurnedOn || relErr(adv, wantOn) > 1e-15 || s.Voltage() != 2.8 || s.Energy() != c.Cap.Energy(2.8) || !s.On() {
		t.Fatalf("turn-on: (%v, %v) V %v, want (%v, turned-on) at 2.8 V", adv, ev, s.Voltage(), wantOn)
	}
	// On with 10 mW load, 1 mW net in: net -9 mW, down to exactly Voff.
	wantOff := (c.Cap.Energy(2.8) - c.Cap.Energy(2.4)) / 9e-3
	adv, ev = s.Advance(100)
	if ev != BrownedOut || relErr(adv, wantOff) > 1e-15 || s.Voltage() != 2.4 || s.On() {
		t.Fatalf("brown-out: (%v, %v) V %v, want (%v, browned-out) at 2.4 V", adv, ev, s.Voltage(), wantOff)
	}
	// Off again: recharging through the band (2.4, 2.8) does not turn on.
	half := (c.Cap.Energy(2.6) - c.Cap.Energy(2.4)) / 1e-3
	if adv, ev = s.Advance(half); ev != None || adv != half || s.On() || relErr(s.Voltage(), 2.6) > 1e-12 {
		t.Fatalf("hysteresis band: (%v, %v) V %v on %v", adv, ev, s.Voltage(), s.On())
	}
	if adv, ev = s.Advance(100); ev != TurnedOn || relErr(adv, wantOn) > 1e-12 || s.Voltage() != 2.8 {
		t.Fatalf("second turn-on: (%v, %v) V %v, want (%v, turned-on)", adv, ev, s.Voltage(), wantOn)
	}
	cnt := s.Counters()
	if cnt.TurnOns != 2 || cnt.BrownOuts != 1 {
		t.Errorf("counters %+v", cnt)
	}
	if relErr(cnt.TimeOn+cnt.TimeOff, s.Time()) > 1e-15 {
		t.Errorf("TimeOn+TimeOff %v, Time %v", cnt.TimeOn+cnt.TimeOff, s.Time())
	}
}

func TestClampHoldsVmax(t *testing.T) {
	c := inas(2.8)
	c.Efficiency = 0.5
	s := mustNew(t, c)
	s.Advance(0)
	_ = s.SetHarvest(10e-3)
	_ = s.SetLoad(1e-3) // net +4 mW
	toMax := s.TimeUntilVoltage(3.3)
	wantToMax := (c.Cap.Energy(3.3) - c.Cap.Energy(2.8)) / 4e-3
	if relErr(toMax, wantToMax) > 1e-15 {
		t.Fatalf("TimeUntilVoltage(Vmax) %v, want %v", toMax, wantToMax)
	}
	if got := s.TimeUntilVoltage(3.31); !math.IsInf(got, 1) {
		t.Errorf("TimeUntilVoltage above Vmax: %v, want +Inf", got)
	}
	// One call crosses into the clamp and stays there.
	if adv, ev := s.Advance(toMax + 1); ev != None || adv != toMax+1 {
		t.Fatalf("Advance into clamp: (%v, %v)", adv, ev)
	}
	if s.Voltage() != 3.3 || s.Energy() != c.Cap.Energy(3.3) {
		t.Fatalf("clamped at V %v E %v", s.Voltage(), s.Energy())
	}
	if got := s.Counters().Clamped; relErr(got, 4e-3*1) > 1e-12 {
		t.Errorf("clamped %v J after 1 s of +4 mW surplus, want 4 mJ", got)
	}
	for i := 0; i < 100; i++ {
		s.Advance(0.01)
		if s.Voltage() != 3.3 {
			t.Fatalf("clamp left at %v V", s.Voltage())
		}
	}
	if got := s.Counters().Clamped; relErr(got, 8e-3) > 1e-12 {
		t.Errorf("clamped %v J after 2 s of +4 mW surplus, want 8 mJ", got)
	}
	if got := s.TimeUntilVoltage(3.3); got != 0 {
		t.Errorf("TimeUntilVoltage(Vmax) while clamped %v, want 0", got)
	}
	if got := s.TimeUntilVoltage(3.0); !math.IsInf(got, 1) {
		t.Errorf("TimeUntilVoltage(3.0) while clamped with surplus %v, want +Inf", got)
	}
	// A load above the harvest leaves the clamp at once.
	_ = s.SetLoad(6e-3) // net -1 mW
	s.Advance(0.1)
	wantE := c.Cap.Energy(3.3) - 1e-4
	if relErr(s.Energy(), wantE) > 1e-14 {
		t.Errorf("after leaving clamp E %v, want %v", s.Energy(), wantE)
	}
	// Balanced exactly at Vmax (net 0): stays, nothing burnt.
	s2 := mustNew(t, inas(3.3))
	s2.Advance(0)
	_ = s2.SetHarvest(2e-3)
	_ = s2.SetLoad(2e-3)
	s2.Advance(5)
	if s2.Voltage() != 3.3 || s2.Counters().Clamped != 0 {
		t.Errorf("net zero at Vmax: V %v clamped %v", s2.Voltage(), s2.Counters().Clamped)
	}
}

// With leakage the equilibrium a/b may lie below Emax: the capacitor
// approaches it and never clamps.
func TestLeakageEquilibriumBelowClamp(t *testing.T) {
	c := inas(0)
	c.Cap.Rleak = 10e3 // V^2/R at 3.3 V = 1.09 mW
	s := mustNew(t, c)
	_ = s.SetHarvest(0.5e-3) // equilibrium V = sqrt(P R) = 2.236 V, below Von
	veq := math.Sqrt(0.5e-3 * 10e3)
	if got := s.TimeUntilVoltage(veq); !math.IsInf(got, 1) {
		t.Errorf("time to the equilibrium %v, want +Inf", got)
	}
	if got := s.TimeUntilVoltage(2.8); !math.IsInf(got, 1) {
		t.Errorf("time to Von above the equilibrium %v, want +Inf", got)
	}
	if adv, ev := s.Advance(1000); ev != None || adv != 1000 {
		t.Fatalf("Advance: (%v, %v)", adv, ev)
	}
	if relErr(s.Voltage(), veq) > 1e-12 || s.On() || s.Counters().Clamped != 0 {
		t.Errorf("after 1000 s: V %v (want %v) on %v clamped %v", s.Voltage(), veq, s.On(), s.Counters().Clamped)
	}
	// Equilibrium between Vmax and the clamp: 3 mW * 10 kOhm -> 5.5 V > 3.3 V.
	s = mustNew(t, c)
	_ = s.SetHarvest(3e-3)
	adv, ev := s.Advance(1000)
	if ev != TurnedOn || s.Voltage() != 2.8 {
		t.Fatalf("turn-on: (%v, %v) V %v", adv, ev, s.Voltage())
	}
	// Time from 0 V to Von: E(t) = Eq (1 - exp(-b t)).
	b := 2 / (c.Cap.Rleak * c.Cap.C)
	eq := 3e-3 / b
	want := -math.Log(1-c.Cap.Energy(2.8)/eq) / b
	if relErr(adv, want) > 1e-13 {
		t.Errorf("turn-on after %v, want %v", adv, want)
	}
	s.Advance(1000)
	if s.Voltage() != 3.3 {
		t.Fatalf("not clamped: V %v", s.Voltage())
	}
	before := s.Counters()
	s.Advance(2)
	after := s.Counters()
	wantLeak := 2 * 3.3 * 3.3 / c.Cap.Rleak
	if relErr(after.Leaked-before.Leaked, wantLeak) > 1e-12 || relErr(after.Clamped-before.Clamped, 2*3e-3-wantLeak) > 1e-12 {
		t.Errorf("clamped with leakage: leaked %v (want %v), clamped %v", after.Leaked-before.Leaked, wantLeak, after.Clamped-before.Clamped)
	}
}

// Leakage drains an idle capacitor with time constant R*C/2 in energy.
func TestLeakageTimeConstant(t *testing.T) {
	for _, r := range []float64{1e3, 1e5, 1e8} {
		c := inas(2.6)
		c.Cap.Rleak = r
		s := mustNew(t, c)
		tau := r * c.Cap.C / 2
		e0 := s.Energy()
		for k := 1; k <= 3; k++ {
			if adv, ev := s.Advance(tau); ev != None || adv != tau {
				t.Fatalf("R %g: (%v, %v)", r, adv, ev)
			}
			if want := e0 * math.Exp(-float64(k)); relErr(s.Energy(), want) > 1e-13 {
				t.Errorf("R %g: E after %d tau %v, want %v", r, k, s.Energy(), want)
			}
			if want := 2.6 * math.Exp(-float64(k)/2); relErr(s.Voltage(), want) > 1e-13 {
				t.Errorf("R %g: V after %d tau %v, want %v", r, k, s.Voltage(), want)
			}
		}
		if got := s.Counters().Leaked; relErr(got, e0-s.Energy()) > 1e-13 {
			t.Errorf("R %g: leaked %v, want %v", r, got, e0-s.Energy())
		}
		// Tiny steps give the same result (no accumulation of cancellation).
		s2 := mustNew(t, c)
		for i := 0; i < 10000; i++ {
			s2.Advance(tau / 10000)
		}
		if relErr(s2.Energy(), e0/math.E) > 1e-11 || relErr(s2.Counters().Leaked, e0-s2.Energy()) > 1e-11 {
			t.Errorf("R %g: in 10000 steps E %v leaked %v, want %v", r, s2.Energy(), s2.Counters().Leaked, e0/math.E)
		}
	}
}

// Advance(TimeUntilVoltage(threshold)) hits the event after exactly that time.
func TestTimeUntilVoltageMatchesAdvance(t *testing.T) {
	for _, r := range []float64{noLeak, 1e4, 3e4, 1e7} {
		c := inas(2.8)
		c.Cap.Rleak = r
		c.Efficiency = 0.7
		s := mustNew(t, c)
		s.Advance(0)
		_ = s.SetHarvest(3e-3)
		_ = s.SetLoad(8e-3)
		for cyc := 0; cyc < 5; cyc++ {
			tOff := s.TimeUntilVoltage(c.Th.Voff)
			if adv, ev := s.Advance(tOff); adv != tOff || ev != BrownedOut {
				t.Fatalf("R %g: Advance(%v) = (%v, %v), want brown-out", r, tOff, adv, ev)
			}
			tOn := s.TimeUntilVoltage(c.Th.Von)
			if math.IsInf(tOn, 1) {
				t.Fatalf("R %g: never turns on", r)
			}
			if adv, ev := s.Advance(tOn); adv != tOn || ev != TurnedOn {
				t.Fatalf("R %g: Advance(%v) = (%v, %v), want turn-on", r, tOn, adv, ev)
			}
		}
	}
	s := mustNew(t, inas(2.5))
	if !math.IsNaN(s.TimeUntilVoltage(math.NaN())) || !math.IsInf(s.TimeUntilVoltage(-1), 1) || s.TimeUntilVoltage(2.5) != 0 {
		t.Error("TimeUntilVoltage of NaN, negative or current voltage")
	}
	if !math.IsNaN(s.TimeUntilEnergy(math.NaN())) || !math.IsInf(s.TimeUntilEnergy(-1), 1) {
		t.Error("TimeUntilEnergy of NaN or negative")
	}
}

func TestSetErrors(t *testing.T) {
	s := mustNew(t, inas(2.5))
	_ = s.SetHarvest(1e-3)
	_ = s.SetLoad(2e-3)
	for _, p := range []float64{-1e-9, math.NaN(), math.Inf(1), math.Inf(-1)} {
		if err := s.SetHarvest(p); err == nil || !strings.HasPrefix(err.Error(), "power: harvest") {
			t.Errorf("SetHarvest(%v): %v", p, err)
		}
		if err := s.SetLoad(p); err == nil || !strings.HasPrefix(err.Error(), "power: load") {
			t.Errorf("SetLoad(%v): %v", p, err)
		}
	}
	if s.Harvest() != 1e-3 || s.Load() != 2e-3 {
		t.Errorf("a rejected value changed the state: harvest %v load %v", s.Harvest(), s.Load())
	}
	if err := s.SetHarvest(0); err != nil {
		t.Error(err)
	}
	if s.Config() != inas(2.5) {
		t.Error("Config() differs")
	}
}

func TestAdvanceDegenerateDt(t *testing.T) {
	s := mustNew(t, inas(2.5))
	_ = s.SetHarvest(1e-3)
	for _, dt := range []float64{0, -1, math.NaN(), math.Inf(1), math.Inf(-1)} {
		if adv, ev := s.Advance(dt); adv != 0 || ev != None || s.Time() != 0 || s.Energy() != inas(2.5).Cap.Energy(2.5) {
			t.Errorf("Advance(%v) = (%v, %v)", dt, adv, ev)
		}
	}
	// A pending event is reported even for dt <= 0, once.
	s = mustNew(t, inas(3))
	if adv, ev := s.Advance(-1); adv != 0 || ev != TurnedOn || !s.On() || s.Voltage() != 3 {
		t.Errorf("pending turn-on: (%v, %v) V %v", adv, ev, s.Voltage())
	}
	if adv, ev := s.Advance(0); adv != 0 || ev != None {
		t.Errorf("after the pending turn-on: (%v, %v)", adv, ev)
	}
}

func TestPsiPhi(t *testing.T) {
	// Against the direct forms where they are accurate, and the limits.
	if psi(0) != 0.5 || phi1(0) != 1 {
		t.Fatal("limits at 0")
	}
	for _, x := range []float64{1e-300, 1e-12, 1e-6, 1e-3, 0.1, 0.3, 0.4999, 0.5, 0.7, 1, 3, 50, 1e6} {
		// psi(x) = (1 - phi1(x))/x computed in big steps via the series of exp
		var want float64
		if x < 1e-3 {
			want = 0.5 - x/6 + x*x/24
		} else if x < 0.6 {
			want = 0
			term := 0.5
			for k := 3; k < 60; k++ {
				want += term
				term *= -x / float64(k)
			}
		} else {
			want = (x - 1 + math.Exp(-x)) / (x * x)
		}
		if relErr(psi(x), want) > 1e-14 {
			t.Errorf("psi(%g) = %v, want %v", x, psi(x), want)
		}
		if wantPhi := (1 - math.Exp(-x)) / x; x > 0.1 && relErr(phi1(x), wantPhi) > 1e-14 {
			t.Errorf("phi1(%g) = %v, want %v", x, phi1(x), wantPhi)
		}
	}
}
