// Package modelgen generates the harness's own bundled model: a small int8
// CNN made reproducibly from a seed, with no TensorFlow involved.
//
// The network (NHWC, batch 1) is
//
//	input    [1,24,24,3] int8
//	conv1    CONV_2D 3x3x16, stride 1, SAME, RELU           -> [1,24,24,16]
//	dwconv2  DEPTHWISE_CONV_2D 3x3, stride 2, SAME, RELU6   -> [1,12,12,16]
//	conv3    CONV_2D 1x1x16, stride 1, VALID, RELU          -> [1,12,12,16]
//	maxpool4 MAX_POOL_2D 2x2, stride 2, VALID               -> [1,6,6,16]
//	conv5    CONV_2D 3x3x32, stride 1, VALID, RELU          -> [1,4,4,32]
//	avgpool6 AVERAGE_POOL_2D 4x4, stride 4, VALID           -> [1,1,1,32]
//	flatten7 RESHAPE                                        -> [1,32]
//	fc8      FULLY_CONNECTED 10                             -> [1,10]
//	softmax9 SOFTMAX, beta 1                                -> [1,10]
//
// It takes 383,306 multiply-accumulates and 6,120 bytes of weights and
// biases: small enough for an MSP430FR5994's FRAM and a fraction of a second
// at 16 MHz. conv1's 9,216-byte output alone exceeds the MCU's 8 KB SRAM, so
// a board that computes in SRAM has to tile the first layers (the planned
// arena, the input and conv1's output alive together, is 11,520 bytes).
//
// Generate does what a post-training quantizer does with a trained float
// model, on a random one: it draws float32 weights (He-normal-like) and small
// biases, runs the float network on seeded calibration images (64 by
// default; smooth gradients, soft blobs and faint stripes, not white noise)
// to find each activation's range, and quantizes as TFLite's converter does:
// per-channel symmetric int8 convolution weights, per-tensor symmetric fully
// connected weights, int32 biases with scale input_scale*weight_scale,
// asymmetric int8 activations with scale (max-min)/255 over a range that
// includes 0, pooling and reshape outputs sharing their input's quantization,
// and the int8 softmax's fixed output scale 1/256 and zero point -128.
//
// The output is the same byte for byte on every machine: random numbers come
// from an explicitly seeded PCG's raw output, loops run in a fixed order on
// one goroutine, and the float arithmetic uses only correctly rounded
// operations with no fused multiply-adds (see the note in random.go).
package modelgen

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/tflite"
)

// Config selects one generated model.
type Config struct {
	// Seed seeds every random choice: weights, biases, calibration images
	// and the example input.
	Seed uint64
	// CalibrationInputs is the number of seeded images whose float
	// activations set the quantization ranges (at least 1).
	CalibrationInputs int
}

// DefaultConfig is the configuration of the bundled model
// (harness/bundled's tinycnn.tflite).
func DefaultConfig() Config { return Config{Seed: 1, CalibrationInputs: 64} }

// Generate makes the model of cfg and one example input for it. modelBytes
// is a .tflite file (int8 input and output) that model.Parse imports;
// inputBytes is a structured example image (drawn like the calibration
// images, but not one of them) quantized with the model's input
// quantization, as raw int8 bytes in NHWC order. The same cfg gives the same
// bytes on every machine.
func Generate(cfg Config) (modelBytes, inputBytes []byte, err error) {
	g, err := generate(cfg)
	if err != nil {
		return nil, nil, err
	}
	return g.model, g.input, nil
}

// quant is an affine int8 quantization: real = scale * (q - zp).
type quant struct {
	scale float32
	zp    int64
}

// quantize rounds v to the nearest step, half away from zero, and clamps it
// to int8, like TFLite's AffineQuantize (but dividing in float64).
func (q quant) quantize(v float64) int8 {
	r := math.Round(v/float64(q.scale)) + float64(q.zp)
	return int8(min(max(r, -128), 127))
}

// dequantize is scale * (q - zp).
func (q quant) dequantize(v int8) float64 { return float64(q.scale) * float64(int64(v)-q.zp) }

// asymmetric is the int8 quantization of the range [lo, hi] widened to
// include 0: scale = (hi-lo)/255, zero point round(-128 - lo/scale) clamped
// to int8.
func asymmetric(lo, hi float64) quant {
	lo, hi = min(lo, 0), max(hi, 0)
	if hi-lo < 1e-6 { // a dead layer; any positive scale will do
		hi = lo + 1e-6
	}
	scale := float32((hi - lo) / 255)
	zp := math.Round(-128 - lo/float64(scale))
	return quant{scale: scale, zp: int64(min(max(zp, -128), 127))}
}

// softmaxQuant is the output quantization TFLite requires of int8 SOFTMAX.
var softmaxQuant = quant{scale: 1.0 / 256, zp: -128}

