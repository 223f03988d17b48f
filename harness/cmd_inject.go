package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/sim"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/reports"
	"github.com/spf13/cobra"
)

func newInjectCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inject",
		Short: "Force brown-outs at every task boundary and at random points inside tasks; verify the output",
		Long: `Run one inference per scheduler on a board with brown-outs forced where the commit
protocol is most fragile, then compare the output with the reference executor value by
value. Exits 1 on any mismatch.

On the simulated board (--board sim) a brown-out strikes after every task and at --random
seeded points inside tasks (during a read, the arithmetic, the output write or the commit).
On qemu-stm32 the real firmware runs in QEMU on bench power and the harness cuts its power
(QEMU stopped, reset with the volatile SRAM scrubbed, continued) in the middle of every task
(at --fraction of its duration, measured by a warm-up inference) and at --random seeded
points. The boards harness boards lists with the inject capability take part.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if r := s.v.GetInt64("random"); r < 0 || r > sim.MaxRandomPoints {
				return fmt.Errorf("--random %d: want 0 to %d (each is a brown-out inside a task)", r, sim.MaxRandomPoints)
			}
			frac := s.v.GetFloat64("fraction")
			if frac < 0 || frac >= 1 {
				return fmt.Errorf("--fraction %g: want 0 <= fraction < 1", frac)
			}
			drv, err := boards.Lookup(s.str("board"))
			if err != nil {
				return fmt.Errorf("--board: %w", err)
			}
			inj, ok := drv.(boards.Injector)
			if !ok {
				return fmt.Errorf("board %s cannot inject brown-outs (harness boards lists what each board can do)", drv.Info().Name)
			}
			m, input, modelPath, err := loadModelInput(s)
			if err != nil {
				return err
			}
			prof, err := loadProfileFlag(cmd, s, drv.Info().DefaultProfile)
			if err != nil {
				return err
			}
			want, err := refexec.New(m).Run(input)
			if err != nil {
				return err
			}
			names := sched.Names()
			if v := s.str("scheduler"); v != "" && v != "all" {
				names = strings.Split(v, ",")
			}
			var results []*boards.InjectResult
			failed := 0
			for _, name := range names {
				sc, err := sched.Get(name)
				if err != nil {
					return err
				}
				p, err := sc.Schedule(m, prof, sched.Options{ModelBytes: modelFileBytes(modelPath)})
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				img, err := plan.EncodeImage(m, p)
				if err != nil {
					return err
				}
				res, err := inj.Inject(cmd.Context(), boards.Deployment{Model: m, Plan: p, Profile: prof, Image: img, Input: input, Want: want},
					boards.Options{ELF: s.str("elf")},
					boards.InjectOptions{Boundaries: true, Fraction: frac, Random: s.integer("random"), Seed: uint64(s.v.GetInt64("seed"))})
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				if !res.Verified {
					failed++
				}
				results = append(results, res)
			}
			if s.json() {
				err = reports.JSON(cmd.OutOrStdout(), map[string]any{"board": drv.Info().Name, "model": m.Name, "profile": prof.Name,
					"results": results, "failed": failed})
			} else {
				rows := make([][]string, len(results))
				for i, r := range results {
					rows[i] = []string{r.Scheduler, strconv.Itoa(r.Tasks), strconv.Itoa(r.BrownOuts), strconv.Itoa(r.Boundaries), strconv.Itoa(r.Inside),
						strconv.Itoa(r.Sleeps), strconv.Itoa(r.Reexecuted), strconv.Itoa(r.Mismatches), strconv.FormatBool(r.Verified)}
				}
				err = reports.Table(cmd.OutOrStdout(), []string{"scheduler", "tasks", "brown-outs", "at boundaries", "inside a task", "sleeps", "re-executed tasks", "values wrong", "verified"}, rows, nil)
			}
			if err != nil {
				return err
			}
			if failed > 0 {
				return &exitError{code: exitMismatch, msg: fmt.Sprintf("%d schedulers' outputs were wrong after brown-outs on %s", failed, drv.Info().Name)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.String("model", "", "model file (default: the bundled model)")
	f.String("input", "", "input tensor as raw bytes, or seeded:N (default: the bundled input, or seeded:1 for another model)")
	f.String("profile", "", "device profile: "+strings.Join(profiles.Names(), ", ")+", or a YAML file (default: the board's)")
	f.String("scheduler", "all", "schedulers to test, comma-separated, or all")
	f.Int("random", 100, "brown-outs at random points inside tasks")
	f.Int64("seed", 1, "seed of the random points")
	f.String("board", "sim", "board: "+strings.Join(boards.Names(), ", ")+" (those with the inject capability)")
	f.String("elf", "", "qemu-stm32: the wire firmware built without a plan (default "+defaultNoPlanELF+")")
	f.Float64("fraction", 0.5, "qemu-stm32: where in each task its brown-out strikes (0 to 1)")
	return cmd
}
