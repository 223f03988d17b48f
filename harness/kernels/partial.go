package kernels

// Reductions split across tasks. When even one output value of a layer
// needs more input than a task can read in one power cycle, the layer's
// reduction is cut into steps: each step adds a part of the sum behind
// every output value of region r to int32 partial sums (acc, one per value
// of r in row-major region order), and the last step requantizes them.
// Integer addition is associative, so any split gives exactly the output
// computed whole.

// regionIndex calls f with the running index into acc and the output
// coordinates of every value of region r.
func regionIndex(r Region, f func(i, n, y, x, c int)) {
	i := 0
	for n := r.N0; n < r.N1; n++ {
		for y := r.Y0; y < r.Y1; y++ {
			for x := r.X0; x < r.X1; x++ {
				for c := r.C0; c < r.C1; c++ {
					f(i, n, y, x, c)
					i++
				}
			}
		}
	}
}

// Conv2DAccumulate adds input channels [ic0, ic1) of every output value of
// region r to acc: sum over taps inside the input of (x + InputOffset) * w.
func Conv2DAccumulate(p *ConvParams, input, weights []int8, r Region, ic0, ic1 int, acc []int32) {
	inC := p.In.C
	tapLen := p.KernelH * p.KernelW * inC
	regionIndex(r, func(i, n, oy, ox, oc int) {
		var sum int32
		y0, x0 := oy*p.StrideH-p.PadTop, ox*p.StrideW-p.PadLeft
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
				in := input[((n*p.In.H+iy)*p.In.W+ix)*inC+ic0:][:ic1-ic0]
				w := weights[oc*tapLen+(ky*p.KernelW+kx)*inC+ic0:][:ic1-ic0]
				sum += dotOffset(in, w, p.InputOffset)
			}
		}
		acc[i] += sum
	})
}

// ConvFinish adds the bias to the partial sums of region r, requantizes and
// writes the outputs.
func ConvFinish(p *ConvParams, bias []int32, acc []int32, output []int8, r Region) {
	regionIndex(r, func(i, n, oy, ox, oc int) {
		p.store(output, bias, ((n*p.Out.H+oy)*p.Out.W+ox)*p.Out.C, oc, acc[i])
	})
}

// FullyConnectedAccumulate adds inputs [d0, d1) of every output of region r
// to acc.
func FullyConnectedAccumulate(p *FCParams, input, weights []int8, r Region, d0, d1 int, acc []int32) {
	regionIndex(r, func(i, b, _, _, o int) {
		x := input[b*p.Depth+d0 : b*p.Depth+d1]
		w := weights[o*p.Depth+d0 : o*p.Depth+d1]
		w = w[:len(x)]
		var sum int32
		for k, v := range x {
			sum += (int32(v) + p.InputOffset) * (int32(w[k]) + p.FilterOffset)
		}
		acc[i] += sum
	})
}

// FullyConnectedFinish adds the bias, requantizes and writes region r.
func FullyConnectedFinish(p *FCParams, bias []int32, acc []int32, output []int8, r Region) {
	regionIndex(r, func(i, b, _, _, o int) { p.store(output, bias, b, o, acc[i]) })
}

// AveragePoolAccumulate adds window rows [row0, row1) (counted from the top
// of each output's window, before clipping to the input) of every output of
// region r to acc.
func AveragePoolAccumulate(p *PoolParams, input []int8, r Region, row0, row1 int, acc []int32) {
	regionIndex(r, func(i, n, oy, ox, c int) {
		top := oy*p.StrideH - p.PadTop
		_, _, x0, x1 := p.window(oy, ox)
		var sum int32
		for iy := max(top+row0, 0); iy < min(top+row1, p.In.H); iy++ {
			for ix := x0; ix < x1; ix++ {
				sum += int32(input[((n*p.In.H+iy)*p.In.W+ix)*p.In.C+c])
			}
		}
		acc[i] += sum
	})
}

// AveragePoolFinish divides the sums of region r by each window's count of
// positions inside the input, rounding half away from zero, and writes them.
func AveragePoolFinish(p *PoolParams, acc []int32, output []int8, r Region) {
	regionIndex(r, func(i, n, oy, ox, c int) {
		y0, y1, x0, x1 := p.window(oy, ox)
		count := int32(max(y1-y0, 0) * max(x1-x0, 0))
		sum := acc[i]
		var avg int32
		if count > 0 {
			if sum > 0 {
				avg = (sum + count/2) / count
			} else {
				avg = (sum - count/2) / count
			}
		}
		output[((n*p.Out.H+oy)*p.Out.W+ox)*p.Out.C+c] = int8(clamp(avg, p.ActMin, p.ActMax))
	})
}
