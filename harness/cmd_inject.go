package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/replay"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/reports"
	"github.com/spf13/cobra"
)

func newInjectCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inject",
		Short: "Force brown-outs at every task boundary and at random points inside tasks; verify the output",
		Long: `Run one inference per scheduler on the simulated board with a brown-out forced
after every task and at --random seeded points inside tasks (during a read, the
arithmetic, the output write or the commit), then compare the output with the
reference executor value by value. Exits non-zero on any mismatch.

With --board qemu-stm32 the real firmware runs in QEMU on bench power and the
harness cuts its power (QEMU stopped, reset with the volatile SRAM scrubbed,
continued) in the middle of every task (at --fraction of its duration,
measured by a warm-up inference) and at --random seeded points.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if r := s.v.GetInt64("random"); r < 0 || r > replay.MaxRandomPoints {
				return fmt.Errorf("--random %d: want 0 to %d (each is a brown-out inside a task)", r, replay.MaxRandomPoints)
			}
			switch b := s.str("board"); b {
			case "sim":
			case "qemu-stm32":
				return runInjectQEMU(cmd, s)
			default:
				return fmt.Errorf("--board %s: want sim or qemu-stm32", b)
			}
			m, input, modelPath, err := loadModelInput(s)
			if err != nil {
				return err
			}
			prof, err := profiles.Load(s.str("profile"))
			if err != nil {
				return err
			}
			names := sched.Names()
			if v := s.str("scheduler"); v != "" && v != "all" {
				names = strings.Split(v, ",")
			}
			modelBytes := modelFileBytes(modelPath)
			var results []*replay.InjectResult
			mismatches := 0
			for _, name := range names {
				sc, err := sched.Get(name)
				if err != nil {
					return err
				}
				p, err := sc.Schedule(m, prof, sched.Options{ModelBytes: modelBytes})
				if err != nil {
					return err
				}
				res, err := replay.Inject(replay.InjectConfig{Model: m, Plan: p, Profile: prof, Input: input,
					Boundaries: true, Random: s.integer("random"), Seed: uint64(s.v.GetInt64("seed"))})
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				mismatches += res.Mismatches
				results = append(results, res)
			}
			if s.json() {
				err = reports.JSON(cmd.OutOrStdout(), map[string]any{"model": m.Name, "profile": prof.Name, "results": results, "mismatches": mismatches})
			} else {
				rows := make([][]string, len(results))
				for i, r := range results {
					rows[i] = []string{r.Scheduler, strconv.Itoa(r.Tasks), strconv.Itoa(r.Boundaries), strconv.Itoa(r.Inside),
						strconv.Itoa(r.Reexecuted), strconv.Itoa(r.Mismatches)}
				}
				err = reports.Table(cmd.OutOrStdout(), []string{"scheduler", "tasks", "boundary brown-outs", "inside brown-outs", "re-executed tasks", "mismatches"}, rows, nil)
			}
			if err != nil {
				return err
			}
			if mismatches > 0 {
				return &exitError{code: 1, msg: fmt.Sprintf("%d output values differ from the reference after brown-outs", mismatches)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.String("model", "", "model file (default: the bundled model)")
	f.String("input", "", "input tensor as raw bytes (default: the bundled input)")
	f.String("profile", "msp430fr5994", "device profile: "+strings.Join(profiles.Names(), ", ")+", or a YAML file")
	f.String("scheduler", "all", "schedulers to test, comma-separated, or all")
	f.Int("random", 100, "brown-outs at random points inside tasks")
	f.Int64("seed", 1, "seed of the random points")
	f.String("board", "sim", "board: sim, or qemu-stm32 (the STM32 firmware in QEMU)")
	f.String("elf", "", "qemu-stm32: the wire firmware built without a plan (default "+defaultNoPlanELF+")")
	f.Float64("fraction", 0.5, "qemu-stm32: where in each task its brown-out strikes (0 to 1)")
	return cmd
}
