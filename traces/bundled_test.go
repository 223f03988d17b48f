package traces

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "regenerate the bundled traces (go generate ./traces)")

// The bundled traces are exactly what their specs generate.
func TestBundledReproducible(t *testing.T) {
	for _, b := range bundledSpecs {
		var buf bytes.Buffer
		if err := generateBundled(&buf, b.spec, b.about); err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		if buf.Len() >= 200<<10 {
			t.Errorf("%s: %d bytes, bundled traces stay under 200 KB", b.name, buf.Len())
		}
		if *update {
			if err := os.WriteFile(b.name, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		have, err := os.ReadFile(b.name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(have, buf.Bytes()) {
			t.Errorf("%s differs from what its spec %q generates: run go generate ./traces", b.name, b.spec)
		}
		// The file records its spec, and the embedded copy is the same file.
		r, err := OpenBundled(b.name)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := commentValue(r.Meta(), "source"); !ok || v != b.spec {
			t.Errorf("%s: source comment %q, want the spec %q", b.name, v, b.spec)
		}
		if emb, _ := bundledFS.ReadFile(b.name); !bytes.Equal(emb, have) {
			t.Errorf("%s: embedded copy differs from the file", b.name)
		}
	}
}

func TestBundled(t *testing.T) {
	names := Bundled()
	if len(names) != 3 {
		t.Fatalf("Bundled() = %q", names)
	}
	for _, n := range names {
		r, err := OpenBundled(n[:len(n)-4])
		if err != nil {
			t.Fatal(err)
		}
		st, err := Summarize(r, 1e-3)
		if err != nil {
			t.Fatal(err)
		}
		if m := r.Meta(); m.Period <= 0 || m.Format != "csv" || m.Name != n {
			t.Errorf("%s: meta %+v", n, m)
		}
		t.Log(st)
	}
	if _, err := OpenBundled("nope"); err == nil {
		t.Error("OpenBundled(nope) succeeded")
	}
}

// commentValue returns the value of the first "# key: value" comment.
func commentValue(m Meta, key string) (string, bool) {
	for _, c := range m.Comments {
		k, v, ok := strings.Cut(c, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), key) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}
