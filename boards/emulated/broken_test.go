package emulated

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/replay"
)

// TestBrokenFirmwareFailsOnEmulatedPower is the proof that the emulated
// power failure loses volatile state: a firmware build that keeps its
// progress word in SRAM (not zeroed at start-up, as if it were kept) passes
// its warm-up on bench power, then fails verification at the first power
// failure of the replay; the same build with the SRAM scrub turned off (a
// reset that keeps SRAM, which no real chip does) verifies, so it is the
// scrub, i.e. the emulated power failure, that catches it.
func TestBrokenFirmwareFailsOnEmulatedPower(t *testing.T) {
	elf, prof, d := setup(t, "firmware-broken-noplan.elf")
	run := func(noScrub bool) (*replay.Result, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		return replayOn(t, ctx, elf, prof, d, 1, Options{NoScrub: noScrub}, nil)
	}
	res, err := run(false)
	t.Logf("broken firmware, real power failures: %v; verified %d mismatches %d power cycles %d", err, res.Verified, res.Mismatches, res.PowerCycles)
	if !errors.Is(err, boards.ErrProgressLost) || res.Mismatches != 1 || res.Verified != 0 {
		t.Errorf("the broken firmware was not caught: err %v, verified %d, mismatches %d", err, res.Verified, res.Mismatches)
	}
	res, err = run(true)
	t.Logf("broken firmware, SRAM kept across resets: %v; verified %d power cycles %d", err, res.Verified, res.PowerCycles)
	if err != nil || res.Verified != 1 || res.PowerCycles < 1 {
		t.Errorf("control run (no scrub): err %v, verified %d, power cycles %d; want a verified inference over power cycles", err, res.Verified, res.PowerCycles)
	}
	noQEMULeft(t, elf)
}

// TestInjectEmulated forces a brown-out in the middle of every task of the
// plan on the real firmware: the output must still be the reference's; the
// broken build must fail.
func TestInjectEmulated(t *testing.T) {
	dir := firmware(t)
	prof, err := profiles.Load(emuProfile)
	if err != nil {
		t.Fatal(err)
	}
	d := deploy(t, prof, "tile")
	var cuts []Cut
	for i := range d.p.Tasks {
		cuts = append(cuts, Cut{Task: i, Fraction: 0.5})
	}
	for _, c := range []struct {
		elf      string
		verified bool
	}{{"firmware-noplan.elf", true}, {"firmware-broken-noplan.elf", false}} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		res, err := Inject(ctx, InjectConfig{ELF: filepath.Join(dir, "stm32f4", c.elf), Image: d.image, Tasks: len(d.p.Tasks),
			Input: d.input, Want: d.want, Cuts: cuts, Logf: logf(t)})
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", c.elf, err)
		}
		t.Logf("%s: %d cuts, %d landed inside their task, %d re-executed tasks, %d boots, %d attempts, verified %v %s", c.elf, len(res.Cuts), res.Landed, res.Reexecuted, res.Boots, res.Attempts, res.Verified, res.Detail)
		if res.Verified != c.verified {
			t.Errorf("%s: verified %v, want %v (%s)", c.elf, res.Verified, c.verified, res.Detail)
		}
		if c.verified && (len(res.Cuts) != len(cuts) || res.Landed < len(cuts)/2) {
			t.Errorf("%s: %d of %d cuts made, %d landed inside their task; want all made, at least half landed", c.elf, len(res.Cuts), len(cuts), res.Landed)
		}
	}
}
