package plan_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/sched"
)

func plans(t testing.TB) []struct {
	m *model.Model
	p *plan.Plan
} {
	t.Helper()
	prof, err := profiles.Load("msp430fr5994")
	if err != nil {
		t.Fatal(err)
	}
	var ms []*model.Model
	if m, err := model.Parse(bundled.Model(), bundled.ModelName); err == nil {
		ms = append(ms, m)
	}
	for _, name := range []string{"kws_dscnn_int8.tflite", "micro_speech_int8.tflite"} {
		if m, err := model.Load(filepath.Join("../../../shared/data/models", name)); err == nil {
			ms = append(ms, m)
		}
	}
	var out []struct {
		m *model.Model
		p *plan.Plan
	}
	for _, m := range ms {
		for _, name := range sched.Names() {
			s, _ := sched.Get(name)
			p, err := s.Schedule(m, prof, sched.Options{})
			if err != nil {
				if m == ms[0] {
					t.Fatal(err) // every scheduler plans the bundled model
				}
				t.Logf("%s cannot plan %s: %v", name, m.Name, err)
				continue
			}
			out = append(out, struct {
				m *model.Model
				p *plan.Plan
			}{m, p})
		}
	}
	return out
}

// TestImageRoundTrip encodes plans, decodes them, and checks that the
// decoded schedules expand to exactly the plan's tasks and that tensors,
// constants and parameters survive.
func TestImageRoundTrip(t *testing.T) {
	for _, mp := range plans(t) {
		m, p := mp.m, mp.p
		img, err := plan.EncodeImage(m, p)
		if err != nil {
			t.Fatal(err)
		}
		d, err := plan.DecodeImage(img)
		if err != nil {
			t.Fatal(err)
		}
		if d.PlanTag != p.Tag() || d.NVMBytes != p.NVMBytes || d.WordBytes != p.WordBytes || len(d.Layers) != len(m.Layers) {
			t.Fatalf("%s/%s: header does not round-trip", m.Name, p.Scheduler)
		}
		layers := make([]plan.LayerPlan, len(d.Schedules))
		for i, s := range d.Schedules {
			layers[i] = plan.LayerPlan{Layer: i, TileH: s.TileH, TileW: s.TileW, TileC: s.TileC, TileR: s.TileR, CommitEvery: s.CommitEvery, NoCommitAtEnd: s.NoCommitAtEnd}
		}
		tasks, err := plan.Expand(m, layers)
		if err != nil {
			t.Fatal(err)
		}
		if len(tasks) != len(p.Tasks) {
			t.Fatalf("%s/%s: %d tasks from the image, %d in the plan", m.Name, p.Scheduler, len(tasks), len(p.Tasks))
		}
		for i := range tasks {
			a, b := tasks[i], p.Tasks[i]
			if a.Layer != b.Layer || a.Region != b.Region || a.Part != b.Part || a.Commit != b.Commit {
				t.Fatalf("%s/%s: task %d differs: %+v vs %+v", m.Name, p.Scheduler, i, a, b)
			}
		}
		for i, s := range d.Schedules {
			lp := p.Layers[i]
			if s.FirstTask != lp.FirstTask || s.Tasks != lp.Tasks || s.PartialBase != lp.PartialBase || s.PartialSlots != lp.PartialSlots || s.PartialSlotBytes != lp.PartialSlotBytes {
				t.Fatalf("%s/%s: schedule %d differs", m.Name, p.Scheduler, i)
			}
		}
		for i, tt := range m.Tensors {
			it := d.Tensors[i]
			if it.DType != tt.DType || it.Bytes != tt.Bytes() || int32(it.ZeroPoint) != tt.ZeroPoint {
				t.Fatalf("%s: tensor %d differs", m.Name, i)
			}
			if tt.IsConst() && !bytes.Equal(img[it.Offset:it.Offset+it.Bytes], tt.Const) {
				t.Fatalf("%s: constant %d differs", m.Name, i)
			}
			if pl, ok := p.Placement(i); ok && it.Offset != pl.Offset {
				t.Fatalf("%s: tensor %d at NVM %d, plan says %d", m.Name, i, it.Offset, pl.Offset)
			}
		}
		for i, l := range m.Layers {
			if c := l.Conv; c != nil {
				q := d.Layers[i].Params[13]
				for oc := range c.Multiplier {
					if d.Quant[int(q)+oc] != [2]int32{c.Multiplier[oc], c.Shift[oc]} {
						t.Fatalf("%s: layer %d channel %d quantization differs", m.Name, i, oc)
					}
				}
			}
			if !reflect.DeepEqual(d.Layers[i].Inputs, l.Inputs) || d.Layers[i].Output != l.Output {
				t.Fatalf("%s: layer %d wiring differs", m.Name, i)
			}
		}
		t.Logf("%s/%s: image %d bytes for %d tasks", m.Name, p.Scheduler, len(img), len(p.Tasks))
	}
}

