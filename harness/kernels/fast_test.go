package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/batteryless/harness/harness/fixedpoint"
)

// bothPaths runs f with the SIMD inner loops and, where the build has them,
// again with the portable twins.
func bothPaths(t *testing.T, f func(t *testing.T)) {
	t.Run("portable", func(t *testing.T) {
		was := useSIMD
		useSIMD = false
		defer func() { useSIMD = was }()
		f(t)
	})
	if useSIMD {
		t.Run("simd", f)
	}
}

// randFastConv is randConv with the shapes the fast kernels specialise on
// mixed in: channel counts around the gather threshold and the 16-channel
// tile, 1x1 and 3x3 kernels, depth multiplier 1.
func randFastConv(r *rand.Rand, depthwise bool) (*ConvParams, []int8, []int32, []int8) {
	p, in, bias, w := randConv(r, depthwise)
	if r.IntN(2) == 0 {
		p.In.C = []int{1, 3, 7, 8, 9, 16, 17, 32}[r.IntN(8)]
		k := []int{1, 3}[r.IntN(2)]
		p.KernelH, p.KernelW, p.PadTop, p.PadLeft = k, k, k/2, k/2
		p.DilationH, p.DilationW = 1, 1
		outC := []int{1, 8, 15, 16, 17, 33}[r.IntN(6)]
		if depthwise {
			outC = p.In.C
		}
		effH, effW := p.KernelH, p.KernelW
		p.Out = Shape{N: p.In.N, H: max(1, (p.In.H+2*p.PadTop-effH)/p.StrideH+1), W: max(1, (p.In.W+2*p.PadLeft-effW)/p.StrideW+1), C: outC}
		p.Multiplier, p.Shift = randMults(r, outC)
		in = randInt8s(r, p.In.Elems())
		bias = make([]int32, outC)
		for i := range bias {
			bias[i] = int32(r.IntN(1<<16) - 1<<15)
		}
		wlen := outC * p.KernelH * p.KernelW * p.In.C
		if depthwise {
			wlen = p.KernelH * p.KernelW * outC
		}
		w = randInt8s(r, wlen)
	}
	if depthwise {
		p.DepthMultiplier = 1
		p.Out.C = p.In.C
		p.Multiplier, p.Shift = randMults(r, p.Out.C)
		w = randInt8s(r, p.KernelH*p.KernelW*p.Out.C)
		bias = bias[:0]
		for range p.Out.C {
			bias = append(bias, int32(r.IntN(1<<16)-1<<15))
		}
	}
	if r.IntN(4) == 0 {
		// Left shifts (scales above one) and extreme zero points.
		for i := range p.Shift {
			p.Shift[i] = int32(r.IntN(4))
		}
		p.InputOffset = []int32{-127, 128}[r.IntN(2)]
	}
	return p, in, bias, w
}

// TestFastConvEqualsPortable: the prepared kernels give the portable
// kernels' bytes for random convolutions and depthwise convolutions, whole
// and in any split of regions.
func TestFastConvEqualsPortable(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for iter := range 400 {
			depthwise := iter%3 == 2
			p, in, bias, w := randFastConv(r, depthwise)
			run := DepthwiseConv2D
			if !depthwise {
				run = Conv2D
			}
			want := make([]int8, p.Out.Elems())
			run(p, in, w, bias, want, p.Out.Full(), nil)
			if !p.Prepare(w, bias, depthwise) {
				t.Fatalf("iter %d: no fast form for %+v", iter, p)
			}
			got := make([]int8, p.Out.Elems())
			s := new(Scratch)
			run(p, in, w, bias, got, p.Out.Full(), s)
			if !slices.Equal(got, want) {
				t.Fatalf("iter %d (depthwise %v, in %v out %v k %dx%d s %dx%d d %dx%d): fast differs from portable",
					iter, depthwise, p.In, p.Out, p.KernelH, p.KernelW, p.StrideH, p.StrideW, p.DilationH, p.DilationW)
			}
			checkSplit(t, r, fmt.Sprintf("iter %d fast", iter), p.Out, false, func(out []int8, reg Region) { run(p, in, w, bias, out, reg, s) })
			p.Pack = nil
		}
	})
}

