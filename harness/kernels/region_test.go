package kernels

import (
	"fmt"
	"github.com/batteryless/harness/harness/fixedpoint"
	"math/rand/v2"
	"slices"
	"testing"
)

func randInt8s(r *rand.Rand, n int) []int8 {
	v := make([]int8, n)
	for i := range v {
		v[i] = int8(r.IntN(256) - 128)
	}
	return v
}

func randMults(r *rand.Rand, n int) ([]int32, []int32) {
	m, s := make([]int32, n), make([]int32, n)
	for i := range m {
		m[i] = int32(1<<30 + r.IntN(1<<30))
		s[i] = int32(-r.IntN(12) - 1)
	}
	return m, s
}

// cuts splits [0, n) at random points into 1 to 3 pieces.
func cuts(r *rand.Rand, n int) [][2]int {
	pts := []int{0, n}
	for k := r.IntN(3); k > 0 && n > 1; k-- {
		pts = append(pts, 1+r.IntN(n-1))
	}
	slices.Sort(pts)
	pts = slices.Compact(pts)
	var out [][2]int
	for i := 0; i+1 < len(pts); i++ {
		out = append(out, [2]int{pts[i], pts[i+1]})
	}
	return out
}

// splitRegions cuts shape s into a random grid of regions; wholeC keeps the
// channel dimension in one piece (softmax).
func splitRegions(r *rand.Rand, s Shape, wholeC bool) []Region {
	cs := cuts(r, s.C)
	if wholeC {
		cs = [][2]int{{0, s.C}}
	}
	var regs []Region
	for _, n := range cuts(r, s.N) {
		for _, y := range cuts(r, s.H) {
			for _, x := range cuts(r, s.W) {
				for _, c := range cs {
					regs = append(regs, Region{n[0], n[1], y[0], y[1], x[0], x[1], c[0], c[1]})
				}
			}
		}
	}
	r.Shuffle(len(regs), func(i, j int) { regs[i], regs[j] = regs[j], regs[i] })
	return regs
}

// checkSplit computes the whole output once, then region by region into a
// buffer full of garbage, and demands the same bytes.
func checkSplit(t *testing.T, r *rand.Rand, name string, s Shape, wholeC bool, run func(out []int8, reg Region)) {
	t.Helper()
	whole := make([]int8, s.Elems())
	run(whole, s.Full())
	parts := randInt8s(r, s.Elems())
	regs := splitRegions(r, s, wholeC)
	for _, reg := range regs {
		if !reg.Within(s) {
			t.Fatalf("%s: region %v outside %v", name, reg, s)
		}
		run(parts, reg)
	}
	if !slices.Equal(whole, parts) {
		t.Fatalf("%s %v: computed in %d regions differs from computed whole", name, s, len(regs))
	}
}

func randConv(r *rand.Rand, depthwise bool) (*ConvParams, []int8, []int32, []int8) {
	p := &ConvParams{
		KernelH: 1 + r.IntN(4), KernelW: 1 + r.IntN(4),
		StrideH: 1 + r.IntN(3), StrideW: 1 + r.IntN(3),
		DilationH: 1 + r.IntN(2), DilationW: 1 + r.IntN(2),
		DepthMultiplier: 1,
		InputOffset:     int32(r.IntN(256) - 127), OutputOffset: int32(r.IntN(256) - 128),
		ActMin: -128, ActMax: 127,
	}
	if r.IntN(3) == 0 {
		p.ActMin, p.ActMax = int32(r.IntN(100)-128), int32(r.IntN(100)+27)
	}
	p.In = Shape{N: 1 + r.IntN(2), H: 1 + r.IntN(9), W: 1 + r.IntN(9), C: 1 + r.IntN(9)}
	outC := 1 + r.IntN(11)
	if depthwise {
		p.DepthMultiplier = 1 + r.IntN(3)
		outC = p.In.C * p.DepthMultiplier
	}
	p.PadTop, p.PadLeft = r.IntN(p.KernelH), r.IntN(p.KernelW)
	effH, effW := (p.KernelH-1)*p.DilationH+1, (p.KernelW-1)*p.DilationW+1
	p.Out = Shape{N: p.In.N, H: max(1, (p.In.H+2*p.PadTop-effH)/p.StrideH+1), W: max(1, (p.In.W+2*p.PadLeft-effW)/p.StrideW+1), C: outC}
	p.Multiplier, p.Shift = randMults(r, outC)
	wlen := outC * p.KernelH * p.KernelW * p.In.C
	if depthwise {
		wlen = p.KernelH * p.KernelW * outC
	}
	bias := make([]int32, outC)
	for i := range bias {
		bias[i] = int32(r.IntN(1<<16) - 1<<15)
	}
	return p, randInt8s(r, p.In.Elems()), bias, randInt8s(r, wlen)
}

