package kernels

import "github.com/batteryless/harness/harness/fixedpoint"

// ConvParams describes a 2-D convolution or depthwise convolution, already
// resolved to integers: padding in pixels before the first row and column,
// offsets as TFLite's kernels take them, and one requantization multiplier and
// shift per output channel.
type ConvParams struct {
	In, Out              Shape
	KernelH, KernelW     int
	StrideH, StrideW     int
	DilationH, DilationW int
	PadTop, PadLeft      int
	DepthMultiplier      int   // depthwise only: output channels per input channel
	InputOffset          int32 // minus the input zero point, added to every input value
	OutputOffset         int32 // the output zero point
	ActMin, ActMax       int32 // clamp after requantization (fused activation included)
	Multiplier           []int32
	Shift                []int32
	// WeightSums, when set (see ConvWeightSums), saves Conv2D recomputing
	// the per-channel weight sums at every call.
	WeightSums []int32
	// Pack, when set (see Prepare), is the fast kernels' form of the
	// weights; it must have been made from the weights and bias passed.
	Pack *ConvPack
	// Rounding is the requantization's rounding (the zero value is
	// TFLite's double rounding).
	Rounding fixedpoint.Rounding
}

// Conv2D computes region r of a convolution's output. weights are
// [outC][kernelH][kernelW][inC]; bias may be nil (no bias). s is working
// memory (nil: allocate). With p.Pack set it runs the fast kernel.
//
// Without a pack:
// For speed the kernel gathers each output pixel's input patch into one
// contiguous row, writing the input zero point where a tap falls in the
// padding (such a tap adds (zp + InputOffset) * w = 0, exactly TFLite's
// skipped tap), and takes one dot product per output channel:
// sum((x+off)*w) = sum(x*w) + off*sum(w), exact in int32 modulo 2^32.
func Conv2D(p *ConvParams, input, weights []int8, bias []int32, output []int8, r Region, s *Scratch) {
	if r.Empty() {
		return
	}
	if s == nil {
		s = new(Scratch)
	}
	if p.Pack != nil {
		conv2DFast(p, p.Pack, input, output, r, s)
		return
	}
	zp := -p.InputOffset
	if zp < -128 || zp > 127 {
		conv2DGeneric(p, input, weights, bias, output, r)
		return
	}
	inC := p.In.C
	tapLen := p.KernelH * p.KernelW * inC
	patch := s.int8s(tapLen)
	sums := p.WeightSums
	if len(sums) != p.Out.C {
		sums = make([]int32, p.Out.C)
		for oc := r.C0; oc < r.C1; oc++ {
			sums[oc] = sum8(weights[oc*tapLen : (oc+1)*tapLen])
		}
	}
	for n := r.N0; n < r.N1; n++ {
		inBatch := n * p.In.H * p.In.W * inC
		for oy := r.Y0; oy < r.Y1; oy++ {
			y0 := oy*p.StrideH - p.PadTop
			for ox := r.X0; ox < r.X1; ox++ {
				x0 := ox*p.StrideW - p.PadLeft
				k := 0
				for ky := 0; ky < p.KernelH; ky++ {
					iy := y0 + ky*p.DilationH
					for kx := 0; kx < p.KernelW; kx++ {
						ix := x0 + kx*p.DilationW
						dst := patch[k : k+inC]
						if iy < 0 || iy >= p.In.H || ix < 0 || ix >= p.In.W {
							for i := range dst {
								dst[i] = int8(zp)
							}
						} else {
							base := inBatch + (iy*p.In.W+ix)*inC
							copy(dst, input[base:base+inC])
						}
						k += inC
					}
				}
				outBase := ((n*p.Out.H+oy)*p.Out.W + ox) * p.Out.C
				oc := r.C0
				// Four output channels at a time share each load of the patch.
				for ; oc+4 <= r.C1; oc += 4 {
					a0, a1, a2, a3 := dot4x8(patch, weights[oc*tapLen:(oc+4)*tapLen])
					p.store(output, bias, outBase, oc, a0+p.InputOffset*sums[oc])
					p.store(output, bias, outBase, oc+1, a1+p.InputOffset*sums[oc+1])
					p.store(output, bias, outBase, oc+2, a2+p.InputOffset*sums[oc+2])
					p.store(output, bias, outBase, oc+3, a3+p.InputOffset*sums[oc+3])
				}
				for ; oc < r.C1; oc++ {
					p.store(output, bias, outBase, oc, dot8(patch, weights[oc*tapLen:(oc+1)*tapLen])+p.InputOffset*sums[oc])
				}
			}
		}
	}
}

