package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/modelgen"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/replay"
)

// genSet writes the generated model and n inputs of its labelled set
// (folder per class) under dir, and returns the model path and the set.
func genSet(t *testing.T, dir string, n int) (string, []modelgen.Labelled) {
	t.Helper()
	cfg := modelgen.DefaultConfig()
	mb, _, err := modelgen.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	modelPath := filepath.Join(dir, "gen.tflite")
	if err := os.WriteFile(modelPath, mb, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeLabelledSet(filepath.Join(dir, "data"), cfg, n); err != nil {
		t.Fatal(err)
	}
	set, err := modelgen.LabelledSet(cfg, n)
	if err != nil {
		t.Fatal(err)
	}
	return modelPath, set
}

// referenceTop1 counts, with a plain executor, how many of set the model
// at path classifies as labelled.
func referenceTop1(t *testing.T, path string, set []modelgen.Labelled) int {
	t.Helper()
	m, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	e := refexec.New(m)
	n := 0
	for _, s := range set {
		out, err := e.Run(s.Input)
		if err != nil {
			t.Fatal(err)
		}
		if replay.Argmax(tensorValues(m.OutputTensor(), out)) == s.Label {
			n++
		}
	}
	return n
}

func evalJSON(t *testing.T, args ...string) (evalResult, error) {
	t.Helper()
	out, err := run(t, append([]string{"eval", "--json"}, args...)...)
	var r evalResult
	if err == nil {
		if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
			t.Fatalf("%v: %s", jerr, out)
		}
	}
	return r, err
}

