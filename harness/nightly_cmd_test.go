package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/batteryless/harness/harness/nightly"
)

func writeMatrix(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "matrix.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return 2
	}
	return 0
}

// TestRunReportGateCommands drives the three commands in-process: a run,
// its report written again, a merge of two shards, and the gate.
func TestRunReportGateCommands(t *testing.T) {
	exe := harnessExe(t)
	cfg := writeMatrix(t, "boards: [{name: sim, board: sim}]\nschedulers: [tile, inas]\ntraces: [rf-office]\nloop: true\n")
	tmp := t.TempDir()
	whole := filepath.Join(tmp, "whole")
	out, err := run(t, "run", cfg, "--out", whole, "--harness", exe, "--json", "--quiet")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var sum nightly.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Counts.Pass != 2 || sum.ExitCode != 0 {
		t.Fatalf("run --json: %v %+v\n%s", err, sum, out)
	}
	for _, f := range []string{nightly.ResultsFile, nightly.BenchFile, nightly.JUnitFile, nightly.HTMLFile, nightly.SummaryFile} {
		os.Remove(filepath.Join(whole, f))
	}
	if out, err := run(t, "report", whole); err != nil || !strings.Contains(out, "2 / 0 / 0 / 0") {
		t.Fatalf("report: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(whole, nightly.HTMLFile)); err != nil {
		t.Errorf("report did not write the HTML: %v", err)
	}
	for i, shard := range []string{"1/2", "2/2"} {
		if out, err := run(t, "run", cfg, "--out", filepath.Join(tmp, "s", string(rune('a'+i))), "--shard", shard, "--harness", exe, "--quiet"); err != nil {
			t.Fatalf("shard %s: %v\n%s", shard, err, out)
		}
	}
	merged := filepath.Join(tmp, "merged")
	if out, err := run(t, "report", "merge", filepath.Join(tmp, "s", "a"), filepath.Join(tmp, "s", "b"), "--out", merged, "--json"); err != nil || !strings.Contains(out, `"pass": 2`) {
		t.Fatalf("report merge: %v\n%s", err, out)
	}
	if out, err := run(t, "report", "merge", filepath.Join(tmp, "s", "a"), "--out", filepath.Join(tmp, "half")); exitCode(err) != nightly.ExitCellErrors {
		t.Errorf("merge of one shard of two: exit %d, want %d\n%s", exitCode(err), nightly.ExitCellErrors, out)
	}
	if out, err := run(t, "gate", "--baseline", whole, "--current", merged); err != nil || !strings.Contains(out, "nothing moved") {
		t.Errorf("gate of equal runs: %v\n%s", err, out)
	}
	if out, err := run(t, "gate", "--baseline", whole, "--current", filepath.Join(tmp, "half")); exitCode(err) != 1 {
		t.Errorf("gate against a run with errors: exit %d\n%s", exitCode(err), out)
	}
	// Refusals: a bad shard, no --out, a folder that holds a run, a bad
	// matrix, a merge without --out.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", cfg, "--out", filepath.Join(tmp, "x"), "--shard", "3/2"}, "--shard"},
		{[]string{"run", cfg}, "--out DIR is required"},
		{[]string{"run", cfg, "--out", whole, "--harness", exe}, "holds a run already"},
		{[]string{"run", writeMatrix(t, "boards: [{name: s, board: sim}]\nschedulers: [tile]\ntraces: [rf-office]\nrepeats: 2\n"), "--out", filepath.Join(tmp, "y")}, "repeats: unknown key (did you mean repeat?)"},
		{[]string{"report", "merge", whole}, "--out DIR is required"},
		{[]string{"gate", "--baseline", whole}, "both required"},
		{[]string{"report", tmp}, "not a run's folder"},
	} {
		out, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want ...%s...\n%s", c.args, err, c.want, out)
		}
	}
}

