package model

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batteryless/harness/harness/testenv"

	"github.com/batteryless/harness/harness/tflite"
)

const sharedModels = "../../../shared/data/models"

func sharedModelFiles(t testing.TB) []string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(sharedModels, "*.tflite"))
	if len(paths) == 0 {
		testenv.Missing(t, sharedModels+" holds no .tflite files: the shared test data is not beside this clone", "")
	}
	return paths
}

// The README of the shared models gives their operator mix; the import
// must see exactly those layers.
func TestSharedModelsImport(t *testing.T) {
	want := map[string]struct {
		layers int
		macs   int64
	}{
		"kws_dscnn_int8.tflite":         {13, 0},
		"ic_resnet8_int8.tflite":        {16, 0},
		"ad_fc_autoencoder_int8.tflite": {10, 0},
		"hello_world_int8.tflite":       {3, 0},
		"micro_speech_int8.tflite":      {4, 0},
	}
	for _, p := range sharedModelFiles(t) {
		m, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := want[filepath.Base(p)]
		if ok && len(m.Layers) != w.layers {
			t.Errorf("%s: %d layers, want %d", p, len(m.Layers), w.layers)
		}
		if m.Plan.ArenaBytes < m.Plan.PeakActivationBytes {
			t.Errorf("%s: arena %d below the peak of live activations %d", p, m.Plan.ArenaBytes, m.Plan.PeakActivationBytes)
		}
		checkPlanNoOverlap(t, m)
		t.Logf("%s: %d layers, %d MACs, weights %d B, arena %d B (peak %d B)", filepath.Base(p), len(m.Layers), m.MACs(), m.WeightBytes(), m.Plan.ArenaBytes, m.Plan.PeakActivationBytes)
	}
}

// checkPlanNoOverlap verifies that no two activations alive at the same
// layer share arena bytes.
func checkPlanNoOverlap(t *testing.T, m *Model) {
	t.Helper()
	alive := func(tensor, step int) bool {
		first, last := -1, -1
		if tensor == m.Input {
			first = 0
		}
		for i, l := range m.Layers {
			uses := l.Output == tensor
			for _, in := range l.Inputs {
				uses = uses || in == tensor
			}
			if uses {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		if tensor == m.Output {
			last = len(m.Layers)
		}
		return first <= step && step <= last
	}
	for step := 0; step < len(m.Layers); step++ {
		var live []*Tensor
		for _, tt := range m.Tensors {
			if !tt.IsConst() && alive(tt.Index, step) {
				live = append(live, tt)
			}
		}
		for i, a := range live {
			if a.Offset < 0 || a.Offset+a.Bytes() > m.Plan.ArenaBytes || a.Offset%ArenaAlign != 0 {
				t.Fatalf("%s: tensor %q at %d+%d outside the %d-byte arena or unaligned", m.Name, a.Name, a.Offset, a.Bytes(), m.Plan.ArenaBytes)
			}
			for _, b := range live[i+1:] {
				if a.Offset < b.Offset+b.Bytes() && b.Offset < a.Offset+a.Bytes() {
					t.Fatalf("%s: at layer %d tensors %q and %q overlap in the arena", m.Name, step, a.Name, b.Name)
				}
			}
		}
	}
}

// mutate decodes a shared model, changes it and re-encodes it.
func mutate(t *testing.T, name string, f func(m *tflite.Model)) []byte {
	t.Helper()
	sharedModelFiles(t)
	data, err := os.ReadFile(filepath.Join(sharedModels, name))
	if err != nil {
		t.Fatal(err)
	}
	tm, err := tflite.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	f(tm)
	out, err := tflite.Encode(tm)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestImportErrorsNameTheProblem(t *testing.T) {
	cases := []struct {
		name string
		f    func(m *tflite.Model)
		want string
	}{
		{"unsupported operator", func(m *tflite.Model) {
			m.OperatorCodes = append(m.OperatorCodes, tflite.OperatorCode{Builtin: tflite.OpTanh, Version: 1})
			m.Subgraphs[0].Operators[2].OpcodeIndex = uint32(len(m.OperatorCodes) - 1)
		},
			"operator 2 (TANH): operator is not supported"},
		{"float weights", func(m *tflite.Model) {
			sg := &m.Subgraphs[0]
			sg.Tensors[sg.Operators[0].Inputs[1]].Type = tflite.TensorFloat32
		}, "constant data is"},
		{"absurd shape", func(m *tflite.Model) {
			sg := &m.Subgraphs[0]
			sg.Tensors[sg.Operators[0].Outputs[0]].Shape = []int32{1, 60000, 60000, 64}
		}, "has more than"},
		{"wrong output shape", func(m *tflite.Model) {
			sg := &m.Subgraphs[0]
			sg.Tensors[sg.Operators[0].Outputs[0]].Shape = []int32{1, 24, 5, 64}
		}, "does not match"},
		{"uint8 tensor", func(m *tflite.Model) {
			sg := &m.Subgraphs[0]
			sg.Tensors[sg.Inputs[0]].Type = tflite.TensorUint8
		}, "data type UINT8 is not supported"},
		{"tanh activation", func(m *tflite.Model) {
			m.Subgraphs[0].Operators[0].Options.(*tflite.Conv2DOptions).Activation = tflite.ActTanh
		}, "fused activation TANH is not supported"},
		{"bad scale", func(m *tflite.Model) {
			sg := &m.Subgraphs[0]
			sg.Tensors[sg.Operators[0].Outputs[0]].Quant.Scale[0] = -1
		}, "is not a positive finite number"},
		{"operator order", func(m *tflite.Model) {
			ops := m.Subgraphs[0].Operators
			ops[0], ops[1] = ops[1], ops[0]
		}, "before any operator writes it"},
	}
	for _, c := range cases {
		data := mutate(t, "kws_dscnn_int8.tflite", c.f)
		_, err := Parse(data, "kws.tflite")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "kws.tflite: ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want a one-line error starting with the file and containing %q", c.name, err, c.want)
		}
	}
}

// FuzzImport feeds arbitrary bytes through the decoder and the importer and,
// when a model imports, runs its memory plan checks: never a panic.
func FuzzImport(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(sharedModels, "*.tflite"))
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil && len(data) < 4<<10 { // big seeds stall the fuzzer's minimization
			f.Add(data)
		}
	}
	f.Add([]byte("TFL3"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data, "fuzz.tflite")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if m.Plan.ArenaBytes > MaxArenaBytes {
			t.Fatalf("arena %d beyond the limit", m.Plan.ArenaBytes)
		}
	})
}
