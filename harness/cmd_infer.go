package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/reports"
	"github.com/spf13/cobra"
)

type inferResult struct {
	Model    string    `json:"model"`
	Output   []float64 `json:"output"` // int8 values (or float32 for a float output)
	Argmax   int       `json:"argmax"`
	MACs     int64     `json:"macs"`
	Runs     int       `json:"runs,omitempty"`
	MedianS  float64   `json:"median_s,omitempty"`
	MinS     float64   `json:"min_s,omitempty"`
	MACsPerS float64   `json:"macs_per_s,omitempty"`
}

func newInferCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "infer [MODEL]",
		Short: "Run one inference with the reference executor (default: the bundled model and input)",
		Long: `Run one inference of MODEL (a .tflite int8 model; default: the bundled model)
on --input (the raw bytes of the input tensor, int8 in NHWC order) with the bit-exact
reference executor, and print the output tensor and its argmax. --bench N times N
inferences and prints the median time per inference.`,
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
			res, err := infer(m, input, s.integer("bench"))
			if err != nil {
				return err
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
	return cmd
}

// infer runs the model once (and bench more times, timed).
func infer(m *model.Model, input []byte, bench int) (*inferResult, error) {
	if bench < 0 {
		return nil, fmt.Errorf("--bench %d: must be 0 or more", bench)
	}
	e := refexec.New(m)
	raw, err := e.Run(input)
	if err != nil {
		return nil, err
	}
	res := &inferResult{Model: m.Name, MACs: m.MACs(), Output: outputValues(m, raw)}
	res.Argmax = argmax(res.Output)
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

// outputValues turns the output tensor's bytes into numbers.
func outputValues(m *model.Model, raw []byte) []float64 {
	out := m.OutputTensor()
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

// argmax returns the index of the largest value, the lowest index on a tie.
func argmax(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
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
	if err := reports.Table(w, []string{"index", "value", "real", ""}, rows, nil); err != nil {
		return err
	}
	fmt.Fprintf(w, "model %s: argmax %d, %d MACs\n", res.Model, res.Argmax, res.MACs)
	if res.Runs > 0 {
		fmt.Fprintf(w, "%d inferences: median %s, fastest %s, %.3g MAC/s\n", res.Runs,
			time.Duration(res.MedianS*1e9), time.Duration(res.MinS*1e9), res.MACsPerS)
	}
	return nil
}