// TestFastAddEqualsPortable: the table-driven addition gives the portable
// kernel's bytes.
func TestFastAddEqualsPortable(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for iter := range 200 {
			es := Shape{1 + r.IntN(2), 1 + r.IntN(9), 1 + r.IntN(9), 1 + r.IntN(40)}
			a, b := randInt8s(r, es.Elems()), randInt8s(r, es.Elems())
			ap := &AddParams{Shape: es, Input1Offset: int32(r.IntN(256) - 127), Input2Offset: int32(r.IntN(256) - 127), LeftShift: 20,
				Input1Mult: int32(1<<30 + r.IntN(1<<30)), Input2Mult: int32(1<<30 + r.IntN(1<<30)),
				Input1Shift: -r.IntN(3), Input2Shift: -r.IntN(3), OutputMult: int32(1<<30 + r.IntN(1<<30)), OutputShift: -15 - r.IntN(6),
				OutputOffset: int32(r.IntN(256) - 128), ActMin: -128, ActMax: 127}
			want := make([]int8, es.Elems())
			Add(ap, a, b, want, es.Full(), nil)
			if !ap.Prepare() {
				t.Fatal("no fast form")
			}
			got := make([]int8, es.Elems())
			Add(ap, a, b, got, es.Full(), nil)
			if !slices.Equal(got, want) {
				t.Fatalf("iter %d: fast add differs from portable", iter)
			}
			checkSplit(t, r, "fast add", es, false, func(out []int8, reg Region) { Add(ap, a, b, out, reg, nil) })
		}
	})
}

// TestRequantLanesEqualMBQM checks the SIMD requantization against
// fixedpoint.MBQM on extreme accumulators, multipliers and shifts, per
// channel and per tensor.
func TestRequantLanesEqualMBQM(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		edges := []int32{0, 1, -1, 2, -2, math.MaxInt32, math.MinInt32, math.MinInt32 + 1, 1 << 30, -1 << 30, 1<<30 + 1, -(1 << 30) - 1}
		for iter := range 2000 {
			n := 1 + r.IntN(40)
			perTensor := iter%3 == 0
			nm := n
			if perTensor {
				nm = 1
			}
			mult, shift := make([]int32, nm), make([]int32, nm)
			for i := range mult {
				mult[i] = int32(r.Uint32() >> 1)
				if r.IntN(4) == 0 {
					mult[i] = []int32{0, 1, math.MaxInt32, 1 << 30}[r.IntN(4)]
				}
				shift[i] = int32(r.IntN(62) - 31)
			}
			zp, lo, hi := int32(r.IntN(256)-128), int32(-128), int32(127)
			if r.IntN(3) == 0 {
				lo, hi = int32(r.IntN(128)-128), int32(r.IntN(128))
			}
			q, ok := newRequant(mult, shift, n, zp, lo, hi)
			if !ok {
				t.Fatalf("iter %d: refused", iter)
			}
			acc := make([]int32, n)
			for i := range acc {
				acc[i] = int32(r.Uint32())
				if r.IntN(3) == 0 {
					acc[i] = edges[r.IntN(len(edges))]
				}
			}
			c0 := 0
			got := make([]int8, n)
			q.apply(acc, got, c0, fixedpoint.Double)
			for i, a := range acc {
				ch := i
				if perTensor {
					ch = 0
				}
				v := fixedpoint.MBQM(a, mult[ch], int(shift[ch])) + zp
				want := int8(min(max(v, lo), hi))
				if got[i] != want {
					t.Fatalf("iter %d: acc %d mult %d shift %d: got %d, want %d", iter, a, mult[ch], shift[ch], got[i], want)
				}
			}
		}
	})
}

// TestConvTileTwins runs the AVX2 tile and its Go twin on the same random
// data, extremes included.
func TestConvTileTwins(t *testing.T) {
	if !useSIMD {
		t.Skip("no SIMD inner loops in this build")
	}
	r := rand.New(rand.NewPCG(11, 12))
	for iter := range 300 {
		ntaps, cpairs := 1+r.IntN(9), 1+r.IntN(20)
		buf := make([]int16, 4096)
		for i := range buf {
			buf[i] = int16(r.IntN(511) - 255)
			if r.IntN(8) == 0 {
				buf[i] = []int16{-32767, 32767, -255, 255}[r.IntN(4)]
			}
		}
		taps := make([]int, ntaps)
		for i := range taps {
			taps[i] = 2 * r.IntN(1000)
		}
		var base [4]int
		for i := range base {
			base[i] = r.IntN(1000)
		}
		w := make([]int16, ntaps*cpairs*32)
		for i := range w {
			w[i] = int16(r.IntN(256) - 128)
		}
		bias := make([]int32, 16)
		for i := range bias {
			bias[i] = int32(r.Uint32())
		}
		var got, want [64]int32
		convTile(&got, buf, &base, taps, cpairs, w, bias)
		convTileGo(&want, buf, &base, taps, cpairs, w, bias)
		if got != want {
			t.Fatalf("iter %d: AVX2 %v, Go %v", iter, got, want)
		}
	}
}
