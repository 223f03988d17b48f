// Package calibrate measures what a board's firmware spends per operation
// and writes a device profile from it (harness calibrate).
//
// It runs microbenchmarks on the board (Suite: chains of int8 layers, each
// kernel the firmware runs at several sizes, and reshapes cut into tiles of
// several shapes with commits every few tasks), one inference of each, with
// the firmware's TASK_DONE cycles for every task and the BOOT event's cycles
// for the boot. Every output is checked against the reference executor: a
// run that computes a wrong number is an error.
//
// The cost model of harness/plan is linear in the profile's numbers, so each
// task's features are its cycles under unit profiles (every cost 0 but one,
// which is 1; plan.Estimate, not a copy of its logic), and the numbers are
// fitted by non-negative least squares on the relative errors (NNLS). One
// shared vector_mac cost cannot predict the firmware's convolutions,
// depthwise convolutions and fully connected layers within 10 % (their loop
// overheads differ: Result.Generic says by how much), so the fit is of the
// per-kernel costs of the profile schema (costs.kernels: per task, per
// output, per window tap, per input element) and of the runtime's layer
// scan (costs.layer_scan) and NVM write and commit cost. The shared costs
// (vector_mac, add, mul, div, max) are fitted too, for operators without a
// kernel cost.
//
// Energies are cycles x cpu.active_power / cpu.clock; cpu.clock is the
// frequency of the firmware's cycle counter (Board.CounterHz). The reboot is
// the boot's cycles over the clock. Everything not measured (memories,
// power, thresholds, the ADC) is copied from a base profile with its
// sources. Validate then runs a model scheduled with the calibrated profile
// and compares the plan's per-task cycles, which the simulated board uses,
// with the board's.
package calibrate

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/qemu"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/sched"
)

// Board is a board harness calibrate knows.
type Board struct {
	Name string // the --board name
	Base string // the default base profile
	// CounterHz is the frequency of the firmware's cycle counter
	// (port_cycles) in the board's time; 0: the base profile's cpu.clock.
	CounterHz float64
	Counter   string // what the counter is (cpu.clock's source)
	Emulated  bool   // runs on QEMU (no --port)
}

var boardList = []Board{
	{Name: "qemu-stm32", Base: "stm32f405", CounterHz: qemu.CounterHz, Emulated: true,
		Counter: fmt.Sprintf("the firmware's cycle counter under QEMU 7.2 netduinoplus2: SysTick with CLKSOURCE = processor clock (the DWT reads 0 there), "+
			"which QEMU runs at its %g MHz sysclk in virtual time; under -icount shift=%d one instruction is %d ns = %g counts: every cycle number of this profile is in those counts (boards/qemu, firmware/ports/README.md)",
			qemu.CounterHz/1e6, qemu.BoardICountShift, 1<<qemu.BoardICountShift, qemu.CounterHz*float64(int(1)<<qemu.BoardICountShift)/1e9)},
	{Name: "stm32", Base: "stm32f405",
		Counter: "the firmware's cycle counter on a real STM32F405: DWT CYCCNT, CPU cycles at the 16 MHz HSI (firmware/ports/stm32f4/port_stm32f4.c)"},
	{Name: "msp430", Base: "msp430fr5994",
		Counter: "the firmware's cycle counter on the MSP430FR5994: Timer1_A on SMCLK = the 16 MHz DCO (firmware/ports/msp430fr5994/port_msp430.c)"},
}

// Boards lists the boards, qemu-stm32 first.
func Boards() []Board { return slices.Clone(boardList) }

// LookupBoard finds a board by its --board name.
func LookupBoard(name string) (Board, error) {
	var names []string
	for _, b := range boardList {
		if b.Name == name {
			return b, nil
		}
		names = append(names, b.Name)
	}
	return Board{}, fmt.Errorf("calibrate: unknown board %q (known: %s)", name, strings.Join(names, ", "))
}

// Config of a calibration.
type Config struct {
	Board Board
	Base  *profiles.Profile // the profile the microbenchmarks are scheduled for, and the unmeasured numbers
	Bench Bench
	Date  time.Time // in the sources; default now
	// RebootAt is the image the reboot cost is given for (a boot checks
	// every layer and tensor record of its image, so it grows with them);
	// default the median benchmark's.
	RebootAt Records
	// Logf, if set, gets a line per benchmark run.
	Logf func(format string, args ...any)
}

