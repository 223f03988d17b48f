package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/batteryless/harness/harness/nightly"
	"github.com/batteryless/harness/reports"
)

func newRunCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run CONFIG.yaml --out DIR",
		Short: "Run a matrix of replays (boards x models x schedulers x traces) with a journal, and report it",
		Long: `Run the matrix of CONFIG.yaml (boards, models, schedulers, traces; see the README's
"Nightly hardware CI"): a health check per board, then every cell as a 'harness replay'
child process with a timeout, retried on infrastructure errors only. DIR/journal.jsonl is
appended and fsynced per event: a run killed at any moment loses at most the cells in
flight, and --resume finishes it. At the end DIR holds results.jsonl, bench.txt,
junit.xml, report.html and summary.md.

Exit codes: 0 every cell passed (flaky ones included and listed); 1 a cell failed (a
mismatch, a livelock, a deadline missed, no inference) and none errored; 5 a cell errored
(infrastructure, timeout, a bad board) and none failed; 6 both; 2 the runner itself could
not run (bad config, unwritable folder); 130 interrupted (--resume finishes the run).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runMatrix(cmd, s, args[0]) },
	}
	f := cmd.Flags()
	f.String("out", "", "output folder (required)")
	f.Bool("dry-run", false, "write DIR/plan.json (every cell with its ID) and run nothing")
	f.Bool("resume", false, "finish the run in DIR: skip finished cells, rerun started but unfinished ones")
	f.Bool("only-failed", false, "rerun the cells of DIR that failed or errored (and any unfinished)")
	f.String("shard", "", "run shard i of n of the plan (1-based, e.g. 2/4); merge the shards with 'harness report merge'")
	f.StringSlice("boards", nil, "run only the cells of these boards (by name)")
	f.Int("jobs", 0, "replays at once (default: the cores, plus one per real or emulated board)")
	f.String("harness", "", "the harness program that runs each cell (default: this program)")
	f.Bool("quiet", false, "no progress output")
	return cmd
}

func runMatrix(cmd *cobra.Command, s *settings, configPath string) error {
	out := s.str("out")
	if out == "" {
		return fmt.Errorf("--out DIR is required")
	}
	shard, err := nightly.ParseShard(s.str("shard"))
	if err != nil {
		return err
	}
	if s.integer("jobs") < 0 {
		return fmt.Errorf("--jobs %d: want 0 (automatic) or more", s.integer("jobs"))
	}
	cfg, err := nightly.Load(configPath)
	if err != nil {
		return err
	}
	bin := s.str("harness")
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return fmt.Errorf("finding this program to run the cells: %w", err)
		}
	} else if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	opt := nightly.Options{Dir: out, Harness: bin, Resume: s.boolean("resume"), OnlyFailed: s.boolean("only-failed"),
		Shard: shard, Boards: s.v.GetStringSlice("boards"), DryRun: s.boolean("dry-run"), Jobs: s.integer("jobs")}
	var finish func()
	if !s.boolean("quiet") {
		opt.Progress, finish = runProgress(cmd.ErrOrStderr())
	}
	sum, err := nightly.Run(cmd.Context(), cfg, opt)
	if finish != nil {
		finish()
	}
	if err != nil {
		return err
	}
	if s.json() {
		err = reports.JSON(cmd.OutOrStdout(), sum)
	} else {
		err = printRunSummary(cmd.OutOrStdout(), sum)
	}
	if err != nil {
		return err
	}
	return runExit(sum.ExitCode, sum.Counts)
}

// runExit turns a run's exit code into the command's error.
func runExit(code int, c reports.Counts) error {
	switch code {
	case nightly.ExitPass:
		return nil
	case nightly.ExitInterrupted:
		return &exitError{code: code, msg: "interrupted: --resume finishes the run"}
	}
	return &exitError{code: code, msg: fmt.Sprintf("%d failed, %d errored of %d cells", c.Fail, c.Error, c.Total())}
}

func printRunSummary(w io.Writer, sum *nightly.Summary) error {
	c := sum.Counts
	rows := [][]string{
		{"plan", sum.Plan[:min(12, len(sum.Plan))], fmt.Sprintf("%d cells, %d selected", sum.Cells, sum.Selected)},
	}
	if sum.DryRun {
		rows = append(rows, []string{"dry run", filepath.Join(sum.Dir, nightly.PlanFile), "nothing run"})
		return reports.Table(w, []string{"run", "", ""}, rows, nil)
	}
	rows = append(rows,
		[]string{"ran / skipped", strconv.Itoa(sum.Ran), strconv.Itoa(sum.Skipped) + " finished before"},
		[]string{"pass / fail / error / flaky", fmt.Sprintf("%d / %d / %d / %d", c.Pass, c.Fail, c.Error, c.Flaky), ""},
	)
	for _, h := range sum.Health {
		st := "ok"
		if !h.OK {
			st = "FAILED: " + h.Message
		}
		rows = append(rows, []string{"health " + h.Board, st, ""})
	}
	rows = append(rows, []string{"reports", sum.Dir, strings.Join([]string{nightly.JUnitFile, nightly.HTMLFile, nightly.SummaryFile, nightly.ResultsFile, nightly.BenchFile}, " ")})
	if sum.Interrupted {
		rows = append(rows, []string{"interrupted", "--resume finishes the run", ""})
	}
	return reports.Table(w, []string{"run", "", ""}, rows, nil)
}

// runProgress is a bar on a terminal, a line per cell otherwise (CI logs).
func runProgress(w io.Writer) (func(nightly.Progress), func()) {
	f, ok := w.(*os.File)
	if ok && term.IsTerminal(int(f.Fd())) {
		var (
			mu  sync.Mutex
			bar *progressbar.ProgressBar
		)
		return func(p nightly.Progress) {
				mu.Lock()
				defer mu.Unlock()
				if p.Health != nil {
					if !p.Health.OK {
						fmt.Fprintf(w, "\rboard %s failed its health check: %s\n", p.Health.Board, p.Health.Message)
					}
					return
				}
				if bar == nil {
					bar = progressbar.NewOptions(p.Total, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("cells"),
						progressbar.OptionShowCount(), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
				}
				if p.Started {
					bar.Describe(p.Cell.Name)
					return
				}
				_ = bar.Set(p.Done)
			}, func() {
				if bar != nil {
					_ = bar.Finish()
				}
			}
	}
	var mu sync.Mutex
	return func(p nightly.Progress) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case p.Health != nil:
			st := "ok"
			if !p.Health.OK {
				st = "FAILED: " + p.Health.Message
			}
			fmt.Fprintf(w, "health %s: %s\n", p.Health.Board, st)
		case p.Started:
		case p.Result != nil:
			r := p.Result
			msg := ""
			if r.Outcome != reports.OutcomePass {
				msg = "  " + r.Reason + ": " + r.Message
			}
			fmt.Fprintf(w, "[%d/%d] %-5s %s (%s, attempt %d, %.1f s)%s\n", p.Done, p.Total, r.Outcome, r.Name, r.Cell, r.Attempt, r.Seconds, msg)
		}
	}, nil
}
