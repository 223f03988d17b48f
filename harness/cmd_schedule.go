package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/outfile"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/reports"
	"github.com/spf13/cobra"
)

// schedulePlan loads the model, the profile and the scheduler named by the
// settings and makes the plan.
func schedulePlan(ctx context.Context, s *settings, modelPath string) (*model.Model, *profiles.Profile, *plan.Plan, error) {
	m, err := loadModel(modelPath)
	if err != nil {
		return nil, nil, nil, err
	}
	prof, err := profiles.Load(s.str("profile"))
	if err != nil {
		return nil, nil, nil, err
	}
	sc, err := sched.Get(s.str("scheduler"))
	if err != nil {
		return nil, nil, nil, err
	}
	modelBytes := modelFileBytes(modelPath)
	opt := sched.Options{ModelBytes: modelBytes}
	if tr := s.str("trace"); tr != "" {
		ts, err := openTraceArg(ctx, tr, s.str("format"), s.v.GetFloat64("load"))
		if err != nil {
			return nil, nil, nil, err
		}
		defer ts.cleanup()
		st, err := summarizeTrace(ctx, ts.open)
		if err != nil {
			return nil, nil, nil, err
		}
		opt.Trace = &st
	}
	p, err := sc.Schedule(m, prof, opt)
	if err != nil {
		return nil, nil, nil, err
	}
	mean := 0.0
	if opt.Trace != nil {
		mean = opt.Trace.MeanW
	}
	sched.Predict(p, prof, mean)
	return m, prof, p, nil
}

func newScheduleCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule [MODEL]",
		Short: "Cut a model into the tasks of a deployment plan and show it per layer",
		Long: `Make the deployment plan of MODEL (default: the bundled model) on a device profile
with a scheduler: per layer the tile shape, the tasks, the tasks per commit, the energy and
the costliest stretch between two commits against what a power cycle gives. --json prints
the plan (with every task); --image writes the binary image the firmware reads.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := s.str("model")
			if len(args) == 1 {
				path = args[0]
			}
			m, prof, p, err := schedulePlan(cmd.Context(), s, path)
			if err != nil {
				return err
			}
			if out := s.str("image"); out != "" {
				img, err := plan.EncodeImage(m, p)
				if err != nil {
					return err
				}
				if err := outfile.WriteFile(out, img, path, s.str("profile"), s.str("trace")); err != nil {
					return err
				}
			}
			if s.json() {
				return reports.JSON(cmd.OutOrStdout(), p)
			}
			return printSchedule(cmd, m, prof, p)
		},
	}
	f := cmd.Flags()
	f.String("model", "", "model file (default: the bundled model)")
	f.String("profile", "msp430fr5994", "device profile: "+strings.Join(profiles.Names(), ", ")+", or a YAML file")
	f.String("scheduler", defaultScheduler, "scheduler: "+strings.Join(sched.Names(), ", "))
	f.String("image", "", "write the binary plan image (model and plan, for the firmware) here")
	f.String("trace", "", "plan for this trace's statistics (the adaptive scheduler uses them)")
	f.String("format", "", "trace format: csv, react, mementos (default: detect)")
	f.Float64("load", 0, "load resistance in ohms for voltage-only traces")
	return cmd
}

func printSchedule(cmd *cobra.Command, m *model.Model, prof *profiles.Profile, p *plan.Plan) error {
	budget := p.Budget - p.RebootEnergy
	uj := func(j float64) string { return strconv.FormatFloat(j*1e6, 'f', 1, 64) }
	rows := make([][]string, len(p.Layers))
	for i, lp := range p.Layers {
		tile := fmt.Sprintf("%dx%dx%d", lp.TileH, lp.TileW, lp.TileC)
		if lp.TileR > 0 {
			tile += fmt.Sprintf(" r%d", lp.TileR)
		}
		rows[i] = []string{strconv.Itoa(lp.Layer), lp.Op, tile, strconv.Itoa(lp.Tasks),
			strconv.FormatFloat(lp.TasksPerCommit, 'f', 1, 64), uj(lp.Energy), uj(lp.MaxCommitGroup),
			strconv.FormatFloat(100*lp.MaxCommitGroup/budget, 'f', 0, 64) + " %", strconv.FormatFloat(lp.PredictedS, 'f', 3, 64)}
	}
	footer := []string{"", "total", "", strconv.Itoa(len(p.Tasks)), strconv.Itoa(p.Commits()) + " commits", uj(p.Energy()), "", "", strconv.FormatFloat(p.PredictedS, 'f', 3, 64)}
	w := cmd.OutOrStdout()
	if err := reports.Table(w, []string{"#", "operator", "tile (h x w x c, reduction)", "tasks", "tasks/commit", "energy uJ", "max commit group uJ", "of budget", "predicted s"}, rows, footer); err != nil {
		return err
	}
	on := "on continuous power"
	if p.PredictedForW > 0 {
		on = fmt.Sprintf("at a mean harvest of %.3g mW", p.PredictedForW*1e3)
	}
	fmt.Fprintf(w, "%s on %s with %s: %d tasks, %.3f mJ and %.1f ms of compute per inference, predicted latency %.2f s %s; a power cycle gives %.1f uJ after a %.1f uJ reboot; NVM %d of %d bytes (weights %d)\n",
		m.Name, prof.Name, p.Scheduler, len(p.Tasks), p.Energy()*1e3, prof.Seconds(p.Cycles())*1e3, p.PredictedS, on, budget*1e6, p.RebootEnergy*1e6,
		p.NVMBytes+p.WeightBytes, prof.NVMBytes, p.WeightBytes)
	return nil
}
