package model

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/batteryless/harness/harness/fixedpoint"
	"github.com/batteryless/harness/harness/kernels"
	"github.com/batteryless/harness/harness/tflite"
)

// Limits that keep a lying model file from making the harness allocate
// without bound. They are far above what fits a microcontroller.
const (
	MaxModelBytes  = 256 << 20 // a .tflite file
	MaxDim         = 1 << 16   // one dimension of a tensor
	MaxTensorElems = 1 << 24   // one activation tensor
	MaxArenaBytes  = 64 << 20  // the planned activation arena
	MaxLayers      = 4096
)

// Load reads and imports a .tflite file.
func Load(path string) (*Model, error) {
	tm, err := tflite.ReadFile(path, MaxModelBytes)
	if err != nil {
		return nil, err
	}
	return FromTFLite(tm, path)
}

// Parse decodes and imports a .tflite file held in memory; name is used in
// error messages. The model's constant tensors alias data.
func Parse(data []byte, name string) (*Model, error) {
	tm, err := tflite.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return FromTFLite(tm, name)
}

// importer carries the state of one import.
type importer struct {
	name   string
	tm     *tflite.Model
	sg     *tflite.Subgraph
	m      *Model
	byFile map[int32]int // file tensor index -> Model.Tensors index
}

// FromTFLite turns a decoded .tflite model into the harness's form, checking
// every operator, type, shape and quantization parameter it relies on. name
// (usually the file path) starts every error message.
func FromTFLite(tm *tflite.Model, name string) (*Model, error) {
	if len(tm.Subgraphs) == 0 {
		return nil, fmt.Errorf("%s: the model has no subgraph", name)
	}
	sg := &tm.Subgraphs[0]
	if len(sg.Inputs) != 1 || len(sg.Outputs) != 1 {
		return nil, fmt.Errorf("%s: the model has %d inputs and %d outputs; the harness runs models with one of each", name, len(sg.Inputs), len(sg.Outputs))
	}
	if len(sg.Operators) == 0 {
		return nil, fmt.Errorf("%s: subgraph 0 has no operators", name)
	}
	if len(sg.Operators) > MaxLayers {
		return nil, fmt.Errorf("%s: %d operators is more than the %d the harness accepts", name, len(sg.Operators), MaxLayers)
	}
	im := &importer{name: name, tm: tm, sg: sg, m: &Model{Name: name}, byFile: map[int32]int{}}
	in, err := im.tensor(sg.Inputs[0], "input")
	if err != nil {
		return nil, err
	}
	if im.m.Tensors[in].IsConst() {
		return nil, fmt.Errorf("%s: the graph input tensor %d is constant", name, sg.Inputs[0])
	}
	im.m.Input = in
	produced := map[int]bool{in: true}
	for i := range sg.Operators {
		l, err := im.layer(i)
		if err != nil {
			return nil, err
		}
		for _, t := range l.Inputs {
			if !produced[t] {
				return nil, fmt.Errorf("%s: operator %d (%s) reads tensor %q before any operator writes it", name, i, l.Op, im.m.Tensors[t].Name)
			}
		}
		if produced[l.Output] {
			return nil, fmt.Errorf("%s: operator %d (%s) writes tensor %q, which is already written", name, i, l.Op, im.m.Tensors[l.Output].Name)
		}
		produced[l.Output] = true
		im.m.Layers = append(im.m.Layers, l)
	}
	out, err := im.tensor(sg.Outputs[0], "output")
	if err != nil {
		return nil, err
	}
	if !produced[out] || out == in {
		return nil, fmt.Errorf("%s: no operator writes the graph output tensor %q", name, im.m.Tensors[out].Name)
	}
	im.m.Output = out
	plan, err := PlanMemory(im.m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	im.m.Plan = plan
	return im.m, nil
}

// tensor imports file tensor idx (once) and returns its index in the model.
func (im *importer) tensor(idx int32, role string) (int, error) {
	if j, ok := im.byFile[idx]; ok {
		return j, nil
	}
	if idx < 0 || int(idx) >= len(im.sg.Tensors) {
		return 0, fmt.Errorf("%s: %s tensor index %d is out of range (%d tensors)", im.name, role, idx, len(im.sg.Tensors))
	}
	ft := &im.sg.Tensors[idx]
	where := fmt.Sprintf("%s: tensor %d (%q)", im.name, idx, ft.Name)
	t := &Tensor{Index: len(im.m.Tensors), Name: ft.Name, Offset: -1}
	switch ft.Type {
	case tflite.TensorInt8:
		t.DType = Int8
	case tflite.TensorInt32:
		t.DType = Int32
	case tflite.TensorFloat32:
		t.DType = Float32
	default:
		return 0, fmt.Errorf("%s: data type %s is not supported (int8, int32 and float32 at the edges are)", where, ft.Type)
	}
	if len(ft.Shape) > 4 {
		return 0, fmt.Errorf("%s: rank %d is more than 4", where, len(ft.Shape))
	}
	elems := 1
	for i, d := range ft.Shape {
		if d < 1 || d > MaxDim {
			return 0, fmt.Errorf("%s: dimension %d is %d, outside [1, %d]", where, i, d, MaxDim)
		}
		elems *= int(d)
		if elems > MaxTensorElems {
			return 0, fmt.Errorf("%s: shape %v has more than %d elements", where, ft.Shape, MaxTensorElems)
		}
		t.Dims = append(t.Dims, int(d))
	}
	t.Shape = nhwc(t.Dims)
	if q := ft.Quant; q != nil && len(q.Scale) > 0 {
		for i, s := range q.Scale {
			if !(s > 0) || math.IsInf(float64(s), 0) {
				return 0, fmt.Errorf("%s: quantization scale[%d] = %g is not a positive finite number", where, i, s)
			}
		}
		t.Scale = float64(q.Scale[0])
		t.Scales = q.Scale
		if len(q.ZeroPoint) > 0 {
			zp := q.ZeroPoint[0]
			if zp < -128 || zp > 127 {
				return 0, fmt.Errorf("%s: zero point %d is outside the int8 range", where, zp)
			}
			t.ZeroPoint = int32(zp)
		}
	}
	if int(ft.Buffer) >= len(im.tm.Buffers) {
		return 0, fmt.Errorf("%s: buffer index %d is out of range", where, ft.Buffer)
	}
	if data := im.tm.Buffers[ft.Buffer].Data; len(data) > 0 {
		if len(data) != elems*t.DType.Size() {
			return 0, fmt.Errorf("%s: constant data is %d bytes but shape %v of %s needs %d", where, len(data), ft.Shape, t.DType, elems*t.DType.Size())
		}
		t.Const = data
	}
	im.byFile[idx] = t.Index
	im.m.Tensors = append(im.m.Tensors, t)
	return t.Index, nil
}

// nhwc pads dims to four: [C] -> 1,1,1,C; [N,C] -> N,1,1,C; [N,W,C] -> N,1,W,C.
func nhwc(d []int) kernels.Shape {
	switch len(d) {
	case 0:
		return kernels.Shape{N: 1, H: 1, W: 1, C: 1}
	case 1:
		return kernels.Shape{N: 1, H: 1, W: 1, C: d[0]}
	case 2:
		return kernels.Shape{N: d[0], H: 1, W: 1, C: d[1]}
	case 3:
		return kernels.Shape{N: d[0], H: 1, W: d[1], C: d[2]}
	}
	return kernels.Shape{N: d[0], H: d[1], W: d[2], C: d[3]}
}

// opError names the model, the operator's index and its kind.
type opCtx struct {
	im   *importer
	i    int
	op   *tflite.Operator
	code tflite.BuiltinOp
}

func (c *opCtx) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: operator %d (%s): %s", c.im.name, c.i, c.code, fmt.Sprintf(format, args...))
}

