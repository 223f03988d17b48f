package reports

import (
	"bufio"
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

// LogWriter writes a replay log as JSON Lines, one record per line.
type LogWriter struct {
	w   *bufio.Writer
	enc *json.Encoder
	err error
}

// NewLogWriter writes JSON Lines to w; call Flush at the end.
func NewLogWriter(w io.Writer) *LogWriter {
	bw := bufio.NewWriter(w)
	return &LogWriter{w: bw, enc: json.NewEncoder(bw)}
}

// Write appends one record (a CycleRecord or an InferenceRecord).
func (l *LogWriter) Write(rec any) {
	if l == nil || l.err != nil {
		return
	}
	l.err = l.enc.Encode(rec)
}

// Flush writes what is buffered and returns the first error.
func (l *LogWriter) Flush() error {
	if l == nil {
		return nil
	}
	if err := l.w.Flush(); err != nil && l.err == nil {
		l.err = err
	}
	if l.err != nil {
		return fmt.Errorf("log: %w", l.err)
	}
	return nil
}

// ReadLog reads a replay log back: its cycle and inference records. A line
// that is not one of them is an error naming the line.
func ReadLog(r io.Reader, name string) ([]CycleRecord, []InferenceRecord, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var cycles []CycleRecord
	var infs []InferenceRecord
	line := 0
	for sc.Scan() {
		line++
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(sc.Bytes(), &head); err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		switch head.Type {
		case "cycle":
			var c CycleRecord
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				return nil, nil, fmt.Errorf("%s:%d: %w", name, line, err)
			}
			cycles = append(cycles, c)
		case "inference":
			var in InferenceRecord
			if err := json.Unmarshal(sc.Bytes(), &in); err != nil {
				return nil, nil, fmt.Errorf("%s:%d: %w", name, line, err)
			}
			infs = append(infs, in)
		default:
			return nil, nil, fmt.Errorf("%s:%d: unknown record type %q", name, line, head.Type)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return cycles, infs, nil
}
