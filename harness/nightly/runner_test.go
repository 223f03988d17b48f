package nightly

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batteryless/harness/harness/firmwaretest/fwbuild"
	"github.com/batteryless/harness/harness/testenv"
	"github.com/batteryless/harness/reports"
)

// TestKillResume is the check: a small matrix (sim and
// qemu-stm32, two schedulers, two traces) killed with SIGKILL mid-way and
// resumed gives the same results as an uninterrupted run, no cell twice,
// and leaves no replay or QEMU behind.
func TestKillResume(t *testing.T) {
	testenv.NeedTool(t, "qemu-system-arm", "qemu-system-arm")
	elf := filepath.Join(fwbuild.Build(t, "stm32f4"), "stm32f4", "firmware-noplan.elf")
	bin := harnessBin(t)
	cfg := writeConfig(t, fmt.Sprintf(`boards:
  - {name: sim, board: sim, profile: msp430fr5994, workers: 1}
  - {name: qemu, board: qemu-stm32, elf: %s}
schedulers: [tile, inas]
traces: [rf-office, square-2mW]
inferences: 1
loop: true
timeout: 3m
retries: 1
`, elf))
	whole := filepath.Join(t.TempDir(), "whole")
	sum := runMatrix(t, cfg, Options{Dir: whole})
	if sum.ExitCode != ExitPass || sum.Counts.Pass+sum.Counts.Flaky != 8 || sum.Ran != 8 {
		t.Fatalf("uninterrupted run: %+v", sum)
	}
	checkJUnit(t, whole)

	killed := filepath.Join(t.TempDir(), "killed")
	cmd := exec.Command(bin, "run", cfg, "--out", killed)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill the runner once some cells ended and one is in flight (a QEMU
	// cell: the simulated ones take a tenth of a second).
	deadline := time.Now().Add(2 * time.Minute)
	var finishedAtKill int
	var orphans []int
	for {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the run never had 5 cells ended and one in flight:\n%s", stderr.String())
		}
		ev, _ := ReadJournalFile(filepath.Join(killed, JournalFile))
		st := Fold(ev)
		ended, inFlight := 0, 0
		for _, c := range st.Cells {
			if c.Final() != nil {
				ended++
			} else if c.Unfinished() > 0 {
				inFlight++
			}
		}
		if ended >= 5 && inFlight > 0 {
			orphans = childrenOf(t, killed)
			if !runsQEMU(orphans) {
				// Between a journaled start and its QEMU: kill when
				// there is a QEMU to leave behind.
				time.Sleep(5 * time.Millisecond)
				continue
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			finishedAtKill = ended
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Wait()
	ev, _ := ReadJournalFile(filepath.Join(killed, JournalFile))
	if n := Fold(ev); countFinal(n) < finishedAtKill {
		t.Fatalf("the journal lost results: %d final after the kill, %d seen before", countFinal(n), finishedAtKill)
	}
	finishedAtKill = countFinal(Fold(ev))
	t.Logf("killed with %d of 8 cells finished; processes of the cell in flight: %v", finishedAtKill, orphans)
	waitGone(t, orphans)

	// A run into the folder without --resume is refused.
	c, _ := Load(cfg)
	if _, err := Run(context.Background(), c, Options{Dir: killed, Harness: bin}); !errors.Is(err, ErrRunExists) {
		t.Errorf("a second run into the folder: %v, want ErrRunExists", err)
	}
	sum2 := runMatrix(t, cfg, Options{Dir: killed, Resume: true})
	if sum2.Skipped != finishedAtKill || sum2.Ran != 8-finishedAtKill || sum2.ExitCode != ExitPass {
		t.Errorf("resume: skipped %d, ran %d (want %d, %d), exit %d", sum2.Skipped, sum2.Ran, finishedAtKill, 8-finishedAtKill, sum2.ExitCode)
	}
	sameResults(t, loadFinals(t, whole), loadFinals(t, killed))
	// No cell twice: each attempt ended once, one final result per cell
	// (a retry after an infrastructure error on a loaded host is a new
	// attempt, not the same one again).
	_, ends := countEvents(t, killed)
	for cell, e := range ends {
		seen := map[int]bool{}
		for _, a := range e {
			if seen[a] {
				t.Errorf("cell %s: attempt %d ended twice (%v)", cell, a, e)
			}
			seen[a] = true
		}
	}
	if len(ends) != 8 {
		t.Errorf("%d cells ended, want 8", len(ends))
	}
	if finals := reports.Finals(readResultsFile(t, killed)); len(finals) != 8 {
		t.Errorf("results.jsonl holds %d final records, want 8", len(finals))
	}
	// A second resume has nothing left to do.
	if sum3 := runMatrix(t, cfg, Options{Dir: killed, Resume: true}); sum3.Ran != 0 || sum3.Skipped != 8 {
		t.Errorf("resume of a finished run: ran %d, skipped %d", sum3.Ran, sum3.Skipped)
	}
}

func countFinal(s *State) int {
	n := 0
	for _, c := range s.Cells {
		if c.Final() != nil {
			n++
		}
	}
	return n
}

// childrenOf returns the processes whose command line names dir (the
// replays of a run) and their children (QEMU).
func childrenOf(t *testing.T, dir string) []int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*")
	parent := map[int]int{}
	var direct []int
	for _, p := range procs {
		pid, _ := strconv.Atoi(filepath.Base(p))
		if pid == os.Getpid() {
			continue
		}
		if stat, err := os.ReadFile(p + "/stat"); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i > 0 {
				f := strings.Fields(string(stat[i+1:]))
				if len(f) > 1 {
					parent[pid], _ = strconv.Atoi(f[1])
				}
			}
		}
		cl, err := os.ReadFile(p + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(cl), "\x00")
		if len(args) > 1 && args[1] == "replay" && strings.Contains(string(cl), dir) {
			direct = append(direct, pid)
		}
	}
	out := append([]int(nil), direct...)
	for pid, pp := range parent {
		for _, d := range direct {
			if pp == d {
				out = append(out, pid)
			}
		}
	}
	return out
}

func runsQEMU(pids []int) bool {
	for _, pid := range pids {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && bytes.Contains(b, []byte("qemu-system-arm")) {
			return true
		}
	}
	return false
}

// waitGone fails unless every pid has exited (or is a zombie) within 5 s.
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				break
			}
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && bytes.HasPrefix(bytes.TrimSpace(stat[i+1:]), []byte("Z")) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("process %d outlived its runner: %s", pid, stat)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func readResultsFile(t *testing.T, dir string) []reports.Result {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, ResultsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rs, err := reports.ReadResults(f, ResultsFile)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// checkJUnit validates a run's junit.xml against reports/junit.xsd with
// xmllint, and its structure with reports.CheckJUnit.
func checkJUnit(t *testing.T, dir string) {
	t.Helper()
	file := filepath.Join(dir, JUnitFile)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := reports.CheckJUnit(f); err != nil {
		t.Error(err)
	}
	testenv.NeedTool(t, "xmllint", "libxml2-utils")
	out, err := exec.Command("xmllint", "--noout", "--schema", "../../reports/junit.xsd", file).CombinedOutput()
	if err != nil {
		t.Errorf("xmllint: %v\n%s", err, out)
	}
}

const simMatrix = `boards:
  - {name: sim, board: sim, profile: msp430fr5994}
schedulers: [tile, inas, sonic]
traces: [rf-office, square-2mW, solar-window]
inferences: 1
loop: true
timeout: 2m
`

// TestShardsMerge: two shards merged equal the unsharded run; a missing
// shard's cells come out as errors; folders of another plan are refused.
func TestShardsMerge(t *testing.T) {
	cfg := writeConfig(t, simMatrix)
	tmp := t.TempDir()
	whole := filepath.Join(tmp, "whole")
	if s := runMatrix(t, cfg, Options{Dir: whole}); s.Counts.Pass != 9 {
		t.Fatalf("unsharded: %+v", s)
	}
	s1, s2 := filepath.Join(tmp, "s1"), filepath.Join(tmp, "s2")
	a := runMatrix(t, cfg, Options{Dir: s1, Shard: Shard{1, 2}})
	b := runMatrix(t, cfg, Options{Dir: s2, Shard: Shard{2, 2}})
	if a.Selected+b.Selected != 9 || a.Ran != a.Selected || b.Ran != b.Selected {
		t.Fatalf("shards: %+v, %+v", a, b)
	}
	merged := filepath.Join(tmp, "merged")
	if _, err := Merge([]string{s1, s2}, merged); err != nil {
		t.Fatal(err)
	}
	sameResults(t, loadFinals(t, whole), loadFinals(t, merged))
	checkJUnit(t, merged)
	// The merged folder has every attempt's log.
	for _, r := range loadFinals(t, merged) {
		if _, err := os.Stat(filepath.Join(merged, r.Log)); err != nil {
			t.Errorf("%s: %v", r.Name, err)
		}
	}

	half := filepath.Join(tmp, "half")
	run, err := Merge([]string{s1}, half)
	if err != nil {
		t.Fatal(err)
	}
	c := reports.Count(run.Results)
	if c.Pass != a.Selected || c.Error != b.Selected {
		t.Errorf("shard 2 missing: %+v, want %d pass and %d errors", c, a.Selected, b.Selected)
	}
	for _, r := range run.Finals() {
		if r.Outcome == reports.OutcomeError && (r.Reason != "missing" || !strings.Contains(r.Message, "never ran")) {
			t.Errorf("missing cell %s: %s %q", r.Name, r.Reason, r.Message)
		}
	}
	if _, err := Merge([]string{s1, s2}, merged); !errors.Is(err, ErrRunExists) {
		t.Errorf("merging into a merged folder: %v", err)
	}
	other := filepath.Join(tmp, "other")
	runMatrix(t, writeConfig(t, strings.Replace(simMatrix, "sonic", "hawaii", 1)), Options{Dir: other, DryRun: true})
	if _, err := Merge([]string{s1, other}, filepath.Join(tmp, "bad")); err == nil || !strings.Contains(err.Error(), "not the same matrix") {
		t.Errorf("merging two plans: %v", err)
	}
	t.Run("html", func(t *testing.T) { checkHTML(t, merged, 9) })
}

// TestHealthCheck: a board that fails its health check has its cells
// marked error and not run; the other boards run.
func TestHealthCheck(t *testing.T) {
	cfg := writeConfig(t, `boards:
  - {name: sim, board: sim}
  - {name: bench, board: serial, port: /nonexistent/ttyUSB9, supply: "tcp://127.0.0.1:1"}
schedulers: [tile]
traces: [rf-office]
inferences: 1
loop: true
health_timeout: 1m
`)
	dir := t.TempDir()
	sum := runMatrix(t, cfg, Options{Dir: dir})
	if sum.Counts.Pass != 1 || sum.Counts.Error != 1 || sum.ExitCode != ExitCellErrors {
		t.Fatalf("%+v", sum)
	}
	starts, _ := countEvents(t, dir)
	for _, r := range loadFinals(t, dir) {
		if r.Board == "bench" {
			if r.Reason != "health" || len(starts[r.Cell]) != 0 {
				t.Errorf("bench cell: %s %s, started %v; want an error not run", r.Outcome, r.Reason, starts[r.Cell])
			}
		}
	}
	var bad *Event
	for i := range sum.Health {
		if sum.Health[i].Board == "bench" {
			bad = &sum.Health[i]
		}
	}
	if bad == nil || bad.OK || bad.Message == "" {
		t.Errorf("health of bench: %+v", bad)
	}
	checkJUnit(t, dir)
}

// TestRetriesFlakyTimeout: an infrastructure error is retried and a pass
// after it is flaky; a hang is killed at the timeout (its process group
// with it) and is an error; a failure (a livelock) is not retried; a trace
// that ends before any inference is a failure.
func TestRetriesFlakyTimeout(t *testing.T) {
	marks := t.TempDir()
	fake := fakeHarness(t, `
case "$*" in
  *"--scheduler inas"*)
    m=`+shellQuote(marks)+`/"$(echo "$2" | tr '/:' '__')"
    if [ ! -e "$m" ]; then touch "$m"; echo "harness: port /dev/ttyACM0 lost (fake)" >&2; exit 2; fi ;;
  *"--scheduler sonic"*) sleep 61.25 ;;
esac`)
	short := filepath.Join(t.TempDir(), "short.csv")
	os.WriteFile(short, []byte("# period_s: 0.02\ntime_s,power_w\n0,0.0001\n1,0.0001\n"), 0o644)
	cfg := writeConfig(t, `boards:
  - {name: sim, board: sim}
schedulers: [tile, inas, sonic, layer]
traces: [rf-office]
inferences: 1
loop: true
timeout: 2s
retries: 1
`)
	dir := t.TempDir()
	start := time.Now()
	sum := runMatrix(t, cfg, Options{Dir: dir, Harness: fake})
	t.Logf("%.1f s", time.Since(start).Seconds())
	want := map[string][3]string{ // outcome, reason, attempts
		"tile": {reports.OutcomePass, "", "1"}, "inas": {reports.OutcomeFlaky, "", "2"},
		"sonic": {reports.OutcomeError, "timeout", "2"}, "layer": {reports.OutcomeFail, "livelock", "1"},
	}
	for _, r := range loadFinals(t, dir) {
		w := want[r.Scheduler]
		if r.Outcome != w[0] || r.Reason != w[1] || strconv.Itoa(r.Attempt) != w[2] {
			t.Errorf("%s: %s (%s) in %d attempts %q; want %v", r.Scheduler, r.Outcome, r.Reason, r.Attempt, r.Message, w)
		}
	}
	if sum.ExitCode != ExitFailAndErr || sum.Counts.Flaky != 1 {
		t.Errorf("exit %d, counts %+v", sum.ExitCode, sum.Counts)
	}
	// The hung replay's process group was killed.
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("61.25")) {
			t.Errorf("%s outlived its timeout: %q", p, b)
		}
	}
	// results.jsonl has every attempt: inas and sonic twice.
	if n := len(readResultsFile(t, dir)); n != 6 {
		t.Errorf("results.jsonl: %d records, want 6", n)
	}

	// No inference: a fail by default, an error when the matrix says so.
	for _, mode := range []string{"fail", "error"} {
		c := writeConfig(t, "boards: [{name: sim, board: sim}]\nschedulers: [tile]\ntraces: ["+short+"]\nno_inference: "+mode+"\n")
		d := t.TempDir()
		runMatrix(t, c, Options{Dir: d})
		for _, r := range loadFinals(t, d) {
			if r.Outcome != mode || r.Reason != "no-inference" {
				t.Errorf("no_inference: %s: %s (%s)", mode, r.Outcome, r.Reason)
			}
		}
	}
	// A deadline missed is a failure.
	c := writeConfig(t, "boards: [{name: sim, board: sim}]\nschedulers: [tile]\ntraces: [rf-office]\nloop: true\ndeadline: 1ms\n")
	d := t.TempDir()
	if s := runMatrix(t, c, Options{Dir: d}); s.ExitCode != ExitFail {
		t.Errorf("deadline: exit %d", s.ExitCode)
	}
	for _, r := range loadFinals(t, d) {
		if r.Outcome != reports.OutcomeFail || r.Reason != "deadline" {
			t.Errorf("deadline: %s (%s)", r.Outcome, r.Reason)
		}
	}
}

