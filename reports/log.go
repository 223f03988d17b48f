package reports

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// CycleRecord is one power cycle of a replay: from turn-on to brown-out (or
// to the end of the run).
type CycleRecord struct {
	Type       string  `json:"type"` // "cycle"
	Cycle      int     `json:"cycle"`
	Start      float64 `json:"start_s"`
	End        float64 `json:"end_s"`
	VStart     float64 `json:"v_start"`
	VEnd       float64 `json:"v_end"`
	HarvestedJ float64 `json:"harvested_j"` // into the capacitor, after the converter
	UsedJ      float64 `json:"used_j"`      // drawn by the board
	Tasks      int     `json:"tasks"`       // tasks completed (their last segment ran)
	Commits    int     `json:"commits"`
	Progress   int     `json:"progress"`  // the progress word at the end
	Inference  int     `json:"inference"` // the inference running at the end, -1 if idle
	Reason     string  `json:"reason"`    // "brownout", "end"
}

// InferenceRecord is one inference of a replay.
type InferenceRecord struct {
	Type        string  `json:"type"` // "inference"
	Index       int     `json:"index"`
	Start       float64 `json:"start_s"`
	End         float64 `json:"end_s"`
	Latency     float64 `json:"latency_s"`
	PowerCycles int     `json:"power_cycles"` // cycles it ran in
	Verified    bool    `json:"verified"`     // output bit-exact with the reference
	Argmax      int     `json:"argmax"`
	// LowerBound is the earliest this inference could have finished, from
	// its start: when the energy harvested since (plus what the capacitor
	// held above brown-out) covers the computation alone, and never sooner
	// than the computation's time.
	LowerBound float64 `json:"lower_bound_s"`
}

// HeaderRecord is the first line of every log: what ran, so that a log read
// alone (by a report, a nightly run, a person) says where it came from.
type HeaderRecord struct {
	Type          string   `json:"type"` // "header"
	Version       string   `json:"version"`
	Board         string   `json:"board"`
	Profile       string   `json:"profile"`
	ProfileSHA256 string   `json:"profile_sha256"`
	Model         string   `json:"model"`
	ModelSHA256   string   `json:"model_sha256"`
	Input         string   `json:"input"` // a path, "bundled", or "seeded:N"
	InputSHA256   string   `json:"input_sha256"`
	PlanSHA256    string   `json:"plan_sha256"`
	Scheduler     string   `json:"scheduler"`
	Trace         string   `json:"trace"`
	TraceSHA256   string   `json:"trace_sha256"`
	Seed          int64    `json:"seed"`
	Started       string   `json:"started"` // RFC 3339
	Command       []string `json:"command"`
}

// VoltageRecord is one sample of the capacitor's (or the rail's) voltage:
// logs carry them at the board's events and, downsampled, in between, for
// plots.
type VoltageRecord struct {
	Type string  `json:"type"` // "voltage"
	T    float64 `json:"t_s"`
	V    float64 `json:"v"`
}

// EndRecord is the last line of a log: why the run ended. A log without one
// was cut short (the process was killed).
type EndRecord struct {
	Type   string `json:"type"`   // "end"
	Reason string `json:"reason"` // "completed", "trace-ended", "livelock", "mismatch", "interrupted", "error"
	Error  string `json:"error,omitempty"`
}

// Log is a whole replay log, read back.
type Log struct {
	Header     *HeaderRecord
	Cycles     []CycleRecord
	Inferences []InferenceRecord
	Voltages   []VoltageRecord
	End        *EndRecord
}

// LogWriter writes a replay log as JSON Lines, one record per line. Every
// record reaches the underlying writer whole, at once: a run that ends
// badly, or is killed, leaves a log whose every line parses.
type LogWriter struct {
	w   io.Writer
	buf bytes.Buffer
	enc *json.Encoder
	err error
}

// NewLogWriter writes JSON Lines to w.
func NewLogWriter(w io.Writer) *LogWriter {
	l := &LogWriter{w: w}
	l.enc = json.NewEncoder(&l.buf)
	return l
}

// Write appends one record (a HeaderRecord, CycleRecord, InferenceRecord,
// VoltageRecord or EndRecord) as one line, written through at once.
func (l *LogWriter) Write(rec any) {
	if l == nil || l.err != nil {
		return
	}
	l.buf.Reset()
	if l.err = l.enc.Encode(rec); l.err != nil {
		return
	}
	_, l.err = l.w.Write(l.buf.Bytes())
}

// End writes the EndRecord: why the run ended, and its error if any.
func (l *LogWriter) End(reason string, err error) {
	rec := EndRecord{Type: "end", Reason: reason}
	if err != nil {
		rec.Error = err.Error()
	}
	l.Write(rec)
}

// Flush returns the first error met (records are written through; the
// name stays for the callers that end a log with it).
func (l *LogWriter) Flush() error {
	if l == nil {
		return nil
	}
	if l.err != nil {
		return fmt.Errorf("log: %w", l.err)
	}
	return nil
}

// ReadLog reads a replay log back: its cycle and inference records (see
// ReadFullLog for the rest).
func ReadLog(r io.Reader, name string) ([]CycleRecord, []InferenceRecord, error) {
	lg, err := ReadFullLog(r, name)
	if err != nil {
		return nil, nil, err
	}
	return lg.Cycles, lg.Inferences, nil
}

// maxLogLine bounds one line of a log: a record is a few hundred bytes.
const maxLogLine = 1 << 20

// ReadFullLog reads a replay log back, every record. A line that is not a
// record of a known type is an error naming the line.
func ReadFullLog(r io.Reader, name string) (*Log, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLogLine)
	lg := &Log{}
	line := 0
	for sc.Scan() {
		line++
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(sc.Bytes(), &head); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		var err error
		switch head.Type {
		case "header":
			lg.Header = &HeaderRecord{}
			err = json.Unmarshal(sc.Bytes(), lg.Header)
		case "cycle":
			var c CycleRecord
			err = json.Unmarshal(sc.Bytes(), &c)
			lg.Cycles = append(lg.Cycles, c)
		case "inference":
			var in InferenceRecord
			err = json.Unmarshal(sc.Bytes(), &in)
			lg.Inferences = append(lg.Inferences, in)
		case "voltage":
			var v VoltageRecord
			err = json.Unmarshal(sc.Bytes(), &v)
			lg.Voltages = append(lg.Voltages, v)
		case "end":
			lg.End = &EndRecord{}
			err = json.Unmarshal(sc.Bytes(), lg.End)
		default:
			err = fmt.Errorf("unknown record type %q", head.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return lg, nil
}