func TestImageRejectsDamage(t *testing.T) {
	mp := plans(t)[0]
	img, err := plan.EncodeImage(mp.m, mp.p)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(img)
	flipped[len(flipped)/2] ^= 0x10
	if _, err := plan.DecodeImage(flipped); err == nil || !strings.Contains(err.Error(), "CRC-32") {
		t.Fatalf("a flipped bit gave %v", err)
	}
	if _, err := plan.DecodeImage(img[:len(img)-1]); err == nil {
		t.Fatal("a truncated image decoded")
	}
	lying := bytes.Clone(img)
	binary.LittleEndian.PutUint16(lying[16:], 60000) // tensors
	binary.LittleEndian.PutUint32(lying[12:], crc32IEEE(lying[16:]))
	if _, err := plan.DecodeImage(lying); err == nil || !strings.Contains(err.Error(), "do not fit") {
		t.Fatalf("a lying tensor count gave %v", err)
	}
}

func FuzzDecodeImage(f *testing.F) {
	// Seeds from quick plans only: the fuzzing time includes this setup.
	prof, err := profiles.Load("msp430fr5994")
	if err != nil {
		f.Fatal(err)
	}
	m, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"tile", "adaptive", "jit"} {
		s, _ := sched.Get(name)
		p, err := s.Schedule(m, prof, sched.Options{})
		if err != nil {
			f.Fatal(err)
		}
		if img, err := plan.EncodeImage(m, p); err == nil && len(img) < 16<<10 {
			f.Add(img)
		}
	}
	f.Add([]byte("IHPL"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Skip the CRC so the fuzzer reaches the record checks.
		if len(data) >= plan.ImageHeaderBytes {
			binary.LittleEndian.PutUint32(data[8:], uint32(len(data)))
			binary.LittleEndian.PutUint32(data[12:], crc32IEEE(data[16:]))
		}
		img, err := plan.DecodeImage(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		for _, tt := range img.Tensors {
			if tt.Flags&plan.TensorConst != 0 {
				_ = data[tt.Offset : tt.Offset+tt.Bytes]
			}
		}
	})
}

