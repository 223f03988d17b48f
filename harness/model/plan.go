package model

import (
	"fmt"
	"sort"
)

// ArenaAlign is the alignment of every activation in the arena.
const ArenaAlign = 16

// MemoryPlan places the activations of one inference in a single arena.
type MemoryPlan struct {
	// ArenaBytes is the size of the arena the offsets need.
	ArenaBytes int
	// PeakActivationBytes is the largest total of activations alive at once
	// (a lower bound for any arena; the plan may need a little more).
	PeakActivationBytes int
	// PeakLayer is the layer at which PeakActivationBytes is reached.
	PeakLayer int
	// WeightBytes is the total of the constant tensors.
	WeightBytes int
	// ScratchBytes is the largest scratch buffer one kernel needs.
	ScratchBytes int
}

// lifetime of an activation in layer steps: [first, last].
type lifetime struct {
	tensor      int
	first, last int
	bytes       int
}

// PlanMemory assigns every activation tensor an arena offset (Tensor.Offset)
// with a greedy-by-size first fit: tensors alive at the same time never
// overlap, and the largest are placed first.
func PlanMemory(m *Model) (MemoryPlan, error) {
	live := map[int]*lifetime{}
	touch := func(t, step int) {
		lt, ok := live[t]
		if !ok {
			lt = &lifetime{tensor: t, first: step, last: step, bytes: m.Tensors[t].Bytes()}
			live[t] = lt
		}
		lt.first, lt.last = min(lt.first, step), max(lt.last, step)
	}
	touch(m.Input, 0)
	for i, l := range m.Layers {
		for _, t := range l.Inputs {
			touch(t, i)
		}
		touch(l.Output, i)
	}
	touch(m.Output, len(m.Layers))
	order := make([]*lifetime, 0, len(live))
	for _, lt := range live {
		order = append(order, lt)
	}
	sort.Slice(order, func(a, b int) bool {
		if order[a].bytes != order[b].bytes {
			return order[a].bytes > order[b].bytes
		}
		return order[a].tensor < order[b].tensor
	})
	var placed []*lifetime
	offsets := map[int]int{}
	plan := MemoryPlan{WeightBytes: m.WeightBytes()}
	for _, lt := range order {
		// Conflicting blocks sorted by offset; take the first gap that fits.
		var busy [][2]int
		for _, p := range placed {
			if p.first <= lt.last && lt.first <= p.last {
				busy = append(busy, [2]int{offsets[p.tensor], offsets[p.tensor] + p.bytes})
			}
		}
		sort.Slice(busy, func(a, b int) bool { return busy[a][0] < busy[b][0] })
		off := 0
		for _, b := range busy {
			if off+lt.bytes <= b[0] {
				break
			}
			off = max(off, alignUp(b[1]))
		}
		offsets[lt.tensor] = off
		placed = append(placed, lt)
		plan.ArenaBytes = max(plan.ArenaBytes, off+lt.bytes)
		if plan.ArenaBytes > MaxArenaBytes {
			return plan, fmt.Errorf("the activations need more than the %d-byte arena limit", MaxArenaBytes)
		}
	}
	for t, off := range offsets {
		m.Tensors[t].Offset = off
	}
	for step := 0; step <= len(m.Layers); step++ {
		total := 0
		for _, lt := range live {
			if lt.first <= step && step <= lt.last {
				total += lt.bytes
			}
		}
		if total > plan.PeakActivationBytes {
			plan.PeakActivationBytes, plan.PeakLayer = total, min(step, len(m.Layers)-1)
		}
	}
	for _, l := range m.Layers {
		plan.ScratchBytes = max(plan.ScratchBytes, ScratchBytes(l))
	}
	return plan, nil
}

func alignUp(n int) int { return (n + ArenaAlign - 1) / ArenaAlign * ArenaAlign }

// ScratchBytes is the scratch memory a layer's kernel needs besides its
// inputs and output (the convolution's gathered input patch).
func ScratchBytes(l *Layer) int {
	if l.Op == OpConv2D {
		return l.Conv.KernelH * l.Conv.KernelW * l.Conv.In.C
	}
	return 0
}