func TestRegionSplitsEqualWhole(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 300; iter++ {
		name := fmt.Sprintf("iter %d", iter)
		p, in, bias, w := randConv(r, false)
		if iter%2 == 0 {
			p.WeightSums = ConvWeightSums(p, w)
		}
		checkSplit(t, r, name+" conv", p.Out, false, func(out []int8, reg Region) { Conv2D(p, in, w, bias, out, reg, nil) })
		dp, din, dbias, dw := randConv(r, true)
		checkSplit(t, r, name+" depthwise", dp.Out, false, func(out []int8, reg Region) { DepthwiseConv2D(dp, din, dw, dbias, out, reg, nil) })

		fp := &FCParams{Batches: 1 + r.IntN(3), Depth: 1 + r.IntN(40), OutC: 1 + r.IntN(20),
			InputOffset: int32(r.IntN(256) - 128), OutputOffset: int32(r.IntN(256) - 128), ActMin: -128, ActMax: 127}
		if r.IntN(2) == 0 {
			fp.FilterOffset = int32(r.IntN(31) - 15)
		}
		fp.Multiplier, fp.Shift = randMults(r, 1+r.IntN(2)*(fp.OutC-1))
		fin, fw := randInt8s(r, fp.Batches*fp.Depth), randInt8s(r, fp.OutC*fp.Depth)
		checkSplit(t, r, name+" fc", fp.Shape(), false, func(out []int8, reg Region) { FullyConnected(fp, fin, fw, nil, out, reg) })

		pp := &PoolParams{In: Shape{1 + r.IntN(2), 1 + r.IntN(9), 1 + r.IntN(9), 1 + r.IntN(5)},
			FilterH: 1 + r.IntN(3), FilterW: 1 + r.IntN(3), StrideH: 1 + r.IntN(2), StrideW: 1 + r.IntN(2), ActMin: -128, ActMax: 127}
		pp.PadTop, pp.PadLeft = r.IntN(pp.FilterH), r.IntN(pp.FilterW)
		pp.Out = Shape{pp.In.N, (pp.In.H+pp.PadTop-1)/pp.StrideH + 1, (pp.In.W+pp.PadLeft-1)/pp.StrideW + 1, pp.In.C}
		pin := randInt8s(r, pp.In.Elems())
		checkSplit(t, r, name+" maxpool", pp.Out, false, func(out []int8, reg Region) { MaxPool(pp, pin, out, reg) })
		checkSplit(t, r, name+" avgpool", pp.Out, false, func(out []int8, reg Region) { AveragePool(pp, pin, out, reg) })

		es := Shape{1 + r.IntN(2), 1 + r.IntN(5), 1 + r.IntN(5), 1 + r.IntN(6)}
		a, b := randInt8s(r, es.Elems()), randInt8s(r, es.Elems())
		ap := &AddParams{Shape: es, Input1Offset: 128, Input2Offset: 3, LeftShift: 20, Input1Mult: 1 << 30, Input2Mult: 1<<30 + 12345,
			Input1Shift: 0, Input2Shift: -1, OutputMult: 1<<30 + 999, OutputShift: -19, OutputOffset: -5, ActMin: -128, ActMax: 127}
		checkSplit(t, r, name+" add", es, false, func(out []int8, reg Region) { Add(ap, a, b, out, reg, nil) })
		mp := &MulParams{Shape: es, Input1Offset: 128, Input2Offset: 3, OutputMult: 1<<30 + 77, OutputShift: -8, OutputOffset: 1, ActMin: -128, ActMax: 127}
		checkSplit(t, r, name+" mul", es, false, func(out []int8, reg Region) { Mul(mp, a, b, out, reg) })
		sp := &SoftmaxParams{Shape: es, InputMult: 1077952640, InputLeftShift: 19, DiffMin: -3968}
		checkSplit(t, r, name+" softmax", es, true, func(out []int8, reg Region) { Softmax(sp, a, out, reg) })
		rp := &RequantizeParams{Shape: es, InputOffset: 7, Multiplier: 1<<30 + 5, Shift: 1, OutputOffset: -3}
		checkSplit(t, r, name+" requantize", es, false, func(out []int8, reg Region) { Requantize(rp, a, out, reg) })
		checkSplit(t, r, name+" copy", es, false, func(out []int8, reg Region) { Copy(es, a, out, reg) })
	}
}

