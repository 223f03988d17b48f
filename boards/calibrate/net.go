package calibrate

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/batteryless/harness/harness/tflite"
)

// net builds a chain of int8 TFLite operators, each reading the previous
// one's output: the microbenchmark models. The weight scales keep the real
// values of every activation around 1 (an estimate of each tensor's root
// mean square is carried along) and the output scales spread them over the
// int8 range, so that the reference executor's output checks real
// arithmetic, not saturated constants. Weights, biases and the input come
// from a seeded generator: a benchmark is the same bytes at every run.
type net struct {
	m   *tflite.Model
	sg  *tflite.Subgraph
	rng *rand.Rand

	cur   int32   // the current activation tensor
	dims  []int32 // its shape
	scale float64 // its quantization
	zp    int64
	rms   float64 // estimated root mean square of its real values
	err   error
}

// newNet starts a chain on an int8 input of the given shape.
func newNet(name string, seed uint64, dims ...int32) *net {
	n := &net{
		m: &tflite.Model{
			Version:     tflite.SchemaVersion,
			Description: "batteryless harness calibration microbenchmark " + name,
			Buffers:     []tflite.Buffer{{}},
		},
		sg:  &tflite.Subgraph{Name: name},
		rng: rand.New(rand.NewPCG(seed, 0x63616c6962726174)),
	}
	n.scale, n.zp, n.rms = 1.0/32, 3, 2.3 // a uniform int8 input: real values in [-4, 4]
	n.cur = n.activation("input", dims, n.scale, n.zp)
	n.dims = dims
	n.sg.Inputs = []int32{n.cur}
	return n
}

func (n *net) fail(format string, args ...any) {
	if n.err == nil {
		n.err = fmt.Errorf(format, args...)
	}
}

func (n *net) opcode(op tflite.BuiltinOp) uint32 { return n.m.Opcode(op, 1) }

func (n *net) tensor(name string, typ tflite.TensorType, dims []int32, q *tflite.Quantization, data []byte) int32 {
	return n.m.AddTensor(n.sg, name, typ, dims, q, data)
}

func (n *net) activation(name string, dims []int32, scale float64, zp int64) int32 {
	return n.tensor(name, tflite.TensorInt8, dims, &tflite.Quantization{Scale: []float32{float32(scale)}, ZeroPoint: []int64{zp}}, nil)
}

// push adds an operator from the current tensor (and extra inputs) to a new
// activation of shape dims, which becomes the current one.
func (n *net) push(op tflite.BuiltinOp, opts any, extra []int32, dims []int32, scale float64, zp int64, rms float64) {
	if n.err != nil {
		return
	}
	scale = float64(float32(scale))
	out := n.activation(fmt.Sprintf("t%d", len(n.sg.Operators)), dims, scale, zp)
	n.sg.Operators = append(n.sg.Operators, tflite.Operator{
		OpcodeIndex: n.opcode(op), Inputs: append([]int32{n.cur}, extra...), Outputs: []int32{out}, Options: opts,
	})
	n.cur, n.dims, n.scale, n.zp, n.rms = out, dims, scale, zp, rms
}

// spatial returns the current tensor's 4-D shape, or false (and fails) when
// it is not 4-D.
func (n *net) spatial() (h, w, c int, ok bool) {
	if len(n.dims) != 4 {
		n.fail("calibrate: operator %d needs a 4-D input, has %v", len(n.sg.Operators), n.dims)
		return 0, 0, 0, false
	}
	return int(n.dims[1]), int(n.dims[2]), int(n.dims[3]), true
}

// outSize is TFLite's output size of a window of k with a stride.
func outSize(in, k, stride int, same bool) int {
	if same {
		return (in + stride - 1) / stride
	}
	return (in-k)/stride + 1
}

// int8s is count random weights, uniform in [-127, 127].
func (n *net) int8s(count int) []byte {
	b := make([]byte, count)
	for i := range b {
		b[i] = byte(int8(n.rng.IntN(255) - 127))
	}
	return b
}

