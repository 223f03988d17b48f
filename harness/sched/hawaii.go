package sched

import (
	"fmt"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
)

// hawaiiScheduler follows HAWAII (Kang et al., 2020): footprints. HAWAII
// keeps a progress counter (a footprint) in NVM and advances it after every
// operation of the vector accelerator, whose operands must sit in the
// accelerator's SRAM (Profile.AccelSRAMBytes; 4 KiB on the MSP430's LEA).
// In the plan format: a layer computed by vector MACs (CONV_2D,
// DEPTHWISE_CONV_2D, FULLY_CONNECTED) gets one output value per task, its
// reduction cut into the fewest steps whose input and weight operands fit
// the accelerator's SRAM (and the task limits); a layer without one
// (pooling, ADD, MUL, RESHAPE, SOFTMAX, ...) gets one output row per task:
// the full width and as many channels as fit. Every task commits.
type hawaiiScheduler struct{}

func (hawaiiScheduler) Name() string { return "hawaii" }
func (hawaiiScheduler) Describe() string {
	return "HAWAII footprints: one accelerator MAC (an output value, its operands within the accelerator's SRAM) or one row per task, progress committed after every task"
}

func (s hawaiiScheduler) Schedule(m *model.Model, prof *profiles.Profile, opt Options) (*plan.Plan, error) {
	return finePlan(s.Name(), m, prof, opt, func(l *model.Layer, lim Limits) (Tile, error) { return hawaiiTile(m, l, lim, prof) })
}

// vectorMAC reports whether the layer's work is vector MACs on the
// accelerator.
func vectorMAC(l *model.Layer) bool {
	switch l.Op {
	case model.OpConv2D, model.OpDepthwiseConv2D, model.OpFullyConnected:
		return true
	}
	return false
}

// hawaiiTile is the tile of one HAWAII task of layer l.
func hawaiiTile(m *model.Model, l *model.Layer, lim Limits, prof *profiles.Profile) (Tile, error) {
	lc := newLayerCoster(m, l, prof)
	if vectorMAC(l) {
		// The operands of every task (the bias, which the CPU adds, counted
		// too: a few bytes, on the safe side) must fit the accelerator.
		inAccel := func(t Tile) bool { return lc.cost(t).operands <= prof.AccelSRAMBytes }
		t, err := outputValueTile(lc, lim, inAccel)
		if v := valueTile(m, l); err != nil && !inAccel(v) {
			return Tile{}, fmt.Errorf("layer %d (%s): one output value's operands take %d bytes, more than the accelerator's %d bytes of SRAM, and its reduction cannot be cut to fit: %w",
				l.Index, l.Op, lc.cost(v).operands, prof.AccelSRAMBytes, err)
		}
		return t, err
	}
	return rowTile(lc, lim)
}

// rowTile is one output row of the layer: the full width and as many
// channels as fit (a softmax keeps all of them). When no row fits, fewer
// columns; when not even one value fits, the fewest reduction steps that
// do (average pooling), with as many channels and columns as keep the
// number of tasks lowest.
func rowTile(lc *layerCoster, lim Limits) (Tile, error) {
	m, l := lc.m, lc.l
	s := m.OutputShape(l)
	chans := halvings(s.C)
	if l.Op == model.OpSoftmax {
		chans = []int{s.C}
	}
	for _, tw := range halvings(s.W) {
		for _, tc := range chans {
			if t := (Tile{1, tw, tc, 0}); lc.fits(t, lim) {
				return t, nil
			}
		}
	}
	if dim, ok := plan.CanSplit(l); ok && dim > 1 {
		best, bestTasks := Tile{}, -1
		for _, tw := range halvings(s.W) {
			for _, tc := range chans {
				r := largestStep(dim, func(r int) bool { return lc.fits(Tile{1, tw, tc, r}, lim) })
				if r == 0 {
					continue
				}
				t := Tile{1, tw, tc, r}
				if n := layerTasks(m, l, t); bestTasks < 0 || n < bestTasks {
					best, bestTasks = t, n
				}
			}
		}
		if bestTasks > 0 {
			return best, nil
		}
	}
	return Tile{}, lc.smallestTaskError(valueTile(m, l), lim)
}

func init() { register(hawaiiScheduler{}) }