// TestConvFastPathEqualsLiteralLoop checks the gathered-patch, folded-offset,
// four-channel form of Conv2D against TFLite's literal loop (skip padded taps,
// add the offset to every input) on random shapes, paddings and offsets.
func TestConvFastPathEqualsLiteralLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for iter := 0; iter < 500; iter++ {
		p, in, bias, w := randConv(r, false)
		fast, literal := make([]int8, p.Out.Elems()), make([]int8, p.Out.Elems())
		Conv2D(p, in, w, bias, fast, p.Out.Full(), nil)
		conv2DGeneric(p, in, w, bias, literal, p.Out.Full())
		if !slices.Equal(fast, literal) {
			t.Fatalf("iter %d: fast conv differs from the literal loop for %+v", iter, *p)
		}
	}
}

// depthwiseLiteral is TFLite's reference depthwise loop, written plainly.
func depthwiseLiteral(p *ConvParams, input, weights []int8, bias []int32, output []int8) {
	for n := 0; n < p.Out.N; n++ {
		for oy := 0; oy < p.Out.H; oy++ {
			for ox := 0; ox < p.Out.W; ox++ {
				for oc := 0; oc < p.Out.C; oc++ {
					var acc int32
					for ky := 0; ky < p.KernelH; ky++ {
						for kx := 0; kx < p.KernelW; kx++ {
							iy, ix := oy*p.StrideH-p.PadTop+ky*p.DilationH, ox*p.StrideW-p.PadLeft+kx*p.DilationW
							if iy < 0 || iy >= p.In.H || ix < 0 || ix >= p.In.W {
								continue
							}
							v := int32(input[((n*p.In.H+iy)*p.In.W+ix)*p.In.C+oc/p.DepthMultiplier])
							acc += (v + p.InputOffset) * int32(weights[(ky*p.KernelW+kx)*p.Out.C+oc])
						}
					}
					acc += bias[oc]
					acc = fixedpoint.MBQM(acc, p.Multiplier[oc], int(p.Shift[oc]))
					output[((n*p.Out.H+oy)*p.Out.W+ox)*p.Out.C+oc] = int8(clamp(acc+p.OutputOffset, p.ActMin, p.ActMax))
				}
			}
		}
	}
}

func TestDepthwiseEqualsLiteralLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for iter := 0; iter < 500; iter++ {
		p, in, bias, w := randConv(r, true)
		if iter%10 == 0 { // more channels than one block of the kernel
			p.In.C, p.DepthMultiplier = 70+r.IntN(30), 1+r.IntN(2)
			p.Out.C = p.In.C * p.DepthMultiplier
			in = randInt8s(r, p.In.Elems())
			w = randInt8s(r, p.KernelH*p.KernelW*p.Out.C)
			bias = make([]int32, p.Out.C)
			p.Multiplier, p.Shift = randMults(r, p.Out.C)
		}
		got, want := make([]int8, p.Out.Elems()), make([]int8, p.Out.Elems())
		DepthwiseConv2D(p, in, w, bias, got, p.Out.Full(), nil)
		depthwiseLiteral(p, in, w, bias, want)
		if !slices.Equal(got, want) {
			t.Fatalf("iter %d: depthwise differs from the literal loop for %+v", iter, *p)
		}
	}
}

