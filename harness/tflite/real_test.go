package tflite

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/batteryless/harness/harness/testenv"
)

// realModelsDir holds third-party .tflite files shared between projects.
// They are read from there at test time and never copied into this
// repository.
const realModelsDir = "../../../shared/data/models"

// realModelFiles returns the .tflite files in realModelsDir, or skips the
// test when the folder is absent.
func realModelFiles(t testing.TB) []string {
	t.Helper()
	if _, err := os.Stat(realModelsDir); err != nil {
		testenv.SharedData(t, realModelsDir)
	}
	files, err := filepath.Glob(filepath.Join(realModelsDir, "*.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		testenv.Missing(t, "no .tflite files in "+realModelsDir, "")
	}
	return files
}

type ioFact struct {
	name  string
	shape []int32
	scale float32
	zp    int64
}

type realFact struct {
	bytes        int
	ops          map[string]int // "OP/vN" -> count
	tensors      int
	int8, int32  int // tensor type counts
	in, out      ioFact
	description  string
	subgraphName string
	extraCodes   []BuiltinOp // operator codes no operator uses
}

// Facts from ../shared/data/models/README.md.
var realFacts = map[string]realFact{
	"ic_resnet8_int8.tflite": {
		bytes: 98496,
		ops: map[string]int{"CONV_2D/v3": 9, "ADD/v2": 3, "AVERAGE_POOL_2D/v2": 1, "RESHAPE/v1": 1,
			"FULLY_CONNECTED/v4": 1, "SOFTMAX/v2": 1},
		tensors: 38, int8: 27, int32: 11,
		in:         ioFact{"input_1_int8", []int32{1, 32, 32, 3}, 1.0, -128},
		out:        ioFact{"Identity_int8", []int32{1, 10}, 0.00390625, -128},
		extraCodes: []BuiltinOp{OpQuantize, OpDequantize},
	},
	"kws_dscnn_int8.tflite": {
		bytes: 53936,
		ops: map[string]int{"CONV_2D/v3": 5, "DEPTHWISE_CONV_2D/v3": 4, "AVERAGE_POOL_2D/v2": 1,
			"RESHAPE/v1": 1, "FULLY_CONNECTED/v4": 1, "SOFTMAX/v2": 1},
		tensors: 35, int8: 24, int32: 11,
		in:  ioFact{"input_1", []int32{1, 49, 10, 1}, 0.5847029, 83},
		out: ioFact{"Identity", []int32{1, 12}, 0.00390625, -128},
	},
	"ad_fc_autoencoder_int8.tflite": {
		bytes:   276976,
		ops:     map[string]int{"FULLY_CONNECTED/v4": 10},
		tensors: 31, int8: 21, int32: 10,
		in:  ioFact{"input_1", []int32{1, 640}, 0.39101523, 89},
		out: ioFact{"Identity", []int32{1, 640}, 0.36449847, 96},
	},
	"hello_world_int8.tflite": {
		bytes:   2704,
		ops:     map[string]int{"FULLY_CONNECTED/v4": 3},
		tensors: 10, int8: 7, int32: 3,
		in:  ioFact{"serving_default_dense_input:0", []int32{1, 1}, 0.024480116, -128},
		out: ioFact{"StatefulPartitionedCall:0", []int32{1, 1}, 0.008290957, 5},
	},
	"micro_speech_int8.tflite": {
		bytes: 18800,
		ops: map[string]int{"DEPTHWISE_CONV_2D/v3": 1, "FULLY_CONNECTED/v4": 1, "RESHAPE/v1": 1,
			"SOFTMAX/v2": 1},
		tensors: 10, int8: 7, int32: 3,
		in:           ioFact{"Reshape_1", []int32{1, 1960}, 0.101715684, -128},
		out:          ioFact{"labels_softmax", []int32{1, 4}, 0.00390625, -128},
		description:  "TOCO Converted.",
		subgraphName: "",
	},
}

func checkIO(t *testing.T, what string, tn Tensor, want ioFact) {
	t.Helper()
	if tn.Name != want.name || tn.Type != TensorInt8 || fmt.Sprint(tn.Shape) != fmt.Sprint(want.shape) {
		t.Errorf("%s: %q %v %v, want %q INT8 %v", what, tn.Name, tn.Type, tn.Shape, want.name, want.shape)
	}
	if tn.Quant == nil || len(tn.Quant.Scale) != 1 || len(tn.Quant.ZeroPoint) != 1 {
		t.Errorf("%s: quantization %+v, want one scale and zero point", what, tn.Quant)
		return
	}
	if s := tn.Quant.Scale[0]; math.Abs(float64(s-want.scale)) > 1e-7*math.Abs(float64(want.scale)) {
		t.Errorf("%s: scale %v, want %v", what, s, want.scale)
	}
	if zp := tn.Quant.ZeroPoint[0]; zp != want.zp {
		t.Errorf("%s: zero point %d, want %d", what, zp, want.zp)
	}
}

func TestRealModels(t *testing.T) {
	files := realModelFiles(t)
	seen := 0
	for _, path := range files {
		base := filepath.Base(path)
		t.Run(base, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			m, used, err := decodeStats(data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			t.Logf("%d bytes, decode budget used %d of %d", len(data), used, newReader(data).limit)
			if len(m.Subgraphs) != 1 {
				t.Fatalf("%d subgraphs, want 1", len(m.Subgraphs))
			}
			// Older converters did not align buffer data to 16 bytes;
			// Decode accepts that (consumers must not assume alignment).
			misaligned, withData := 0, 0
			for _, off := range bufferDataOffsets(t, data) {
				if off >= 0 {
					withData++
					if off%16 != 0 {
						misaligned++
					}
				}
			}
			if misaligned > 0 {
				t.Logf("%d of %d buffers' data not 16-byte aligned in the file", misaligned, withData)
			}

			// Round trip through our encoder.
			enc, err := Encode(m)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			m2, err := Decode(enc)
			if err != nil {
				t.Fatalf("Decode(Encode): %v", err)
			}
			if d := diff(m, m2); d != "" {
				t.Fatalf("round trip differs at Model%s", d)
			}
			if enc2, _ := Encode(m2); !bytes.Equal(enc, enc2) {
				t.Fatalf("re-encoding is not stable")
			}

			fact, ok := realFacts[base]
			if !ok {
				t.Skipf("no README facts for %s", base)
			}
			seen++
			if len(data) != fact.bytes {
				t.Errorf("file is %d bytes, README says %d", len(data), fact.bytes)
			}
			if m.Version != 3 {
				t.Errorf("version %d", m.Version)
			}
			sg := m.Subgraphs[0]
			ops := map[string]int{}
			usedCode := map[uint32]bool{}
			for _, op := range sg.Operators {
				oc := m.OperatorCodes[op.OpcodeIndex]
				ops[fmt.Sprintf("%v/v%d", oc.Builtin, oc.Version)]++
				usedCode[op.OpcodeIndex] = true
			}
			if fmt.Sprint(ops) != fmt.Sprint(fact.ops) {
				t.Errorf("op mix %v, want %v", ops, fact.ops)
			}
			var unused []BuiltinOp
			for i, oc := range m.OperatorCodes {
				if !usedCode[uint32(i)] {
					unused = append(unused, oc.Builtin)
				}
			}
			if fmt.Sprint(unused) != fmt.Sprint(fact.extraCodes) && !(len(unused) == 0 && fact.extraCodes == nil) {
				t.Errorf("unused operator codes %v, want %v", unused, fact.extraCodes)
			}
			counts := map[TensorType]int{}
			for _, tn := range sg.Tensors {
				counts[tn.Type]++
			}
			if len(sg.Tensors) != fact.tensors || counts[TensorInt8] != fact.int8 || counts[TensorInt32] != fact.int32 {
				t.Errorf("%d tensors (%d INT8, %d INT32), want %d (%d, %d)", len(sg.Tensors),
					counts[TensorInt8], counts[TensorInt32], fact.tensors, fact.int8, fact.int32)
			}
			if len(sg.Inputs) != 1 || len(sg.Outputs) != 1 {
				t.Fatalf("inputs %v outputs %v, want one each", sg.Inputs, sg.Outputs)
			}
			checkIO(t, "input", sg.Tensors[sg.Inputs[0]], fact.in)
			checkIO(t, "output", sg.Tensors[sg.Outputs[0]], fact.out)
			if fact.description != "" && m.Description != fact.description {
				t.Errorf("description %q, want %q", m.Description, fact.description)
			}
			if fact.description != "" && sg.Name != fact.subgraphName {
				t.Errorf("subgraph name %q, want %q", sg.Name, fact.subgraphName)
			}
			// Every operator of a known kind carries its options.
			for k, op := range sg.Operators {
				switch m.OperatorCodes[op.OpcodeIndex].Builtin {
				case OpConv2D, OpDepthwiseConv2D, OpAveragePool2D, OpFullyConnected, OpSoftmax, OpAdd:
					if op.Options == nil {
						t.Errorf("operators[%d] (%v): no options", k, m.OperatorCodes[op.OpcodeIndex].Builtin)
					}
				}
			}
		})
	}
	if seen == 0 {
		t.Logf("none of the README's models found in %s", realModelsDir)
	}
}

// TestRealModelKWS spells out the facts the harness relies on most for the
// keyword-spotting model.
func TestRealModelKWS(t *testing.T) {
	realModelFiles(t)
	path := filepath.Join(realModelsDir, "kws_dscnn_int8.tflite")
	if _, err := os.Stat(path); err != nil {
		testenv.SharedData(t, path)
	}
	m, err := ReadFile(path, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	sg := m.Subgraphs[0]
	if len(sg.Operators) != 13 {
		t.Fatalf("%d operators, want 13", len(sg.Operators))
	}
	in := sg.Tensors[sg.Inputs[0]]
	if fmt.Sprint(in.Shape) != "[1 49 10 1]" || in.Type != TensorInt8 || in.Quant.ZeroPoint[0] != 83 {
		t.Errorf("input %v %v zp %v", in.Shape, in.Type, in.Quant.ZeroPoint)
	}
	first := sg.Operators[0]
	if m.OperatorCodes[first.OpcodeIndex].Builtin != OpConv2D {
		t.Fatalf("first operator is %v", m.OperatorCodes[first.OpcodeIndex].Builtin)
	}
	conv := first.Options.(*Conv2DOptions)
	if conv.Padding != PaddingSame || conv.StrideW != 2 || conv.StrideH != 2 || conv.Activation != ActRelu {
		t.Errorf("first conv options %+v", *conv)
	}
	w := sg.Tensors[first.Inputs[1]]
	if w.Quant == nil || len(w.Quant.Scale) != int(w.Shape[0]) || w.Quant.QuantizedDimension != 0 {
		t.Errorf("conv weights %v not per-channel on axis 0: %+v", w.Shape, w.Quant)
	}
	if got, want := len(m.Buffers[w.Buffer].Data), int(w.Shape[0]*w.Shape[1]*w.Shape[2]*w.Shape[3])*w.Type.Size(); got != want {
		t.Errorf("conv weight buffer %d bytes, want %d", got, want)
	}
	for _, op := range sg.Operators {
		if m.OperatorCodes[op.OpcodeIndex].Builtin == OpDepthwiseConv2D {
			dw := sg.Tensors[op.Inputs[1]]
			if dw.Quant.QuantizedDimension != 3 || len(dw.Quant.Scale) != int(dw.Shape[3]) {
				t.Errorf("depthwise weights %v not per-channel on axis 3: dim %d, %d scales", dw.Shape, dw.Quant.QuantizedDimension, len(dw.Quant.Scale))
			}
		}
	}
}
