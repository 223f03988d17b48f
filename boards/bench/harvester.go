package bench

import (
	"context"

	"github.com/batteryless/harness/harness/replay"
)

// harvestStream plays the trace's harvested power as the supply's current
// limit.
type harvestStream struct{}

func (h *harvestStream) stop() {}

func (b *Board) prepareHarvester(ctx context.Context, cfg replay.Config) error { return nil }
