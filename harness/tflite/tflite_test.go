package tflite

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sampleModel builds a small model that uses every modelled field: two
// subgraphs, per-channel and per-tensor quantization, every options type, an
// options type this package does not model, an optional input (-1), custom
// and large (> 127) operator codes.
func sampleModel() *Model {
	i8q := func(scale float32, zp int64) *Quantization {
		return &Quantization{Scale: []float32{scale}, ZeroPoint: []int64{zp}}
	}
	return &Model{
		Version:     3,
		Description: "harness round-trip sample",
		OperatorCodes: []OperatorCode{
			{Builtin: OpConv2D, Version: 3},
			{Builtin: OpDepthwiseConv2D, Version: 3},
			{Builtin: OpReshape, Version: 1},
			{Builtin: OpFullyConnected, Version: 4},
			{Builtin: OpSoftmax, Version: 2},
			{Builtin: OpAveragePool2D, Version: 2},
			{Builtin: OpAdd, Version: 2},
			{Builtin: OpMul, Version: 1},
			{Builtin: OpConcatenation, Version: 1},
			{Builtin: 150, Version: 1}, // GELU: only builtin_code can hold it
			{Builtin: 32, Custom: "HarnessCustomOp", Version: 1},
		},
		Subgraphs: []Subgraph{
			{
				Name: "main",
				Tensors: []Tensor{
					0: {Name: "input", Type: TensorInt8, Shape: []int32{1, 8, 8, 1}, Quant: i8q(0.5, -3)},
					1: {Name: "conv/w", Type: TensorInt8, Shape: []int32{2, 3, 3, 1}, Buffer: 1, Quant: &Quantization{
						Min: []float32{-1, -2}, Max: []float32{1, 2},
						Scale: []float32{0.01, 0.02}, ZeroPoint: []int64{0, 0}, QuantizedDimension: 0}},
					2: {Name: "conv/b", Type: TensorInt32, Shape: []int32{2}, Buffer: 2, Quant: &Quantization{
						Scale: []float32{0.005, 0.01}, ZeroPoint: []int64{0, 0}}},
					3: {Name: "conv/out", Type: TensorInt8, Shape: []int32{1, 8, 8, 2}, Quant: i8q(0.25, 7)},
					4: {Name: "dw/w", Type: TensorInt8, Shape: []int32{1, 3, 3, 2}, Buffer: 3, Quant: &Quantization{
						Scale: []float32{0.5, 0.25}, ZeroPoint: []int64{0, 0}, QuantizedDimension: 3}},
					5: {Name: "dw/out", Type: TensorInt8, Shape: []int32{1, 4, 4, 2}, Quant: i8q(0.125, -128)},
					6: {Name: "reshape/shape", Type: TensorInt32, Shape: []int32{2}, Buffer: 4},
					7: {Name: "reshape/out", Type: TensorInt8, Shape: []int32{1, 32}, Quant: i8q(0.125, -128)},
					8: {Name: "fc/w", Type: TensorInt8, Shape: []int32{3, 32}, Buffer: 5, Quant: i8q(0.03, 0)},
					9: {Name: "fc/out", Type: TensorInt8, Shape: []int32{1, 3}, Quant: i8q(0.1, 2)},
					10: {Name: "probs", Type: TensorInt8, Shape: []int32{1, 3}, Quant: &Quantization{
						Min: []float32{}, Max: []float32{}, Scale: []float32{1.0 / 256}, ZeroPoint: []int64{-128}}},
					11: {Name: "scalar", Type: TensorFloat32, Shape: []int32{}, Buffer: 6},
					12: {Name: "state", Type: TensorInt16, Shape: []int32{1, 3}, IsVariable: true, Quant: &Quantization{}},
				},
				Inputs:  []int32{0},
				Outputs: []int32{10},
				Operators: []Operator{
					{OpcodeIndex: 0, Inputs: []int32{0, 1, 2}, Outputs: []int32{3}, OptionsType: 1,
						Options: &Conv2DOptions{Padding: PaddingSame, StrideW: 1, StrideH: 1, Activation: ActRelu, DilationW: 1, DilationH: 1}},
					{OpcodeIndex: 1, Inputs: []int32{3, 4, -1}, Outputs: []int32{5}, OptionsType: 2,
						Options: &DepthwiseConv2DOptions{Padding: PaddingValid, StrideW: 2, StrideH: 2, DepthMultiplier: 1,
							Activation: ActRelu6, DilationW: 1, DilationH: 2}},
					{OpcodeIndex: 2, Inputs: []int32{5, 6}, Outputs: []int32{7}, OptionsType: 17,
						Options: &ReshapeOptions{NewShape: []int32{1, 32}}},
					{OpcodeIndex: 3, Inputs: []int32{7, 8, -1}, Outputs: []int32{9}, OptionsType: 8,
						Options: &FullyConnectedOptions{Activation: ActNone, WeightsFormat: 0, KeepNumDims: true, AsymmetricQuantizeInputs: true}},
					{OpcodeIndex: 4, Inputs: []int32{9}, Outputs: []int32{10}, OptionsType: 9,
						Options: &SoftmaxOptions{Beta: 1}},
				},
			},
			{
				Tensors: []Tensor{
					{Name: "a", Type: TensorFloat32, Shape: []int32{1, 4, 4, 3}},
					{Name: "b", Type: TensorFloat32, Shape: []int32{1, 2, 2, 3}},
					{Name: "c", Type: TensorFloat32, Shape: []int32{1, 2, 2, 3}},
					{Name: "d", Type: TensorFloat32, Shape: []int32{1, 2, 2, 3}},
					{Name: "e", Type: TensorFloat32, Shape: []int32{1, 2, 2, 6}},
					{Name: "f", Type: TensorFloat32, Shape: []int32{1, 2, 2, 6}},
				},
				Inputs:  []int32{0},
				Outputs: []int32{5},
				Operators: []Operator{
					{OpcodeIndex: 5, Inputs: []int32{0}, Outputs: []int32{1}, OptionsType: 5,
						Options: &Pool2DOptions{Padding: PaddingValid, StrideW: 2, StrideH: 2, FilterW: 2, FilterH: 2, Activation: ActNone}},
					{OpcodeIndex: 6, Inputs: []int32{1, 1}, Outputs: []int32{2}, OptionsType: 11,
						Options: &AddOptions{Activation: ActReluN1To1, PotScaleInt16: false}},
					{OpcodeIndex: 7, Inputs: []int32{2, 1}, Outputs: []int32{3}, OptionsType: 21,
						Options: &MulOptions{Activation: ActTanh}},
					{OpcodeIndex: 8, Inputs: []int32{3, 2}, Outputs: []int32{4}, OptionsType: 10,
						Options: &ConcatenationOptions{Axis: -1, Activation: ActSignBit}},
					// GELU carries GeluOptions (union type 124), which this
					// package does not model: type kept, options nil.
					{OpcodeIndex: 9, Inputs: []int32{4}, Outputs: []int32{5}, OptionsType: 124},
					{OpcodeIndex: 10, Inputs: []int32{}, Outputs: []int32{}},
				},
			},
		},
		Buffers: []Buffer{
			{},
			{Data: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}},
			{Data: []byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}},
			{Data: bytes.Repeat([]byte{0x80}, 18)},
			{Data: []byte{1, 0, 0, 0, 32, 0, 0, 0}},
			{Data: bytes.Repeat([]byte{3}, 96)},
			{Data: []byte{0, 0, 0x80, 0x3f}},
		},
	}
}

