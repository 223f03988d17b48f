package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/batteryless/harness/harness/outfile"
	"github.com/batteryless/harness/reports"
	"github.com/batteryless/harness/traces"
	"github.com/spf13/cobra"
)

func newTraceCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trace",
		Short: "Inspect, generate and convert harvested-energy traces",
	}
	info := &cobra.Command{
		Use:   "info TRACE...",
		Short: "Statistics of traces: duration, min/mean/max power, energy, time above a threshold",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var all []traces.Stats
			for _, arg := range args {
				ts, err := openTraceArg(cmd.Context(), arg, s.str("format"), s.v.GetFloat64("load"))
				if err != nil {
					return err
				}
				defer ts.cleanup()
				r, err := ts.open()
				if err != nil {
					return err
				}
				st, err := traces.Summarize(&ctxReader{ctx: cmd.Context(), r: r}, s.v.GetFloat64("threshold"))
				if c, ok := r.(io.Closer); ok {
					c.Close()
				}
				if err != nil {
					return err
				}
				all = append(all, st)
			}
			if s.json() {
				return reports.JSON(cmd.OutOrStdout(), all)
			}
			rows := make([][]string, len(all))
			f := func(v float64) string { return strconv.FormatFloat(v, 'g', 5, 64) }
			for i, st := range all {
				rows[i] = []string{st.Name, strconv.FormatInt(st.Samples, 10), f(st.Duration), f(st.MinW * 1e3), f(st.MeanW * 1e3), f(st.MaxW * 1e3),
					f(st.EnergyJ * 1e3), f(100 * st.FractionAbove), f(st.MeanOnS)}
			}
			return reports.Table(cmd.OutOrStdout(), []string{"trace", "samples", "seconds", "min mW", "mean mW", "max mW", "energy mJ", "% above", "mean on s"}, rows, nil)
		},
	}
	info.Flags().Float64("threshold", 0.5e-3, "power threshold in watts for the time-above statistics")
	synth := &cobra.Command{
		Use:   "synth SPEC",
		Short: "Write a seeded synthetic trace as canonical CSV (e.g. rf:mean=1mW,peak=10mW,duration=300s,rate=50Hz,seed=1)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := traces.Synth(args[0])
			if err != nil {
				return err
			}
			return writeTrace(cmd, s.str("out"), r)
		},
	}
	convert := &cobra.Command{
		Use:   "convert TRACE",
		Short: "Convert a trace to canonical CSV, optionally sliced, scaled and resampled",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ts, err := openTraceArg(cmd.Context(), args[0], s.str("format"), s.v.GetFloat64("load"))
			if err != nil {
				return err
			}
			defer ts.cleanup()
			tr, err := ts.open()
			if err != nil {
				return err
			}
			var r traces.Reader = &ctxReader{ctx: cmd.Context(), r: tr}
			if c, ok := tr.(io.Closer); ok {
				defer c.Close()
			}
			if s.v.IsSet("from") || s.v.IsSet("to") {
				to := s.v.GetFloat64("to")
				if to <= 0 {
					to = 1e300
				}
				r = traces.Slice(r, s.v.GetFloat64("from"), to)
			}
			if k := s.v.GetFloat64("scale"); k != 1 {
				r = traces.Scale(r, k)
			}
			if p := s.v.GetFloat64("resample"); p > 0 {
				r = traces.Resample(r, p)
			}
			return writeTrace(cmd, s.str("out"), r, ts.file)
		},
	}
	convert.Flags().Float64("from", 0, "keep from this time (s)")
	convert.Flags().Float64("to", 0, "keep until this time (s; 0: the end)")
	convert.Flags().Float64("scale", 1, "multiply power by this factor")
	convert.Flags().Float64("resample", 0, "resample to this period (s), preserving energy")
	for _, c := range []*cobra.Command{synth, convert} {
		c.Flags().StringP("out", "o", "", "write here (default: standard output)")
	}
	for _, c := range []*cobra.Command{info, convert} {
		c.Flags().String("format", "", "trace format: csv, react, mementos (default: detect)")
		c.Flags().Float64("load", 0, "load resistance in ohms for voltage-only traces")
	}
	cmd.AddCommand(info, synth, convert)
	return cmd
}

// writeTrace writes r as canonical CSV to out (standard output when ""),
// which must not be one of inputs: it is written beside, and renamed into
// place only when complete.
func writeTrace(cmd *cobra.Command, out string, r traces.Reader, inputs ...string) error {
	w := cmd.OutOrStdout()
	var f *outfile.File
	if out != "" {
		var err error
		if f, err = outfile.Create(out, inputs...); err != nil {
			return err
		}
		defer f.Abort()
		w = f
	}
	n, err := traces.WriteCSV(w, r)
	if err != nil {
		return err
	}
	if f != nil {
		if err := f.Commit(); err != nil {
			return err
		}
	}
	if out != "" && !s2json(cmd) {
		fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d samples to %s\n", n, out)
	}
	return nil
}

func s2json(cmd *cobra.Command) bool {
	v, _ := cmd.Flags().GetBool("json")
	return v
}
