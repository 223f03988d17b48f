package main

import (
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batteryless/harness/harness/fixedpoint"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/replay"
	"github.com/batteryless/harness/reports"
	"github.com/spf13/cobra"
)

type inferResult struct {
	Model    string        `json:"model"`
	Rounding string        `json:"rounding"` // double (TFLite Micro) or single (TFLite desktop, XNNPACK)
	Output   []float64     `json:"output"`   // int8 values (or float32 for a float output)
	Argmax   int           `json:"argmax"`
	MACs     int64         `json:"macs"`
	Runs     int           `json:"runs,omitempty"`
	MedianS  float64       `json:"median_s,omitempty"`
	MinS     float64       `json:"min_s,omitempty"`
	MACsPerS float64       `json:"macs_per_s,omitempty"`
	Layers   []layerOutput `json:"layers,omitempty"`
}

// layerOutput is one layer's whole output tensor, with how far the other
// rounding mode's output of the same layer (on the same input) lies from it.
type layerOutput struct {
	Index     int       `json:"index"`
	Op        string    `json:"op"`
	Tensor    string    `json:"tensor"`
	Shape     []int     `json:"shape"`
	DType     string    `json:"dtype"`
	Scale     float64   `json:"scale,omitempty"`
	ZeroPoint int32     `json:"zero_point"`
	CRC32     string    `json:"crc32"` // of the tensor's raw bytes, to compare runs at a glance
	Min       float64   `json:"min"`
	Max       float64   `json:"max"`
	Values    []float64 `json:"values"`
	// OtherRounding is the other mode; OtherDiffers counts this layer's
	// values that differ under it and OtherMaxDiff the largest difference
	// (each layer computed from its own mode's inputs, as an engine would).
	OtherRounding string  `json:"other_rounding"`
	OtherDiffers  int     `json:"other_differs"`
	OtherMaxDiff  float64 `json:"other_max_diff"`
}

func newInferCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "infer [MODEL]",
		Short: "Run one inference with the reference executor (default: the bundled model and input)",
		Long: `Run one inference of MODEL (a .tflite int8 model; default: the bundled model)
on --input (the raw bytes of the input tensor, int8 in NHWC order) with the bit-exact
reference executor, and print the output tensor and its argmax. --bench N times N
inferences and prints the median time per inference.

--rounding double (the default) requantizes as TFLite Micro's reference kernels do,
rounding twice; every board's output is judged by it. --rounding single rounds once,
as TFLite on a desktop with XNNPACK and Arm NN do: their outputs may differ from the
default by a few steps. --layers prints every layer's output (all values with --json)
and, per layer, how many values the other rounding mode changes, so you can find the
layer where your engine's numbers part from the harness's.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := s.str("model")
			if len(args) == 1 {
				path = args[0]
			}
			m, err := loadModel(path)
			if err != nil {
				return err
			}
			input, err := loadInput(s.str("input"), path, m)
			if err != nil {
				return err
			}
			rd, err := fixedpoint.ParseRounding(s.str("rounding"))
			if err != nil {
				return fmt.Errorf("--rounding: %w", err)
			}
			res, err := infer(m, input, s.integer("bench"), rd)
			if err != nil {
				return err
			}
			if s.boolean("layers") {
				res.Layers = layerOutputs(m, input, rd)
			}
			if s.json() {
				return reports.JSON(cmd.OutOrStdout(), res)
			}
			return printInfer(cmd, m, res)
		},
	}
	cmd.Flags().String("model", "", "model file (default: the bundled model)")
	cmd.Flags().String("input", "", "input tensor as raw bytes (default: the bundled input, for the bundled model)")
	cmd.Flags().Int("bench", 0, "time this many inferences and report the median")
	cmd.Flags().String("rounding", "double", "requantization rounding: double (TFLite Micro, the default) or single (TFLite desktop, XNNPACK)")
	cmd.Flags().Bool("layers", false, "print every layer's output and where the other rounding mode changes it")
	return cmd
}

// infer runs the model once (and bench more times, timed).
func infer(m *model.Model, input []byte, bench int, rd fixedpoint.Rounding) (*inferResult, error) {
	if bench < 0 {
		return nil, fmt.Errorf("--bench %d: must be 0 or more", bench)
	}
	e := refexec.NewWith(m, refexec.Options{Rounding: rd})
	raw, err := e.Run(input)
	if err != nil {
		return nil, err
	}
	res := &inferResult{Model: m.Name, Rounding: rd.String(), MACs: m.MACs(), Output: outputValues(m, raw)}
	res.Argmax = replay.Argmax(res.Output)
	if bench > 0 {
		times := make([]float64, bench)
		for i := range times {
			start := time.Now()
			e.Invoke()
			times[i] = time.Since(start).Seconds()
		}
		slices.Sort(times)
		res.Runs = bench
		res.MedianS = median(times)
		res.MinS = times[0]
		res.MACsPerS = float64(res.MACs) / res.MedianS
	}
	return res, nil
}

// layerOutputs runs the input (which the caller has checked) once in each
// rounding mode and returns every layer's output in mode rd, with how the
// other mode's differs.
func layerOutputs(m *model.Model, input []byte, rd fixedpoint.Rounding) []layerOutput {
	other := fixedpoint.Single
	if rd == fixedpoint.Single {
		other = fixedpoint.Double
	}
	collect := func(r fixedpoint.Rounding) []layerOutput {
		e := refexec.NewWith(m, refexec.Options{Rounding: r})
		if err := e.SetInput(input); err != nil {
			panic(err) // the caller checked the input's size
		}
		res := make([]layerOutput, 0, len(m.Layers))
		e.InvokeEach(func(l *model.Layer, _ [][]byte, out []byte) {
			t := m.Tensors[l.Output]
			v := tensorValues(t, out)
			lo, hi := 0.0, 0.0
			if len(v) > 0 {
				lo, hi = slices.Min(v), slices.Max(v)
			}
			res = append(res, layerOutput{Index: l.Index, Op: l.Op.String(), Tensor: t.Name, Shape: t.Dims,
				DType: t.DType.String(), Scale: t.Scale, ZeroPoint: t.ZeroPoint,
				CRC32: fmt.Sprintf("%08x", crc32.ChecksumIEEE(out)), Min: lo, Max: hi, Values: v, OtherRounding: other.String()})
		})
		return res
	}
	mine, theirs := collect(rd), collect(other)
	for i := range mine {
		for j, x := range mine[i].Values {
			if d := math.Abs(x - theirs[i].Values[j]); d > 0 {
				mine[i].OtherDiffers++
				mine[i].OtherMaxDiff = max(mine[i].OtherMaxDiff, d)
			}
		}
	}
	return mine
}

// outputValues turns the output tensor's bytes into numbers.
func outputValues(m *model.Model, raw []byte) []float64 {
	return tensorValues(m.OutputTensor(), raw)
}

// tensorValues turns a tensor's raw bytes into numbers (int8 values, or
// float32 for a float tensor).
func tensorValues(out *model.Tensor, raw []byte) []float64 {
	vals := make([]float64, out.Shape.Elems())
	switch out.DType {
	case model.Float32:
		for i := range vals {
			bits := uint32(raw[4*i]) | uint32(raw[4*i+1])<<8 | uint32(raw[4*i+2])<<16 | uint32(raw[4*i+3])<<24
			vals[i] = float64(math.Float32frombits(bits))
		}
	default:
		for i, v := range model.BytesAsInt8(raw) {
			vals[i] = float64(v)
		}
	}
	return vals
}

// median of sorted values.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func printInfer(cmd *cobra.Command, m *model.Model, res *inferResult) error {
	out := m.OutputTensor()
	rows := make([][]string, len(res.Output))
	for i, v := range res.Output {
		real := "-"
		if out.DType == model.Int8 && out.Scale > 0 {
			real = strconv.FormatFloat(out.Scale*(v-float64(out.ZeroPoint)), 'g', 5, 64)
		}
		mark := ""
		if i == res.Argmax {
			mark = "<- argmax"
		}
		rows[i] = []string{strconv.Itoa(i), strconv.FormatFloat(v, 'g', -1, 64), real, mark}
	}
	w := cmd.OutOrStdout()
	if len(res.Layers) > 0 {
		lrows := make([][]string, len(res.Layers))
		for i, l := range res.Layers {
			first := l.Values[:min(6, len(l.Values))]
			parts := make([]string, len(first))
			for j, v := range first {
				parts[j] = strconv.FormatFloat(v, 'g', 5, 64)
			}
			if len(l.Values) > len(first) {
				parts = append(parts, "...")
			}
			differs := "-"
			if l.OtherDiffers > 0 {
				differs = fmt.Sprintf("%d (max %g)", l.OtherDiffers, l.OtherMaxDiff)
			}
			lrows[i] = []string{strconv.Itoa(l.Index), l.Op, fmt.Sprint(l.Shape), l.CRC32,
				strconv.FormatFloat(l.Min, 'g', 5, 64), strconv.FormatFloat(l.Max, 'g', 5, 64),
				differs, strings.Join(parts, " ")}
		}
		other := res.Layers[0].OtherRounding
		if err := reports.Table(w, []string{"layer", "operator", "shape", "crc32", "min", "max", "differ with " + other + " rounding", "first values"}, lrows, nil); err != nil {
			return err
		}
	}
	if err := reports.Table(w, []string{"index", "value", "real", ""}, rows, nil); err != nil {
		return err
	}
	fmt.Fprintf(w, "model %s: argmax %d, %d MACs, %s rounding\n", res.Model, res.Argmax, res.MACs, res.Rounding)
	if res.Runs > 0 {
		fmt.Fprintf(w, "%d inferences: median %s, fastest %s, %.3g MAC/s\n", res.Runs,
			time.Duration(res.MedianS*1e9), time.Duration(res.MinS*1e9), res.MACsPerS)
	}
	return nil
}
