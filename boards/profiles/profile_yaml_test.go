package profiles

import (
	"reflect"
	"strings"
	"testing"
)

// withCalibration adds every optional section to p, with awkward numbers.
func withCalibration(t *testing.T, p *Profile) *Profile {
	t.Helper()
	q := p.Clone()
	for i, s := range optionalSpecs {
		v := float64(i+1) / 7
		if s.dim == dimEnergy || s.dim == dimEnergyPerElem {
			v *= 1.3e-9
		}
		if err := q.SetField(s.path, v); err != nil {
			t.Fatal(err)
		}
		q.Sources[s.path] = "calibrated: sample \"" + s.path + "\""
	}
	return q
}

// The YAML writer's file parses back to the same profile, with and without
// the optional sections, and keeps the sources.
func TestYAMLRoundTrip(t *testing.T) {
	for _, name := range Names() {
		base := mustLoad(t, name)
		for _, p := range []*Profile{base, withCalibration(t, base)} {
			data := p.YAML("a header\nsecond line")
			q, err := Parse(data, "written.yaml")
			if err != nil {
				t.Fatalf("%s: %v\n%s", name, err, data)
			}
			q.Source = p.Source
			if !reflect.DeepEqual(p, q) {
				t.Errorf("%s: round trip differs:\n%+v\n%+v\n%s", name, p, q, data)
			}
			if !strings.HasPrefix(string(data), "# a header\n# second line\nname: ") {
				t.Errorf("%s: header not written as comments:\n%.80s", name, data)
			}
		}
	}
}

func TestOptionalSections(t *testing.T) {
	p := withCalibration(t, mustLoad(t, "stm32f405"))
	if got, want := len(p.Table()), 2+len(specs)+len(optionalSpecs); got != want {
		t.Errorf("Table has %d rows, want %d", got, want)
	}
	if len(p.FieldPaths()) != len(specs)+len(optionalSpecs) {
		t.Errorf("FieldPaths: %d, want %d", len(p.FieldPaths()), len(specs)+len(optionalSpecs))
	}
	k := p.Kernel("conv_2d")
	if k == nil || k.Cycles(1, 0, 0) != k.PerTask.Cycles+k.PerOutput.Cycles {
		t.Fatalf("conv_2d: %+v", k)
	}
	if v, ok := p.Field("costs.layer_scan.cycles"); !ok || v != p.LayerScan.Cycles {
		t.Errorf("Field(costs.layer_scan.cycles) = %v, %v", v, ok)
	}
	base := mustLoad(t, "stm32f405")
	if _, ok := base.Field("costs.kernels.add.cycles_per_task"); ok || base.Kernel("add") != nil || len(base.FieldPaths()) != len(specs) {
		t.Errorf("the embedded profile has calibrated sections")
	}
	if err := base.SetField("costs.nope", 1); err == nil {
		t.Error("SetField of an unknown path succeeded")
	}
	bad := p.Clone()
	bad.Kernels["conv_3d"] = &KernelCost{}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "costs.kernels.conv_3d: unknown kernel") {
		t.Errorf("Validate of an unknown kernel: %v", err)
	}

	yaml := string(mustLoadYAML(t, "stm32f405"))
	for _, c := range []struct{ insert, want string }{
		{"  layer_scan:\n    cycles: {value: 72, unit: cycles, source: m}\n", "costs.layer_scan.energy: missing field"},
		{"  kernels:\n    conv_2d: {}\n", "costs.kernels.conv_2d.cycles_per_task: missing field"},
		{"  kernels:\n    conv3d: {}\n", "costs.kernels.conv3d: unknown field"},
		{"  kernels:\n    add:\n      cycles_per_task: {value: 1, unit: mW, source: m}\n", `costs.kernels.add.cycles_per_task.unit: "mW" is a power`},
	} {
		text := strings.Replace(yaml, "\nreboot:", "\n"+c.insert+"\nreboot:", 1)
		_, err := Parse([]byte(text), "k.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.insert, err, c.want)
		}
	}
	text := strings.Replace(yaml, "\nreboot:", "\n  kernels: {}\n\nreboot:", 1)
	if q, err := Parse([]byte(text), "k.yaml"); err != nil || q.Kernels != nil {
		t.Errorf("empty kernels: %v, %v", err, q)
	}
}

func mustLoadYAML(t *testing.T, name string) []byte {
	t.Helper()
	return []byte(embeddedYAML(t, name))
}
