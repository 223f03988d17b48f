package nightly

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batteryless/harness/reports"
)

func endEvent(cell string, attempt int, outcome string, final bool) Event {
	return Event{Event: EventEnd, Cell: cell, Attempt: attempt,
		Result: &reports.Result{Cell: cell, Attempt: attempt, Outcome: outcome, Final: final}}
}

func TestJournalRoundTripAndFold(t *testing.T) {
	path := filepath.Join(t.TempDir(), JournalFile)
	j, err := OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	events := []Event{
		{Event: EventPlan, Plan: "abc"},
		{Event: EventStart, Cell: "c1", Attempt: 1},
		endEvent("c1", 1, reports.OutcomeError, false),
		{Event: EventStart, Cell: "c1", Attempt: 2},
		endEvent("c1", 2, reports.OutcomeFlaky, true),
		{Event: EventStart, Cell: "c2", Attempt: 1},
		{Event: EventHealth, Board: "b", OK: true},
	}
	for _, e := range events {
		if err := j.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	back, err := ReadJournalFile(path)
	if err != nil || len(back) != len(events) {
		t.Fatalf("read %d events, %v", len(back), err)
	}
	s := Fold(back)
	if f := s.Cells["c1"].Final(); f == nil || f.Attempt != 2 || f.Outcome != reports.OutcomeFlaky {
		t.Errorf("c1 final %+v", f)
	}
	if s.Cells["c1"].Unfinished() != 0 || s.Cells["c2"].Unfinished() != 1 || s.Cells["c2"].Final() != nil {
		t.Errorf("unfinished: c1 %d, c2 %d", s.Cells["c1"].Unfinished(), s.Cells["c2"].Unfinished())
	}
	if !s.Health["b"].OK || len(s.Plans) != 1 {
		t.Errorf("health %+v, plans %v", s.Health, s.Plans)
	}
}

// TestJournalTornLine: a kill in the middle of a write leaves a torn last
// line; readers drop it, and the next runner cuts it off before appending.
func TestJournalTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), JournalFile)
	j, _ := OpenJournal(path)
	j.Append(Event{Event: EventStart, Cell: "c1", Attempt: 1})
	j.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"event":"end","cell":"c1","attempt":1,"result":{"ce`)
	f.Close()
	ev, err := ReadJournalFile(path)
	if err != nil || len(ev) != 1 {
		t.Fatalf("torn journal: %d events, %v", len(ev), err)
	}
	j, err = OpenJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	j.Append(Event{Event: EventStart, Cell: "c2", Attempt: 1})
	j.Close()
	ev, err = ReadJournalFile(path)
	if err != nil || len(ev) != 2 || ev[1].Cell != "c2" {
		t.Fatalf("after reopening: %+v, %v", ev, err)
	}
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, []byte(`"ce`+"\n")) || bytes.Count(data, []byte("\n")) != 2 {
		t.Errorf("the torn line was not cut off:\n%s", data)
	}
}

func TestJournalBadLines(t *testing.T) {
	cases := map[string]string{
		"{\"event\":\"start\",\"cell\":\"c\",\"attempt\":1}\nnot json\n{\"event\":\"plan\"}\n": "j:2:",
		"{\"event\":\"party\"}\n":                              `j:1: unknown event "party"`,
		"{\"event\":\"start\",\"attempt\":1}\n":                "j:1: a start event without its cell",
		"{\"event\":\"end\",\"cell\":\"c\",\"attempt\":1}\n":   "j:1: an end event whose result",
		"{\"event\":\"start\",\"cell\":\"c\",\"attempt\":0}\n": "without its cell or attempt",
	}
	for in, want := range cases {
		if _, err := ReadJournal(strings.NewReader(in), "j"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %s", in, err, want)
		}
	}
	long := strings.Repeat("x", maxEventLine+10) + "\n"
	if _, err := ReadJournal(strings.NewReader(long), "j"); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("a huge line: %v", err)
	}
}

func FuzzReadJournal(f *testing.F) {
	f.Add([]byte("{\"event\":\"plan\",\"plan\":\"x\"}\n{\"event\":\"start\",\"cell\":\"c\",\"attempt\":1}\n"))
	f.Add([]byte("{\"event\":\"end\",\"cell\":\"c\",\"attempt\":1,\"result\":{\"cell\":\"c\",\"attempt\":1,\"final\":true,\"outcome\":\"pass\",\"replay\":{\"inferences\":1}}}\n{\"ev"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := ReadJournal(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		s := Fold(ev)
		for id, c := range s.Cells {
			if f := c.Final(); f != nil && f.Cell != id {
				t.Fatalf("cell %s's final result is %s's", id, f.Cell)
			}
		}
	})
}
