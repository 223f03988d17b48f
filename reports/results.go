package reports

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Outcomes of a cell of a nightly matrix. An attempt ends in OutcomePass,
// OutcomeFail or OutcomeError; a cell's final outcome may also be
// OutcomeFlaky (an attempt did not pass, a later one did).
const (
	OutcomePass  = "pass"  // every inference verified, within the deadline
	OutcomeFail  = "fail"  // the board or the model: a mismatch, a livelock, a deadline missed
	OutcomeError = "error" // the infrastructure: QEMU died, port lost, supply unreachable, timeout
	OutcomeFlaky = "flaky" // did not pass at first, passed on a retry
)

// Result is one attempt of one cell of a nightly matrix: one `harness
// replay` run, its outcome and its figures. It is a line of results.jsonl
// and the payload of the journal's end events.
type Result struct {
	Cell      string `json:"cell"` // the cell's stable ID
	Name      string `json:"name"` // board/model/scheduler/trace[#run], for people
	Board     string `json:"board"`
	BoardKind string `json:"board_kind"` // sim, qemu-stm32, serial
	Profile   string `json:"profile,omitempty"`
	Model     string `json:"model"`
	Scheduler string `json:"scheduler"`
	Trace     string `json:"trace"`
	Run       int    `json:"run"` // 1..repeat
	// Requested is the inferences the cell asked for.
	Requested int `json:"inferences_requested,omitempty"`
	Attempt   int `json:"attempt"`
	// Final marks the attempt that decides the cell (the last one).
	Final bool `json:"final"`
	// Outcome is this attempt's (pass, fail, error) or, on the final
	// attempt, the cell's (also flaky).
	Outcome  string  `json:"outcome"`
	Reason   string  `json:"reason,omitempty"`  // a word: mismatch, livelock, deadline, no-inference, timeout, exit-2, health, ...
	Message  string  `json:"message,omitempty"` // one line
	ExitCode int     `json:"exit_code"`
	Started  string  `json:"started,omitempty"` // RFC 3339
	Seconds  float64 `json:"seconds"`           // wall time of the attempt
	// Log is the attempt's --log file, relative to the run's folder;
	// Artifacts its other files (stdout, stderr, ...), likewise.
	Log       string   `json:"log,omitempty"`
	Artifacts []string `json:"artifacts,omitempty"`
	// FirmwareSHA256 is the firmware the board ran, when known (the ELF
	// QEMU loads); HarnessSHA256 the harness binary that ran the cell.
	FirmwareSHA256 string `json:"firmware_sha256,omitempty"`
	HarnessSHA256  string `json:"harness_sha256,omitempty"`
	// Tail is the last lines of the attempt's error output, for the
	// failure messages of the reports.
	Tail   []string `json:"tail,omitempty"`
	Replay *Replay  `json:"replay,omitempty"`
}

// Key identifies what a result measures, across runs and folders: the
// axes without the repeat number.
func (r *Result) Key() string {
	return r.Board + "/" + r.Model + "/" + r.Scheduler + "/" + r.Trace
}

// Latency is a replay's latency summary in seconds.
type Latency struct {
	Mean *float64 `json:"mean"`
	P50  *float64 `json:"p50"`
	P95  *float64 `json:"p95"`
	Max  *float64 `json:"max"`
}

// EnergySplit is where a replay's energy went, in joules; a part the board
// cannot know is absent.
type EnergySplit struct {
	Compute *float64 `json:"compute,omitempty"`
	NVM     *float64 `json:"nvm,omitempty"`
	Commits *float64 `json:"commits,omitempty"`
	Reboots *float64 `json:"reboots,omitempty"`
	Idle    *float64 `json:"idle,omitempty"`
	Wasted  *float64 `json:"wasted,omitempty"`
	Total   *float64 `json:"total,omitempty"`
}

// Prediction is the simulated board's prediction for an emulated or bench
// run of the same plan and trace.
type Prediction struct {
	PowerCycles        *int     `json:"power_cycles,omitempty"`
	Latency            *Latency `json:"latency_s,omitempty"`
	PowerCyclesError   *float64 `json:"power_cycles_error,omitempty"`
	TaskCyclesMaxError *float64 `json:"task_cycles_max_error,omitempty"`
}

