package emulated

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/harness/plan"
)

// DefaultELF is where `make -C firmware stm32f4` puts the STM32 wire
// firmware that takes its plan from QEMU's loader.
const DefaultELF = "firmware/build/stm32f4/firmware-noplan.elf"

// Driver opens emulated boards: boards.Register's "qemu-stm32".
type Driver struct{}

func init() { boards.Register(Driver{}) }

// Info implements boards.Driver.
func (Driver) Info() boards.Info {
	return boards.Info{
		Name:        "qemu-stm32",
		Description: "the STM32 wire firmware in QEMU, stepped by the power model at every task through the gdbstub",
		Capabilities: []boards.Capability{boards.CapReplay, boards.CapBench, boards.CapInject, boards.CapSenseSupply,
			boards.CapCalibrate, boards.CapMeasuredCycles},
		DefaultProfile: "qemu-stm32",
		Needs:          []string{"elf (default " + DefaultELF + ")"},
	}
}

// Open implements boards.Driver: o.ELF, or DefaultELF.
func (Driver) Open(ctx context.Context, d boards.Deployment, o boards.Options) (boards.Board, error) {
	elf := o.ELF
	if elf == "" {
		elf = DefaultELF
	}
	if _, err := os.Stat(elf); err != nil {
		return nil, &MissingFirmwareError{ELF: elf, Err: err}
	}
	if d.Image == nil {
		img, err := plan.EncodeImage(d.Model, d.Plan)
		if err != nil {
			return nil, err
		}
		d.Image = img
	}
	return Open(ctx, d, Options{ELF: elf, Logf: o.Logf})
}

// MissingFirmwareError says the firmware is not built, and how to build it.
type MissingFirmwareError struct {
	ELF string
	Err error
}

func (e *MissingFirmwareError) Error() string {
	return "no STM32 firmware at " + e.ELF + ": build it with `make -C firmware stm32f4` (Debian packages gcc-arm-none-eabi libnewlib-arm-none-eabi), or give --elf (" + e.Err.Error() + ")"
}

func (e *MissingFirmwareError) Unwrap() error { return e.Err }

// Inject implements boards.Injector: the firmware in QEMU runs one
// inference on bench power with its power cut inside every task (at
// in.Fraction of the task's duration, 0.5 when not set) and at in.Random
// seeded points, then its output is verified (see Inject). A plan with
// the run-time rule is refused: on bench power its supply reading says
// nothing.
func (Driver) Inject(ctx context.Context, d boards.Deployment, o boards.Options, in boards.InjectOptions) (*boards.InjectResult, error) {
	var droop *Droop
	if d.Plan.ReadsSupply() && d.Plan.Storage != nil {
		// On bench power the supply reads high, with a droop to just above
		// brown-out every third reading: the rule's early commits and jit's
		// snapshots happen, and the cuts strike them too.
		st := d.Plan.Storage
		droop = &Droop{High: st.VonV, Low: st.VoffV + 0.05*(st.VonV-st.VoffV), Every: 3}
	}
	elf := o.ELF
	if elf == "" {
		elf = DefaultELF
	}
	if _, err := os.Stat(elf); err != nil {
		return nil, &MissingFirmwareError{ELF: elf, Err: err}
	}
	img := d.Image
	if img == nil {
		var err error
		if img, err = plan.EncodeImage(d.Model, d.Plan); err != nil {
			return nil, err
		}
	}
	frac := in.Fraction
	if frac <= 0 {
		frac = 0.5
	}
	if frac >= 1 {
		return nil, fmt.Errorf("emulated: inject: fraction %g: want below 1", frac)
	}
	var cuts []Cut
	for i := range d.Plan.Tasks {
		cuts = append(cuts, Cut{Task: i, Fraction: frac})
	}
	rng := rand.New(rand.NewPCG(in.Seed, 0))
	for range in.Random {
		cuts = append(cuts, Cut{Task: rng.IntN(len(d.Plan.Tasks)), Fraction: rng.Float64()})
	}
	r, err := Inject(ctx, InjectConfig{ELF: elf, Image: img, Tasks: len(d.Plan.Tasks), Input: d.Input, Want: d.Want, Cuts: cuts, Droop: droop, Logf: o.Logf})
	if err != nil {
		return nil, err
	}
	return &boards.InjectResult{Board: "qemu-stm32", Scheduler: d.Plan.Scheduler, Tasks: r.Tasks, BrownOuts: len(r.Cuts), Inside: r.Landed,
		Reexecuted: r.Reexecuted, Boots: r.Boots, Attempts: r.Attempts, Verified: r.Verified, Mismatches: r.Mismatches, Detail: r.Detail,
		Sleeps: r.Sleeps}, nil
}
