package tflite

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// optionSeeds returns one small model per modelled options type (a few
// hundred bytes each).
func optionSeeds() []*Model {
	var out []*Model
	for _, o := range []struct {
		op   BuiltinOp
		opts any
	}{
		{OpConv2D, &Conv2DOptions{Padding: PaddingValid, StrideW: 2, StrideH: 1, Activation: ActRelu, DilationW: 1, DilationH: 3}},
		{OpDepthwiseConv2D, &DepthwiseConv2DOptions{StrideW: 1, StrideH: 2, DepthMultiplier: 4, Activation: ActRelu6, DilationW: 2, DilationH: 1}},
		{OpMaxPool2D, &Pool2DOptions{Padding: PaddingSame, StrideW: 2, StrideH: 2, FilterW: 3, FilterH: 3, Activation: ActTanh}},
		{OpFullyConnected, &FullyConnectedOptions{Activation: ActReluN1To1, WeightsFormat: 1, KeepNumDims: true}},
		{OpSoftmax, &SoftmaxOptions{Beta: 0.5}},
		{OpConcatenation, &ConcatenationOptions{Axis: 3, Activation: ActSignBit}},
		{OpAdd, &AddOptions{Activation: ActRelu, PotScaleInt16: true}},
		{OpReshape, &ReshapeOptions{NewShape: []int32{1, -1}}},
		{OpMul, &MulOptions{Activation: ActRelu6}},
	} {
		out = append(out, &Model{
			Version:       3,
			OperatorCodes: []OperatorCode{{Builtin: o.op, Version: 2}},
			Subgraphs: []Subgraph{{
				Tensors: []Tensor{
					{Type: TensorInt8, Shape: []int32{1, 2}, Quant: &Quantization{Scale: []float32{1}, ZeroPoint: []int64{0}}},
					{Type: TensorInt32, Shape: []int32{2}, Buffer: 1},
				},
				Inputs:    []int32{0},
				Outputs:   []int32{0},
				Operators: []Operator{{Inputs: []int32{0, 1, -1}, Outputs: []int32{0}, Options: o.opts}},
			}},
			Buffers: []Buffer{{}, {Data: []byte{1, 0, 0, 0, 2, 0, 0, 0}}},
		})
	}
	return out
}

// FuzzDecode feeds arbitrary bytes to decode, the function behind Decode
// without its recover safety net, so any panic fails the fuzz run. Every
// error must be one line starting with "tflite: ", and every model that
// decodes must re-encode, decode to the same value, and re-encode to the
// same bytes.
//
// The seeds are small models from our own encoder (under 1 KB each) and a
// few hostile files. In a plain `go test` run, the seed inputs also include
// the larger sample model and, when ../shared/data/models exists, its .tflite
// files (read at test time, never written into testdata). Those are left out
// when fuzzing (-fuzz): Go's minimizer is quadratic in the input size, so
// every new interesting input derived from a multi-kilobyte seed stalls the
// fuzzer for the whole -fuzzminimizetime (60 s by default).
func FuzzDecode(f *testing.F) {
	f.Add(mustEncode(f, tinyModel()))
	for _, m := range optionSeeds() {
		f.Add(mustEncode(f, m))
	}
	f.Add(aliasModel(8, 8, 2))
	f.Add(sharedDataModel(16, 3))
	f.Add([]byte("\x08\x00\x00\x00TFL3\x00\x00\x00\x00"))
	if fz := flag.Lookup("test.fuzz"); fz == nil || fz.Value.String() == "" {
		f.Add(mustEncode(f, sampleModel()))
		files, _ := filepath.Glob(filepath.Join(realModelsDir, "*.tflite"))
		for _, path := range files {
			if data, err := os.ReadFile(path); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decode(data)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "tflite: ") || strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("error is not one line starting with \"tflite: \": %q", msg)
			}
			return
		}
		checkReencode(t, m)
	})
}
