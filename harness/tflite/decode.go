package tflite

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"unsafe"
)

// Go sizes of the decoded structs, charged against the decode budget.
var (
	costOperatorCode = int(unsafe.Sizeof(OperatorCode{}))
	costSubgraph     = int(unsafe.Sizeof(Subgraph{}))
	costTensor       = int(unsafe.Sizeof(Tensor{}))
	costQuant        = int(unsafe.Sizeof(Quantization{}))
	costOperator     = int(unsafe.Sizeof(Operator{}))
	costBuffer       = int(unsafe.Sizeof(Buffer{}))
	costModel        = int(unsafe.Sizeof(Model{}))
	costOptions      = int(unsafe.Sizeof(DepthwiseConv2DOptions{})) // the largest options struct
)

// Field indices of the schema tables (vtable slot = 4 + 2*index).
const (
	modelVersion       = 0
	modelOperatorCodes = 1
	modelSubgraphs     = 2
	modelDescription   = 3
	modelBuffers       = 4 // 5 (metadata_buffer) and later are not decoded

	opcodeDeprecatedBuiltin = 0
	opcodeCustom            = 1
	opcodeVersion           = 2
	opcodeBuiltin           = 3

	subgraphTensors   = 0
	subgraphInputs    = 1
	subgraphOutputs   = 2
	subgraphOperators = 3
	subgraphName      = 4

	tensorShape        = 0
	tensorType         = 1
	tensorBuffer       = 2
	tensorName         = 3
	tensorQuantization = 4
	tensorIsVariable   = 5
	tensorSparsity     = 6 // 7 (shape_signature) and later are not decoded

	quantMin         = 0
	quantMax         = 1
	quantScale       = 2
	quantZeroPoint   = 3
	quantDetailsType = 4
	quantDetails     = 5
	quantDimension   = 6

	bufferData   = 0
	bufferOffset = 1
	bufferSize   = 2

	operatorOpcodeIndex = 0
	operatorInputs      = 1
	operatorOutputs     = 2
	operatorOptionsType = 3
	operatorOptions     = 4
)

// Decode parses and verifies a .tflite file.
//
// It checks structure: the file identifier "TFL3" at bytes 4..8, schema
// version 3, that every offset, vtable, vector and string lies inside data
// and is aligned, and that no more decoded values are produced than a budget
// proportional to len(data) (which refuses files whose offsets point many
// times at the same data, or whose buffers share data). It also checks index
// ranges: every operator's opcode_index is < len(OperatorCodes), every
// tensor's buffer is < len(Buffers), and every operator and subgraph tensor
// index lies in [-1, len(Tensors)). It does not check semantics, such as
// whether a tensor's shape matches its buffer's size or an operator's inputs
// suit the operator. Sparse tensors and custom quantization details are
// refused.
//
// Buffer.Data of the returned model aliases data: data must not be modified
// while the model is in use.
//
// Every error is a single line starting with "tflite: " and naming the
// field, e.g. "tflite: subgraphs[0].tensors[3].buffer: ...". Decode does not
// panic on any input.
func Decode(data []byte) (m *Model, err error) {
	defer func() {
		// Safety net only: the reader checks every position before reading,
		// and the fuzz test exercises decode without this recover.
		if p := recover(); p != nil {
			m, err = nil, &fieldError{msg: fmt.Sprintf("internal error decoding a %d-byte file: %v", len(data), p)}
		}
	}()
	return decode(data)
}

func decode(data []byte) (*Model, error) {
	m, _, err := decodeStats(data)
	return m, err
}

// decodeStats is decode that also reports how many bytes of the decode
// budget the model used (for tests).
func decodeStats(data []byte) (*Model, int64, error) {
	r := newReader(data)
	m, err := decodeModel(r)
	if err != nil {
		return nil, 0, err
	}
	return m, r.limit - r.budget, nil
}

