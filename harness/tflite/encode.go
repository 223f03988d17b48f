package tflite

import (
	"fmt"
	"math"

	flatbuffers "github.com/google/flatbuffers/go"
)

// maxEncodeData bounds the total constant data Encode accepts: the
// flatbuffers Go builder cannot grow its buffer past 1 GiB, and the rest of
// the model needs room too.
const maxEncodeData = 1<<30 - 1<<24

// Encode writes m as a .tflite flatbuffer with file identifier "TFL3" and
// schema version 3. The output is deterministic: the same Model always gives
// the same bytes. Each buffer's data is aligned to 16 bytes in the file.
//
// Each operator code is written with both deprecated_builtin_code (the code
// saturated at 127) and builtin_code, so old and new readers agree. Empty
// strings, nil slices, a nil Quant and nil Buffer.Data are omitted; non-nil
// empty slices are written as empty vectors. An operator whose Options is nil
// is written with OptionsType alone; otherwise OptionsType must be 0 (it is
// then derived from the Options type) or match the Options type.
//
// By TFLite convention buffer 0 should be the empty buffer (tensors without
// constant data point at it); Encode does not enforce that. Encode checks
// what Decode would check (index ranges, version 0 or 3, non-negative
// operator codes), so what it writes decodes again.
func Encode(m *Model) (out []byte, err error) {
	if m == nil {
		return nil, &fieldError{op: "encode", msg: "nil model"}
	}
	if err := checkEncodable(m); err != nil {
		if fe, ok := err.(*fieldError); ok {
			fe.op = "encode"
		}
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, &fieldError{op: "encode", msg: fmt.Sprint(p)}
		}
	}()
	size := 4096
	for i := range m.Buffers {
		size += len(m.Buffers[i].Data) + 32
	}
	e := encoder{b: flatbuffers.NewBuilder(size)}
	return e.model(m), nil
}

// checkEncodable checks what Encode needs beyond the structure Go enforces.
func checkEncodable(m *Model) error {
	if m.Version != 0 && m.Version != SchemaVersion {
		return in(errorf("schema version %d is not supported (want %d, or 0 for %d)", m.Version, SchemaVersion, SchemaVersion), "version")
	}
	total := 0
	for i := range m.Buffers {
		total += len(m.Buffers[i].Data)
		if total > maxEncodeData {
			return inElem(errorf("buffers hold more than %d bytes of data, more than the flatbuffers builder can write", maxEncodeData), "buffers", i)
		}
	}
	for i, oc := range m.OperatorCodes {
		if oc.Builtin < 0 {
			return inElem(in(errorf("negative operator code %d", oc.Builtin), "builtin_code"), "operator_codes", i)
		}
	}
	for i := range m.Subgraphs {
		for k := range m.Subgraphs[i].Operators {
			op := &m.Subgraphs[i].Operators[k]
			typ, err := optionsType(op.Options)
			if err == nil && typ != 0 && op.OptionsType != 0 && op.OptionsType != typ {
				err = errorf("OptionsType %d does not match options of type %T (union type %d)", op.OptionsType, op.Options, typ)
			}
			if err != nil {
				return inElem(inElem(in(err, "builtin_options"), "operators", k), "subgraphs", i)
			}
		}
	}
	return validateIndices(m)
}

// optionsType returns the union type id of o, 0 for nil (also a nil pointer
// of an options type).
func optionsType(o any) (uint8, error) {
	switch o := o.(type) {
	case nil:
		return 0, nil
	case *Conv2DOptions:
		return ifNotNil(o != nil, optConv2D), nil
	case *DepthwiseConv2DOptions:
		return ifNotNil(o != nil, optDepthwiseConv2D), nil
	case *Pool2DOptions:
		return ifNotNil(o != nil, optPool2D), nil
	case *FullyConnectedOptions:
		return ifNotNil(o != nil, optFullyConnected), nil
	case *SoftmaxOptions:
		return ifNotNil(o != nil, optSoftmax), nil
	case *ConcatenationOptions:
		return ifNotNil(o != nil, optConcatenation), nil
	case *AddOptions:
		return ifNotNil(o != nil, optAdd), nil
	case *ReshapeOptions:
		return ifNotNil(o != nil, optReshape), nil
	case *MulOptions:
		return ifNotNil(o != nil, optMul), nil
	}
	return 0, errorf("options of type %T are not supported (want a pointer to one of this package's options structs)", o)
}

func ifNotNil(notNil bool, typ uint8) uint8 {
	if notNil {
		return typ
	}
	return 0
}

type encoder struct {
	b *flatbuffers.Builder
}

