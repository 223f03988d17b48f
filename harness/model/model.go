// Package model is the harness's internal form of a quantized network: the
// layers in execution order with their tensors, the quantization already
// turned into integer multipliers and shifts (once, at import), and a memory
// plan for the activations. The reference executor, the schedulers, the
// simulated board and the plan encoding for the firmware all consume it.
package model

import (
	"fmt"
	"unsafe"

	"github.com/batteryless/harness/harness/fixedpoint"
	"github.com/batteryless/harness/harness/kernels"
)

// DType is a tensor element type the harness computes with.
type DType uint8

// Element types.
const (
	Int8 DType = iota + 1
	Int32
	Float32
)

// Size is the size of one element in bytes.
func (d DType) Size() int {
	switch d {
	case Int8:
		return 1
	case Int32, Float32:
		return 4
	}
	return 0
}

func (d DType) String() string {
	switch d {
	case Int8:
		return "int8"
	case Int32:
		return "int32"
	case Float32:
		return "float32"
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Op is a layer's operator.
type Op uint8

// Operators of the reference executor.
const (
	OpConv2D Op = iota + 1
	OpDepthwiseConv2D
	OpFullyConnected
	OpAveragePool2D
	OpMaxPool2D
	OpAdd
	OpMul
	OpReshape
	OpSoftmax
	OpQuantize   // float32 -> int8 at the input edge, or int8 -> int8 requantization
	OpDequantize // int8 -> float32 at the output edge
)

var opNames = [...]string{"", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D",
	"MAX_POOL_2D", "ADD", "MUL", "RESHAPE", "SOFTMAX", "QUANTIZE", "DEQUANTIZE"}

func (o Op) String() string {
	if int(o) < len(opNames) && o != 0 {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Tensor is one tensor of the model: an activation (placed in the arena by
// the memory plan) or a constant (weights, biases) whose bytes alias the
// model file.
type Tensor struct {
	Index     int
	Name      string
	DType     DType
	Dims      []int         // as the file gives them
	Shape     kernels.Shape // Dims padded to NHWC
	Scale     float64       // the (first) quantization scale; 0 when not quantized
	Scales    []float32     // every scale, for per-channel quantized weights
	ZeroPoint int32
	Const     []byte // constant data, nil for activations
	Offset    int    // byte offset of an activation in the arena; -1 for constants
}

// Bytes is the tensor's size in bytes.
func (t *Tensor) Bytes() int { return t.Shape.Elems() * t.DType.Size() }

// IsConst reports whether the tensor holds constant data.
func (t *Tensor) IsConst() bool { return t.Const != nil }

// Int8s views constant int8 data without copying.
func (t *Tensor) Int8s() []int8 { return BytesAsInt8(t.Const) }

// BytesAsInt8 reinterprets a byte slice as int8 values without copying.
func BytesAsInt8(b []byte) []int8 {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*int8)(unsafe.Pointer(&b[0])), len(b))
}

// Layer is one operator of the network with everything its kernel needs.
type Layer struct {
	Index  int
	Op     Op
	Inputs []int // activation tensors read (one, or two for ADD and MUL)
	Output int   // the activation tensor written

	Weights int // constant weights tensor, -1 if none
	Bias    int // constant bias tensor, -1 if none

	// Kernel parameters: exactly one is set, as Op says.
	Conv    *kernels.ConvParams
	FC      *kernels.FCParams
	Pool    *kernels.PoolParams
	Add     *kernels.AddParams
	Mul     *kernels.MulParams
	Softmax *kernels.SoftmaxParams
	Requant *kernels.RequantizeParams
	Edge    *EdgeQuant // OpQuantize from float32, OpDequantize to float32

	Activation string // fused activation, for people
	Padding    string // SAME or VALID, for people
	MACs       int64  // multiply-accumulates (pooling and element-wise: one per window element or output)

	weights []int8
	bias    []int32
}

// EdgeQuant converts between float32 and int8 at the model's edges.
type EdgeQuant struct {
	Scale     float64
	ZeroPoint int32
	Shape     kernels.Shape
}

// WeightsData returns the layer's weights, nil if it has none.
func (l *Layer) WeightsData() []int8 { return l.weights }

// BiasData returns the layer's bias, nil if it has none.
func (l *Layer) BiasData() []int32 { return l.bias }

// Model is an imported network.
type Model struct {
	Name    string
	Tensors []*Tensor
	Layers  []*Layer
	Input   int // the graph's input tensor
	Output  int // the graph's output tensor
	Plan    MemoryPlan
}

// InputTensor is the graph's input.
func (m *Model) InputTensor() *Tensor { return m.Tensors[m.Input] }

// OutputTensor is the graph's output.
func (m *Model) OutputTensor() *Tensor { return m.Tensors[m.Output] }

// OutputShape is the shape of a layer's output tensor.
func (m *Model) OutputShape(l *Layer) kernels.Shape { return m.Tensors[l.Output].Shape }

// MACs is the total of multiply-accumulates of one inference.
func (m *Model) MACs() int64 {
	var n int64
	for _, l := range m.Layers {
		n += l.MACs
	}
	return n
}

// WeightBytes is the total size of the constant tensors the layers use.
func (m *Model) WeightBytes() int {
	n := 0
	for _, t := range m.Tensors {
		if t.IsConst() {
			n += len(t.Const)
		}
	}
	return n
}

// WithRounding returns a model that requantizes with rounding r: the same
// tensors, weights and plan, with copies of the layers and of their kernel
// parameters. The receiver is unchanged.
func (m *Model) WithRounding(r fixedpoint.Rounding) *Model {
	c := *m
	c.Layers = make([]*Layer, len(m.Layers))
	for i, l := range m.Layers {
		lc := *l
		switch {
		case l.Conv != nil:
			p := *l.Conv
			p.Rounding, lc.Conv = r, &p
		case l.FC != nil:
			p := *l.FC
			p.Rounding, lc.FC = r, &p
		case l.Mul != nil:
			p := *l.Mul
			p.Rounding, lc.Mul = r, &p
		case l.Requant != nil:
			p := *l.Requant
			p.Rounding, lc.Requant = r, &p
		}
		c.Layers[i] = &lc
	}
	return &c
}

// PackBytes is the memory of the fast kernels' prepared weights (int16
// copies of the convolutions' weights, padded), besides the weights
// themselves, which alias the model file.
func (m *Model) PackBytes() int {
	n := 0
	for _, l := range m.Layers {
		if l.Conv != nil && l.Conv.Pack != nil {
			n += l.Conv.Pack.Bytes()
		}
	}
	return n
}
