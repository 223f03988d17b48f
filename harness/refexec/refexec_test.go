package refexec

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/batteryless/harness/harness/testenv"

	"github.com/batteryless/harness/harness/fixedpoint"
	"github.com/batteryless/harness/harness/model"
)

const sharedData = "../../../shared/data"

func needShared(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(sharedData, "models")); err != nil {
		testenv.SharedData(t, filepath.Join(sharedData, "models"))
	}
	return sharedData
}

type oracleRecord struct {
	Model       string `json:"model"`
	Input       string `json:"input"`
	OutputArmNN []int  `json:"output_armnn"`
	OutputTFJS  []int  `json:"output_tfjs"`
	ArgmaxArmNN int    `json:"argmax_armnn"`
	ArgmaxTFJS  int    `json:"argmax_tfjs"`
	ArgmaxAgree bool   `json:"argmax_agree"`
	MaxAbsDiff  int    `json:"max_abs_diff"`
}

// Argmax with the lowest index winning a tie, as the oracle file counts it.
func argmax(v []int8) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func loadOracle(t *testing.T) (string, []oracleRecord) {
	dir := needShared(t)
	data, err := os.ReadFile(filepath.Join(dir, "inputs", "oracle.json"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []oracleRecord
	if err := json.Unmarshal(data, &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 7 {
		t.Fatalf("oracle has %d records, want 7", len(recs))
	}
	return dir, recs
}

func runRecord(t *testing.T, dir string, rec oracleRecord, o Options) []int8 {
	t.Helper()
	m, err := model.Load(filepath.Join(dir, rec.Model))
	if err != nil {
		t.Fatal(err)
	}
	input, err := os.ReadFile(filepath.Join(dir, rec.Input))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := NewWith(m, o).Run(input)
	if err != nil {
		t.Fatal(err)
	}
	return model.BytesAsInt8(raw)
}

// TFLite's reference kernels requantize with two roundings (a rounding
// doubling high multiply, then a rounding shift); Arm NN and XNNPACK scale in
// floating point with one. Our outputs therefore may differ from theirs by a
// step or two in a layer where a value sits near a rounding tie, and a
// softmax after it magnifies one step of a logit into a few steps of a
// probability. This tolerance is that effect; TestFloatRequantizationMatchesEngines
// shows it is the only difference.
const tolRoundingSteps = 4

func TestSharedModelsAgreeWithOracle(t *testing.T) {
	dir, recs := loadOracle(t)
	for _, rec := range recs {
		out := runRecord(t, dir, rec, Options{})
		// Where the two engines agree on the argmax, ours must too (the IC
		// all-black input is a tie that both break to the lowest index).
		if rec.ArgmaxAgree && argmax(out) != rec.ArgmaxArmNN {
			t.Errorf("%s on %s: argmax %d, both engines say %d (output %v)", rec.Model, rec.Input, argmax(out), rec.ArgmaxArmNN, out)
		}
		// Every value must lie within the spread between the engines: at
		// most max_abs_diff from each, plus nothing more.
		spread := 0
		for i, v := range out {
			lo := min(rec.OutputArmNN[i], rec.OutputTFJS[i])
			hi := max(rec.OutputArmNN[i], rec.OutputTFJS[i])
			if d := max(lo-int(v), int(v)-hi, 0); d > spread {
				spread = d
			}
		}
		if spread > tolRoundingSteps {
			t.Errorf("%s on %s: output %v lies %d outside the engines' range (their spread %d)", rec.Model, rec.Input, out, spread, rec.MaxAbsDiff)
		}
		t.Logf("%s on %s: argmax %d, distance outside the engines' range %d", filepath.Base(rec.Model), filepath.Base(rec.Input), argmax(out), spread)
	}
}

// TestFloatRequantizationMatchesEngines switches the executor to one float
// rounding per requantization, as the two engines of oracle.json scale, and
// checks that every output the engines agree on is then reproduced value for
// value. It proves that padding, offsets, shapes and operator semantics are
// the engines', and that the rounding mode alone separates TFLite's reference
// from them.
func TestFloatRequantizationMatchesEngines(t *testing.T) {
	dir, recs := loadOracle(t)
	for _, rec := range recs {
		out := runRecord(t, dir, rec, Options{Rounding: fixedpoint.Single})
		diff := 0
		for i, v := range out {
			diff = max(diff, abs(int(v)-rec.OutputArmNN[i]), abs(int(v)-rec.OutputTFJS[i]))
		}
		if diff > rec.MaxAbsDiff {
			t.Errorf("%s on %s: with float requantization the output %v is %d from the engines (their own spread %d)", rec.Model, rec.Input, out, diff, rec.MaxAbsDiff)
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// TestFastKernelsMatchPortable runs every layer of every shared model on
// its shared inputs with the fast kernels (as the executor does) and again
// with the portable ones on the same inputs, and demands the same bytes:
// the speed-up changes no output of any layer.
func TestFastKernelsMatchPortable(t *testing.T) {
	dir, recs := loadOracle(t)
	for _, rec := range recs {
		m, err := model.Load(filepath.Join(dir, rec.Model))
		if err != nil {
			t.Fatal(err)
		}
		input, err := os.ReadFile(filepath.Join(dir, rec.Input))
		if err != nil {
			t.Fatal(err)
		}
		e := New(m)
		if err := e.SetInput(input); err != nil {
			t.Fatal(err)
		}
		fast := 0
		e.InvokeEach(func(l *model.Layer, ins [][]byte, out []byte) {
			lc := *l
			switch {
			case l.Conv != nil && l.Conv.Pack != nil:
				p := *l.Conv
				p.Pack, lc.Conv = nil, &p
			case l.Add != nil && l.Add.Pack != nil:
				p := *l.Add
				p.Pack, lc.Add = nil, &p
			default:
				return
			}
			fast++
			want := make([]byte, len(out))
			RunLayer(m, &lc, ins, want, m.OutputShape(l).Full(), nil)
			if !bytes.Equal(out, want) {
				t.Errorf("%s on %s: layer %d (%v): the fast kernel's output differs from the portable kernel's", rec.Model, rec.Input, l.Index, l.Op)
			}
		})
		t.Logf("%s on %s: %d layers on fast kernels, all equal", filepath.Base(rec.Model), filepath.Base(rec.Input), fast)
	}
}

// TestSingleRoundingReproducesXNNPACK: with one rounding per
// requantization the executor gives tfjs-tflite's outputs (TFLite's
// WebAssembly build, XNNPACK delegate) value for value on every shared
// model and input; with TFLite Micro's double rounding it need not.
func TestSingleRoundingReproducesXNNPACK(t *testing.T) {
	dir, recs := loadOracle(t)
	differsDouble := 0
	for _, rec := range recs {
		single := runRecord(t, dir, rec, Options{Rounding: fixedpoint.Single})
		double := runRecord(t, dir, rec, Options{})
		for i := range single {
			if int(single[i]) != rec.OutputTFJS[i] {
				t.Errorf("%s on %s: single rounding gives %v, XNNPACK %v", rec.Model, rec.Input, single, rec.OutputTFJS)
				break
			}
		}
		for i := range double {
			if int(double[i]) != rec.OutputTFJS[i] {
				differsDouble++
				t.Logf("%s on %s: double rounding differs from XNNPACK at output %d (%d vs %d)", filepath.Base(rec.Model), filepath.Base(rec.Input), i, double[i], rec.OutputTFJS[i])
				break
			}
		}
	}
	t.Logf("%d of %d outputs differ from XNNPACK's under double rounding, none under single", differsDouble, len(recs))
}
