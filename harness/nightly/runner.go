package nightly

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/batteryless/harness/harness/digest"
	"github.com/batteryless/harness/harness/workpool"
	"github.com/batteryless/harness/reports"
)

// Options are how a run goes (the matrix is the Config).
type Options struct {
	// Dir is the output folder.
	Dir string
	// Harness is the harness program that runs the cells (a child process
	// each).
	Harness string
	// Resume finishes a run: finished cells are skipped, started but
	// unfinished ones rerun. OnlyFailed also reruns the cells that failed
	// or errored.
	Resume, OnlyFailed bool
	// Shard and Boards select a part of the plan.
	Shard  Shard
	Boards []string
	// DryRun writes the plan and runs nothing.
	DryRun bool
	// Jobs bounds the replays running at once (0: the machine's cores
	// plus one per real or emulated board worker).
	Jobs int
	// Progress, when set, is called as cells start and end (from several
	// goroutines, one call at a time).
	Progress func(Progress)
}

// Progress is a cell starting or ending.
type Progress struct {
	Done, Total int
	Cell        *Cell
	Started     bool            // a cell started (else it ended)
	Result      *reports.Result // the final result of an ended cell
	Health      *Event          // a health check ended
}

// Summary is what a run did.
type Summary struct {
	Dir         string         `json:"dir"`
	Plan        string         `json:"plan_sha256"`
	Cells       int            `json:"cells"`    // in the plan
	Selected    int            `json:"selected"` // in this run's selection
	Ran         int            `json:"ran"`      // run by this invocation
	Skipped     int            `json:"skipped"`  // finished before (resume)
	Counts      reports.Counts `json:"counts"`   // final outcomes of the selection
	Health      []Event        `json:"health,omitempty"`
	Interrupted bool           `json:"interrupted"`
	DryRun      bool           `json:"dry_run,omitempty"`
	ExitCode    int            `json:"exit_code"`
}

// Exit codes of `harness run` (and `harness report`).
const (
	ExitPass        = 0   // every cell passed (flaky ones included, and listed)
	ExitFail        = 1   // a cell failed (mismatch, livelock, deadline), none errored
	ExitRunner      = 2   // the runner itself could not run (bad config, unwritable folder)
	ExitCellErrors  = 5   // a cell errored (infrastructure, timeout, missing), none failed
	ExitFailAndErr  = 6   // cells failed and cells errored
	ExitInterrupted = 130 // interrupted; --resume finishes the run
)

// ExitCode is the exit code for a run's final outcomes.
func ExitCode(c reports.Counts) int {
	switch {
	case c.Fail > 0 && c.Error > 0:
		return ExitFailAndErr
	case c.Error > 0:
		return ExitCellErrors
	case c.Fail > 0:
		return ExitFail
	}
	return ExitPass
}

// Files of a run's folder.
const (
	PlanFile    = "plan.json"
	JournalFile = "journal.jsonl"
)

// ErrRunExists is returned when the output folder holds a run and neither
// Resume nor OnlyFailed was asked.
var ErrRunExists = errors.New("the folder holds a run already")

