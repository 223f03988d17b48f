package kernels

import "github.com/batteryless/harness/harness/fixedpoint"

// AddParams holds TFLite's int8 ADD arithmetic: both inputs are lifted by
// LeftShift bits, rescaled to a common scale, summed and rescaled to the output.
type AddParams struct {
	Shape                      Shape // of both inputs and the output (no broadcasting)
	Input1Offset, Input2Offset int32
	LeftShift                  int
	Input1Mult, Input2Mult     int32
	Input1Shift, Input2Shift   int
	OutputMult                 int32
	OutputShift                int
	OutputOffset               int32
	ActMin, ActMax             int32
	// Pack, when set (see Prepare), holds each input's rescaling of all
	// 256 int8 values and the output's requantization.
	Pack *AddPack
}

// AddPack is an addition prepared for the fast path: the two inputs'
// rescaled values depend on one int8 each, so they are looked up, and only
// the rescaling of their sum is computed, eight lanes at a time.
type AddPack struct {
	in1, in2 [256]int32 // indexed by uint8 of the input value
	rq       *requant
}

// Prepare makes p.Pack and reports whether there is one (an output shift
// above 0, which TFLite's kernel does not produce, keeps the portable path).
func (p *AddParams) Prepare() bool {
	p.Pack = nil
	if p.OutputShift > 0 || p.Input1Shift > 0 || p.Input2Shift > 0 {
		return false
	}
	rq, ok := newRequant([]int32{p.OutputMult}, []int32{int32(p.OutputShift)}, 1, p.OutputOffset, p.ActMin, p.ActMax)
	if !ok {
		return false
	}
	pk := &AddPack{rq: rq}
	for v := -128; v < 128; v++ {
		pk.in1[uint8(v)] = fixedpoint.MBQMSmallerThanOne((int32(v)+p.Input1Offset)<<uint(p.LeftShift), p.Input1Mult, p.Input1Shift)
		pk.in2[uint8(v)] = fixedpoint.MBQMSmallerThanOne((int32(v)+p.Input2Offset)<<uint(p.LeftShift), p.Input2Mult, p.Input2Shift)
	}
	p.Pack = pk
	return true
}

// Add computes region r of an element-wise addition. s is working memory
// for the fast path (nil: allocate).
func Add(p *AddParams, in1, in2, output []int8, r Region, s *Scratch) {
	if pk := p.Pack; pk != nil {
		if s == nil {
			s = new(Scratch)
		}
		forEachRow(p.Shape, r, func(lo, hi int) {
			a, b, out := in1[lo:hi], in2[lo:hi], output[lo:hi]
			acc := s.int32s(len(out))
			b = b[:len(a)]
			for i, v := range a {
				acc[i] = pk.in1[uint8(v)] + pk.in2[uint8(b[i])]
			}
			pk.rq.apply(acc, out, 0, fixedpoint.Double)
		})
		return
	}
	forEachRow(p.Shape, r, func(lo, hi int) {
		a, b, out := in1[lo:hi], in2[lo:hi], output[lo:hi]
		for i := range out {
			x := fixedpoint.MBQMSmallerThanOne((int32(a[i])+p.Input1Offset)<<uint(p.LeftShift), p.Input1Mult, p.Input1Shift)
			y := fixedpoint.MBQMSmallerThanOne((int32(b[i])+p.Input2Offset)<<uint(p.LeftShift), p.Input2Mult, p.Input2Shift)
			s := fixedpoint.MBQMSmallerThanOne(x+y, p.OutputMult, p.OutputShift)
			out[i] = int8(clamp(s+p.OutputOffset, p.ActMin, p.ActMax))
		}
	})
}

// MulParams holds TFLite's int8 MUL arithmetic.
type MulParams struct {
	Shape                      Shape
	Input1Offset, Input2Offset int32
	OutputMult                 int32
	OutputShift                int
	OutputOffset               int32
	ActMin, ActMax             int32
	Rounding                   fixedpoint.Rounding // zero: TFLite's double rounding
}

// Mul computes region r of an element-wise multiplication.
func Mul(p *MulParams, in1, in2, output []int8, r Region) {
	forEachRow(p.Shape, r, func(lo, hi int) {
		a, b, out := in1[lo:hi], in2[lo:hi], output[lo:hi]
		for i := range out {
			prod := (int32(a[i]) + p.Input1Offset) * (int32(b[i]) + p.Input2Offset)
			v := p.Rounding.MBQM(prod, p.OutputMult, p.OutputShift)
			out[i] = int8(clamp(v+p.OutputOffset, p.ActMin, p.ActMax))
		}
	})
}

// RequantizeParams maps int8 values from one quantization to another
// (TFLite's QUANTIZE with an int8 input).
type RequantizeParams struct {
	Shape        Shape
	InputOffset  int32 // minus the input zero point
	Multiplier   int32
	Shift        int
	OutputOffset int32
	Rounding     fixedpoint.Rounding // zero: TFLite's double rounding
}

// Requantize computes region r of a requantization.
func Requantize(p *RequantizeParams, input, output []int8, r Region) {
	forEachRow(p.Shape, r, func(lo, hi int) {
		in, out := input[lo:hi], output[lo:hi]
		for i := range out {
			v := p.Rounding.MBQM(int32(in[i])+p.InputOffset, p.Multiplier, p.Shift)
			out[i] = int8(clamp(v+p.OutputOffset, -128, 127))
		}
	})
}

// Copy computes region r of an identity (RESHAPE keeps the bytes as they are).
func Copy(s Shape, input, output []int8, r Region) {
	forEachRow(s, r, func(lo, hi int) { copy(output[lo:hi], input[lo:hi]) })
}

// forEachRow calls f with the flat [lo, hi) index span of each run of
// contiguous channels of region r in a tensor of shape s.
func forEachRow(s Shape, r Region, f func(lo, hi int)) {
	if r.C0 == 0 && r.C1 == s.C && r.X0 == 0 && r.X1 == s.W {
		// Whole rows are contiguous: one span per batch.
		for n := r.N0; n < r.N1; n++ {
			base := n * s.H * s.W * s.C
			f(base+r.Y0*s.W*s.C, base+r.Y1*s.W*s.C)
		}
		return
	}
	for n := r.N0; n < r.N1; n++ {
		for y := r.Y0; y < r.Y1; y++ {
			for x := r.X0; x < r.X1; x++ {
				base := ((n*s.H+y)*s.W + x) * s.C
				f(base+r.C0, base+r.C1)
			}
		}
	}
}
