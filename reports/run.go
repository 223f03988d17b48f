package reports

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Run is a nightly run as its reports read it: every attempt of every
// cell, the boards' health checks, and the folder the logs are in.
type Run struct {
	// Dir is the run's folder; the results' log and artifact paths are
	// relative to it.
	Dir     string
	Title   string
	Plan    string // the plan's sha256
	Shard   string
	Created string
	Boards  []RunBoard
	// Results holds every attempt of every cell of the run's selection,
	// cells in plan order, attempts in order; a cell that has no final
	// attempt has a synthesized final error result ("missing").
	Results []Result
	Health  []Health
}

// RunBoard is a board of the hardware map.
type RunBoard struct {
	Name, Kind, Profile string
}

// Health is a board's health check.
type Health struct {
	Board   string `json:"board"`
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
	Log     string `json:"log,omitempty"`
}

// Finals is the final result of every cell.
func (r *Run) Finals() []Result { return Finals(r.Results) }

// ReadCellLog reads a result's --log file (nil when it has none or it
// cannot be read: a cell that never started).
func (r *Run) ReadCellLog(res *Result) (*Log, error) {
	if res.Log == "" {
		return nil, nil
	}
	p := filepath.Join(r.Dir, res.Log)
	f, err := os.Open(p)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	return readLogTolerant(f, p)
}

// readLogTolerant reads a log whose last line may be torn (a killed
// replay): every whole line is kept.
func readLogTolerant(f *os.File, name string) (*Log, error) {
	var good bytes.Buffer
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > maxLogLine {
			return nil, fmt.Errorf("%s: a line longer than %d bytes", name, maxLogLine)
		}
		if err != nil {
			// A last line without its newline was cut by a kill.
			break
		}
		good.Write(line)
		if good.Len() > 512<<20 {
			return nil, fmt.Errorf("%s: more than 512 MiB of log", name)
		}
	}
	return ReadFullLog(&good, name)
}

// lastFileLines returns the last n lines of a file of the run.
func (r *Run) lastFileLines(rel string, n int) []string {
	if rel == "" {
		return nil
	}
	f, err := os.Open(filepath.Join(r.Dir, rel))
	if err != nil {
		return nil
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil
	}
	const tail = 16 << 10
	off := max(st.Size()-tail, 0)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if off > 0 && len(lines) > 0 {
		lines = lines[1:] // the first may be a piece of a line
	}
	var out []string
	for i := max(len(lines)-n, 0); i < len(lines); i++ {
		l := string(lines[i])
		if len(l) > 400 {
			l = l[:400] + "..."
		}
		out = append(out, l)
	}
	return out
}

// groupKeys returns the sorted distinct values of key over results.
func groupKeys(rs []Result, key func(*Result) string) []string {
	seen := map[string]bool{}
	var out []string
	for i := range rs {
		k := key(&rs[i])
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
