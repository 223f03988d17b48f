package emulated

import (
	"context"
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
		Name: "qemu-stm32",
		Description: "the STM32 wire firmware in QEMU (netduinoplus2, -icount), driven over its serial pty by the wire driver and stepped by the " +
			"power model at every task's start through QEMU's gdbstub; tasks priced by their measured cycles",
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
