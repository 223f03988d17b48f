package sched

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batteryless/harness/harness/testenv"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
)

var baselines = []string{"sonic", "hawaii", "inas"}

func loadProfile(t *testing.T, name string) *profiles.Profile {
	t.Helper()
	prof, err := profiles.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return prof
}

func bundledModel(t *testing.T) *model.Model {
	t.Helper()
	m, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sharedModel(t *testing.T, name string) *model.Model {
	t.Helper()
	m, err := model.Load(filepath.Join("../../../shared/data/models", name))
	if err != nil {
		testenv.SharedData(t, "../../../shared/data/models")
		t.Fatal(err)
	}
	return m
}

// TestBaselinesPlan plans every model on both profiles with each baseline:
// every commit group fits a power cycle's share, each scheduler keeps its
// granularity, and the plan is the same byte for byte when made again. SONIC
// and HAWAII commit once per output value, which on the real models is more
// tasks than a 16-bit progress word counts: that must be the error, and it
// must say so with the numbers.
func TestBaselinesPlan(t *testing.T) {
	for _, pname := range []string{"msp430fr5994", "stm32f405"} {
		prof := loadProfile(t, pname)
		lim := TaskLimits(prof)
		for i, m := range testModels(t) {
			for _, sname := range baselines {
				s, err := Get(sname)
				if err != nil {
					t.Fatal(err)
				}
				if s.Describe() == "" || strings.Contains(s.Describe(), "\n") {
					t.Errorf("%s: Describe() = %q, want one line", sname, s.Describe())
				}
				start := time.Now()
				p, err := s.Schedule(m, prof, Options{ModelBytes: bundled.Model()})
				took := time.Since(start)
				if err != nil {
					if i > 0 && sname != "inas" && strings.Contains(err.Error(), "progress word counts") && strings.Contains(err.Error(), "layer ") {
						t.Logf("%s/%s/%s: %v", sname, m.Name, pname, err)
						continue
					}
					t.Errorf("%s/%s/%s: %v", sname, m.Name, pname, err)
					continue
				}
				for _, g := range p.Groups() {
					if lim.Energy > 0 && g.Energy > lim.Energy {
						t.Errorf("%s/%s/%s: commit group of tasks %d..%d takes %.4g J, a power cycle gives %.4g J", sname, m.Name, pname, g.First, g.Last, g.Energy, lim.Energy)
					}
				}
				checkGranularity(t, sname, m, prof, p)
				again, err := s.Schedule(m, prof, Options{ModelBytes: bundled.Model()})
				if err != nil {
					t.Fatal(err)
				}
				ja, _ := json.Marshal(p)
				jb, _ := json.Marshal(again)
				if string(ja) != string(jb) {
					t.Errorf("%s/%s/%s: two plans differ", sname, m.Name, pname)
				}
				total, cycles := EnergyWithReboots(p, prof)
				t.Logf("%s/%s/%s: %d tasks, %d commits, %.3f mJ, %.3f mJ with %d reboots, scheduled in %v",
					sname, m.Name, pname, len(p.Tasks), p.Commits(), p.Energy()*1e3, total*1e3, cycles, took.Round(time.Microsecond))
			}
		}
	}
}

// checkGranularity checks what each baseline promises about its tasks.
func checkGranularity(t *testing.T, sname string, m *model.Model, prof *profiles.Profile, p *plan.Plan) {
	t.Helper()
	if sname != "inas" && p.Commits() != len(p.Tasks) {
		t.Errorf("%s/%s: %d commits for %d tasks, want one per task", sname, m.Name, p.Commits(), len(p.Tasks))
	}
	lim := TaskLimits(prof)
	// One output value per task, unless that many tasks overflow the
	// progress word: then fitTaskCount widens the finest tiles along rows.
	perValue := 0
	for _, l := range m.Layers {
		perValue += layerTasks(m, l, valueTile(m, l))
	}
	widened := perValue > plan.MaxTasksFor(prof.WordBytes)
	for _, lp := range p.Layers {
		l := m.Layers[lp.Layer]
		s := m.OutputShape(l)
		lc := newLayerCoster(m, l, prof)
		switch {
		case widened && (sname == "sonic" || sname == "hawaii"):
			if lp.TileC != valueTile(m, l).C && l.Op != model.OpSoftmax && vectorMAC(l) {
				t.Errorf("%s/%s: layer %d tile %dx%dx%d widened across channels", sname, m.Name, lp.Layer, lp.TileH, lp.TileW, lp.TileC)
			}
		case sname == "sonic" || sname == "hawaii" && vectorMAC(l):
			if want := valueTile(m, l); lp.TileH != want.H || lp.TileW != want.W || lp.TileC != want.C {
				t.Errorf("%s/%s: layer %d tile %dx%dx%d, want one output value", sname, m.Name, lp.Layer, lp.TileH, lp.TileW, lp.TileC)
			}
		case sname == "hawaii":
			if lp.TileH != 1 {
				t.Errorf("hawaii/%s: layer %d (%s) tile %dx%dx%d, want one row", m.Name, lp.Layer, lp.Op, lp.TileH, lp.TileW, lp.TileC)
			}
			if lp.TileR == 0 && lp.TileW < s.W && lc.fits(Tile{1, s.W, 1, 0}, lim) {
				t.Errorf("hawaii/%s: layer %d (%s) tile %dx%dx%d, but a full row fits", m.Name, lp.Layer, lp.Op, lp.TileH, lp.TileW, lp.TileC)
			}
		case sname == "inas":
			if lp.CommitEvery < 1 {
				t.Errorf("inas/%s: layer %d commits every %d", m.Name, lp.Layer, lp.CommitEvery)
			}
		}
		// A reduction is split only when the unsplit value does not fit.
		if sname != "inas" && lp.TileR > 0 {
			unsplit := Tile{lp.TileH, lp.TileW, lp.TileC, 0}
			if lc.fits(unsplit, lim) && (sname == "sonic" || !vectorMAC(l) || lc.cost(unsplit).operands <= prof.AccelSRAMBytes) {
				t.Errorf("%s/%s: layer %d splits its reduction (r%d) though the whole fits", sname, m.Name, lp.Layer, lp.TileR)
			}
		}
	}
	if sname == "hawaii" {
		for i, task := range p.Tasks {
			l := m.Layers[task.Layer]
			if !vectorMAC(l) {
				continue
			}
			if n := plan.LayerNeeds(m, l, task.Region, task.Part); n.InputBytes+n.WeightBytes > prof.AccelSRAMBytes {
				t.Errorf("hawaii/%s: task %d (layer %d) has %d bytes of operands, the accelerator holds %d", m.Name, i, task.Layer, n.InputBytes+n.WeightBytes, prof.AccelSRAMBytes)
			}
		}
	}
}

// TestBaselinesAgainstTile: on the MSP430 and the bundled model, iNAS's
// search finds a plan that needs less energy with its reboots than tile's
// (tile's tiles with S = 1 are among its candidates), and SONIC cuts the
// model finer than tile.
func TestBaselinesAgainstTile(t *testing.T) {
	prof := loadProfile(t, "msp430fr5994")
	m := bundledModel(t)
	plans := map[string]*plan.Plan{}
	for _, name := range []string{"tile", "inas", "sonic", "hawaii"} {
		s, err := Get(name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.Schedule(m, prof, Options{})
		if err != nil {
			t.Fatal(err)
		}
		plans[name] = p
	}
	tileTotal, tileCycles := EnergyWithReboots(plans["tile"], prof)
	inasTotal, inasCycles := EnergyWithReboots(plans["inas"], prof)
	if inasTotal >= tileTotal {
		t.Errorf("inas: %.4g J with %d reboots, tile: %.4g J with %d: want inas lower", inasTotal, inasCycles, tileTotal, tileCycles)
	}
	if plans["inas"].Energy() >= plans["tile"].Energy() {
		t.Errorf("inas plan energy %.4g J, tile %.4g J: want inas lower", plans["inas"].Energy(), plans["tile"].Energy())
	}
	if len(plans["sonic"].Tasks) <= len(plans["tile"].Tasks) {
		t.Errorf("sonic: %d tasks, tile %d: want more", len(plans["sonic"].Tasks), len(plans["tile"].Tasks))
	}
	if len(plans["hawaii"].Tasks) <= len(plans["tile"].Tasks) {
		t.Errorf("hawaii: %d tasks, tile %d: want more", len(plans["hawaii"].Tasks), len(plans["tile"].Tasks))
	}
	t.Logf("E_total: tile %.3f mJ (%d cycles), inas %.3f mJ (%d cycles)", tileTotal*1e3, tileCycles, inasTotal*1e3, inasCycles)
	// The real models, where present: never worse than tile.
	for _, m := range testModels(t)[1:] {
		totals := map[string]float64{}
		for _, name := range []string{"tile", "inas"} {
			s, _ := Get(name)
			p, err := s.Schedule(m, prof, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var cycles int
			totals[name], cycles = EnergyWithReboots(p, prof)
			t.Logf("%s/%s: %d tasks, %.3f mJ, E_total %.3f mJ (%d cycles)", name, m.Name, len(p.Tasks), p.Energy()*1e3, totals[name]*1e3, cycles)
		}
		if totals["inas"] > totals["tile"] {
			t.Errorf("%s: inas E_total %.4g J, tile %.4g J", m.Name, totals["inas"], totals["tile"])
		}
	}
}

// TestInasCostIsExact checks the search's class-by-class pricing of a
// tiling against the plan priced task by task, and times the search.
func TestInasCostIsExact(t *testing.T) {
	for _, pname := range []string{"msp430fr5994", "stm32f405"} {
		prof := loadProfile(t, pname)
		commitE, _ := plan.CommitCost(prof)
		for _, m := range testModels(t) {
			start := time.Now()
			choices, err := inasSearch(m, prof)
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if took > 10*time.Second {
				t.Errorf("inas/%s/%s: the search took %v", m.Name, pname, took)
			}
			s, _ := Get("inas")
			p, err := s.Schedule(m, prof, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i, lp := range p.Layers {
				c := choices[i]
				if lp.Tasks != c.Tasks || lp.CommitEvery != c.S {
					t.Errorf("inas/%s/%s: layer %d: %d tasks, S %d; the search said %d, %d", m.Name, pname, i, lp.Tasks, lp.CommitEvery, c.Tasks, c.S)
				}
				if math.Abs(lp.Energy-c.Energy) > 1e-9*lp.Energy {
					t.Errorf("inas/%s/%s: layer %d: the plan takes %.9g J, the search said %.9g J", m.Name, pname, i, lp.Energy, c.Energy)
				}
				if bound := float64(c.S)*maxTask(p, lp) + commitE; lp.MaxCommitGroup > bound*(1+1e-12) {
					t.Errorf("inas/%s/%s: layer %d: commit group %.6g J over the bound %.6g J", m.Name, pname, i, lp.MaxCommitGroup, bound)
				}
			}
			t.Logf("inas/%s/%s: searched in %v", m.Name, pname, took.Round(time.Microsecond))
		}
	}
}

// maxTask is the costliest task of a layer without its commit.
func maxTask(p *plan.Plan, lp plan.LayerPlan) float64 {
	most := 0.0
	for _, task := range p.Tasks[lp.FirstTask : lp.FirstTask+lp.Tasks] {
		most = max(most, task.Energy-task.CommitEnergy)
	}
	return most
}

// TestBaselineErrors: when nothing fits, the error names the layer and the
// numbers.
func TestBaselineErrors(t *testing.T) {
	prof := *loadProfile(t, "msp430fr5994")
	// A capacitor that holds little more than a reboot: not even one step
	// of one output value fits a power cycle.
	prof.Power.CapacitanceF = 76e-6
	m := bundledModel(t)
	for _, name := range baselines {
		s, _ := Get(name)
		_, err := s.Schedule(m, &prof, Options{})
		if err == nil || !strings.Contains(err.Error(), "layer 0 (CONV_2D)") || !strings.Contains(err.Error(), "livelock") || !strings.Contains(err.Error(), " J") {
			t.Errorf("%s: %v, want a livelock error naming layer 0", name, err)
		}
	}
	// One value per task would overflow the MSP430's 16-bit progress word
	// on the keyword-spotting model: the plans widen tiles to fit it.
	kws := sharedModel(t, "kws_dscnn_int8.tflite")
	msp := loadProfile(t, "msp430fr5994")
	for _, name := range []string{"sonic", "hawaii"} {
		s, _ := Get(name)
		p, err := s.Schedule(kws, msp, Options{})
		if err != nil || len(p.Tasks) > plan.MaxTasksFor(msp.WordBytes) {
			t.Errorf("%s: %v, want a plan within the progress word's 65534 tasks", name, err)
		}
	}
}

// TestSonicSplitsOnlyWhatDoesNotFit: the keyword-spotting model's average
// pool reads 125 values per output, too many for one MSP430 power cycle:
// SONIC cuts it into the fewest window-row steps that fit.
func TestSonicSplitsOnlyWhatDoesNotFit(t *testing.T) {
	m := sharedModel(t, "kws_dscnn_int8.tflite")
	prof := loadProfile(t, "msp430fr5994")
	lim := TaskLimits(prof)
	for _, l := range m.Layers {
		lc := newLayerCoster(m, l, prof)
		tile, err := outputValueTile(lc, lim, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tile.R == 0 {
			continue
		}
		dim, _ := plan.CanSplit(l)
		steps := ceilDiv(dim, tile.R)
		if !lc.fits(tile, lim) {
			t.Errorf("layer %d: tile %s does not fit", l.Index, tileString(tile))
		}
		if steps > 1 {
			fewer := Tile{tile.H, tile.W, tile.C, ceilDiv(dim, steps-1)}
			if fewer.R < dim && lc.fits(fewer, lim) {
				t.Errorf("layer %d: %d steps, but %s (fewer steps) fits", l.Index, steps, tileString(fewer))
			}
		}
		t.Logf("layer %d (%s): %s, %d steps", l.Index, l.Op, tileString(tile), steps)
	}
}

func TestBalanced(t *testing.T) {
	for n := 1; n <= 300; n++ {
		got := balanced(n)
		// Every balanced length ceil(n/k), k = 1..n, is a candidate.
		for k := 1; k <= n; k++ {
			if !contains(got, ceilDiv(n, k)) {
				t.Fatalf("balanced(%d) = %v misses ceil(%d/%d)", n, got, n, k)
			}
		}
		for i := 1; i < len(got); i++ {
			if got[i] >= got[i-1] || ceilDiv(n, got[i]) == ceilDiv(n, got[i-1]) {
				t.Fatalf("balanced(%d) = %v: not strictly shorter blocks in distinct counts", n, got)
			}
		}
		if got[0] != n || got[len(got)-1] != 1 {
			t.Fatalf("balanced(%d) = %v", n, got)
		}
		for _, h := range halvings(n) {
			if !contains(got, h) {
				t.Fatalf("balanced(%d) = %v lacks the halving %d", n, got, h)
			}
		}
		// largestStep finds the fewest balanced steps under a bound.
		for bound := 1; bound < n; bound += 7 {
			r := largestStep(n, func(r int) bool { return r <= bound })
			if r > bound || ceilDiv(n, r) != ceilDiv(n, bound) {
				t.Fatalf("largestStep(%d, <= %d) = %d", n, bound, r)
			}
		}
	}
}

func contains(xs []int, v int) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}

// TestBaselinesOnWideWindows: micro_speech's depthwise convolution has a
// 10x8 window with stride 2, so the tasks one step from the border are
// still clipped by the padding. The baselines judge every task, not that
// one: on the MSP430 the costliest single output value does not fit a power
// cycle (and a depthwise reduction cannot be split), which they must report
// as a livelock of layer 1; on the STM32 their plans fit.
func TestBaselinesOnWideWindows(t *testing.T) {
	m := sharedModel(t, "micro_speech_int8.tflite")
	for _, pname := range []string{"msp430fr5994", "stm32f405"} {
		prof := loadProfile(t, pname)
		lim := TaskLimits(prof)
		for _, name := range baselines {
			s, _ := Get(name)
			p, err := s.Schedule(m, prof, Options{})
			if pname == "msp430fr5994" {
				if err == nil || !strings.Contains(err.Error(), "layer 1 (DEPTHWISE_CONV_2D): livelock") {
					t.Errorf("%s/%s: %v, want a livelock of layer 1", name, pname, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s/%s: %v", name, pname, err)
			}
			for _, g := range p.Groups() {
				if g.Energy > lim.Energy {
					t.Errorf("%s/%s: commit group of tasks %d..%d takes %.4g J, a power cycle gives %.4g J", name, pname, g.First, g.Last, g.Energy, lim.Energy)
				}
			}
		}
	}
}