// Run is one benchmark's run.
type Run struct {
	Image      string  `json:"image"`
	Layers     int     `json:"layers"`
	Tasks      int     `json:"tasks"`
	ImageBytes int     `json:"image_bytes"`
	Tensors    int     `json:"tensors"` // the image's tensor records
	BootCycles uint32  `json:"boot_cycles"`
	WallS      float64 `json:"wall_s"`
}

// Stats are the relative errors of a set of predictions.
type Stats struct {
	Samples  int     `json:"samples"`
	RMSError float64 `json:"rms_error"`
	MaxError float64 `json:"max_error"` // the largest in magnitude, with its sign
}

// Result is a calibration.
type Result struct {
	Board   string            `json:"board"`
	Base    string            `json:"base"`
	Date    string            `json:"date"`
	Profile *profiles.Profile `json:"-"`
	YAML    []byte            `json:"-"`
	Params  []Param           `json:"params"`
	Samples []*Sample         `json:"samples"`
	Runs    []Run             `json:"runs"`
	// Fit is the calibrated profile's error on the benchmarks' tasks;
	// Generic what one shared vector MAC and the scalar operations (the
	// profile schema without kernel costs) give at best on the
	// convolutions, depthwise convolutions and fully connected layers, and
	// Kernel what the per-kernel costs give on the same tasks.
	Fit     Stats `json:"fit"`
	Generic Stats `json:"generic"`
	Kernel  Stats `json:"kernel"`
	// Shared is the error of the shared costs the profile keeps (for
	// operators without a kernel cost), fitted to every task.
	Shared Stats `json:"shared"`
	// Boot is the boot's cycles against the image's size; BootCycles its
	// value at the reboot's image size (the profile's reboot).
	Boot       BootFit `json:"boot"`
	BootCycles float64 `json:"boot_cycles"`
	WallS      float64 `json:"wall_s"`
}

// runAll runs every image on the bench, Parallel at a time, and checks
// each output and task list; the first failure cancels the other runs.
func runAll(ctx context.Context, b Bench, imgs []*Image, logf func(string, ...any)) ([]*Measurement, error) {
	ms := make([]*Measurement, len(imgs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, max(b.Parallel(), 1))
	for i, img := range imgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			m, err := b.Run(ctx, img)
			if err == nil {
				err = check(img, m)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = fmt.Errorf("calibrate: %s: benchmark %s: %w", b.Name(), img.Name, err)
					cancel()
				}
				return
			}
			ms[i] = m
			if logf != nil {
				logf("%s: %d tasks, boot %d cycles, %.2f s", img.Name, len(m.Tasks), m.BootCycles, m.Wall.Seconds())
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = fmt.Errorf("calibrate: %s: %w", b.Name(), ctx.Err())
	}
	return ms, first
}

// check compares a run with its image: the reference output, and every
// task reported once.
func check(img *Image, m *Measurement) error {
	if string(m.Output) != string(img.Want) {
		return fmt.Errorf("the board's output differs from the reference executor's (%d bytes, first %x, want %x)",
			len(m.Output), m.Output[:min(8, len(m.Output))], img.Want[:min(8, len(img.Want))])
	}
	seen := make([]bool, len(img.Plan.Tasks))
	for _, t := range m.Tasks {
		if t.Task < 0 || t.Task >= len(seen) || seen[t.Task] {
			return fmt.Errorf("TASK_DONE %d: not a task of the plan, or reported twice", t.Task)
		}
		seen[t.Task] = true
	}
	if len(m.Tasks) != len(seen) {
		return fmt.Errorf("%d TASK_DONE for %d tasks", len(m.Tasks), len(seen))
	}
	return nil
}

// the parameters fitted besides the kernels'
const (
	pathWriteFixed = "costs.nvm_write.cycles_fixed"
	pathScan       = "costs.layer_scan.cycles"
)