// Run expands the matrix, runs the selected cells that need running, and
// writes the reports. It returns an error only when the runner itself
// cannot go on; the cells' outcomes are in the summary.
func Run(ctx context.Context, cfg *Config, opt Options) (*Summary, error) {
	plan, err := Expand(cfg)
	if err != nil {
		return nil, err
	}
	if err := plan.Select(opt.Shard, opt.Boards); err != nil {
		return nil, err
	}
	sum := &Summary{Dir: opt.Dir, Plan: plan.SHA256, Cells: len(plan.Cells), Selected: len(plan.Todo()), DryRun: opt.DryRun}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	journalPath := filepath.Join(opt.Dir, JournalFile)
	planPath := filepath.Join(opt.Dir, PlanFile)
	existing := false
	if st, err := os.Stat(journalPath); err == nil && st.Size() > 0 {
		existing = true
	}
	if opt.DryRun {
		if existing {
			return nil, fmt.Errorf("%s: %w; a dry run writes a plan only into a new folder", opt.Dir, ErrRunExists)
		}
		return sum, WritePlan(planPath, plan)
	}
	if opt.Harness == "" {
		return nil, errors.New("nightly: no harness program to run the cells with")
	}
	var events []Event
	if existing {
		if !opt.Resume && !opt.OnlyFailed {
			return nil, fmt.Errorf("%s: %w (%s): --resume finishes it, --only-failed reruns its failures, or give a new --out", opt.Dir, ErrRunExists, JournalFile)
		}
		old, err := ReadPlan(planPath)
		if err != nil {
			return nil, err
		}
		if old.SHA256 != plan.SHA256 {
			return nil, fmt.Errorf("%s: the matrix or its files changed since this folder's run (plan %.12s, now %.12s): use a new --out", opt.Dir, old.SHA256, plan.SHA256)
		}
		if old.Shard != plan.Shard || fmt.Sprint(old.OnBoards) != fmt.Sprint(plan.OnBoards) {
			return nil, fmt.Errorf("%s: this folder ran shard %q on boards %v, not shard %q on boards %v", opt.Dir, old.Shard, old.OnBoards, plan.Shard, plan.OnBoards)
		}
		plan = old
		if events, err = ReadJournalFile(journalPath); err != nil {
			return nil, err
		}
	} else if err := WritePlan(planPath, plan); err != nil {
		return nil, err
	}
	j, err := OpenJournal(journalPath)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	mode := "run"
	switch {
	case opt.OnlyFailed:
		mode = "only-failed"
	case opt.Resume:
		mode = "resume"
	}
	todoCells := plan.Todo()
	if err := j.Append(Event{Event: EventPlan, Plan: plan.SHA256, Shard: plan.Shard, Cells: len(todoCells), PID: os.Getpid(), Mode: mode}); err != nil {
		return nil, err
	}
	state := Fold(events)
	var todo []*Cell
	for i := range todoCells {
		c := &todoCells[i]
		final := state.Cells[c.ID].Final()
		switch {
		case final == nil:
			todo = append(todo, c)
		case opt.OnlyFailed && (final.Outcome == reports.OutcomeFail || final.Outcome == reports.OutcomeError):
			todo = append(todo, c)
		default:
			sum.Skipped++
		}
	}
	r := &runner{plan: plan, opt: opt, journal: j, state: state, total: len(todo)}
	r.harnessSHA = fileSHA(opt.Harness)
	r.run(ctx, todo, sum)
	if r.jErr != nil {
		return nil, r.jErr
	}
	sum.Ran = r.ran
	sum.Interrupted = ctx.Err() != nil
	run, err := LoadDir(opt.Dir)
	if err != nil {
		return nil, err
	}
	sum.Counts = reports.Count(run.Results)
	if err := WriteReports(run); err != nil {
		return nil, err
	}
	sum.ExitCode = ExitCode(sum.Counts)
	if sum.Interrupted {
		sum.ExitCode = ExitInterrupted
	}
	return sum, nil
}

// fileSHA is a file's SHA-256, "" when it cannot be read.
func fileSHA(p string) string {
	h, _ := digest.File(p)
	return h
}

// runner is one invocation's work on a plan.
type runner struct {
	plan       *Plan
	opt        Options
	journal    *Journal
	state      *State
	harnessSHA string

	mu      sync.Mutex // progress and counters
	done    int
	total   int
	ran     int
	jErr    error // the first journal error: the run stops
	healthy map[string]bool
	fwSHA   map[string]string
}

func (r *runner) progress(p Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !p.Started && p.Health == nil {
		r.done++
	}
	p.Done, p.Total = r.done, r.total
	if r.opt.Progress != nil {
		r.opt.Progress(p)
	}
}

// appendEvent journals an event; a journal that cannot be written stops
// the run (a result that cannot be kept is not worth running for).
func (r *runner) appendEvent(e Event, cancel context.CancelFunc) bool {
	if err := r.journal.Append(e); err != nil {
		r.mu.Lock()
		if r.jErr == nil {
			r.jErr = err
		}
		r.mu.Unlock()
		cancel()
		return false
	}
	return true
}

func (r *runner) jobs() int {
	if r.opt.Jobs > 0 {
		return r.opt.Jobs
	}
	n := runtime.NumCPU()
	for _, b := range r.plan.Boards {
		if b.Kind != "sim" {
			n += b.Workers
		}
	}
	return n
}