// The builder writes back to front, so objects must be complete before the
// object that refers to them is started. Buffers come first so that their
// data ends up at the end of the file, as in files written by TFLite.
func (e *encoder) model(m *Model) []byte {
	b := e.b
	var buffers, subgraphs, opcodes, desc flatbuffers.UOffsetT
	if m.Buffers != nil {
		offs := make([]flatbuffers.UOffsetT, len(m.Buffers))
		for i := range m.Buffers {
			offs[i] = e.buffer(&m.Buffers[i])
		}
		buffers = b.CreateVectorOfTables(offs)
	}
	if m.Subgraphs != nil {
		offs := make([]flatbuffers.UOffsetT, len(m.Subgraphs))
		for i := range m.Subgraphs {
			offs[i] = e.subgraph(&m.Subgraphs[i])
		}
		subgraphs = b.CreateVectorOfTables(offs)
	}
	if m.OperatorCodes != nil {
		offs := make([]flatbuffers.UOffsetT, len(m.OperatorCodes))
		for i := range m.OperatorCodes {
			offs[i] = e.operatorCode(&m.OperatorCodes[i])
		}
		opcodes = b.CreateVectorOfTables(offs)
	}
	desc = e.str(m.Description)

	b.StartObject(modelBuffers + 1)
	b.PrependUint32Slot(modelVersion, SchemaVersion, 0)
	e.ref(modelOperatorCodes, opcodes)
	e.ref(modelSubgraphs, subgraphs)
	e.ref(modelDescription, desc)
	e.ref(modelBuffers, buffers)
	root := b.EndObject()
	b.FinishWithFileIdentifier(root, []byte(FileIdentifier))
	return b.FinishedBytes()
}

// ref sets uoffset field idx of the current object unless off is 0 (absent).
func (e *encoder) ref(idx int, off flatbuffers.UOffsetT) {
	if off != 0 {
		e.b.PrependUOffsetTSlot(idx, off, 0)
	}
}

func (e *encoder) str(s string) flatbuffers.UOffsetT {
	if s == "" {
		return 0
	}
	return e.b.CreateString(s)
}

func (e *encoder) int32s(v []int32) flatbuffers.UOffsetT {
	if v == nil {
		return 0
	}
	e.b.StartVector(4, len(v), 4)
	for i := len(v) - 1; i >= 0; i-- {
		e.b.PrependInt32(v[i])
	}
	return e.b.EndVector(len(v))
}

func (e *encoder) float32s(v []float32) flatbuffers.UOffsetT {
	if v == nil {
		return 0
	}
	e.b.StartVector(4, len(v), 4)
	for i := len(v) - 1; i >= 0; i-- {
		e.b.PrependFloat32(v[i])
	}
	return e.b.EndVector(len(v))
}

func (e *encoder) int64s(v []int64) flatbuffers.UOffsetT {
	if v == nil {
		return 0
	}
	e.b.StartVector(8, len(v), 8)
	for i := len(v) - 1; i >= 0; i-- {
		e.b.PrependInt64(v[i])
	}
	return e.b.EndVector(len(v))
}

func (e *encoder) buffer(buf *Buffer) flatbuffers.UOffsetT {
	b := e.b
	var data flatbuffers.UOffsetT
	if n := len(buf.Data); n > 0 {
		// StartVector reserves room for the n bytes and aligns the
		// vector's data to 16 bytes from the end of the buffer; Finish
		// pads the whole file to a multiple of 16, so the data is aligned
		// from the start of the file as well.
		b.StartVector(1, n, 16)
		for i := n - 1; i >= 0; i-- {
			b.PlaceByte(buf.Data[i])
		}
		data = b.EndVector(n)
	}
	b.StartObject(bufferData + 1)
	e.ref(bufferData, data)
	return b.EndObject()
}

func (e *encoder) operatorCode(oc *OperatorCode) flatbuffers.UOffsetT {
	b := e.b
	custom := e.str(oc.Custom)
	dep := int8(min(oc.Builtin, 127))
	b.StartObject(opcodeBuiltin + 1)
	e.ref(opcodeCustom, custom)
	b.PrependInt32Slot(opcodeVersion, oc.Version, 1)
	b.PrependInt32Slot(opcodeBuiltin, int32(oc.Builtin), 0)
	b.PrependInt8Slot(opcodeDeprecatedBuiltin, dep, 0)
	return b.EndObject()
}

func (e *encoder) subgraph(sg *Subgraph) flatbuffers.UOffsetT {
	b := e.b
	var tensors, operators flatbuffers.UOffsetT
	if sg.Tensors != nil {
		offs := make([]flatbuffers.UOffsetT, len(sg.Tensors))
		for i := range sg.Tensors {
			offs[i] = e.tensor(&sg.Tensors[i])
		}
		tensors = b.CreateVectorOfTables(offs)
	}
	inputs := e.int32s(sg.Inputs)
	outputs := e.int32s(sg.Outputs)
	if sg.Operators != nil {
		offs := make([]flatbuffers.UOffsetT, len(sg.Operators))
		for i := range sg.Operators {
			offs[i] = e.operator(&sg.Operators[i])
		}
		operators = b.CreateVectorOfTables(offs)
	}
	name := e.str(sg.Name)
	b.StartObject(subgraphName + 1)
	e.ref(subgraphTensors, tensors)
	e.ref(subgraphInputs, inputs)
	e.ref(subgraphOutputs, outputs)
	e.ref(subgraphOperators, operators)
	e.ref(subgraphName, name)
	return b.EndObject()
}

