package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/batteryless/harness/boards/emulated"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/reports"
)

// injectQEMUResult is one scheduler's injection run on the emulated board.
type injectQEMUResult struct {
	Scheduler string `json:"scheduler"`
	*emulated.InjectResult
}

// runInjectQEMU forces brown-outs inside the tasks of the real firmware in
// QEMU, one inference per scheduler, and verifies each output.
func runInjectQEMU(cmd *cobra.Command, s *settings) error {
	elf, err := findNoPlanELF(s)
	if err != nil {
		return err
	}
	m, input, modelPath, err := loadModelInput(s)
	if err != nil {
		return err
	}
	prof, err := loadProfileFlag(cmd, s, "qemu-stm32")
	if err != nil {
		return err
	}
	want, err := refexec.New(m).Run(input)
	if err != nil {
		return err
	}
	frac := s.v.GetFloat64("fraction")
	if frac < 0 || frac >= 1 {
		return fmt.Errorf("--fraction %g: want 0 <= fraction < 1", frac)
	}
	names := sched.Names()
	if v := s.str("scheduler"); v != "" && v != "all" {
		names = strings.Split(v, ",")
	}
	var results []injectQEMUResult
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
		if p.RuntimeRule {
			// The run-time rule reads the supply voltage, which QEMU's
			// netduinoplus2 has no model of.
			continue
		}
		img, err := plan.EncodeImage(m, p)
		if err != nil {
			return err
		}
		var cuts []emulated.Cut
		for i := range p.Tasks {
			cuts = append(cuts, emulated.Cut{Task: i, Fraction: frac})
		}
		rng := rand.New(rand.NewPCG(uint64(s.v.GetInt64("seed")), 0))
		for range s.integer("random") {
			cuts = append(cuts, emulated.Cut{Task: rng.IntN(len(p.Tasks)), Fraction: rng.Float64()})
		}
		res, err := emulated.Inject(cmd.Context(), emulated.InjectConfig{ELF: elf, Image: img, Tasks: len(p.Tasks),
			Input: input, Want: want, Cuts: cuts})
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if !res.Verified {
			failed++
		}
		results = append(results, injectQEMUResult{name, res})
	}
	if s.json() {
		err = reports.JSON(cmd.OutOrStdout(), map[string]any{"board": "qemu-stm32", "model": m.Name, "profile": prof.Name, "results": results, "failed": failed})
	} else {
		rows := make([][]string, len(results))
		for i, r := range results {
			rows[i] = []string{r.Scheduler, strconv.Itoa(r.Tasks), strconv.Itoa(len(r.Cuts)), strconv.Itoa(r.Landed),
				strconv.Itoa(r.Reexecuted), strconv.Itoa(r.Boots), strconv.FormatBool(r.Verified)}
		}
		err = reports.Table(cmd.OutOrStdout(), []string{"scheduler", "tasks", "brown-outs", "inside a task", "re-executed tasks", "boots", "verified"}, rows, nil)
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("%d schedulers' outputs were wrong after brown-outs on qemu-stm32", failed)}
	}
	return nil
}