// input imports the operator's k-th input; optional inputs that are absent give -1.
func (c *opCtx) input(k int, optional bool) (int, error) {
	if k >= len(c.op.Inputs) || c.op.Inputs[k] < 0 {
		if optional {
			return -1, nil
		}
		return 0, c.errorf("input %d is missing", k)
	}
	j, err := c.im.tensor(c.op.Inputs[k], fmt.Sprintf("operator %d input %d", c.i, k))
	if err != nil {
		return 0, err
	}
	return j, nil
}

func (c *opCtx) t(j int) *Tensor { return c.im.m.Tensors[j] }

// activationIn imports input k and checks that it is a (non-constant) activation of dtype d.
func (c *opCtx) activationIn(k int, d DType) (int, error) {
	j, err := c.input(k, false)
	if err != nil {
		return 0, err
	}
	t := c.t(j)
	if t.IsConst() {
		return 0, c.errorf("input %d (%q) is constant; the harness runs operators on activations", k, t.Name)
	}
	if t.DType != d {
		return 0, c.errorf("input %d (%q) is %s, want %s", k, t.Name, t.DType, d)
	}
	return j, nil
}

func (c *opCtx) output(d DType) (int, error) {
	if len(c.op.Outputs) != 1 {
		return 0, c.errorf("has %d outputs, want 1", len(c.op.Outputs))
	}
	j, err := c.im.tensor(c.op.Outputs[0], fmt.Sprintf("operator %d output", c.i))
	if err != nil {
		return 0, err
	}
	t := c.t(j)
	if t.IsConst() {
		return 0, c.errorf("output %q is constant", t.Name)
	}
	if t.DType != d {
		return 0, c.errorf("output %q is %s, want %s", t.Name, t.DType, d)
	}
	return j, nil
}

