package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/calibrate"
	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/outfile"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/reports"
	"github.com/spf13/cobra"
)

// calibrateReport is what --json prints.
type calibrateReport struct {
	Board       string                `json:"board"`
	Out         string                `json:"out"`
	Calibration *calibrate.Result     `json:"calibration"`
	Validation  *calibrate.Validation `json:"validation"`
}

func newCalibrateCmd(s *settings) *cobra.Command {
	var names []string
	for _, b := range calibrate.Boards() {
		names = append(names, b.Name)
	}
	cmd := &cobra.Command{
		Use:   "calibrate --board BOARD --out PROFILE.yaml",
		Short: "Measure a board's per-operation costs and write a device profile",
		Long: `Run microbenchmarks on a board (each kernel the firmware runs over a range of sizes,
NVM writes and commits, a reboot), check every output against the reference executor, fit
the per-operation costs by non-negative least squares and write a device profile (--out) in
the format of boards/profiles: fitted numbers say how in their source, the others come from
the --base profile. Then validate: the model (default the bundled one) scheduled with the
calibrated profile runs on the board, and each task's predicted cycles (the plan's, which the
simulated board uses) are compared with the board's. Exits with 1 when a task is off by more
than 10 % (unless --no-check).

qemu-stm32 runs each benchmark on a fresh QEMU with --elf (firmware-noplan.elf of
make -C firmware stm32f4); stm32 and msp430 need --port, and a firmware that takes DEPLOY.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCalibrate(cmd, s)
		},
	}
	f := cmd.Flags()
	f.String("board", "qemu-stm32", "board: qemu-stm32, serial (with --target), or "+strings.Join(names[1:], ", ")+" (a serial board of that chip)")
	f.String("target", "", "serial: the chip the board's firmware runs on: stm32 or msp430")
	f.String("elf", "", "qemu-stm32: the wire firmware built without a plan (default "+defaultNoPlanELF+"; make -C firmware stm32f4)")
	f.String("port", "", "stm32, msp430: the board's serial port, e.g. /dev/ttyUSB0")
	f.Int("baud", 115200, "stm32, msp430: the serial port's baud rate")
	f.String("base", "", "the profile the benchmarks are scheduled for and the unmeasured numbers come from (default: stm32f405 for qemu-stm32 and stm32, msp430fr5994 for msp430)")
	f.String("out", "", "write the calibrated profile here (YAML)")
	f.String("model", "", "validation model (default: the bundled model)")
	f.String("input", "", "validation model's input (raw tensor bytes; default: the bundled input)")
	f.Bool("no-check", false, "exit 0 even when a validated task is off by more than 10 %")
	return cmd
}

func runCalibrate(cmd *cobra.Command, s *settings) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	// The kind of board through the registry (qemu-stm32, or serial with
	// the chip its firmware runs on); stm32 and msp430 name a serial board
	// of that chip directly.
	target := s.str("board")
	if drv, err := boards.Lookup(target); err == nil {
		if info := drv.Info(); !info.Has(boards.CapCalibrate) {
			return fmt.Errorf("calibrate: board %s cannot run microbenchmarks (harness boards lists what each can do)", info.Name)
		}
		if target == "serial" {
			if target = s.str("target"); target == "" {
				return fmt.Errorf("calibrate: --board serial needs --target stm32 or msp430 (the chip its firmware runs on)")
			}
		}
	}
	board, err := calibrate.LookupBoard(target)
	if err != nil {
		return err
	}
	out := s.str("out")
	if out == "" {
		return fmt.Errorf("calibrate: --out is required (the profile file to write)")
	}
	baseName := s.str("base")
	if baseName == "" {
		baseName = board.Base
	}
	base, err := profiles.Load(baseName)
	if err != nil {
		return err
	}
	m, input, modelPath, err := loadModelInput(s)
	if err != nil {
		return err
	}
	modelBytes := modelFileBytes(modelPath)

	var bench calibrate.Bench
	if board.Emulated {
		if s.str("port") != "" {
			return fmt.Errorf("calibrate: --board %s runs on QEMU: no --port", board.Name)
		}
		elf, err := findNoPlanELF(s)
		if err != nil {
			return err
		}
		bench = &calibrate.QEMU{ELF: elf}
	} else {
		port := s.str("port")
		if port == "" {
			return fmt.Errorf("calibrate: --board %s needs --port (the board's serial port)", board.Name)
		}
		sb, err := calibrate.OpenSerial(ctx, board.Name, link.Config{Path: port, Baud: s.integer("baud")})
		if err != nil {
			return fmt.Errorf("calibrate: %w", err)
		}
		defer sb.Close()
		bench = sb
	}

	// The reboot is given for the validation model's image (a boot checks
	// each of its layer and tensor records).
	var rebootAt calibrate.Records
	if sc, err := sched.Get("tile"); err == nil {
		if p, err := sc.Schedule(m, base, sched.Options{ModelBytes: modelBytes}); err == nil {
			if img, err := plan.EncodeImage(m, p); err == nil {
				rebootAt = calibrate.ImageRecords(img)
			}
		}
	}
	res, err := calibrate.Calibrate(ctx, calibrate.Config{Board: board, Base: base, Bench: bench, RebootAt: rebootAt})
	if err != nil {
		return err
	}
	if err := outfile.WriteFile(out, res.YAML, s.str("model"), s.str("input"), s.str("profile")); err != nil {
		return fmt.Errorf("calibrate: %w", err)
	}
	prof, err := profiles.Load(out)
	if err != nil {
		return fmt.Errorf("calibrate: the profile written does not load: %w", err)
	}
	v, err := calibrate.Validate(ctx, bench, prof, m, modelBytes, input, calibrate.DefaultLimit)
	if err != nil {
		return err
	}
	if s.json() {
		if err := reports.JSON(cmd.OutOrStdout(), calibrateReport{Board: board.Name, Out: out, Calibration: res, Validation: v}); err != nil {
			return err
		}
	} else if err := printCalibration(cmd, res, v, out); err != nil {
		return err
	}
	if !v.Passed && !s.boolean("no-check") {
		return &exitError{code: 1, msg: fmt.Sprintf("calibrate: %d of %d tasks of %s predicted more than %.0f %% off (largest %.1f %%)",
			len(v.Tasks)-v.Within, len(v.Tasks), v.Model, 100*v.Limit, 100*v.MaxError)}
	}
	return nil
}

func printCalibration(cmd *cobra.Command, res *calibrate.Result, v *calibrate.Validation, out string) error {
	w := cmd.OutOrStdout()
	pc := func(e float64) string { return strconv.FormatFloat(100*e, 'f', 1, 64) + " %" }
	num := func(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }
	var rows [][]string
	for _, p := range res.Params {
		fit := []string{"", ""}
		if p.Samples > 0 && !strings.HasPrefix(p.Path, "reboot.") {
			fit = []string{pc(p.RMSError), pc(p.MaxError)}
		}
		rows = append(rows, append([]string{p.Path, num(p.Value) + " " + p.Unit, strconv.Itoa(p.Samples)}, append(fit, p.Note)...))
	}
	if err := reports.Table(w, []string{"parameter", "value", "tasks", "fit rms", "fit max", "note"}, rows, nil); err != nil {
		return err
	}
	prof := res.Profile
	fmt.Fprintf(w, "calibrated %s in %.1f s: %d tasks of %d microbenchmarks, every output the reference executor's; fit rms %s, max %s; "+
		"on the %d convolution, depthwise and fully connected tasks the kernel costs fit rms %s, max %s, where one shared vector_mac cost would fit rms %s, max %s; "+
		"cycles at %s MHz; reboot %.0f cycles = %.2f ms; wrote %s\n",
		res.Board, res.WallS, len(res.Samples), len(res.Runs), pc(res.Fit.RMSError), pc(res.Fit.MaxError),
		res.Kernel.Samples, pc(res.Kernel.RMSError), pc(res.Kernel.MaxError), pc(res.Generic.RMSError), pc(res.Generic.MaxError),
		num(prof.ClockHz/1e6), res.BootCycles, 1e3*prof.Reboot.Seconds, out)

	rows = rows[:0]
	for _, t := range v.Tasks {
		rows = append(rows, []string{strconv.Itoa(t.Task), strconv.Itoa(t.Layer), t.Op, strconv.FormatFloat(t.Predicted, 'f', 0, 64),
			strconv.FormatFloat(t.Measured, 'f', 0, 64), fmt.Sprintf("%+.1f %%", 100*t.Error)})
	}
	if err := reports.Table(w, []string{"task", "layer", "operator", "predicted cycles", "measured cycles", "error"}, rows, nil); err != nil {
		return err
	}
	verdict := "PASS"
	if !v.Passed {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "validation %s: %s (%s, %d tasks) on %s with the calibrated profile: max error %s, mean %s, %d of %d tasks within %.0f %%\n",
		verdict, v.Model, v.Scheduler, len(v.Tasks), res.Board, pc(v.MaxError), pc(v.MeanError), v.Within, len(v.Tasks), 100*v.Limit)
	return nil
}