func decodeModel(r *reader) (*Model, error) {
	data := r.buf
	if len(data) < 8 {
		return nil, errorf("file of %d bytes is too short for a TensorFlow Lite model (need at least 8)", len(data))
	}
	if id := string(data[4:8]); id != FileIdentifier {
		return nil, errorf("file identifier is %q, want %q (not a TensorFlow Lite model?)", id, FileIdentifier)
	}
	if err := r.charge(1, costModel); err != nil {
		return nil, err
	}
	root, err := r.deref(0)
	if err != nil {
		return nil, in(err, "root table")
	}
	t, err := r.table(root)
	if err != nil {
		return nil, in(err, "root table")
	}
	m := &Model{}
	if m.Version, err = t.uint32Field(modelVersion, 0, "version"); err != nil {
		return nil, err
	}
	if m.Version != SchemaVersion {
		return nil, in(errorf("schema version %d is not supported (want %d)", m.Version, SchemaVersion), "version")
	}

	start, n, ok, err := t.tableVector(modelOperatorCodes, "operator_codes", costOperatorCode)
	if err != nil {
		return nil, err
	}
	if ok {
		m.OperatorCodes = make([]OperatorCode, n)
		for i := range m.OperatorCodes {
			if err := decodeOperatorCode(r, start, i, &m.OperatorCodes[i]); err != nil {
				return nil, inElem(err, "operator_codes", i)
			}
		}
	}

	start, n, ok, err = t.tableVector(modelSubgraphs, "subgraphs", costSubgraph)
	if err != nil {
		return nil, err
	}
	if ok {
		m.Subgraphs = make([]Subgraph, n)
		for i := range m.Subgraphs {
			if err := decodeSubgraph(r, start, i, &m.Subgraphs[i]); err != nil {
				return nil, inElem(err, "subgraphs", i)
			}
		}
	}

	if m.Description, err = t.str(modelDescription, "description"); err != nil {
		return nil, err
	}

	start, n, ok, err = t.tableVector(modelBuffers, "buffers", costBuffer)
	if err != nil {
		return nil, err
	}
	if ok {
		m.Buffers = make([]Buffer, n)
		for i := range m.Buffers {
			if err := decodeBuffer(r, start, i, &m.Buffers[i]); err != nil {
				return nil, inElem(err, "buffers", i)
			}
		}
	}

	if err := validateIndices(m); err != nil {
		return nil, err
	}
	return m, nil
}

func decodeOperatorCode(r *reader, start, i int, oc *OperatorCode) error {
	t, err := r.elem(start, i)
	if err != nil {
		return err
	}
	dep, err := t.int8Field(opcodeDeprecatedBuiltin, 0, "deprecated_builtin_code")
	if err != nil {
		return err
	}
	if oc.Custom, err = t.str(opcodeCustom, "custom_code"); err != nil {
		return err
	}
	if oc.Version, err = t.int32Field(opcodeVersion, 1, "version"); err != nil {
		return err
	}
	code, err := t.int32Field(opcodeBuiltin, 0, "builtin_code")
	if err != nil {
		return err
	}
	// Files written before builtin_code existed set only the deprecated
	// byte; newer ones set both (the byte saturating at 127).
	code = max(code, int32(dep))
	if code < 0 {
		return in(errorf("negative operator code %d (deprecated_builtin_code %d)", code, dep), "builtin_code")
	}
	oc.Builtin = BuiltinOp(code)
	return nil
}

