package kernels

// The fast convolutions. Once per model (Prepare), the weights are widened
// to int16 and laid out in the order the inner loop reads them, with the
// bias and the requantization parameters beside them. Per region, the input
// rows the region reads are widened once to int16 with the input offset
// already added, zero in the padding, so that every tap is exactly TFLite's
// (x + input_offset) * w, a padded tap adds 0, and the inner loop has no
// bounds to check. The sums are int32 and wrap as TFLite's do; the
// requantization is TFLite's double rounding. The result is the portable
// kernel's, bit for bit, for any region.

// tileOC is the number of output channels one inner-loop call computes.
const tileOC = 16

// gatherBelow is the input depth under which a convolution gathers each
// output pixel's whole receptive field into one row: one or three channels
// make taps too short for the pairwise inner loop.
const gatherBelow = 8

// ConvPack is a convolution or depthwise convolution prepared for the fast
// kernels. It is read-only once made and shared by every executor of a model.
type ConvPack struct {
	depthwise bool
	gathered  bool // conv: one gathered row per output pixel, not direct taps
	cstride   int  // int16 values per input pixel in the window (direct and depthwise)
	cpairs    int  // conv: input pairs per tap (direct) or per gathered row
	rowLen    int  // conv gathered: padded row length (2*cpairs)
	blocks    int  // conv: blocks of tileOC output channels
	w16       []int16
	w32       []int32 // depthwise: [tap][cstride] weights
	bias      []int32 // padded to the blocks (conv) or to cstride (depthwise)
	rq        *requant
	off       int16
	taps      int // kernel taps (KernelH*KernelW)
	blockLen  int // conv: int16 weights per block
}

// Prepare makes the fast form of a convolution (DepthwiseConv2D when
// depthwise) with these weights and bias, stores it in p.Pack and reports
// whether there is one: parameters the fast kernels cannot reproduce
// exactly (an input offset beyond int16, a depth multiplier above 1, an
// unusual multiplier) leave p.Pack nil and the portable kernel in charge.
func (p *ConvParams) Prepare(weights []int8, bias []int32, depthwise bool) bool {
	p.Pack = nil
	if p.InputOffset < -32767+128 || p.InputOffset > 32767-128 || p.KernelH < 1 || p.KernelW < 1 {
		return false
	}
	taps := p.KernelH * p.KernelW
	pk := &ConvPack{depthwise: depthwise, off: int16(p.InputOffset), taps: taps}
	rq, ok := newRequant(p.Multiplier, p.Shift, p.Out.C, p.OutputOffset, p.ActMin, p.ActMax)
	if !ok {
		return false
	}
	pk.rq = rq
	inC, outC := p.In.C, p.Out.C
	if depthwise {
		if p.DepthMultiplier != 1 || inC != outC {
			return false
		}
		pk.cstride = (outC + 7) / 8 * 8
		pk.w32 = make([]int32, taps*pk.cstride)
		for t := range taps {
			for c := range outC {
				pk.w32[t*pk.cstride+c] = int32(weights[t*outC+c])
			}
		}
		pk.bias = make([]int32, pk.cstride)
		copy(pk.bias, bias)
		p.Pack = pk
		return true
	}
	pk.blocks = (outC + tileOC - 1) / tileOC
	pk.bias = make([]int32, pk.blocks*tileOC)
	copy(pk.bias, bias)
	tapLen := taps * inC
	// weight returns the weight of output channel oc at reduction index k of
	// the packed order, zero past the real ones.
	var weight func(oc, t, ic int) int16
	weight = func(oc, t, ic int) int16 {
		if oc >= outC || ic >= inC || t >= taps {
			return 0
		}
		return int16(weights[oc*tapLen+t*inC+ic])
	}
	if inC < gatherBelow {
		pk.gathered = true
		pk.cpairs = (tapLen + 1) / 2
		pk.rowLen = 2 * pk.cpairs
		pk.blockLen = pk.cpairs * 2 * tileOC
		pk.w16 = make([]int16, pk.blocks*pk.blockLen)
		for b := range pk.blocks {
			for j := range pk.cpairs {
				for o := range tileOC {
					for e := range 2 {
						k := 2*j + e
						pk.w16[b*pk.blockLen+(j*tileOC+o)*2+e] = weight(b*tileOC+o, k/inC, k%inC)
					}
				}
			}
		}
		p.Pack = pk
		return true
	}
	pk.cstride = (inC + 1) / 2 * 2
	pk.cpairs = pk.cstride / 2
	pk.blockLen = taps * pk.cpairs * 2 * tileOC
	pk.w16 = make([]int16, pk.blocks*pk.blockLen)
	for b := range pk.blocks {
		for t := range taps {
			for j := range pk.cpairs {
				for o := range tileOC {
					for e := range 2 {
						pk.w16[b*pk.blockLen+((t*pk.cpairs+j)*tileOC+o)*2+e] = weight(b*tileOC+o, t, 2*j+e)
					}
				}
			}
		}
	}
	p.Pack = pk
	return true
}

