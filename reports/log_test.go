package reports

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestLogRoundTrip writes every record type and reads them back.
func TestLogRoundTrip(t *testing.T) {
	var b bytes.Buffer
	w := NewLogWriter(&b)
	w.Write(HeaderRecord{Type: "header", Board: "sim", Scheduler: "adaptive", Command: []string{"harness", "replay"}})
	w.Write(CycleRecord{Type: "cycle", Cycle: 0, End: 1.5, Reason: "brownout"})
	w.Write(VoltageRecord{Type: "voltage", T: 1.5, V: 2.4})
	w.Write(InferenceRecord{Type: "inference", Latency: 2, Verified: true})
	w.End("livelock", errors.New("livelock at 3 s"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	lg, err := ReadFullLog(&b, "log")
	if err != nil {
		t.Fatal(err)
	}
	if lg.Header == nil || lg.Header.Board != "sim" || len(lg.Cycles) != 1 || len(lg.Voltages) != 1 || len(lg.Inferences) != 1 ||
		lg.End == nil || lg.End.Reason != "livelock" || lg.End.Error != "livelock at 3 s" {
		t.Fatalf("read back %+v", lg)
	}
}

// failAfter accepts n writes, then fails: a full disk.
type failAfter struct {
	n     int
	lines []string
}

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("no space left on device")
	}
	f.n--
	f.lines = append(f.lines, string(p))
	return len(p), nil
}

// TestLogWritesWholeLines: each record reaches the writer as one whole
// line at once (a killed run leaves only whole lines), and a failed write
// is reported, not dropped.
func TestLogWritesWholeLines(t *testing.T) {
	f := &failAfter{n: 2}
	w := NewLogWriter(f)
	for i := range 3 {
		w.Write(CycleRecord{Type: "cycle", Cycle: i})
	}
	if len(f.lines) != 2 {
		t.Fatalf("%d writes reached the writer, want 2 (one per record before the failure)", len(f.lines))
	}
	for _, l := range f.lines {
		if !strings.HasSuffix(l, "}\n") || strings.Count(l, "\n") != 1 {
			t.Errorf("write %q is not one whole line", l)
		}
	}
	if err := w.Flush(); err == nil || !strings.Contains(err.Error(), "no space") {
		t.Errorf("Flush = %v, want the write's error", err)
	}
}

// FuzzReadFullLog: any bytes give records or an error naming a line, never
// a panic.
func FuzzReadFullLog(f *testing.F) {
	f.Add([]byte(`{"type":"header","board":"sim"}` + "\n" + `{"type":"cycle","cycle":0}` + "\n" + `{"type":"end","reason":"completed"}` + "\n"))
	f.Add([]byte(`{"type":"voltage","t_s":1,"v":2}`))
	f.Add([]byte("{\"type\":\"inference\",\"latency_s\":\"x\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lg, err := ReadFullLog(bytes.NewReader(data), "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error %q does not name the log and line", err)
			}
			return
		}
		if lg == nil {
			t.Fatal("nil log without an error")
		}
	})
}
