package plan

import (
	"math/rand/v2"
	"testing"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/model"
)

// validTaps agrees with counting every (output, tap) pair.
func TestValidTaps(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for range 2000 {
		in := 1 + r.IntN(20)
		stride, dil, size := 1+r.IntN(3), 1+r.IntN(2), 1+r.IntN(5)
		pad := r.IntN(size + 1)
		o0 := r.IntN(10)
		o1 := o0 + r.IntN(10)
		var want int64
		for o := o0; o < o1; o++ {
			for k := range size {
				if i := o*stride - pad + k*dil; i >= 0 && i < in {
					want++
				}
			}
		}
		if got := validTaps(o0, o1, stride, dil, size, pad, in); got != want {
			t.Fatalf("validTaps(%d, %d, stride %d, dilation %d, size %d, pad %d, in %d) = %d, want %d", o0, o1, stride, dil, size, pad, in, got, want)
		}
	}
}

// A profile with kernel costs prices a layer's compute with them (and its
// layer scan); without, Estimate is what it was.
func TestEstimateKernelCosts(t *testing.T) {
	m, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		t.Fatal(err)
	}
	base, err := profiles.Load("stm32f405")
	if err != nil {
		t.Fatal(err)
	}
	k := base.Clone()
	for _, f := range []struct {
		path string
		v    float64
	}{
		{"costs.kernels.conv_2d.cycles_per_task", 1000}, {"costs.kernels.conv_2d.cycles_per_output", 10},
		{"costs.kernels.conv_2d.cycles_per_tap", 3}, {"costs.kernels.conv_2d.cycles_per_element", 2},
		{"costs.kernels.conv_2d.energy_per_element", 1e-9}, {"costs.layer_scan.cycles", 50},
	} {
		if err := k.SetField(f.path, f.v); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range m.Layers {
		r := m.OutputShape(l).Full()
		cb, nb := Estimate(base, m, l, r, Part{})
		ck, nk := Estimate(k, m, l, r, Part{})
		if nb.Taps != nk.Taps || nb.Terms != nk.Terms || nb.MACs != nk.MACs {
			t.Fatalf("layer %d: needs differ", l.Index)
		}
		if cb.ReadCycles != ck.ReadCycles || cb.WriteCycles != ck.WriteCycles {
			t.Errorf("layer %d: the kernel costs changed the NVM costs", l.Index)
		}
		scan := 50 * float64(l.Index)
		if l.Op != model.OpConv2D {
			if ck.ComputeCycles != cb.ComputeCycles+scan {
				t.Errorf("layer %d (%s): compute %g, want the base's %g plus the scan %g", l.Index, l.Op, ck.ComputeCycles, cb.ComputeCycles, scan)
			}
			continue
		}
		want := 1000 + 10*float64(r.Elems()) + 3*float64(nk.Taps) + 2*float64(nk.Terms) + scan
		if ck.ComputeCycles != want || ck.ComputeEnergy != 1e-9*float64(nk.Terms) {
			t.Errorf("layer %d: compute %g cycles %g J, want %g cycles", l.Index, ck.ComputeCycles, ck.ComputeEnergy, want)
		}
		c := l.Conv
		if nk.Terms > nk.MACs || nk.Terms != nk.Taps*int64(c.In.C) || (c.PadTop == 0 && c.PadLeft == 0 && nk.Terms != nk.MACs) {
			t.Errorf("layer %d: taps %d, terms %d, MACs %d", l.Index, nk.Taps, nk.Terms, nk.MACs)
		}
	}
}