// Replay is what `harness replay --json` prints, decoded tolerantly:
// unknown keys are ignored and a missing figure stays nil (never 0), so
// that a board that cannot know a figure is not reported as measuring 0.
type Replay struct {
	Trace           string       `json:"trace,omitempty"`
	Model           string       `json:"model,omitempty"`
	Profile         string       `json:"profile,omitempty"`
	Scheduler       string       `json:"scheduler,omitempty"`
	Board           string       `json:"board,omitempty"`
	Tasks           *int         `json:"tasks,omitempty"`
	PlanEnergyJ     *float64     `json:"plan_energy_j,omitempty"`
	Inferences      *int         `json:"inferences,omitempty"`
	Verified        *int         `json:"verified,omitempty"`
	Mismatches      *int         `json:"mismatches,omitempty"`
	PowerCycles     *int         `json:"power_cycles,omitempty"`
	Commits         *int         `json:"commits,omitempty"`
	TasksRun        *int         `json:"tasks_run,omitempty"`
	ReexecutedTasks *int         `json:"reexecuted_tasks,omitempty"`
	Sleeps          *int         `json:"sleeps,omitempty"`
	Latency         *Latency     `json:"latency_s,omitempty"`
	LowerBoundS     *float64     `json:"lower_bound_s,omitempty"`
	MinEnergyJ      *float64     `json:"min_energy_j,omitempty"`
	MinComputeS     *float64     `json:"min_compute_s,omitempty"`
	Energy          *EnergySplit `json:"energy_j,omitempty"`
	HarvestedJ      *float64     `json:"harvested_j,omitempty"`
	TimeOnS         *float64     `json:"time_on_s,omitempty"`
	TimeOffS        *float64     `json:"time_off_s,omitempty"`
	SimTimeS        *float64     `json:"sim_time_s,omitempty"`
	TraceEnded      *bool        `json:"trace_ended,omitempty"`
	WallS           *float64     `json:"wall_s,omitempty"`
	ReferenceWallS  *float64     `json:"reference_wall_s,omitempty"`
	TimingErrorS    *float64     `json:"timing_error_s,omitempty"`
	Prediction      *Prediction  `json:"prediction,omitempty"`
}

