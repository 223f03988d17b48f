package reports

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The HTML report: one self-contained file (inline CSS and SVG, no script,
// no network: its Content-Security-Policy forbids any fetch), for a person
// to read what a nightly run found.

// maxCellPlots bounds the cells whose capacitor and progress plots the
// HTML carries inline (each cell's plot is also beside its log).
const maxCellPlots = 200

// plotBuckets is the envelope's resolution: about two points a pixel.
const plotBuckets = 400

var outcomeColor = map[string]string{
	OutcomePass: "#2e9b4f", OutcomeFail: "#c9342d", OutcomeError: "#7a5cc7", OutcomeFlaky: "#e0a526",
}

// VoltagePlot draws a log's capacitor voltage over time: its voltage
// records, or without them the cycles' start and end voltages; the power
// cycles' on-time shaded, commits ticked at the top, inference ends as
// vertical lines. The line is an envelope (Envelope): spikes stay.
func VoltagePlot(lg *Log, title, cell string) string {
	var ts, vs []float64
	source := "voltage"
	if len(lg.Voltages) > 0 {
		for _, v := range lg.Voltages {
			ts = append(ts, v.T)
			vs = append(vs, v.V)
		}
	} else {
		source = "cycles"
		for _, c := range lg.Cycles {
			ts = append(ts, c.Start, c.End)
			vs = append(vs, c.VStart, c.VEnd)
		}
	}
	ets, evs := Envelope(ts, vs, plotBuckets)
	p := newPlot("voltage", title, 760, 220, "cell", cell, "source", source, "samples", strconv.Itoa(len(ts)),
		"points", strconv.Itoa(len(ets)), "cycles", strconv.Itoa(len(lg.Cycles)), "inferences", strconv.Itoa(len(lg.Inferences)))
	if len(ts) == 0 {
		p.setScales(0, 1, 0, 1, false, false)
		p.axes("time (s)", "V", false)
		p.text(p.w/2, p.h/2, "no voltage in the log", "middle")
		return p.done()
	}
	t0, t1 := ts[0], ts[len(ts)-1]
	for _, c := range lg.Cycles {
		t0, t1 = math.Min(t0, c.Start), math.Max(t1, c.End)
	}
	vlo, vhi := minMax(vs)
	p.setScales(t0, t1, math.Max(0, vlo-0.1), vhi+0.1, false, false)
	p.axes("time (s)", "capacitor voltage (V)", true)
	// On-bands, merged when closer than a pixel.
	pxPerS := (p.w - p.l - p.r) / math.Max(t1-t0, 1e-12)
	bands := 0
	for i := 0; i < len(lg.Cycles); {
		s, e := lg.Cycles[i].Start, lg.Cycles[i].End
		j := i + 1
		for j < len(lg.Cycles) && (lg.Cycles[j].Start-e)*pxPerS < 1 {
			e = math.Max(e, lg.Cycles[j].End)
			j++
		}
		fmt.Fprintf(&p.b, `<rect class="on" x="%s" y="%s" width="%s" height="%s" fill="#ffe9a8" opacity="0.6"><title>on %s-%s s (%d cycles)</title></rect>`,
			px(p.x.at(s)), px(p.t), px(math.Max((e-s)*pxPerS, 0.5)), px(p.h-p.t-p.bt), num(s), num(e), j-i)
		bands++
		i = j
	}
	// Commits: a tick at the end of each cycle that committed, per pixel.
	lastPx, ticks := -1.0, 0
	for _, c := range lg.Cycles {
		if c.Commits == 0 {
			continue
		}
		x := p.x.at(c.End)
		if x-lastPx < 1 {
			continue
		}
		lastPx = x
		fmt.Fprintf(&p.b, `<line class="commit" x1="%s" x2="%s" y1="%s" y2="%s" stroke="#555"><title>cycle %d: %d commits, progress %d</title></line>`,
			px(x), px(x), px(p.t), px(p.t+6), c.Cycle, c.Commits, c.Progress)
		ticks++
	}
	for _, in := range lg.Inferences {
		x := p.x.at(in.End)
		col := "#2e9b4f"
		if !in.Verified {
			col = "#c9342d"
		}
		fmt.Fprintf(&p.b, `<line class="inference" x1="%s" x2="%s" y1="%s" y2="%s" stroke="%s" stroke-dasharray="3 2"><title>inference %d ends at %s s: latency %s s, %d power cycles, verified %t</title></line>`,
			px(x), px(x), px(p.t), px(p.h-p.bt), col, in.Index, num(in.End), num(in.Latency), in.PowerCycles, in.Verified)
	}
	p.polyline(ets, evs, "#0072b2", fmt.Sprintf("%d samples shown as %d (min/max envelope)", len(ts), len(ets)), "voltage", "")
	p.b.WriteString(fmt.Sprintf(`<desc data-bands="%d" data-commit-ticks="%d"></desc>`, bands, ticks))
	return p.done()
}

// ProgressPlot draws the progress word at the end of each power cycle and
// the tasks each cycle completed.
func ProgressPlot(lg *Log, title, cell string) string {
	n := len(lg.Cycles)
	p := newPlot("progress", title, 760, 200, "cell", cell, "cycles", strconv.Itoa(n))
	if n == 0 {
		p.setScales(0, 1, 0, 1, false, false)
		p.axes("power cycle", "", false)
		p.text(p.w/2, p.h/2, "no power cycles in the log", "middle")
		return p.done()
	}
	xs := make([]float64, n)
	prog := make([]float64, n)
	tasks := make([]float64, n)
	maxY := 1.0
	for i, c := range lg.Cycles {
		xs[i] = float64(c.Cycle)
		prog[i] = float64(c.Progress)
		tasks[i] = float64(c.Tasks)
		maxY = math.Max(maxY, math.Max(prog[i], tasks[i]))
	}
	p.setScales(xs[0], xs[n-1], 0, maxY*1.05, false, false)
	p.axes("power cycle", "tasks", true)
	ex, ey := Envelope(xs, prog, plotBuckets)
	p.polyline(ex, ey, color(0), "progress word at the end of each cycle", "progress", "")
	ex, ey = Envelope(xs, tasks, plotBuckets)
	p.polyline(ex, ey, color(1), "tasks completed in each cycle", "tasks", "")
	p.legend([]string{"progress word", "tasks per cycle"})
	return p.done()
}

func minMax(v []float64) (float64, float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return lo, hi
}

// heatmap draws one rect per final result: rows board/model, columns
// scheduler/trace(#run).
func heatmap(finals []Result) string {
	rows := groupKeys(finals, func(r *Result) string { return r.Board + " / " + r.Model })
	cols := groupKeys(finals, func(r *Result) string { return colName(r) })
	cw, ch := 22.0, 20.0
	left := 12 + 7*float64(maxLen(rows))
	top := 12 + 6.2*float64(maxLen(cols))
	w := math.Max(left+cw*float64(len(cols))+20, 300)
	h := top + ch*float64(len(rows)) + 30
	p := newPlot("heatmap", "Outcome of every cell", w, h, "cells", strconv.Itoa(len(finals)),
		"rows", strconv.Itoa(len(rows)), "columns", strconv.Itoa(len(cols)))
	ri := map[string]int{}
	for i, r := range rows {
		ri[r] = i
		p.text(left-4, top+ch*float64(i)+ch*0.65, r, "end")
	}
	ci := map[string]int{}
	for i, c := range cols {
		ci[c] = i
		x := left + cw*float64(i) + cw/2
		fmt.Fprintf(&p.b, `<text font-size="10" font-family="sans-serif" transform="translate(%s %s) rotate(-60)">%s</text>`, px(x), px(top-4), esc(c))
	}
	for _, r := range finals {
		x := left + cw*float64(ci[colName(&r)])
		y := top + ch*float64(ri[r.Board+" / "+r.Model])
		fmt.Fprintf(&p.b, `<rect class="cell %s" data-outcome="%s" data-cell="%s" x="%s" y="%s" width="%s" height="%s" fill="%s" stroke="#fff"><title>%s: %s %s</title></rect>`,
			esc(r.Outcome), esc(r.Outcome), esc(r.Cell), px(x), px(y), px(cw), px(ch), outcomeColor[r.Outcome], esc(r.Name), esc(r.Outcome), esc(r.Message))
		p.marks++
	}
	lx := 12.0
	for _, o := range []string{OutcomePass, OutcomeFlaky, OutcomeFail, OutcomeError} {
		fmt.Fprintf(&p.b, `<rect x="%s" y="%s" width="10" height="10" fill="%s"/>`, px(lx), px(h-18), outcomeColor[o])
		p.text(lx+13, h-9, o, "start")
		lx += 60
	}
	return p.done()
}

func colName(r *Result) string {
	s := r.Scheduler + " / " + r.Trace
	if strings.Contains(r.Name, "#") {
		s += " #" + strconv.Itoa(r.Run)
	}
	return s
}

func maxLen(s []string) int {
	n := 0
	for _, v := range s {
		n = max(n, len(v))
	}
	return n
}

// barGroup is one chart of grouped bars: groups (traces) of bars
// (schedulers), each with an optional bound marker.
type bar struct {
	group, series string
	v, bound      float64
	hasBound      bool
}

func groupedBars(kind, title, ylabel string, bars []bar, attrs ...string) string {
	groups := []string{}
	series := []string{}
	for _, b := range bars {
		if !contains(groups, b.group) {
			groups = append(groups, b.group)
		}
		if !contains(series, b.series) {
			series = append(series, b.series)
		}
	}
	sort.Strings(groups)
	sort.Strings(series)
	attrs = append(attrs, "bars", strconv.Itoa(len(bars)))
	w := math.Max(480, 90+float64(len(groups)*(len(series)*14+24)))
	gw := (w - 80) / float64(max(len(groups), 1))
	// Group labels that do not fit their group are turned.
	turn := float64(maxLen(groups))*6 > gw
	h, bt := 250.0, 40.0
	if turn {
		bt = 30 + math.Min(float64(maxLen(groups)), 60)*4.5
		h += bt - 40
	}
	p := newPlot(kind, title, w, h, attrs...)
	p.bt = bt
	hi := 0.0
	for _, b := range bars {
		hi = math.Max(hi, b.v)
		if b.hasBound {
			hi = math.Max(hi, b.bound)
		}
	}
	p.setScales(0, float64(len(groups)), 0, math.Max(hi*1.1, 1e-12), false, false)
	p.axes("", ylabel, false)
	gw = (p.w - p.l - p.r) / float64(max(len(groups), 1))
	bw := math.Min(14, (gw-12)/float64(max(len(series), 1)))
	for gi, g := range groups {
		x0 := p.l + gw*float64(gi) + (gw-bw*float64(len(series)))/2
		if turn {
			fmt.Fprintf(&p.b, `<text font-size="10" font-family="sans-serif" text-anchor="end" transform="translate(%s %s) rotate(-40)">%s</text>`,
				px(p.l+gw*(float64(gi)+0.5)), px(p.h-p.bt+12), esc(g))
		} else {
			p.text(p.l+gw*(float64(gi)+0.5), p.h-p.bt+13, g, "middle")
		}
		for si, s := range series {
			for _, b := range bars {
				if b.group != g || b.series != s {
					continue
				}
				x := x0 + bw*float64(si)
				y := p.y.at(b.v)
				tip := fmt.Sprintf("%s, %s: %s", g, s, num(b.v))
				if b.hasBound {
					tip += " (bound " + num(b.bound) + ", ratio " + num(b.v/math.Max(b.bound, 1e-300)) + ")"
				}
				fmt.Fprintf(&p.b, `<rect class="bar" data-series="%s" data-group="%s" data-value="%g" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>`,
					esc(s), esc(g), b.v, px(x), px(y), px(bw-1), px(math.Max(p.h-p.bt-y, 0)), color(si), esc(tip))
				p.marks++
				if b.hasBound {
					yb := p.y.at(b.bound)
					fmt.Fprintf(&p.b, `<line class="bound" x1="%s" x2="%s" y1="%s" y2="%s" stroke="#000" stroke-width="2"><title>lower bound %s</title></line>`,
						px(x-1), px(x+bw), px(yb), px(yb), num(b.bound))
				}
			}
		}
	}
	p.legend(series)
	return p.done()
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// cdfPlot draws one empirical CDF per series.
func cdfPlot(title string, series map[string][]float64, attrs ...string) string {
	names := make([]string, 0, len(series))
	lo, hi := math.Inf(1), math.Inf(-1)
	for n, v := range series {
		names = append(names, n)
		sort.Float64s(v)
		if len(v) > 0 {
			lo, hi = math.Min(lo, v[0]), math.Max(hi, v[len(v)-1])
		}
	}
	sort.Strings(names)
	attrs = append(attrs, "series", strconv.Itoa(len(names)))
	p := newPlot("cdf", title, 560, 240, attrs...)
	logx := lo > 0 && hi/lo > 30
	p.setScales(lo, hi, 0, 1, logx, false)
	p.axes("latency (s)", "share of inferences", true)
	for i, n := range names {
		v := series[n]
		xs := make([]float64, 0, 2*len(v))
		ys := make([]float64, 0, 2*len(v))
		for k, x := range v {
			xs = append(xs, x, x)
			ys = append(ys, float64(k)/float64(len(v)), float64(k+1)/float64(len(v)))
		}
		p.polyline(xs, ys, color(i), fmt.Sprintf("%s: %d inferences, median %s s", n, len(v), num(v[len(v)/2])), n, fmt.Sprintf(` data-inferences="%d"`, len(v)))
	}
	p.legend(names)
	return p.done()
}

// WriteHTML writes the run's report as one self-contained HTML file.
func WriteHTML(w io.Writer, run *Run) error {
	finals := run.Finals()
	c := Count(run.Results)
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>` + esc(run.Title) + `</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}
.pass{color:#2e9b4f}.fail{color:#c9342d}.error{color:#7a5cc7}.flaky{color:#b07d00}
.plots{display:flex;flex-wrap:wrap;gap:.6em;align-items:flex-start}.plots svg{display:block}.note{color:#666;font-size:.85em}
details{margin:.3em 0}summary{cursor:pointer}
</style></head><body>
`)
	fmt.Fprintf(&b, "<h1>%s</h1>\n", esc(run.Title))
	fmt.Fprintf(&b, `<p id="counts" data-pass="%d" data-fail="%d" data-error="%d" data-flaky="%d">%d cells: <span class="pass">%d pass</span>, <span class="fail">%d fail</span>, <span class="error">%d error</span>, <span class="flaky">%d flaky</span>. Plan %s%s.</p>`+"\n",
		c.Pass, c.Fail, c.Error, c.Flaky, c.Total(), c.Pass, c.Fail, c.Error, c.Flaky, esc(short(run.Plan)), shardNote(run.Shard))
	b.WriteString(`<p class="note">pass: every inference verified within the deadline; fail: the board or the model (a mismatch, a livelock, a deadline missed, no inference); error: the infrastructure (QEMU died, port lost, supply unreachable, timeout, a runner that died); flaky: did not pass at first, passed on a retry.</p>` + "\n")
	if len(run.Health) > 0 {
		b.WriteString("<h2>Boards</h2>\n<table><tr><th>board</th><th>health check</th></tr>\n")
		for _, h := range run.Health {
			st := `<span class="pass">ok</span>`
			if !h.OK {
				st = `<span class="fail">failed</span>: ` + esc(h.Message)
			}
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td></tr>\n", esc(h.Board), st)
		}
		b.WriteString("</table>\n")
	}
	b.WriteString(`<h2 id="outcomes">Outcomes</h2>` + "\n")
	if len(finals) > 0 {
		b.WriteString(heatmap(finals) + "\n")
	}
	// Read each final result's log once.
	logs := make([]*Log, len(finals))
	var logErrs []string
	for i := range finals {
		lg, err := run.ReadCellLog(&finals[i])
		if err != nil {
			logErrs = append(logErrs, err.Error())
		}
		logs[i] = lg
	}
	writeComparisons(&b, finals, logs)
	writePredictions(&b, finals)
	writeCells(&b, run, finals, logs)
	if len(logErrs) > 0 {
		b.WriteString(`<h2>Unreadable logs</h2><ul class="note">`)
		for _, e := range logErrs {
			fmt.Fprintf(&b, "<li>%s</li>", esc(e))
		}
		b.WriteString("</ul>\n")
	}
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func shardNote(s string) string {
	if s == "" {
		return ""
	}
	return ", shard " + s
}

// writeComparisons writes, per board and model, the grouped bars against
// the lower bound and the latency CDF per scheduler.
func writeComparisons(b *strings.Builder, finals []Result, logs []*Log) {
	b.WriteString(`<h2 id="comparison">Schedulers against the lower bound</h2>` + "\n")
	groups := groupKeys(finals, func(r *Result) string { return r.Board + " / " + r.Model })
	if len(groups) == 0 {
		b.WriteString(`<p class="note">no cells</p>`)
	}
	for _, g := range groups {
		var lat, en, comp []bar
		cdf := map[string][]float64{}
		for i := range finals {
			r := &finals[i]
			if r.Board+" / "+r.Model != g {
				continue
			}
			group := r.Trace
			if strings.Contains(r.Name, "#") {
				group += "#" + strconv.Itoa(r.Run)
			}
			if rep := r.Replay; rep != nil {
				if v := latencyOf(rep, func(l *Latency) *float64 { return l.Mean }); v.OK {
					bd := fv(rep.LowerBoundS)
					lat = append(lat, bar{group, r.Scheduler, v.V, bd.V, bd.OK && bd.V > 0})
				}
				if rep.Energy != nil {
					if v := fv(rep.Energy.Total); v.OK {
						bd := fv(rep.MinEnergyJ)
						en = append(en, bar{group, r.Scheduler, v.V * 1e3, bd.V * 1e3, bd.OK && bd.V > 0})
					}
				}
			}
			done := 0.0
			if r.Replay != nil && r.Replay.Verified != nil && r.Requested > 0 {
				done = math.Min(float64(*r.Replay.Verified)/float64(r.Requested), 1)
			}
			comp = append(comp, bar{group, r.Scheduler, 100 * done, 0, false})
			if logs[i] != nil {
				for _, in := range logs[i].Inferences {
					cdf[r.Scheduler] = append(cdf[r.Scheduler], in.Latency)
				}
			}
		}
		fmt.Fprintf(b, "<h3>%s</h3>\n<div class=\"plots\">\n", esc(g))
		if len(lat) > 0 {
			b.WriteString(groupedBars("bars-latency", "mean latency (s); black: lower bound", "latency (s)", lat, "group", g) + "\n")
		}
		if len(en) > 0 {
			b.WriteString(groupedBars("bars-energy", "energy (mJ); black: computation alone", "energy (mJ)", en, "group", g) + "\n")
		}
		b.WriteString(groupedBars("bars-completion", "inferences verified of those asked (%)", "completed (%)", comp, "group", g) + "\n")
		if len(cdf) > 0 {
			b.WriteString(cdfPlot("latency CDF per scheduler", cdf, "group", g) + "\n")
		} else {
			b.WriteString(`<p class="note">no inference records in the logs: no latency CDF</p>` + "\n")
		}
		b.WriteString("</div>\n")
	}
}

// writePredictions writes the simulated board's prediction errors for the
// emulated and bench cells.
func writePredictions(b *strings.Builder, finals []Result) {
	b.WriteString(`<h2 id="predictions">Simulated prediction against emulated and bench runs</h2>` + "\n")
	var pc, tc []bar
	for _, r := range finals {
		if r.Replay == nil || r.Replay.Prediction == nil {
			continue
		}
		name := r.Board + "/" + r.Model + "/" + r.Scheduler + "/" + r.Trace
		if strings.Contains(r.Name, "#") {
			name += "#" + strconv.Itoa(r.Run)
		}
		if v := fv(r.Replay.Prediction.PowerCyclesError); v.OK {
			pc = append(pc, bar{name, "power cycles", 100 * math.Abs(v.V), 0, false})
		}
		if v := fv(r.Replay.Prediction.TaskCyclesMaxError); v.OK {
			tc = append(tc, bar{name, "worst task", 100 * math.Abs(v.V), 0, false})
		}
	}
	if len(pc)+len(tc) == 0 {
		b.WriteString(`<p class="note">no emulated or bench cell carries a prediction</p>` + "\n")
		return
	}
	b.WriteString(`<div class="plots">`)
	b.WriteString(groupedBars("prediction", "|simulated - measured| / measured (%)", "error (%)", append(pc, tc...)))
	b.WriteString("</div>\n")
}

// writeCells writes the table of cells and, for the first maxCellPlots,
// their capacitor and progress plots.
func writeCells(b *strings.Builder, run *Run, finals []Result, logs []*Log) {
	b.WriteString(`<h2 id="cells">Cells</h2>` + "\n<table><tr><th>cell</th><th>outcome</th><th>attempts</th><th>mean latency</th><th>power cycles</th><th>message</th><th>log</th></tr>\n")
	for _, r := range finals {
		lat, cyc := "-", "-"
		if r.Replay != nil {
			if v := latencyOf(r.Replay, func(l *Latency) *float64 { return l.Mean }); v.OK {
				lat = num(v.V) + " s"
			}
			if v := iv(r.Replay.PowerCycles); v.OK {
				cyc = strconv.Itoa(int(v.V))
			}
		}
		logLink := "-"
		if r.Log != "" {
			logLink = fmt.Sprintf(`<a href="%s">log</a>`, esc(filepath.ToSlash(r.Log)))
		}
		fmt.Fprintf(b, `<tr id="cell-%s"><td>%s</td><td class="%s">%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>`+"\n",
			esc(r.Cell), esc(r.Name), esc(r.Outcome), esc(r.Outcome), r.Attempt, lat, cyc, esc(r.Message), logLink)
	}
	b.WriteString("</table>\n")
	shown := 0
	for i := range finals {
		if logs[i] == nil || len(logs[i].Cycles)+len(logs[i].Voltages) == 0 {
			continue
		}
		if shown == maxCellPlots {
			fmt.Fprintf(b, `<p class="note">plots of the first %d cells only; every cell's capacitor plot is beside its log (%s)</p>`+"\n", maxCellPlots, CellPlotName)
			break
		}
		shown++
		r := &finals[i]
		fmt.Fprintf(b, "<details%s><summary>%s: %s</summary><div class=\"plots\">\n%s\n%s\n</div></details>\n",
			map[bool]string{true: " open", false: ""}[shown <= 3], esc(r.Name), esc(r.Outcome),
			VoltagePlot(logs[i], r.Name+": capacitor voltage", r.Cell), ProgressPlot(logs[i], r.Name+": progress per power cycle", r.Cell))
	}
}
