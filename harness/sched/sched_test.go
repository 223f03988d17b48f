package sched

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/model"
)

func testModels(t *testing.T) []*model.Model {
	t.Helper()
	b, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		t.Fatal(err)
	}
	ms := []*model.Model{b}
	for _, name := range []string{"kws_dscnn_int8.tflite", "ic_resnet8_int8.tflite"} {
		m, err := model.Load(filepath.Join("../../../shared/data/models", name))
		if err == nil {
			ms = append(ms, m)
		}
	}
	return ms
}

// TestPlansCoverEveryOutputOnce checks, for every scheduler, model and
// profile, that each layer's tasks cover its output exactly once, fit SRAM,
// and commit where the scheduler says.
func TestPlansCoverEveryOutputOnce(t *testing.T) {
	for _, pname := range profiles.Names() {
		prof, err := profiles.Load(pname)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range testModels(t) {
			for _, sname := range Names() {
				s, _ := Get(sname)
				p, err := s.Schedule(m, prof, Options{})
				if err != nil {
					t.Logf("%s/%s/%s: %v", sname, m.Name, pname, err)
					continue
				}
				covered := map[int][]int{}
				for _, l := range m.Layers {
					covered[l.Index] = make([]int, m.OutputShape(l).Elems())
				}
				for i, task := range p.Tasks {
					if lim := TaskLimits(prof); task.SRAMBytes > lim.SRAM || (sname == "tile" && task.Energy > lim.Energy) {
						t.Errorf("%s/%s: task %d needs %d bytes of SRAM", sname, m.Name, i, task.SRAMBytes)
					}
					s := m.OutputShape(m.Layers[task.Layer])
					r := task.Region
					if !task.Part.Last() {
						continue // a reduction step before the last writes partial sums, not outputs
					}
					if !r.Within(s) {
						t.Fatalf("%s/%s: task %d region %v outside %v", sname, m.Name, i, r, s)
					}
					for n := r.N0; n < r.N1; n++ {
						for y := r.Y0; y < r.Y1; y++ {
							for x := r.X0; x < r.X1; x++ {
								for c := r.C0; c < r.C1; c++ {
									covered[task.Layer][((n*s.H+y)*s.W+x)*s.C+c]++
								}
							}
						}
					}
				}
				for layer, cs := range covered {
					for i, c := range cs {
						if c != 1 {
							t.Fatalf("%s/%s: layer %d output %d computed %d times", sname, m.Name, layer, i, c)
						}
					}
				}
				if !p.Tasks[len(p.Tasks)-1].Commit {
					t.Errorf("%s/%s: last task does not commit", sname, m.Name)
				}
				if sname == "tile" && p.Commits() != len(p.Tasks) {
					t.Errorf("tile/%s: %d commits for %d tasks", m.Name, p.Commits(), len(p.Tasks))
				}
				if sname == "layer" && p.Commits() != len(m.Layers) {
					t.Errorf("layer/%s: %d commits for %d layers", m.Name, p.Commits(), len(m.Layers))
				}
				t.Logf("%s/%s/%s: %d tasks, %d commits, %.3g J, NVM %d B", sname, m.Name, pname, len(p.Tasks), p.Commits(), p.Energy(), p.NVMBytes+p.WeightBytes)
			}
		}
	}
}

func TestPlansAreDeterministic(t *testing.T) {
	prof, err := profiles.Load("msp430fr5994")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range testModels(t) {
		for _, sname := range Names() {
			s, _ := Get(sname)
			a, errA := s.Schedule(m, prof, Options{ModelBytes: bundled.Model()})
			b, errB := s.Schedule(m, prof, Options{ModelBytes: bundled.Model()})
			if errA != nil || errB != nil {
				continue
			}
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if string(ja) != string(jb) {
				t.Fatalf("%s/%s: two plans differ", sname, m.Name)
			}
		}
	}
}
