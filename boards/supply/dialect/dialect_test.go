package dialect_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"periph.io/x/conn/v3/physic"

	"github.com/batteryless/harness/boards/supply"
	"github.com/batteryless/harness/boards/supply/dialect"
	"github.com/batteryless/harness/boards/supply/emulator"
	"github.com/batteryless/harness/boards/supply/scpi"
	"github.com/batteryless/harness/boards/supply/scpi/scpitest"
)

// serve starts an emulated instrument and returns it and its URL.
func serve(t *testing.T, cfg emulator.Config) (*emulator.Instrument, string) {
	t.Helper()
	in, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := in.ServeTCP(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); in.Close() })
	return in, "tcp://" + addr.String()
}

func open(t *testing.T, url string) supply.Channel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch, err := supply.Open(ctx, url, supply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// TestEveryDialectAgainstTheEmulator drives every dialect's driver through
// what the bench needs, against the emulator of its instrument: detection
// from *IDN?, capabilities that agree with the interfaces, setpoints,
// output, measurement, protection trips, lists played in time, an empty
// error queue at the end.
func TestEveryDialectAgainstTheEmulator(t *testing.T) {
	names := dialect.Names()
	if !slices.Equal(names, emulator.Dialects()) {
		t.Fatalf("drivers %v and emulated dialects %v differ", names, emulator.Dialects())
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			in, url := serve(t, emulator.Config{Dialect: name})
			ch := open(t, url)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			caps := ch.Capabilities()
			if caps.Dialect != name {
				t.Fatalf("detected dialect %q, want %q", caps.Dialect, name)
			}
			checkInterfaces(t, ch, caps)
			if err := ch.SetCurrentLimit(ctx, 20*physic.MilliAmpere); err != nil {
				t.Fatal(err)
			}
			if err := ch.SetVoltage(ctx, 3300*physic.MilliVolt); err != nil {
				t.Fatal(err)
			}
			if err := ch.SetOutput(ctx, true); err != nil {
				t.Fatal(err)
			}
			sync(t, ctx, ch)
			st := in.State(1)
			if !st.On || st.Volts != 3.3 || st.Amps != 0.02 {
				t.Fatalf("instrument state after set: %+v", st)
			}
			r, err := ch.Measure(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// The emulator's 1 kOhm load: 3.3 V, 3.3 mA.
			if !r.Output || !near(supply.Volts(r.Voltage), 3.3, 1e-3) || !near(supply.Amps(r.Current), 0.0033, 6e-4) {
				t.Fatalf("measured %+v, want on, 3.3 V, 3.3 mA", r)
			}
			in.SetDraw(1, 0.015)
			if r, err = ch.Measure(ctx); err != nil || !near(supply.Amps(r.Current), 0.015, 6e-4) {
				t.Fatalf("measured %+v (%v), want the 15 mA fed back", r, err)
			}
			in.SetDraw(1, math.NaN())
			if err := ch.SetOutput(ctx, false); err != nil {
				t.Fatal(err)
			}
			if r, err = ch.Measure(ctx); err != nil || r.Output {
				t.Fatalf("after off: %+v, %v", r, err)
			}
			if p, ok := ch.(supply.Protector); ok {
				checkOVP(t, ctx, in, ch, p)
			}
			if l, ok := ch.(supply.Lister); ok && caps.List.MaxPoints >= 3 {
				checkList(t, ctx, in, ch, l, caps.List)
			} else if ok {
				checkTriggeredLevel(t, ctx, in, ch, l)
			}
			if c, ok := ch.(supply.Checker); ok {
				if err := c.Check(ctx, "at the end"); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// sync waits until the instrument carried out what was sent (writes do
// not wait for it).
func sync(t *testing.T, ctx context.Context, ch supply.Channel) {
	t.Helper()
	c, ok := ch.(interface{ Client() *scpi.Client })
	if !ok {
		t.Fatalf("%T has no Client", ch)
	}
	if err := c.Client().Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

func checkInterfaces(t *testing.T, ch supply.Channel, caps supply.Capabilities) {
	t.Helper()
	_, isProt := ch.(supply.Protector)
	_, isList := ch.(supply.Lister)
	_, isTout := ch.(supply.TriggerOuter)
	if isProt != caps.OVP {
		t.Errorf("Protector %v, capabilities OVP %v", isProt, caps.OVP)
	}
	if isList != (caps.List != nil) {
		t.Errorf("Lister %v, capabilities list %v", isList, caps.List)
	}
	if isTout != caps.TriggerOut {
		t.Errorf("TriggerOuter %v, capabilities %v", isTout, caps.TriggerOut)
	}
	if _, ok := ch.(supply.Checker); !ok {
		t.Error("not a Checker")
	}
	if caps.MaxVoltage < 3600*physic.MilliVolt || caps.Channels < 1 || caps.Sync == "" {
		t.Errorf("capabilities %+v", caps)
	}
}

// checkOVP arms OVP at 3.4 V, sets 3.5 V with the output on, and expects
// a trip that switches the output off, reported by Tripped and cleared.
func checkOVP(t *testing.T, ctx context.Context, in *emulator.Instrument, ch supply.Channel, p supply.Protector) {
	t.Helper()
	if err := p.ArmProtection(ctx, 3400*physic.MilliVolt, 0); err != nil {
		t.Fatal(err)
	}
	if err := ch.SetVoltage(ctx, 3300*physic.MilliVolt); err != nil {
		t.Fatal(err)
	}
	if err := ch.SetOutput(ctx, true); err != nil {
		t.Fatal(err)
	}
	if tr, err := p.Tripped(ctx); err != nil || tr.Any() {
		t.Fatalf("tripped %v, %v before the overvoltage", tr, err)
	}
	if err := ch.SetVoltage(ctx, 3500*physic.MilliVolt); err != nil {
		t.Fatal(err)
	}
	sync(t, ctx, ch)
	tr, err := p.Tripped(ctx)
	if err != nil || !tr.OVP {
		t.Fatalf("tripped %v, %v; want OVP", tr, err)
	}
	if st := in.State(1); st.On || !st.TripOVP {
		t.Fatalf("after the trip: %+v", st)
	}
	if err := ch.SetVoltage(ctx, 3000*physic.MilliVolt); err != nil {
		t.Fatal(err)
	}
	if err := p.ClearProtection(ctx); err != nil {
		t.Fatal(err)
	}
	if tr, err := p.Tripped(ctx); err != nil || tr.Any() {
		t.Fatalf("after clear: %v, %v", tr, err)
	}
	if err := ch.SetOutput(ctx, false); err != nil {
		t.Fatal(err)
	}
}

// checkList uploads three steps, arms and triggers them, and reads the
// emulator's events: every step at its time.
func checkList(t *testing.T, ctx context.Context, in *emulator.Instrument, ch supply.Channel, l supply.Lister, lim *supply.ListLimits) {
	t.Helper()
	dwell := max(lim.MinDwell, 30*time.Millisecond)
	steps := []supply.Step{
		{Voltage: 2 * physic.Volt, Current: 20 * physic.MilliAmpere, Dwell: dwell},
		{Voltage: 3 * physic.Volt, Current: 20 * physic.MilliAmpere, Dwell: dwell},
		{Voltage: 2500 * physic.MilliVolt, Current: 20 * physic.MilliAmpere, Dwell: dwell},
	}
	if err := ch.SetOutput(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := l.UploadList(ctx, steps); err != nil {
		t.Fatal(err)
	}
	if err := l.ArmList(ctx); err != nil {
		t.Fatal(err)
	}
	before := len(in.Events())
	if err := l.TriggerList(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	var got []emulator.Event
	for time.Now().Before(deadline) {
		got = nil
		for _, e := range in.Events()[before:] {
			if e.Kind == "list-step" {
				got = append(got, e)
			}
		}
		if len(got) == 3 && !in.State(1).ListRunning {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(got) != 3 {
		t.Fatalf("%d list steps played, want 3: %+v", len(got), got)
	}
	for i, e := range got {
		if !near(e.Volts, supply.Volts(steps[i].Voltage), 1e-9) {
			t.Errorf("step %d at %g V, want %v", i+1, e.Volts, steps[i].Voltage)
		}
		// Steps are timed from the list's start by the instrument's clock:
		// never early; late only by the host's scheduling (a loaded CI
		// machine has been seen 100 ms late).
		at, want := e.Time.Sub(got[0].Time), time.Duration(i)*dwell
		if at < want-2*time.Millisecond || at > want+250*time.Millisecond {
			t.Errorf("step %d came %v after the first, want about %v", i+1, at, want)
		}
	}
	if err := ch.SetOutput(ctx, false); err != nil {
		t.Fatal(err)
	}
}

// checkTriggeredLevel: an instrument with one triggered level holds it
// until the trigger, then applies it.
func checkTriggeredLevel(t *testing.T, ctx context.Context, in *emulator.Instrument, ch supply.Channel, l supply.Lister) {
	t.Helper()
	if err := ch.SetVoltage(ctx, 2*physic.Volt); err != nil {
		t.Fatal(err)
	}
	if err := l.UploadList(ctx, []supply.Step{{Voltage: 2500 * physic.MilliVolt, Current: 15 * physic.MilliAmpere}}); err != nil {
		t.Fatal(err)
	}
	if err := l.ArmList(ctx); err != nil {
		t.Fatal(err)
	}
	sync(t, ctx, ch)
	if st := in.State(1); st.Volts != 2 {
		t.Fatalf("before the trigger: %+v", st)
	}
	if err := l.TriggerList(ctx); err != nil {
		t.Fatal(err)
	}
	sync(t, ctx, ch)
	if st := in.State(1); st.Volts != 2.5 || st.Amps != 0.015 {
		t.Fatalf("after the trigger: %+v", st)
	}
}

// TestUnknownIdentityRefused: an instrument no dialect knows is refused,
// named, unless ?dialect= says which it speaks.
func TestUnknownIdentityRefused(t *testing.T) {
	pb := scpitest.NewPlayback([]scpitest.Exchange{{Command: "*IDN?", Answer: "ACME,PS-1,1,1.0", HasAns: true}})
	ctx := context.Background()
	_, err := dialect.OpenSCPI(ctx, pb.Transport(), "", 1, supply.Options{})
	if err == nil || !strings.Contains(err.Error(), `"ACME" "PS-1"`) || !strings.Contains(err.Error(), "?dialect=") {
		t.Fatalf("err = %v, want the identity named and ?dialect= suggested", err)
	}
	pb = scpitest.NewPlayback([]scpitest.Exchange{
		{Command: "*IDN?", Answer: "ACME,PS-1,1,1.0", HasAns: true},
		{Command: "VOLT 1.5", Line: 2},
	})
	ch, err := dialect.OpenSCPI(ctx, pb.Transport(), "keysight-e36", 1, supply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.SetVoltage(ctx, 1500*physic.MilliVolt); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := pb.Done(); err != nil {
		t.Fatal(err)
	}
}

// TestGuideTranscripts runs the guarded bench sequence (and, for
// instruments with a list, a list upload) against transcripts written
// from each programming guide's syntax and examples
// (testdata/guide-*.txt): every command the driver sends must be the
// transcript's, in order.
func TestGuideTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/guide-*.txt")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, f := range files {
		base := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "guide-"), ".txt")
		name, kind, _ := strings.Cut(base, ".")
		covered[name] = true
		t.Run(base, func(t *testing.T) {
			ex, err := scpitest.ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			pb := scpitest.NewPlayback(ex)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ch, err := dialect.OpenSCPI(ctx, pb.Transport(), "", 1, supply.Options{Timeout: time.Second})
			if err != nil {
				t.Fatalf("%v (playback: %v)", err, pb.Err())
			}
			defer ch.Close()
			if ch.Capabilities().Dialect != name {
				t.Fatalf("detected %s, want %s", ch.Capabilities().Dialect, name)
			}
			lim := supply.Limits{MaxVoltage: 3600 * physic.MilliVolt, MaxCurrent: 20 * physic.MilliAmpere, Source: "test"}
			plan := supply.Plan{MaxVoltage: 3300 * physic.MilliVolt, CurrentLimit: 20 * physic.MilliAmpere}
			err = supply.Run(ctx, ch, lim, plan, func(ctx context.Context, g *supply.Guard) error {
				if err := g.SetVoltage(ctx, 3300*physic.MilliVolt); err != nil {
					return err
				}
				if err := g.SetOutput(ctx, true); err != nil {
					return err
				}
				if kind == "list" {
					steps := []supply.Step{
						{Voltage: 3300 * physic.MilliVolt, Current: 20 * physic.MilliAmpere, Dwell: 100 * time.Millisecond},
						{Voltage: 2500 * physic.MilliVolt, Current: 20 * physic.MilliAmpere, Dwell: 200 * time.Millisecond},
					}
					if ch.Capabilities().List.MaxPoints == 1 {
						steps = steps[1:]
					}
					if err := g.UploadList(ctx, steps); err != nil {
						return err
					}
					if err := g.ArmList(ctx); err != nil {
						return err
					}
					return g.TriggerList(ctx)
				}
				r, err := g.Measure(ctx)
				if err != nil {
					return err
				}
				if !near(supply.Volts(r.Voltage), 3.3, 0.01) {
					return errors.New("measured " + r.Voltage.String())
				}
				return nil
			})
			if err != nil {
				t.Fatalf("%v (playback: %v)", err, pb.Err())
			}
			if err := pb.Done(); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, name := range dialect.Names() {
		if !covered[name] {
			t.Errorf("dialect %s has no guide transcript in testdata/", name)
		}
	}
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}

// TestN67LongListAsCDW: a list longer than a LIST's 512 steps, of one
// dwell, goes to the N67xx as an ARB constant-dwell waveform, validated by
// the guard against the ARB's limits, and plays out in time.
func TestN67LongListAsCDW(t *testing.T) {
	in, url := serve(t, emulator.Config{Dialect: "keysight-n67"})
	ch := open(t, url)
	steps := make([]supply.Step, 600)
	for i := range steps {
		steps[i] = supply.Step{Voltage: supply.FromVolts(2 + float64(i%10)*0.1), Current: 10 * physic.MilliAmpere, Dwell: 200 * time.Microsecond}
	}
	lim := supply.Limits{MaxVoltage: 3600 * physic.MilliVolt, MaxCurrent: 20 * physic.MilliAmpere}
	err := supply.Run(context.Background(), ch, lim, supply.Plan{MaxVoltage: 3 * physic.Volt, CurrentLimit: 10 * physic.MilliAmpere},
		func(ctx context.Context, g *supply.Guard) error {
			if err := g.SetVoltage(ctx, 2*physic.Volt); err != nil {
				return err
			}
			if err := g.SetOutput(ctx, true); err != nil {
				return err
			}
			if err := g.UploadList(ctx, steps); err != nil {
				return err
			}
			if err := g.ArmList(ctx); err != nil {
				return err
			}
			if err := g.TriggerList(ctx); err != nil {
				return err
			}
			time.Sleep(400 * time.Millisecond) // 600 x 0.2 ms = 120 ms
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	var got []emulator.Event
	for _, e := range in.Events() {
		if e.Kind == "list-step" {
			got = append(got, e)
		}
	}
	if len(got) != 600 {
		t.Fatalf("%d steps played, want 600", len(got))
	}
	// Never shorter than the waveform; longer only by the host's
	// scheduling (steps are timed from the start: delays do not add up).
	if span := got[599].Time.Sub(got[0].Time); span < 119*time.Millisecond || span > time.Second {
		t.Fatalf("600 steps of 0.2 ms took %v", span)
	}
}
