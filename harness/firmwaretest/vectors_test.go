package firmwaretest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVectors runs every shared operator vector through the C kernels:
// every case must reproduce TFLite's output exactly.
func TestVectors(t *testing.T) {
	dir := needShared(t, "vectors")
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if len(files) == 0 {
		t.Fatalf("%s: no vectors", dir)
	}
	for _, name := range []string{"vectors", "vectors-san"} {
		t.Run(name, func(t *testing.T) {
			r := run(t, bin(t, name), dir)
			if r.code != 0 {
				t.Fatalf("exit status %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			want := fmt.Sprintf("%d passed, 0 failed", len(files))
			if !strings.Contains(r.stdout, want) {
				t.Fatalf("want %q in the output:\n%s", want, r.stdout)
			}
		})
	}
}

// TestVectorsCatchAWrongExpectation changes one expected value of a copied
// vector: the runner must report the case failed and exit non-zero.
func TestVectorsCatchAWrongExpectation(t *testing.T) {
	src := filepath.Join(needShared(t, "vectors"), "conv2d_s8", "basic.json")
	vectors := bin(t, "vectors")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	ref := doc["tensors"].(map[string]any)["output_ref"].(map[string]any)
	vals := ref["data"].([]any)
	v := vals[3].(float64)
	if v < 127 {
		vals[3] = v + 1
	} else {
		vals[3] = v - 1
	}
	data, err = json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "conv2d_s8"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conv2d_s8", "basic.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, vectors, dir)
	if r.code == 0 {
		t.Fatalf("a wrong expected value passed:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "FAIL conv2d_s8/basic: 1 of 20 values differ, first output[3]") || !strings.Contains(r.stdout, "0 passed, 1 failed") {
		t.Fatalf("unexpected report:\n%s", r.stdout)
	}

	// A case the runner cannot read fails too.
	if err := os.WriteFile(filepath.Join(dir, "conv2d_s8", "broken.json"), []byte(`{"op": "conv2d_s8", "params": {`), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, vectors, dir)
	if r.code == 0 || !strings.Contains(r.stdout, "0 passed, 2 failed") {
		t.Fatalf("exit %d:\n%s", r.code, r.stdout)
	}

	// No vector at all is not a pass.
	if r := run(t, vectors, t.TempDir()); r.code == 0 {
		t.Fatalf("an empty directory passed:\n%s%s", r.stdout, r.stderr)
	}
}
