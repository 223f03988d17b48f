package calibrate

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
)

// Sample is one task of one benchmark: what the board measured, and the
// task's features: its cycles under each unit profile (every cost 0 but
// the parameter's, which is 1), as harness/plan prices it. The cost model
// is linear in the profile's numbers, so a profile's prediction of the task
// is the features times the parameters.
type Sample struct {
	Image    string  `json:"image"`
	Task     int     `json:"task"`
	Layer    int     `json:"layer"`
	Op       string  `json:"op"` // its kernel (profiles.KernelNames)
	Commit   bool    `json:"commit"`
	Measured float64 `json:"measured_cycles"`
	// Predicted is the calibrated profile's cycles for the task (the
	// plan's, commit included).
	Predicted float64 `json:"predicted_cycles"`

	x map[string]float64 // feature by parameter path
}

// Err is the sample's relative error.
func (s *Sample) Err() float64 { return relErr(s.Predicted, s.Measured) }

func relErr(pred, meas float64) float64 {
	if meas == 0 {
		if pred == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return (pred - meas) / meas
}

// unitProfiles returns, for each path, a profile whose costs are all 0 but
// that one, which is 1: zero gives the structure (which optional sections
// are present).
func unitProfiles(zero *profiles.Profile, paths []string) (map[string]*profiles.Profile, error) {
	out := map[string]*profiles.Profile{}
	for _, path := range paths {
		u := zero.Clone()
		if err := u.SetField(path, 1); err != nil {
			return nil, err
		}
		out[path] = u
	}
	return out, nil
}

// zeroCosts is base with every cost 0 (costs.* and reboot), with the
// kernels named present, and the layer scan present when scan is set.
func zeroCosts(base *profiles.Profile, kernels []string, scan bool) *profiles.Profile {
	z := base.Clone()
	z.Kernels, z.LayerScan = nil, nil
	for _, k := range kernels {
		_ = z.SetField("costs.kernels."+k+".cycles_per_task", 0)
	}
	if scan {
		_ = z.SetField("costs.layer_scan.cycles", 0)
	}
	for _, p := range z.FieldPaths() {
		if strings.HasPrefix(p, "costs.") {
			_ = z.SetField(p, 0)
		}
	}
	return z
}

// taskCycles is what a profile predicts for a task of a plan: its cycles
// as plan.Estimate gives them, plus the commit's when it commits (what the
// firmware's TASK_DONE counts: ih_rt_step computes, writes and commits).
func taskCycles(prof *profiles.Profile, m *model.Model, t plan.Task) float64 {
	c, _ := plan.Estimate(prof, m, m.Layers[t.Layer], t.Region, t.Part)
	cy := c.Cycles()
	if t.Commit {
		_, cc := plan.CommitCost(prof)
		cy += cc
	}
	return cy
}

// features fills in the sample's features under the unit profiles.
func (s *Sample) features(units map[string]*profiles.Profile, m *model.Model, t plan.Task) {
	if s.x == nil {
		s.x = map[string]float64{}
	}
	for path, u := range units {
		if v := taskCycles(u, m, t); v != 0 {
			s.x[path] = v
		}
	}
}

// Param is one fitted number of the profile.
type Param struct {
	Path    string  `json:"path"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"`
	Samples int     `json:"samples"` // tasks whose cost it is part of
	// The fit's relative error over those tasks: root mean square and the
	// largest in magnitude.
	RMSError float64 `json:"rms_error"`
	MaxError float64 `json:"max_error"`
	Note     string  `json:"note,omitempty"`
}

// fit solves for the parameters (paths) by non-negative least squares on
// the relative errors: each task weighs the same whatever its length.
// fixed are known parameters (their part is taken off the measurements).
func fit(samples []*Sample, paths []string, fixed map[string]float64) (map[string]float64, error) {
	var A [][]float64
	var b []float64
	for _, s := range samples {
		if s.Measured <= 0 {
			return nil, fmt.Errorf("calibrate: %s task %d: measured %g cycles", s.Image, s.Task, s.Measured)
		}
		target := s.Measured
		for p, v := range fixed {
			target -= v * s.x[p]
		}
		row := make([]float64, len(paths))
		for j, p := range paths {
			row[j] = s.x[p] / s.Measured
		}
		A = append(A, row)
		b = append(b, target/s.Measured)
	}
	x, err := NNLS(A, b)
	if err != nil {
		return nil, fmt.Errorf("calibrate: fit: %w", err)
	}
	out := map[string]float64{}
	for j, p := range paths {
		out[p] = x[j]
	}
	return out, nil
}

// predict is the features times the parameters.
func (s *Sample) predict(theta map[string]float64) float64 {
	v := 0.0
	for p, f := range s.x {
		v += f * theta[p]
	}
	return v
}

// errStats is the root mean square and the largest (in magnitude) relative
// error of the samples for which keep is true, with their count.
func errStats(samples []*Sample, pred func(*Sample) float64, keep func(*Sample) bool) (rms, worst float64, n int) {
	for _, s := range samples {
		if keep != nil && !keep(s) {
			continue
		}
		e := relErr(pred(s), s.Measured)
		rms += e * e
		if math.Abs(e) > math.Abs(worst) {
			worst = e
		}
		n++
	}
	if n > 0 {
		rms = math.Sqrt(rms / float64(n))
	}
	return rms, worst, n
}

// roundSig rounds v to sig significant digits.
func roundSig(v float64, sig int) float64 {
	if v == 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return v
	}
	e := math.Floor(math.Log10(math.Abs(v)))
	p := math.Pow(10, float64(sig-1)-e)
	return math.Round(v*p) / p
}

// kernelOf is the kernel a parameter path belongs to ("" if none).
func kernelOf(path string) string {
	rest, ok := strings.CutPrefix(path, "costs.kernels.")
	if !ok {
		return ""
	}
	k, _, _ := strings.Cut(rest, ".")
	return k
}

// kernelPaths are the cycle fields of a kernel.
func kernelPaths(k string) []string {
	var out []string
	for _, f := range []string{"cycles_per_task", "cycles_per_output", "cycles_per_tap", "cycles_per_element"} {
		out = append(out, "costs.kernels."+k+"."+f)
	}
	return out
}

// kernelsOf lists the kernels of the samples' operators, in KernelNames
// order.
func kernelsOf(samples []*Sample) []string {
	seen := map[string]bool{}
	for _, s := range samples {
		seen[s.Op] = true
	}
	var out []string
	for _, k := range profiles.KernelNames() {
		if seen[k] {
			out = append(out, k)
		}
	}
	return out
}

// sortedKeys returns a map's keys, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