func decodeSubgraph(r *reader, start, i int, sg *Subgraph) error {
	t, err := r.elem(start, i)
	if err != nil {
		return err
	}
	start, n, ok, err := t.tableVector(subgraphTensors, "tensors", costTensor)
	if err != nil {
		return err
	}
	if ok {
		sg.Tensors = make([]Tensor, n)
		for j := range sg.Tensors {
			if err := decodeTensor(r, start, j, &sg.Tensors[j]); err != nil {
				return inElem(err, "tensors", j)
			}
		}
	}
	if sg.Inputs, err = t.int32s(subgraphInputs, "inputs"); err != nil {
		return err
	}
	if sg.Outputs, err = t.int32s(subgraphOutputs, "outputs"); err != nil {
		return err
	}
	start, n, ok, err = t.tableVector(subgraphOperators, "operators", costOperator)
	if err != nil {
		return err
	}
	if ok {
		sg.Operators = make([]Operator, n)
		for j := range sg.Operators {
			if err := decodeOperator(r, start, j, &sg.Operators[j]); err != nil {
				return inElem(err, "operators", j)
			}
		}
	}
	sg.Name, err = t.str(subgraphName, "name")
	return err
}

func decodeTensor(r *reader, start, i int, tn *Tensor) error {
	t, err := r.elem(start, i)
	if err != nil {
		return err
	}
	if tn.Shape, err = t.int32s(tensorShape, "shape"); err != nil {
		return err
	}
	typ, err := t.int8Field(tensorType, 0, "type")
	if err != nil {
		return err
	}
	tn.Type = TensorType(typ)
	if tn.Buffer, err = t.uint32Field(tensorBuffer, 0, "buffer"); err != nil {
		return err
	}
	if tn.Name, err = t.str(tensorName, "name"); err != nil {
		return err
	}
	qt, ok, err := t.subtable(tensorQuantization, "quantization")
	if err != nil {
		return err
	}
	if ok {
		if err := r.charge(1, costQuant); err != nil {
			return in(err, "quantization")
		}
		tn.Quant = &Quantization{}
		if err := decodeQuant(qt, tn.Quant); err != nil {
			return in(err, "quantization")
		}
	}
	if tn.IsVariable, err = t.boolField(tensorIsVariable, false, "is_variable"); err != nil {
		return err
	}
	if t.has(tensorSparsity) {
		return in(errorf("sparse tensors are not supported"), "sparsity")
	}
	return nil
}

func decodeQuant(t table, q *Quantization) error {
	var err error
	if q.Min, err = t.float32s(quantMin, "min"); err != nil {
		return err
	}
	if q.Max, err = t.float32s(quantMax, "max"); err != nil {
		return err
	}
	if q.Scale, err = t.float32s(quantScale, "scale"); err != nil {
		return err
	}
	if q.ZeroPoint, err = t.int64s(quantZeroPoint, "zero_point"); err != nil {
		return err
	}
	dt, err := t.uint8Field(quantDetailsType, 0, "details_type")
	if err != nil {
		return err
	}
	if dt != 0 || t.has(quantDetails) {
		return in(errorf("custom quantization details (type %d) are not supported", dt), "details")
	}
	q.QuantizedDimension, err = t.int32Field(quantDimension, 0, "quantized_dimension")
	return err
}

func decodeBuffer(r *reader, start, i int, b *Buffer) error {
	t, err := r.elem(start, i)
	if err != nil {
		return err
	}
	if b.Data, err = t.bytes(bufferData, "data"); err != nil {
		return err
	}
	off, err := t.uint64Field(bufferOffset, 0, "offset")
	if err != nil {
		return err
	}
	size, err := t.uint64Field(bufferSize, 0, "size")
	if err != nil {
		return err
	}
	// Models over 2 GB keep buffer data outside the flatbuffer, addressed
	// from the start of the file; the schema says offset is valid if > 1.
	if off > 1 && size > 0 {
		n := uint64(len(r.buf))
		if off > n || size > n-off {
			return in(errorf("external data of %d bytes at offset %d runs past the end of the %d-byte file", size, off, n), "offset")
		}
		b.Data = r.buf[off : off+size : off+size]
	}
	r.dataTotal += uint64(len(b.Data))
	if r.dataTotal > uint64(len(r.buf)) {
		return in(errorf("buffers hold %d bytes of data in total so far, more than the %d-byte file (do buffers share data?)", r.dataTotal, len(r.buf)), "data")
	}
	return nil
}

