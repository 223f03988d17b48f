package nightly

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const exampleConfig = `# the issue's example, with files of this test
boards:
  - {name: sim-msp430, board: sim, profile: msp430fr5994}
  - {name: qemu, board: qemu-stm32}
  - {name: bench-1, board: serial, port: /dev/serial/by-id/usb-x, supply: "tcp://127.0.0.1:5025", tags: [msp430]}
models:
  - {path: model.tflite, input: input.bin}
schedulers: [tile, inas, adaptive]
traces: [trace.csv]
inferences: 2
loop: true
repeat: 1
timeout: 10m
retries: 1
exclude: [{board: qemu, scheduler: sonic}]
`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestParseExample(t *testing.T) {
	dir := writeFiles(t, map[string]string{"matrix.yaml": exampleConfig, "model.tflite": "m", "input.bin": "i", "trace.csv": "t"})
	cfg, err := Load(filepath.Join(dir, "matrix.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Boards) != 3 || cfg.Boards[2].Port != "/dev/serial/by-id/usb-x" || cfg.Boards[2].Tags[0] != "msp430" {
		t.Errorf("boards %+v", cfg.Boards)
	}
	if cfg.Models[0].Path != filepath.Join(dir, "model.tflite") || cfg.Models[0].Name != "model" {
		t.Errorf("model %+v: want its path resolved against the config's folder", cfg.Models[0])
	}
	if cfg.Inferences != 2 || !cfg.Loop || cfg.Retries != 1 || time.Duration(cfg.Timeout) != 10*time.Minute {
		t.Errorf("settings %+v", cfg)
	}
	if time.Duration(cfg.HealthTimeout) != DefaultHealthTimeout || cfg.NoInference != "fail" {
		t.Errorf("defaults: health %v, no_inference %q", time.Duration(cfg.HealthTimeout), cfg.NoInference)
	}
	p, err := Expand(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 3 boards x 3 schedulers x 1 trace; nothing named sonic to exclude.
	if len(p.Cells) != 9 || p.Excluded != 0 {
		t.Errorf("%d cells, %d excluded; want 9, 0", len(p.Cells), p.Excluded)
	}
}

// TestConfigErrors: every bad value is refused naming the file, its line
// and the key; an unknown key suggests the nearest known one.
func TestConfigErrors(t *testing.T) {
	base := "boards: [{name: s, board: sim}]\nschedulers: [tile]\ntraces: [rf-office]\n"
	cases := []struct{ yaml, want string }{
		{base + "inferenecs: 3\n", "matrix.yaml:4: inferenecs: unknown key (did you mean inferences?)"},
		{base + "inferences: lots\n", `matrix.yaml:4: inferences: want an integer, got the string "lots"`},
		{base + "loop: 1\n", "loop: want true or false"},
		{base + "timeout: 10\n", "timeout: want a duration such as 90s or 10m"},
		{base + "timeout: -1s\n", "timeout: want a positive duration"},
		{base + "retries: 99\n", "retries: want 0 to 10"},
		{base + "repeat: 0\n", "repeat: want 1 to 1000"},
		{base + "no_inference: pass\n", "no_inference: want fail or error"},
		{"boards: [{name: s, board: sim, workrs: 2}]\nschedulers: [tile]\ntraces: [rf-office]\n", "matrix.yaml:1: boards[0].workrs: unknown key (did you mean workers?)"},
		{"boards: [{name: s, board: simm}]\nschedulers: [tile]\ntraces: [rf-office]\n", `boards[0].board: "simm": want one of sim, qemu-stm32, serial`},
		{"boards: [{name: s, board: serial}]\nschedulers: [tile]\ntraces: [rf-office]\n", "boards[0].port: a serial board needs its port"},
		{"boards: [{name: s, board: sim}, {name: s, board: sim}]\nschedulers: [tile]\ntraces: [rf-office]\n", `board "s" is named twice`},
		{"boards: [{board: sim}]\nschedulers: [tile]\ntraces: [rf-office]\n", "boards[0].name: a board needs a name"},
		{"boards:\n  - name: s\n    board: sim\n    tags: tagged\n", "matrix.yaml:4: boards[0].tags: want a list of strings"},
		{"boards: s\n", "boards: want a list of maps"},
		{"schedulers: [tile]\ntraces: [rf-office]\n", "boards: at least one board is needed"},
		{base + "models: [{path: [a, b]}]\n", `models[0].path: want a string, got a list`},
		{base + "exclude: [{board: s, sched: tile}]\n", "exclude[0].sched: unknown key (did you mean scheduler?)"},
		{"boards: [{name: s, board: sim}]\nschedulers: [tile, tile]\ntraces: [rf-office]\n", `schedulers[1]: empty or repeated scheduler "tile"`},
		{"boards: [{name: s, board: sim\n", "matrix.yaml"},
	}
	for _, c := range cases {
		_, err := Parse([]byte(c.yaml), "matrix.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant ...%s...", c.yaml, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: a message of more than one line: %q", c.yaml, err)
		}
	}
}

func TestMissingFileNamed(t *testing.T) {
	cfg, err := Parse([]byte("boards: [{name: s, board: sim}]\nschedulers: [tile]\ntraces: [no-such-trace.csv]\n"), "/tmp/m.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Expand(cfg); err == nil || !strings.Contains(err.Error(), "trace no-such-trace") || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("Expand with a missing trace: %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(exampleConfig))
	f.Add([]byte("boards: [{name: s, board: sim}]\nschedulers: [tile]\ntraces: [rf-office]\nexclude: [{tag: '['}]\n"))
	f.Add([]byte("boards: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(err.Error(), "yaml:") {
				t.Fatalf("a message of more than one line: %q", err)
			}
			return
		}
		if len(cfg.Boards) == 0 || len(cfg.Schedulers) == 0 || len(cfg.Traces) == 0 || cfg.Repeat < 1 {
			t.Fatalf("accepted an incomplete matrix: %+v", cfg)
		}
	})
}