// TestRunInterrupted: Ctrl-C (SIGINT) stops the runner: its cells in flight
// are stopped (their process group), it exits 130, the journal says which
// cells did not finish, and --resume finishes them.
func TestRunInterrupted(t *testing.T) {
	exe := harnessExe(t)
	tmp := t.TempDir()
	slow := filepath.Join(tmp, "slow-harness")
	// The cells of inas hang; the health check and the others pass.
	script := "#!/bin/bash\ncase \"$*\" in *'--scheduler inas'*) sleep 67.5 ;; esac\nexec " + exe + " \"$@\"\n"
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeMatrix(t, "boards: [{name: sim, board: sim}]\nschedulers: [tile, inas]\ntraces: [rf-office, square-2mW]\nloop: true\ntimeout: 5m\n")
	dir := filepath.Join(tmp, "out")
	cmd := exec.Command(exe, "run", cfg, "--out", dir, "--harness", slow)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "[2/4]") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the inas cells are in their sleep
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("the runner did not stop within 20 s of SIGINT:\n%s", out.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want 130:\n%s", err, out.String())
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("67.5")) {
			t.Errorf("%s outlived the interrupted run: %q", p, b)
		}
	}
	run0, err := nightly.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for _, r := range run0.Finals() {
		if r.Reason == "missing" {
			missing++
			if !strings.Contains(r.Message, "--resume reruns it") {
				t.Errorf("unfinished cell %s: %q", r.Name, r.Message)
			}
		}
	}
	if missing != 2 {
		t.Errorf("%d unfinished cells after the interrupt, want the 2 inas ones:\n%s", missing, out.String())
	}
	if out, err := run(t, "run", cfg, "--out", dir, "--resume", "--harness", exe, "--json", "--quiet"); err != nil || !strings.Contains(out, `"ran": 2`) || !strings.Contains(out, `"pass": 4`) {
		t.Errorf("resume: %v\n%s", err, out)
	}
}

// TestCIFilesNameRealCommands parses the example CI files of scripts/ci
// (GitHub Actions workflows, a Kubernetes Indexed Job) and checks that
// every harness command they run is a real command with real flags and
// arguments, that the matrices they name load, and that they have the
// shape the README promises (a merge job that always runs, runners
// labelled per board, the completion index + 1 as the shard).
func TestCIFilesNameRealCommands(t *testing.T) {
	files, _ := filepath.Glob("../scripts/ci/*.y*ml")
	if len(files) < 3 {
		t.Fatalf("scripts/ci has %d YAML files", len(files))
	}
	var commands int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("%s: %v", f, err)
			}
			var scripts []string
			collectScripts(doc, "", &scripts)
			for _, s := range scripts {
				for _, args := range harnessCommands(s) {
					commands++
					checkCommand(t, f, args)
				}
			}
		}
	}
	if commands < 8 {
		t.Errorf("found %d harness commands in scripts/ci", commands)
	}
	checkWorkflowShapes(t)
}

// collectScripts gathers the shell text of a workflow's run: steps and a
// Kubernetes container's command and args.
func collectScripts(v any, key string, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			collectScripts(e, k, out)
		}
	case []any:
		if key == "args" || key == "command" {
			var parts []string
			for _, e := range x {
				if s, ok := e.(string); ok {
					parts = append(parts, s)
				}
			}
			// ["/bin/sh", "-c"] then the script in args.
			if len(parts) > 0 && parts[0] != "/bin/sh" {
				*out = append(*out, strings.Join(parts, " "))
			}
			return
		}
		for _, e := range x {
			collectScripts(e, key, out)
		}
	case string:
		if key == "run" {
			*out = append(*out, x)
		}
	}
}

var (
	ghExpr    = regexp.MustCompile(`\$\{\{[^}]*\}\}`)
	shellMath = regexp.MustCompile(`\$\(\([^)]*\)\)`)
	shellVar  = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)
)