// TestEvalGeneratedSet: eval over the project's generated labelled set
// counts what a plain executor counts, the same on 1 or 3 jobs, caches the
// result by model and data, and measures again when a byte changes.
func TestEvalGeneratedSet(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir := t.TempDir()
	modelPath, set := genSet(t, dir, 120)
	data := filepath.Join(dir, "data")
	want := referenceTop1(t, modelPath, set)

	one, err := evalJSON(t, modelPath, "--data", data, "--jobs", "1")
	if err != nil {
		t.Fatal(err)
	}
	if one.Evaluated != len(set) || one.Top1Correct != want || one.Bad != 0 || one.Cached {
		t.Fatalf("eval: %d evaluated, %d correct, %d bad, cached %v; want %d, %d, 0, false", one.Evaluated, one.Top1Correct, one.Bad, one.Cached, len(set), want)
	}
	if one.Top5 == nil || *one.Top5 < one.Top1 || one.Classes != 10 {
		t.Errorf("top-5 %v with top-1 %v over %d classes", one.Top5, one.Top1, one.Classes)
	}
	sum := 0
	for l, row := range one.Confusion {
		for p, n := range row {
			sum += n
			if n > 0 && l == p && one.Confusion[l][p] > one.Evaluated {
				t.Errorf("confusion[%d][%d] = %d", l, p, n)
			}
		}
	}
	if sum != one.Evaluated {
		t.Errorf("confusion table holds %d inputs, %d evaluated", sum, one.Evaluated)
	}

	three, err := evalJSON(t, modelPath, "--data", data, "--jobs", "3")
	if err != nil {
		t.Fatal(err)
	}
	if !three.Cached || three.Top1Correct != want || three.DataHash != one.DataHash {
		t.Errorf("second run: cached %v, %d correct, hash %s vs %s", three.Cached, three.Top1Correct, three.DataHash, one.DataHash)
	}
	fresh, err := evalJSON(t, modelPath, "--data", data, "--jobs", "3", "--cache=false")
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Cached || fresh.Top1Correct != want || fmt.Sprint(fresh.Confusion) != fmt.Sprint(one.Confusion) {
		t.Errorf("3 jobs: cached %v, %d correct, confusion %v vs %v", fresh.Cached, fresh.Top1Correct, fresh.Confusion, one.Confusion)
	}

	// One byte of one input changes: a different data hash, measured again.
	entries, _ := filepath.Glob(filepath.Join(data, "*", "*.bin"))
	b, _ := os.ReadFile(entries[0])
	b[0] ^= 1
	if err := os.WriteFile(entries[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	changed, err := evalJSON(t, modelPath, "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Cached || changed.DataHash == one.DataHash {
		t.Errorf("after a change: cached %v, hash unchanged %v", changed.Cached, changed.DataHash == one.DataHash)
	}
}

// TestEvalBadInputs: a corrupt set (a truncated file, a dangling link, a
// label no class has, a label that is no number) is evaluated without them,
// naming each; --bad fail stops at the first with its name; a set for
// another model's input size is refused as a whole.
func TestEvalBadInputs(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir := t.TempDir()
	modelPath, set := genSet(t, dir, 40)
	data := filepath.Join(dir, "data")
	entries, _ := filepath.Glob(filepath.Join(data, "*", "*.bin"))
	if err := os.WriteFile(entries[0], set[0].Input[:100], 0o644); err != nil { // truncated
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere.bin"), filepath.Join(filepath.Dir(entries[1]), "dangling.bin")); err != nil {
		t.Fatal(err)
	}
	r, err := evalJSON(t, modelPath, "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	if r.Evaluated != len(set)-1 || r.Bad != 2 || len(r.BadFiles) != 2 {
		t.Fatalf("%d evaluated, %d bad (%v); want %d and 2", r.Evaluated, r.Bad, r.BadFiles, len(set)-1)
	}
	why := fmt.Sprint(r.BadFiles)
	if !strings.Contains(why, filepath.Base(entries[0])) || !strings.Contains(why, "100 bytes, the model's input takes 1728") ||
		!strings.Contains(why, "dangling.bin") {
		t.Errorf("bad files: %s", why)
	}
	out, err := run(t, "eval", modelPath, "--data", data)
	if err != nil || !strings.Contains(out, "skipped") || !strings.Contains(out, "dangling.bin") {
		t.Errorf("table: %v\n%s", err, out)
	}

	if _, err := evalJSON(t, modelPath, "--data", data, "--bad", "fail"); err == nil ||
		!(strings.Contains(err.Error(), filepath.Base(entries[0])) || strings.Contains(err.Error(), "dangling.bin")) {
		t.Errorf("--bad fail: %v", err)
	}

	// A manifest: a header, a good line, a label out of range, a label
	// that is not a number, a missing file.
	good, _ := filepath.Rel(data, entries[2])
	manifest := filepath.Join(dir, "labels.csv")
	lines := "file,label\n" + good + ",0\n" + good + ",10\n" + good + ",dog\nmissing.bin,1\n"
	if err := os.WriteFile(manifest, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = evalJSON(t, modelPath, "--data", data, "--labels", manifest)
	if err != nil {
		t.Fatal(err)
	}
	if r.Evaluated != 1 || r.Bad != 3 || r.BadFiles[0].Line != 3 || !strings.Contains(r.BadFiles[0].Why, "not a class") ||
		r.BadFiles[1].Line != 4 || r.BadFiles[2].File != "missing.bin" {
		t.Errorf("manifest: %d evaluated, bad %+v", r.Evaluated, r.BadFiles)
	}
	if _, err := evalJSON(t, modelPath, "--data", data, "--labels", manifest, "--bad", "fail"); err == nil || !strings.Contains(err.Error(), "manifest line 3") {
		t.Errorf("manifest --bad fail: %v", err)
	}

	// Inputs of another size: nothing to evaluate, an error naming the set.
	other := filepath.Join(dir, "other")
	if err := os.MkdirAll(filepath.Join(other, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(other, "1", fmt.Sprint(i)+".bin"), make([]byte, 490), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := evalJSON(t, modelPath, "--data", other); err == nil || !strings.Contains(err.Error(), "no input could be evaluated (3 bad)") {
		t.Errorf("wrong input size: %v", err)
	}
	// A class folder without an index, and no manifest.
	if err := os.MkdirAll(filepath.Join(other, "dogs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := evalJSON(t, modelPath, "--data", other); err == nil || !strings.Contains(err.Error(), "dogs: the folder name does not start with a class index") {
		t.Errorf("folder without index: %v", err)
	}
	if _, err := evalJSON(t, modelPath, "--data", other, "--jobs", "0"); err == nil {
		t.Error("--jobs 0 accepted")
	}
}

// TestEvalCancelled: a cancelled context stops eval with the interrupted
// exit code.
func TestEvalCancelled(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir := t.TempDir()
	modelPath, _ := genSet(t, dir, 20)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := evaluate(ctx, modelPath, evalOptions{data: filepath.Join(dir, "data"), jobs: 2, cache: false})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 130 {
		t.Errorf("cancelled eval: %v", err)
	}
}

// FuzzEvalManifest reads arbitrary bytes as a manifest: entries or a
// one-line error naming the line, never a panic.
func FuzzEvalManifest(f *testing.F) {
	f.Add([]byte("file,label\na.bin,1\nb.bin,x\n"))
	f.Add([]byte("\"a,b.bin\",2\r\n# note\n\n,\n"))
	f.Add([]byte("a.bin,1,2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "labels.csv")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s := &evalSource{dir: dir, manifest: p, classes: 3, inputBytes: 4}
		err := s.each(context.Background(), func(e evalEntry) error {
			if e.bad == "" && (e.label < 0 || e.label >= 3 || len(e.data) != 4) {
				t.Fatalf("entry %+v accepted", e)
			}
			return nil
		})
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
	})
}

// TestSelectMeasuredAccuracy: a model set naming a labelled set gets its
// accuracy measured (the table and JSON say so, with the count), ranks
// models by it, skips a corrupt input of the set, and refuses a set of the
// wrong input size naming the model.
func TestSelectMeasuredAccuracy(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	dir := t.TempDir()
	// The generated model of the default config is the bundled model.
	_, set := genSet(t, dir, 60)
	first := filepath.Join(dir, "data", fmt.Sprint(set[0].Label), "000000.bin") // set[0]'s file
	if err := os.WriteFile(first, []byte("corrupt"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := modelgen.DefaultConfig()
	cfg.Seed = 2
	other, _, err := modelgen.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "seed2.tflite"), other, 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := "models:\n" +
		"  - name: seed2\n    path: seed2.tflite\n    accuracy: 0.5\n    source: a given figure\n" +
		"  - name: tiny\n    path: bundled:tinycnn\n    data: data\n"
	modelSet := filepath.Join(dir, "set.yaml")
	if err := os.WriteFile(modelSet, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	want := referenceTop1(t, filepath.Join(dir, "gen.tflite"), set[1:])
	out, err := run(t, "select", "rf-office", "--deadline", "1000", "--models", modelSet, "--schedulers", "adaptive", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Selections []selection `json:"selections"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Selections) != 1 {
		t.Fatalf("selections %+v", rep.Selections)
	}
	sel := rep.Selections[0]
	wantAcc := float64(want) / float64(len(set)-1)
	if sel.Model != "tiny" || sel.AccuracySource != "measured" || sel.AccuracyInputs != len(set)-1 || sel.Accuracy != wantAcc {
		t.Fatalf("selection %+v; want tiny, measured on %d inputs, accuracy %v", sel, len(set)-1, wantAcc)
	}
	table, err := run(t, "select", "rf-office", "--deadline", "1000", "--models", modelSet, "--schedulers", "adaptive")
	if err != nil || !strings.Contains(table, fmt.Sprintf("measured (n=%d)", len(set)-1)) {
		t.Errorf("table: %v\n%s", err, table)
	}

	// The given model alone says "given".
	if err := os.WriteFile(modelSet, []byte("models:\n  - name: seed2\n    path: seed2.tflite\n    accuracy: 0.5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	table, err = run(t, "select", "rf-office", "--deadline", "1000", "--models", modelSet, "--schedulers", "adaptive")
	if err != nil || !strings.Contains(table, "0.500 given") {
		t.Errorf("given accuracy table: %v\n%s", err, table)
	}

	// A labelled set of another input size: refused, naming the model.
	wrong := filepath.Join(dir, "wrong", "3")
	if err := os.MkdirAll(wrong, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wrong, "a.bin"), make([]byte, 490), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(modelSet, []byte("models:\n  - name: tiny\n    path: bundled:tinycnn\n    data: wrong\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "select", "rf-office", "--deadline", "1000", "--models", modelSet); err == nil ||
		!strings.Contains(err.Error(), "model tiny: measuring accuracy") || !strings.Contains(err.Error(), "no input could be evaluated") {
		t.Errorf("wrong input size: %v", err)
	}
}
