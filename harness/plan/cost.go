package plan

import (
	"strings"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/kernels"
	"github.com/batteryless/harness/harness/model"
)

// Needs is what computing one region of a layer's output takes.
type Needs struct {
	Inputs       []kernels.Region // the region of each input tensor read (in Layer.Inputs order)
	InputBytes   int
	InputSpans   int // contiguous runs of NVM the inputs are read in (one DMA each)
	WeightBytes  int // weights and bias of the region's channels
	WeightSpans  int
	OutputBytes  int
	OutputSpans  int
	ScratchBytes int
	AccInBytes   int // partial sums read (a reduction step after the first)
	AccOutBytes  int // partial sums written (a reduction step before the last)
	MACs         int64

	// The kernel's work inside the input, as the firmware's loops do it,
	// for the per-kernel costs of a calibrated profile (profiles.KernelCost):
	// Taps counts inner loops: window positions inside the input summed
	// over the outputs for CONV_2D, the window positions of window rows
	// inside the input (those outside the input's columns too) for
	// DEPTHWISE_CONV_2D, 0 for FULLY_CONNECTED, and the region's (n, y, x)
	// positions for the others
	// (a pooling window's bounds, a loop over the channels, a row of
	// SOFTMAX). Terms counts the input elements combined:
	// multiply-accumulates inside the input for CONV_2D, DEPTHWISE_CONV_2D
	// and FULLY_CONNECTED, window elements inside the input for the pools,
	// 0 for the others (their work is per output). Padding is not counted,
	// unlike in MACs.
	Taps, Terms int64
}

// SRAMBytes is the working set in SRAM: inputs, weights, output and scratch.
func (n Needs) SRAMBytes() int {
	return n.InputBytes + n.WeightBytes + n.OutputBytes + n.ScratchBytes + n.AccInBytes + n.AccOutBytes
}

// span1 maps an output interval [o0, o1) through a window of size k with
// stride s, dilation d and padding pad to the input interval it reads,
// clipped to [0, in).
func span1(o0, o1, s, d, k, pad, in int) (int, int) {
	lo := o0*s - pad
	hi := (o1-1)*s - pad + (k-1)*d + 1
	return max(lo, 0), min(hi, in)
}

// Spans counts the contiguous runs of region r in a tensor of shape s.
func Spans(s kernels.Shape, r kernels.Region) int {
	if r.Empty() {
		return 0
	}
	switch {
	case r.C0 == 0 && r.C1 == s.C && r.X0 == 0 && r.X1 == s.W && r.Y0 == 0 && r.Y1 == s.H:
		return 1 // whole batches: one run when consecutive
	case r.C0 == 0 && r.C1 == s.C && r.X0 == 0 && r.X1 == s.W:
		return r.N1 - r.N0
	case r.C0 == 0 && r.C1 == s.C:
		return (r.N1 - r.N0) * (r.Y1 - r.Y0)
	}
	return (r.N1 - r.N0) * (r.Y1 - r.Y0) * (r.X1 - r.X0)
}