// diff returns "" if a and b are equal, else the path of the first
// difference. It is reflect.DeepEqual except that floats compare with ==,
// with any NaN equal to any NaN (so models holding NaN scales still compare
// equal after a round trip).
func diff(a, b any) string {
	return diffValue(reflect.ValueOf(a), reflect.ValueOf(b), "")
}

func diffValue(a, b reflect.Value, path string) string {
	if a.IsValid() != b.IsValid() {
		return path + ": one side invalid"
	}
	if !a.IsValid() {
		return ""
	}
	if a.Type() != b.Type() {
		return fmt.Sprintf("%s: type %v vs %v", path, a.Type(), b.Type())
	}
	switch a.Kind() {
	case reflect.Float32, reflect.Float64:
		x, y := a.Float(), b.Float()
		if x == y || (x != x && y != y) {
			return ""
		}
		return fmt.Sprintf("%s: %v vs %v", path, x, y)
	case reflect.Slice:
		if a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s: nil %v vs nil %v", path, a.IsNil(), b.IsNil())
		}
		if a.Len() != b.Len() {
			return fmt.Sprintf("%s: len %d vs %d", path, a.Len(), b.Len())
		}
		if a.Type().Elem().Kind() == reflect.Uint8 {
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				return path + ": bytes differ"
			}
			return ""
		}
		for i := 0; i < a.Len(); i++ {
			if d := diffValue(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() != b.IsNil() {
			return fmt.Sprintf("%s: nil %v vs nil %v", path, a.IsNil(), b.IsNil())
		}
		if a.IsNil() {
			return ""
		}
		return diffValue(a.Elem(), b.Elem(), path)
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if d := diffValue(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); d != "" {
				return d
			}
		}
		return ""
	default:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			return fmt.Sprintf("%s: %v vs %v", path, a.Interface(), b.Interface())
		}
		return ""
	}
}