// macKernels are the kernels that one shared vector MAC cost prices.
var macKernels = map[string]bool{"conv_2d": true, "depthwise_conv_2d": true, "fully_connected": true}

var genericPaths = []string{"costs.vector_mac.cycles_per_element", "costs.vector_mac.cycles_fixed",
	"costs.add.cycles", "costs.mul.cycles", "costs.div.cycles", "costs.max.cycles"}

// Calibrate runs the microbenchmarks on the bench, fits the costs and
// returns the calibrated profile.
func Calibrate(ctx context.Context, cfg Config) (*Result, error) {
	t0 := time.Now()
	if cfg.Base == nil || cfg.Bench == nil {
		return nil, fmt.Errorf("calibrate: Config needs a Base profile and a Bench")
	}
	if cfg.Date.IsZero() {
		cfg.Date = time.Now()
	}
	imgs, err := Suite(cfg.Base)
	if err != nil {
		return nil, err
	}
	ms, err := runAll(ctx, cfg.Bench, imgs, cfg.Logf)
	if err != nil {
		return nil, err
	}
	res := &Result{Board: cfg.Board.Name, Base: cfg.Base.Name, Date: cfg.Date.Format("2006-01-02")}
	type ref struct {
		m *model.Model
		t plan.Task
	}
	refs := map[*Sample]ref{}
	for i, img := range imgs {
		m := ms[i]
		rec := ImageRecords(img.Bytes)
		res.Runs = append(res.Runs, Run{Image: img.Name, Layers: rec.Layers, Tensors: rec.Tensors, Tasks: len(m.Tasks), ImageBytes: len(img.Bytes),
			BootCycles: m.BootCycles, WallS: m.Wall.Seconds()})
		for _, tt := range m.Tasks {
			t := img.Plan.Tasks[tt.Task]
			s := &Sample{Image: img.Name, Task: tt.Task, Layer: t.Layer, Op: plan.KernelName(img.Model.Layers[t.Layer].Op),
				Commit: t.Commit, Measured: float64(tt.Cycles)}
			res.Samples = append(res.Samples, s)
			refs[s] = ref{img.Model, t}
		}
	}
	// The per-kernel fit.
	kernels := kernelsOf(res.Samples)
	var paths []string
	for _, k := range kernels {
		paths = append(paths, kernelPaths(k)...)
	}
	paths = append(paths, pathWriteFixed, pathScan)
	units, err := unitProfiles(zeroCosts(cfg.Base, kernels, true), paths)
	if err != nil {
		return nil, err
	}
	gunits, err := unitProfiles(zeroCosts(cfg.Base, nil, true), genericPaths)
	if err != nil {
		return nil, err
	}
	for _, s := range res.Samples {
		r := refs[s]
		s.features(units, r.m, r.t)
		s.features(gunits, r.m, r.t)
	}
	theta, err := fit(res.Samples, paths, nil)
	if err != nil {
		return nil, err
	}
	for p, v := range theta {
		theta[p] = roundSig(v, 5)
	}
	fixed := map[string]float64{pathWriteFixed: theta[pathWriteFixed], pathScan: theta[pathScan]}
	var macs []*Sample
	for _, s := range res.Samples {
		if macKernels[s.Op] {
			macs = append(macs, s)
		}
	}
	shared := func(samples []*Sample) (map[string]float64, Stats, error) {
		g, err := fit(samples, genericPaths, fixed)
		if err != nil {
			return nil, Stats{}, err
		}
		for p, v := range g {
			g[p] = roundSig(v, 5)
		}
		for p, v := range fixed {
			g[p] = v
		}
		r, w, n := errStats(samples, func(s *Sample) float64 { return s.predict(g) }, nil)
		return g, Stats{Samples: n, RMSError: r, MaxError: w}, nil
	}
	// The shared costs the profile keeps: fitted to every task.
	gtheta, allStats, err := shared(res.Samples)
	if err != nil {
		return nil, err
	}
	res.Shared = allStats
	// The comparison: the best shared costs for the MAC kernels alone.
	if _, res.Generic, err = shared(macs); err != nil {
		return nil, err
	}
	kr, kw, kn := errStats(macs, func(s *Sample) float64 { return s.predict(theta) }, nil)
	res.Kernel = Stats{Samples: kn, RMSError: kr, MaxError: kw}

	res.Boot = fitBoot(res.Runs, cfg.RebootAt)
	res.BootCycles = res.Boot.Cycles

	fr, fw, fn := errStats(res.Samples, func(s *Sample) float64 { return s.predict(theta) }, nil)
	res.Fit = Stats{Samples: fn, RMSError: fr, MaxError: fw}
	prof, params, err := buildProfile(cfg, res, theta, gtheta, kernels)
	if err != nil {
		return nil, err
	}
	// The profile predicts what the fit did (plan.Estimate is linear in it).
	for _, s := range res.Samples {
		r := refs[s]
		s.Predicted = taskCycles(prof, r.m, r.t)
		if want := s.predict(theta); math.Abs(s.Predicted-want) > 1e-6*math.Abs(want)+1e-6 {
			return nil, fmt.Errorf("calibrate: %s task %d: the profile predicts %g cycles, the fit %g", s.Image, s.Task, s.Predicted, want)
		}
	}

	res.Profile, res.Params = prof, params
	res.YAML = prof.YAML(fmt.Sprintf("Device profile of %s, calibrated by `harness calibrate --board %s` on %s from the %s profile.\n"+
		"Fitted numbers say how in their source; the others are %s's, with its sources.", cfg.Board.Name, cfg.Board.Name, res.Date, cfg.Base.Name, cfg.Base.Name))
	if _, err := profiles.Parse(res.YAML, "calibrated"); err != nil {
		return nil, fmt.Errorf("calibrate: the written profile does not parse back: %w", err)
	}
	res.WallS = time.Since(t0).Seconds()
	return res, nil
}

