package emubench

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/supply"
	_ "github.com/batteryless/harness/boards/supply/dialect"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/firmwaretest/fwbuild"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/harness/testenv"
	"github.com/batteryless/harness/harness/wire"
)

// start builds the firmware and starts a bench with the bundled model's
// tile plan for the qemu-stm32 profile.
func start(t *testing.T, dialect string, rail Rail) (*Bench, *profiles.Profile) {
	t.Helper()
	testenv.NeedTool(t, "qemu-system-arm", "qemu-system-arm")
	dir := fwbuild.Build(t, "stm32f4")
	prof, err := profiles.Load("qemu-stm32")
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := sched.Get("tile")
	p, err := s.Schedule(m, prof, sched.Options{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := plan.EncodeImage(m, p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b, err := Start(ctx, Config{Dialect: dialect, ELF: filepath.Join(dir, "stm32f4", "firmware-noplan.elf"), Image: img,
		Profile: prof, Rail: rail, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, prof
}

// waitBoot waits for the next BOOT on the link and returns it with its
// arrival.
func waitBoot(t *testing.T, l *link.Link, within time.Duration) (*wire.Boot, time.Time) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev := <-l.Events():
			if b, ok := ev.Msg.(*wire.Boot); ok {
				return b, ev.Time
			}
		case <-deadline:
			t.Fatalf("no BOOT within %v", within)
		}
	}
}

// TestOutputGatesTheBoard: the output on boots the firmware, off stops it
// (no BOOT until it is on again), and every power-on is a boot of its own
// that keeps the boot counter in .ih_persist.
func TestOutputGatesTheBoard(t *testing.T) {
	testenv.RealTime(t)
	b, prof := start(t, "keysight-n67", Direct)
	ctx := context.Background()
	ch, err := supply.Open(ctx, b.URL(), supply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	g, err := supply.NewGuard(ch, supply.LimitsFromProfile(prof))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Prepare(ctx, supply.Plan{MaxVoltage: supply.FromVolts(3.3), CurrentLimit: supply.FromAmps(0.1)}); err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown()
	if err := g.SetVoltage(ctx, supply.FromVolts(3.3)); err != nil {
		t.Fatal(err)
	}
	l, err := link.Open(ctx, link.Config{Path: b.Port()})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var boots []uint32
	for i := range 8 {
		on := time.Now()
		if err := g.SetOutput(ctx, true); err != nil {
			t.Fatal(err)
		}
		boot, at := waitBoot(t, l, 2*time.Second)
		boots = append(boots, boot.Boots)
		t.Logf("power-on %d: BOOT after %v (boot cycles %d = %.2f ms of board time)", i, at.Sub(on), boot.Cycles, prof.Seconds(float64(boot.Cycles))*1e3)
		if !b.Powered() {
			t.Fatal("the bench says the board is off with the output on")
		}
		if err := g.SetOutput(ctx, false); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-l.Events():
			if _, ok := ev.Msg.(*wire.Boot); ok {
				t.Fatal("a BOOT with the output off")
			}
		case <-time.After(100 * time.Millisecond):
		}
		if b.Powered() {
			t.Fatal("the bench says the board is on with the output off")
		}
	}
	if boots[1] != boots[0]+1 || boots[7] != boots[6]+1 {
		t.Fatalf("boot counters %v: want one more at every power-on", boots)
	}
	if st := b.Stats(); st.PowerOns != 8 || st.PowerOffs != 8 {
		t.Fatalf("stats %+v: want 8 power-ons and 8 power-offs", st)
	}
}