// firmwareSHA is the sha256 of the firmware a board runs, when the
// harness loads it from a file (the emulated board's ELF).
func (r *runner) firmwareSHA(b *Board) string {
	if b.Kind != "qemu-stm32" {
		return ""
	}
	elf := b.ELF
	if elf == "" {
		elf = DefaultELF
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fwSHA == nil {
		r.fwSHA = map[string]string{}
	}
	if v, ok := r.fwSHA[elf]; ok {
		return v
	}
	v := fileSHA(elf)
	r.fwSHA[elf] = v
	return v
}

func (r *runner) limit(group string) int {
	if b := r.plan.board(group); b != nil {
		return b.Workers
	}
	return 1
}

func (r *runner) run(ctx context.Context, todo []*Cell, sum *Summary) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Health checks first, one per board that has cells to run.
	boards := map[string]bool{}
	var hjobs []workpool.Job
	var hmu sync.Mutex
	r.healthy = map[string]bool{}
	for _, c := range todo {
		if boards[c.Board] {
			continue
		}
		boards[c.Board] = true
		b := r.plan.board(c.Board)
		hjobs = append(hjobs, workpool.Job{Group: b.Name, Do: func(ctx context.Context) {
			e := r.health(ctx, b)
			e.Time = time.Now().UTC().Format(time.RFC3339Nano)
			if ctx.Err() != nil {
				return
			}
			if !r.appendEvent(e, cancel) {
				return
			}
			hmu.Lock()
			r.healthy[b.Name] = e.OK
			sum.Health = append(sum.Health, e)
			hmu.Unlock()
			r.progress(Progress{Health: &e})
		}})
	}
	pool := workpool.Pool{Workers: r.jobs(), Limit: r.limit}
	pool.Run(ctx, hjobs)
	if ctx.Err() != nil {
		return
	}
	var jobs []workpool.Job
	for _, c := range todo {
		if !r.healthy[c.Board] {
			r.unhealthy(c, cancel)
			continue
		}
		jobs = append(jobs, workpool.Job{Group: c.Board, Do: func(ctx context.Context) { r.cell(ctx, c, cancel) }})
	}
	pool.Run(ctx, jobs)
}

// health runs a board's health check, again after a failure up to the
// plan's retries (a failed check is an infrastructure error: a busy host
// can time out QEMU's gdbstub once).
func (r *runner) health(ctx context.Context, b *Board) Event {
	dir := filepath.Join(r.opt.Dir, "health", b.Name)
	e := Event{Event: EventHealth, Board: b.Name, Dir: filepath.Join("health", b.Name)}
	var failures []string
	for try := 0; try <= r.plan.Retries && ctx.Err() == nil; try++ {
		if err := resetDir(dir); err != nil {
			e.Message = err.Error()
			return e
		}
		x := runChild(ctx, r.opt.Harness, healthArgs(b, filepath.Join(dir, "log.jsonl")), dir, time.Duration(r.plan.HealthS*float64(time.Second)))
		v := classify(x, 0, "fail")
		if v.Outcome == reports.OutcomePass {
			e.OK = true
			if len(failures) > 0 {
				e.Message = "passed on try " + strconv.Itoa(try+1) + " after: " + strings.Join(failures, "; ")
			}
			return e
		}
		failures = append(failures, fmt.Sprintf("%s (%s): %s", v.Reason, describeExit(x), v.Message))
	}
	e.Message = strings.Join(failures, "; ")
	return e
}

func resetDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

// baseResult is a result with a cell's identity filled in.
func (r *runner) baseResult(c *Cell, attempt int) reports.Result {
	b := r.plan.board(c.Board)
	res := reports.Result{Cell: c.ID, Name: c.Name, Board: c.Board, BoardKind: b.Kind, Profile: b.Profile, Model: c.Model,
		Scheduler: c.Scheduler, Trace: c.Trace, Run: c.Run, Requested: c.Inferences, Attempt: attempt, HarnessSHA256: r.harnessSHA}
	res.FirmwareSHA256 = r.firmwareSHA(b)
	return res
}