func decodeOperator(r *reader, start, i int, op *Operator) error {
	t, err := r.elem(start, i)
	if err != nil {
		return err
	}
	if op.OpcodeIndex, err = t.uint32Field(operatorOpcodeIndex, 0, "opcode_index"); err != nil {
		return err
	}
	if op.Inputs, err = t.int32s(operatorInputs, "inputs"); err != nil {
		return err
	}
	if op.Outputs, err = t.int32s(operatorOutputs, "outputs"); err != nil {
		return err
	}
	if op.OptionsType, err = t.uint8Field(operatorOptionsType, 0, "builtin_options_type"); err != nil {
		return err
	}
	switch op.OptionsType {
	case optConv2D, optDepthwiseConv2D, optPool2D, optFullyConnected, optSoftmax,
		optConcatenation, optAdd, optReshape, optMul:
	default:
		return nil // no options, or options this package does not model
	}
	ot, ok, err := t.subtable(operatorOptions, "builtin_options")
	if err != nil || !ok {
		return err
	}
	if err := r.charge(1, costOptions); err != nil {
		return in(err, "builtin_options")
	}
	if op.Options, err = decodeOptions(ot, op.OptionsType); err != nil {
		return in(err, "builtin_options")
	}
	return nil
}

// decodeOptions decodes the builtin options table t of union type typ,
// which must be one of the types this package models.
func decodeOptions(t table, typ uint8) (any, error) {
	var err error
	// The helpers read a field unless an earlier read failed.
	i8 := func(idx int, def int8, name string) int8 {
		if err != nil {
			return def
		}
		var v int8
		v, err = t.int8Field(idx, def, name)
		return v
	}
	i32 := func(idx int, def int32, name string) int32 {
		if err != nil {
			return def
		}
		var v int32
		v, err = t.int32Field(idx, def, name)
		return v
	}
	b := func(idx int, def bool, name string) bool {
		if err != nil {
			return def
		}
		var v bool
		v, err = t.boolField(idx, def, name)
		return v
	}
	var o any
	switch typ {
	case optConv2D:
		o = &Conv2DOptions{
			Padding:    Padding(i8(0, 0, "padding")),
			StrideW:    i32(1, 0, "stride_w"),
			StrideH:    i32(2, 0, "stride_h"),
			Activation: Activation(i8(3, 0, "fused_activation_function")),
			DilationW:  i32(4, 1, "dilation_w_factor"),
			DilationH:  i32(5, 1, "dilation_h_factor"),
		}
	case optDepthwiseConv2D:
		o = &DepthwiseConv2DOptions{
			Padding:         Padding(i8(0, 0, "padding")),
			StrideW:         i32(1, 0, "stride_w"),
			StrideH:         i32(2, 0, "stride_h"),
			DepthMultiplier: i32(3, 0, "depth_multiplier"),
			Activation:      Activation(i8(4, 0, "fused_activation_function")),
			DilationW:       i32(5, 1, "dilation_w_factor"),
			DilationH:       i32(6, 1, "dilation_h_factor"),
		}
	case optPool2D:
		o = &Pool2DOptions{
			Padding:    Padding(i8(0, 0, "padding")),
			StrideW:    i32(1, 0, "stride_w"),
			StrideH:    i32(2, 0, "stride_h"),
			FilterW:    i32(3, 0, "filter_width"),
			FilterH:    i32(4, 0, "filter_height"),
			Activation: Activation(i8(5, 0, "fused_activation_function")),
		}
	case optFullyConnected:
		o = &FullyConnectedOptions{
			Activation:               Activation(i8(0, 0, "fused_activation_function")),
			WeightsFormat:            i8(1, 0, "weights_format"),
			KeepNumDims:              b(2, false, "keep_num_dims"),
			AsymmetricQuantizeInputs: b(3, false, "asymmetric_quantize_inputs"),
		}
	case optSoftmax:
		var beta float32
		beta, err = t.float32Field(0, 0, "beta")
		o = &SoftmaxOptions{Beta: beta}
	case optConcatenation:
		o = &ConcatenationOptions{
			Axis:       i32(0, 0, "axis"),
			Activation: Activation(i8(1, 0, "fused_activation_function")),
		}
	case optAdd:
		o = &AddOptions{
			Activation:    Activation(i8(0, 0, "fused_activation_function")),
			PotScaleInt16: b(1, true, "pot_scale_int16"),
		}
	case optMul:
		o = &MulOptions{Activation: Activation(i8(0, 0, "fused_activation_function"))}
	case optReshape:
		var shape []int32
		shape, err = t.int32s(0, "new_shape")
		o = &ReshapeOptions{NewShape: shape}
	default:
		panic("tflite: decodeOptions called with unmodelled type") // unreachable
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}

// validateIndices checks the cross-references of m: operator code, buffer
// and tensor indices.
func validateIndices(m *Model) error {
	for i := range m.Subgraphs {
		if err := validateSubgraph(m, &m.Subgraphs[i]); err != nil {
			return inElem(err, "subgraphs", i)
		}
	}
	return nil
}

func validateSubgraph(m *Model, sg *Subgraph) error {
	nt := len(sg.Tensors)
	for j := range sg.Tensors {
		if b := sg.Tensors[j].Buffer; uint64(b) >= uint64(len(m.Buffers)) {
			return inElem(in(errorf("buffer index %d out of range: the model has %d buffers", b, len(m.Buffers)), "buffer"), "tensors", j)
		}
	}
	if err := checkTensorIndices(sg.Inputs, nt, "inputs"); err != nil {
		return err
	}
	if err := checkTensorIndices(sg.Outputs, nt, "outputs"); err != nil {
		return err
	}
	for k := range sg.Operators {
		op := &sg.Operators[k]
		if uint64(op.OpcodeIndex) >= uint64(len(m.OperatorCodes)) {
			return inElem(in(errorf("operator code index %d out of range: the model has %d operator codes", op.OpcodeIndex, len(m.OperatorCodes)), "opcode_index"), "operators", k)
		}
		if err := checkTensorIndices(op.Inputs, nt, "inputs"); err != nil {
			return inElem(err, "operators", k)
		}
		if err := checkTensorIndices(op.Outputs, nt, "outputs"); err != nil {
			return inElem(err, "operators", k)
		}
	}
	return nil
}

func checkTensorIndices(idx []int32, nTensors int, name string) error {
	for i, v := range idx {
		if v < -1 || int64(v) >= int64(nTensors) {
			return inElem(errorf("tensor index %d out of range [-1, %d)", v, nTensors), name, i)
		}
	}
	return nil
}

// ReadFile reads and decodes the .tflite file at path. It refuses a file
// larger than maxBytes (which must be positive) before reading it, and never
// reads more than maxBytes. Every error starts with path.
func ReadFile(path string, maxBytes int64) (*Model, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("%s: tflite: maxBytes is %d, want a positive limit", path, maxBytes)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, pathError(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, pathError(path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (mode %v)", path, fi.Mode().Type())
	}
	size := fi.Size()
	if size > maxBytes {
		return nil, fmt.Errorf("%s: file is %d bytes, larger than the %d-byte limit", path, size, maxBytes)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(io.LimitReader(f, size), data); err != nil {
		return nil, fmt.Errorf("%s: reading %d bytes: %w", path, size, err)
	}
	// A file that grew since Stat would be silently truncated; refuse it.
	var extra [1]byte
	if n, _ := f.Read(extra[:]); n > 0 {
		return nil, fmt.Errorf("%s: file grew beyond %d bytes while being read", path, size)
	}
	m, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// pathError formats an os error as "path: op: reason", keeping the
// underlying error for errors.Is.
func pathError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %s: %w", path, pe.Op, pe.Err)
	}
	return fmt.Errorf("%s: %w", path, err)
}
