package firmwaretest

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/plan"
)

// resum rewrites an image's CRC-32 after a change.
func resum(img []byte) {
	if len(img) >= 16 {
		binary.LittleEndian.PutUint32(img[12:], crc32.ChecksumIEEE(img[16:]))
	}
}

// TestImageRejected gives runplan broken images: each is refused with exit
// status 2 and the error named, never run.
func TestImageRejected(t *testing.T) {
	runplan := bin(t, "runplan")
	d := deploy(t, bundledModel(t), bundled.Input(), "tile")
	le := binary.LittleEndian
	cases := []struct {
		name, want string
		edit       func([]byte) []byte
	}{
		{"empty", "shorter than its header", func(b []byte) []byte { return b[:0] }},
		{"truncated", "size differs from its header", func(b []byte) []byte { return b[:len(b)-4] }},
		{"magic", "bad image magic", func(b []byte) []byte { b[0] ^= 1; return b }},
		{"version", "unsupported image version", func(b []byte) []byte { le.PutUint16(b[4:], 2); resum(b); return b }},
		{"crc", "CRC-32 mismatch", func(b []byte) []byte { b[len(b)-1] ^= 0x40; return b }},
		{"word size", "header field out of range", func(b []byte) []byte { b[22] = 3; resum(b); return b }},
		{"nvm size", "more NVM than the board has", func(b []byte) []byte { le.PutUint32(b[24:], 1<<30); resum(b); return b }},
		{"tensor count", "shorter than its header or records", func(b []byte) []byte { le.PutUint16(b[16:], 0xFFF0); resum(b); return b }},
		{"layer operator", "bad layer record", func(b []byte) []byte {
			nt := int(le.Uint16(b[16:]))
			b[plan.ImageHeaderBytes+nt*plan.TensorRecBytes] = 42
			resum(b)
			return b
		}},
		{"schedule tasks", "bad schedule record", func(b []byte) []byte {
			nt, nl := int(le.Uint16(b[16:])), int(le.Uint16(b[18:]))
			r := b[plan.ImageHeaderBytes+nt*plan.TensorRecBytes+nl*plan.LayerRecBytes:]
			le.PutUint32(r[16:], le.Uint32(r[16:])+1)
			resum(b)
			return b
		}},
		{"activation over the NVM header", "bad tensor record", func(b []byte) []byte {
			// The first activation tensor placed in NVM, moved onto the progress word.
			nt := int(le.Uint16(b[16:]))
			for i := 0; i < nt; i++ {
				r := b[plan.ImageHeaderBytes+i*plan.TensorRecBytes:]
				if r[1]&plan.TensorConst == 0 && le.Uint32(r[12:]) != 0xFFFFFFFF {
					le.PutUint32(r[12:], 8)
					break
				}
			}
			resum(b)
			return b
		}},
	}
	dir := t.TempDir()
	for _, c := range cases {
		img := c.edit(append([]byte(nil), d.imageBytes...))
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".img")
		if err := os.WriteFile(p, img, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := plan.DecodeImage(img); err == nil {
			// The C checks go further than Go's (word size, task counts,
			// the NVM header, the board's NVM).
			t.Logf("%s: Go's decoder accepts the image, the runtime must not", c.name)
		}
		r := run(t, runplan, p, d.input)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, want 2 with %q\n%s", c.name, r.code, c.want, r.stderr)
		}
	}
	// The wrong input size is refused too.
	short := filepath.Join(dir, "short.bin")
	if err := os.WriteFile(short, bundled.Input()[1:], 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, runplan, d.image, short); r.code != 2 || !strings.Contains(r.stderr, "input of") {
		t.Errorf("short input: exit %d\n%s", r.code, r.stderr)
	}
}

