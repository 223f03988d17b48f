package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/batteryless/harness/harness/testenv"
	"github.com/batteryless/harness/reports"

	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/fixedpoint"
	"github.com/batteryless/harness/harness/model"
)

const sharedData = "../../shared/data"

func needShared(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(sharedData); err != nil {
		testenv.SharedData(t, sharedData)
	}
}

// run executes the command line in-process and returns stdout and the error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestInferBundledDefaults(t *testing.T) {
	out, err := run(t, "infer", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Output []float64 `json:"output"`
		Argmax int       `json:"argmax"`
		MACs   int64     `json:"macs"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	m, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Output) != m.OutputTensor().Shape.Elems() || res.MACs != m.MACs() {
		t.Fatalf("infer --json = %+v, want %d outputs and %d MACs", res, m.OutputTensor().Shape.Elems(), m.MACs())
	}
	if res.Output[res.Argmax] != maxOf(res.Output) {
		t.Fatalf("argmax %d does not point at the largest output in %v", res.Argmax, res.Output)
	}
}

func maxOf(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func TestInferSharedModelAndBench(t *testing.T) {
	needShared(t)
	out, err := run(t, "infer", filepath.Join(sharedData, "models/kws_dscnn_int8.tflite"),
		"--input", filepath.Join(sharedData, "inputs/kws_ref_input0_int8.bin"), "--bench", "3", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Argmax  int     `json:"argmax"`
		MedianS float64 `json:"median_s"`
		Runs    int     `json:"runs"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Argmax != 5 || res.Runs != 3 || res.MedianS <= 0 {
		t.Fatalf("kws on its reference input: %+v, want argmax 5 (\"on\") and a positive median over 3 runs", res)
	}
	table, err := run(t, "infer", filepath.Join(sharedData, "models/kws_dscnn_int8.tflite"),
		"--input", filepath.Join(sharedData, "inputs/kws_ref_input0_int8.bin"))
	if err != nil || !strings.Contains(table, "argmax 5") {
		t.Fatalf("table output: %v\n%s", err, table)
	}
}

func TestInferRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.bin")
	if err := os.WriteFile(short, make([]byte, 7), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := run(t, "infer", "--input", short)
	if err == nil || !strings.Contains(err.Error(), "short.bin: 7 bytes") {
		t.Fatalf("a 7-byte input gave %v", err)
	}
	_, err = run(t, "infer", filepath.Join(dir, "missing.tflite"))
	if err == nil || !strings.Contains(err.Error(), "missing.tflite") {
		t.Fatalf("a missing model gave %v", err)
	}
	garbage := filepath.Join(dir, "garbage.tflite")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte{0xff}, 1024), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = run(t, "infer", garbage)
	if err == nil || !strings.HasPrefix(err.Error(), garbage) {
		t.Fatalf("a garbage model gave %v", err)
	}
}

