package modelgen

import (
	"fmt"
	"math"

	"github.com/batteryless/harness/harness/tflite"
)

// kind is a layer's operator in the float network.
type kind uint8

const (
	kConv kind = iota + 1
	kDepthwise
	kMaxPool
	kAvgPool
	kReshape
	kFC
	kSoftmax
)

// shape is an activation's shape with batch 1: [1, h, w, c], or [1, c] for
// a flat matrix (then h = w = 1).
type shape struct {
	h, w, c int
	flat    bool
}

func (s shape) elems() int { return s.h * s.w * s.c }

func (s shape) dims() []int32 {
	if s.flat {
		return []int32{1, int32(s.c)}
	}
	return []int32{1, int32(s.h), int32(s.w), int32(s.c)}
}

// spec describes one layer of the topology.
type spec struct {
	name   string
	kind   kind
	k      int // square kernel or pooling window
	stride int
	same   bool // SAME padding (else VALID)
	outC   int  // conv and FC output channels
	act    tflite.Activation
}

// topology is the bundled network, in execution order.
var topology = []spec{
	{name: "conv1", kind: kConv, k: 3, stride: 1, same: true, outC: 16, act: tflite.ActRelu},
	{name: "dwconv2", kind: kDepthwise, k: 3, stride: 2, same: true, act: tflite.ActRelu6},
	{name: "conv3", kind: kConv, k: 1, stride: 1, outC: 16, act: tflite.ActRelu},
	{name: "maxpool4", kind: kMaxPool, k: 2, stride: 2},
	{name: "conv5", kind: kConv, k: 3, stride: 1, outC: 32, act: tflite.ActRelu},
	{name: "avgpool6", kind: kAvgPool, k: 4, stride: 4},
	{name: "flatten7", kind: kReshape},
	{name: "fc8", kind: kFC, outC: classes},
	{name: "softmax9", kind: kSoftmax},
}

// classes is the number of outputs.
const classes = 10

// layer is a layer of the float network with its shapes and float32
// weights (held as float64 values that float32 represents exactly).
type layer struct {
	spec
	in, out         shape
	padTop, padLeft int
	weights, bias   []float64
	weightDims      []int32
	fanIn           int
}

// network is the float network.
type network struct {
	input  shape
	layers []*layer
}

// padding is TFLite's ComputePaddingHeightWidth for one dimension (dilation 1).
func padding(same bool, stride, in, k int) (out, before int) {
	if same {
		out = (in + stride - 1) / stride
	} else {
		out = (in - k + stride) / stride
	}
	return out, max((out-1)*stride+k-in, 0) / 2
}

// newNetwork lays out the topology and draws its weights from r:
// He-normal-ish weights (standard deviation sqrt(2/fan_in)) rounded to
// float32, and small uniform biases.
func newNetwork(r *rng) (*network, error) {
	n := &network{input: shape{h: imageH, w: imageW, c: imageC}}
	cur := n.input
	for i := range topology {
		l := &layer{spec: topology[i], in: cur}
		switch l.kind {
		case kConv, kDepthwise, kMaxPool, kAvgPool:
			oh, pt := padding(l.same, l.stride, cur.h, l.k)
			ow, pl := padding(l.same, l.stride, cur.w, l.k)
			l.padTop, l.padLeft = pt, pl
			l.out = shape{h: oh, w: ow, c: cur.c}
			switch l.kind {
			case kConv:
				l.out.c = l.outC
				l.weightDims = []int32{int32(l.outC), int32(l.k), int32(l.k), int32(cur.c)}
				l.fanIn = l.k * l.k * cur.c
			case kDepthwise:
				l.weightDims = []int32{1, int32(l.k), int32(l.k), int32(cur.c)}
				l.fanIn = l.k * l.k
			}
		case kReshape:
			l.out = shape{1, 1, cur.elems(), true}
		case kFC:
			l.out = shape{1, 1, l.outC, true}
			l.weightDims = []int32{int32(l.outC), int32(cur.elems())}
			l.fanIn = cur.elems()
		case kSoftmax:
			l.out = cur
		}
		if l.out.elems() <= 0 {
			return nil, fmt.Errorf("modelgen: layer %s has an empty output %v", l.name, l.out)
		}
		if l.weightDims != nil {
			count := 1
			for _, d := range l.weightDims {
				count *= int(d)
			}
			std := math.Sqrt(2 / float64(l.fanIn))
			l.weights = make([]float64, count)
			for j := range l.weights {
				l.weights[j] = float64(float32(float64(std * r.normal())))
			}
			l.bias = make([]float64, l.out.c)
			for j := range l.bias {
				l.bias[j] = float64(float32(r.between(-0.1, 0.1)))
			}
		}
		n.layers = append(n.layers, l)
		cur = l.out
	}
	return n, nil
}