// TestMutatedImages changes random bytes of valid images' records (with the
// CRC recomputed; the rule and jit sections of adaptive's and jit's plans
// too) and runs them under
// the sanitizers: the runtime either refuses the image or runs it to
// completion, never reads or writes out of bounds, and refuses at least
// every image Go's decoder refuses.
func TestMutatedImages(t *testing.T) {
	runplan := bin(t, "runplan-san")
	m := bundledModel(t)
	rng := rand.New(rand.NewSource(1))
	dir := t.TempDir()
	input := filepath.Join(dir, "input.bin")
	if err := os.WriteFile(input, bundled.Input(), 0o644); err != nil {
		t.Fatal(err)
	}
	accepted, refused := 0, 0
	for _, scheduler := range []string{"tile", "layer", "adaptive", "jit"} {
		d := deploy(t, m, bundled.Input(), scheduler)
		le := binary.LittleEndian
		nt, nl, nq := int(le.Uint16(d.imageBytes[16:])), int(le.Uint16(d.imageBytes[18:])), int(le.Uint16(d.imageBytes[20:]))
		records := plan.ImageHeaderBytes + nt*plan.TensorRecBytes + nl*(plan.LayerRecBytes+plan.ScheduleRecBytes) + nq*plan.QuantRecBytes
		if d.plan.RuntimeRule {
			records += plan.RuleHeadBytes + 4*len(d.plan.Tasks) // the rule section too
		}
		if d.plan.JIT != nil {
			records += plan.JITHeadBytes + 4*nl // the jit section too
		}
		for i := 0; i < 60; i++ {
			img := append([]byte(nil), d.imageBytes...)
			for k := 1 + rng.Intn(3); k > 0; k-- {
				at := 16 + rng.Intn(records-16)
				switch rng.Intn(3) {
				case 0:
					img[at] = byte(rng.Intn(256))
				case 1:
					img[at] ^= 1 << rng.Intn(8)
				default:
					img[at] += byte(rng.Intn(5) - 2)
				}
			}
			resum(img)
			p := filepath.Join(dir, "mutant.img")
			if err := os.WriteFile(p, img, 0o644); err != nil {
				t.Fatal(err)
			}
			r := run(t, runplan, p, input)
			_, goErr := plan.DecodeImage(img)
			switch {
			case r.code == 0:
				accepted++
				if goErr != nil {
					t.Errorf("mutant %d of %s: the runtime ran an image Go's decoder refuses (%v)", i, scheduler, goErr)
				}
			case r.code == 2:
				refused++
			default:
				t.Errorf("mutant %d of %s: exit %d\n%s", i, scheduler, r.code, r.stderr)
			}
		}
	}
	t.Logf("%d mutants refused, %d accepted and run", refused, accepted)
}

// TestImageRuleRejected damages the run-time rule section of an adaptive
// plan's image (version 2): the runtime refuses each, as Go's decoder does.
func TestImageRuleRejected(t *testing.T) {
	runplan := bin(t, "runplan")
	d := deploy(t, bundledModel(t), bundled.Input(), "adaptive")
	le := binary.LittleEndian
	nt, nl, nq := int(le.Uint16(d.imageBytes[16:])), int(le.Uint16(d.imageBytes[18:])), int(le.Uint16(d.imageBytes[20:]))
	ruleAt := plan.ImageHeaderBytes + nt*plan.TensorRecBytes + nl*(plan.LayerRecBytes+plan.ScheduleRecBytes) + nq*plan.QuantRecBytes
	cases := []struct {
		name, want string
		edit       func(b []byte)
	}{
		{"version 1 with the flag", "unsupported image version", func(b []byte) { le.PutUint16(b[4:], 1) }},
		{"version 2 without the flag", "unsupported image version", func(b []byte) { b[23] &^= plan.ImageRuntimeRule }},
		{"section one task short", "bad run-time rule section", func(b []byte) { le.PutUint32(b[ruleAt+12:], le.Uint32(b[ruleAt+12:])-4) }},
		{"section past the end", "bad run-time rule section", func(b []byte) { le.PutUint32(b[ruleAt+12:], uint32(len(b))) }},
		{"section size unaligned", "bad run-time rule section", func(b []byte) { le.PutUint32(b[ruleAt+12:], le.Uint32(b[ruleAt+12:])+2) }},
		{"no capacitance", "bad run-time rule section", func(b []byte) { le.PutUint32(b[ruleAt:], 0) }},
		{"turn-on at brown-out", "bad run-time rule section", func(b []byte) { le.PutUint16(b[ruleAt+4:], le.Uint16(b[ruleAt+6:])) }},
		{"no brown-out voltage", "bad run-time rule section", func(b []byte) { le.PutUint16(b[ruleAt+6:], 0) }},
	}
	dir := t.TempDir()
	for _, c := range cases {
		img := append([]byte(nil), d.imageBytes...)
		c.edit(img)
		resum(img)
		if _, err := plan.DecodeImage(img); err == nil {
			t.Errorf("%s: Go's decoder accepts the image", c.name)
		}
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".img")
		if err := os.WriteFile(p, img, 0o644); err != nil {
			t.Fatal(err)
		}
		r := run(t, runplan, p, d.input)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, want 2 with %q\n%s", c.name, r.code, c.want, r.stderr)
		}
	}
}