// pct formats a relative error as a percentage.
func pct(e float64) string { return fmt.Sprintf("%.1f %%", 100*e) }

// buildProfile writes the fitted numbers into a copy of the base profile,
// with their sources, and the energies that go with the cycles.
func buildProfile(cfg Config, res *Result, theta, gtheta map[string]float64, kernels []string) (*profiles.Profile, []Param, error) {
	base := cfg.Base
	p := base.Clone()
	p.Kernels, p.LayerScan = nil, nil
	p.Name = cfg.Board.Name
	p.Source = ""
	at := fmt.Sprintf("calibrated on %s %s", cfg.Board.Name, res.Date)
	if cfg.Board.CounterHz > 0 && cfg.Board.CounterHz != base.ClockHz {
		p.ClockHz = cfg.Board.CounterHz
		// Copied cycle counts keep their time at the new clock.
		ratio := p.ClockHz / base.ClockHz
		for _, path := range []string{"adc.voltage_sense.cycles"} {
			v, _ := base.Field(path)
			_ = p.SetField(path, roundSig(v*ratio, 6))
			p.Sources[path] = fmt.Sprintf("from %s: %g cycles at %g MHz (%s), the same time in cycles of cpu.clock", base.Name, v, base.ClockHz/1e6, base.Sources[path])
		}
	}
	if p.ClockHz != base.ClockHz {
		p.Sources["cpu.clock"] = at + ": " + cfg.Board.Counter
	} else {
		p.Sources["cpu.clock"] = base.Sources["cpu.clock"] + "; the cycles of this profile, " + at + ", are " + cfg.Board.Counter
	}
	p.Description = fmt.Sprintf("%s calibrated on %s: per-kernel costs fitted to %d tasks of %d microbenchmarks (fit rms %.1f %%); memories, power and thresholds from %s",
		cfg.Board.Name, res.Date, len(res.Samples), len(res.Runs), 100*res.Fit.RMSError, base.Name)
	perCycle := p.ActivePowerW / p.ClockHz

	var params []Param
	set := func(path string, v float64, source string) {
		_ = p.SetField(path, v)
		p.Sources[path] = source
		// Its energy twin.
		var epath string
		switch {
		case strings.Contains(path, ".cycles_"):
			epath = strings.Replace(path, ".cycles_", ".energy_", 1)
		case strings.HasSuffix(path, ".cycles"):
			epath = strings.TrimSuffix(path, ".cycles") + ".energy"
		}
		if epath != "" {
			_ = p.SetField(epath, roundSig(v*perCycle, 6))
			p.Sources[epath] = fmt.Sprintf("%s: = %s x cpu.active_power / cpu.clock (%.4g nJ per cycle)", at, path, perCycle*1e9)
		}
	}
	paramStats := func(path string, theta map[string]float64, keep func(*Sample) bool) Param {
		n := 0
		for _, s := range res.Samples {
			if s.x[path] != 0 && (keep == nil || keep(s)) {
				n++
			}
		}
		var rms, worst float64
		pr := Param{Path: path, Value: theta[path], Samples: n}
		if n > 0 {
			rms, worst, _ = errStats(res.Samples, func(s *Sample) float64 { return s.predict(theta) }, func(s *Sample) bool {
				return s.x[path] != 0 && (keep == nil || keep(s))
			})
		}
		pr.RMSError, pr.MaxError = rms, worst
		return pr
	}

	// Kernels.
	for _, k := range kernels {
		for _, path := range kernelPaths(k) {
			pr := paramStats(path, theta, nil)
			pr.Unit = "cycles/element"
			if strings.HasSuffix(path, "_per_task") {
				pr.Unit = "cycles"
			}
			var src string
			if pr.Samples == 0 {
				pr.Note = "the kernel has no such term"
				src = fmt.Sprintf("%s: 0: the %s kernel has no such term (harness/plan.Needs counts none for it)", at, k)
			} else {
				src = fmt.Sprintf("%s: %d %s tasks, fit residual rms %s, max %s", at, pr.Samples, strings.ToUpper(k), pct(pr.RMSError), pct(pr.MaxError))
				if pr.Value == 0 {
					pr.Note = "fitted 0: the kernel's other terms explain its tasks"
					src += " (fitted 0: the kernel's other terms explain its tasks)"
				}
			}
			set(path, pr.Value, src)
			params = append(params, pr)
		}
	}
	// The layer scan and the NVM writes and commits.
	pr := paramStats(pathScan, theta, nil)
	pr.Unit = "cycles"
	set(pathScan, pr.Value, fmt.Sprintf("%s: per layer before a task's (the runtime's linear search of the schedules, tasks.c): %d tasks at layers 1 and beyond, fit residual rms %s, max %s",
		at, pr.Samples, pct(pr.RMSError), pct(pr.MaxError)))
	params = append(params, pr)
	pr = paramStats(pathWriteFixed, theta, nil)
	pr.Unit = "cycles"
	set(pathWriteFixed, pr.Value, fmt.Sprintf("%s: per run of NVM written (port_nvm_write), the commit's included: %d tasks, fit residual rms %s, max %s",
		at, pr.Samples, pct(pr.RMSError), pct(pr.MaxError)))
	params = append(params, pr)
	set("costs.nvm_write.cycles_per_element", 0, at+": 0: not separable from the kernels' cycles_per_output (every int8 output computed is written, one byte each), so part of them")
	params = append(params, Param{Path: "costs.nvm_write.cycles_per_element", Unit: "cycles/element", Note: "part of the kernels' cycles_per_output"})
	for _, f := range []string{"cycles_per_element", "cycles_fixed"} {
		path := "costs.nvm_read." + f
		set(path, 0, at+": 0: the firmware's kernels read NVM in place (memory-mapped), so the reads are part of the kernel costs (costs.kernels)")
		params = append(params, Param{Path: path, Unit: map[bool]string{true: "cycles/element", false: "cycles"}[f == "cycles_per_element"], Note: "reads are inside the kernels"})
	}
	// The shared costs, for operators without a kernel cost.
	for _, path := range genericPaths {
		pr := paramStats(path, gtheta, nil)
		pr.Unit = "cycles"
		if path == "costs.vector_mac.cycles_per_element" {
			pr.Unit = "cycles/element"
		}
		pr.Note = "shared: operators without a kernel cost"
		set(path, pr.Value, fmt.Sprintf("%s: for operators without a costs.kernels entry, fitted to all %d tasks as if none had one: residual rms %s, max %s "+
			"(on the %d CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED tasks alone the best shared costs leave rms %s, max %s, their kernel costs rms %s, max %s)",
			at, res.Shared.Samples, pct(res.Shared.RMSError), pct(res.Shared.MaxError), res.Generic.Samples, pct(res.Generic.RMSError), pct(res.Generic.MaxError),
			pct(res.Kernel.RMSError), pct(res.Kernel.MaxError)))
		params = append(params, pr)
	}
	// The reboot.
	if bf := res.Boot; bf.Boots > 0 {
		t := bf.Cycles / p.ClockHz
		p.Reboot.Seconds = roundSig(t, 6)
		p.Sources["reboot.time"] = fmt.Sprintf("%s: the BOOT event's cycles of a warm boot (port_cycles from the port's start-up to BOOT, at a reset after the image's first boot, "+
			"which alone checks its CRC-32: the runtime checks every layer, schedule and tensor record and reads the NVM header) / cpu.clock, "+
			"%.0f + %.4g per layer + %.4g per tensor record fitted to %d boots (%d to %d layers, rms residual %.1f %%, max %.1f %%), at %d layers and %d tensors: %.0f cycles; "+
			"the time before the first instruction (power-on reset) is not counted",
			at, bf.Fixed, bf.PerLayer, bf.PerTensor, bf.Boots, bf.MinLayers, bf.MaxLayers, 100*bf.RMSError, 100*bf.MaxError, bf.At.Layers, bf.At.Tensors, bf.Cycles)
		p.Reboot.Energy = roundSig(t*p.ActivePowerW, 6)
		p.Sources["reboot.energy"] = "= reboot.time x cpu.active_power; " + p.Sources["reboot.time"]
		params = append(params, Param{Path: "reboot.time", Value: p.Reboot.Seconds, Unit: "s", Samples: bf.Boots, RMSError: bf.RMSError})
	}
	if err := p.Validate(); err != nil {
		return nil, nil, fmt.Errorf("calibrate: the calibrated profile: %w", err)
	}
	return p, params, nil
}

