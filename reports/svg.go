package reports

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// A few inline-SVG plotting pieces for the HTML report: linear or log
// scales with round ticks, axes, polylines, bars and shaded bands. Every
// plot is an <svg> with data-* attributes saying what it shows and how many
// marks it holds, and its marks carry <title> tooltips with their values.

// Envelope downsamples a series whose xs ascend to at most about
// 2*buckets points: per bucket of equal x width its lowest and its highest
// point, in x order. A spike of one sample survives, as it would not
// under decimation or averaging.
func Envelope(xs, ys []float64, buckets int) ([]float64, []float64) {
	n := min(len(xs), len(ys))
	if buckets < 1 || n <= 2*buckets+2 {
		return xs[:n], ys[:n]
	}
	x0, x1 := xs[0], xs[n-1]
	span := x1 - x0
	if !(span > 0) {
		span = 1
	}
	ox := make([]float64, 0, 2*buckets+2)
	oy := make([]float64, 0, 2*buckets+2)
	emit := func(i int) {
		ox = append(ox, xs[i])
		oy = append(oy, ys[i])
	}
	emit(0)
	cur, lo, hi := -1, -1, -1
	flush := func() {
		if cur < 0 {
			return
		}
		switch {
		case lo == hi:
			emit(lo)
		case lo < hi:
			emit(lo)
			emit(hi)
		default:
			emit(hi)
			emit(lo)
		}
	}
	for i := 1; i < n-1; i++ {
		b := int(float64(buckets) * (xs[i] - x0) / span)
		b = min(max(b, 0), buckets-1)
		if b != cur {
			flush()
			cur, lo, hi = b, i, i
			continue
		}
		if ys[i] < ys[lo] {
			lo = i
		}
		if ys[i] > ys[hi] {
			hi = i
		}
	}
	flush()
	emit(n - 1)
	return ox, oy
}

// scale maps data to pixels, linearly or on log10.
type scale struct {
	d0, d1, r0, r1 float64
	log            bool
}

func linScale(d0, d1, r0, r1 float64) scale {
	if !(d1 > d0) {
		d0, d1 = d0-1, d0+1
	}
	return scale{d0: d0, d1: d1, r0: r0, r1: r1}
}

func logScale(d0, d1, r0, r1 float64) scale {
	d0 = math.Max(d0, 1e-12)
	if !(d1 > d0) {
		d1 = d0 * 10
	}
	return scale{d0: math.Log10(d0), d1: math.Log10(d1), r0: r0, r1: r1, log: true}
}

func (s scale) at(v float64) float64 {
	if s.log {
		v = math.Log10(math.Max(v, 1e-12))
	}
	return s.r0 + (v-s.d0)/(s.d1-s.d0)*(s.r1-s.r0)
}

// ticks are round values across the scale's domain.
func (s scale) ticks(n int) []float64 {
	if s.log {
		var out []float64
		for e := math.Floor(s.d0); e <= math.Ceil(s.d1); e++ {
			if e >= s.d0-1e-9 && e <= s.d1+1e-9 {
				out = append(out, math.Pow(10, e))
			}
		}
		if len(out) < 2 {
			out = []float64{math.Pow(10, s.d0), math.Pow(10, s.d1)}
		}
		return out
	}
	step := niceStep((s.d1 - s.d0) / float64(max(n, 1)))
	var out []float64
	for v := math.Ceil(s.d0/step) * step; v <= s.d1+step*1e-9; v += step {
		out = append(out, v)
		if len(out) > 50 {
			break
		}
	}
	return out
}

