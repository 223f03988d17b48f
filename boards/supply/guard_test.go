package supply_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batteryless/harness/harness/testenv"

	"periph.io/x/conn/v3/physic"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/supply"
	_ "github.com/batteryless/harness/boards/supply/dialect"
	"github.com/batteryless/harness/boards/supply/emulator"
	"github.com/batteryless/harness/boards/supply/scpi"
)

// bench is an emulated instrument, a channel on it, and the transcript of
// everything sent.
type bench struct {
	in  *emulator.Instrument
	ch  supply.Channel
	log *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sent lists the commands in the transcript.
func (s *syncBuffer) sent() []string {
	var out []string
	for _, l := range strings.Split(s.String(), "\n") {
		if _, cmd, ok := strings.Cut(l, " > "); ok {
			out = append(out, cmd)
		}
	}
	return out
}

func newBench(t *testing.T, dialect string) *bench {
	t.Helper()
	in, err := emulator.New(emulator.Config{Dialect: dialect})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := in.ServeTCP(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	ch, err := supply.Open(ctx, "tcp://"+addr.String(), supply.Options{Transcript: scpi.NewTranscript(log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close(); cancel(); in.Close() })
	return &bench{in: in, ch: ch, log: log}
}

// msp430 are the MSP430FR5994 profile's limits: 3.6 V, 20 mA.
func msp430(t *testing.T) supply.Limits {
	p, err := profiles.Load("msp430fr5994")
	if err != nil {
		t.Fatal(err)
	}
	lim := supply.LimitsFromProfile(p)
	if lim.MaxVoltage != 3600*physic.MilliVolt || lim.MaxCurrent != 20*physic.MilliAmpere {
		t.Fatalf("limits %+v", lim)
	}
	return lim
}

var plan33 = supply.Plan{MaxVoltage: 3300 * physic.MilliVolt, CurrentLimit: 20 * physic.MilliAmpere}

// TestSetpointAboveTheLimitNeverReachesTheInstrument: setpoints, plans and
// lists beyond the profile's limits are refused before anything is sent.
func TestSetpointAboveTheLimitNeverReachesTheInstrument(t *testing.T) {
	b := newBench(t, "keysight-n67")
	ctx := context.Background()
	g, err := supply.NewGuard(b.ch, msp430(t))
	if err != nil {
		t.Fatal(err)
	}
	n0 := len(b.log.sent())
	if err := g.SetVoltage(ctx, 4*physic.Volt); !errors.Is(err, supply.ErrOverLimit) {
		t.Fatalf("4 V before prepare: %v", err)
	}
	if err := g.Prepare(ctx, supply.Plan{MaxVoltage: 3700 * physic.MilliVolt, CurrentLimit: 10 * physic.MilliAmpere}); !errors.Is(err, supply.ErrOverLimit) {
		t.Fatalf("a 3.7 V plan: %v", err)
	}
	if err := g.Prepare(ctx, supply.Plan{MaxVoltage: 3 * physic.Volt, CurrentLimit: 50 * physic.MilliAmpere}); !errors.Is(err, supply.ErrOverLimit) {
		t.Fatalf("a 50 mA plan: %v", err)
	}
	if got := b.log.sent(); len(got) != n0 {
		t.Fatalf("refusals sent %v", got[n0:])
	}
	if err := g.Prepare(ctx, plan33); err != nil {
		t.Fatal(err)
	}
	for _, v := range []physic.ElectricPotential{3400 * physic.MilliVolt, 3601 * physic.MilliVolt, 5 * physic.Volt, -1} {
		err := g.SetVoltage(ctx, v)
		var le *supply.LimitError
		if !errors.As(err, &le) || !strings.Contains(err.Error(), "refused before anything was sent") {
			t.Fatalf("SetVoltage(%v) = %v", v, err)
		}
	}
	if err := g.SetCurrentLimit(ctx, 25*physic.MilliAmpere); !errors.Is(err, supply.ErrOverLimit) {
		t.Fatalf("25 mA: %v", err)
	}
	steps := []supply.Step{
		{Voltage: 3 * physic.Volt, Current: 10 * physic.MilliAmpere, Dwell: time.Millisecond},
		{Voltage: 3700 * physic.MilliVolt, Current: 10 * physic.MilliAmpere, Dwell: time.Millisecond},
	}
	err = g.UploadList(ctx, steps)
	if !errors.Is(err, supply.ErrOverLimit) || !strings.Contains(err.Error(), "list step 2 voltage") {
		t.Fatalf("list with a 3.7 V step: %v", err)
	}
	// Followed setpoints are clamped instead.
	sent, err := g.Follow(ctx, 5*physic.Volt)
	if err != nil || sent != 3300*physic.MilliVolt || g.Stats().Clamped != 1 {
		t.Fatalf("Follow(5 V) sent %v, %v, stats %+v", sent, err, g.Stats())
	}
	for _, cmd := range b.log.sent() {
		if strings.HasPrefix(cmd, "LIST:") || strings.HasPrefix(cmd, "VOLT 3.4") || strings.HasPrefix(cmd, "VOLT 3.6") ||
			strings.HasPrefix(cmd, "VOLT 4") || strings.HasPrefix(cmd, "VOLT 5") || strings.HasPrefix(cmd, "CURR 0.025") {
			t.Fatalf("%q reached the instrument", cmd)
		}
	}
	for _, e := range b.in.Events() {
		if e.Volts > 3.3+1e-9 && e.Kind == "voltage" {
			t.Fatalf("the instrument saw %g V", e.Volts)
		}
	}
}

// TestProtectionArmedBeforeOutputOn: OVP at the highest setpoint + 0.1 V
// (never above the board's maximum), OCP at the current limit, both before
// the output goes on; output on is refused before the plan is prepared.
func TestProtectionArmedBeforeOutputOn(t *testing.T) {
	for _, tc := range []struct {
		plan    physic.ElectricPotential
		wantOVP float64
	}{{3300 * physic.MilliVolt, 3.4}, {3550 * physic.MilliVolt, 3.6}, {3600 * physic.MilliVolt, 3.6}} {
		b := newBench(t, "rigol-dp800")
		ctx := context.Background()
		g, err := supply.NewGuard(b.ch, msp430(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := g.SetOutput(ctx, true); err == nil {
			t.Fatal("output on before prepare")
		}
		if err := g.Prepare(ctx, supply.Plan{MaxVoltage: tc.plan, CurrentLimit: 10 * physic.MilliAmpere}); err != nil {
			t.Fatal(err)
		}
		if err := g.SetVoltage(ctx, tc.plan); err != nil {
			t.Fatal(err)
		}
		if err := g.SetOutput(ctx, true); err != nil {
			t.Fatal(err)
		}
		if _, err := g.Measure(ctx); err != nil {
			t.Fatal(err)
		}
		st := b.in.State(1)
		if !st.On || !st.OVPOn || math.Abs(st.OVP-tc.wantOVP) > 1e-9 || !st.OCPOn || math.Abs(st.OCP-0.01) > 1e-9 {
			t.Fatalf("plan %v: state %+v, want OVP %g V and OCP 10 mA armed", tc.plan, st, tc.wantOVP)
		}
		var armed, on int = -1, -1
		for i, e := range b.in.Events() {
			if e.Kind == "ovp" && armed < 0 && strings.HasPrefix(e.Detail, "on") {
				armed = i
			}
			if e.Kind == "output" && e.On && on < 0 {
				on = i
			}
		}
		if armed < 0 || on < armed {
			t.Fatalf("OVP armed at event %d, output on at %d", armed, on)
		}
		if err := g.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOutputOffOnEveryExitPath: Run switches the output off when fn
// returns, fails, is cancelled, or panics (the panic goes on).
func TestOutputOffOnEveryExitPath(t *testing.T) {
	lim := supply.Limits{MaxVoltage: 3600 * physic.MilliVolt, MaxCurrent: 20 * physic.MilliAmpere}
	on := func(ctx context.Context, g *supply.Guard) error {
		if err := g.SetVoltage(ctx, 3*physic.Volt); err != nil {
			return err
		}
		return g.SetOutput(ctx, true)
	}
	cases := map[string]func(ctx context.Context, g *supply.Guard) error{
		"return": on,
		"error": func(ctx context.Context, g *supply.Guard) error {
			if err := on(ctx, g); err != nil {
				return err
			}
			return errors.New("the run failed")
		},
		"cancel": func(ctx context.Context, g *supply.Guard) error {
			if err := on(ctx, g); err != nil {
				return err
			}
			<-ctx.Done()
			return ctx.Err()
		},
		"panic": func(ctx context.Context, g *supply.Guard) error {
			if err := on(ctx, g); err != nil {
				return err
			}
			panic("boom")
		},
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			b := newBench(t, "keysight-e36")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if name == "cancel" {
				time.AfterFunc(200*time.Millisecond, cancel)
			}
			var err error
			var recovered any
			func() {
				defer func() { recovered = recover() }()
				err = supply.Run(ctx, b.ch, lim, plan33, fn)
			}()
			switch name {
			case "return":
				if err != nil {
					t.Fatal(err)
				}
			case "error":
				if err == nil || !strings.Contains(err.Error(), "the run failed") {
					t.Fatalf("err = %v", err)
				}
			case "cancel":
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v", err)
				}
			case "panic":
				if recovered != "boom" {
					t.Fatalf("recovered %v, want the panic raised again", recovered)
				}
			}
			ev := b.in.Events()
			var ons, offs int
			for _, e := range ev {
				if e.Kind == "output" {
					if e.On {
						ons++
					} else {
						offs++
					}
				}
			}
			if st := b.in.State(1); st.On || ons != 1 || offs != 1 {
				t.Fatalf("state %+v, %d on and %d off events", st, ons, offs)
			}
		})
	}
}

// TestTripDetectedAndReported: a board drawing more than the current limit
// trips OCP; the run ends with a TripError naming it, the output off.
func TestTripDetectedAndReported(t *testing.T) {
	b := newBench(t, "keysight-e36")
	err := supply.Run(context.Background(), b.ch, msp430(t), plan33, func(ctx context.Context, g *supply.Guard) error {
		if err := g.SetVoltage(ctx, 3*physic.Volt); err != nil {
			return err
		}
		if err := g.SetOutput(ctx, true); err != nil {
			return err
		}
		b.in.SetDraw(1, 0.05)
		_, err := g.Measure(ctx)
		return err
	})
	var te *supply.TripError
	if !errors.As(err, &te) || !te.Trip.OCP || te.Software {
		t.Fatalf("err = %v, want an OCP trip", err)
	}
	if b.in.State(1).On {
		t.Fatal("output on after the trip")
	}
}

// TestSoftwareOVPWithoutHardware: the SPD3303X has no OVP; the guard's own
// check finds a voltage above the OVP level and switches the output off.
func TestSoftwareOVPWithoutHardware(t *testing.T) {
	b := newBench(t, "siglent-spd3303x")
	ctx := context.Background()
	g, err := supply.NewGuard(b.ch, msp430(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Prepare(ctx, plan33); err != nil {
		t.Fatal(err)
	}
	if _, _, hw := g.Protection(); hw {
		t.Fatal("hardware protection on an SPD3303X")
	}
	if err := g.SetVoltage(ctx, 3*physic.Volt); err != nil {
		t.Fatal(err)
	}
	if err := g.SetOutput(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := g.CheckTrip(ctx); err != nil {
		t.Fatal(err)
	}
	// Something else (a person at the front panel) raises the output.
	if err := g.Channel().SetVoltage(ctx, 3500*physic.MilliVolt); err != nil {
		t.Fatal(err)
	}
	err = g.CheckTrip(ctx)
	var te *supply.TripError
	if !errors.As(err, &te) || !te.Software || !te.Trip.OVP {
		t.Fatalf("err = %v, want a software OVP trip", err)
	}
	time.Sleep(50 * time.Millisecond)
	if b.in.State(1).On {
		t.Fatal("output still on")
	}
}

// TestSlewLimit: with a slew bound, Follow moves at most the bound times
// the time since the last setpoint, and SetVoltage ramps.
func TestSlewLimit(t *testing.T) {
	b := newBench(t, "keysight-n67")
	ctx := context.Background()
	lim := msp430(t)
	lim.SlewVoltsPerSecond = 10 // 10 mV per ms
	g, err := supply.NewGuard(b.ch, lim)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Prepare(ctx, plan33); err != nil {
		t.Fatal(err)
	}
	if err := g.SetVoltage(ctx, 2*physic.Volt); err != nil {
		t.Fatal(err)
	}
	if err := g.SetOutput(ctx, true); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := g.SetVoltage(ctx, 2500*physic.MilliVolt); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(t0); took < 40*time.Millisecond {
		t.Fatalf("a 0.5 V step at 10 V/s took %v, want at least about 50 ms", took)
	}
	if g.Stats().SlewLimited < 3 {
		t.Fatalf("stats %+v", g.Stats())
	}
	t1 := time.Now()
	time.Sleep(20 * time.Millisecond)
	sent, err := g.Follow(ctx, 3300*physic.MilliVolt)
	if err != nil {
		t.Fatal(err)
	}
	// At most 10 mV per ms since the last setpoint (a loaded host may
	// sleep longer than asked: the bound is the time that really passed).
	most := 2500*physic.MilliVolt + physic.ElectricPotential(float64(10*physic.MilliVolt)*float64(time.Since(t1))/float64(time.Millisecond))
	if sent <= 2500*physic.MilliVolt || sent > most {
		t.Fatalf("Follow sent %v %v after 2.5 V at 10 V/s (at most %v)", sent, time.Since(t1), most)
	}
	if err := g.Shutdown(); err != nil {
		t.Fatal(err)
	}
}

// TestListValidatedWhole: a list is checked against the instrument's
// points and dwell before any of it is sent.
func TestListValidatedWhole(t *testing.T) {
	lim := &supply.ListLimits{Kind: "LIST", MaxPoints: 2, MinDwell: time.Millisecond, MaxDwell: time.Second}
	ok := supply.Step{Voltage: physic.Volt, Current: physic.MilliAmpere, Dwell: time.Millisecond}
	cases := map[string][]supply.Step{
		"too many points": {ok, ok, ok},
		"short dwell":     {ok, {Voltage: physic.Volt, Current: physic.MilliAmpere, Dwell: time.Microsecond}},
		"current":         {{Voltage: physic.Volt, Current: physic.Ampere, Dwell: time.Millisecond}},
		"empty":           nil,
	}
	for name, steps := range cases {
		if err := supply.ValidateList(steps, lim, 2*physic.Volt, 10*physic.MilliAmpere, "test"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := supply.ValidateList([]supply.Step{ok, ok}, lim, 2*physic.Volt, 10*physic.MilliAmpere, "test"); err != nil {
		t.Fatal(err)
	}
}

// TestSwitchOff is the hook a watchdog uses: a connection of its own
// switches the output off.
func TestSwitchOff(t *testing.T) {
	in, err := emulator.New(emulator.Config{Dialect: "rs-hmp"})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ctx := context.Background()
	addr, err := in.ServeTCP(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in.Execute("INST:NSEL 2;:VOLT 3;:OUTP ON")
	if !in.State(2).On {
		t.Fatal("not on")
	}
	if err := supply.SwitchOff(ctx, "tcp://"+addr.String()+"?channel=2", supply.Options{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if in.State(2).On {
		t.Fatal("still on")
	}
}

// TestOffAfterCancelMidQuery: a signal that cancels the run in the middle
// of a query (the instrument still busy answering on the connection the
// client drops, and refusing the next while it is: one client at a time)
// still leaves the output off: the off command is confirmed by the answer
// to the query after it, and sent again when that answer does not come.
func TestOffAfterCancelMidQuery(t *testing.T) {
	in, err := emulator.New(emulator.Config{Dialect: "keysight-e36", Latency: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	addr, err := in.ServeTCP(sctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ch, err := supply.Open(sctx, "tcp://"+addr.String(), supply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	lim := supply.Limits{MaxVoltage: 3600 * physic.MilliVolt, MaxCurrent: 20 * physic.MilliAmpere}
	ctx, cancel := context.WithCancel(context.Background())
	err = supply.Run(ctx, ch, lim, plan33, func(ctx context.Context, g *supply.Guard) error {
		if err := g.SetVoltage(ctx, 3*physic.Volt); err != nil {
			return err
		}
		if err := g.SetOutput(ctx, true); err != nil {
			return err
		}
		// Cancelled while the instrument is still working on the answer.
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := g.Measure(ctx)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Logf("run: %v", err)
	}
	if st := in.State(1); st.On {
		t.Fatalf("the output was left on after a cancel in the middle of a query: %v", err)
	}
}

// TestSwitchAt: the command goes out at the instant asked, not before;
// a zero instant is now; switching on before Prepare is refused.
func TestSwitchAt(t *testing.T) {
	testenv.RealTime(t)
	b := newBench(t, "keysight-e36")
	g, err := supply.NewGuard(b.ch, msp430(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := g.SwitchAt(ctx, true, time.Time{}); err == nil {
		t.Fatal("on before Prepare: no error")
	}
	if err := g.Prepare(ctx, supply.Plan{MaxVoltage: supply.FromVolts(3.3), CurrentLimit: supply.FromAmps(0.01)}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(20 * time.Millisecond)
	w, err := g.SwitchAt(ctx, true, at)
	if err != nil {
		t.Fatal(err)
	}
	if w.Before(at) || w.Sub(at) > 5*time.Millisecond {
		t.Fatalf("written %v after the instant asked: want 0 to 5 ms", w.Sub(at))
	}
	if _, err := g.Measure(ctx); err != nil || !b.in.State(1).On {
		t.Fatalf("the output is not on: %v", err)
	}
	start := time.Now()
	if _, err := g.SwitchAt(ctx, false, time.Time{}); err != nil || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("a zero instant: %v after %v, want at once", err, time.Since(start))
	}
}