// forward runs the float network on an NHWC input and returns every layer's
// output, in layer order (the last is the softmax).
func (n *network) forward(input []float64) [][]float64 {
	outs := make([][]float64, len(n.layers))
	x := input
	for i, l := range n.layers {
		y := make([]float64, l.out.elems())
		switch l.kind {
		case kConv:
			l.conv(x, y)
		case kDepthwise:
			l.depthwise(x, y)
		case kMaxPool, kAvgPool:
			l.pool(x, y)
		case kReshape:
			copy(y, x)
		case kFC:
			l.fc(x, y)
		case kSoftmax:
			softmax(x, y)
		}
		outs[i] = y
		x = y
	}
	return outs
}

// activate applies a fused activation.
func activate(act tflite.Activation, v float64) float64 {
	switch act {
	case tflite.ActRelu:
		return max(v, 0)
	case tflite.ActRelu6:
		return min(max(v, 0), 6)
	}
	return v
}

// conv is a float CONV_2D: weights [outC][k][k][inC].
func (l *layer) conv(x, y []float64) {
	in, out, k := l.in, l.out, l.k
	for oy := range out.h {
		for ox := range out.w {
			for oc := range out.c {
				acc := l.bias[oc]
				for ky := range k {
					iy := oy*l.stride - l.padTop + ky
					if iy < 0 || iy >= in.h {
						continue
					}
					for kx := range k {
						ix := ox*l.stride - l.padLeft + kx
						if ix < 0 || ix >= in.w {
							continue
						}
						xi := (iy*in.w + ix) * in.c
						wi := ((oc*k+ky)*k + kx) * in.c
						for ic := range in.c {
							acc += float64(x[xi+ic] * l.weights[wi+ic])
						}
					}
				}
				y[(oy*out.w+ox)*out.c+oc] = activate(l.act, acc)
			}
		}
	}
}

// depthwise is a float DEPTHWISE_CONV_2D with depth multiplier 1: weights
// [1][k][k][C].
func (l *layer) depthwise(x, y []float64) {
	in, out, k := l.in, l.out, l.k
	for oy := range out.h {
		for ox := range out.w {
			for c := range out.c {
				acc := l.bias[c]
				for ky := range k {
					iy := oy*l.stride - l.padTop + ky
					if iy < 0 || iy >= in.h {
						continue
					}
					for kx := range k {
						ix := ox*l.stride - l.padLeft + kx
						if ix < 0 || ix >= in.w {
							continue
						}
						acc += float64(x[(iy*in.w+ix)*in.c+c] * l.weights[(ky*k+kx)*in.c+c])
					}
				}
				y[(oy*out.w+ox)*out.c+c] = activate(l.act, acc)
			}
		}
	}
}

// pool is a float MAX_POOL_2D or AVERAGE_POOL_2D (the average over the
// window positions inside the input).
func (l *layer) pool(x, y []float64) {
	in, out := l.in, l.out
	for oy := range out.h {
		for ox := range out.w {
			y0, x0 := oy*l.stride-l.padTop, ox*l.stride-l.padLeft
			y1, x1 := min(y0+l.k, in.h), min(x0+l.k, in.w)
			y0, x0 = max(y0, 0), max(x0, 0)
			for c := range out.c {
				m, sum := math.Inf(-1), 0.0
				for iy := y0; iy < y1; iy++ {
					for ix := x0; ix < x1; ix++ {
						v := x[(iy*in.w+ix)*in.c+c]
						m = max(m, v)
						sum += v
					}
				}
				v := m
				if l.kind == kAvgPool {
					v = sum / float64((y1-y0)*(x1-x0))
				}
				y[(oy*out.w+ox)*out.c+c] = v
			}
		}
	}
}

// fc is a float FULLY_CONNECTED: weights [outC][depth].
func (l *layer) fc(x, y []float64) {
	depth := len(x)
	for o := range y {
		acc := l.bias[o]
		for i, v := range x {
			acc += float64(v * l.weights[o*depth+i])
		}
		y[o] = activate(l.act, acc)
	}
}

// softmax is a float SOFTMAX with beta 1. It is the one place math.Exp is
// used; its result never reaches the generated bytes.
func softmax(x, y []float64) {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, v)
	}
	sum := 0.0
	for i, v := range x {
		y[i] = math.Exp(v - m)
		sum += y[i]
	}
	for i := range y {
		y[i] /= sum
	}
}
