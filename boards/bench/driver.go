package bench

import (
	"context"
	"errors"
	"fmt"

	"github.com/batteryless/harness/boards"
)

// Driver is the registry's "serial": a board running the wire firmware on
// a serial port (a real MSP430FR5994 or STM32, or the emulated bench's
// QEMU), whose power strategy for a replay is a programmable supply
// (boards.Options.Supply, .Power, .OffTime; .Extra may be an *Options for
// the rest). On bench power, without a replay, `harness board` drives the
// same board through boards/serialboard.
type Driver struct{}

func init() { boards.Register(Driver{}) }

// Info implements boards.Driver.
func (Driver) Info() boards.Info {
	return boards.Info{
		Name:        "serial",
		Description: "a board running the wire firmware on a serial port (MSP430FR5994, STM32), powered through a programmable supply in real time",
		Capabilities: []boards.Capability{boards.CapReplay, boards.CapBench, boards.CapDeploy, boards.CapCalibrate,
			boards.CapMeasuredCycles, boards.CapSenseSupply},
		DefaultProfile: "msp430fr5994",
		Needs:          []string{"port (--port, HARNESS_PORT, or resources.port of a bench file)", "supply (--supply URL, or resources.supply of a bench file) to replay a trace"},
	}
}

// ErrNeedsSupply says a serial board cannot replay a trace without a
// programmable supply as its power strategy.
var ErrNeedsSupply = errors.New("a board on a serial port replays a trace only through a programmable supply (--supply URL, or resources.supply of a bench file); on steady bench power, run inferences with `harness board`")

// Open implements boards.Driver: a bench board (Open) with the options'
// port, supply and power mode.
func (Driver) Open(ctx context.Context, d boards.Deployment, o boards.Options) (boards.Board, error) {
	if o.Supply == "" {
		return nil, ErrNeedsSupply
	}
	var opt Options
	switch x := o.Extra.(type) {
	case nil:
	case *Options:
		opt = *x
	case Options:
		opt = x
	default:
		return nil, fmt.Errorf("bench: boards.Options.Extra is a %T, want *bench.Options", o.Extra)
	}
	opt.Port, opt.Baud, opt.Supply = o.Port, o.Baud, o.Supply
	if o.Logf != nil {
		opt.Logf = o.Logf
	}
	var err error
	if opt.Mode, err = ParseMode(o.Power); err != nil {
		return nil, err
	}
	if opt.OffTime, err = ParseOffTime(o.OffTime); err != nil {
		return nil, err
	}
	return Open(ctx, d, opt)
}
