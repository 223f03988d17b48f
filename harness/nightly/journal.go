package nightly

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/batteryless/harness/reports"
)

// Journal event kinds.
const (
	EventPlan   = "plan"   // a runner started on the plan (its sha256 and selection)
	EventHealth = "health" // a board's health check ended
	EventStart  = "start"  // an attempt of a cell started
	EventEnd    = "end"    // an attempt of a cell ended, with its result
)

// Event is one line of DIR/journal.jsonl.
type Event struct {
	Event string `json:"event"`
	Time  string `json:"time"` // RFC 3339 with nanoseconds
	// Plan event.
	Plan  string `json:"plan,omitempty"`
	Shard string `json:"shard,omitempty"`
	Cells int    `json:"cells,omitempty"`
	PID   int    `json:"pid,omitempty"`
	Mode  string `json:"mode,omitempty"` // run, resume, only-failed, merge
	// Health event.
	Board   string `json:"board,omitempty"`
	OK      bool   `json:"ok,omitempty"`
	Message string `json:"message,omitempty"`
	// Start and end events.
	Cell    string          `json:"cell,omitempty"`
	Attempt int             `json:"attempt,omitempty"`
	Dir     string          `json:"dir,omitempty"` // the attempt's folder, relative to the run's
	Result  *reports.Result `json:"result,omitempty"`
}

// Journal appends events to a file, each written whole and fsynced before
// Append returns: a runner killed at any moment leaves every event it
// reported, and at most a torn last line, which the next Open cuts off.
type Journal struct {
	mu   sync.Mutex
	f    *os.File
	path string
}

// OpenJournal opens (or creates) a journal for appending. A torn last line
// (an event whose write a kill interrupted) is cut off first.
func OpenJournal(path string) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if n := st.Size(); n > 0 {
		// Find the end of the last whole line.
		const chunk = 64 << 10
		end := n
		buf := make([]byte, chunk)
		keep := int64(0)
		for end > 0 {
			start := max(end-chunk, 0)
			m, err := f.ReadAt(buf[:end-start], start)
			if err != nil && err != io.EOF {
				f.Close()
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			if i := bytes.LastIndexByte(buf[:m], '\n'); i >= 0 {
				keep = start + int64(i) + 1
				break
			}
			end = start
		}
		if keep != n {
			if err := f.Truncate(keep); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: cutting a torn last line: %w", path, err)
			}
		}
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, err
	}
	return &Journal{f: f, path: path}, nil
}

// Append writes one event as a line and syncs it to disk.
func (j *Journal) Append(e Event) error {
	if e.Time == "" {
		e.Time = time.Now().UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	b = append(b, '\n')
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}

// Close closes the journal's file.
func (j *Journal) Close() error { return j.f.Close() }

// maxEventLine bounds one journal line (an end event carries a result:
// a few kilobytes).
const maxEventLine = 4 << 20

// ReadJournal reads a journal's events. A torn last line (a runner killed
// mid-write) is dropped; a bad line before it is an error naming it.
func ReadJournal(r io.Reader, name string) ([]Event, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var out []Event
	for line := 1; ; line++ {
		b, err := readLine(br, maxEventLine)
		if err == io.EOF {
			return out, nil
		}
		if err == errTorn {
			// The last line ends without its newline: it was being
			// written when the runner died.
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		switch e.Event {
		case EventPlan, EventHealth, EventStart, EventEnd:
		default:
			return nil, fmt.Errorf("%s:%d: unknown event %q", name, line, e.Event)
		}
		if (e.Event == EventStart || e.Event == EventEnd) && (e.Cell == "" || e.Attempt < 1) {
			return nil, fmt.Errorf("%s:%d: a %s event without its cell or attempt", name, line, e.Event)
		}
		if e.Event == EventEnd && (e.Result == nil || e.Result.Cell != e.Cell || e.Result.Attempt != e.Attempt) {
			return nil, fmt.Errorf("%s:%d: an end event whose result is not its cell's attempt", name, line)
		}
		out = append(out, e)
	}
}

var errTorn = fmt.Errorf("torn last line")

// readLine reads one line without its newline, refusing one longer than
// limit; errTorn for a last line without a newline.
func readLine(br *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > limit {
			return nil, fmt.Errorf("line longer than %d bytes", limit)
		}
		line = append(line, frag...)
		switch err {
		case nil:
			return line[:len(line)-1], nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			if len(line) == 0 {
				return nil, io.EOF
			}
			return nil, errTorn
		default:
			return nil, err
		}
	}
}

// ReadJournalFile reads the journal at path.
func ReadJournalFile(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadJournal(f, path)
}

// CellState is what a journal says of one cell.
type CellState struct {
	// Started holds the attempts that started; Ended the results of
	// those that ended, by attempt.
	Started map[int]bool
	Ended   map[int]reports.Result
}

// Final is the cell's deciding result, if it has one.
func (c *CellState) Final() *reports.Result {
	if c == nil {
		return nil
	}
	best := -1
	for a, r := range c.Ended {
		if r.Final && a > best {
			best = a
		}
	}
	if best < 0 {
		return nil
	}
	r := c.Ended[best]
	return &r
}

// Unfinished returns the attempt that started and never ended, or 0.
func (c *CellState) Unfinished() int {
	if c == nil {
		return 0
	}
	last := 0
	for a := range c.Started {
		if _, ok := c.Ended[a]; !ok && a > last {
			last = a
		}
	}
	return last
}

// LastAttempt is the highest attempt number started or ended.
func (c *CellState) LastAttempt() int {
	if c == nil {
		return 0
	}
	last := 0
	for a := range c.Started {
		last = max(last, a)
	}
	for a := range c.Ended {
		last = max(last, a)
	}
	return last
}

// Results returns the ended attempts in attempt order. Only the last
// final one stays final: a rerun (--only-failed) decides the cell anew.
func (c *CellState) Results() []reports.Result {
	if c == nil {
		return nil
	}
	keys := make([]int, 0, len(c.Ended))
	for a := range c.Ended {
		keys = append(keys, a)
	}
	sort.Ints(keys)
	out := make([]reports.Result, 0, len(keys))
	final := c.Final()
	for _, a := range keys {
		r := c.Ended[a]
		r.Final = final != nil && a == final.Attempt
		out = append(out, r)
	}
	return out
}

// State is a journal folded into the state of each cell.
type State struct {
	Plans  []string // the plan hashes the journal's runners worked on
	Cells  map[string]*CellState
	Health map[string]Event // the last health check of each board
}

// Fold folds events into a State: starts and ends by cell and attempt,
// duplicates (the same attempt ended twice, as a merge of overlapping
// folders may see) keeping the later one.
func Fold(events []Event) *State {
	s := &State{Cells: map[string]*CellState{}, Health: map[string]Event{}}
	cell := func(id string) *CellState {
		c := s.Cells[id]
		if c == nil {
			c = &CellState{Started: map[int]bool{}, Ended: map[int]reports.Result{}}
			s.Cells[id] = c
		}
		return c
	}
	for _, e := range events {
		switch e.Event {
		case EventPlan:
			if !contains(s.Plans, e.Plan) {
				s.Plans = append(s.Plans, e.Plan)
			}
		case EventHealth:
			s.Health[e.Board] = e
		case EventStart:
			cell(e.Cell).Started[e.Attempt] = true
		case EventEnd:
			cell(e.Cell).Ended[e.Attempt] = *e.Result
		}
	}
	return s
}