// Records counts what a boot checks in a plan image: its layer records
// (with their schedules) and its tensor records.
type Records struct {
	Layers  int `json:"layers"`
	Tensors int `json:"tensors"`
}

// ImageRecords reads an image's record counts from its header
// (harness/plan/FORMAT.md); zero for a shorter slice.
func ImageRecords(image []byte) Records {
	if len(image) < plan.ImageHeaderBytes {
		return Records{}
	}
	return Records{Layers: int(binary.LittleEndian.Uint16(image[18:])), Tensors: int(binary.LittleEndian.Uint16(image[16:]))}
}

// BootFit is a warm boot's cycles (a power-up after the image's CRC was
// checked once: the port's start-up, every record of the image checked,
// the NVM header read, the BOOT event sent) as a linear function of the
// image's layer and tensor records.
type BootFit struct {
	Boots     int     `json:"boots"`
	Fixed     float64 `json:"fixed_cycles"`
	PerLayer  float64 `json:"cycles_per_layer"`
	PerTensor float64 `json:"cycles_per_tensor"`
	RMSError  float64 `json:"rms_error"`
	MaxError  float64 `json:"max_error"`
	MinLayers int     `json:"min_layers"`
	MaxLayers int     `json:"max_layers"`
	At        Records `json:"at"`
	Cycles    float64 `json:"cycles"` // at At
}

