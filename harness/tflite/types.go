package tflite

import "strconv"

// TensorType is the element type of a tensor (the schema's TensorType enum).
type TensorType int8

// Tensor element types, with the numbers the schema gives them.
const (
	TensorFloat32    TensorType = 0
	TensorFloat16    TensorType = 1
	TensorInt32      TensorType = 2
	TensorUint8      TensorType = 3
	TensorInt64      TensorType = 4
	TensorString     TensorType = 5
	TensorBool       TensorType = 6
	TensorInt16      TensorType = 7
	TensorComplex64  TensorType = 8
	TensorInt8       TensorType = 9
	TensorFloat64    TensorType = 10
	TensorComplex128 TensorType = 11
	TensorUint64     TensorType = 12
	TensorResource   TensorType = 13
	TensorVariant    TensorType = 14
	TensorUint32     TensorType = 15
	TensorUint16     TensorType = 16
	TensorInt4       TensorType = 17
)

type typeInfo struct {
	name string
	size int
}

var tensorTypes = [...]typeInfo{
	TensorFloat32:    {"FLOAT32", 4},
	TensorFloat16:    {"FLOAT16", 2},
	TensorInt32:      {"INT32", 4},
	TensorUint8:      {"UINT8", 1},
	TensorInt64:      {"INT64", 8},
	TensorString:     {"STRING", 0},
	TensorBool:       {"BOOL", 1},
	TensorInt16:      {"INT16", 2},
	TensorComplex64:  {"COMPLEX64", 8},
	TensorInt8:       {"INT8", 1},
	TensorFloat64:    {"FLOAT64", 8},
	TensorComplex128: {"COMPLEX128", 16},
	TensorUint64:     {"UINT64", 8},
	TensorResource:   {"RESOURCE", 0},
	TensorVariant:    {"VARIANT", 0},
	TensorUint32:     {"UINT32", 4},
	TensorUint16:     {"UINT16", 2},
	TensorInt4:       {"INT4", 0},
}

// String returns the schema name of t ("INT8"), or "TensorType(n)" for a
// value the schema subset does not know.
func (t TensorType) String() string {
	if t >= 0 && int(t) < len(tensorTypes) {
		return tensorTypes[t].name
	}
	return "TensorType(" + strconv.Itoa(int(t)) + ")"
}

// Size returns the size in bytes of one element of type t. It returns 0 for
// types without a fixed per-element byte size: STRING, RESOURCE, VARIANT,
// INT4 (packed two elements per byte) and unknown values.
func (t TensorType) Size() int {
	if t >= 0 && int(t) < len(tensorTypes) {
		return tensorTypes[t].size
	}
	return 0
}

// BuiltinOp is a builtin operator code (the schema's BuiltinOperator enum).
// Only the codes the harness uses have names here; every other code is still
// a valid BuiltinOp.
type BuiltinOp int32

// Builtin operator codes, with the numbers the schema gives them.
const (
	OpAdd             BuiltinOp = 0
	OpAveragePool2D   BuiltinOp = 1
	OpConcatenation   BuiltinOp = 2
	OpConv2D          BuiltinOp = 3
	OpDepthwiseConv2D BuiltinOp = 4
	OpDequantize      BuiltinOp = 6
	OpFullyConnected  BuiltinOp = 9
	OpLogistic        BuiltinOp = 14
	OpMaxPool2D       BuiltinOp = 17
	OpMul             BuiltinOp = 18
	OpRelu            BuiltinOp = 19
	OpReluN1To1       BuiltinOp = 20
	OpRelu6           BuiltinOp = 21
	OpReshape         BuiltinOp = 22
	OpSoftmax         BuiltinOp = 25
	OpTanh            BuiltinOp = 28
	OpPad             BuiltinOp = 34
	OpMean            BuiltinOp = 40
	OpSqueeze         BuiltinOp = 43
	OpQuantize        BuiltinOp = 114
)

var opNames = map[BuiltinOp]string{
	OpAdd:             "ADD",
	OpAveragePool2D:   "AVERAGE_POOL_2D",
	OpConcatenation:   "CONCATENATION",
	OpConv2D:          "CONV_2D",
	OpDepthwiseConv2D: "DEPTHWISE_CONV_2D",
	OpDequantize:      "DEQUANTIZE",
	OpFullyConnected:  "FULLY_CONNECTED",
	OpLogistic:        "LOGISTIC",
	OpMaxPool2D:       "MAX_POOL_2D",
	OpMul:             "MUL",
	OpRelu:            "RELU",
	OpReluN1To1:       "RELU_N1_TO_1",
	OpRelu6:           "RELU6",
	OpReshape:         "RESHAPE",
	OpSoftmax:         "SOFTMAX",
	OpTanh:            "TANH",
	OpPad:             "PAD",
	OpMean:            "MEAN",
	OpSqueeze:         "SQUEEZE",
	OpQuantize:        "QUANTIZE",
}

// String returns the schema name of op ("CONV_2D"), or "BUILTIN_<n>" for a
// code without a name here.
func (op BuiltinOp) String() string {
	if s, ok := opNames[op]; ok {
		return s
	}
	return "BUILTIN_" + strconv.Itoa(int(op))
}

// Activation is a fused activation function (the schema's
// ActivationFunctionType enum).
type Activation int8

// Fused activation functions.
const (
	ActNone      Activation = 0
	ActRelu      Activation = 1
	ActReluN1To1 Activation = 2
	ActRelu6     Activation = 3
	ActTanh      Activation = 4
	ActSignBit   Activation = 5
)

var actNames = [...]string{"NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT"}

// String returns the schema name of a ("RELU6"), or "Activation(n)" for an
// unknown value.
func (a Activation) String() string {
	if a >= 0 && int(a) < len(actNames) {
		return actNames[a]
	}
	return "Activation(" + strconv.Itoa(int(a)) + ")"
}

// Padding is the padding scheme of a convolution or pooling operator.
type Padding int8

// Padding schemes.
const (
	PaddingSame  Padding = 0
	PaddingValid Padding = 1
)

// PaddingOf is PaddingSame when same, else PaddingValid.
func PaddingOf(same bool) Padding {
	if same {
		return PaddingSame
	}
	return PaddingValid
}

// String returns "SAME", "VALID", or "Padding(n)" for an unknown value.
func (p Padding) String() string {
	switch p {
	case PaddingSame:
		return "SAME"
	case PaddingValid:
		return "VALID"
	}
	return "Padding(" + strconv.Itoa(int(p)) + ")"
}

// Union type ids of the schema's BuiltinOptions union that this package
// decodes into Go structs.
const (
	optConv2D          = 1
	optDepthwiseConv2D = 2
	optPool2D          = 5
	optFullyConnected  = 8
	optSoftmax         = 9
	optConcatenation   = 10
	optAdd             = 11
	optReshape         = 17
	optMul             = 21
)
