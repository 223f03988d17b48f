package kernels

import "github.com/batteryless/harness/harness/fixedpoint"

// FCParams describes a fully connected layer: Batches input rows of Depth
// values each, OutC outputs per row. Multiplier and Shift hold one entry
// (per-tensor) or OutC entries (per-channel).
type FCParams struct {
	Batches, Depth, OutC int
	InputOffset          int32
	FilterOffset         int32 // minus the weight zero point (0 for symmetric weights)
	OutputOffset         int32
	ActMin, ActMax       int32
	Multiplier           []int32
	Shift                []int32
	// WeightSums, when set (see FCWeightSums), holds each output's sum of
	// weights, so the input offset folds into one multiply per output.
	WeightSums []int32
	// Rounding is the requantization's rounding (zero: TFLite's double).
	Rounding fixedpoint.Rounding
}

// Shape is the output shape as the kernels index it: {Batches, 1, 1, OutC}.
func (p *FCParams) Shape() Shape { return Shape{p.Batches, 1, 1, p.OutC} }

// FullyConnected computes region r of the output (r's N range selects batch
// rows and its C range output units; its Y and X ranges must be [0,1)).
// weights are [OutC][Depth]; bias may be nil.
func FullyConnected(p *FCParams, input, weights []int8, bias []int32, output []int8, r Region) {
	for b := r.N0; b < r.N1; b++ {
		x := input[b*p.Depth : (b+1)*p.Depth]
		o := r.C0
		if p.FilterOffset == 0 {
			// Four outputs at a time share each load of the input row.
			for ; o+4 <= r.C1; o += 4 {
				a0, a1, a2, a3 := dot4x8(x, weights[o*p.Depth:(o+4)*p.Depth])
				p.store(output, bias, b, o, a0+p.InputOffset*p.weightSum(o, weights))
				p.store(output, bias, b, o+1, a1+p.InputOffset*p.weightSum(o+1, weights))
				p.store(output, bias, b, o+2, a2+p.InputOffset*p.weightSum(o+2, weights))
				p.store(output, bias, b, o+3, a3+p.InputOffset*p.weightSum(o+3, weights))
			}
		}
		for ; o < r.C1; o++ {
			w := weights[o*p.Depth : (o+1)*p.Depth]
			var acc int32
			if p.FilterOffset == 0 {
				acc = dot8(x, w) + p.InputOffset*p.weightSum(o, weights)
			} else {
				w = w[:len(x)]
				for i, v := range x {
					acc += (int32(v) + p.InputOffset) * (int32(w[i]) + p.FilterOffset)
				}
			}
			p.store(output, bias, b, o, acc)
		}
	}
}

// store adds the bias, requantizes, clamps and writes output o of batch b.
func (p *FCParams) store(output []int8, bias []int32, b, o int, acc int32) {
	if bias != nil {
		acc += bias[o]
	}
	ch := 0
	if len(p.Multiplier) > 1 {
		ch = o
	}
	acc = p.Rounding.MBQM(acc, p.Multiplier[ch], int(p.Shift[ch]))
	output[b*p.OutC+o] = int8(clamp(acc+p.OutputOffset, p.ActMin, p.ActMax))
}

// weightSum is the sum of output o's weights (weights is the whole matrix).
func (p *FCParams) weightSum(o int, weights []int8) int32 {
	if len(p.WeightSums) == p.OutC {
		return p.WeightSums[o]
	}
	return sum8(weights[o*p.Depth : (o+1)*p.Depth])
}

// FCWeightSums returns each output's sum of weights for FCParams.WeightSums.
func FCWeightSums(p *FCParams, weights []int8) []int32 {
	sums := make([]int32, p.OutC)
	for o := range sums {
		sums[o] = sum8(weights[o*p.Depth : (o+1)*p.Depth])
	}
	return sums
}