// TestReductionSplitsEqualWhole cuts the reduction of conv, fully connected
// and average pooling into random steps over random regions and checks that
// accumulating and finishing gives exactly the whole kernel's output.
func TestReductionSplitsEqualWhole(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for iter := 0; iter < 300; iter++ {
		p, in, bias, w := randConv(r, false)
		whole := make([]int8, p.Out.Elems())
		Conv2D(p, in, w, bias, whole, p.Out.Full(), nil)
		parts := randInt8s(r, p.Out.Elems())
		for _, reg := range splitRegions(r, p.Out, false) {
			acc := make([]int32, reg.Elems())
			for _, c := range cuts(r, p.In.C) {
				Conv2DAccumulate(p, in, w, reg, c[0], c[1], acc)
			}
			ConvFinish(p, bias, acc, parts, reg)
		}
		if !slices.Equal(whole, parts) {
			t.Fatalf("iter %d: conv reduced in steps differs", iter)
		}

		fp := &FCParams{Batches: 1 + r.IntN(3), Depth: 1 + r.IntN(60), OutC: 1 + r.IntN(20),
			InputOffset: int32(r.IntN(256) - 128), FilterOffset: int32(r.IntN(5) - 2), OutputOffset: int32(r.IntN(256) - 128), ActMin: -128, ActMax: 127}
		fp.Multiplier, fp.Shift = randMults(r, 1+r.IntN(2)*(fp.OutC-1))
		fin, fw := randInt8s(r, fp.Batches*fp.Depth), randInt8s(r, fp.OutC*fp.Depth)
		fbias := make([]int32, fp.OutC)
		for i := range fbias {
			fbias[i] = int32(r.IntN(2000) - 1000)
		}
		fwhole, fparts := make([]int8, fp.Batches*fp.OutC), randInt8s(r, fp.Batches*fp.OutC)
		FullyConnected(fp, fin, fw, fbias, fwhole, fp.Shape().Full())
		for _, reg := range splitRegions(r, fp.Shape(), false) {
			acc := make([]int32, reg.Elems())
			for _, c := range cuts(r, fp.Depth) {
				FullyConnectedAccumulate(fp, fin, fw, reg, c[0], c[1], acc)
			}
			FullyConnectedFinish(fp, fbias, acc, fparts, reg)
		}
		if !slices.Equal(fwhole, fparts) {
			t.Fatalf("iter %d: fully connected reduced in steps differs", iter)
		}

		pp := &PoolParams{In: Shape{1 + r.IntN(2), 1 + r.IntN(9), 1 + r.IntN(9), 1 + r.IntN(5)},
			FilterH: 1 + r.IntN(4), FilterW: 1 + r.IntN(3), StrideH: 1 + r.IntN(2), StrideW: 1 + r.IntN(2), ActMin: -128, ActMax: 127}
		pp.PadTop, pp.PadLeft = r.IntN(pp.FilterH), r.IntN(pp.FilterW)
		pp.Out = Shape{pp.In.N, (pp.In.H+pp.PadTop-1)/pp.StrideH + 1, (pp.In.W+pp.PadLeft-1)/pp.StrideW + 1, pp.In.C}
		pin := randInt8s(r, pp.In.Elems())
		pwhole, pparts := make([]int8, pp.Out.Elems()), randInt8s(r, pp.Out.Elems())
		AveragePool(pp, pin, pwhole, pp.Out.Full())
		for _, reg := range splitRegions(r, pp.Out, false) {
			acc := make([]int32, reg.Elems())
			for _, c := range cuts(r, pp.FilterH) {
				AveragePoolAccumulate(pp, pin, reg, c[0], c[1], acc)
			}
			AveragePoolFinish(pp, acc, pparts, reg)
		}
		if !slices.Equal(pwhole, pparts) {
			t.Fatalf("iter %d: average pool reduced in steps differs", iter)
		}
	}
}
