package vectors

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batteryless/harness/harness/testenv"
)

// sharedVectors is ../shared/data/vectors seen from this package's folder.
const sharedVectors = "../../../shared/data/vectors"

func needShared(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(sharedVectors); err != nil {
		testenv.SharedData(t, sharedVectors)
	}
	return sharedVectors
}

func TestSharedVectorsBitExact(t *testing.T) {
	dir := needShared(t)
	paths, err := Find(dir)
	if err != nil {
		t.Fatal(err)
	}
	perOp := map[string]int{}
	for _, p := range paths {
		c, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		r := Run(c)
		if !r.Passed {
			t.Errorf("%s: %d mismatches (%s) %s", filepath.Base(p), r.Mismatches, r.FirstDiff, r.Err)
		}
		perOp[c.Op]++
	}
	if len(perOp) != 8 {
		t.Errorf("ran %d operators, want all 8: %v", len(perOp), perOp)
	}
	t.Logf("cases per operator: %v", perOp)
}

func TestParseErrorsNameFieldAndLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"op": "add_s8", "tensors": {"input1": {"dtype": "int8", "shape": [2], "data": [1]}}}`, "tensors.input1 has 1 values but shape [2] needs 2"},
		{`{"op": "add_s8", "tensors": {"x": {"dtype": "int8", "shape": [1], "data": [300]}}}`, "tensors.x.data[0] = 300 does not fit int8"},
		{`{"op": "add_s8", "tensors": {"x": {"dtype": "float", "shape": [1], "data": [3]}}}`, `dtype "float"`},
		{"{\"op\": \"add_s8\",\n \"tensors\": {\"x\": {\"dtype\": \"int8\", \"shape\": [1], \"data\": [\"a\"]}}}", "line 2"},
		{`{"tensors": {}}`, `"op" is missing`},
		{`{"op": "x", "tensors": {"x": {"dtype": "int8", "shape": [65536, 65536, 65536], "data": []}}}`, "too many elements"},
		{`{"op": "x", "tensors": {}} {}`, "trailing data"},
	} {
		_, err := Parse([]byte(tc.in), "v.json")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "v.json: ") {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestRunRejectsLyingParams(t *testing.T) {
	in := `{"op": "conv2d_s8", "params": {"input_batches": 1, "input_h": 100000, "input_w": 1, "in_ch": 1, "out_ch": 1,
	 "filter_y": 1, "filter_x": 1, "stride_y": 1, "stride_x": 1, "dilation_y": 1, "dilation_x": 1, "output_h": 1, "output_w": 1,
	 "pad_y": 0, "pad_x": 0, "input_offset": 0, "output_offset": 0, "out_activation_min": -128, "out_activation_max": 127},
	 "tensors": {"input": {"dtype": "int8", "shape": [1], "data": [1]}}}`
	c, err := Parse([]byte(in), "v.json")
	if err != nil {
		t.Fatal(err)
	}
	r := Run(c)
	if r.Passed || r.Err == "" {
		t.Fatalf("a conv with input_h 100000 and one input value ran: %+v", r)
	}
}

// FuzzVector feeds arbitrary bytes to the parser and the runner: they may
// refuse, never panic.
func FuzzVector(f *testing.F) {
	if paths, err := Find(sharedVectors); err == nil {
		for _, p := range paths {
			if data, err := os.ReadFile(p); err == nil && len(data) < 4096 {
				f.Add(data)
			}
		}
	}
	f.Add([]byte(`{"op": "softmax_s8", "params": {"num_rows": 1, "row_size": 2, "input_mult": 1077952640, "input_left_shift": 19, "diff_min": -3968}, "tensors": {"input": {"dtype": "int8", "shape": [1, 2], "data": [1, 2]}, "output_ref": {"dtype": "int8", "shape": [1, 2], "data": [1, 2]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.json")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		Run(c)
	})
}
