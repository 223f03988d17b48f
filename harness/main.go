// Command harness tests quantized neural networks on battery-less,
// intermittently powered microcontrollers: it replays harvested-energy
// traces, deploys models cut into tasks that fit the power cycles, logs every
// power cycle, and proves every output right against its own bit-exact
// reference executor.
//
// Configuration comes from flags, then HARNESS_* environment variables, then
// a YAML file given with --config, then the embedded defaults (a bundled model
// and trace on the simulated board).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/batteryless/harness/boards/supply/deadman"
	"github.com/spf13/viper"
)

// Exit codes: what a run's end means, for scripts and the nightly runner.
const (
	exitOK          = 0
	exitMismatch    = 1   // an output differed from the reference
	exitFailure     = 2   // an error: bad input, or the infrastructure (QEMU, a port, a supply)
	exitLivelock    = 3   // a commit group cannot finish in the power cycles the trace gives
	exitNoInference = 4   // the trace ended before any inference completed
	exitInterrupted = 130 // SIGINT or SIGTERM: what the run had is written, marked interrupted
)

// exitError carries an exit code for failures that are results (a mismatch,
// a failed vector) rather than errors of use.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// checkedWriter remembers the first failed write: a table printed to a full
// disk must not end in exit 0.
type checkedWriter struct {
	w   *os.File
	err error
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

func main() {
	// A deadman of a bench run is this program run again: it waits there
	// for its run to end (boards/supply/deadman).
	deadman.Main()
	os.Exit(execute(os.Args[1:]))
}

// execute runs the command line and returns the process's exit code.
func execute(args []string) int {
	root := newRootCmd()
	out := &checkedWriter{w: os.Stdout}
	root.SetOut(out)
	root.SetArgs(args)
	// Ctrl-C or a TERM cancels the command's context: a run stops its
	// boards (QEMU is closed), writes what it has, and returns.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := root.ExecuteContext(ctx)
	interrupted := ctx.Err() != nil
	stop()
	if err == nil && out.err != nil {
		err = fmt.Errorf("writing the output: %w", out.err)
	}
	code := exitOK
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "harness:", oneLine(ee.msg))
			}
			code = ee.code
		} else {
			fmt.Fprintln(os.Stderr, "harness:", oneLine(err.Error()))
			code = exitFailure
		}
	}
	if interrupted && code != exitMismatch {
		if err == nil {
			fmt.Fprintln(os.Stderr, "harness: interrupted")
		}
		code = exitInterrupted
	}
	return code
}

// oneLine keeps an error message on one line.
func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

func newRootCmd() *cobra.Command {
	s := &settings{v: viper.New()}
	root := &cobra.Command{
		Use:           "harness",
		Short:         "Test DNN inference on battery-less, intermittently powered boards",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return s.load(cmd)
		},
	}
	root.PersistentFlags().String("config", "", "YAML configuration file (keys are flag names)")
	root.PersistentFlags().Bool("json", false, "print JSON for machines instead of tables")
	root.AddCommand(newVersionCmd(s), newInferCmd(s), newVectorsCmd(s), newModelCmd(s), newReplayCmd(s), newInjectCmd(s), newTraceCmd(s), newScheduleCmd(s), newCompareCmd(s), newSelectCmd(s))
	root.AddCommand(newCalibrateCmd(s))
	root.AddCommand(newBoardCmd(s), newBoardsCmd(s))
	root.AddCommand(newEvalCmd(s))
	root.AddCommand(newRunCmd(s), newReportCmd(s), newGateCmd(s))
	root.AddCommand(newSupplyCmd(s))
	return root
}
