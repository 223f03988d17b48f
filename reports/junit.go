package reports

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// JUnit XML as Jenkins and GitLab read it (the structure is in
// junit.xsd beside this file): testsuites > testsuite (one per board) >
// testcase (classname model.scheduler, name the trace) with properties, a
// failure or an error, and system-out carrying [[ATTACHMENT|path]] lines.

// JUnitSuites is the root element.
type JUnitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []JUnitSuite `xml:"testsuite"`
}

// JUnitSuite is one board's cells.
type JUnitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []JUnitProperty `xml:"properties>property,omitempty"`
	Cases      []JUnitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

// JUnitProperty is a name and a value.
type JUnitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

// JUnitCase is one cell.
type JUnitCase struct {
	ClassName  string          `xml:"classname,attr"`
	Name       string          `xml:"name,attr"`
	Time       string          `xml:"time,attr"`
	Properties []JUnitProperty `xml:"properties>property,omitempty"`
	Failure    *JUnitProblem   `xml:"failure,omitempty"`
	Error      *JUnitProblem   `xml:"error,omitempty"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

// JUnitProblem is a failure or an error: a short message, a type, and the
// last lines of the board's log as its text.
type JUnitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func secs(s float64) string { return strconv.FormatFloat(s, 'f', 3, 64) }

// CellPlotName is the file, beside a cell's log, that holds its capacitor
// plot (WriteCellPlot writes it).
const CellPlotName = "voltage.svg"

// JUnit builds the JUnit document of a run from its final results.
func JUnit(run *Run) *JUnitSuites {
	finals := run.Finals()
	root := &JUnitSuites{Name: run.Title}
	kinds := map[string]RunBoard{}
	for _, b := range run.Boards {
		kinds[b.Name] = b
	}
	health := map[string]Health{}
	for _, h := range run.Health {
		health[h.Board] = h
	}
	var total float64
	for _, board := range groupKeys(finals, func(r *Result) string { return r.Board }) {
		s := JUnitSuite{Name: board}
		if b, ok := kinds[board]; ok {
			s.Properties = append(s.Properties, JUnitProperty{"board.kind", b.Kind})
			if b.Profile != "" {
				s.Properties = append(s.Properties, JUnitProperty{"board.profile", b.Profile})
			}
		}
		if h, ok := health[board]; ok {
			s.Properties = append(s.Properties, JUnitProperty{"health", map[bool]string{true: "ok", false: "failed"}[h.OK]})
			if !h.OK {
				s.SystemOut = "health check failed: " + h.Message + "\n" + attachment(run, h.Log)
			}
		}
		var suiteTime float64
		seen := map[string]int{}
		for i := range finals {
			r := &finals[i]
			if r.Board != board {
				continue
			}
			c := junitCase(run, r)
			// GitLab keeps only the first of duplicate names.
			key := c.ClassName + "\x00" + c.Name
			if n := seen[key]; n > 0 {
				c.Name += " (" + r.Cell + ")"
			}
			seen[key]++
			s.Tests++
			switch {
			case c.Failure != nil:
				s.Failures++
			case c.Error != nil:
				s.Errors++
			}
			suiteTime += attemptsTime(run, r)
			s.Cases = append(s.Cases, c)
		}
		s.Time = secs(suiteTime)
		total += suiteTime
		root.Tests += s.Tests
		root.Failures += s.Failures
		root.Errors += s.Errors
		root.Suites = append(root.Suites, s)
	}
	root.Time = secs(total)
	return root
}

// attemptsTime is the wall time of all of a cell's attempts.
func attemptsTime(run *Run, final *Result) float64 {
	t := 0.0
	for _, r := range run.Results {
		if r.Cell == final.Cell {
			t += r.Seconds
		}
	}
	return t
}

func attachment(run *Run, rel string) string {
	if rel == "" {
		return ""
	}
	if _, err := os.Stat(filepath.Join(run.Dir, rel)); err != nil {
		return ""
	}
	return "[[ATTACHMENT|" + filepath.ToSlash(filepath.Join(run.Dir, rel)) + "]]\n"
}

func junitCase(run *Run, r *Result) JUnitCase {
	name := r.Trace
	if r.Run > 1 || strings.Contains(r.Name, "#") {
		name += "#" + strconv.Itoa(r.Run)
	}
	c := JUnitCase{ClassName: r.Model + "." + r.Scheduler, Name: name, Time: secs(attemptsTime(run, r))}
	prop := func(n, v string) {
		if v != "" {
			c.Properties = append(c.Properties, JUnitProperty{n, v})
		}
	}
	prop("board", r.Board)
	prop("board.kind", r.BoardKind)
	prop("cell", r.Cell)
	prop("outcome", r.Outcome)
	prop("attempts", strconv.Itoa(r.Attempt))
	prop("firmware.sha256", r.FirmwareSHA256)
	prop("harness.sha256", r.HarnessSHA256)
	if rep := r.Replay; rep != nil {
		f := func(n string, v Value) {
			if v.OK {
				prop(n, strconv.FormatFloat(v.V, 'g', 6, 64))
			}
		}
		f("latency.p50_s", latencyOf(rep, func(l *Latency) *float64 { return l.P50 }))
		f("latency.p95_s", latencyOf(rep, func(l *Latency) *float64 { return l.P95 }))
		f("power_cycles", iv(rep.PowerCycles))
		if rep.Energy != nil {
			f("energy_j", fv(rep.Energy.Total))
		}
		f("lower_bound_ratio", boundRatio(rep))
		f("inferences", iv(rep.Inferences))
		f("verified", iv(rep.Verified))
	}
	var out strings.Builder
	if r.Message != "" {
		out.WriteString(r.Outcome + ": " + r.Message + "\n")
	}
	if r.Log != "" {
		out.WriteString(attachment(run, r.Log))
		out.WriteString(attachment(run, filepath.Join(filepath.Dir(r.Log), CellPlotName)))
	}
	for _, a := range r.Artifacts {
		out.WriteString(attachment(run, a))
	}
	c.SystemOut = out.String()
	if r.Outcome == OutcomeFail || r.Outcome == OutcomeError {
		var body strings.Builder
		if lines := run.lastFileLines(r.Log, 10); len(lines) > 0 {
			body.WriteString("last lines of the board's log (" + r.Log + "):\n" + strings.Join(lines, "\n") + "\n")
		}
		if len(r.Tail) > 0 {
			body.WriteString("error output:\n" + strings.Join(r.Tail, "\n") + "\n")
		}
		p := &JUnitProblem{Message: oneLineMsg(r.Message), Type: r.Reason, Text: body.String()}
		if r.Outcome == OutcomeFail {
			c.Failure = p
		} else {
			c.Error = p
		}
	}
	return c
}

func oneLineMsg(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// WriteJUnit writes the run's JUnit XML.
func WriteJUnit(w io.Writer, run *Run) error {
	doc := JUnit(run)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// CheckJUnit checks a JUnit document's structure as its readers rely on
// it: counts that add up, names present, at most one of failure and error
// per case, no duplicate (classname, name) in a suite.
func CheckJUnit(r io.Reader) error {
	var doc JUnitSuites
	dec := xml.NewDecoder(io.LimitReader(r, 256<<20))
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	var tests, failures, errs int
	for i, s := range doc.Suites {
		if s.Name == "" {
			return fmt.Errorf("junit: testsuite %d has no name", i)
		}
		var f, e int
		names := map[string]bool{}
		for _, c := range s.Cases {
			if c.Name == "" || c.ClassName == "" {
				return fmt.Errorf("junit: suite %s: a testcase without name or classname", s.Name)
			}
			k := c.ClassName + "\x00" + c.Name
			if names[k] {
				return fmt.Errorf("junit: suite %s: testcase %s.%s twice", s.Name, c.ClassName, c.Name)
			}
			names[k] = true
			if c.Failure != nil && c.Error != nil {
				return fmt.Errorf("junit: suite %s: testcase %s both failed and errored", s.Name, c.Name)
			}
			if c.Failure != nil {
				f++
			}
			if c.Error != nil {
				e++
			}
			if _, err := strconv.ParseFloat(c.Time, 64); err != nil {
				return fmt.Errorf("junit: suite %s: testcase %s: time %q", s.Name, c.Name, c.Time)
			}
		}
		if s.Tests != len(s.Cases) || s.Failures != f || s.Errors != e {
			return fmt.Errorf("junit: suite %s says %d tests, %d failures, %d errors; holds %d, %d, %d", s.Name, s.Tests, s.Failures, s.Errors, len(s.Cases), f, e)
		}
		tests += s.Tests
		failures += f
		errs += e
	}
	if doc.Tests != tests || doc.Failures != failures || doc.Errors != errs {
		return fmt.Errorf("junit: testsuites says %d tests, %d failures, %d errors; its suites hold %d, %d, %d", doc.Tests, doc.Failures, doc.Errors, tests, failures, errs)
	}
	return nil
}
