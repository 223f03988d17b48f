// Package tflite reads and writes TensorFlow Lite model files (.tflite
// flatbuffers, schema version 3, file identifier "TFL3").
//
// Only the subset of the schema a test harness for small quantized models
// needs is modelled: the model's operator codes, subgraphs, tensors with
// their quantization parameters, operators with the builtin options of the
// common convolution, pooling, fully connected, softmax, reshape,
// concatenation, add and mul operators, and the constant buffers. Fields
// outside the subset (metadata, signature definitions, custom options,
// shape signatures, intermediates) are skipped when reading and not written.
//
// Decode verifies the file before it reads any value: every offset, vtable,
// vector and string is checked to lie inside the file and to be aligned, the
// values decoded are charged against a budget proportional to the file size
// (so offsets that point many times at the same data cannot blow up memory),
// and tensor, buffer and operator-code indices are checked to be in range.
// Bad input yields a one-line error naming the field, such as
//
//	tflite: subgraphs[0].tensors[3].shape: vector of 1000000 elements at offset 1234 runs past the end of the 1024-byte file
//
// never a panic. Constant data is not copied: Buffer.Data aliases the bytes
// passed to Decode.
//
// The accessors are written by hand against the schema; no generated code is
// used. Field slots follow the flatbuffers rule vtable offset = 4 + 2*index.
package tflite

// Quantization holds a tensor's affine quantization parameters:
// real = Scale[i] * (q - ZeroPoint[i]), with i the index along
// QuantizedDimension when there is more than one scale (per-channel
// quantization). Each slice is nil when its field is absent from the file and
// non-nil (possibly empty) when present.
type Quantization struct {
	Min, Max           []float32
	Scale              []float32
	ZeroPoint          []int64
	QuantizedDimension int32
}

// Tensor describes one tensor of a subgraph.
type Tensor struct {
	// Name is the tensor's name (debugging only; may be empty).
	Name string
	// Type is the element type.
	Type TensorType
	// Shape is the tensor's dimensions, NHWC for images. It is nil when the
	// field is absent and empty for a scalar written with an empty shape.
	Shape []int32
	// Buffer indexes Model.Buffers; 0 is the empty buffer of tensors without
	// constant data.
	Buffer uint32
	// Quant is nil when the tensor has no quantization table.
	Quant *Quantization
	// IsVariable marks a variable (stateful) tensor.
	IsVariable bool
}

// OperatorCode identifies the kind of an operator: a builtin operator, or a
// custom one named by Custom (with Builtin then normally 32, CUSTOM).
type OperatorCode struct {
	// Builtin is the effective builtin code: the larger of the schema's
	// deprecated_builtin_code byte and its builtin_code field.
	Builtin BuiltinOp
	// Custom is the custom operator name, empty for builtins.
	Custom string
	// Version is the operator version (the schema's default is 1).
	Version int32
}

// Operator is one node of a subgraph.
type Operator struct {
	// OpcodeIndex indexes Model.OperatorCodes.
	OpcodeIndex uint32
	// Inputs and Outputs index Subgraph.Tensors; -1 marks an optional input
	// that is absent.
	Inputs, Outputs []int32
	// OptionsType is the BuiltinOptions union type id (0 = none). Decode
	// always fills it in, also for option tables this package does not model.
	OptionsType uint8
	// Options is one of *Conv2DOptions, *DepthwiseConv2DOptions,
	// *Pool2DOptions, *FullyConnectedOptions, *SoftmaxOptions, *AddOptions,
	// *MulOptions, *ReshapeOptions or *ConcatenationOptions, or nil when the
	// operator has no options or options of a type this package does not
	// model (then OptionsType still tells which; the consumer decides whether
	// that is an error). It is also nil when OptionsType names a modelled
	// type but the file holds no options table for it.
	Options any
}

// Conv2DOptions are the options of CONV_2D (union type id 1).
type Conv2DOptions struct {
	Padding              Padding
	StrideW, StrideH     int32
	Activation           Activation
	DilationW, DilationH int32 // the schema's default is 1
}

