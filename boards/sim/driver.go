package sim

import (
	"context"

	"github.com/batteryless/harness/boards"
)

// Driver opens simulated boards: boards.Register's "sim".
type Driver struct{}

func init() { boards.Register(Driver{}) }

// Info implements boards.Driver.
func (Driver) Info() boards.Info {
	return boards.Info{
		Name:           "sim",
		Description:    "the simulated board: NVM byte image, SRAM lost at brown-outs, profile costs; deterministic",
		Capabilities:   []boards.Capability{boards.CapReplay, boards.CapInject, boards.CapSenseSupply},
		DefaultProfile: "msp430fr5994",
	}
}

// Open implements boards.Driver.
func (Driver) Open(_ context.Context, d boards.Deployment, _ boards.Options) (boards.Board, error) {
	b, err := New(d.Model, d.Plan, d.Profile, Faults{})
	if err != nil {
		return nil, err
	}
	return b.AsBoard(), nil
}

// AsBoard returns b behind the board contract (boards.Board), with its
// capabilities: boards.TaskStepper, boards.OutputSnapshotter, and SetSeeds.
func (b *Board) AsBoard() boards.Board { return contract{b} }

// contract is a Board behind boards.Board: the same calls with a context
// and an error, neither of which a simulated board needs.
type contract struct{ *Board }

func (c contract) PowerOn(context.Context) error { c.Board.PowerOn(); return nil }

func (c contract) Next(_ context.Context, availableJ float64) (boards.Step, bool, error) {
	s, ok := c.Board.Next(availableJ)
	return s, ok, nil
}

func (c contract) Complete(context.Context) (boards.Event, error) { return c.Board.Complete(), nil }

func (c contract) BrownOut(_ context.Context, fraction float64) error {
	c.Board.BrownOut(fraction)
	return nil
}

func (c contract) QueueInput(_ context.Context, input []byte) error {
	return c.Board.QueueInput(input)
}

func (c contract) Close() error { return nil }

// Inject implements boards.Injector: Inject on a fresh simulated board, with
// a brown-out after every task (in.Boundaries) and at in.Random seeded
// points inside tasks.
func (Driver) Inject(ctx context.Context, d boards.Deployment, _ boards.Options, in boards.InjectOptions) (*boards.InjectResult, error) {
	return Inject(InjectConfig{Context: ctx, Model: d.Model, Plan: d.Plan, Profile: d.Profile, Input: d.Input,
		Boundaries: in.Boundaries, Random: in.Random, Seed: in.Seed, Droop: d.Plan.ReadsSupply()})
}