func TestVectorsCommand(t *testing.T) {
	needShared(t)
	out, err := run(t, "vectors", filepath.Join(sharedData, "vectors"), "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct{ Passed, Failed int }
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 0 || rep.Passed != 44 {
		t.Fatalf("vectors: %+v, want 44 passed, 0 failed", rep)
	}
}

func TestVectorsFailureExitsNonZero(t *testing.T) {
	dir := t.TempDir()
	bad := `{"op": "mul_s8", "case": "wrong", "params": {"input1_offset": 0, "input2_offset": 0, "output_mult": 1073741824, "output_shift": 0,
	  "output_offset": 0, "out_activation_min": -128, "out_activation_max": 127},
	  "tensors": {"input1": {"dtype": "int8", "shape": [2], "data": [2, 3]}, "input2": {"dtype": "int8", "shape": [2], "data": [2, 3]},
	  "output_ref": {"dtype": "int8", "shape": [2], "data": [2, 99]}}}`
	if err := os.WriteFile(filepath.Join(dir, "wrong.json"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "vectors", dir)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("a failing vector gave %v, want exit code 1", err)
	}
	if !strings.Contains(out, "output[1] = 5, want 99") {
		t.Fatalf("the failure table does not show the first difference:\n%s", out)
	}
}

func TestModelCommand(t *testing.T) {
	out, err := run(t, "model", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var info modelInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for _, l := range info.Layers {
		ops[l.Op] = true
	}
	for _, op := range []string{"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} {
		if !ops[op] {
			t.Errorf("bundled model lacks %s: %v", op, ops)
		}
	}
	if !ops["MAX_POOL_2D"] && !ops["AVERAGE_POOL_2D"] {
		t.Errorf("bundled model has no pooling: %v", ops)
	}
	// Small enough for the MSP430FR5994's 256 KiB FRAM, big enough to need
	// tiling in its 8 KiB SRAM.
	if info.WeightBytes+info.ArenaBytes > 256<<10 {
		t.Errorf("bundled model needs %d bytes", info.WeightBytes+info.ArenaBytes)
	}
	if info.PeakActivationBytes <= 8<<10/2 {
		t.Errorf("bundled model's peak activations %d fit in half the MSP430's SRAM: no tiling needed", info.PeakActivationBytes)
	}
}

func TestModelGenReproducible(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "m.tflite")
	if _, err := run(t, "model", "gen", "-o", out, "--input-out", filepath.Join(dir, "in.bin")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bundled.Model()) {
		t.Fatal("model gen with the default seed does not reproduce the bundled model")
	}
	other := filepath.Join(dir, "other.tflite")
	if _, err := run(t, "model", "gen", "-o", other, "--seed", "7"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(other); bytes.Equal(b, got) {
		t.Fatal("another seed gave the same model")
	}
}

// TestConfigPrecedence: flag over HARNESS_* over the config file.
func TestConfigPrecedence(t *testing.T) {
	needShared(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "harness.yaml")
	kws := filepath.Join(sharedData, "models/kws_dscnn_int8.tflite")
	micro := filepath.Join(sharedData, "models/micro_speech_int8.tflite")
	if err := os.WriteFile(cfg, []byte("model: "+kws+"\njson: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	modelOf := func(out string) string {
		var info modelInfo
		if err := json.Unmarshal([]byte(out), &info); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return info.Model
	}
	out, err := run(t, "model", "--config", cfg)
	if err != nil || modelOf(out) != kws {
		t.Fatalf("config file: %v %q", err, out)
	}
	t.Setenv("HARNESS_MODEL", micro)
	out, err = run(t, "model", "--config", cfg)
	if err != nil || modelOf(out) != micro {
		t.Fatalf("environment over config: %v", err)
	}
	out, err = run(t, "model", "--config", cfg, "--model", kws)
	if err != nil || modelOf(out) != kws {
		t.Fatalf("flag over environment: %v", err)
	}
	if _, err := run(t, "model", "--config", filepath.Join(dir, "absent.yaml")); err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Fatalf("a missing config file gave %v", err)
	}
}

func TestVersion(t *testing.T) {
	out, err := run(t, "version", "--json")
	if err != nil || !strings.Contains(out, `"version"`) {
		t.Fatalf("version: %v %s", err, out)
	}
}

// FuzzInferInput feeds arbitrary bytes as the input tensor of the bundled
// model: a wrong size is refused with one line, a right one runs; never a panic.
func FuzzInferInput(f *testing.F) {
	m, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bundled.Input())
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := checkInput(data, m); err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		res, err := infer(m, data, 0, fixedpoint.Double)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Output) != m.OutputTensor().Shape.Elems() {
			t.Fatalf("%d outputs", len(res.Output))
		}
	})
}

func TestReplayBundledTraceFile(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "log.jsonl")
	out, err := run(t, "replay", "../traces/rf-office.csv", "--json", "--log", logPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Inferences  int `json:"inferences"`
		Verified    int `json:"verified"`
		Mismatches  int `json:"mismatches"`
		PowerCycles int `json:"power_cycles"`
		Commits     int `json:"commits"`
		Latency     struct {
			Mean, P50, P95, Max float64
		} `json:"latency_s"`
		WallS          float64 `json:"wall_s"`
		ReferenceWallS float64 `json:"reference_wall_s"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if rep.Inferences == 0 || rep.Verified != rep.Inferences || rep.Mismatches != 0 || rep.PowerCycles == 0 || rep.Commits == 0 {
		t.Fatalf("replay: %+v", rep)
	}
	if !(rep.Latency.P50 <= rep.Latency.P95 && rep.Latency.P95 <= rep.Latency.Max && rep.Latency.Mean > 0) {
		t.Fatalf("latency summary out of order: %+v", rep.Latency)
	}
	first, err := os.ReadFile(logPath)
	if err != nil || len(first) == 0 {
		t.Fatalf("log: %v", err)
	}
	// Same input, same output: a second replay writes the same log.
	if _, err := run(t, "replay", "../traces/rf-office.csv", "--json", "--log", logPath); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(logPath)
	// The header says when each run started; the rest is the same.
	started := regexp.MustCompile(`"started":"[^"]*"`)
	if !bytes.Equal(started.ReplaceAll(first, nil), started.ReplaceAll(second, nil)) {
		t.Fatal("two replays wrote different logs")
	}
	lg, err := reports.ReadFullLog(bytes.NewReader(first), logPath)
	if err != nil {
		t.Fatal(err)
	}
	h := lg.Header
	if h == nil || h.Board != "sim" || h.Scheduler != "adaptive" || h.Profile != "msp430fr5994" || len(h.ModelSHA256) != 64 ||
		len(h.TraceSHA256) != 64 || len(h.PlanSHA256) != 64 || len(h.InputSHA256) != 64 || len(h.ProfileSHA256) != 64 || h.Started == "" || len(h.Command) == 0 {
		t.Errorf("header %+v", h)
	}
	if lg.End == nil || lg.End.Reason == "" {
		t.Errorf("no end record: %+v", lg.End)
	}
}

