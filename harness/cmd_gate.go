package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/batteryless/harness/harness/nightly"
	"github.com/batteryless/harness/reports"
)

func newGateCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gate --baseline DIR --current DIR",
		Short: "Compare a run with a baseline run and fail on a regression",
		Long: `Compare the current run's cells with the baseline's (by board, model, scheduler and
trace; a cell's repeats are its samples). Every current cell must pass with every
inference verified. On the simulated board every figure (latency, p95, energy, power
cycles, commits, re-executed tasks) is compared exactly. On emulated and real boards
latency, energy and power cycles are compared over the repeats with a Mann-Whitney U
test: a regression when p < --alpha and the median moved by at least --min-effect the
wrong way. DIR is a run's folder (or its results.jsonl). Exit 0 when nothing regressed,
1 on a regression, 2 on an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			bp, cp := s.str("baseline"), s.str("current")
			if bp == "" || cp == "" {
				return fmt.Errorf("--baseline DIR and --current DIR are both required")
			}
			opt := reports.DefaultGate
			opt.Alpha, opt.MinEffect = s.v.GetFloat64("alpha"), s.v.GetFloat64("min-effect")
			if !(opt.Alpha > 0 && opt.Alpha < 1) || !(opt.MinEffect >= 0 && opt.MinEffect < 10) {
				return fmt.Errorf("--alpha %g --min-effect %g: want 0 < alpha < 1 and min-effect >= 0", opt.Alpha, opt.MinEffect)
			}
			base, err := loadResults(bp)
			if err != nil {
				return fmt.Errorf("--baseline: %w", err)
			}
			cur, err := loadResults(cp)
			if err != nil {
				return fmt.Errorf("--current: %w", err)
			}
			g := reports.Gate(base, cur, opt)
			if s.json() {
				err = reports.JSON(cmd.OutOrStdout(), g)
			} else {
				err = printGate(cmd, g)
			}
			if err != nil {
				return err
			}
			if !g.Pass {
				return &exitError{code: 1, msg: fmt.Sprintf("%d regressions in %d cells compared", g.Regressions, g.Compared)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.String("baseline", "", "the baseline run's folder or results.jsonl")
	f.String("current", "", "the current run's folder or results.jsonl")
	f.Float64("alpha", reports.DefaultGate.Alpha, "significance level of the Mann-Whitney U test")
	f.Float64("min-effect", reports.DefaultGate.MinEffect, "smallest relative move of a median that counts on boards whose figures vary")
	return cmd
}

// loadResults reads a run's results: results.jsonl when given or present
// in the folder, else the folder's journal.
func loadResults(p string) ([]reports.Result, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	file := p
	if st.IsDir() {
		file = filepath.Join(p, nightly.ResultsFile)
		if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
			run, err := nightly.LoadDir(p)
			if err != nil {
				return nil, err
			}
			return run.Results, nil
		}
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return reports.ReadResults(f, file)
}

func printGate(cmd *cobra.Command, g *reports.GateResult) error {
	f := func(p *float64, pct bool) string {
		switch {
		case p == nil:
			return "-"
		case pct:
			return strconv.FormatFloat(100**p, 'f', 2, 64) + " %"
		}
		return strconv.FormatFloat(*p, 'g', 6, 64)
	}
	var rows [][]string
	for _, r := range g.Rows {
		rows = append(rows, []string{r.Cell, r.Metric, r.Test, f(r.Baseline, false), f(r.Current, false), f(r.Change, true), f(r.P, false), r.Verdict, r.Note})
	}
	status := "pass"
	if !g.Pass {
		status = "REGRESSION"
	}
	footer := []string{status, fmt.Sprintf("%d cells", g.Compared), "", "", "", "", "", fmt.Sprintf("%d regressions", g.Regressions), fmt.Sprintf("%d improvements", g.Improvements)}
	if len(rows) == 0 {
		rows = append(rows, []string{"(nothing moved)", "", "", "", "", "", "", "", ""})
	}
	return reports.Table(cmd.OutOrStdout(), []string{"cell", "figure", "test", "baseline", "current", "change", "p", "verdict", "note"}, rows, footer)
}