// window is the part of the input one region reads, in input coordinates:
// rows [y0, y0+h) and columns [x0, x0+w), partly in the padding.
type window struct{ y0, x0, h, w int }

func (p *ConvParams) window(r Region) window {
	y0 := r.Y0*p.StrideH - p.PadTop
	x0 := r.X0*p.StrideW - p.PadLeft
	y1 := (r.Y1-1)*p.StrideH - p.PadTop + (p.KernelH-1)*p.DilationH + 1
	x1 := (r.X1-1)*p.StrideW - p.PadLeft + (p.KernelW-1)*p.DilationW + 1
	return window{y0, x0, y1 - y0, x1 - x0}
}

// fillWindow widens window win of batch n of the input into buf (cstride
// values per pixel, the extra channels zero), adding the input offset;
// pixels in the padding are zero.
func (p *ConvParams) fillWindow(buf []int16, input []int8, n int, win window, cstride int, off int16) {
	inC := p.In.C
	rowLen := win.w * cstride
	xs, xe := max(win.x0, 0), min(win.x0+win.w, p.In.W) // columns inside the input
	for wy := range win.h {
		row := buf[wy*rowLen : (wy+1)*rowLen]
		iy := win.y0 + wy
		if iy < 0 || iy >= p.In.H || xs >= xe {
			clear(row)
			continue
		}
		clear(row[:(xs-win.x0)*cstride])
		clear(row[(xe-win.x0)*cstride:])
		src := input[((n*p.In.H+iy)*p.In.W+xs)*inC : ((n*p.In.H+iy)*p.In.W+xe)*inC]
		dst := row[(xs-win.x0)*cstride : (xe-win.x0)*cstride]
		if cstride == inC {
			widen(dst, src, off)
			continue
		}
		for x := range xe - xs {
			d := dst[x*cstride : (x+1)*cstride]
			widen(d[:inC], src[x*inC:(x+1)*inC], off)
			clear(d[inC:])
		}
	}
}

// conv2DFast is Conv2D through p.Pack.
func conv2DFast(p *ConvParams, pk *ConvPack, input []int8, output []int8, r Region, s *Scratch) {
	nx := r.X1 - r.X0
	npix := (r.Y1 - r.Y0) * nx
	win := p.window(r)
	var buf []int16
	var taps []int
	var base [4]int
	// pixelBase is the int16 index in buf where output pixel i's reads start.
	var pixelBase func(i int) int
	if pk.gathered {
		buf = s.int16s(npix * pk.rowLen)
		taps = s.ints(1)
		taps[0] = 0
		pixelBase = func(i int) int { return i * pk.rowLen }
	} else {
		buf = s.int16s(win.h * win.w * pk.cstride)
		taps = s.ints(pk.taps)
		for ky := range p.KernelH {
			for kx := range p.KernelW {
				taps[ky*p.KernelW+kx] = 2 * (ky*p.DilationH*win.w + kx*p.DilationW) * pk.cstride
			}
		}
		pixelBase = func(i int) int {
			oy, ox := r.Y0+i/nx, r.X0+i%nx
			return ((oy*p.StrideH-p.PadTop-win.y0)*win.w + (ox*p.StrideW - p.PadLeft - win.x0)) * pk.cstride
		}
	}
	var acc [4 * tileOC]int32
	b0, b1 := r.C0/tileOC, (r.C1+tileOC-1)/tileOC
	var winBuf []int16
	if pk.gathered && p.DilationW == 1 {
		winBuf = s.window16(win.h * win.w * p.In.C)
	}
	for n := r.N0; n < r.N1; n++ {
		if winBuf != nil {
			// Widen the window once, then copy each kernel row's
			// KernelW*In.C contiguous values into the pixels' rows.
			p.fillWindow(winBuf, input, n, win, p.In.C, pk.off)
			p.gatherRows(buf, winBuf, win, r, pk)
		} else if pk.gathered {
			p.gather(buf, input, n, r, pk)
		} else {
			p.fillWindow(buf, input, n, win, pk.cstride, pk.off)
		}
		for i := 0; i < npix; i += 4 {
			real := min(4, npix-i)
			for q := range 4 {
				// A short last group repeats its last pixel; the copies
				// are computed and dropped.
				base[q] = pixelBase(i + min(q, real-1))
			}
			for b := b0; b < b1; b++ {
				convTile(&acc, buf, &base, taps, pk.cpairs, pk.w16[b*pk.blockLen:(b+1)*pk.blockLen], pk.bias[b*tileOC:])
				lo, hi := max(r.C0, b*tileOC), min(r.C1, (b+1)*tileOC)
				for q := range real {
					oy, ox := r.Y0+(i+q)/nx, r.X0+(i+q)%nx
					o := ((n*p.Out.H+oy)*p.Out.W + ox) * p.Out.C
					pk.rq.apply(acc[q*tileOC+lo-b*tileOC:], output[o+lo:o+hi], lo, p.Rounding)
				}
			}
		}
	}
}

