package replay

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Prediction is what the simulated board predicts for a run on another
// board: the same plan, profile, trace and inferences, and the errors of
// the prediction against what the board measured.
type Prediction struct {
	PowerCycles             int     `json:"power_cycles"`
	Inferences              int     `json:"inferences"`
	Latency                 Latency `json:"latency_s"`
	PowerCyclesPerInference []int   `json:"power_cycles_per_inference"`
	// Measured are the board's figures the errors are against.
	MeasuredPowerCycles             int   `json:"measured_power_cycles"`
	MeasuredPowerCyclesPerInference []int `json:"measured_power_cycles_per_inference"`
	// PowerCyclesError is (predicted - measured) / measured power cycles,
	// LatencyError the same of the mean latency.
	PowerCyclesError float64 `json:"power_cycles_error"`
	LatencyError     float64 `json:"latency_error"`
	// TaskCyclesMaxError is the largest |error| of Tasks, WorstTask its
	// task; TaskCyclesMaxErrorLarge the same over tasks of at least
	// LargeTaskCycles measured cycles.
	TaskCyclesMaxError      float64          `json:"task_cycles_max_error"`
	WorstTask               *TaskComparison  `json:"worst_task,omitempty"`
	TaskCyclesMaxErrorLarge float64          `json:"task_cycles_max_error_large"`
	WorstLargeTask          *TaskComparison  `json:"worst_large_task,omitempty"`
	Tasks                   []TaskComparison `json:"tasks,omitempty"`
}

// LargeTaskCycles is the size from which a task's predicted cycles are held
// to the 10 % target (shorter tasks are dominated by fixed costs that the
// profile folds into per-task constants).
const LargeTaskCycles = 10000

// TaskComparison is one task's cycles as the profile predicts them and as
// the board measured them.
type TaskComparison struct {
	Task      int     `json:"task"`
	Layer     int     `json:"layer"`
	Operator  string  `json:"operator"`
	Predicted float64 `json:"predicted_cycles"`
	Measured  uint32  `json:"measured_cycles"`
	Error     float64 `json:"error"` // (predicted - measured) / measured
}

// Predict replays cfg on the simulated board (cfg.Board, Log and Header are
// ignored) and compares it with measured, a run of the same config on
// another board, whose tasks' cycles are taskCycles (nil: none measured).
func Predict(ctx context.Context, cfg Config, measured *Result, taskCycles []uint32) (*Prediction, error) {
	cfg.Board, cfg.BoardName, cfg.Log, cfg.Header, cfg.Progress = nil, "", nil, nil, nil
	sim, err := Run(ctx, cfg)
	var ll *LivelockError
	if err != nil && !errors.As(err, &ll) {
		return nil, fmt.Errorf("the simulated board's prediction: %w", err)
	}
	p := &Prediction{PowerCycles: sim.PowerCycles, Inferences: sim.Inferences, Latency: sim.Latency,
		PowerCyclesPerInference: sim.InferenceCycles, MeasuredPowerCycles: measured.PowerCycles,
		MeasuredPowerCyclesPerInference: measured.InferenceCycles}
	if measured.PowerCycles > 0 {
		p.PowerCyclesError = float64(sim.PowerCycles-measured.PowerCycles) / float64(measured.PowerCycles)
	}
	if measured.Latency.Mean > 0 {
		p.LatencyError = (sim.Latency.Mean - measured.Latency.Mean) / measured.Latency.Mean
	}
	worst, worstLarge := -1, -1
	for i, t := range cfg.Plan.Tasks {
		if i >= len(taskCycles) || taskCycles[i] == 0 {
			continue
		}
		tc := TaskComparison{Task: i, Layer: t.Layer, Predicted: t.Cycles + t.CommitCycles, Measured: taskCycles[i]}
		if t.Layer < len(cfg.Model.Layers) {
			tc.Operator = cfg.Model.Layers[t.Layer].Op.String()
		}
		tc.Error = (tc.Predicted - float64(tc.Measured)) / float64(tc.Measured)
		p.Tasks = append(p.Tasks, tc)
		if e := math.Abs(tc.Error); worst < 0 || e > p.TaskCyclesMaxError {
			p.TaskCyclesMaxError, worst = e, len(p.Tasks)-1
		}
		if e := math.Abs(tc.Error); tc.Measured >= LargeTaskCycles && (worstLarge < 0 || e > p.TaskCyclesMaxErrorLarge) {
			p.TaskCyclesMaxErrorLarge, worstLarge = e, len(p.Tasks)-1
		}
	}
	if worst >= 0 {
		p.WorstTask = &p.Tasks[worst]
	}
	if worstLarge >= 0 {
		p.WorstLargeTask = &p.Tasks[worstLarge]
	}
	return p, nil
}