func niceStep(raw float64) float64 {
	if !(raw > 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// num formats a value for labels: a few significant digits.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a >= 1e5 || a < 1e-3:
		return strconv.FormatFloat(v, 'e', 1, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// tickLabel formats a tick with as many decimals as the ticks' step
// needs, so that neighbours never read the same.
func tickLabel(v float64, ticks []float64, log bool) string {
	if log || len(ticks) < 2 {
		return num(v)
	}
	step := math.Abs(ticks[1] - ticks[0])
	if step >= 1e5 || step < 1e-4 {
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	dec := max(0, int(math.Ceil(-math.Log10(step)-1e-9)))
	if step*math.Pow(10, float64(dec)) != math.Round(step*math.Pow(10, float64(dec))) {
		dec++
	}
	return strconv.FormatFloat(v, 'f', dec, 64)
}

func px(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func esc(s string) string { return html.EscapeString(s) }

// palette colours series in order (colour-blind-safe hues).
var palette = []string{"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#f0e442", "#000000"}

func color(i int) string { return palette[i%len(palette)] }

// plot is one SVG being written.
type plot struct {
	b           strings.Builder
	w, h        float64
	l, r, t, bt float64 // margins
	x, y        scale
	marks       int
}

// newPlot starts an SVG of kind (data-plot) with a title; attrs are more
// data-* attributes (name, value pairs).
func newPlot(kind, title string, w, h float64, attrs ...string) *plot {
	p := &plot{w: w, h: h, l: 64, r: 16, t: 40, bt: 40}
	fmt.Fprintf(&p.b, `<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="%s" height="%s" viewBox="0 0 %s %s" role="img" data-plot="%s"`,
		px(w), px(h), px(w), px(h), esc(kind))
	for i := 0; i+1 < len(attrs); i += 2 {
		fmt.Fprintf(&p.b, ` data-%s="%s"`, esc(attrs[i]), esc(attrs[i+1]))
	}
	fmt.Fprintf(&p.b, `><title>%s</title>`, esc(title))
	fmt.Fprintf(&p.b, `<text x="%s" y="16" font-size="13" font-family="sans-serif" font-weight="bold">%s</text>`, px(p.l), esc(title))
	return p
}

// setScales sets the plot's scales over the data ranges.
func (p *plot) setScales(x0, x1, y0, y1 float64, xlog, ylog bool) {
	if xlog {
		p.x = logScale(x0, x1, p.l, p.w-p.r)
	} else {
		p.x = linScale(x0, x1, p.l, p.w-p.r)
	}
	if ylog {
		p.y = logScale(y0, y1, p.h-p.bt, p.t)
	} else {
		p.y = linScale(y0, y1, p.h-p.bt, p.t)
	}
}

// axes draws the frame, ticks and labels.
func (p *plot) axes(xlabel, ylabel string, xticks bool) {
	fmt.Fprintf(&p.b, `<g class="axes" font-size="10" font-family="sans-serif" fill="#333"><rect x="%s" y="%s" width="%s" height="%s" fill="none" stroke="#999"/>`,
		px(p.l), px(p.t), px(p.w-p.l-p.r), px(p.h-p.t-p.bt))
	yt := p.y.ticks(4)
	for _, v := range yt {
		y := p.y.at(v)
		fmt.Fprintf(&p.b, `<line x1="%s" x2="%s" y1="%s" y2="%s" stroke="#eee"/><text x="%s" y="%s" text-anchor="end">%s</text>`,
			px(p.l), px(p.w-p.r), px(y), px(y), px(p.l-4), px(y+3), tickLabel(v, yt, p.y.log))
	}
	if xticks {
		ts := p.x.ticks(6)
		for _, v := range ts {
			x := p.x.at(v)
			fmt.Fprintf(&p.b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`, px(x), px(p.h-p.bt+13), tickLabel(v, ts, p.x.log))
		}
	}
	fmt.Fprintf(&p.b, `<text x="%s" y="%s" text-anchor="middle">%s</text>`, px((p.l+p.w-p.r)/2), px(p.h-6), esc(xlabel))
	fmt.Fprintf(&p.b, `<text transform="translate(12 %s) rotate(-90)" text-anchor="middle">%s</text></g>`, px((p.t+p.h-p.bt)/2), esc(ylabel))
}

// polyline draws a series; title is its tooltip.
func (p *plot) polyline(xs, ys []float64, stroke, title, series string, extra string) {
	var pts strings.Builder
	n := 0
	for i := range xs {
		if math.IsNaN(xs[i]) || math.IsNaN(ys[i]) {
			continue
		}
		if n > 0 {
			pts.WriteByte(' ')
		}
		pts.WriteString(px(p.x.at(xs[i])) + "," + px(p.y.at(ys[i])))
		n++
	}
	fmt.Fprintf(&p.b, `<polyline class="series" data-series="%s" data-n="%d" fill="none" stroke="%s" stroke-width="1.3" points="%s"%s><title>%s</title></polyline>`,
		esc(series), n, stroke, pts.String(), extra, esc(title))
	p.marks++
}

// rect draws a mark rectangle in data coordinates.
func (p *plot) rect(x0, x1, y0, y1 float64, fill, title, class string) {
	a, b := p.x.at(x0), p.x.at(x1)
	c, d := p.y.at(y0), p.y.at(y1)
	fmt.Fprintf(&p.b, `<rect class="%s" x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>`,
		class, px(math.Min(a, b)), px(math.Min(c, d)), px(math.Max(math.Abs(b-a), 0.5)), px(math.Max(math.Abs(d-c), 0.5)), fill, esc(title))
	p.marks++
}

// legend writes series names and colours at the top right.
func (p *plot) legend(names []string) {
	x := p.w - p.r - 4
	for i := len(names) - 1; i >= 0; i-- {
		w := float64(len(names[i]))*6 + 16
		x -= w
		fmt.Fprintf(&p.b, `<g class="legend" font-size="10" font-family="sans-serif"><rect x="%s" y="22" width="10" height="10" fill="%s"/><text x="%s" y="31">%s</text></g>`,
			px(x), color(i), px(x+13), esc(names[i]))
	}
}

func (p *plot) text(x, y float64, s, anchor string) {
	fmt.Fprintf(&p.b, `<text x="%s" y="%s" font-size="10" font-family="sans-serif" text-anchor="%s">%s</text>`, px(x), px(y), anchor, esc(s))
}

func (p *plot) done() string {
	p.b.WriteString("</svg>")
	return p.b.String()
}