// DepthwiseConv2DOptions are the options of DEPTHWISE_CONV_2D (union type
// id 2).
type DepthwiseConv2DOptions struct {
	Padding                           Padding
	StrideW, StrideH, DepthMultiplier int32
	Activation                        Activation
	DilationW, DilationH              int32 // the schema's default is 1
}

// Pool2DOptions are the options of AVERAGE_POOL_2D and MAX_POOL_2D (union
// type id 5).
type Pool2DOptions struct {
	Padding                            Padding
	StrideW, StrideH, FilterW, FilterH int32
	Activation                         Activation
}

// FullyConnectedOptions are the options of FULLY_CONNECTED (union type id 8).
type FullyConnectedOptions struct {
	Activation Activation
	// WeightsFormat is 0 (DEFAULT) or 1 (SHUFFLED4x16INT8).
	WeightsFormat                         int8
	KeepNumDims, AsymmetricQuantizeInputs bool
}

// SoftmaxOptions are the options of SOFTMAX (union type id 9).
type SoftmaxOptions struct {
	Beta float32
}

// AddOptions are the options of ADD (union type id 11).
type AddOptions struct {
	Activation    Activation
	PotScaleInt16 bool // the schema's default is true
}

// MulOptions are the options of MUL (union type id 21).
type MulOptions struct {
	Activation Activation
}

// ReshapeOptions are the options of RESHAPE (union type id 17). NewShape is
// nil when absent (the shape then comes from the operator's second input).
type ReshapeOptions struct {
	NewShape []int32
}

// ConcatenationOptions are the options of CONCATENATION (union type id 10).
type ConcatenationOptions struct {
	Axis       int32
	Activation Activation
}

// Subgraph is one graph of the model; subgraph 0 is the main graph.
type Subgraph struct {
	Name    string
	Tensors []Tensor
	// Inputs and Outputs index Tensors.
	Inputs, Outputs []int32
	// Operators are in execution order.
	Operators []Operator
}

// Buffer is a constant data buffer referenced by tensors.
type Buffer struct {
	// Data is the raw little-endian contents, nil when empty. After Decode it
	// aliases the decoded file's bytes (it is not a copy); its capacity is
	// clipped, so appending to it never overwrites the file.
	Data []byte
}

// Model is a decoded .tflite file.
type Model struct {
	// Version is the schema version; Decode accepts only 3, and Encode writes
	// 3 when it is 0.
	Version     uint32
	Description string
	// OperatorCodes are indexed by Operator.OpcodeIndex.
	OperatorCodes []OperatorCode
	Subgraphs     []Subgraph
	// Buffers are indexed by Tensor.Buffer. By TFLite convention buffer 0 is
	// the empty buffer; neither Decode nor Encode enforces that.
	Buffers []Buffer
}

// Opcode returns the index of op's operator code in m, adding one at
// version when op has none yet: what a builder of a model calls for each
// operator it adds.
func (m *Model) Opcode(op BuiltinOp, version int32) uint32 {
	for i, oc := range m.OperatorCodes {
		if oc.Builtin == op {
			return uint32(i)
		}
	}
	m.OperatorCodes = append(m.OperatorCodes, OperatorCode{Builtin: op, Version: version})
	return uint32(len(m.OperatorCodes) - 1)
}

// AddTensor appends a tensor to sg, a subgraph being built for m, with its
// constant data in a new buffer of m when data is not nil, and returns the
// tensor's index.
func (m *Model) AddTensor(sg *Subgraph, name string, typ TensorType, dims []int32, q *Quantization, data []byte) int32 {
	t := Tensor{Name: name, Type: typ, Shape: dims, Quant: q}
	if data != nil {
		t.Buffer = uint32(len(m.Buffers))
		m.Buffers = append(m.Buffers, Buffer{Data: data})
	}
	sg.Tensors = append(sg.Tensors, t)
	return int32(len(sg.Tensors) - 1)
}

// SchemaVersion is the TFLite schema version this package reads and writes.
const SchemaVersion = 3

// FileIdentifier is the flatbuffers file identifier of .tflite files, stored
// at bytes 4..8.
const FileIdentifier = "TFL3"
