package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/modelgen"
	"github.com/batteryless/harness/harness/outfile"
	"github.com/batteryless/harness/reports"
	"github.com/spf13/cobra"
)

type layerInfo struct {
	Index           int      `json:"index"`
	Op              string   `json:"op"`
	Inputs          []string `json:"inputs"`
	Output          string   `json:"output"`
	Detail          string   `json:"detail,omitempty"`
	MACs            int64    `json:"macs"`
	WeightBytes     int      `json:"weight_bytes"`
	ActivationBytes int      `json:"activation_bytes"` // inputs plus output
}

type modelInfo struct {
	Model               string      `json:"model"`
	Layers              []layerInfo `json:"layers"`
	MACs                int64       `json:"macs"`
	WeightBytes         int         `json:"weight_bytes"`
	ArenaBytes          int         `json:"arena_bytes"`
	PeakActivationBytes int         `json:"peak_activation_bytes"`
	PeakLayer           int         `json:"peak_layer"`
	ScratchBytes        int         `json:"scratch_bytes"`
}

func newModelCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model [MODEL]",
		Short: "Show a model's layers, MACs, weights, activations and peak memory",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := s.str("model")
			if len(args) == 1 {
				path = args[0]
			}
			m, err := loadModel(path)
			if err != nil {
				return err
			}
			info := describeModel(m)
			if s.json() {
				return reports.JSON(cmd.OutOrStdout(), info)
			}
			return printModel(cmd, info)
		},
	}
	cmd.Flags().String("model", "", "model file (default: the bundled model)")
	cmd.AddCommand(newModelGenCmd(s))
	return cmd
}

func shapeString(d []int) string {
	parts := make([]string, len(d))
	for i, v := range d {
		parts[i] = strconv.Itoa(v)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func describeModel(m *model.Model) *modelInfo {
	info := &modelInfo{Model: m.Name, MACs: m.MACs(), WeightBytes: m.WeightBytes(), ArenaBytes: m.Plan.ArenaBytes,
		PeakActivationBytes: m.Plan.PeakActivationBytes, PeakLayer: m.Plan.PeakLayer, ScratchBytes: m.Plan.ScratchBytes}
	for _, l := range m.Layers {
		li := layerInfo{Index: l.Index, Op: l.Op.String(), Output: shapeString(m.Tensors[l.Output].Dims), MACs: l.MACs}
		act := m.Tensors[l.Output].Bytes()
		for _, t := range l.Inputs {
			li.Inputs = append(li.Inputs, shapeString(m.Tensors[t].Dims))
			act += m.Tensors[t].Bytes()
		}
		li.ActivationBytes = act
		for _, t := range []int{l.Weights, l.Bias} {
			if t >= 0 {
				li.WeightBytes += len(m.Tensors[t].Const)
			}
		}
		li.Detail = layerDetail(l)
		info.Layers = append(info.Layers, li)
	}
	return info
}

func layerDetail(l *model.Layer) string {
	var parts []string
	switch {
	case l.Conv != nil:
		c := l.Conv
		parts = append(parts, fmt.Sprintf("k%dx%d s%dx%d", c.KernelH, c.KernelW, c.StrideH, c.StrideW))
		if c.DilationH > 1 || c.DilationW > 1 {
			parts = append(parts, fmt.Sprintf("d%dx%d", c.DilationH, c.DilationW))
		}
		if l.Op == model.OpDepthwiseConv2D && c.DepthMultiplier > 1 {
			parts = append(parts, fmt.Sprintf("x%d", c.DepthMultiplier))
		}
	case l.Pool != nil:
		p := l.Pool
		parts = append(parts, fmt.Sprintf("k%dx%d s%dx%d", p.FilterH, p.FilterW, p.StrideH, p.StrideW))
	}
	if l.Padding != "" {
		parts = append(parts, l.Padding)
	}
	if l.Activation != "" && l.Activation != "NONE" {
		parts = append(parts, l.Activation)
	}
	return strings.Join(parts, " ")
}

func printModel(cmd *cobra.Command, info *modelInfo) error {
	rows := make([][]string, len(info.Layers))
	for i, l := range info.Layers {
		rows[i] = []string{strconv.Itoa(l.Index), l.Op, strings.Join(l.Inputs, " "), l.Output, l.Detail,
			strconv.FormatInt(l.MACs, 10), strconv.Itoa(l.WeightBytes), strconv.Itoa(l.ActivationBytes)}
	}
	footer := []string{"", "total", "", "", "", strconv.FormatInt(info.MACs, 10), strconv.Itoa(info.WeightBytes), ""}
	w := cmd.OutOrStdout()
	if err := reports.Table(w, []string{"#", "operator", "input", "output", "kernel", "macs", "weight bytes", "activation bytes"}, rows, footer); err != nil {
		return err
	}
	fmt.Fprintf(w, "model %s: %d MACs, %d weight bytes, arena %d bytes (peak of live activations %d bytes at layer %d), scratch %d bytes\n",
		info.Model, info.MACs, info.WeightBytes, info.ArenaBytes, info.PeakActivationBytes, info.PeakLayer, info.ScratchBytes)
	return nil
}

func newModelGenCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Write the project's generated int8 CNN as a .tflite (reproducible from a seed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := s.str("out")
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			cfg := modelgen.DefaultConfig()
			if cmd.Flags().Changed("seed") || s.v.IsSet("seed") {
				cfg.Seed = uint64(s.v.GetInt64("seed"))
			}
			mb, ib, err := modelgen.Generate(cfg)
			if err != nil {
				return err
			}
			if err := outfile.WriteFile(out, mb); err != nil {
				return err
			}
			if in := s.str("input-out"); in != "" {
				if err := outfile.WriteFile(in, ib, out); err != nil {
					return err
				}
			}
			if dir := s.str("labelled-out"); dir != "" {
				if err := writeLabelledSet(dir, cfg, s.integer("labelled")); err != nil {
					return err
				}
			}
			m, err := model.Parse(mb, out)
			if err != nil {
				return fmt.Errorf("generated model does not import: %w", err)
			}
			info := describeModel(m)
			if s.json() {
				return reports.JSON(cmd.OutOrStdout(), info)
			}
			return printModel(cmd, info)
		},
	}
	cmd.Flags().Uint64("seed", modelgen.DefaultConfig().Seed, "random seed of weights and calibration")
	cmd.Flags().StringP("out", "o", "", "write the .tflite here")
	cmd.Flags().String("input-out", "", "also write an example input (raw int8) here")
	cmd.Flags().String("labelled-out", "", "also write a labelled set for harness eval into this folder (one folder per class; labels are the float model's top class)")
	cmd.Flags().Int("labelled", 200, "inputs in the labelled set")
	return cmd
}

// writeLabelledSet writes n generated inputs of the model of cfg as
// dir/<label>/<index>.bin, the folder-per-class form eval reads.
func writeLabelledSet(dir string, cfg modelgen.Config, n int) error {
	if n < 1 || n > 1_000_000 {
		return fmt.Errorf("--labelled %d: want 1 to 1000000", n)
	}
	set, err := modelgen.LabelledSet(cfg, n)
	if err != nil {
		return err
	}
	for i, e := range set {
		class := filepath.Join(dir, strconv.Itoa(e.Label))
		if err := os.MkdirAll(class, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(class, fmt.Sprintf("%06d.bin", i)), e.Input, 0o644); err != nil {
			return err
		}
	}
	return nil
}