// unhealthy ends a cell of a board that failed its health check: error,
// not run.
func (r *runner) unhealthy(c *Cell, cancel context.CancelFunc) {
	st := r.state.Cells[c.ID]
	attempt := st.Unfinished()
	if attempt == 0 {
		attempt = st.LastAttempt() + 1
	}
	res := r.baseResult(c, attempt)
	res.Final, res.Outcome, res.Reason = true, reports.OutcomeError, "health"
	res.Message = "not run: board " + c.Board + " failed its health check"
	res.Started = time.Now().UTC().Format(time.RFC3339)
	if r.appendEvent(Event{Event: EventEnd, Cell: c.ID, Attempt: attempt, Result: &res}, cancel) {
		r.progress(Progress{Cell: c, Result: &res})
	}
}

func (r *runner) model(name string) *Model {
	for i := range r.plan.Models {
		if r.plan.Models[i].Name == name {
			return &r.plan.Models[i]
		}
	}
	return nil
}

// cell runs a cell's attempts: a new one after an infrastructure error,
// up to the plan's retries. An attempt the runner interrupted is not
// journaled as ended: a resume reruns it under the same number.
func (r *runner) cell(ctx context.Context, c *Cell, cancel context.CancelFunc) {
	st := r.state.Cells[c.ID]
	attempt := st.Unfinished()
	if attempt == 0 {
		attempt = st.LastAttempt() + 1
	}
	prior := st.Results()
	b := r.plan.board(c.Board)
	nErrors := 0
	counted := false
	r.progress(Progress{Cell: c, Started: true})
	for ctx.Err() == nil {
		rel := filepath.Join("cells", c.ID, fmt.Sprintf("attempt-%d", attempt))
		dir := filepath.Join(r.opt.Dir, rel)
		res := r.baseResult(c, attempt)
		res.Started = time.Now().UTC().Format(time.RFC3339)
		if err := resetDir(dir); err != nil {
			res.Final, res.Outcome, res.Reason, res.Message = true, reports.OutcomeError, "artifacts", err.Error()
			if r.appendEvent(Event{Event: EventEnd, Cell: c.ID, Attempt: attempt, Result: &res}, cancel) {
				r.progress(Progress{Cell: c, Result: &res})
			}
			return
		}
		if !r.appendEvent(Event{Event: EventStart, Cell: c.ID, Attempt: attempt, Dir: rel}, cancel) {
			return
		}
		if !counted {
			counted = true
			r.mu.Lock()
			r.ran++
			r.mu.Unlock()
		}
		logPath := filepath.Join(dir, "log.jsonl")
		x := runChild(ctx, r.opt.Harness, cellArgs(c, b, r.model(c.Model), logPath), dir, time.Duration(c.TimeoutS*float64(time.Second)))
		if x.Canceled || ctx.Err() != nil {
			return
		}
		v := classify(x, c.DeadlineS, r.plan.NoInference)
		res.Outcome, res.Reason, res.Message, res.Replay = v.Outcome, v.Reason, v.Message, v.Replay
		res.ExitCode, res.Seconds = x.Exit, x.Seconds
		res.Log = filepath.Join(rel, "log.jsonl")
		res.Artifacts = []string{filepath.Join(rel, "stdout.json"), filepath.Join(rel, "stderr.txt")}
		res.Tail = lastLines(x.Stderr, 10)
		if res.Outcome == reports.OutcomeError && nErrors < r.plan.Retries {
			nErrors++
			if !r.appendEvent(Event{Event: EventEnd, Cell: c.ID, Attempt: attempt, Result: &res}, cancel) {
				return
			}
			prior = append(prior, res)
			attempt++
			continue
		}
		res.Final = true
		if res.Outcome == reports.OutcomePass {
			for _, p := range prior {
				if p.Outcome != reports.OutcomePass {
					res.Outcome = reports.OutcomeFlaky
					res.Message = fmt.Sprintf("passed on attempt %d after attempt %d: %s: %s", attempt, p.Attempt, p.Outcome, p.Message)
				}
			}
		}
		if r.appendEvent(Event{Event: EventEnd, Cell: c.ID, Attempt: attempt, Result: &res}, cancel) {
			r.progress(Progress{Cell: c, Result: &res})
		}
		return
	}
}