// weightScales are per-channel scales that make a sum of k products of the
// current activation with weights uniform over int8 a real value of root
// mean square about 1 (each channel within 30 % of it).
func (n *net) weightScales(channels, k int) []float32 {
	base := 1 / (math.Sqrt(float64(k)) * n.rms * 73)
	s := make([]float32, channels)
	for i := range s {
		s[i] = float32(base * (0.7 + 0.6*n.rng.Float64()))
	}
	return s
}

// outRMS is the root mean square of a weighted sum's output (about 1),
// after a ReLU when relu is set.
func outRMS(relu bool) float64 {
	if relu {
		return 0.7
	}
	return 1
}

// spread is the scale that puts real values of root mean square rms over
// about +-40 quantized steps.
func spread(rms float64) float64 { return rms / 40 }

// bias is an int32 bias of count values with the scales TFLite requires
// (input scale times the weight scale of each channel; one weight scale:
// per-tensor), real values of about 0.3.
func (n *net) bias(name string, count int, wScales []float32) int32 {
	q := &tflite.Quantization{Scale: make([]float32, count), ZeroPoint: make([]int64, count)}
	data := make([]byte, 0, 4*count)
	for c := range count {
		ws := wScales[min(c, len(wScales)-1)]
		bs := float64(float32(n.scale)) * float64(ws)
		q.Scale[c] = float32(bs)
		data = binary.LittleEndian.AppendUint32(data, uint32(int32(math.Round(0.3*n.rng.NormFloat64()/bs))))
	}
	return n.tensor(name, tflite.TensorInt32, []int32{int32(count)}, q, data)
}

// conv adds a CONV_2D of kh x kw with outC channels.
func (n *net) conv(kh, kw, stride, outC int, same bool, act tflite.Activation) *net {
	h, w, c, ok := n.spatial()
	if !ok {
		return n
	}
	oh, ow := outSize(h, kh, stride, same), outSize(w, kw, stride, same)
	wData := n.int8s(outC * kh * kw * c)
	ws := n.weightScales(outC, kh*kw*c)
	wq := &tflite.Quantization{Scale: ws, ZeroPoint: make([]int64, outC)}
	k := len(n.sg.Operators)
	wt := n.tensor(fmt.Sprintf("w%d", k), tflite.TensorInt8, []int32{int32(outC), int32(kh), int32(kw), int32(c)}, wq, wData)
	bt := n.bias(fmt.Sprintf("b%d", k), outC, ws)
	relu := act == tflite.ActRelu
	zp := int64(0)
	if relu {
		zp = -100 // non-negative outputs: use the whole range
	}
	n.push(tflite.OpConv2D, &tflite.Conv2DOptions{Padding: tflite.PaddingOf(same), StrideW: int32(stride), StrideH: int32(stride), Activation: act, DilationW: 1, DilationH: 1},
		[]int32{wt, bt}, []int32{1, int32(oh), int32(ow), int32(outC)}, spread(1), zp, outRMS(relu))
	return n
}

// depthwise adds a DEPTHWISE_CONV_2D of k x k, depth multiplier 1.
func (n *net) depthwise(k, stride int, same bool) *net {
	h, w, c, ok := n.spatial()
	if !ok {
		return n
	}
	oh, ow := outSize(h, k, stride, same), outSize(w, k, stride, same)
	ws := n.weightScales(c, k*k)
	wq := &tflite.Quantization{Scale: ws, ZeroPoint: make([]int64, c), QuantizedDimension: 3}
	i := len(n.sg.Operators)
	wt := n.tensor(fmt.Sprintf("w%d", i), tflite.TensorInt8, []int32{1, int32(k), int32(k), int32(c)}, wq, n.int8s(k*k*c))
	bt := n.bias(fmt.Sprintf("b%d", i), c, ws)
	n.push(tflite.OpDepthwiseConv2D, &tflite.DepthwiseConv2DOptions{Padding: tflite.PaddingOf(same), StrideW: int32(stride), StrideH: int32(stride), DepthMultiplier: 1, Activation: tflite.ActRelu6, DilationW: 1, DilationH: 1},
		[]int32{wt, bt}, []int32{1, int32(oh), int32(ow), int32(c)}, spread(1), -100, outRMS(true))
	return n
}

