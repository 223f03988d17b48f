package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/batteryless/harness/harness/nightly"
	"github.com/batteryless/harness/reports"
)

func newReportCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report DIR",
		Short: "Write the reports of a run's folder again (junit.xml, report.html, summary.md, results)",
		Long: `Read DIR (plan.json and journal.jsonl of 'harness run') and write its reports:
results.jsonl, bench.txt, junit.xml, report.html and summary.md. A cell without a final
result (its runner died) is reported as an error. The exit code is the run's (see
'harness run --help').`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			run, err := nightly.LoadDir(args[0])
			if err != nil {
				return err
			}
			if err := nightly.WriteReports(run); err != nil {
				return err
			}
			return reportOutcome(cmd.OutOrStdout(), s, run)
		},
	}
	merge := &cobra.Command{
		Use:   "merge DIR... --out DIR",
		Short: "Merge the folders of several runs of one plan (shards, boards) into one, and report it",
		Long: `Union the journals of the run folders (shards of one plan, per-board jobs, reruns),
deduplicated by cell and attempt, check them against the plan, copy every attempt's
files, and write the reports into --out. A cell that no folder finished is an error
(the runner that should have run it died).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := s.str("out")
			if out == "" {
				return fmt.Errorf("--out DIR is required")
			}
			run, err := nightly.Merge(args, out)
			if err != nil {
				return err
			}
			return reportOutcome(cmd.OutOrStdout(), s, run)
		},
	}
	merge.Flags().String("out", "", "the merged folder (required; new)")
	cmd.AddCommand(merge)
	return cmd
}

// reportOutcome prints a run's counts and exits as 'harness run' would.
func reportOutcome(w io.Writer, s *settings, run *reports.Run) error {
	c := reports.Count(run.Results)
	code := nightly.ExitCode(c)
	var err error
	if s.json() {
		err = reports.JSON(w, map[string]any{"dir": run.Dir, "plan_sha256": run.Plan, "counts": c, "exit_code": code,
			"reports": []string{nightly.ResultsFile, nightly.BenchFile, nightly.JUnitFile, nightly.HTMLFile, nightly.SummaryFile}})
	} else {
		rows := [][]string{
			{"cells", fmt.Sprint(c.Total())},
			{"pass / fail / error / flaky", fmt.Sprintf("%d / %d / %d / %d", c.Pass, c.Fail, c.Error, c.Flaky)},
			{"report", filepath.Join(run.Dir, nightly.HTMLFile)},
		}
		err = reports.Table(w, []string{"report", ""}, rows, nil)
	}
	if err != nil {
		return err
	}
	return runExit(code, c)
}