// store adds the bias to an accumulator, requantizes, clamps and writes it.
func (p *ConvParams) store(output []int8, bias []int32, outBase, oc int, acc int32) {
	if bias != nil {
		acc += bias[oc]
	}
	acc = p.Rounding.MBQM(acc, p.Multiplier[oc], int(p.Shift[oc]))
	output[outBase+oc] = int8(clamp(acc+p.OutputOffset, p.ActMin, p.ActMax))
}

// dot4x8 is dot8 of x with four consecutive rows of len(x) weights each.
func dot4x8(x, w []int8) (a0, a1, a2, a3 int32) {
	n := len(x)
	w0, w1, w2, w3 := w[:n], w[n:][:n], w[2*n:][:n], w[3*n:][:n]
	for i, v := range x {
		xv := int32(v)
		a0 += xv * int32(w0[i])
		a1 += xv * int32(w1[i])
		a2 += xv * int32(w2[i])
		a3 += xv * int32(w3[i])
	}
	return
}

// conv2DGeneric is the literal form of TFLite's reference loop, used when the
// input zero point cannot stand in a padded int8 patch.
func conv2DGeneric(p *ConvParams, input, weights []int8, bias []int32, output []int8, r Region) {
	inC := p.In.C
	tapLen := p.KernelH * p.KernelW * inC
	for n := r.N0; n < r.N1; n++ {
		inBatch := n * p.In.H * p.In.W * inC
		for oy := r.Y0; oy < r.Y1; oy++ {
			y0 := oy*p.StrideH - p.PadTop
			for ox := r.X0; ox < r.X1; ox++ {
				x0 := ox*p.StrideW - p.PadLeft
				outBase := ((n*p.Out.H+oy)*p.Out.W + ox) * p.Out.C
				for oc := r.C0; oc < r.C1; oc++ {
					var acc int32
					wOC := weights[oc*tapLen : (oc+1)*tapLen]
					for ky := 0; ky < p.KernelH; ky++ {
						iy := y0 + ky*p.DilationH
						if iy < 0 || iy >= p.In.H {
							continue
						}
						for kx := 0; kx < p.KernelW; kx++ {
							ix := x0 + kx*p.DilationW
							if ix < 0 || ix >= p.In.W {
								continue
							}
							inBase := inBatch + (iy*p.In.W+ix)*inC
							acc += dotOffset(input[inBase:inBase+inC], wOC[(ky*p.KernelW+kx)*inC:(ky*p.KernelW+kx+1)*inC], p.InputOffset)
						}
					}
					if bias != nil {
						acc += bias[oc]
					}
					acc = p.Rounding.MBQM(acc, p.Multiplier[oc], int(p.Shift[oc]))
					output[outBase+oc] = int8(clamp(acc+p.OutputOffset, p.ActMin, p.ActMax))
				}
			}
		}
	}
}

// ConvWeightSums returns the sum of each output channel's weights, the
// constant that Conv2D's fast path folds the input offset into.
func ConvWeightSums(p *ConvParams, weights []int8) []int32 {
	tapLen := p.KernelH * p.KernelW * p.In.C
	sums := make([]int32, p.Out.C)
	for oc := range sums {
		sums[oc] = sum8(weights[oc*tapLen : (oc+1)*tapLen])
	}
	return sums
}

func sum8(w []int8) int32 {
	var s int32
	for _, v := range w {
		s += int32(v)
	}
	return s
}

