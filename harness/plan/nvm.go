package plan

import (
	"fmt"
	"math"
	"sort"

	"github.com/batteryless/harness/harness/model"
)

// The NVM header, at offset 0: a magic word, a tag of the plan (so a board
// never resumes another plan's progress), the progress word, a word of the
// port's (the wire loop's started inference, at 12) and the image CRC-32
// the firmware last verified (FORMAT.md).
const (
	HeaderBytes    = 20
	MagicOffset    = 0
	PlanTagOffset  = 4
	ProgressOffset = 8
	// StartedOffset is the wire loop's word: the number of the last
	// inference it started (a board does not start the same number
	// twice), written at START and DEPLOY_COMMIT.
	StartedOffset = 12
	// VerifiedCRCOffset holds the CRC-32 field of the last plan image
	// whose CRC the firmware's boot checked and found right. A boot
	// checks the whole image only when this word differs from the
	// image's CRC field: once after each new image, instead of at every
	// power-up, where reading a large image costs more energy than a
	// power cycle holds. The simulated board has no image to check and
	// leaves the word 0.
	VerifiedCRCOffset = 16
	nvmAlign          = 4
)

// Magic marks an NVM image laid out by this package ("IHNV" little-endian).
const Magic uint32 = 0x564E4849

// LayoutOptions change how activations are placed.
type LayoutOptions struct {
	// InPlace lets an element-wise layer (ADD, MUL, SOFTMAX, QUANTIZE,
	// RESHAPE) write its output over its input, as RAM planners do. It
	// breaks rule 1 of the commit protocol: a task cut by a brown-out after
	// part of its writes reads its own output back as input when it runs
	// again. It exists so tests can show that fault injection catches it.
	InPlace bool
}

// Layout places every activation tensor in NVM after the header. Two
// tensors may share bytes only if no stretch of tasks between two commits
// both reads one and writes the other: a tensor lives from the commit group
// of its producer's first task to the group of its last reader's last task
// (the graph input from before the first task, the graph output until after
// the last). Requires the tasks and their commit flags.
func Layout(p *Plan, m *model.Model, opt LayoutOptions) error {
	group := make([]int, len(p.Tasks))
	g := 0
	firstTask := map[int]int{}
	lastTask := map[int]int{}
	for i, t := range p.Tasks {
		group[i] = g
		if t.Commit {
			g++
		}
		if _, ok := firstTask[t.Layer]; !ok {
			firstTask[t.Layer] = i
		}
		lastTask[t.Layer] = i
	}
	type life struct {
		tensor, bytes int
		first, last   int
		alias         int // tensor whose bytes this one reuses in place, or -1
	}
	lives := map[int]*life{}
	get := func(t int) *life {
		if lv, ok := lives[t]; ok {
			return lv
		}
		lv := &life{tensor: t, bytes: m.Tensors[t].Bytes(), first: math.MaxInt, last: -1, alias: -1}
		lives[t] = lv
		return lv
	}
	in := get(m.Input)
	in.first = -1
	for _, l := range m.Layers {
		ft, ok := firstTask[l.Index]
		if !ok {
			return fmt.Errorf("plan: layer %d (%s) has no task", l.Index, l.Op)
		}
		lo := get(l.Output)
		lo.first = min(lo.first, group[ft])
		lo.last = max(lo.last, group[lastTask[l.Index]])
		for _, t := range l.Inputs {
			lv := get(t)
			lv.last = max(lv.last, group[lastTask[l.Index]])
		}
	}
	out := get(m.Output)
	out.last = math.MaxInt
	// The partial-sum slots of a split layer live while the layer runs.
	// Keyed by -(layer+1) so they never collide with tensors.
	for _, lp := range p.Layers {
		if lp.PartialSlots > 0 {
			k := -(lp.Layer + 1)
			lives[k] = &life{tensor: k, bytes: lp.PartialSlots * lp.PartialSlotBytes,
				first: group[lp.FirstTask], last: group[lp.FirstTask+lp.Tasks-1], alias: -1}
		}
	}
	if opt.InPlace {
		for _, l := range m.Layers {
			switch l.Op {
			case model.OpAdd, model.OpMul, model.OpSoftmax, model.OpQuantize, model.OpReshape:
				src := lives[l.Inputs[0]]
				if src.bytes == lives[l.Output].bytes && src.alias == -1 && l.Inputs[0] != m.Input {
					lives[l.Output].alias = src.tensor
					// The shared bytes must stay free for both lifetimes.
					src.last = max(src.last, lives[l.Output].last)
				}
			}
		}
	}
	order := make([]*life, 0, len(lives))
	for _, lv := range lives {
		order = append(order, lv)
	}
	sort.Slice(order, func(a, b int) bool {
		if order[a].bytes != order[b].bytes {
			return order[a].bytes > order[b].bytes
		}
		return order[a].tensor < order[b].tensor
	})
	offsets := map[int]int{}
	var placed []*life
	end := HeaderBytes
	for _, lv := range order {
		if lv.alias != -1 {
			continue
		}
		var busy [][2]int
		for _, o := range placed {
			if o.first <= lv.last && lv.first <= o.last {
				busy = append(busy, [2]int{offsets[o.tensor], offsets[o.tensor] + o.bytes})
			}
		}
		sort.Slice(busy, func(a, b int) bool { return busy[a][0] < busy[b][0] })
		off := HeaderBytes
		for _, b := range busy {
			if off+lv.bytes <= b[0] {
				break
			}
			off = max(off, (b[1]+nvmAlign-1)/nvmAlign*nvmAlign)
		}
		offsets[lv.tensor] = off
		placed = append(placed, lv)
		end = max(end, off+lv.bytes)
	}
	// In-place outputs take their source's bytes (chains resolve in layer order).
	for _, l := range m.Layers {
		if lv := lives[l.Output]; lv.alias != -1 {
			offsets[lv.tensor] = offsets[lv.alias]
		}
	}
	p.Activations = p.Activations[:0]
	ids := make([]int, 0, len(offsets))
	for t := range offsets {
		ids = append(ids, t)
	}
	sort.Ints(ids)
	for _, t := range ids {
		if t < 0 {
			p.LayerPlan(-t - 1).PartialBase = offsets[t]
			continue
		}
		p.Activations = append(p.Activations, Placement{Tensor: t, Offset: offsets[t], Bytes: lives[t].bytes})
	}

	p.ProgressOffset = ProgressOffset
	p.NVMBytes = end
	p.InputTensor, p.OutputTensor = m.Input, m.Output
	return nil
}