// LayerNeeds computes what region r of layer l needs; part, when split,
// restricts it to one step of the reduction.
func LayerNeeds(m *model.Model, l *model.Layer, r kernels.Region, part Part) Needs {
	out := m.Tensors[l.Output]
	n := Needs{OutputBytes: r.Elems() * out.DType.Size(), OutputSpans: Spans(out.Shape, r)}
	if part.Split() {
		if part.Step > 0 {
			n.AccInBytes = 4 * r.Elems()
		}
		if !part.Last() {
			n.OutputBytes, n.OutputSpans = 0, 0
			n.AccOutBytes = 4 * r.Elems()
		}
	}
	in := m.Tensors[l.Inputs[0]]
	addInput := func(t *model.Tensor, ir kernels.Region) {
		n.Inputs = append(n.Inputs, ir)
		n.InputBytes += ir.Elems() * t.DType.Size()
		n.InputSpans += Spans(t.Shape, ir)
	}
	outElems := int64(r.Elems())
	switch l.Op {
	case model.OpConv2D, model.OpDepthwiseConv2D:
		c := l.Conv
		y0, y1 := span1(r.Y0, r.Y1, c.StrideH, c.DilationH, c.KernelH, c.PadTop, c.In.H)
		x0, x1 := span1(r.X0, r.X1, c.StrideW, c.DilationW, c.KernelW, c.PadLeft, c.In.W)
		ir := kernels.Region{N0: r.N0, N1: r.N1, Y0: y0, Y1: y1, X0: x0, X1: x1, C0: 0, C1: c.In.C}
		chans := r.C1 - r.C0
		rows := int64(r.N1-r.N0) * int64(chans) * validTaps(r.Y0, r.Y1, c.StrideH, c.DilationH, c.KernelH, c.PadTop, c.In.H)
		taps := rows * validTaps(r.X0, r.X1, c.StrideW, c.DilationW, c.KernelW, c.PadLeft, c.In.W)
		if l.Op == model.OpDepthwiseConv2D {
			// Its inner loop tests every column of a window row inside
			// the input: a SAME 3 x 3 window on a 5-wide map (KWS) tests
			// 40 % more columns than it reads.
			n.Taps = rows * int64(r.X1-r.X0) * int64(c.KernelW)
			n.Terms = taps
		} else {
			n.Taps = taps
			n.Terms = taps * int64(c.In.C)
			if part.Split() {
				n.Terms = taps * int64(part.Hi-part.Lo)
			}
		}
		if l.Op == model.OpDepthwiseConv2D {
			ir.C0, ir.C1 = r.C0/c.DepthMultiplier, (r.C1-1)/c.DepthMultiplier+1
			n.WeightBytes = c.KernelH * c.KernelW * chans
			n.WeightSpans = c.KernelH * c.KernelW
			n.MACs = outElems * int64(c.KernelH*c.KernelW)
		} else if part.Split() {
			ic := part.Hi - part.Lo
			ir.C0, ir.C1 = part.Lo, part.Hi
			n.WeightBytes = chans * c.KernelH * c.KernelW * ic
			n.WeightSpans = chans * c.KernelH * c.KernelW
			n.MACs = outElems * int64(c.KernelH*c.KernelW*ic)
		} else {
			n.WeightBytes = chans * c.KernelH * c.KernelW * c.In.C
			n.WeightSpans = 1
			n.MACs = outElems * int64(c.KernelH*c.KernelW*c.In.C)
			n.ScratchBytes = c.KernelH * c.KernelW * c.In.C
		}
		if l.Bias >= 0 && part.Last() {
			n.WeightBytes += 4 * chans
			n.WeightSpans++
		}
		addInput(in, ir)
	case model.OpFullyConnected:
		f := l.FC
		depth, spans := f.Depth, 1
		if part.Split() {
			// A slice of every row: read as runs of the flat input.
			depth, spans = part.Hi-part.Lo, r.N1-r.N0
			n.Inputs = append(n.Inputs, rowsRegion(in.Shape, f.Depth, r.N0, r.N1))
			n.InputBytes += (r.N1 - r.N0) * depth
			n.InputSpans += r.N1 - r.N0
		} else {
			// The input may be shaped [1,h,w,c]: what is read is whole rows.
			addInput(in, rowsRegion(in.Shape, f.Depth, r.N0, r.N1))
		}
		n.WeightBytes = (r.C1 - r.C0) * depth
		n.WeightSpans = spans * (r.C1 - r.C0)
		if !part.Split() {
			n.WeightSpans = 1
		}
		if l.Bias >= 0 && part.Last() {
			n.WeightBytes += 4 * (r.C1 - r.C0)
			n.WeightSpans++
		}
		n.MACs = int64(r.N1-r.N0) * int64(r.C1-r.C0) * int64(depth)
		n.Terms = n.MACs
	case model.OpAveragePool2D, model.OpMaxPool2D:
		p := l.Pool
		y0, y1 := span1(r.Y0, r.Y1, p.StrideH, 1, p.FilterH, p.PadTop, p.In.H)
		rows := p.FilterH
		if part.Split() {
			// Window rows [Lo, Hi) of every output's window.
			y0 = max(r.Y0*p.StrideH-p.PadTop+part.Lo, 0)
			y1 = min((r.Y1-1)*p.StrideH-p.PadTop+part.Hi, p.In.H)
			y1 = max(y1, y0)
			rows = part.Hi - part.Lo
		}
		x0, x1 := span1(r.X0, r.X1, p.StrideW, 1, p.FilterW, p.PadLeft, p.In.W)
		addInput(in, kernels.Region{N0: r.N0, N1: r.N1, Y0: y0, Y1: y1, X0: x0, X1: x1, C0: r.C0, C1: r.C1})
		n.MACs = outElems * int64(rows*p.FilterW)
		lo, hi := 0, p.FilterH
		if part.Split() {
			lo, hi = part.Lo, part.Hi
		}
		vrows := validTaps(r.Y0, r.Y1, p.StrideH, 1, hi-lo, p.PadTop-lo, p.In.H)
		vcols := validTaps(r.X0, r.X1, p.StrideW, 1, p.FilterW, p.PadLeft, p.In.W)
		n.Terms = int64(r.N1-r.N0) * int64(r.C1-r.C0) * vrows * vcols
	case model.OpReshape:
		// The same flat elements: region r of the output is the input's
		// elements with the same flat indices.
		n.Inputs = append(n.Inputs, r)
		n.InputBytes = n.OutputBytes
		n.InputSpans = n.OutputSpans
	default: // element-wise: the same region of every input
		for _, t := range l.Inputs {
			addInput(m.Tensors[t], r)
		}
		n.MACs = outElems
	}
	switch l.Op {
	case model.OpConv2D, model.OpDepthwiseConv2D, model.OpFullyConnected:
	default:
		// Per position: a pooling window's bounds, a loop over the
		// channels (SOFTMAX: a row).
		n.Taps = int64(r.N1-r.N0) * int64(r.Y1-r.Y0) * int64(r.X1-r.X0)
	}
	return n
}