// generated is everything one Generate computes; the tests look inside.
type generated struct {
	net         *network
	calibration [][]float64 // the calibration images
	example     []float64   // the example input image
	inQuant     quant       // the input's quantization
	outQuant    []quant     // each layer's output quantization
	model       []byte
	input       []byte
}

func generate(cfg Config) (*generated, error) {
	if cfg.CalibrationInputs < 1 {
		return nil, fmt.Errorf("modelgen: CalibrationInputs is %d, want at least 1", cfg.CalibrationInputs)
	}
	net, err := newNetwork(newRNG(cfg.Seed, streamWeights))
	if err != nil {
		return nil, err
	}
	g := &generated{net: net}

	// Calibrate: each activation's range over the calibration images.
	cr := newRNG(cfg.Seed, streamCalibration)
	inLo, inHi := 0.0, 0.0
	lo, hi := make([]float64, len(net.layers)), make([]float64, len(net.layers))
	for range cfg.CalibrationInputs {
		img := cr.image()
		g.calibration = append(g.calibration, img)
		for _, v := range img {
			inLo, inHi = min(inLo, v), max(inHi, v)
		}
		for i, out := range net.forward(img) {
			for _, v := range out {
				lo[i], hi[i] = min(lo[i], v), max(hi[i], v)
			}
		}
	}
	g.inQuant = asymmetric(inLo, inHi)
	prev := g.inQuant
	for i, l := range net.layers {
		q := prev
		switch l.kind {
		case kConv, kDepthwise, kFC:
			q = asymmetric(lo[i], hi[i])
		case kSoftmax:
			q = softmaxQuant
		}
		g.outQuant = append(g.outQuant, q)
		prev = q
	}

	if g.model, err = g.encode(cfg); err != nil {
		return nil, err
	}
	// The generator never returns a model the harness cannot import.
	if _, err := model.Parse(g.model, "modelgen"); err != nil {
		return nil, fmt.Errorf("modelgen: the generated model does not import: %w", err)
	}

	g.example = newRNG(cfg.Seed, streamExample).image()
	g.input = make([]byte, len(g.example))
	for i, v := range g.example {
		g.input[i] = byte(g.inQuant.quantize(v))
	}
	return g, nil
}

// Operator versions TFLite gives int8 (per-channel) models.
var opVersions = []struct {
	op      tflite.BuiltinOp
	version int32
}{
	{tflite.OpConv2D, 3},
	{tflite.OpDepthwiseConv2D, 3},
	{tflite.OpFullyConnected, 4},
	{tflite.OpAveragePool2D, 2},
	{tflite.OpMaxPool2D, 2},
	{tflite.OpReshape, 1},
	{tflite.OpSoftmax, 2},
}

// builder assembles the tflite.Model.
type builder struct {
	m  *tflite.Model
	sg *tflite.Subgraph
}

// opcode returns the index of op's operator code, adding it on first use
// at the version the operator needs.
func (b *builder) opcode(op tflite.BuiltinOp) uint32 {
	version := int32(1)
	for _, v := range opVersions {
		if v.op == op {
			version = v.version
		}
	}
	return b.m.Opcode(op, version)
}

// tensor adds a tensor (with its constant data in a new buffer when data is
// not nil) and returns its index.
func (b *builder) tensor(name string, typ tflite.TensorType, dims []int32, q *tflite.Quantization, data []byte) int32 {
	return b.m.AddTensor(b.sg, name, typ, dims, q, data)
}

// activation adds an int8 activation tensor.
func (b *builder) activation(name string, s shape, q quant) int32 {
	return b.tensor(name, tflite.TensorInt8, s.dims(),
		&tflite.Quantization{Scale: []float32{q.scale}, ZeroPoint: []int64{q.zp}}, nil)
}

// symmetric quantizes weights symmetrically to int8 in [-127, 127] with one
// scale max|w|/127 per channel; channelOf gives the channel of the flat
// element i (always 0 for per-tensor quantization, channels = 1).
func symmetric(w []float64, channels int, channelOf func(i int) int) ([]byte, []float32) {
	maxAbs := make([]float64, channels)
	for i, v := range w {
		c := channelOf(i)
		maxAbs[c] = max(maxAbs[c], math.Abs(v))
	}
	scales := make([]float32, channels)
	for c, m := range maxAbs {
		scales[c] = float32(m / 127)
		if !(scales[c] > 0) {
			scales[c] = 1 // an all-zero channel
		}
	}
	data := make([]byte, len(w))
	for i, v := range w {
		q := math.Round(v / float64(scales[channelOf(i)]))
		data[i] = byte(int8(min(max(q, -127), 127)))
	}
	return data, scales
}

