package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/batteryless/harness/reports"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// modelSet is a file listing candidate models for one task with their
// accuracy, given or measured, e.g.
//
//	models:
//	  - name: kws-dscnn
//	    path: ../shared/data/models/kws_dscnn_int8.tflite
//	    input: ../shared/data/inputs/kws_ref_input0_int8.bin
//	    accuracy: 0.90
//	    source: MLPerf Tiny v0.5 quality target
//	  - name: tiny
//	    path: bundled:tinycnn
//	    data: labelled/          # measured by eval: replaces accuracy
//	    labels: labelled/set.csv # optional manifest
type modelSet struct {
	Models []modelEntry `yaml:"models"`
}

type modelEntry struct {
	Name     string  `yaml:"name" json:"name"`
	Path     string  `yaml:"path" json:"path"`
	Input    string  `yaml:"input" json:"input,omitempty"`
	Accuracy float64 `yaml:"accuracy" json:"accuracy"`
	Source   string  `yaml:"source" json:"source,omitempty"`
	// Data (and Labels) name a labelled set: the accuracy is then measured
	// with eval (top-1, from its cache when it holds this model and set).
	Data   string `yaml:"data" json:"data,omitempty"`
	Labels string `yaml:"labels" json:"labels,omitempty"`

	measured int // inputs the accuracy was measured on; 0: given
}

// readModelSet reads and checks a model-set file; paths are relative to it.
func readModelSet(path string) ([]modelEntry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var set modelSet
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&set); err != nil {
		return nil, fmt.Errorf("%s: %s", path, oneLine(err.Error()))
	}
	if len(set.Models) == 0 {
		return nil, fmt.Errorf("%s: no models", path)
	}
	dir := filepath.Dir(path)
	for i := range set.Models {
		e := &set.Models[i]
		if e.Name == "" || e.Path == "" {
			return nil, fmt.Errorf("%s: models[%d]: name and path are required", path, i)
		}
		if !(e.Accuracy >= 0 && e.Accuracy <= 1) {
			return nil, fmt.Errorf("%s: models[%d] (%s): accuracy %g is not in [0, 1]", path, i, e.Name, e.Accuracy)
		}
		if e.Path != "bundled:tinycnn" && !filepath.IsAbs(e.Path) {
			e.Path = filepath.Join(dir, e.Path)
		}
		if e.Input != "" && !filepath.IsAbs(e.Input) {
			e.Input = filepath.Join(dir, e.Input)
		}
		if e.Labels != "" && e.Data == "" {
			return nil, fmt.Errorf("%s: models[%d] (%s): labels without data", path, i, e.Name)
		}
		for _, p := range []*string{&e.Data, &e.Labels} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
	}
	return set.Models, nil
}

type selection struct {
	Scheduler      string   `json:"scheduler"`
	Model          string   `json:"model,omitempty"` // empty: none meets the deadline
	Accuracy       float64  `json:"accuracy"`
	AccuracySource string   `json:"accuracy_source,omitempty"` // measured (by eval) or given (in the model set)
	AccuracyInputs int      `json:"accuracy_inputs,omitempty"` // inputs a measured accuracy counts
	P95S           float64  `json:"latency_p95_s"`
	Rejected       []string `json:"rejected,omitempty"` // more accurate models that miss the deadline, with why
}

func newSelectCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "select TRACE --deadline SECONDS --models FILE",
		Short: "For each scheduler, the most accurate model whose p95 latency meets a deadline on a trace",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			deadline := s.v.GetFloat64("deadline")
			if !(deadline > 0) {
				return fmt.Errorf("--deadline must be a positive number of seconds")
			}
			entries, err := readModelSet(s.str("models"))
			if err != nil {
				return err
			}
			for i := range entries {
				e := &entries[i]
				if e.Data == "" {
					continue
				}
				r, err := evaluate(cmd.Context(), e.Path, evalOptions{data: e.Data, labels: e.Labels,
					jobs: runtime.NumCPU(), cache: true})
				if err != nil {
					return fmt.Errorf("%s: model %s: measuring accuracy: %w", s.str("models"), e.Name, err)
				}
				e.Accuracy, e.measured = r.Top1, r.Evaluated
			}
			var paths, inputs []string
			for _, e := range entries {
				paths = append(paths, e.Path)
				inputs = append(inputs, e.Input)
			}
			s.v.Set("model", paths)
			s.v.Set("input", inputs)
			rows, err := runCompare(cmd.Context(), s, args)
			if err != nil {
				return err
			}
			byModel := map[string]modelEntry{}
			for i, e := range entries {
				m, err := loadModel(paths[i])
				if err != nil {
					return err
				}
				byModel[m.Name] = e
			}
			sel := map[string]*selection{}
			var order []string
			sort.SliceStable(rows, func(a, b int) bool { return byModel[rows[a].Model].Accuracy > byModel[rows[b].Model].Accuracy })
			for _, r := range rows {
				cur, ok := sel[r.Scheduler]
				if !ok {
					cur = &selection{Scheduler: r.Scheduler}
					sel[r.Scheduler] = cur
					order = append(order, r.Scheduler)
				}
				if cur.Model != "" {
					continue
				}
				e := byModel[r.Model]
				switch {
				case r.Error != "" || r.Inferences == 0:
					why := r.Error
					if why == "" {
						why = "no inference completed"
					}
					cur.Rejected = append(cur.Rejected, e.Name+": "+why)
				case r.Mismatches > 0:
					cur.Rejected = append(cur.Rejected, e.Name+": outputs differ from the reference")
				case r.LatencyP95S > deadline:
					cur.Rejected = append(cur.Rejected, fmt.Sprintf("%s: p95 %.2f s > %.2f s", e.Name, r.LatencyP95S, deadline))
				default:
					cur.Model, cur.Accuracy, cur.P95S = e.Name, e.Accuracy, r.LatencyP95S
					cur.AccuracySource, cur.AccuracyInputs = "given", e.measured
					if e.measured > 0 {
						cur.AccuracySource = "measured"
					}
				}
			}
			sort.Strings(order)
			out := make([]*selection, len(order))
			for i, n := range order {
				out[i] = sel[n]
			}
			if s.json() {
				return reports.JSON(cmd.OutOrStdout(), map[string]any{"deadline_s": deadline, "trace": args[0], "selections": out})
			}
			table := make([][]string, len(out))
			for i, o := range out {
				model, acc, p95 := "(none meets the deadline)", "-", "-"
				if o.Model != "" {
					model, acc, p95 = o.Model, strconv.FormatFloat(o.Accuracy, 'f', 3, 64)+" given", strconv.FormatFloat(o.P95S, 'f', 2, 64)
					if o.AccuracySource == "measured" {
						acc = fmt.Sprintf("%.3f measured (n=%d)", o.Accuracy, o.AccuracyInputs)
					}
				}
				table[i] = []string{o.Scheduler, model, acc, p95, strings.Join(o.Rejected, "; ")}
			}
			return reports.Table(cmd.OutOrStdout(), []string{"scheduler", "model", "accuracy", "p95 s", "more accurate, rejected"}, table, nil)
		},
	}
	f := cmd.Flags()
	f.Float64("deadline", 0, "latency deadline in seconds (met by the p95 latency)")
	f.String("models", "", "model-set file (YAML): name, path, input, accuracy, source per model; data (and labels) to measure the accuracy with eval")
	f.String("profile", "msp430fr5994", "device profile")
	f.String("schedulers", "all", "schedulers: all, or a comma-separated list")
	f.Int("inferences", 0, "inferences per run (0: back to back until the trace ends)")
	f.Bool("loop", false, "repeat the trace until --inferences are done")
	f.String("format", "", "trace format: csv, react, mementos (default: detect)")
	f.Float64("load", 0, "load resistance in ohms for voltage-only traces")
	return cmd
}
