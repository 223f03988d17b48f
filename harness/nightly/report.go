package nightly

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/batteryless/harness/reports"
)

// Report files written into a run's folder.
const (
	ResultsFile = "results.jsonl"
	BenchFile   = "bench.txt"
	JUnitFile   = "junit.xml"
	HTMLFile    = "report.html"
	SummaryFile = "summary.md"
)

// LoadDir reads a run's folder (plan.json, journal.jsonl) into what the
// reports need. A selected cell without a final result is a final error
// ("missing"): its runner died before it ended, or its shard never ran.
func LoadDir(dir string) (*reports.Run, error) {
	plan, err := ReadPlan(filepath.Join(dir, PlanFile))
	if err != nil {
		return nil, fmt.Errorf("%s: not a run's folder: %w", dir, err)
	}
	events, err := ReadJournalFile(filepath.Join(dir, JournalFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	state := Fold(events)
	run := &reports.Run{Dir: dir, Plan: plan.SHA256, Shard: plan.Shard, Created: plan.Created,
		Title: "Nightly run " + filepath.Base(filepath.Clean(dir))}
	for _, b := range plan.Boards {
		run.Boards = append(run.Boards, reports.RunBoard{Name: b.Name, Kind: b.Kind, Profile: b.Profile})
	}
	for _, c := range plan.Todo() {
		st := state.Cells[c.ID]
		rs := st.Results()
		run.Results = append(run.Results, rs...)
		if st.Final() != nil {
			continue
		}
		b := plan.board(c.Board)
		miss := reports.Result{Cell: c.ID, Name: c.Name, Board: c.Board, BoardKind: b.Kind, Profile: b.Profile, Model: c.Model,
			Scheduler: c.Scheduler, Trace: c.Trace, Run: c.Run, Requested: c.Inferences, Attempt: st.LastAttempt(), Final: true,
			Outcome: reports.OutcomeError, Reason: "missing", ExitCode: -1}
		if miss.Attempt == 0 {
			miss.Attempt = 1
		}
		if u := st.Unfinished(); u > 0 {
			miss.Message = fmt.Sprintf("attempt %d started and never ended: its runner was killed (--resume reruns it)", u)
			miss.Log = filepath.Join("cells", c.ID, fmt.Sprintf("attempt-%d", u), "log.jsonl")
		} else {
			miss.Message = "never ran: its runner died before it, or its shard was not merged"
		}
		run.Results = append(run.Results, miss)
	}
	boards := make([]string, 0, len(state.Health))
	for b := range state.Health {
		boards = append(boards, b)
	}
	sort.Strings(boards)
	for _, b := range boards {
		e := state.Health[b]
		run.Health = append(run.Health, reports.Health{Board: b, OK: e.OK, Message: e.Message, Log: filepath.Join(e.Dir, "log.jsonl")})
	}
	return run, nil
}

// WriteReports writes every report of a run into its folder, each file
// atomically: results.jsonl, bench.txt, junit.xml, report.html and
// summary.md.
func WriteReports(run *reports.Run) error {
	writers := []struct {
		name  string
		write func(io.Writer) error
	}{
		{ResultsFile, func(w io.Writer) error { return reports.WriteResults(w, run.Results) }},
		{BenchFile, func(w io.Writer) error { return reports.WriteBench(w, run.Results) }},
		{JUnitFile, func(w io.Writer) error { return reports.WriteJUnit(w, run) }},
		{HTMLFile, func(w io.Writer) error { return reports.WriteHTML(w, run) }},
		{SummaryFile, func(w io.Writer) error { return reports.WriteSummary(w, run) }},
	}
	// Each cell's capacitor plot beside its log (junit.xml attaches it).
	finals := run.Finals()
	for i := range finals {
		r := &finals[i]
		lg, err := run.ReadCellLog(r)
		if err != nil || lg == nil {
			continue
		}
		svg := reports.VoltagePlot(lg, r.Name+": capacitor voltage", r.Cell)
		if err := writeFileAtomic(filepath.Join(run.Dir, filepath.Dir(r.Log), reports.CellPlotName), []byte(svg)); err != nil {
			return err
		}
	}
	for _, wr := range writers {
		var b bytes.Buffer
		if err := wr.write(&b); err != nil {
			return fmt.Errorf("%s: %w", wr.name, err)
		}
		if err := writeFileAtomic(filepath.Join(run.Dir, wr.name), b.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// Merge unions the runs of several folders of one plan (shards, per-board
// jobs, reruns) into out: one plan (every cell expected), the journals'
// events deduplicated by cell and attempt (an attempt ended in two folders
// keeps the later), the attempts' files copied, and the reports written.
// A cell no folder finished is a final error in the reports: the runner
// that should have run it died.
func Merge(dirs []string, out string) (*reports.Run, error) {
	if len(dirs) == 0 {
		return nil, errors.New("merge: no folders to merge")
	}
	var plan *Plan
	type src struct {
		dir    string
		events []Event
	}
	var srcs []src
	for _, d := range dirs {
		p, err := ReadPlan(filepath.Join(d, PlanFile))
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		if plan == nil {
			plan = p
		} else if p.SHA256 != plan.SHA256 {
			return nil, fmt.Errorf("merge: %s ran plan %.12s, %s plan %.12s: not the same matrix", d, p.SHA256, dirs[0], plan.SHA256)
		}
		ev, err := ReadJournalFile(filepath.Join(d, JournalFile))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("merge: %w", err)
		}
		srcs = append(srcs, src{d, ev})
	}
	if st, err := os.Stat(filepath.Join(out, JournalFile)); err == nil && st.Size() > 0 {
		return nil, fmt.Errorf("merge: %s: %w: merge into a new folder", out, ErrRunExists)
	}
	for _, s := range srcs {
		if same, _ := sameDir(s.dir, out); same {
			return nil, fmt.Errorf("merge: --out %s is one of the folders merged", out)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	merged := *plan
	merged.Shard, merged.OnBoards, merged.Selected = "", nil, nil
	if err := WritePlan(filepath.Join(out, PlanFile), &merged); err != nil {
		return nil, err
	}
	// The later end of an attempt wins; its folder's files come along.
	type key struct {
		cell    string
		attempt int
	}
	ends := map[key]Event{}
	from := map[key]string{}
	health := map[string]Event{}
	healthFrom := map[string]string{}
	started := map[key]string{}
	for _, s := range srcs {
		for _, e := range s.events {
			switch e.Event {
			case EventEnd:
				k := key{e.Cell, e.Attempt}
				if old, ok := ends[k]; !ok || e.Time >= old.Time {
					ends[k], from[k] = e, s.dir
				}
			case EventStart:
				started[key{e.Cell, e.Attempt}] = s.dir
			case EventHealth:
				if old, ok := health[e.Board]; !ok || e.Time >= old.Time {
					health[e.Board], healthFrom[e.Board] = e, s.dir
				}
			}
		}
	}
	j, err := OpenJournal(filepath.Join(out, JournalFile))
	if err != nil {
		return nil, err
	}
	defer j.Close()
	if err := j.Append(Event{Event: EventPlan, Plan: merged.SHA256, Cells: len(merged.Cells), PID: os.Getpid(), Mode: "merge"}); err != nil {
		return nil, err
	}
	boards := make([]string, 0, len(health))
	for b := range health {
		boards = append(boards, b)
	}
	sort.Strings(boards)
	for _, b := range boards {
		e := health[b]
		if err := copyTree(filepath.Join(healthFrom[b], e.Dir), filepath.Join(out, e.Dir)); err != nil {
			return nil, err
		}
		if err := j.Append(e); err != nil {
			return nil, err
		}
	}
	keys := make([]key, 0, len(ends))
	for k := range ends {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool {
		if keys[a].cell != keys[b].cell {
			return keys[a].cell < keys[b].cell
		}
		return keys[a].attempt < keys[b].attempt
	})
	for _, k := range keys {
		e := ends[k]
		if merged.Cell(k.cell) == nil {
			return nil, fmt.Errorf("merge: %s: cell %s is not in the plan", from[k], k.cell)
		}
		rel := filepath.Join("cells", k.cell, fmt.Sprintf("attempt-%d", k.attempt))
		if err := copyTree(filepath.Join(from[k], rel), filepath.Join(out, rel)); err != nil {
			return nil, err
		}
		if err := j.Append(Event{Event: EventStart, Time: e.Time, Cell: k.cell, Attempt: k.attempt, Dir: rel}); err != nil {
			return nil, err
		}
		if err := j.Append(e); err != nil {
			return nil, err
		}
	}
	// Attempts that started and never ended anywhere stay started: the
	// report names them.
	for k, d := range started {
		if _, ok := ends[k]; ok {
			continue
		}
		if err := j.Append(Event{Event: EventStart, Cell: k.cell, Attempt: k.attempt, Message: "from " + d}); err != nil {
			return nil, err
		}
	}
	run, err := LoadDir(out)
	if err != nil {
		return nil, err
	}
	return run, WriteReports(run)
}

func sameDir(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// copyTree copies the regular files under src into dst (a missing src
// copies nothing: an attempt that wrote no files).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == src {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || strings.HasPrefix(rel, "..") {
			return fmt.Errorf("copy %s: outside %s", p, src)
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		o, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(o, in); err != nil {
			o.Close()
			return fmt.Errorf("copy %s: %w", p, err)
		}
		return o.Close()
	})
}