// validTaps counts the window positions inside the input, summed over the
// outputs [o0, o1) of one dimension: pairs (o, k), k in [0, size), with
// o*stride - pad + k*dilation in [0, in). For each k the outputs that see
// it inside are a range: O(size).
func validTaps(o0, o1, stride, dilation, size, pad, in int) int64 {
	var n int64
	for k := 0; k < size; k++ {
		off := k*dilation - pad // input index o*stride + off
		lo := max(o0, floorDiv(-off+stride-1, stride))
		hi := min(o1-1, floorDiv(in-1-off, stride))
		if hi >= lo {
			n += int64(hi - lo + 1)
		}
	}
	return n
}

// floorDiv is a/b rounded down, b > 0.
func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// KernelName is the name of an operator's kernel in a profile's
// costs.kernels (profiles.KernelNames): "conv_2d" for CONV_2D.
func KernelName(op model.Op) string { return kernelNames[op] }

var kernelNames = func() (names [256]string) {
	for o := range names {
		if s := model.Op(o).String(); !strings.HasPrefix(s, "Op(") {
			names[o] = strings.ToLower(s)
		}
	}
	return names
}()

// rowsRegion is the region of whole batch rows [n0, n1) of a tensor read as
// rows of depth values.
func rowsRegion(s kernels.Shape, depth, n0, n1 int) kernels.Region {
	if s.H*s.W*s.C == depth {
		return kernels.Region{N0: n0, N1: n1, Y0: 0, Y1: s.H, X0: 0, X1: s.W, C0: 0, C1: s.C}
	}
	// Rows are spread over other dimensions: read everything (rare; the
	// estimate stays safe).
	return s.Full()
}

// Cost is an estimate of one task's energy and cycles on a device.
type Cost struct {
	ReadEnergy, ComputeEnergy, WriteEnergy float64
	ReadCycles, ComputeCycles, WriteCycles float64
	// The parts of the read: inputs and weights (the rest is partial sums).
	InputReadEnergy, WeightReadEnergy float64
	InputReadCycles, WeightReadCycles float64
}

// Energy is the total energy.
func (c Cost) Energy() float64 { return c.ReadEnergy + c.ComputeEnergy + c.WriteEnergy }

// Cycles is the total cycles.
func (c Cost) Cycles() float64 { return c.ReadCycles + c.ComputeCycles + c.WriteCycles }

// elems16 is the number of 16-bit elements bytes occupy (the unit of the
// profile's DMA costs).
func elems16(bytes int) float64 { return float64((bytes + 1) / 2) }