// pool adds a MAX_POOL_2D or AVERAGE_POOL_2D of k x k (same quantization
// in and out, as int8 pooling requires).
func (n *net) pool(maxPool bool, k, stride int, same bool) *net {
	return n.poolRect(maxPool, k, k, stride, same)
}

// poolRect adds a pool of kh x kw.
func (n *net) poolRect(maxPool bool, kh, kw, stride int, same bool) *net {
	h, w, c, ok := n.spatial()
	if !ok {
		return n
	}
	op := tflite.OpAveragePool2D
	if maxPool {
		op = tflite.OpMaxPool2D
	}
	oh, ow := outSize(h, kh, stride, same), outSize(w, kw, stride, same)
	n.push(op, &tflite.Pool2DOptions{Padding: tflite.PaddingOf(same), StrideW: int32(stride), StrideH: int32(stride), FilterW: int32(kw), FilterH: int32(kh)},
		nil, []int32{1, int32(oh), int32(ow), int32(c)}, n.scale, n.zp, n.rms)
	return n
}

// fc adds a FULLY_CONNECTED of out outputs over all the current tensor's
// values (one batch), per-tensor weights.
func (n *net) fc(out int) *net {
	depth := 1
	for _, d := range n.dims {
		depth *= int(d)
	}
	i := len(n.sg.Operators)
	ws := n.weightScales(1, depth)
	wt := n.tensor(fmt.Sprintf("w%d", i), tflite.TensorInt8, []int32{int32(out), int32(depth)},
		&tflite.Quantization{Scale: ws, ZeroPoint: []int64{0}}, n.int8s(out*depth))
	bt := n.bias(fmt.Sprintf("b%d", i), out, ws)
	n.push(tflite.OpFullyConnected, &tflite.FullyConnectedOptions{Activation: tflite.ActNone},
		[]int32{wt, bt}, []int32{1, int32(out)}, spread(1), 0, outRMS(false))
	return n
}

// reshape adds a RESHAPE to dims (same quantization).
func (n *net) reshape(dims ...int32) *net {
	n.push(tflite.OpReshape, &tflite.ReshapeOptions{NewShape: dims}, nil, dims, n.scale, n.zp, n.rms)
	return n
}

// softmax adds a SOFTMAX over the last dimension (output scale 1/256, zero
// point -128, as int8 softmax requires).
func (n *net) softmax() *net {
	c := float64(n.dims[len(n.dims)-1])
	n.push(tflite.OpSoftmax, &tflite.SoftmaxOptions{Beta: 1}, nil, n.dims, 1.0/256, -128, 1.5/c)
	return n
}

// add adds an ADD of the current tensor to itself.
func (n *net) add() *net {
	n.push(tflite.OpAdd, &tflite.AddOptions{Activation: tflite.ActNone}, []int32{n.cur}, n.dims, n.scale*2.1, n.zp, 2*n.rms)
	return n
}

// mul adds a MUL of the current tensor by itself (non-negative outputs up
// to about 9 times the mean square, over the whole int8 range).
func (n *net) mul() *net {
	r := n.rms
	n.push(tflite.OpMul, &tflite.MulOptions{Activation: tflite.ActNone}, []int32{n.cur}, n.dims, 9*r*r/255, -128, 1.7*r*r)
	return n
}

// requantize adds an int8 to int8 QUANTIZE to a new scale (0: 1.3 times
// the current one) and another zero point.
func (n *net) requantize(scale float64) *net {
	if scale == 0 {
		scale = n.scale * 1.3
	}
	n.push(tflite.OpQuantize, nil, nil, n.dims, scale, n.zp/2+5, n.rms)
	return n
}

// encode finishes the chain: the current tensor is the output.
func (n *net) encode() ([]byte, error) {
	if n.err != nil {
		return nil, n.err
	}
	n.sg.Outputs = []int32{n.cur}
	n.m.Subgraphs = []tflite.Subgraph{*n.sg}
	return tflite.Encode(n.m)
}

// input is the chain's input tensor: bytes uniform over int8, from the
// chain's generator.
func (n *net) input() []byte {
	size := 1
	for _, d := range n.sg.Tensors[n.sg.Inputs[0]].Shape {
		size *= int(d)
	}
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(n.rng.IntN(256))
	}
	return b
}