// TestImageJITRejected damages the jit section of a jit plan's image: the
// runtime refuses each, as Go's decoder does (and, further than Go, a
// snapshot area too small for the largest region a task keeps in SRAM).
func TestImageJITRejected(t *testing.T) {
	runplan := bin(t, "runplan")
	d := deploy(t, bundledModel(t), bundled.Input(), "jit")
	le := binary.LittleEndian
	nt, nl, nq := int(le.Uint16(d.imageBytes[16:])), int(le.Uint16(d.imageBytes[18:])), int(le.Uint16(d.imageBytes[20:]))
	at := plan.ImageHeaderBytes + nt*plan.TensorRecBytes + nl*(plan.LayerRecBytes+plan.ScheduleRecBytes) + nq*plan.QuantRecBytes
	cases := []struct {
		name, want string
		goRefuses  bool
		edit       func(b []byte)
	}{
		{"version 1 with the flag", "unsupported image version", true, func(b []byte) { le.PutUint16(b[4:], 1) }},
		{"rule and jit flags", "unsupported image version", true, func(b []byte) { b[23] |= plan.ImageRuntimeRule }},
		{"section one layer short", "bad jit section", true, func(b []byte) { le.PutUint32(b[at+12:], le.Uint32(b[at+12:])-4) }},
		{"no threshold", "bad jit section", true, func(b []byte) { le.PutUint16(b[at:], 0) }},
		{"threshold at turn-on", "bad jit section", true, func(b []byte) { le.PutUint16(b[at:], le.Uint16(b[at+2:])) }},
		{"area over the NVM header", "bad jit section", true, func(b []byte) { le.PutUint32(b[at+4:], 8) }},
		{"area unaligned", "bad jit section", true, func(b []byte) { le.PutUint32(b[at+4:], le.Uint32(b[at+4:])+2) }},
		{"area past NVM", "bad jit section", true, func(b []byte) { le.PutUint32(b[at+8:], le.Uint32(b[at+8:])+4) }},
		{"area too small", "bad jit section", false, func(b []byte) { le.PutUint32(b[at+8:], plan.SnapshotHeaderBytes) }},
		{"chunk of 0 pixels", "bad jit section", true, func(b []byte) { le.PutUint32(b[at+plan.JITHeadBytes:], 0) }},
	}
	dir := t.TempDir()
	for _, c := range cases {
		img := append([]byte(nil), d.imageBytes...)
		c.edit(img)
		resum(img)
		if _, err := plan.DecodeImage(img); (err != nil) != c.goRefuses {
			t.Errorf("%s: Go's decoder says %v", c.name, err)
		}
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".img")
		if err := os.WriteFile(p, img, 0o644); err != nil {
			t.Fatal(err)
		}
		r := run(t, runplan, p, d.input)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, want 2 with %q\n%s", c.name, r.code, c.want, r.stderr)
		}
	}
}