// Estimate prices region r of layer l on a device with iNAS's cost model:
// one DMA per contiguous run read or written, one vector MAC per output value
// of a convolution or fully connected layer, CPU operations for pooling,
// element-wise arithmetic and requantization. A calibrated profile's cost of
// the layer's kernel (profiles.Profile.Kernel) replaces the vector MAC and CPU
// operations; its layer scan adds the runtime's search for the task's
// layer (l.Index layers before it). A step of a split reduction is priced
// by its part: the kernel's work over its range of the reduced dimension.
func Estimate(prof *profiles.Profile, m *model.Model, l *model.Layer, r kernels.Region, part Part) (Cost, Needs) {
	n := LayerNeeds(m, l, r, part)
	var c Cost
	dma := func(lc profiles.LinearCost, bytes, spans int) (float64, float64) {
		if spans == 0 {
			return 0, 0
		}
		e := lc.EnergyPerElem*elems16(bytes) + lc.EnergyFixed*float64(spans)
		cy := lc.CyclesPerElem*elems16(bytes) + lc.CyclesFixed*float64(spans)
		return e, cy
	}
	e1, c1 := dma(prof.NVMRead, n.InputBytes, n.InputSpans)
	e2, c2 := dma(prof.NVMRead, n.WeightBytes, n.WeightSpans)
	c.ReadEnergy, c.ReadCycles = e1+e2, c1+c2
	c.InputReadEnergy, c.InputReadCycles, c.WeightReadEnergy, c.WeightReadCycles = e1, c1, e2, c2
	e3, c3 := dma(prof.NVMRead, n.AccInBytes, boolSpan(n.AccInBytes))
	c.ReadEnergy, c.ReadCycles = c.ReadEnergy+e3, c.ReadCycles+c3
	c.WriteEnergy, c.WriteCycles = dma(prof.NVMWrite, n.OutputBytes, n.OutputSpans)
	e4, c4 := dma(prof.NVMWrite, n.AccOutBytes, boolSpan(n.AccOutBytes))
	c.WriteEnergy, c.WriteCycles = c.WriteEnergy+e4, c.WriteCycles+c4
	finish := part.Last()

	outs := float64(r.Elems())
	if ls := prof.LayerScan; ls != nil {
		c.ComputeEnergy += float64(l.Index) * ls.Energy
		c.ComputeCycles += float64(l.Index) * ls.Cycles
	}
	if kc := prof.Kernel(KernelName(l.Op)); kc != nil {
		taps, terms := float64(n.Taps), float64(n.Terms)
		c.ComputeEnergy += kc.Energy(outs, taps, terms)
		c.ComputeCycles += kc.Cycles(outs, taps, terms)
		return c, n
	}
	ops := func(count float64, oc profiles.OpCost) {
		c.ComputeEnergy += count * oc.Energy
		c.ComputeCycles += count * oc.Cycles
	}
	// Requantizing one value: a fixed-point multiply, a rounding shift and
	// the offset, then the clamp.
	requant := func(count float64) {
		ops(count, prof.Mul)
		ops(2*count, prof.Add)
		ops(2*count, prof.Max)
	}
	switch l.Op {
	case model.OpConv2D, model.OpDepthwiseConv2D, model.OpFullyConnected:
		k := float64(n.MACs) / max(outs, 1)
		c.ComputeEnergy += outs * prof.VectorMAC.Energy(k)
		c.ComputeCycles += outs * prof.VectorMAC.Cycles(k)
		if part.Split() {
			ops(outs, prof.Add) // adding the step to the partial sums
		}
		if finish {
			requant(outs)
		}
	case model.OpMaxPool2D:
		ops(float64(n.MACs), prof.Max)
	case model.OpAveragePool2D:
		ops(float64(n.MACs), prof.Add)
		if finish {
			ops(outs, prof.Div)
		}
	case model.OpAdd:
		// Two rescaled inputs and a rescaled sum.
		requant(3 * outs)
		ops(outs, prof.Add)
	case model.OpMul:
		ops(outs, prof.Mul)
		requant(outs)
	case model.OpSoftmax:
		// Fixed-point exp (about ten multiplies) per value, twice, and one
		// reciprocal per row.
		ops(20*outs, prof.Mul)
		ops(20*outs, prof.Add)
		ops(outs/max(float64(l.Softmax.Shape.C), 1), prof.Div)
	case model.OpQuantize, model.OpDequantize:
		requant(outs)
	case model.OpReshape:
		// Data movement only.
	}
	return c, n
}

func boolSpan(bytes int) int {
	if bytes > 0 {
		return 1
	}
	return 0
}

// CommitCost is the cost of writing the progress word.
func CommitCost(prof *profiles.Profile) (energy, cycles float64) {
	n := elems16(prof.WordBytes)
	return prof.NVMWrite.Energy(n), prof.NVMWrite.Cycles(n)
}

// MinimumCost is the energy and cycles of one inference's computation
// alone on a device: every layer computed whole (each input, weight and
// output moved once, no tiling overhead), with no commits and no reboots.
// It is the floor every plan's cost is measured against.
func MinimumCost(prof *profiles.Profile, m *model.Model) (energy, cycles float64) {
	for _, l := range m.Layers {
		c, _ := Estimate(prof, m, l, m.OutputShape(l).Full(), Part{})
		energy += c.Energy()
		cycles += c.Cycles()
	}
	return energy, cycles
}
