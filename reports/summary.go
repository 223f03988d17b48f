package reports

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// SummaryLimit bounds summary.md: CI job summaries are meant to be short,
// and some CI systems refuse larger ones.
const SummaryLimit = 64 << 10

// mdCell makes a value safe inside a Markdown table cell.
func mdCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", `\|`)
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}

// budget writes lines while they fit, keeping room for the notes that say
// what was left out.
type budget struct {
	b     strings.Builder
	limit int
}

func (w *budget) fits(s string) bool { return w.b.Len()+len(s) <= w.limit }

func (w *budget) line(s string) bool {
	if !w.fits(s + "\n") {
		return false
	}
	w.b.WriteString(s + "\n")
	return true
}

// table writes a Markdown table, as many rows as fit; the rest is counted
// in a note.
func (w *budget) table(header []string, rows [][]string, reserve int) {
	if len(rows) == 0 {
		return
	}
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = "---"
	}
	if !w.line("| "+strings.Join(header, " | ")+" |") || !w.line("| "+strings.Join(sep, " | ")+" |") {
		return
	}
	lim := w.limit
	w.limit -= reserve
	for i, r := range rows {
		cells := make([]string, len(r))
		for j, c := range r {
			cells[j] = mdCell(c)
		}
		if !w.line("| " + strings.Join(cells, " | ") + " |") {
			w.limit = lim
			w.line(fmt.Sprintf("\n... and %d more rows (see report.html and results.jsonl)", len(rows)-i))
			return
		}
	}
	w.limit = lim
}

// WriteSummary writes summary.md: the counts, the health checks that
// failed, the cells that did not pass, then every cell's figures, at most
// SummaryLimit bytes in all.
func WriteSummary(w io.Writer, run *Run) error {
	s := &budget{limit: SummaryLimit}
	c := Count(run.Results)
	finals := run.Finals()
	s.line("# " + mdCell(run.Title))
	s.line("")
	s.line(fmt.Sprintf("**%d cells**: %d pass, %d fail, %d error, %d flaky. Plan `%s`%s.", c.Total(), c.Pass, c.Fail, c.Error, c.Flaky, short(run.Plan), shardNote(run.Shard)))
	s.line("")
	var bad [][]string
	for _, h := range run.Health {
		if !h.OK {
			bad = append(bad, []string{h.Board, h.Message})
		}
	}
	if len(bad) > 0 {
		s.line("## Boards that failed their health check")
		s.line("")
		s.table([]string{"board", "why"}, bad, 2048)
		s.line("")
	}
	var notPass [][]string
	for _, r := range finals {
		if r.Outcome != OutcomePass {
			notPass = append(notPass, []string{r.Name, r.Outcome, r.Reason, r.Message})
		}
	}
	if len(notPass) > 0 {
		s.line("## Cells that did not pass")
		s.line("")
		s.table([]string{"cell", "outcome", "reason", "message"}, notPass, 16<<10)
		s.line("")
	}
	var rows [][]string
	for _, r := range finals {
		row := []string{r.Board, r.Model, r.Scheduler, r.Trace, r.Outcome, "-", "-", "-", "-"}
		if strings.Contains(r.Name, "#") {
			row[3] += " #" + strconv.Itoa(r.Run)
		}
		if rep := r.Replay; rep != nil {
			if v := latencyOf(rep, func(l *Latency) *float64 { return l.Mean }); v.OK {
				row[5] = num(v.V)
			}
			if v := boundRatio(rep); v.OK {
				row[6] = num(v.V)
			}
			if v := iv(rep.PowerCycles); v.OK {
				row[7] = strconv.Itoa(int(v.V))
			}
			if rep.Energy != nil {
				if v := fv(rep.Energy.Total); v.OK {
					row[8] = num(v.V * 1e3)
				}
			}
		}
		rows = append(rows, row)
	}
	if len(rows) > 0 {
		s.line("## Every cell")
		s.line("")
		s.table([]string{"board", "model", "scheduler", "trace", "outcome", "mean latency s", "latency / bound", "power cycles", "energy mJ"}, rows, 512)
	}
	_, err := io.WriteString(w, s.b.String())
	return err
}