// TestImageRuleSection checks the run-time rule section: an image has it,
// and version 2, exactly when the plan has the rule; it carries the
// storage and, per task, the least whole nJ covering plan.RuleNeed.
func TestImageRuleSection(t *testing.T) {
	seen := 0
	for _, mp := range plans(t) {
		m, p := mp.m, mp.p
		img, err := plan.EncodeImage(m, p)
		if err != nil {
			t.Fatal(err)
		}
		d, err := plan.DecodeImage(img)
		if err != nil {
			t.Fatal(err)
		}
		if p.JIT != nil {
			continue // TestImageJITSection
		}
		if !p.RuntimeRule {
			if d.Version != plan.ImageVersion || d.Rule != nil || d.Flags&plan.ImageRuntimeRule != 0 {
				t.Fatalf("%s/%s: version %d, rule %v for a plan without the rule", m.Name, p.Scheduler, d.Version, d.Rule)
			}
			continue
		}
		seen++
		r := d.Rule
		if d.Version != plan.ImageVersionSections || r == nil || len(r.NeedNJ) != len(p.Tasks) {
			t.Fatalf("%s/%s: version %d, rule %v", m.Name, p.Scheduler, d.Version, r)
		}
		if r.CapacitanceNF != uint32(math.Round(p.Storage.CapacitanceF*1e9)) || r.VonMV != uint16(math.Round(p.Storage.VonV*1000)) || r.VoffMV != uint16(math.Round(p.Storage.VoffV*1000)) {
			t.Fatalf("%s/%s: storage %d nF %d/%d mV, plan %+v", m.Name, p.Scheduler, r.CapacitanceNF, r.VonMV, r.VoffMV, *p.Storage)
		}
		if float64(r.LimitNJ)*1e-9 < p.RuleLimit() || float64(r.LimitNJ-1)*1e-9 >= p.RuleLimit() {
			t.Fatalf("%s/%s: limit %d nJ for %g J", m.Name, p.Scheduler, r.LimitNJ, p.RuleLimit())
		}
		for i, n := range r.NeedNJ {
			need := p.RuleNeed(i)
			if float64(n)*1e-9 < need || n > 0 && float64(n-1)*1e-9 >= need {
				t.Fatalf("%s/%s: task %d needs %g J, the image says %d nJ", m.Name, p.Scheduler, i, need, n)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no plan has the run-time rule")
	}
}

// TestImageRuleRefused damages the rule section and its header fields: each
// is refused with a one-line error.
func TestImageRuleRefused(t *testing.T) {
	var m *model.Model
	var p *plan.Plan
	for _, mp := range plans(t) {
		if mp.p.RuntimeRule {
			m, p = mp.m, mp.p
			break
		}
	}
	if p == nil {
		t.Fatal("no plan has the run-time rule")
	}
	img, err := plan.EncodeImage(m, p)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	nt, nl, nq := int(le.Uint16(img[16:])), int(le.Uint16(img[18:])), int(le.Uint16(img[20:]))
	ruleAt := plan.ImageHeaderBytes + nt*plan.TensorRecBytes + nl*(plan.LayerRecBytes+plan.ScheduleRecBytes) + nq*plan.QuantRecBytes
	cases := []struct {
		name, want string
		edit       func(b []byte)
	}{
		{"version 1 with the flag", "the rule and jit sections come with version 2", func(b []byte) { le.PutUint16(b[4:], 1) }},
		{"no flag in version 2", "the rule and jit sections come with version 2", func(b []byte) { b[23] &^= plan.ImageRuntimeRule }},
		{"section size", "rule section of", func(b []byte) { le.PutUint32(b[ruleAt+12:], le.Uint32(b[ruleAt+12:])-4) }},
		{"section past the end", "does not fit", func(b []byte) { le.PutUint32(b[ruleAt+12:], uint32(len(b))) }},
		{"no capacitance", "capacitance 0 nF", func(b []byte) { le.PutUint32(b[ruleAt:], 0) }},
		{"turn-on below brown-out", "turn-on", func(b []byte) { le.PutUint16(b[ruleAt+4:], le.Uint16(b[ruleAt+6:])) }},
	}
	for _, c := range cases {
		b := bytes.Clone(img)
		c.edit(b)
		binary.LittleEndian.PutUint32(b[12:], crc32IEEE(b[16:]))
		_, err := plan.DecodeImage(b)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	// A plan with the rule but nothing to price it with is refused.
	q := *p
	q.Storage = nil
	if _, err := plan.EncodeImage(m, &q); err == nil || !strings.Contains(err.Error(), "storage") {
		t.Errorf("a rule plan without storage: %v", err)
	}
}

// TestImageJITSection checks the jit section: an image has it, and
// version 2, exactly when the plan has just-in-time checkpoints; it
// carries the threshold, the turn-on voltage, the snapshot area and the
// chunk sizes; damage to it is refused with a one-line error.
func TestImageJITSection(t *testing.T) {
	var m *model.Model
	var p *plan.Plan
	for _, mp := range plans(t) {
		if mp.p.JIT != nil {
			m, p = mp.m, mp.p
			j, st := p.JIT, p.Storage
			img, err := plan.EncodeImage(m, p)
			if err != nil {
				t.Fatal(err)
			}
			d, err := plan.DecodeImage(img)
			if err != nil {
				t.Fatal(err)
			}
			if d.Version != plan.ImageVersionSections || d.Rule != nil || d.JIT == nil || len(d.JIT.ChunkPixels) != len(m.Layers) {
				t.Fatalf("%s: version %d, rule %v, jit %v", m.Name, d.Version, d.Rule, d.JIT)
			}
			dj := d.JIT
			if float64(dj.ThresholdMV) != math.Round(j.ThresholdV*1000) || float64(dj.VonMV) != math.Round(st.VonV*1000) ||
				int(dj.SnapshotOffset) != j.SnapshotOffset || int(dj.SnapshotBytes) != j.SnapshotBytes {
				t.Fatalf("%s: jit section %+v, plan %+v", m.Name, *dj, *j)
			}
			for i, n := range dj.ChunkPixels {
				if int(n) != j.ChunkPixels[i] {
					t.Fatalf("%s: layer %d: %d pixels per chunk, plan %d", m.Name, i, n, j.ChunkPixels[i])
				}
			}
		}
	}
	if p == nil {
		t.Fatal("no plan has just-in-time checkpoints")
	}
	img, err := plan.EncodeImage(m, p)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	nt, nl, nq := int(le.Uint16(img[16:])), int(le.Uint16(img[18:])), int(le.Uint16(img[20:]))
	at := plan.ImageHeaderBytes + nt*plan.TensorRecBytes + nl*(plan.LayerRecBytes+plan.ScheduleRecBytes) + nq*plan.QuantRecBytes
	cases := []struct {
		name, want string
		edit       func(b []byte)
	}{
		{"version 1 with the flag", "come with version 2", func(b []byte) { le.PutUint16(b[4:], 1) }},
		{"both flags", "together", func(b []byte) { b[23] |= plan.ImageRuntimeRule }},
		{"section size", "jit section of", func(b []byte) { le.PutUint32(b[at+12:], le.Uint32(b[at+12:])-4) }},
		{"no threshold", "threshold 0 mV", func(b []byte) { le.PutUint16(b[at:], 0) }},
		{"threshold at turn-on", "want 0 < threshold < turn-on", func(b []byte) { le.PutUint16(b[at:], le.Uint16(b[at+2:])) }},
		{"area over the NVM header", "snapshot area", func(b []byte) { le.PutUint32(b[at+4:], 8) }},
		{"area unaligned", "snapshot area", func(b []byte) { le.PutUint32(b[at+4:], le.Uint32(b[at+4:])+2) }},
		{"area past NVM", "snapshot area", func(b []byte) { le.PutUint32(b[at+8:], le.Uint32(b[at+8:])+4) }},
		{"chunk of 0 pixels", "chunks of 0 pixels", func(b []byte) { le.PutUint32(b[at+plan.JITHeadBytes:], 0) }},
	}
	for _, c := range cases {
		b := bytes.Clone(img)
		c.edit(b)
		binary.LittleEndian.PutUint32(b[12:], crc32IEEE(b[16:]))
		_, err := plan.DecodeImage(b)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	q := *p
	q.RuntimeRule = true
	if _, err := plan.EncodeImage(m, &q); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("a plan with the rule and jit: %v", err)
	}
}