// TestOnlyFailed reruns the failed and errored cells of a folder, and
// only those.
func TestOnlyFailed(t *testing.T) {
	marks := t.TempDir()
	// inas errors at its first two attempts (more than the one retry),
	// then passes: the first run ends in error, --only-failed makes it
	// pass (flaky: it did not pass at first).
	fake := fakeHarness(t, `
case "$*" in
  *"--scheduler inas"*)
    n=$(ls `+shellQuote(marks)+` | wc -l)
    if [ "$n" -lt 2 ]; then touch `+shellQuote(marks)+`/$n; echo "harness: supply unreachable (fake)" >&2; exit 2; fi ;;
esac`)
	cfg := writeConfig(t, "boards: [{name: sim, board: sim}]\nschedulers: [tile, inas]\ntraces: [rf-office]\nloop: true\nretries: 1\n")
	dir := t.TempDir()
	if s := runMatrix(t, cfg, Options{Dir: dir, Harness: fake}); s.Counts.Pass != 1 || s.Counts.Error != 1 {
		t.Fatalf("first run: %+v", s.Counts)
	}
	s := runMatrix(t, cfg, Options{Dir: dir, Harness: fake, OnlyFailed: true})
	if s.Ran != 1 || s.Skipped != 1 || s.Counts.Flaky != 1 || s.Counts.Pass != 1 || s.ExitCode != ExitPass {
		t.Errorf("--only-failed: %+v", s)
	}
	for _, r := range loadFinals(t, dir) {
		if r.Scheduler == "inas" && r.Attempt != 3 {
			t.Errorf("inas final at attempt %d, want 3", r.Attempt)
		}
	}
}

func TestDryRun(t *testing.T) {
	cfg := writeConfig(t, simMatrix)
	dir := t.TempDir()
	s := runMatrix(t, cfg, Options{Dir: dir, DryRun: true, Shard: Shard{2, 3}})
	p, err := ReadPlan(filepath.Join(dir, PlanFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Cells) != 9 || len(p.Todo()) != 3 || s.Selected != 3 || p.Shard != "2/3" {
		t.Errorf("plan of %d cells, %d selected", len(p.Cells), len(p.Todo()))
	}
	if _, err := os.Stat(filepath.Join(dir, JournalFile)); err == nil {
		t.Error("a dry run wrote a journal")
	}
}