// gather writes each output pixel of region r its receptive field as one
// row of pk.rowLen int16 values in (ky, kx, ic) order, offset, zero in the
// padding and past the end.
func (p *ConvParams) gather(buf []int16, input []int8, n int, r Region, pk *ConvPack) {
	inC := p.In.C
	i := 0
	for oy := r.Y0; oy < r.Y1; oy++ {
		for ox := r.X0; ox < r.X1; ox++ {
			row := buf[i*pk.rowLen : (i+1)*pk.rowLen]
			k := 0
			for ky := range p.KernelH {
				iy := oy*p.StrideH - p.PadTop + ky*p.DilationH
				for kx := range p.KernelW {
					ix := ox*p.StrideW - p.PadLeft + kx*p.DilationW
					d := row[k : k+inC]
					if iy < 0 || iy >= p.In.H || ix < 0 || ix >= p.In.W {
						clear(d)
					} else {
						src := input[((n*p.In.H+iy)*p.In.W+ix)*inC:][:inC]
						for c, v := range src {
							d[c] = int16(v) + pk.off
						}
					}
					k += inC
				}
			}
			clear(row[k:])
			i++
		}
	}
}

// gatherRows is gather from the widened window win (In.C values per
// pixel), for a kernel whose columns are adjacent (DilationW 1): each
// kernel row of a pixel is one contiguous run of the window.
func (p *ConvParams) gatherRows(buf, winBuf []int16, win window, r Region, pk *ConvPack) {
	inC := p.In.C
	run := p.KernelW * inC
	i := 0
	for oy := r.Y0; oy < r.Y1; oy++ {
		for ox := r.X0; ox < r.X1; ox++ {
			row := buf[i*pk.rowLen : (i+1)*pk.rowLen]
			wx := ox*p.StrideW - p.PadLeft - win.x0
			k := 0
			for ky := range p.KernelH {
				wy := oy*p.StrideH - p.PadTop + ky*p.DilationH - win.y0
				src := winBuf[(wy*win.w+wx)*inC:][:run]
				copy(row[k:k+run], src)
				k += run
			}
			clear(row[k:])
			i++
		}
	}
}

// depthwiseFast is DepthwiseConv2D through p.Pack (depth multiplier 1).
func depthwiseFast(p *ConvParams, pk *ConvPack, input []int8, output []int8, r Region, s *Scratch) {
	win := p.window(r)
	buf := s.int16s(win.h * win.w * pk.cstride)
	taps := s.ints(pk.taps)
	for ky := range p.KernelH {
		for kx := range p.KernelW {
			taps[ky*p.KernelW+kx] = 2 * (ky*p.DilationH*win.w + kx*p.DilationW) * pk.cstride
		}
	}
	acc := s.int32s(pk.cstride)
	c0 := r.C0 / 8 * 8
	n8 := (r.C1 - c0 + 7) / 8
	for n := r.N0; n < r.N1; n++ {
		p.fillWindow(buf, input, n, win, pk.cstride, pk.off)
		for oy := r.Y0; oy < r.Y1; oy++ {
			for ox := r.X0; ox < r.X1; ox++ {
				base := ((oy*p.StrideH-p.PadTop-win.y0)*win.w + (ox*p.StrideW - p.PadLeft - win.x0)) * pk.cstride
				depthwisePixel(acc, buf, base, taps, pk.w32, pk.cstride, pk.bias, c0, n8)
				o := ((n*p.Out.H+oy)*p.Out.W + ox) * p.Out.C
				pk.rq.apply(acc[r.C0:], output[o+r.C0:o+r.C1], r.C0, p.Rounding)
			}
		}
	}
}

// Bytes is the memory the pack holds: the widened weights, the padded bias
// and the requantization planes.
func (pk *ConvPack) Bytes() int {
	return 2*len(pk.w16) + 4*len(pk.w32) + 4*len(pk.bias) + 4*len(pk.rq.planes)
}
