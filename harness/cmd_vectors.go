package main

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/batteryless/harness/harness/vectors"
	"github.com/batteryless/harness/reports"
	"github.com/spf13/cobra"
)

type vectorsReport struct {
	Dir    string            `json:"dir"`
	Passed int               `json:"passed"`
	Failed int               `json:"failed"`
	Ops    map[string][2]int `json:"ops"` // operator -> [passed, failed]
	Cases  []vectors.Result  `json:"cases"`
}

func newVectorsCmd(s *settings) *cobra.Command {
	return &cobra.Command{
		Use:   "vectors DIR",
		Short: "Run every bit-exact operator vector (*.json) under DIR",
		Long: `Run every *.json operator test vector under DIR through the reference kernels
and compare each output value with the expected one. Exits 0 only if every case is
bit-exact. The format is described in the vectors package documentation.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := runVectors(args[0])
			if err != nil {
				return err
			}
			if s.json() {
				err = reports.JSON(cmd.OutOrStdout(), rep)
			} else {
				err = printVectors(cmd, rep)
			}
			if err != nil {
				return err
			}
			if rep.Failed > 0 {
				return &exitError{code: 1, msg: fmt.Sprintf("%d of %d vectors failed", rep.Failed, rep.Failed+rep.Passed)}
			}
			return nil
		},
	}
}

func runVectors(dir string) (*vectorsReport, error) {
	paths, err := vectors.Find(dir)
	if err != nil {
		return nil, err
	}
	rep := &vectorsReport{Dir: dir, Ops: map[string][2]int{}}
	for _, p := range paths {
		var r vectors.Result
		c, err := vectors.Load(p)
		if err != nil {
			r = vectors.Result{Path: p, Op: "(unreadable)", Err: oneLine(err.Error())}
		} else {
			r = vectors.Run(c)
		}
		counts := rep.Ops[r.Op]
		if r.Passed {
			rep.Passed++
			counts[0]++
		} else {
			rep.Failed++
			counts[1]++
		}
		rep.Ops[r.Op] = counts
		rep.Cases = append(rep.Cases, r)
	}
	return rep, nil
}

func printVectors(cmd *cobra.Command, rep *vectorsReport) error {
	ops := make([]string, 0, len(rep.Ops))
	for op := range rep.Ops {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	rows := make([][]string, 0, len(ops))
	for _, op := range ops {
		c := rep.Ops[op]
		rows = append(rows, []string{op, strconv.Itoa(c[0] + c[1]), strconv.Itoa(c[0]), strconv.Itoa(c[1])})
	}
	w := cmd.OutOrStdout()
	footer := []string{"total", strconv.Itoa(rep.Passed + rep.Failed), strconv.Itoa(rep.Passed), strconv.Itoa(rep.Failed)}
	if err := reports.Table(w, []string{"operator", "cases", "passed", "failed"}, rows, footer); err != nil {
		return err
	}
	if rep.Failed == 0 {
		return nil
	}
	var fails [][]string
	for _, c := range rep.Cases {
		if !c.Passed {
			why := c.Err
			if why == "" {
				why = fmt.Sprintf("%d values differ; first: %s", c.Mismatches, c.FirstDiff)
			}
			fails = append(fails, []string{c.Path, why})
		}
	}
	return reports.Table(w, []string{"failed case", "why"}, fails, nil)
}