func mustEncode(t testing.TB, m *Model) []byte {
	t.Helper()
	b, err := Encode(m)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	m := sampleModel()
	b1 := mustEncode(t, m)
	if got := string(b1[4:8]); got != "TFL3" {
		t.Fatalf("identifier %q", got)
	}
	got, err := Decode(b1)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if d := diff(m, got); d != "" {
		t.Fatalf("round trip differs at Model%s", d)
	}
	if !reflect.DeepEqual(m, got) {
		t.Fatalf("round trip not reflect.DeepEqual")
	}
	b2 := mustEncode(t, m)
	if !bytes.Equal(b1, b2) {
		t.Fatalf("Encode is not deterministic")
	}
	b3 := mustEncode(t, got)
	if !bytes.Equal(b1, b3) {
		t.Fatalf("Encode(Decode(Encode(m))) differs from Encode(m)")
	}
	// Buffer data aliases the input and is aligned to 16 bytes in it.
	for i, off := range bufferDataOffsets(t, b1) {
		if off < 0 {
			continue
		}
		if off%16 != 0 {
			t.Errorf("buffers[%d].data at offset %d is not 16-byte aligned", i, off)
		}
		if len(got.Buffers[i].Data) > 0 && &got.Buffers[i].Data[0] != &b1[off] {
			t.Errorf("buffers[%d].Data is not a subslice of the input", i)
		}
	}
	if c := cap(got.Buffers[1].Data); c != len(got.Buffers[1].Data) {
		t.Errorf("Buffer.Data capacity %d not clipped to its length", c)
	}
}

// bufferDataOffsets returns the file offset of each buffer's data (-1 when
// it has none), found with the package's own reader.
func bufferDataOffsets(t testing.TB, data []byte) []int {
	t.Helper()
	r := newReader(data)
	root, err := r.deref(0)
	if err != nil {
		t.Fatal(err)
	}
	mt, err := r.table(root)
	if err != nil {
		t.Fatal(err)
	}
	start, n, _, err := mt.tableVector(modelBuffers, "buffers", 0)
	if err != nil {
		t.Fatal(err)
	}
	offs := make([]int, n)
	for i := range offs {
		bt, err := r.elem(start, i)
		if err != nil {
			t.Fatal(err)
		}
		s, k, ok, err := bt.vector(bufferData, 1, "data")
		if err != nil {
			t.Fatal(err)
		}
		offs[i] = -1
		if ok && k > 0 {
			offs[i] = s
		}
	}
	return offs
}

