package main

import (
	"strings"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/reports"
	"github.com/spf13/cobra"
)

func newBoardsCmd(s *settings) *cobra.Command {
	return &cobra.Command{
		Use:   "boards",
		Short: "List the kinds of board the harness runs, and what each can do",
		Long: `List the registered kinds of board (--board NAME of replay, inject, compare, calibrate
and board): their description, default profile, what they need, and their capabilities:
replay (a trace under the power model), bench (inferences on steady power), inject (forced
brown-outs), sense-supply (plans with the run-time rule), deploy (a plan image over the
line), calibrate (microbenchmarks), measured-cycles (per-task cycles as the board ran them).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			all := boards.All()
			if s.json() {
				return reports.JSON(cmd.OutOrStdout(), all)
			}
			rows := make([][]string, len(all))
			for i, b := range all {
				caps := make([]string, len(b.Capabilities))
				for j, c := range b.Capabilities {
					caps[j] = string(c)
				}
				rows[i] = []string{b.Name, strings.Join(caps, ", "), b.DefaultProfile, strings.Join(b.Needs, "; "), b.Description}
			}
			return reports.Table(cmd.OutOrStdout(), []string{"board", "capabilities", "profile", "needs", "what it is"}, rows, nil)
		},
	}
}
