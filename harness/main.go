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
	"github.com/spf13/viper"
)

// exitError carries an exit code for failures that are results (a mismatch,
// a failed vector) rather than errors of use.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func main() {
	root := newRootCmd()
	// Ctrl-C or a TERM cancels the command's context: a run stops its
	// boards (QEMU is closed) and returns, rather than dying halfway.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "harness:", ee.msg)
			}
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "harness:", oneLine(err.Error()))
		os.Exit(2)
	}
}

// oneLine keeps an error message on one line.
func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

// settings is the viper instance of one run: flags over HARNESS_* variables
// over the config file over defaults.
type settings struct{ v *viper.Viper }

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
	root.AddCommand(newBoardCmd(s))
	root.AddCommand(newSupplyCmd(s))
	return root
}

// load binds the running command's flags, the environment and the config
// file, in viper's order of precedence.
func (s *settings) load(cmd *cobra.Command) error {
	v := s.v
	v.SetEnvPrefix("HARNESS")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_", ".", "_"))
	v.AutomaticEnv()
	if err := v.BindPFlags(cmd.Flags()); err != nil {
		return err
	}
	if err := v.BindPFlags(cmd.InheritedFlags()); err != nil {
		return err
	}
	if path := v.GetString("config"); path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
	}
	return nil
}

func (s *settings) str(key string) string   { return s.v.GetString(key) }
func (s *settings) boolean(key string) bool { return s.v.GetBool(key) }
func (s *settings) integer(key string) int  { return s.v.GetInt(key) }
func (s *settings) json() bool              { return s.v.GetBool("json") }