func (c *opCtx) quantized(j int, what string) error {
	if c.t(j).Scale == 0 {
		return c.errorf("%s %q has no quantization scale", what, c.t(j).Name)
	}
	return nil
}

func (im *importer) layer(i int) (*Layer, error) {
	op := &im.sg.Operators[i]
	if int(op.OpcodeIndex) >= len(im.tm.OperatorCodes) {
		return nil, fmt.Errorf("%s: operator %d: opcode index %d is out of range", im.name, i, op.OpcodeIndex)
	}
	oc := im.tm.OperatorCodes[op.OpcodeIndex]
	c := &opCtx{im: im, i: i, op: op, code: oc.Builtin}
	if oc.Custom != "" {
		return nil, fmt.Errorf("%s: operator %d: custom operator %q is not supported", im.name, i, oc.Custom)
	}
	l := &Layer{Index: i, Weights: -1, Bias: -1}
	var err error
	switch oc.Builtin {
	case tflite.OpConv2D, tflite.OpDepthwiseConv2D:
		err = c.conv(l)
	case tflite.OpFullyConnected:
		err = c.fullyConnected(l)
	case tflite.OpAveragePool2D, tflite.OpMaxPool2D:
		err = c.pool(l)
	case tflite.OpAdd, tflite.OpMul:
		err = c.elementwise(l)
	case tflite.OpReshape:
		err = c.reshape(l)
	case tflite.OpSoftmax:
		err = c.softmax(l)
	case tflite.OpQuantize:
		err = c.quantize(l)
	case tflite.OpDequantize:
		err = c.dequantize(l)
	default:
		return nil, fmt.Errorf("%s: operator %d (%s): operator is not supported (supported: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, AVERAGE_POOL_2D, MAX_POOL_2D, ADD, MUL, RESHAPE, SOFTMAX, QUANTIZE, DEQUANTIZE)", im.name, i, oc.Builtin)
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

// activationRange is TFLite's CalculateActivationRangeQuantized for int8,
// with its float32 arithmetic.
func (c *opCtx) activationRange(act tflite.Activation, out *Tensor) (int32, int32, error) {
	scale := float32(out.Scale)
	q := func(f float32) int32 { return out.ZeroPoint + int32(math.Round(float64(f/scale))) }
	lo, hi := int32(-128), int32(127)
	switch act {
	case tflite.ActNone:
	case tflite.ActRelu:
		lo = max(lo, q(0))
	case tflite.ActRelu6:
		lo, hi = max(lo, q(0)), min(hi, q(6))
	case tflite.ActReluN1To1:
		lo, hi = max(lo, q(-1)), min(hi, q(1))
	default:
		return 0, 0, c.errorf("fused activation %s is not supported", act)
	}
	if lo > hi {
		return 0, 0, c.errorf("fused activation %s leaves an empty output range [%d, %d]", act, lo, hi)
	}
	return lo, hi, nil
}

// padding is TFLite's ComputePaddingHeightWidth for one dimension: the
// output size and the padding before the first element.
func padding(p tflite.Padding, stride, dilation, in, filter int) (out, before int) {
	eff := (filter-1)*dilation + 1
	if p == tflite.PaddingSame {
		out = (in + stride - 1) / stride
	} else {
		out = (in + stride - eff) / stride
	}
	total := (out-1)*stride + eff - in
	return out, max(total, 0) / 2
}

func validStride(vals ...int32) bool {
	for _, v := range vals {
		if v < 1 || v > MaxDim {
			return false
		}
	}
	return true
}

func (c *opCtx) conv(l *Layer) error {
	depthwise := c.code == tflite.OpDepthwiseConv2D
	var pad tflite.Padding
	var sw, sh, dw, dh, dm int32
	var act tflite.Activation
	switch o := c.op.Options.(type) {
	case *tflite.Conv2DOptions:
		if depthwise {
			return c.errorf("has CONV_2D options")
		}
		pad, sw, sh, dw, dh, act = o.Padding, o.StrideW, o.StrideH, o.DilationW, o.DilationH, o.Activation
		l.Op = OpConv2D
	case *tflite.DepthwiseConv2DOptions:
		if !depthwise {
			return c.errorf("has DEPTHWISE_CONV_2D options")
		}
		pad, sw, sh, dw, dh, act, dm = o.Padding, o.StrideW, o.StrideH, o.DilationW, o.DilationH, o.Activation, o.DepthMultiplier
		l.Op = OpDepthwiseConv2D
	default:
		return c.errorf("options are missing (type id %d)", c.op.OptionsType)
	}
	if pad != tflite.PaddingSame && pad != tflite.PaddingValid {
		return c.errorf("padding %s is not SAME or VALID", pad)
	}
	if !validStride(sw, sh, dw, dh) {
		return c.errorf("strides %dx%d or dilations %dx%d are outside [1, %d]", sh, sw, dh, dw, MaxDim)
	}
	in, err := c.activationIn(0, Int8)
	if err != nil {
		return err
	}
	wj, err := c.input(1, false)
	if err != nil {
		return err
	}
	bj, err := c.input(2, true)
	if err != nil {
		return err
	}
	out, err := c.output(Int8)
	if err != nil {
		return err
	}
	ti, tw, to := c.t(in), c.t(wj), c.t(out)
	if len(ti.Dims) != 4 || len(tw.Dims) != 4 || len(to.Dims) != 4 {
		return c.errorf("input, weights and output must be 4-D, got %v, %v and %v", ti.Dims, tw.Dims, to.Dims)
	}
	if !tw.IsConst() || tw.DType != Int8 {
		return c.errorf("weights %q must be constant int8", tw.Name)
	}
	for _, j := range []int{in, wj, out} {
		if err := c.quantized(j, "tensor"); err != nil {
			return err
		}
	}
	if tw.ZeroPoint != 0 {
		return c.errorf("weights %q have zero point %d; int8 convolution weights are symmetric", tw.Name, tw.ZeroPoint)
	}
	kh, kw := tw.Shape.H, tw.Shape.W
	outC := tw.Shape.N
	mult := 1
	if depthwise {
		outC = tw.Shape.C
		if tw.Shape.N != 1 {
			return c.errorf("depthwise weights %v must have 1 as first dimension", tw.Dims)
		}
		if outC%ti.Shape.C != 0 {
			return c.errorf("depthwise output channels %d are not a multiple of the input channels %d", outC, ti.Shape.C)
		}
		mult = outC / ti.Shape.C
		if dm != 0 && int(dm) != mult {
			return c.errorf("depth_multiplier %d disagrees with the shapes (%d input and %d output channels)", dm, ti.Shape.C, outC)
		}
	} else if tw.Shape.C != ti.Shape.C {
		return c.errorf("weights %v do not match the %d input channels", tw.Dims, ti.Shape.C)
	}
	oh, padTop := padding(pad, int(sh), int(dh), ti.Shape.H, kh)
	ow, padLeft := padding(pad, int(sw), int(dw), ti.Shape.W, kw)
	want := kernels.Shape{N: ti.Shape.N, H: oh, W: ow, C: outC}
	if to.Shape != want {
		return c.errorf("output shape %v does not match the %v the input, weights, stride and %s padding give", to.Dims, want, pad)
	}
	if len(tw.Scales) != 1 && len(tw.Scales) != outC {
		return c.errorf("weights have %d scales for %d output channels", len(tw.Scales), outC)
	}
	p := &kernels.ConvParams{
		In: ti.Shape, Out: to.Shape, KernelH: kh, KernelW: kw,
		StrideH: int(sh), StrideW: int(sw), DilationH: int(dh), DilationW: int(dw),
		PadTop: padTop, PadLeft: padLeft, DepthMultiplier: mult,
		InputOffset: -ti.ZeroPoint, OutputOffset: to.ZeroPoint,
		Multiplier: make([]int32, outC), Shift: make([]int32, outC),
	}
	if p.ActMin, p.ActMax, err = c.activationRange(act, to); err != nil {
		return err
	}
	for oc := 0; oc < outC; oc++ {
		s := tw.Scales[0]
		if len(tw.Scales) > 1 {
			s = tw.Scales[oc]
		}
		m, sft := fixedpoint.QuantizeMultiplier(ti.Scale * float64(s) / to.Scale)
		p.Multiplier[oc], p.Shift[oc] = m, int32(sft)
	}
	if l.bias, err = c.bias(bj, outC); err != nil {
		return err
	}
	l.Inputs, l.Output, l.Weights, l.Bias = []int{in}, out, wj, bj
	l.weights = tw.Int8s()
	if !depthwise {
		p.WeightSums = kernels.ConvWeightSums(p, l.weights)
	}
	// The fast kernels' form, once per model (nil when the layer's
	// parameters need the portable kernel).
	p.Prepare(l.weights, l.bias, depthwise)
	l.Conv = p
	l.Activation, l.Padding = act.String(), pad.String()
	if depthwise {
		l.MACs = int64(to.Shape.Elems()) * int64(kh*kw)
	} else {
		l.MACs = int64(to.Shape.Elems()) * int64(kh*kw*ti.Shape.C)
	}
	return nil
}

// bias checks and copies an optional int32 bias of n values. TFLite Micro
// accepts 1-D biases and biases whose quantized_dimension names their last
// axis; both are n values in a row.
func (c *opCtx) bias(j, n int) ([]int32, error) {
	if j < 0 {
		return nil, nil
	}
	t := c.t(j)
	if !t.IsConst() || t.DType != Int32 {
		return nil, c.errorf("bias %q must be constant int32", t.Name)
	}
	if t.Shape.Elems() != n {
		return nil, c.errorf("bias %q has %d values for %d output channels", t.Name, t.Shape.Elems(), n)
	}
	b := make([]int32, n)
	for i := range b {
		b[i] = int32(binary.LittleEndian.Uint32(t.Const[4*i:]))
	}
	return b, nil
}

func (c *opCtx) fullyConnected(l *Layer) error {
	o, ok := c.op.Options.(*tflite.FullyConnectedOptions)
	if !ok {
		return c.errorf("options are missing (type id %d)", c.op.OptionsType)
	}
	if o.WeightsFormat != 0 {
		return c.errorf("weights format %d (shuffled) is not supported", o.WeightsFormat)
	}
	in, err := c.activationIn(0, Int8)
	if err != nil {
		return err
	}
	wj, err := c.input(1, false)
	if err != nil {
		return err
	}
	bj, err := c.input(2, true)
	if err != nil {
		return err
	}
	out, err := c.output(Int8)
	if err != nil {
		return err
	}
	ti, tw, to := c.t(in), c.t(wj), c.t(out)
	if !tw.IsConst() || tw.DType != Int8 || len(tw.Dims) != 2 {
		return c.errorf("weights %q must be constant 2-D int8, got %s %v", tw.Name, tw.DType, tw.Dims)
	}
	for _, j := range []int{in, wj, out} {
		if err := c.quantized(j, "tensor"); err != nil {
			return err
		}
	}
	outC, depth := tw.Dims[0], tw.Dims[1]
	if ti.Shape.Elems()%depth != 0 {
		return c.errorf("input of %d values is not a whole number of rows of %d", ti.Shape.Elems(), depth)
	}
	batches := ti.Shape.Elems() / depth
	if to.Shape.Elems() != batches*outC || to.Shape.C != outC {
		return c.errorf("output shape %v does not hold %d rows of %d", to.Dims, batches, outC)
	}
	p := &kernels.FCParams{
		Batches: batches, Depth: depth, OutC: outC,
		InputOffset: -ti.ZeroPoint, FilterOffset: -tw.ZeroPoint, OutputOffset: to.ZeroPoint,
	}
	if p.ActMin, p.ActMax, err = c.activationRange(o.Activation, to); err != nil {
		return err
	}
	switch len(tw.Scales) {
	case 1:
		m, s := fixedpoint.QuantizeMultiplier(ti.Scale * tw.Scale / to.Scale)
		p.Multiplier, p.Shift = []int32{m}, []int32{int32(s)}
	case outC:
		p.Multiplier, p.Shift = make([]int32, outC), make([]int32, outC)
		for o, s := range tw.Scales {
			m, sft := fixedpoint.QuantizeMultiplier(ti.Scale * float64(s) / to.Scale)
			p.Multiplier[o], p.Shift[o] = m, int32(sft)
		}
	default:
		return c.errorf("weights have %d scales for %d outputs", len(tw.Scales), outC)
	}
	if l.bias, err = c.bias(bj, outC); err != nil {
		return err
	}
	l.Op = OpFullyConnected
	l.Inputs, l.Output, l.Weights, l.Bias = []int{in}, out, wj, bj
	l.weights = tw.Int8s()
	p.WeightSums = kernels.FCWeightSums(p, l.weights)
	l.FC = p
	l.Activation = o.Activation.String()
	l.MACs = int64(batches) * int64(depth) * int64(outC)
	return nil
}

func (c *opCtx) pool(l *Layer) error {
	o, ok := c.op.Options.(*tflite.Pool2DOptions)
	if !ok {
		return c.errorf("options are missing (type id %d)", c.op.OptionsType)
	}
	if o.Padding != tflite.PaddingSame && o.Padding != tflite.PaddingValid {
		return c.errorf("padding %s is not SAME or VALID", o.Padding)
	}
	if !validStride(o.StrideW, o.StrideH, o.FilterW, o.FilterH) {
		return c.errorf("strides %dx%d or filter %dx%d are outside [1, %d]", o.StrideH, o.StrideW, o.FilterH, o.FilterW, MaxDim)
	}
	in, err := c.activationIn(0, Int8)
	if err != nil {
		return err
	}
	out, err := c.output(Int8)
	if err != nil {
		return err
	}
	ti, to := c.t(in), c.t(out)
	if len(ti.Dims) != 4 || len(to.Dims) != 4 {
		return c.errorf("input and output must be 4-D, got %v and %v", ti.Dims, to.Dims)
	}
	if err := c.quantized(out, "output"); err != nil {
		return err
	}
	if ti.Scale != to.Scale || ti.ZeroPoint != to.ZeroPoint {
		return c.errorf("input and output quantization differ (%g, %d vs %g, %d); int8 pooling does not rescale", ti.Scale, ti.ZeroPoint, to.Scale, to.ZeroPoint)
	}
	fh, fw := int(o.FilterH), int(o.FilterW)
	oh, padTop := padding(o.Padding, int(o.StrideH), 1, ti.Shape.H, fh)
	ow, padLeft := padding(o.Padding, int(o.StrideW), 1, ti.Shape.W, fw)
	want := kernels.Shape{N: ti.Shape.N, H: oh, W: ow, C: ti.Shape.C}
	if to.Shape != want {
		return c.errorf("output shape %v does not match the %v the input, filter, stride and %s padding give", to.Dims, want, o.Padding)
	}
	p := &kernels.PoolParams{In: ti.Shape, Out: to.Shape, FilterH: fh, FilterW: fw,
		StrideH: int(o.StrideH), StrideW: int(o.StrideW), PadTop: padTop, PadLeft: padLeft}
	if p.ActMin, p.ActMax, err = c.activationRange(o.Activation, to); err != nil {
		return err
	}
	l.Op = OpMaxPool2D
	if c.code == tflite.OpAveragePool2D {
		l.Op = OpAveragePool2D
	}
	l.Inputs, l.Output, l.Pool = []int{in}, out, p
	l.Activation, l.Padding = o.Activation.String(), o.Padding.String()
	l.MACs = int64(to.Shape.Elems()) * int64(fh*fw)
	return nil
}

func (c *opCtx) elementwise(l *Layer) error {
	var act tflite.Activation
	switch o := c.op.Options.(type) {
	case *tflite.AddOptions:
		act = o.Activation
	case *tflite.MulOptions:
		act = o.Activation
	case nil:
	default:
		return c.errorf("has options of type id %d", c.op.OptionsType)
	}
	a, err := c.activationIn(0, Int8)
	if err != nil {
		return err
	}
	b, err := c.activationIn(1, Int8)
	if err != nil {
		return err
	}
	out, err := c.output(Int8)
	if err != nil {
		return err
	}
	ta, tb, to := c.t(a), c.t(b), c.t(out)
	if ta.Shape != tb.Shape || ta.Shape != to.Shape {
		return c.errorf("shapes %v, %v -> %v differ; broadcasting is not supported", ta.Dims, tb.Dims, to.Dims)
	}
	for _, j := range []int{a, b, out} {
		if err := c.quantized(j, "tensor"); err != nil {
			return err
		}
	}
	lo, hi, err := c.activationRange(act, to)
	if err != nil {
		return err
	}
	l.Inputs, l.Output = []int{a, b}, out
	l.Activation = act.String()
	l.MACs = int64(to.Shape.Elems())
	if c.code == tflite.OpMul {
		m, s := fixedpoint.QuantizeMultiplier(ta.Scale * tb.Scale / to.Scale)
		l.Op = OpMul
		l.Mul = &kernels.MulParams{Shape: to.Shape, Input1Offset: -ta.ZeroPoint, Input2Offset: -tb.ZeroPoint,
			OutputMult: m, OutputShift: s, OutputOffset: to.ZeroPoint, ActMin: lo, ActMax: hi}
		return nil
	}
	const leftShift = 20 // TFLite's headroom for int8 ADD
	twiceMax := 2 * float64(max(float32(ta.Scale), float32(tb.Scale)))
	m1, s1 := fixedpoint.QuantizeMultiplierSmallerThanOne(ta.Scale / twiceMax)
	m2, s2 := fixedpoint.QuantizeMultiplierSmallerThanOne(tb.Scale / twiceMax)
	mo, so := fixedpoint.QuantizeMultiplierSmallerThanOne(twiceMax / (float64(int(1)<<leftShift) * to.Scale))
	if s1 > 0 || s2 > 0 || so > 0 {
		return c.errorf("the input or output scales need a rescale larger than one (%g, %g -> %g)", ta.Scale, tb.Scale, to.Scale)
	}
	l.Op = OpAdd
	l.Add = &kernels.AddParams{Shape: to.Shape, Input1Offset: -ta.ZeroPoint, Input2Offset: -tb.ZeroPoint,
		LeftShift: leftShift, Input1Mult: m1, Input1Shift: s1, Input2Mult: m2, Input2Shift: s2,
		OutputMult: mo, OutputShift: so, OutputOffset: to.ZeroPoint, ActMin: lo, ActMax: hi}
	l.Add.Prepare()
	return nil
}

func (c *opCtx) reshape(l *Layer) error {
	in, err := c.input(0, false)
	if err != nil {
		return err
	}
	ti := c.t(in)
	if ti.IsConst() {
		return c.errorf("input %q is constant", ti.Name)
	}
	out, err := c.output(ti.DType)
	if err != nil {
		return err
	}
	to := c.t(out)
	if ti.Shape.Elems() != to.Shape.Elems() {
		return c.errorf("input %v and output %v hold different numbers of elements", ti.Dims, to.Dims)
	}
	if ti.DType == Int8 && (ti.Scale != to.Scale || ti.ZeroPoint != to.ZeroPoint) {
		return c.errorf("input and output quantization differ")
	}
	l.Op = OpReshape
	l.Inputs, l.Output = []int{in}, out
	return nil
}

func (c *opCtx) softmax(l *Layer) error {
	beta := float32(1)
	if o, ok := c.op.Options.(*tflite.SoftmaxOptions); ok {
		beta = o.Beta
	}
	if !(beta > 0) || math.IsInf(float64(beta), 0) {
		return c.errorf("beta %g is not a positive finite number", beta)
	}
	in, out, err := c.unary(Int8)
	if err != nil {
		return err
	}
	ti, to := c.t(in), c.t(out)
	if to.ZeroPoint != -128 || to.Scale != 1.0/256 {
		return c.errorf("int8 softmax output must have scale 1/256 and zero point -128, got %g and %d", to.Scale, to.ZeroPoint)
	}
	m, shift := fixedpoint.PreprocessSoftmaxScaling(float64(beta), ti.Scale, kernels.ScaledDiffIntegerBits)
	if shift < 0 || shift > 31 {
		return c.errorf("input scale %g gives a softmax shift %d outside [0, 31]", ti.Scale, shift)
	}
	l.Op = OpSoftmax
	l.Inputs, l.Output = []int{in}, out
	l.Softmax = &kernels.SoftmaxParams{Shape: to.Shape, InputMult: m, InputLeftShift: shift,
		DiffMin: -fixedpoint.SoftmaxInputRadius(kernels.ScaledDiffIntegerBits, shift)}
	l.MACs = int64(to.Shape.Elems())
	return nil
}

func (c *opCtx) quantize(l *Layer) error {
	in, err := c.input(0, false)
	if err != nil {
		return err
	}
	ti := c.t(in)
	out, err := c.output(Int8)
	if err != nil {
		return err
	}
	to := c.t(out)
	if ti.IsConst() || ti.Shape != to.Shape {
		return c.errorf("input must be an activation of the output's shape")
	}
	if err := c.quantized(out, "output"); err != nil {
		return err
	}
	l.Op = OpQuantize
	l.Inputs, l.Output = []int{in}, out
	l.MACs = int64(to.Shape.Elems())
	switch ti.DType {
	case Float32:
		if in != c.im.m.Input {
			return c.errorf("a float32 input is supported only at the model's input edge")
		}
		l.Edge = &EdgeQuant{Scale: to.Scale, ZeroPoint: to.ZeroPoint, Shape: to.Shape}
	case Int8:
		if err := c.quantized(in, "input"); err != nil {
			return err
		}
		m, s := fixedpoint.QuantizeMultiplier(ti.Scale / to.Scale)
		l.Requant = &kernels.RequantizeParams{Shape: to.Shape, InputOffset: -ti.ZeroPoint, Multiplier: m, Shift: s, OutputOffset: to.ZeroPoint}
	default:
		return c.errorf("input type %s is not supported", ti.DType)
	}
	return nil
}

// unary imports a quantized int8 activation input and an output of type
// outType with the same shape.
func (c *opCtx) unary(outType DType) (in, out int, err error) {
	if in, err = c.activationIn(0, Int8); err != nil {
		return 0, 0, err
	}
	if out, err = c.output(outType); err != nil {
		return 0, 0, err
	}
	if ti, to := c.t(in), c.t(out); ti.Shape != to.Shape {
		return 0, 0, c.errorf("input %v and output %v shapes differ", ti.Dims, to.Dims)
	}
	return in, out, c.quantized(in, "input")
}

func (c *opCtx) dequantize(l *Layer) error {
	in, out, err := c.unary(Float32)
	if err != nil {
		return err
	}
	ti := c.t(in)
	if len(c.im.sg.Outputs) != 1 || c.op.Outputs[0] != c.im.sg.Outputs[0] {
		return c.errorf("a float32 output is supported only at the model's output edge")
	}
	l.Op = OpDequantize
	l.Inputs, l.Output = []int{in}, out
	l.Edge = &EdgeQuant{Scale: ti.Scale, ZeroPoint: ti.ZeroPoint, Shape: ti.Shape}
	l.MACs = int64(ti.Shape.Elems())
	return nil
}
