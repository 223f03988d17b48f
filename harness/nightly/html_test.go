package nightly

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/batteryless/harness/harness/testenv"
)

// pageFacts is what the check script reads from the rendered report.
type pageFacts struct {
	Plots []struct {
		Kind   string  `json:"kind"`
		W      float64 `json:"w"`
		H      float64 `json:"h"`
		Hidden bool    `json:"hidden"`
		Data   map[string]string
		Series []struct {
			Points int     `json:"points"`
			N      int     `json:"n"`
			Len    float64 `json:"len"`
		} `json:"series"`
		Bars int `json:"bars"`
	} `json:"plots"`
	Outcomes []string `json:"outcomes"`
}

const factsJS = `JSON.stringify({
  plots: [...document.querySelectorAll('svg.plot')].map(s => {
    const r = s.getBoundingClientRect();
    return {
      kind: s.dataset.plot, w: r.width, h: r.height, hidden: s.closest('details:not([open])') !== null,
      Data: Object.assign({}, s.dataset),
      series: [...s.querySelectorAll('polyline.series')].map(p => ({points: p.points.numberOfItems, n: +p.dataset.n, len: p.getTotalLength()})),
      bars: s.querySelectorAll('rect.bar').length,
    };
  }),
  outcomes: [...document.querySelectorAll('svg[data-plot=heatmap] rect.cell')].map(r => r.dataset.outcome),
})`

// checkHTML opens a run's report.html in headless Chromium (Debian's) and
// checks that it renders without a console error or a network request,
// and that its SVGs carry their data: a heatmap cell per cell, every
// series' points drawn as many as its data says, bars as many as the
// chart's data, and the visible plots laid out with a size.
func checkHTML(t *testing.T, dir string, cells int) {
	testenv.NeedTool(t, "chromium", "chromium")
	chromium, _ := exec.LookPath("chromium")
	page, err := filepath.Abs(filepath.Join(dir, HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()
	var mu sync.Mutex
	var problems []string
	err = chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value))
				}
				problems = append(problems, "console "+string(e.Type)+": "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError || e.Entry.Level == cdplog.EntryLevelWarning {
				problems = append(problems, "log "+string(e.Entry.Level)+": "+e.Entry.Text+" "+e.Entry.URL)
			}
		case *network.EventRequestWillBeSent:
			if u := e.Request.URL; !strings.HasPrefix(u, "file://") && !strings.HasPrefix(u, "data:") {
				problems = append(problems, "network request: "+u)
			}
		}
	})
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	err = chromedp.Do(ctx, chromedp.Navigate("file://"+page), chromedp.WaitReady("body"))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	// chromedp enables the runtime, log and network domains itself.
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](factsJS))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	mu.Lock()
	for _, p := range problems {
		t.Errorf("%s: %s", page, p)
	}
	mu.Unlock()
	var f pageFacts
	if err := json.Unmarshal([]byte(raw), &f); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, p := range f.Plots {
		kinds[p.Kind]++
		if !p.Hidden && (p.W < 100 || p.H < 100) {
			t.Errorf("plot %s %v laid out at %.0fx%.0f", p.Kind, p.Data, p.W, p.H)
		}
		for _, s := range p.Series {
			if s.Points != s.N || s.N == 0 {
				t.Errorf("plot %s %v: a series of %d points drawn with %d", p.Kind, p.Data, s.N, s.Points)
			}
			if !p.Hidden && s.N > 1 && !(s.Len > 0) {
				t.Errorf("plot %s: a visible series of length %g", p.Kind, s.Len)
			}
		}
		if want := p.Data["bars"]; want != "" && want != itoa(p.Bars) {
			t.Errorf("plot %s %v: %d bars drawn", p.Kind, p.Data, p.Bars)
		}
		if p.Kind == "voltage" && p.Data["points"] != itoa(firstSeries(p.Series)) {
			t.Errorf("voltage plot %v: %d points drawn", p.Data, firstSeries(p.Series))
		}
	}
	if len(f.Outcomes) != cells {
		t.Errorf("heatmap: %d cells, want %d", len(f.Outcomes), cells)
	}
	for _, k := range []string{"heatmap", "bars-latency", "bars-energy", "bars-completion", "cdf", "voltage", "progress"} {
		if kinds[k] == 0 {
			t.Errorf("no %s plot in the report", k)
		}
	}
	t.Logf("%d plots: %v", len(f.Plots), kinds)
}

func firstSeries(s []struct {
	Points int     `json:"points"`
	N      int     `json:"n"`
	Len    float64 `json:"len"`
}) int {
	if len(s) == 0 {
		return 0
	}
	return s[0].Points
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
