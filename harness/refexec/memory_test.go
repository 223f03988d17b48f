package refexec

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/batteryless/harness/harness/model"
)

// importOverhead bounds what importing and preparing a model may allocate
// besides its activation arena: tensor and layer records, multipliers,
// copied biases and weight sums. Weights are not copied: they alias the file;
// the fast kernels' widened copies (model.PackBytes) are counted apart.
const importOverhead = 128 << 10

// TestMemoryIsWeightsPlusArena measures the heap that importing a model and
// making its executor allocate, and that inferences allocate nothing.
func TestMemoryIsWeightsPlusArena(t *testing.T) {
	dir := needShared(t)
	paths, _ := filepath.Glob(filepath.Join(dir, "models", "*.tflite"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m, err := model.Parse(data, p)
		if err != nil {
			t.Fatal(err)
		}
		e := New(m)
		runtime.ReadMemStats(&after)
		allocated := int(after.TotalAlloc - before.TotalAlloc)
		budget := m.Plan.ArenaBytes + m.Plan.ScratchBytes + m.PackBytes() + importOverhead
		if allocated > budget {
			t.Errorf("%s: import and executor allocated %d bytes, more than arena %d + scratch %d + packs %d + %d", filepath.Base(p), allocated, m.Plan.ArenaBytes, m.Plan.ScratchBytes, m.PackBytes(), importOverhead)
		}
		if m.PackBytes() > 3*m.WeightBytes()+16<<10 {
			t.Errorf("%s: packed weights take %d bytes for %d bytes of weights", filepath.Base(p), m.PackBytes(), m.WeightBytes())
		}
		input := make([]byte, m.InputTensor().Bytes())
		if err := e.SetInput(input); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(3, e.Invoke); n != 0 {
			t.Errorf("%s: an inference allocates %v times", filepath.Base(p), n)
		}
		t.Logf("%s: file %d B, weights %d B, packed %d B, arena %d B, import+executor allocated %d B", filepath.Base(p), len(data), m.WeightBytes(), m.PackBytes(), m.Plan.ArenaBytes, allocated)
	}
}

// FuzzRunModel imports arbitrary bytes as a model and, when they import,
// runs an inference on a zero input: the whole path may refuse, never panic.
func FuzzRunModel(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(sharedData, "models", "*.tflite"))
	for _, p := range paths {
		if data, err := os.ReadFile(p); err == nil && len(data) < 4<<10 { // big seeds stall the fuzzer's minimization
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := model.Parse(data, "fuzz.tflite")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if m.MACs() > 50_000_000 {
			return // valid but too slow to run in a fuzz loop
		}
		if _, err := New(m).Run(make([]byte, m.InputTensor().Bytes())); err != nil {
			t.Fatal(err)
		}
	})
}
