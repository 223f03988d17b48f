package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/compare"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/reports"
	"github.com/spf13/cobra"
)

func newCompareCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compare TRACE...",
		Short: "Run every scheduler on every trace and model on the simulated board, side by side",
		Long: `Replay each TRACE with each --model under each scheduler on the simulated board (all
outputs verified bit for bit) and print one table: mean and p95 latency, the lower bound
and the ratio to it, power cycles, commits, overhead energy, re-executed tasks, livelocks.
The runs use every core.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rows, err := runCompare(cmd.Context(), s, args)
			if err != nil && rows == nil {
				return err
			}
			sum := compare.Summarize(rows)
			if s.json() {
				err = reports.JSON(cmd.OutOrStdout(), map[string]any{"rows": rows, "summary": sum})
			} else {
				err = printCompare(cmd, rows, sum)
			}
			if err != nil {
				return err
			}
			for _, r := range rows {
				if r.Mismatches > 0 {
					return &exitError{code: exitMismatch, msg: fmt.Sprintf("%s on %s with %s: %d mismatches", r.Model, r.Trace, r.Scheduler, r.Mismatches)}
				}
			}
			return err // interrupted: the rows so far are printed
		},
	}
	f := cmd.Flags()
	f.StringSlice("model", nil, "model files (default: the bundled model); each uses --input or, for the bundled model, its input")
	f.StringSlice("input", nil, "input files or seeded:N, one per --model in the same order (default: the bundled input, or seeded:1 for other models)")
	f.String("profile", "msp430fr5994", "device profile: "+strings.Join(profiles.Names(), ", ")+", or a YAML file")
	f.String("schedulers", "all", "schedulers: all, or a comma-separated list of "+strings.Join(sched.Names(), ", "))
	f.Int("inferences", 0, "inferences per run (0: back to back until the trace ends)")
	f.Bool("loop", false, "repeat each trace until --inferences are done")
	f.String("format", "", "trace format: csv, react, mementos (default: detect)")
	f.Float64("load", 0, "load resistance in ohms for voltage-only traces")
	f.String("board", "sim", "board: "+strings.Join(boards.Names(), ", ")+" (a board other than sim runs one replay at a time)")
	f.String("elf", "", "qemu-stm32: the wire firmware built without a plan (default "+defaultNoPlanELF+")")
	return cmd
}

// runCompare builds the matrix the settings say (models with their inputs,
// traces, schedulers, profile, board) and runs it (package compare).
func runCompare(ctx context.Context, s *settings, traceArgs []string) ([]compare.Row, error) {
	prof, err := profiles.Load(s.str("profile"))
	if err != nil {
		return nil, err
	}
	mx := compare.Matrix{Profile: prof, Inferences: s.integer("inferences"), Loop: s.boolean("loop"),
		Board: s.str("board"), Options: boards.Options{ELF: s.str("elf")}, Schedulers: sched.Names()}
	if v := s.str("schedulers"); v != "" && v != "all" {
		mx.Schedulers = strings.Split(v, ",")
	}
	modelPaths := s.v.GetStringSlice("model")
	if len(modelPaths) == 0 {
		modelPaths = []string{""}
	}
	inputs := s.v.GetStringSlice("input")
	if len(inputs) > len(modelPaths) {
		return nil, fmt.Errorf("%d --input files for %d models", len(inputs), len(modelPaths))
	}
	for i, mp := range modelPaths {
		m, err := loadModel(mp)
		if err != nil {
			return nil, err
		}
		in := ""
		if i < len(inputs) {
			in = inputs[i]
		}
		input, err := loadInput(in, mp, m)
		if err != nil {
			return nil, err
		}
		mx.Models = append(mx.Models, compare.Model{Model: m, Input: input, Bytes: modelFileBytes(mp)})
	}
	for _, a := range traceArgs {
		ts, err := openTraceArg(ctx, a, s.str("format"), s.v.GetFloat64("load"))
		if err != nil {
			return nil, err
		}
		defer ts.cleanup()
		st, err := summarizeTrace(ctx, ts.open)
		if err != nil {
			return nil, err
		}
		mx.Traces = append(mx.Traces, compare.Trace{Name: ts.name, Open: ts.open, Stats: st})
	}
	return compare.Run(ctx, mx)
}

func printCompare(cmd *cobra.Command, rows []compare.Row, sum []compare.Summary) error {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	table := make([][]string, len(rows))
	for i, r := range rows {
		status := fmt.Sprintf("%d/%d", r.Verified, r.Inferences)
		if r.Livelock {
			status = "livelock"
		} else if r.Error != "" {
			status = "error"
		}
		ratio := "-"
		if r.RatioToBound > 0 {
			ratio = f(r.RatioToBound) + "x"
		}
		table[i] = []string{r.Model, r.Trace, r.Scheduler, status, f(r.LatencyMeanS), f(r.LatencyP95S), f(r.LowerBoundS), ratio,
			strconv.Itoa(r.PowerCycles), strconv.Itoa(r.Commits), strconv.FormatFloat(r.OverheadJ*1e3, 'f', 1, 64), strconv.Itoa(r.Reexecuted)}
	}
	w := cmd.OutOrStdout()
	if err := reports.Table(w, []string{"model", "trace", "scheduler", "verified", "mean s", "p95 s", "bound s", "ratio", "power cycles", "commits", "overhead mJ", "re-executed"}, table, nil); err != nil {
		return err
	}
	for _, r := range rows {
		if r.Error != "" {
			fmt.Fprintf(w, "%s on %s with %s: %s\n", r.Model, r.Trace, r.Scheduler, r.Error)
		}
	}
	st := make([][]string, len(sum))
	for i, x := range sum {
		st[i] = []string{x.Scheduler, strconv.Itoa(x.Runs), strconv.Itoa(x.Failed),
			strconv.FormatFloat(x.GeomeanRatioToBound, 'f', 2, 64) + "x", strconv.FormatFloat(x.MaxRatioToBestOther, 'f', 2, 64) + "x"}
	}
	return reports.Table(w, []string{"scheduler", "runs", "failed", "geomean latency / bound", "worst latency / best other"}, st, nil)
}
