package kernels

import "github.com/batteryless/harness/harness/fixedpoint"

// SoftmaxParams holds TFLite's int8 softmax parameters. The output
// quantization is fixed: scale 1/256, zero point -128.
type SoftmaxParams struct {
	Shape          Shape // softmax runs over the C dimension of every (n, y, x)
	InputMult      int32
	InputLeftShift int
	DiffMin        int32
}

// scaledDiffIntegerBits and accumulationIntegerBits are TFLite's Q formats for
// the scaled input difference (Q5.26) and the sum of exponentials (Q12.19).
const (
	scaledDiffIntegerBits   = 5
	accumulationIntegerBits = 12
)

// ScaledDiffIntegerBits is the number of integer bits of softmax's scaled
// input differences, needed to prepare InputMult and DiffMin.
const ScaledDiffIntegerBits = scaledDiffIntegerBits

// Softmax computes region r of an int8 softmax. A softmax row is not
// divisible, so r must cover every channel (C0 = 0, C1 = Shape.C).
func Softmax(p *SoftmaxParams, input, output []int8, r Region) {
	s := p.Shape
	for n := r.N0; n < r.N1; n++ {
		for y := r.Y0; y < r.Y1; y++ {
			for x := r.X0; x < r.X1; x++ {
				base := ((n*s.H+y)*s.W + x) * s.C
				softmaxRow(p, input[base:base+s.C], output[base:base+s.C])
			}
		}
	}
}

func softmaxRow(p *SoftmaxParams, in, out []int8) {
	out = out[:len(in)]
	maxIn := int32(-128)
	for _, v := range in {
		maxIn = max(maxIn, int32(v))
	}
	var sum int32
	for _, v := range in {
		d := int32(v) - maxIn
		if d >= p.DiffMin {
			z := fixedpoint.MBQMGreaterThanOne(d, p.InputMult, p.InputLeftShift)
			sum += fixedpoint.RDBPOT(fixedpoint.ExpOnNegativeValuesQ5(z), accumulationIntegerBits)
		}
	}
	scale, bitsOverUnit := fixedpoint.Reciprocal(sum, accumulationIntegerBits)
	for i, v := range in {
		d := int32(v) - maxIn
		if d < p.DiffMin {
			out[i] = -128
			continue
		}
		z := fixedpoint.MBQMGreaterThanOne(d, p.InputMult, p.InputLeftShift)
		e := fixedpoint.ExpOnNegativeValuesQ5(z)
		o := fixedpoint.RDBPOT(fixedpoint.SRDHM(scale, e), bitsOverUnit+31-8) - 128
		out[i] = int8(clamp(o, -128, 127))
	}
}
