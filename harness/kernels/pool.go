package kernels

// PoolParams describes a 2-D max or average pooling. Input and output share
// one quantization, so there is no rescaling.
type PoolParams struct {
	In, Out          Shape
	FilterH, FilterW int
	StrideH, StrideW int
	PadTop, PadLeft  int
	ActMin, ActMax   int32
}

// window returns the input rows and columns of output (oy, ox), cut to the input.
func (p *PoolParams) window(oy, ox int) (y0, y1, x0, x1 int) {
	y0 = oy*p.StrideH - p.PadTop
	x0 = ox*p.StrideW - p.PadLeft
	y1, x1 = min(y0+p.FilterH, p.In.H), min(x0+p.FilterW, p.In.W)
	return max(y0, 0), y1, max(x0, 0), x1
}

// MaxPool computes region r of a max pooling's output.
func MaxPool(p *PoolParams, input, output []int8, r Region) {
	for n := r.N0; n < r.N1; n++ {
		for oy := r.Y0; oy < r.Y1; oy++ {
			for ox := r.X0; ox < r.X1; ox++ {
				y0, y1, x0, x1 := p.window(oy, ox)
				outBase := ((n*p.Out.H+oy)*p.Out.W + ox) * p.Out.C
				for c := r.C0; c < r.C1; c++ {
					m := int32(-128)
					for iy := y0; iy < y1; iy++ {
						for ix := x0; ix < x1; ix++ {
							m = max(m, int32(input[((n*p.In.H+iy)*p.In.W+ix)*p.In.C+c]))
						}
					}
					output[outBase+c] = int8(clamp(m, p.ActMin, p.ActMax))
				}
			}
		}
	}
}

// AveragePool computes region r of an average pooling's output. The average
// counts only window positions inside the input and rounds half away from
// zero, as TFLite's reference kernel does.
func AveragePool(p *PoolParams, input, output []int8, r Region) {
	for n := r.N0; n < r.N1; n++ {
		for oy := r.Y0; oy < r.Y1; oy++ {
			for ox := r.X0; ox < r.X1; ox++ {
				y0, y1, x0, x1 := p.window(oy, ox)
				count := int32(max(y1-y0, 0) * max(x1-x0, 0))
				outBase := ((n*p.Out.H+oy)*p.Out.W + ox) * p.Out.C
				for c := r.C0; c < r.C1; c++ {
					var sum int32
					for iy := y0; iy < y1; iy++ {
						for ix := x0; ix < x1; ix++ {
							sum += int32(input[((n*p.In.H+iy)*p.In.W+ix)*p.In.C+c])
						}
					}
					var avg int32
					if count > 0 {
						if sum > 0 {
							avg = (sum + count/2) / count
						} else {
							avg = (sum - count/2) / count
						}
					}
					output[outBase+c] = int8(clamp(avg, p.ActMin, p.ActMax))
				}
			}
		}
	}
}