// fitBoot fits the runs' boot cycles (those that reported one) to a + b x
// layers + c x tensors by non-negative least squares on the relative
// errors, and evaluates it at at (zero: the median run's image).
func fitBoot(runs []Run, at Records) BootFit {
	var f BootFit
	var A [][]float64
	var b []float64
	var used []Run
	for _, r := range runs {
		if r.BootCycles > 0 {
			y := float64(r.BootCycles)
			A = append(A, []float64{1 / y, float64(r.Layers) / y, float64(r.Tensors) / y})
			b = append(b, 1)
			used = append(used, r)
		}
	}
	if f.Boots = len(used); f.Boots == 0 {
		return f
	}
	slices.SortFunc(used, func(x, y Run) int { return x.Layers - y.Layers })
	f.MinLayers, f.MaxLayers = used[0].Layers, used[len(used)-1].Layers
	if at == (Records{}) {
		m := used[len(used)/2]
		at = Records{Layers: m.Layers, Tensors: m.Tensors}
	}
	f.At = at
	theta, err := NNLS(A, b)
	if err != nil {
		return f
	}
	f.Fixed, f.PerLayer, f.PerTensor = roundSig(theta[0], 5), roundSig(theta[1], 5), roundSig(theta[2], 5)
	predict := func(l, t int) float64 { return f.Fixed + f.PerLayer*float64(l) + f.PerTensor*float64(t) }
	for _, r := range used {
		e := relErr(predict(r.Layers, r.Tensors), float64(r.BootCycles))
		f.RMSError += e * e
		if math.Abs(e) > math.Abs(f.MaxError) {
			f.MaxError = e
		}
	}
	f.RMSError = math.Sqrt(f.RMSError / float64(len(used)))
	f.Cycles = math.Round(predict(at.Layers, at.Tensors))
	return f
}