// UnmarshalJSON decodes a replay's JSON; the emulated board's older
// "simulated" object is read as the prediction.
func (r *Replay) UnmarshalJSON(b []byte) error {
	type plain Replay
	var aux struct {
		plain
		Simulated *Prediction `json:"simulated"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*r = Replay(aux.plain)
	if r.Prediction == nil {
		r.Prediction = aux.Simulated
	}
	return nil
}

// ParseReplay decodes the JSON object `harness replay --json` printed.
func ParseReplay(b []byte) (*Replay, error) {
	var r Replay
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("replay JSON: %w", err)
	}
	return &r, nil
}

// Value is a figure of a result that may be missing.
type Value struct {
	V  float64
	OK bool
}

func fv(p *float64) Value {
	if p == nil || math.IsNaN(*p) || math.IsInf(*p, 0) {
		return Value{}
	}
	return Value{*p, true}
}

func iv(p *int) Value {
	if p == nil {
		return Value{}
	}
	return Value{float64(*p), true}
}

// Metric is one figure that reports, benchmark lines and the gate read
// from a replay.
type Metric struct {
	Name string // as in benchmark lines: latency-s, power-cycles, ...
	// Deterministic marks counters that the simulated board reproduces
	// exactly (and that a regression gate compares exactly there).
	Deterministic bool
	// LowerIsBetter says which way is a regression.
	LowerIsBetter bool
	Get           func(*Replay) Value
}

// Metrics are the figures the gate compares and the benchmark lines carry,
// in a fixed order.
var Metrics = []Metric{
	{"latency-s", true, true, func(r *Replay) Value { return latencyOf(r, func(l *Latency) *float64 { return l.Mean }) }},
	{"p95-latency-s", true, true, func(r *Replay) Value { return latencyOf(r, func(l *Latency) *float64 { return l.P95 }) }},
	{"energy-J", true, true, func(r *Replay) Value {
		if r.Energy == nil {
			return Value{}
		}
		return fv(r.Energy.Total)
	}},
	{"power-cycles", true, true, func(r *Replay) Value { return iv(r.PowerCycles) }},
	{"commits", true, true, func(r *Replay) Value { return iv(r.Commits) }},
	{"reexecuted-tasks", true, true, func(r *Replay) Value { return iv(r.ReexecutedTasks) }},
	{"inferences", true, false, func(r *Replay) Value { return iv(r.Inferences) }},
	{"bound-ratio", true, true, func(r *Replay) Value { return boundRatio(r) }},
}

// MetricByName returns the metric of that name, or nil.
func MetricByName(name string) *Metric {
	for i := range Metrics {
		if Metrics[i].Name == name {
			return &Metrics[i]
		}
	}
	return nil
}

func latencyOf(r *Replay, f func(*Latency) *float64) Value {
	if r == nil || r.Latency == nil {
		return Value{}
	}
	return fv(f(r.Latency))
}

// boundRatio is the mean latency over the lower bound (1 is the best a
// scheduler could do).
func boundRatio(r *Replay) Value {
	m := latencyOf(r, func(l *Latency) *float64 { return l.Mean })
	b := fv(r.LowerBoundS)
	if !m.OK || !b.OK || b.V <= 0 {
		return Value{}
	}
	return Value{m.V / b.V, true}
}

// AllVerified reports whether every completed inference of the replay was
// verified (and at least one completed).
func (r *Replay) AllVerified() bool {
	if r == nil || r.Inferences == nil || r.Verified == nil {
		return false
	}
	return *r.Inferences > 0 && *r.Verified == *r.Inferences && (r.Mismatches == nil || *r.Mismatches == 0)
}

// maxResultLine bounds one line of results.jsonl or a journal.
const maxResultLine = 4 << 20

// WriteResults writes one JSON line per result.
func WriteResults(w io.Writer, rs []Result) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range rs {
		if err := enc.Encode(&rs[i]); err != nil {
			return fmt.Errorf("results: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

// ReadResults reads results.jsonl back. A bad line is an error naming it.
func ReadResults(r io.Reader, name string) ([]Result, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxResultLine)
	var out []Result
	line := 0
	for sc.Scan() {
		line++
		if len(strings.TrimSpace(sc.Text())) == 0 {
			continue
		}
		var res Result
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if res.Cell == "" {
			return nil, fmt.Errorf("%s:%d: a result without a cell", name, line)
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return out, nil
}

// Finals returns the final result of every cell, in the order of rs.
func Finals(rs []Result) []Result {
	var out []Result
	for _, r := range rs {
		if r.Final {
			out = append(out, r)
		}
	}
	return out
}

// Counts is how many final results had each outcome.
type Counts struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Error int `json:"error"`
	Flaky int `json:"flaky"`
}

// Total is the number of cells counted.
func (c Counts) Total() int { return c.Pass + c.Fail + c.Error + c.Flaky }

// Count tallies the final outcomes of rs.
func Count(rs []Result) Counts {
	var c Counts
	for _, r := range rs {
		if !r.Final {
			continue
		}
		switch r.Outcome {
		case OutcomePass:
			c.Pass++
		case OutcomeFail:
			c.Fail++
		case OutcomeFlaky:
			c.Flaky++
		default:
			c.Error++
		}
	}
	return c
}

// benchName makes a value safe inside a benchmark name: no spaces, no
// slashes (they separate the name's parts), no '=' in values.
func benchName(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '\t' || r == '/' || r == '=' || r == '\n':
			return '_'
		}
		return r
	}, s)
	if s == "" {
		return "_"
	}
	return s
}

// WriteBench writes the passing final results as Go benchmark lines, one
// per cell (a cell repeated N times gives N lines of one name), so that
// `benchstat old.txt new.txt` compares two runs:
//
//	BenchmarkReplay/board=sim/model=kws/sched=adaptive/trace=rf-office 1 12.3 latency-s 1300 power-cycles ...
func WriteBench(w io.Writer, rs []Result) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "pkg: github.com/batteryless/harness/nightly")
	sorted := append([]Result(nil), rs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Key() != sorted[j].Key() {
			return sorted[i].Key() < sorted[j].Key()
		}
		return sorted[i].Run < sorted[j].Run
	})
	for _, r := range sorted {
		if !r.Final || r.Replay == nil || (r.Outcome != OutcomePass && r.Outcome != OutcomeFlaky) {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "BenchmarkReplay/board=%s/model=%s/sched=%s/trace=%s 1", benchName(r.Board), benchName(r.Model), benchName(r.Scheduler), benchName(r.Trace))
		n := 0
		for _, m := range Metrics {
			if v := m.Get(r.Replay); v.OK {
				b.WriteString(" " + strconv.FormatFloat(v.V, 'g', 10, 64) + " " + m.Name)
				n++
			}
		}
		if n == 0 {
			continue
		}
		fmt.Fprintln(bw, b.String())
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("benchmark lines: %w", err)
	}
	return nil
}
