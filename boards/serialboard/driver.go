package serialboard

import (
	"context"
	"errors"

	"github.com/batteryless/harness/boards"
)

// Driver is the registry's "serial": a board running the wire firmware on
// a serial port (a real MSP430FR5994 or STM32, or any port speaking the
// protocol), on bench power. Its power strategy for replaying a trace is a
// programmable supply; until one is given, the board runs inferences on
// steady power (harness board).
type Driver struct{}

func init() { boards.Register(Driver{}) }

// Info implements boards.Driver.
func (Driver) Info() boards.Info {
	return boards.Info{
		Name:           "serial",
		Description:    "a board running the wire firmware on a serial port (MSP430FR5994, STM32), on bench power",
		Capabilities:   []boards.Capability{boards.CapBench, boards.CapDeploy, boards.CapCalibrate, boards.CapMeasuredCycles},
		DefaultProfile: "msp430fr5994",
		Needs:          []string{"port (--port, HARNESS_PORT, port: in --config)"},
	}
}

// ErrNeedsSupply says a serial board cannot replay a trace without a
// programmable supply as its power strategy.
var ErrNeedsSupply = errors.New("a board on a serial port replays a trace only through a programmable supply (its power strategy); on bench power, run inferences with `harness board`")

// Open implements boards.Driver: a serial board under the replay engine
// needs a supply, which this driver does not have yet.
func (Driver) Open(context.Context, boards.Deployment, boards.Options) (boards.Board, error) {
	return nil, ErrNeedsSupply
}