func TestEncodeDefaults(t *testing.T) {
	// Version 0 is written as 3; an operator with Options but no
	// OptionsType gets the type derived; typed nil options count as none.
	m := &Model{
		OperatorCodes: []OperatorCode{{Builtin: OpMul, Version: 1}},
		Subgraphs: []Subgraph{{
			Tensors: []Tensor{{Name: "x"}},
			Operators: []Operator{
				{Inputs: []int32{0, 0}, Outputs: []int32{0}, Options: &MulOptions{Activation: ActRelu}},
				{Inputs: []int32{0, 0}, Outputs: []int32{0}, Options: (*MulOptions)(nil)},
			},
		}},
		Buffers: []Buffer{{}},
	}
	got, err := Decode(mustEncode(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 3 {
		t.Errorf("Version = %d, want 3", got.Version)
	}
	ops := got.Subgraphs[0].Operators
	if ops[0].OptionsType != 21 || !reflect.DeepEqual(ops[0].Options, &MulOptions{Activation: ActRelu}) {
		t.Errorf("op 0: type %d options %#v", ops[0].OptionsType, ops[0].Options)
	}
	if ops[1].OptionsType != 0 || ops[1].Options != nil {
		t.Errorf("op 1: type %d options %#v", ops[1].OptionsType, ops[1].Options)
	}
	// Absent fields come back with their schema defaults.
	if oc := got.OperatorCodes[0]; oc.Version != 1 {
		t.Errorf("OperatorCode.Version = %d", oc.Version)
	}
	if m.Subgraphs[0].Inputs != nil || got.Subgraphs[0].Inputs != nil {
		t.Errorf("absent inputs decoded as %#v", got.Subgraphs[0].Inputs)
	}
}

func TestEncodeErrors(t *testing.T) {
	base := func() *Model {
		return &Model{
			Version:       3,
			OperatorCodes: []OperatorCode{{Builtin: OpAdd, Version: 1}},
			Subgraphs: []Subgraph{{
				Tensors:   []Tensor{{Name: "x"}},
				Inputs:    []int32{0},
				Outputs:   []int32{0},
				Operators: []Operator{{Inputs: []int32{0, 0}, Outputs: []int32{0}, OptionsType: 11, Options: &AddOptions{}}},
			}},
			Buffers: []Buffer{{}},
		}
	}
	if _, err := Encode(base()); err != nil {
		t.Fatalf("base model: %v", err)
	}
	cases := []struct {
		name   string
		modify func(m *Model)
		want   string
	}{
		{"nil", nil, "tflite: encode: nil model"},
		{"version", func(m *Model) { m.Version = 4 }, "tflite: encode: version: schema version 4 is not supported"},
		{"negative op", func(m *Model) { m.OperatorCodes[0].Builtin = -1 }, "tflite: encode: operator_codes[0].builtin_code: negative operator code -1"},
		{"options mismatch", func(m *Model) { m.Subgraphs[0].Operators[0].OptionsType = 1 },
			"tflite: encode: subgraphs[0].operators[0].builtin_options: OptionsType 1 does not match options of type *tflite.AddOptions (union type 11)"},
		{"options type", func(m *Model) { m.Subgraphs[0].Operators[0].Options = AddOptions{} },
			"tflite: encode: subgraphs[0].operators[0].builtin_options: options of type tflite.AddOptions are not supported"},
		{"opcode index", func(m *Model) { m.Subgraphs[0].Operators[0].OpcodeIndex = 1 },
			"tflite: encode: subgraphs[0].operators[0].opcode_index: operator code index 1 out of range: the model has 1 operator codes"},
		{"tensor index", func(m *Model) { m.Subgraphs[0].Operators[0].Inputs[1] = 1 },
			"tflite: encode: subgraphs[0].operators[0].inputs[1]: tensor index 1 out of range [-1, 1)"},
		{"tensor index -2", func(m *Model) { m.Subgraphs[0].Outputs[0] = -2 },
			"tflite: encode: subgraphs[0].outputs[0]: tensor index -2 out of range [-1, 1)"},
		{"buffer index", func(m *Model) { m.Subgraphs[0].Tensors[0].Buffer = 1 },
			"tflite: encode: subgraphs[0].tensors[0].buffer: buffer index 1 out of range: the model has 1 buffers"},
	}
	for _, c := range cases {
		var m *Model
		if c.modify != nil {
			m = base()
			c.modify(m)
		}
		_, err := Encode(m)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: got %v, want prefix %q", c.name, err, c.want)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{TensorInt8.String(), "INT8"},
		{TensorFloat32.String(), "FLOAT32"},
		{TensorInt4.String(), "INT4"},
		{TensorType(18).String(), "TensorType(18)"},
		{TensorType(-1).String(), "TensorType(-1)"},
		{OpConv2D.String(), "CONV_2D"},
		{OpDepthwiseConv2D.String(), "DEPTHWISE_CONV_2D"},
		{OpQuantize.String(), "QUANTIZE"},
		{OpReluN1To1.String(), "RELU_N1_TO_1"},
		{BuiltinOp(150).String(), "BUILTIN_150"},
		{ActRelu6.String(), "RELU6"},
		{ActSignBit.String(), "SIGN_BIT"},
		{Activation(9).String(), "Activation(9)"},
		{PaddingSame.String(), "SAME"},
		{PaddingValid.String(), "VALID"},
		{Padding(2).String(), "Padding(2)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	sizes := map[TensorType]int{
		TensorFloat32: 4, TensorFloat16: 2, TensorInt32: 4, TensorUint8: 1, TensorInt64: 8,
		TensorString: 0, TensorBool: 1, TensorInt16: 2, TensorComplex64: 8, TensorInt8: 1,
		TensorFloat64: 8, TensorComplex128: 16, TensorUint64: 8, TensorResource: 0,
		TensorVariant: 0, TensorUint32: 4, TensorUint16: 2, TensorInt4: 0, 18: 0, -5: 0,
	}
	for typ, want := range sizes {
		if got := typ.Size(); got != want {
			t.Errorf("%v.Size() = %d, want %d", typ, got, want)
		}
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	data := mustEncode(t, sampleModel())
	good := filepath.Join(dir, "good.tflite")
	if err := os.WriteFile(good, data, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := ReadFile(good, int64(len(data)))
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	if d := diff(sampleModel(), m); d != "" {
		t.Fatalf("ReadFile model differs at %s", d)
	}

	_, err = ReadFile(good, int64(len(data))-1)
	want := fmt.Sprintf("%s: file is %d bytes, larger than the %d-byte limit", good, len(data), len(data)-1)
	if err == nil || err.Error() != want {
		t.Errorf("too large: got %v, want %q", err, want)
	}

	missing := filepath.Join(dir, "missing.tflite")
	_, err = ReadFile(missing, 1<<20)
	if err == nil || !strings.HasPrefix(err.Error(), missing+": ") || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: got %v", err)
	}

	_, err = ReadFile(dir, 1<<20)
	if err == nil || !strings.HasPrefix(err.Error(), dir+": ") {
		t.Errorf("directory: got %v", err)
	}

	bad := filepath.Join(dir, "bad.tflite")
	if err := os.WriteFile(bad, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ReadFile(bad, 1<<20)
	if err == nil || !strings.HasPrefix(err.Error(), bad+": tflite: ") {
		t.Errorf("truncated: got %v", err)
	}

	if _, err = ReadFile(good, 0); err == nil || !strings.HasPrefix(err.Error(), good+": ") {
		t.Errorf("zero limit: got %v", err)
	}
}

// TestBuildHelpers: Opcode adds an operator code once and finds it again;
// AddTensor gives tensors with data a new buffer each, and those without
// none; PaddingOf picks the scheme.
func TestBuildHelpers(t *testing.T) {
	m := &Model{Buffers: []Buffer{{}}}
	sg := &Subgraph{}
	if a, b, c := m.Opcode(OpConv2D, 3), m.Opcode(OpAdd, 1), m.Opcode(OpConv2D, 1); a != 0 || b != 1 || c != 0 || len(m.OperatorCodes) != 2 || m.OperatorCodes[0].Version != 3 {
		t.Fatalf("opcodes %d %d %d, %+v", a, b, c, m.OperatorCodes)
	}
	x := m.AddTensor(sg, "x", TensorInt8, []int32{1, 2}, nil, nil)
	w := m.AddTensor(sg, "w", TensorInt8, []int32{2}, nil, []byte{1, 2})
	if x != 0 || w != 1 || sg.Tensors[0].Buffer != 0 || sg.Tensors[1].Buffer != 1 || len(m.Buffers) != 2 || string(m.Buffers[1].Data) != "\x01\x02" {
		t.Fatalf("tensors %d %d, %+v, buffers %+v", x, w, sg.Tensors, m.Buffers)
	}
	if PaddingOf(true) != PaddingSame || PaddingOf(false) != PaddingValid {
		t.Fatal("PaddingOf")
	}
}
