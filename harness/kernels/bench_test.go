package kernels

import (
	"math/rand/v2"
	"testing"
)

// Kernel benchmarks on layer shapes of the MLPerf Tiny models; each reports
// multiply-accumulates per second. The plain names time the prepared (fast)
// kernels the executor runs; ...Portable the kernels without a pack.

func benchConv(b *testing.B, in Shape, k, outC, stride int, depthwise, portable bool) {
	r := rand.New(rand.NewPCG(9, 9))
	p := &ConvParams{In: in, KernelH: k, KernelW: k, StrideH: stride, StrideW: stride, DilationH: 1, DilationW: 1,
		PadTop: k / 2, PadLeft: k / 2, DepthMultiplier: 1, InputOffset: 128, OutputOffset: -128, ActMin: -128, ActMax: 127}
	p.Out = Shape{N: 1, H: (in.H + stride - 1) / stride, W: (in.W + stride - 1) / stride, C: outC}
	p.Multiplier, p.Shift = randMults(r, outC)
	input := randInt8s(r, in.Elems())
	bias := make([]int32, outC)
	out := make([]int8, p.Out.Elems())
	var w []int8
	macs := int64(p.Out.Elems()) * int64(k*k)
	if depthwise {
		w = randInt8s(r, k*k*outC)
	} else {
		w = randInt8s(r, outC*k*k*in.C)
		p.WeightSums = ConvWeightSums(p, w)
		macs *= int64(in.C)
	}
	if !portable && !p.Prepare(w, bias, depthwise) {
		b.Fatal("no fast form")
	}
	scratch := new(Scratch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if depthwise {
			DepthwiseConv2D(p, input, w, bias, out, p.Out.Full(), scratch)
		} else {
			Conv2D(p, input, w, bias, out, p.Out.Full(), scratch)
		}
	}
	b.ReportMetric(float64(macs)*float64(b.N)/b.Elapsed().Seconds(), "MAC/s")
}

// A ResNet-8 3x3 convolution of 32 channels on 16x16.
func BenchmarkConv2D3x3(b *testing.B) { benchConv(b, Shape{1, 16, 16, 32}, 3, 32, 1, false, false) }
func BenchmarkConv2D3x3Portable(b *testing.B) {
	benchConv(b, Shape{1, 16, 16, 32}, 3, 32, 1, false, true)
}

// A DS-CNN pointwise convolution: 1x1, 64 to 64 channels on 25x5.
func BenchmarkConv2D1x1(b *testing.B) { benchConv(b, Shape{1, 25, 5, 64}, 1, 64, 1, false, false) }
func BenchmarkConv2D1x1Portable(b *testing.B) {
	benchConv(b, Shape{1, 25, 5, 64}, 1, 64, 1, false, true)
}

// The ResNet-8 input layer: 3x3 over 3 channels (gathered rows), 16 outputs.
func BenchmarkConv2DInput(b *testing.B) { benchConv(b, Shape{1, 32, 32, 3}, 3, 16, 1, false, false) }

// A DS-CNN depthwise convolution: 3x3 over 64 channels on 25x5.
func BenchmarkDepthwiseConv2D(b *testing.B) { benchConv(b, Shape{1, 25, 5, 64}, 3, 64, 1, true, false) }
func BenchmarkDepthwiseConv2DPortable(b *testing.B) {
	benchConv(b, Shape{1, 25, 5, 64}, 3, 64, 1, true, true)
}

// A ResNet-8 residual addition: 32x32x16.
func BenchmarkAdd(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 7))
	es := Shape{1, 32, 32, 16}
	a, c := randInt8s(r, es.Elems()), randInt8s(r, es.Elems())
	ap := &AddParams{Shape: es, Input1Offset: 128, Input2Offset: 3, LeftShift: 20, Input1Mult: 1 << 30, Input2Mult: 1<<30 + 12345,
		Input1Shift: 0, Input2Shift: -1, OutputMult: 1<<30 + 999, OutputShift: -19, OutputOffset: -5, ActMin: -128, ActMax: 127}
	ap.Prepare()
	out := make([]int8, es.Elems())
	s := new(Scratch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Add(ap, a, c, out, es.Full(), s)
	}
	b.ReportMetric(float64(es.Elems())*float64(b.N)/b.Elapsed().Seconds(), "elem/s")
}

// The anomaly-detection autoencoder's first layer: 640 inputs, 128 outputs.
func BenchmarkFullyConnected(b *testing.B) {
	r := rand.New(rand.NewPCG(8, 8))
	p := &FCParams{Batches: 1, Depth: 640, OutC: 128, InputOffset: -89, OutputOffset: -128, ActMin: -128, ActMax: 127}
	p.Multiplier, p.Shift = randMults(r, 1)
	in, w := randInt8s(r, 640), randInt8s(r, 640*128)
	p.WeightSums = FCWeightSums(p, w)
	out := make([]int8, 128)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		FullyConnected(p, in, w, nil, out, p.Shape().Full())
	}
	b.ReportMetric(float64(640*128)*float64(b.N)/b.Elapsed().Seconds(), "MAC/s")
}