func (e *encoder) tensor(t *Tensor) flatbuffers.UOffsetT {
	b := e.b
	shape := e.int32s(t.Shape)
	name := e.str(t.Name)
	var quant flatbuffers.UOffsetT
	if q := t.Quant; q != nil {
		qmin := e.float32s(q.Min)
		qmax := e.float32s(q.Max)
		scale := e.float32s(q.Scale)
		zp := e.int64s(q.ZeroPoint)
		b.StartObject(quantDimension + 1)
		e.ref(quantMin, qmin)
		e.ref(quantMax, qmax)
		e.ref(quantScale, scale)
		e.ref(quantZeroPoint, zp)
		b.PrependInt32Slot(quantDimension, q.QuantizedDimension, 0)
		quant = b.EndObject()
	}
	b.StartObject(tensorIsVariable + 1)
	e.ref(tensorShape, shape)
	b.PrependUint32Slot(tensorBuffer, t.Buffer, 0)
	e.ref(tensorName, name)
	e.ref(tensorQuantization, quant)
	b.PrependInt8Slot(tensorType, int8(t.Type), 0)
	b.PrependBoolSlot(tensorIsVariable, t.IsVariable, false)
	return b.EndObject()
}

func (e *encoder) operator(op *Operator) flatbuffers.UOffsetT {
	b := e.b
	inputs := e.int32s(op.Inputs)
	outputs := e.int32s(op.Outputs)
	typ, options := e.options(op.Options)
	if typ == 0 {
		typ = op.OptionsType
	}
	b.StartObject(operatorOptions + 1)
	b.PrependUint32Slot(operatorOpcodeIndex, op.OpcodeIndex, 0)
	e.ref(operatorInputs, inputs)
	e.ref(operatorOutputs, outputs)
	e.ref(operatorOptions, options)
	b.PrependUint8Slot(operatorOptionsType, typ, 0)
	return b.EndObject()
}

// options writes the options table of o and returns its union type id, or
// 0, 0 for nil options. checkEncodable has vetted the type of o.
func (e *encoder) options(o any) (uint8, flatbuffers.UOffsetT) {
	b := e.b
	i8 := func(idx int, v int8, def int8) { b.PrependInt8Slot(idx, v, def) }
	i32 := func(idx int, v int32, def int32) { b.PrependInt32Slot(idx, v, def) }
	typ, _ := optionsType(o)
	switch o := o.(type) {
	case *Conv2DOptions:
		if o == nil {
			return 0, 0
		}
		b.StartObject(6)
		i32(1, o.StrideW, 0)
		i32(2, o.StrideH, 0)
		i32(4, o.DilationW, 1)
		i32(5, o.DilationH, 1)
		i8(0, int8(o.Padding), 0)
		i8(3, int8(o.Activation), 0)
	case *DepthwiseConv2DOptions:
		if o == nil {
			return 0, 0
		}
		b.StartObject(7)
		i32(1, o.StrideW, 0)
		i32(2, o.StrideH, 0)
		i32(3, o.DepthMultiplier, 0)
		i32(5, o.DilationW, 1)
		i32(6, o.DilationH, 1)
		i8(0, int8(o.Padding), 0)
		i8(4, int8(o.Activation), 0)
	case *Pool2DOptions:
		if o == nil {
			return 0, 0
		}
		b.StartObject(6)
		i32(1, o.StrideW, 0)
		i32(2, o.StrideH, 0)
		i32(3, o.FilterW, 0)
		i32(4, o.FilterH, 0)
		i8(0, int8(o.Padding), 0)
		i8(5, int8(o.Activation), 0)
	case *FullyConnectedOptions:
		if o == nil {
			return 0, 0
		}
		b.StartObject(4)
		i8(0, int8(o.Activation), 0)
		i8(1, o.WeightsFormat, 0)
		b.PrependBoolSlot(2, o.KeepNumDims, false)
		b.PrependBoolSlot(3, o.AsymmetricQuantizeInputs, false)
	case *SoftmaxOptions:
		if o == nil {
			return 0, 0
		}
		b.StartObject(1)
		// Written by hand rather than with PrependFloat32Slot, which
		// would drop -0 as equal to the default 0.
		if math.Float32bits(o.Beta) != 0 {
			b.PrependFloat32(o.Beta)
			b.Slot(0)
		}
	case *ConcatenationOptions:
		if o == nil {
			return 0, 0
		}
		b.StartObject(2)
		i32(0, o.Axis, 0)
		i8(1, int8(o.Activation), 0)
	case *AddOptions:
		if o == nil {
			return 0, 0
		}
		b.StartObject(2)
		i8(0, int8(o.Activation), 0)
		b.PrependBoolSlot(1, o.PotScaleInt16, true)
	case *MulOptions:
		if o == nil {
			return 0, 0
		}
		b.StartObject(1)
		i8(0, int8(o.Activation), 0)
	case *ReshapeOptions:
		if o == nil {
			return 0, 0
		}
		shape := e.int32s(o.NewShape)
		b.StartObject(1)
		e.ref(0, shape)
	default:
		return 0, 0
	}
	return typ, b.EndObject()
}
