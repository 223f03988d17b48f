package kernels

import "github.com/batteryless/harness/harness/fixedpoint"

// The fast kernels' inner loops, each in two forms with one contract: AVX2
// assembly (simd_amd64.s, when the CPU has it) and the portable Go below.
// The dispatchers check nothing a caller could get wrong at run time: the
// kernels that call them size every buffer once per region.

// convTile computes four output pixels by sixteen output channels of a
// convolution whose inputs are int16 (already offset by the input zero
// point, zero in the padding): acc[16*i+o] = bias[o] + sum over taps t and
// pairs j of buf[base[i]+taps[t]/2+2j+e] * w[(t*cpairs+j)*32+2o+e], e in {0,1}.
// taps are byte offsets.
func convTile(acc *[64]int32, buf []int16, base *[4]int, taps []int, cpairs int, w []int16, bias []int32) {
	if useSIMD {
		convTileAVX2(&acc[0], &buf[base[0]], &buf[base[1]], &buf[base[2]], &buf[base[3]],
			&taps[0], len(taps), cpairs, &w[0], &bias[0])
		return
	}
	convTileGo(acc, buf, base, taps, cpairs, w, bias)
}

func convTileGo(acc *[64]int32, buf []int16, base *[4]int, taps []int, cpairs int, w []int16, bias []int32) {
	for i := range 4 {
		a := acc[16*i : 16*i+16]
		copy(a, bias[:16])
		wi := 0
		for _, t := range taps {
			x := buf[base[i]+t/2:][:2*cpairs]
			for j := 0; j < 2*cpairs; j += 2 {
				x0, x1 := int32(x[j]), int32(x[j+1])
				wp := w[wi : wi+32]
				for o := range a {
					a[o] += x0*int32(wp[2*o]) + x1*int32(wp[2*o+1])
				}
				wi += 32
			}
		}
	}
}

// widen writes src[i] + off into dst; every sum must fit an int16.
func widen(dst []int16, src []int8, off int16) {
	dst = dst[:len(src)]
	i := 0
	if useSIMD && len(src) >= 16 {
		n16 := len(src) / 16
		widenAVX2(&dst[0], &src[0], n16, off)
		i = 16 * n16
	}
	for ; i < len(src); i++ {
		dst[i] = int16(src[i]) + off
	}
}

// depthwisePixel computes channels [c0, c0+8*n8) of one output pixel of a
// depthwise convolution (one output channel per input channel): acc[c] =
// bias[c] + sum over taps t of buf[base+taps[t]/2+c] * w[t*wstride+c].
func depthwisePixel(acc []int32, buf []int16, base int, taps []int, w []int32, wstride int, bias []int32, c0, n8 int) {
	if useSIMD {
		// Touch the last element each pointer reaches, so a wrong size
		// panics here instead of reading past a buffer.
		last := c0 + 8*n8 - 1
		_, _, _ = acc[last], bias[last], w[(len(taps)-1)*wstride+last]
		_ = buf[base+taps[len(taps)-1]/2+last]
		depthwiseAVX2(&acc[c0], &buf[base+c0], &taps[0], len(taps), &w[c0], 4*wstride, &bias[c0], n8)
		return
	}
	for c := c0; c < c0+8*n8; c++ {
		s := bias[c]
		for t, off := range taps {
			s += int32(buf[base+off/2+c]) * w[t*wstride+c]
		}
		acc[c] = s
	}
}

// requant is one layer's requantization from int32 accumulators to int8,
// per channel or per tensor, with the lane parameters laid out in planes
// for the SIMD loop.
type requant struct {
	mult, shift []int32 // as the layer gives them (one entry: per tensor)
	planes      []int32 // multiplier, left shift, right shift, mask, half mask; n each
	n           int     // entries per plane, a multiple of 8
	zlh         [3]int32
}

// newRequant prepares the requantization of channels [0, nch). ok is false
// when a multiplier or shift lies outside what the SIMD loop reproduces
// exactly (never for multipliers made by fixedpoint.QuantizeMultiplier).
func newRequant(mult, shift []int32, nch int, zp, lo, hi int32) (q *requant, ok bool) {
	q = &requant{mult: mult, shift: shift, zlh: [3]int32{zp, lo, hi}}
	n := nch
	if len(mult) == 1 {
		n = 1
	}
	q.n = (n + 7) / 8 * 8
	q.planes = make([]int32, 5*q.n)
	for i := range q.n {
		ch := min(i, len(mult)-1)
		m, s := mult[ch], int(shift[ch])
		if m < 0 || s > 30 || s < -31 {
			return nil, false
		}
		left, right := max(s, 0), max(-s, 0)
		mask := int32((int64(1) << right) - 1)
		q.planes[i], q.planes[q.n+i], q.planes[2*q.n+i] = m, int32(left), int32(right)
		q.planes[3*q.n+i], q.planes[4*q.n+i] = mask, mask>>1
	}
	return q, true
}

// apply requantizes acc[:len(out)], the accumulators of channels c0 on,
// into out, rounding as rd says.
func (q *requant) apply(acc []int32, out []int8, c0 int, rd fixedpoint.Rounding) {
	n := len(out)
	acc = acc[:n]
	i := 0
	if useSIMD && n >= 8 && rd == fixedpoint.Double {
		n8 := n / 8
		first, step := c0, 32
		if len(q.mult) == 1 {
			first, step = 0, 0
		} else {
			_ = q.planes[4*q.n+c0+8*n8-1]
		}
		requantAVX2(&acc[0], &out[0], n8, &q.planes[first], 4*q.n, step, &q.zlh)
		i = 8 * n8
	}
	for ; i < n; i++ {
		ch := 0
		if len(q.mult) > 1 {
			ch = c0 + i
		}
		v := rd.MBQM(acc[i], q.mult[ch], int(q.shift[ch]))
		out[i] = int8(clamp(v+q.zlh[0], q.zlh[1], q.zlh[2]))
	}
}