// biases quantizes biases to int32 with scale inScale*wScale[c] (exact in
// float64: a product of two float32 values) and zero point 0.
func biases(b []float64, inScale float32, wScales []float32) ([]byte, *tflite.Quantization) {
	q := &tflite.Quantization{Scale: make([]float32, len(b)), ZeroPoint: make([]int64, len(b))}
	data := make([]byte, 0, 4*len(b))
	for c, v := range b {
		ws := wScales[0]
		if len(wScales) > 1 {
			ws = wScales[c]
		}
		s := float64(inScale) * float64(ws)
		q.Scale[c] = float32(s)
		r := math.Round(v / s)
		r = min(max(r, math.MinInt32), math.MaxInt32)
		data = binary.LittleEndian.AppendUint32(data, uint32(int32(r)))
	}
	return data, q
}

// encode writes the quantized network as a .tflite file.
func (g *generated) encode(cfg Config) ([]byte, error) {
	b := &builder{
		m: &tflite.Model{
			Version:     tflite.SchemaVersion,
			Description: fmt.Sprintf("batteryless harness bundled model, seed %d", cfg.Seed),
			Buffers:     []tflite.Buffer{{}}, // buffer 0: the empty buffer
		},
		sg: &tflite.Subgraph{Name: "main"},
	}
	in := b.activation("input", g.net.input, g.inQuant)
	b.sg.Inputs = []int32{in}
	inQ := g.inQuant
	for i, l := range g.net.layers {
		outQ := g.outQuant[i]
		outName := l.name + "/output"
		if l.kind == kSoftmax {
			outName = "probabilities"
		}
		op := tflite.Operator{Inputs: []int32{in}}
		if l.weights != nil {
			var wData []byte
			var wScales []float32
			var qdim int32
			switch l.kind {
			case kConv: // [outC][k][k][inC]: the channel is the first index
				per := len(l.weights) / l.outC
				wData, wScales = symmetric(l.weights, l.outC, func(i int) int { return i / per })
			case kDepthwise: // [1][k][k][C]: the channel is the last index
				wData, wScales = symmetric(l.weights, l.in.c, func(i int) int { return i % l.in.c })
				qdim = 3
			case kFC: // per-tensor
				wData, wScales = symmetric(l.weights, 1, func(int) int { return 0 })
			}
			wq := &tflite.Quantization{Scale: wScales, ZeroPoint: make([]int64, len(wScales)), QuantizedDimension: qdim}
			w := b.tensor(l.name+"/weights", tflite.TensorInt8, l.weightDims, wq, wData)
			bData, bq := biases(l.bias, inQ.scale, wScales)
			bias := b.tensor(l.name+"/bias", tflite.TensorInt32, []int32{int32(len(l.bias))}, bq, bData)
			op.Inputs = append(op.Inputs, w, bias)
		}
		out := b.activation(outName, l.out, outQ)
		op.Outputs = []int32{out}
		switch l.kind {
		case kConv:
			op.OpcodeIndex = b.opcode(tflite.OpConv2D)
			op.Options = &tflite.Conv2DOptions{Padding: tflite.PaddingOf(l.same), StrideW: int32(l.stride), StrideH: int32(l.stride),
				Activation: l.act, DilationW: 1, DilationH: 1}
		case kDepthwise:
			op.OpcodeIndex = b.opcode(tflite.OpDepthwiseConv2D)
			op.Options = &tflite.DepthwiseConv2DOptions{Padding: tflite.PaddingOf(l.same), StrideW: int32(l.stride), StrideH: int32(l.stride),
				DepthMultiplier: 1, Activation: l.act, DilationW: 1, DilationH: 1}
		case kMaxPool, kAvgPool:
			code := tflite.OpMaxPool2D
			if l.kind == kAvgPool {
				code = tflite.OpAveragePool2D
			}
			op.OpcodeIndex = b.opcode(code)
			op.Options = &tflite.Pool2DOptions{Padding: tflite.PaddingOf(l.same), StrideW: int32(l.stride), StrideH: int32(l.stride),
				FilterW: int32(l.k), FilterH: int32(l.k), Activation: l.act}
		case kReshape:
			op.OpcodeIndex = b.opcode(tflite.OpReshape)
			op.Options = &tflite.ReshapeOptions{NewShape: l.out.dims()}
		case kFC:
			op.OpcodeIndex = b.opcode(tflite.OpFullyConnected)
			op.Options = &tflite.FullyConnectedOptions{Activation: l.act}
		case kSoftmax:
			op.OpcodeIndex = b.opcode(tflite.OpSoftmax)
			op.Options = &tflite.SoftmaxOptions{Beta: 1}
		}
		b.sg.Operators = append(b.sg.Operators, op)
		in, inQ = out, outQ
	}
	b.sg.Outputs = []int32{in}
	b.m.Subgraphs = []tflite.Subgraph{*b.sg}
	return tflite.Encode(b.m)
}