// TaskCheck is one task of a validation run.
type TaskCheck struct {
	Task      int     `json:"task"`
	Layer     int     `json:"layer"`
	Op        string  `json:"op"`
	Predicted float64 `json:"predicted_cycles"` // the plan's (the simulated board's) cycles
	Measured  float64 `json:"measured_cycles"`  // TASK_DONE's
	Error     float64 `json:"error"`            // (predicted - measured) / measured
}

// Validation compares a model's plan for the calibrated profile with what
// the board measures.
type Validation struct {
	Model      string      `json:"model"`
	Scheduler  string      `json:"scheduler"`
	Tasks      []TaskCheck `json:"tasks"`
	MaxError   float64     `json:"max_error"`  // largest |error|
	MeanError  float64     `json:"mean_error"` // mean |error|
	Limit      float64     `json:"limit"`
	Within     int         `json:"within"` // tasks with |error| <= Limit
	Passed     bool        `json:"passed"`
	BootCycles uint32      `json:"boot_cycles"`
	WallS      float64     `json:"wall_s"`
}

// DefaultLimit is the largest relative error per task a calibration passes
// with.
const DefaultLimit = 0.10

// Validate schedules m for prof with the tile scheduler, runs the plan on
// the bench and compares every task's predicted cycles (the plan's, commit
// included: what the simulated board spends on it) with the board's. The
// output must be the reference executor's.
func Validate(ctx context.Context, b Bench, prof *profiles.Profile, m *model.Model, modelBytes, input []byte, limit float64) (*Validation, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	s, err := sched.Get("tile")
	if err != nil {
		return nil, err
	}
	p, err := s.Schedule(m, prof, sched.Options{ModelBytes: modelBytes})
	if err != nil {
		return nil, fmt.Errorf("calibrate: validation: %w", err)
	}
	img, err := newImage(m.Name, m, p, input)
	if err != nil {
		return nil, fmt.Errorf("calibrate: validation: %s: %w", m.Name, err)
	}
	ms, err := runAll(ctx, b, []*Image{img}, nil)
	if err != nil {
		return nil, err
	}
	meas := ms[0]
	v := &Validation{Model: m.Name, Scheduler: s.Name(), Limit: limit, BootCycles: meas.BootCycles, WallS: meas.Wall.Seconds()}
	byTask := make([]float64, len(p.Tasks))
	for _, t := range meas.Tasks {
		byTask[t.Task] = float64(t.Cycles)
	}
	sum := 0.0
	for i, t := range p.Tasks {
		e := relErr(t.Cycles, byTask[i])
		v.Tasks = append(v.Tasks, TaskCheck{Task: i, Layer: t.Layer, Op: m.Layers[t.Layer].Op.String(), Predicted: t.Cycles, Measured: byTask[i], Error: e})
		v.MaxError = max(v.MaxError, math.Abs(e))
		sum += math.Abs(e)
		if math.Abs(e) <= limit {
			v.Within++
		}
	}
	v.MeanError = sum / float64(len(p.Tasks))
	v.Passed = v.Within == len(p.Tasks)
	return v, nil
}