func TestReplayErrors(t *testing.T) {
	if _, err := run(t, "replay", "no-such-trace"); err == nil || !strings.Contains(err.Error(), "no-such-trace") {
		t.Fatalf("missing trace: %v", err)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("time_s,power_w\n0,0.001\n0.5,-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "replay", bad); err == nil || !strings.Contains(err.Error(), "bad.csv:3") {
		t.Fatalf("a negative power on line 3 gave %v", err)
	}
	if _, err := run(t, "replay", "--scheduler", "nope"); err == nil || !strings.Contains(err.Error(), "unknown scheduler") {
		t.Fatalf("unknown scheduler: %v", err)
	}
}

func TestInjectCommand(t *testing.T) {
	out, err := run(t, "inject", "--json", "--random", "50")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct{ Mismatches int }
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Mismatches != 0 {
		t.Fatalf("inject: %v %s", err, out)
	}
}

func TestTraceCommands(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "synth.csv")
	if _, err := run(t, "trace", "synth", "square:high=2mW,low=0,period_on=1s,period_off=1s,duration=10s,rate=10Hz", "-o", out); err != nil {
		t.Fatal(err)
	}
	js, err := run(t, "trace", "info", out, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st []struct {
		Duration, MeanW, EnergyJ float64
	}
	if err := json.Unmarshal([]byte(js), &st); err != nil || len(st) != 1 {
		t.Fatalf("%v %s", err, js)
	}
	if d := st[0].Duration; d < 9.99 || d > 10.01 || st[0].MeanW < 0.9e-3 || st[0].MeanW > 1.1e-3 {
		t.Fatalf("square wave of 2 mW half the time over 10 s: %+v", st[0])
	}
	conv := filepath.Join(dir, "conv.csv")
	if _, err := run(t, "trace", "convert", out, "--resample", "0.5", "--scale", "2", "-o", conv); err != nil {
		t.Fatal(err)
	}
	js, err = run(t, "trace", "info", conv, "--json")
	if err != nil || json.Unmarshal([]byte(js), &st) != nil {
		t.Fatalf("%v %s", err, js)
	}
	if e := st[0].EnergyJ; e < 0.0199 || e > 0.0201 {
		t.Fatalf("scaled x2 and resampled, the energy is %g J, want 0.02", e)
	}
	if _, err := run(t, "trace", "synth", "nonsense:x=1"); err == nil {
		t.Fatal("a bad spec was accepted")
	}
}

func TestScheduleCommand(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "plan.bin")
	out, err := run(t, "schedule", "--json", "--image", img, "--scheduler", "layer")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Scheduler string `json:"scheduler"`
		Tasks     []struct {
			Commit bool `json:"commit"`
		} `json:"tasks"`
		Layers []struct {
			Tasks int `json:"tasks"`
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	commits := 0
	for _, task := range p.Tasks {
		if task.Commit {
			commits++
		}
	}
	if p.Scheduler != "layer" || commits != len(p.Layers) || len(p.Tasks) == 0 {
		t.Fatalf("schedule --json: scheduler %q, %d commits for %d layers", p.Scheduler, commits, len(p.Layers))
	}
	data, err := os.ReadFile(img)
	if err != nil || len(data) < 32 || string(data[:4]) != "IHPL" {
		t.Fatalf("image: %v, %d bytes", err, len(data))
	}
	table, err := run(t, "schedule")
	if err != nil || !strings.Contains(table, "tasks/commit") {
		t.Fatalf("schedule table: %v\n%s", err, table)
	}
}

func TestSelectCommand(t *testing.T) {
	dir := t.TempDir()
	set := filepath.Join(dir, "set.yaml")
	if err := os.WriteFile(set, []byte("models:\n  - name: tiny\n    path: bundled:tinycnn\n    accuracy: 0.5\n    source: test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "select", "rf-office", "--deadline", "15", "--models", set, "--schedulers", "tile,adaptive", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Selections []struct {
			Scheduler string  `json:"scheduler"`
			Model     string  `json:"model"`
			P95       float64 `json:"latency_p95_s"`
		} `json:"selections"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range rep.Selections {
		got[s.Scheduler] = s.Model
	}
	// On the bundled RF trace tile's p95 is about 20 s and adaptive's about 10 s.
	if got["adaptive"] != "tiny" || got["tile"] != "" {
		t.Fatalf("selections at a 15 s deadline: %+v", rep.Selections)
	}
	if _, err := run(t, "select", "rf-office", "--deadline", "15", "--models", filepath.Join(dir, "none.yaml")); err == nil {
		t.Fatal("a missing model set was accepted")
	}
	if err := os.WriteFile(set, []byte("models:\n  - name: x\n    path: bundled:tinycnn\n    accuracy: 7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "select", "rf-office", "--deadline", "15", "--models", set); err == nil || !strings.Contains(err.Error(), "accuracy 7") {
		t.Fatalf("an accuracy of 7 gave %v", err)
	}
}

func TestCompareCommand(t *testing.T) {
	out, err := run(t, "compare", "rf-office", "--schedulers", "tile,adaptive", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Rows []struct {
			Scheduler    string  `json:"scheduler"`
			LatencyMeanS float64 `json:"latency_mean_s"`
			LowerBoundS  float64 `json:"lower_bound_s"`
			Verified     int     `json:"verified"`
			Mismatches   int     `json:"mismatches"`
			Livelock     bool    `json:"livelock"`
		} `json:"rows"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Rows) != 2 {
		t.Fatalf("%v: %s", err, out)
	}
	for _, r := range rep.Rows {
		if r.Verified == 0 || r.Mismatches != 0 || r.Livelock || r.LatencyMeanS < r.LowerBoundS || r.LowerBoundS <= 0 {
			t.Fatalf("compare row %+v", r)
		}
	}
}

// TestInferLayersAndRounding: --layers lists every layer's output (all
// values in JSON), the last layer's values are the output, and --rounding
// single changes the numbers where the two modes part, with each layer
// saying how many values the other mode changes.
func TestInferLayersAndRounding(t *testing.T) {
	run := func(args ...string) inferResult {
		t.Helper()
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetArgs(append([]string{"infer", "--json", "--layers"}, args...))
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		var res inferResult
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	double := run()
	m, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		t.Fatal(err)
	}
	if len(double.Layers) != len(m.Layers) || double.Rounding != "double" {
		t.Fatalf("%d layers (model has %d), rounding %q", len(double.Layers), len(m.Layers), double.Rounding)
	}
	last := double.Layers[len(double.Layers)-1]
	if !slices.Equal(last.Values, double.Output) {
		t.Errorf("last layer %v, output %v", last.Values, double.Output)
	}
	for _, l := range double.Layers {
		if len(l.Values) != m.Tensors[m.Layers[l.Index].Output].Shape.Elems() || l.OtherRounding != "single" || len(l.CRC32) != 8 {
			t.Errorf("layer %d: %d values, other %q, crc %q", l.Index, len(l.Values), l.OtherRounding, l.CRC32)
		}
	}
	single := run("--rounding", "single")
	if single.Rounding != "single" || single.Layers[0].OtherRounding != "double" {
		t.Fatalf("rounding %q, other %q", single.Rounding, single.Layers[0].OtherRounding)
	}
	parted := 0
	for i, l := range single.Layers {
		parted += l.OtherDiffers
		n := 0
		for j, v := range l.Values {
			if v != double.Layers[i].Values[j] {
				n++
			}
		}
		if n != l.OtherDiffers || n != double.Layers[i].OtherDiffers {
			t.Errorf("layer %d: %d values differ between the runs, reported %d and %d", i, n, l.OtherDiffers, double.Layers[i].OtherDiffers)
		}
	}
	if parted == 0 {
		t.Error("the two rounding modes gave the same numbers in every layer of the bundled model")
	}
	cmd := newRootCmd()
	cmd.SetArgs([]string{"infer", "--rounding", "nearest"})
	cmd.SetOut(new(bytes.Buffer))
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "--rounding") {
		t.Errorf("--rounding nearest: %v", err)
	}
}
