package plan

import (
	"fmt"

	"github.com/batteryless/harness/harness/kernels"
	"github.com/batteryless/harness/harness/model"
)

// CanSplit reports whether a layer's reduction can be cut into steps, and
// the length of the reduced dimension.
func CanSplit(l *model.Layer) (int, bool) {
	switch l.Op {
	case model.OpConv2D:
		return l.Conv.In.C, true
	case model.OpFullyConnected:
		return l.FC.Depth, true
	case model.OpAveragePool2D:
		return l.Pool.FilterH, true
	}
	return 0, false
}

// Expand lists the tasks of per-layer schedules in the canonical order that
// the firmware generates too: layer by layer; within a layer batch by batch,
// band of TileH rows by band, block of TileW columns by block, block of
// TileC channels by block; with TileR, each region's reduction steps in a
// row. Commit flags follow CommitEvery and NoCommitAtEnd; the last task
// always commits. It fills in FirstTask, Tasks and the partial-sum slot
// count of every layer plan (Layout places the slots).
func Expand(m *model.Model, layers []LayerPlan) ([]Task, error) {
	if len(layers) != len(m.Layers) {
		return nil, fmt.Errorf("plan: %d layer schedules for %d layers", len(layers), len(m.Layers))
	}
	var tasks []Task
	for li := range layers {
		lp := &layers[li]
		l := m.Layers[li]
		if lp.Layer != l.Index {
			return nil, fmt.Errorf("plan: schedule %d is for layer %d", li, lp.Layer)
		}
		s := m.OutputShape(l)
		if lp.TileH < 1 || lp.TileW < 1 || lp.TileC < 1 || lp.TileR < 0 || lp.CommitEvery < 0 {
			return nil, fmt.Errorf("plan: layer %d: tile %dx%dx%d, reduction %d, commit every %d", l.Index, lp.TileH, lp.TileW, lp.TileC, lp.TileR, lp.CommitEvery)
		}
		dim, splittable := CanSplit(l)
		if lp.TileR > 0 && !splittable {
			return nil, fmt.Errorf("plan: layer %d (%s) cannot split its reduction", l.Index, l.Op)
		}
		if l.Op == model.OpSoftmax && lp.TileC < s.C {
			return nil, fmt.Errorf("plan: layer %d (SOFTMAX) cannot split its %d channels", l.Index, s.C)
		}
		lp.FirstTask = len(tasks)
		steps := 1
		if lp.TileR > 0 {
			steps = (dim + lp.TileR - 1) / lp.TileR
		}
		for n := 0; n < s.N; n++ {
			for y := 0; y < s.H; y += lp.TileH {
				for x := 0; x < s.W; x += lp.TileW {
					for c := 0; c < s.C; c += lp.TileC {
						r := kernels.Region{N0: n, N1: n + 1, Y0: y, Y1: min(y+lp.TileH, s.H), X0: x, X1: min(x+lp.TileW, s.W), C0: c, C1: min(c+lp.TileC, s.C)}
						for k := 0; k < steps; k++ {
							t := Task{Layer: l.Index, Region: r}
							if steps > 1 {
								t.Part = Part{Lo: k * lp.TileR, Hi: min((k+1)*lp.TileR, dim), Step: k, Steps: steps}
							}
							tasks = append(tasks, t)
						}
					}
				}
			}
		}
		lp.Tasks = len(tasks) - lp.FirstTask
		if len(tasks) > MaxTasks {
			return nil, fmt.Errorf("plan: more than %d tasks", MaxTasks)
		}
		for j := 0; j < lp.Tasks; j++ {
			last := j == lp.Tasks-1
			tasks[lp.FirstTask+j].Commit = lp.CommitEvery > 0 && (j+1)%lp.CommitEvery == 0 || last && !lp.NoCommitAtEnd
		}
		// Partial-sum slots rotate with a period one longer than the
		// commit interval, so a slot is only overwritten after a commit
		// has passed the task that reads it.
		lp.PartialSlots, lp.PartialSlotBytes = 0, 0
		if steps > 1 {
			lp.PartialSlots = lp.Tasks
			if lp.CommitEvery > 0 {
				lp.PartialSlots = min(lp.CommitEvery+1, lp.Tasks)
			}
			lp.PartialSlotBytes = 4 * min(lp.TileH, s.H) * min(lp.TileW, s.W) * min(lp.TileC, s.C)
		}
	}
	if len(tasks) > 0 {
		tasks[len(tasks)-1].Commit = true
	}
	return tasks, nil
}