// dot8 is sum(x[i]*w[i]) with four independent accumulators.
func dot8(x, w []int8) int32 {
	w = w[:len(x)]
	var a0, a1, a2, a3 int32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		xs, ws := x[i:i+4:i+4], w[i:i+4:i+4]
		a0 += int32(xs[0]) * int32(ws[0])
		a1 += int32(xs[1]) * int32(ws[1])
		a2 += int32(xs[2]) * int32(ws[2])
		a3 += int32(xs[3]) * int32(ws[3])
	}
	for ; i < len(x); i++ {
		a0 += int32(x[i]) * int32(w[i])
	}
	return a0 + a1 + a2 + a3
}

// dotOffset is sum((x[i]+offset) * w[i]) in wrapping int32 arithmetic, as
// TFLite's int32 accumulator computes it.
func dotOffset(x, w []int8, offset int32) int32 {
	w = w[:len(x)]
	var acc, wsum int32
	for i, v := range x {
		wi := int32(w[i])
		acc += int32(v) * wi
		wsum += wi
	}
	// (x+o)*w summed equals x*w summed plus o*sum(w), exactly, in the ring of
	// int32 values modulo 2^32.
	return acc + offset*wsum
}

// DepthwiseConv2D computes region r of a depthwise convolution's output.
// weights are [1][kernelH][kernelW][outC]; output channel oc reads input
// channel oc/DepthMultiplier. s is working memory (nil: allocate); with
// p.Pack set it runs the fast kernel. Otherwise the loops run tap by tap
// over a block of channels, so the weights and inputs of one tap are read
// in a row.
func DepthwiseConv2D(p *ConvParams, input, weights []int8, bias []int32, output []int8, r Region, s *Scratch) {
	if r.Empty() {
		return
	}
	if p.Pack != nil {
		if s == nil {
			s = new(Scratch)
		}
		depthwiseFast(p, p.Pack, input, output, r, s)
		return
	}
	const block = 64
	var accBuf [block]int32
	inC, outC := p.In.C, p.Out.C
	mult := p.DepthMultiplier
	for n := r.N0; n < r.N1; n++ {
		inBatch := n * p.In.H * p.In.W * inC
		for oy := r.Y0; oy < r.Y1; oy++ {
			y0 := oy*p.StrideH - p.PadTop
			for ox := r.X0; ox < r.X1; ox++ {
				x0 := ox*p.StrideW - p.PadLeft
				outBase := ((n*p.Out.H+oy)*p.Out.W + ox) * outC
				for c0 := r.C0; c0 < r.C1; c0 += block {
					c1 := min(c0+block, r.C1)
					acc := accBuf[:c1-c0]
					clear(acc)
					for ky := 0; ky < p.KernelH; ky++ {
						iy := y0 + ky*p.DilationH
						if iy < 0 || iy >= p.In.H {
							continue
						}
						for kx := 0; kx < p.KernelW; kx++ {
							ix := x0 + kx*p.DilationW
							if ix < 0 || ix >= p.In.W {
								continue
							}
							inRow := input[inBatch+(iy*p.In.W+ix)*inC:][:inC]
							wRow := weights[(ky*p.KernelW+kx)*outC+c0:][:len(acc)]
							if mult == 1 {
								x := inRow[c0:][:len(acc)]
								for i := range acc {
									acc[i] += (int32(x[i]) + p.InputOffset) * int32(wRow[i])
								}
								continue
							}
							// Each input channel feeds mult consecutive outputs.
							for i := 0; i < len(acc); {
								ic := (c0 + i) / mult
								xv := int32(inRow[ic]) + p.InputOffset
								end := min((ic+1)*mult-c0, len(acc))
								for ; i < end; i++ {
									acc[i] += xv * int32(wRow[i])
								}
							}
						}
					}
					for i, a := range acc {
						oc := c0 + i
						if bias != nil {
							a += bias[oc]
						}
						a = p.Rounding.MBQM(a, p.Multiplier[oc], int(p.Shift[oc]))
						output[outBase+oc] = int8(clamp(a+p.OutputOffset, p.ActMin, p.ActMax))
					}
				}
			}
		}
	}
}