// harnessCommands returns the argument lists of the harness invocations
// in a shell script (expressions and variables made placeholders).
func harnessCommands(script string) [][]string {
	script = strings.ReplaceAll(script, "\\\n", " ")
	script = ghExpr.ReplaceAllString(script, "X")
	script = shellMath.ReplaceAllString(script, "1")
	script = shellVar.ReplaceAllString(script, "X")
	var out [][]string
	for _, line := range strings.Split(script, "\n") {
		for _, part := range regexp.MustCompile(`&&|\|\||;|\|`).Split(line, -1) {
			words := shellWords(strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(part), "(")))
			switch {
			case len(words) >= 3 && words[0] == "go" && words[1] == "run" && words[2] == "./harness":
				out = append(out, words[3:])
			case len(words) > 0 && (words[0] == "harness" || strings.HasSuffix(words[0], "/harness")):
				out = append(out, words[1:])
			}
		}
	}
	return out
}

// shellWords splits on blanks, keeping quoted text together.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	in := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case r == ')':
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// checkCommand resolves a harness command line: a real subcommand, flags
// it has, the arguments it takes, and any matrix it names loads.
func checkCommand(t *testing.T, file string, args []string) {
	t.Helper()
	root := newRootCmd()
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root {
		t.Errorf("%s: harness %s: not a command (%v)", file, strings.Join(args, " "), err)
		return
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("%s: harness %s: %v", file, strings.Join(args, " "), err)
		return
	}
	pos := cmd.Flags().Args()
	if cmd.Args != nil {
		if err := cmd.Args(cmd, pos); err != nil {
			t.Errorf("%s: harness %s: %v", file, strings.Join(args, " "), err)
		}
	}
	for _, p := range pos {
		if strings.HasPrefix(p, "scripts/") && strings.HasSuffix(p, ".yaml") {
			cfg, err := nightly.Load(filepath.Join("..", p))
			if err != nil {
				t.Errorf("%s: %v", file, err)
				continue
			}
			if _, err := os.Stat(sharedData); err == nil {
				if _, err := nightly.Expand(cfg); err != nil {
					t.Errorf("%s: %v", file, err)
				}
			}
		}
	}
}

func readYAML(t *testing.T, file string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			break
		}
		docs = append(docs, d)
	}
	return docs
}

func checkWorkflowShapes(t *testing.T) {
	pr := readYAML(t, "../scripts/ci/pull-request.yml")[0]
	if _, ok := pr["on"].(map[string]any)["pull_request"]; !ok {
		t.Error("pull-request.yml does not run on pull requests")
	}
	nightlyWF := readYAML(t, "../scripts/ci/nightly.yml")[0]
	jobs := nightlyWF["jobs"].(map[string]any)
	merge, ok := jobs["merge"].(map[string]any)
	if !ok || merge["if"] != "always()" || merge["needs"] != "board" {
		t.Errorf("nightly.yml: the merge job must need the board jobs and run if: always(): %v", merge)
	}
	board := jobs["board"].(map[string]any)
	runsOn, _ := board["runs-on"].([]any)
	if len(runsOn) == 0 || runsOn[0] != "self-hosted" {
		t.Errorf("nightly.yml: board jobs run on %v, want self-hosted runners", board["runs-on"])
	}
	var text bytes.Buffer
	for _, s := range merge["steps"].([]any) {
		if r, ok := s.(map[string]any)["run"].(string); ok {
			text.WriteString(r)
		}
	}
	if !strings.Contains(text.String(), "report merge") {
		t.Error("nightly.yml: the merge job does not merge")
	}
	k8s := readYAML(t, "../scripts/ci/k8s-sweep.yaml")
	spec := k8s[0]["spec"].(map[string]any)
	n := spec["completions"].(int)
	if spec["completionMode"] != "Indexed" {
		t.Errorf("k8s-sweep.yaml: completionMode %v", spec["completionMode"])
	}
	data, _ := os.ReadFile("../scripts/ci/k8s-sweep.yaml")
	if want := `--shard "$((JOB_COMPLETION_INDEX + 1))/` + itoaN(n) + `"`; !strings.Contains(string(data), want) {
		t.Errorf("k8s-sweep.yaml: want %s (completions %d)", want, n)
	}
}

func itoaN(n int) string { b, _ := json.Marshal(n); return string(b) }
