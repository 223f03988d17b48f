package calibrate

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/sched"
)

func loadProfile(t testing.TB, name string) *profiles.Profile {
	t.Helper()
	p, err := profiles.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// truthProfile is a board whose costs are known: base with a cost for
// every kernel of the suite, a layer scan and NVM writes per run.
func truthProfile(t testing.TB, base *profiles.Profile) *profiles.Profile {
	t.Helper()
	p := base.Clone()
	r := rand.New(rand.NewPCG(5, 6))
	for _, k := range profiles.KernelNames() {
		for _, path := range kernelPaths(k) {
			if err := p.SetField(path, math.Round(1+1000*r.Float64())); err != nil {
				t.Fatal(err)
			}
		}
	}
	for path, v := range map[string]float64{pathScan: 600, pathWriteFixed: 350, "costs.nvm_write.cycles_per_element": 0,
		"costs.nvm_read.cycles_per_element": 0, "costs.nvm_read.cycles_fixed": 0} {
		if err := p.SetField(path, v); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// fakeBench is a board that spends exactly what a profile says: it knows
// the images it may be given and reports each task's cycles as truth
// prices them, and the reference output.
type fakeBench struct {
	truth  *profiles.Profile
	mu     sync.Mutex
	imgs   map[string]*Image
	wrong  string // the name of an image whose output it gets wrong
	missed string // ... whose last TASK_DONE it loses
	runs   int
}

func (f *fakeBench) add(imgs ...*Image) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.imgs == nil {
		f.imgs = map[string]*Image{}
	}
	for _, img := range imgs {
		f.imgs[string(img.Bytes)] = img
	}
}

func (f *fakeBench) Name() string  { return "fake" }
func (f *fakeBench) Parallel() int { return 3 }

func (f *fakeBench) Run(ctx context.Context, given *Image) (*Measurement, error) {
	b := given.Bytes
	f.mu.Lock()
	img := f.imgs[string(b)]
	f.runs++
	f.mu.Unlock()
	if img == nil {
		return nil, errors.New("fake: an image it does not know")
	}
	rec := ImageRecords(b)
	m := &Measurement{Output: append([]byte(nil), img.Want...), BootCycles: uint32(100000 + 15000*rec.Layers + 2000*rec.Tensors)}
	if img.Name == f.wrong {
		m.Output[0]++
	}
	for i, t := range img.Plan.Tasks {
		if img.Name == f.missed && i == len(img.Plan.Tasks)-1 {
			break
		}
		m.Tasks = append(m.Tasks, TaskTime{Task: i, Cycles: uint32(math.Round(taskCycles(f.truth, img.Model, t)))})
	}
	return m, nil
}

func newFake(t testing.TB, base, truth *profiles.Profile) *fakeBench {
	t.Helper()
	imgs, err := Suite(base)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBench{truth: truth}
	f.add(imgs...)
	return f
}

// The features under unit profiles reproduce plan.Estimate: the
// prediction of any profile of the same structure is the features times
// its numbers.
func TestFeaturesAreLinear(t *testing.T) {
	base := loadProfile(t, "stm32f405")
	truth := truthProfile(t, base)
	imgs, err := Suite(base)
	if err != nil {
		t.Fatal(err)
	}
	kernels := profiles.KernelNames()
	var paths []string
	for _, k := range kernels {
		paths = append(paths, kernelPaths(k)...)
	}
	paths = append(paths, pathScan, pathWriteFixed)
	units, err := unitProfiles(zeroCosts(base, kernels, true), paths)
	if err != nil {
		t.Fatal(err)
	}
	theta := map[string]float64{}
	for _, p := range paths {
		theta[p], _ = truth.Field(p)
	}
	n := 0
	for _, img := range imgs {
		for i, task := range img.Plan.Tasks {
			s := &Sample{}
			s.features(units, img.Model, task)
			want := taskCycles(truth, img.Model, task)
			if got := s.predict(theta); math.Abs(got-want) > 1e-9*want {
				t.Fatalf("%s task %d: features x numbers = %g, plan.Estimate %g", img.Name, i, got, want)
			}
			if s.x[pathScan] != float64(task.Layer) {
				t.Errorf("%s task %d: layer scan feature %g, want the layer index %d", img.Name, i, s.x[pathScan], task.Layer)
			}
			n++
		}
	}
	t.Logf("%d tasks", n)
}

// Calibrating a board that spends exactly what a profile says recovers
// that profile's predictions; the written profile reads back as it is;
// the validation passes; a wrong output or a lost task is an error.
func TestCalibrateRecovers(t *testing.T) {
	base := loadProfile(t, "stm32f405")
	truth := truthProfile(t, base)
	bench := newFake(t, base, truth)
	board, err := LookupBoard("qemu-stm32")
	if err != nil {
		t.Fatal(err)
	}
	date := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	res, err := Calibrate(context.Background(), Config{Board: board, Base: base, Bench: bench, Date: date})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(res.Fit.MaxError) > 1e-3 {
		t.Errorf("fit max error %g on an exact board", res.Fit.MaxError)
	}
	if res.Generic.RMSError < 0.01 {
		t.Errorf("one shared vector MAC fits the truth's kernels to %g: the test's truth is too simple", res.Generic.RMSError)
	}
	prof := res.Profile
	if prof.Name != "qemu-stm32" || prof.ClockHz != board.CounterHz {
		t.Errorf("profile %s at %g Hz", prof.Name, prof.ClockHz)
	}
	for _, path := range []string{pathScan, pathWriteFixed, "costs.kernels.fully_connected.cycles_per_element", "costs.kernels.conv_2d.cycles_per_element"} {
		got, _ := prof.Field(path)
		want, _ := truth.Field(path)
		if math.Abs(got-want) > 1e-3*want {
			t.Errorf("%s = %g, want %g", path, got, want)
		}
	}
	// Energies follow the cycles at the active power.
	e, _ := prof.Field("costs.kernels.conv_2d.energy_per_element")
	c, _ := prof.Field("costs.kernels.conv_2d.cycles_per_element")
	if math.Abs(e-c*prof.ActivePowerW/prof.ClockHz) > 1e-6*e {
		t.Errorf("energy %g for %g cycles", e, c)
	}
	// Sources: fitted numbers say how, the others are the base's.
	src := prof.Sources["costs.kernels.conv_2d.cycles_per_output"]
	if !strings.HasPrefix(src, "calibrated on qemu-stm32 2026-03-14: ") || !strings.Contains(src, "CONV_2D tasks, fit residual rms") {
		t.Errorf("source %q", src)
	}
	for _, path := range []string{"power.capacitance", "cpu.sram", "cpu.nvm", "power.von", "cpu.active_power"} {
		if prof.Sources[path] != base.Sources[path] {
			t.Errorf("%s: source %q, want the base's", path, prof.Sources[path])
		}
		if a, _ := prof.Field(path); a != func() float64 { v, _ := base.Field(path); return v }() {
			t.Errorf("%s differs from the base", path)
		}
	}
	if !strings.Contains(prof.Sources["reboot.time"], "per tensor record fitted to") || res.Boot.PerLayer != 15000 || res.Boot.PerTensor != 2000 || res.Boot.Fixed != 100000 {
		t.Errorf("reboot: %+v, source %q", res.Boot, prof.Sources["reboot.time"])
	}
	// The file reads back to the same profile.
	back, err := profiles.Parse(res.YAML, "calibrated.yaml")
	if err != nil {
		t.Fatal(err)
	}
	back.Source = prof.Source
	if !reflect.DeepEqual(back, prof) {
		t.Errorf("the written profile reads back otherwise:\n%+v\n%+v", back, prof)
	}

	// Validation with the bundled model: its image, scheduled for the
	// calibrated profile, is known to the fake board.
	m, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := sched.Get("tile")
	p, err := s.Schedule(m, prof, sched.Options{ModelBytes: bundled.Model()})
	if err != nil {
		t.Fatal(err)
	}
	img, err := newImage(m.Name, m, p, bundled.Input())
	if err != nil {
		t.Fatal(err)
	}
	bench.add(img)
	v, err := Validate(context.Background(), bench, prof, m, bundled.Model(), bundled.Input(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Passed || v.MaxError > 1e-3 || v.Within != len(p.Tasks) {
		t.Errorf("validation %+v", v)
	}

	for _, c := range []struct {
		wrong, missed, want string
	}{
		{wrong: "fc", want: "benchmark fc: the board's output differs from the reference executor's"},
		{missed: "conv", want: "benchmark conv: "},
	} {
		bad := newFake(t, base, truth)
		bad.wrong, bad.missed = c.wrong, c.missed
		_, err := Calibrate(context.Background(), Config{Board: board, Base: base, Bench: bad})
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: error %v", c, err)
		}
	}
}

// Every kernel the firmware runs, but the float edges, is benchmarked,
// with outputs that are not constants (so the reference check means
// something), and the microbenchmarks are the same bytes at every build.
func TestSuite(t *testing.T) {
	base := loadProfile(t, "stm32f405")
	imgs, err := Suite(base)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, img := range imgs {
		e := refexec.New(img.Model)
		if err := e.SetInput(img.Input); err != nil {
			t.Fatal(err)
		}
		e.InvokeEach(func(l *model.Layer, ins [][]byte, out []byte) {
			ops[plan.KernelName(l.Op)]++
			distinct := map[byte]bool{}
			for _, b := range out {
				distinct[b] = true
			}
			if len(distinct) < 2 {
				t.Errorf("%s layer %d (%s): every output is %d", img.Name, l.Index, l.Op, out[0])
			}
		})
	}
	for _, k := range profiles.KernelNames() {
		if k == "dequantize" {
			continue
		}
		if ops[k] < 3 {
			t.Errorf("kernel %s: %d layers in the suite", k, ops[k])
		}
	}
	again, err := Suite(base)
	if err != nil {
		t.Fatal(err)
	}
	for i := range imgs {
		if string(imgs[i].Bytes) != string(again[i].Bytes) || string(imgs[i].Input) != string(again[i].Input) {
			t.Errorf("%s: another image at the second build", imgs[i].Name)
		}
	}
	t.Logf("layers per kernel: %v", ops)
}

func TestFitBoot(t *testing.T) {
	// 1000 + 200 per layer + 50 per tensor, and a run without a BOOT.
	runs := []Run{{Layers: 2, Tensors: 10, BootCycles: 1900}, {Layers: 5, Tensors: 12, BootCycles: 2600}, {Layers: 9, Tensors: 30, BootCycles: 4300},
		{Layers: 4, Tensors: 20, BootCycles: 2800}, {Layers: 3, Tensors: 3, BootCycles: 0}}
	f := fitBoot(runs, Records{Layers: 10, Tensors: 20})
	if f.Boots != 4 || math.Abs(f.Fixed-1000) > 1e-6 || math.Abs(f.PerLayer-200) > 1e-6 || math.Abs(f.PerTensor-50) > 1e-6 || f.Cycles != 4000 ||
		f.MinLayers != 2 || f.MaxLayers != 9 || f.RMSError > 1e-9 {
		t.Errorf("%+v", f)
	}
	if f := fitBoot(runs, Records{}); f.At != (Records{Layers: 5, Tensors: 12}) {
		t.Errorf("default image %+v, want the median run's 5 layers and 12 tensors", f.At)
	}
	if f := fitBoot(nil, Records{}); f.Boots != 0 {
		t.Errorf("%+v", f)
	}
}

func TestImageRecords(t *testing.T) {
	imgs, err := Suite(loadProfile(t, "stm32f405"))
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if r := ImageRecords(img.Bytes); r.Layers != len(img.Model.Layers) || r.Tensors != len(img.Model.Tensors) {
			t.Errorf("%s: %+v, want %d layers and %d tensors", img.Name, r, len(img.Model.Layers), len(img.Model.Tensors))
		}
	}
	if r := ImageRecords(make([]byte, 8)); r != (Records{}) {
		t.Errorf("short image: %+v", r)
	}
}

func TestLookupBoard(t *testing.T) {
	for _, b := range Boards() {
		got, err := LookupBoard(b.Name)
		if err != nil || got.Name != b.Name {
			t.Errorf("%s: %v", b.Name, err)
		}
		if _, err := profiles.Load(b.Base); err != nil {
			t.Errorf("%s: base %s: %v", b.Name, b.Base, err)
		}
	}
	if _, err := LookupBoard("esp32"); err == nil || !strings.Contains(err.Error(), "qemu-stm32, stm32, msp430") {
		t.Errorf("unknown board: %v", err)
	}
}
