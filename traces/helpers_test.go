package traces

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// roundTrip writes a trace as CSV, reads it back and compares every sample and
// the statistics.
func roundTrip(t *testing.T, open func() (Reader, error)) {
	t.Helper()
	r, err := open()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := WriteCSV(&buf, r)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := r.(io.Closer); ok {
		c.Close()
	}
	back, err := NewReader(bytes.NewReader(buf.Bytes()), "back.csv", Options{})
	if err != nil {
		t.Fatal(err)
	}
	orig, err := open()
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := orig.(io.Closer); ok {
		defer c.Close()
	}
	for i := 0; ; i++ {
		a, errA := orig.Next()
		b, errB := back.Next()
		if errA == io.EOF && errB == io.EOF {
			if i != n {
				t.Errorf("WriteCSV said %d samples, read %d", n, i)
			}
			break
		}
		if errA != nil || errB != nil {
			t.Fatalf("sample %d: %v / %v", i, errA, errB)
		}
		if a != b {
			t.Fatalf("sample %d: %+v written, %+v read back", i, a, b)
		}
	}
	if bm, om := back.Meta(), orig.Meta(); bm.Period != om.Period {
		t.Errorf("period %g read back, %g written", bm.Period, om.Period)
	}
	r1, _ := open()
	s1, err := Summarize(r1, 1e-4)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Summarize(mustReader(t, bytes.NewReader(buf.Bytes())), 1e-4)
	if err != nil {
		t.Fatal(err)
	}
	s1.Name, s2.Name = "", ""
	if s1 != s2 {
		t.Errorf("stats differ after the round trip:\n%v\n%v", s1, s2)
	}
}

func mustReader(t testing.TB, r io.Reader) Reader {
	t.Helper()
	rd, err := NewReader(r, "test", Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rd
}

func readString(t testing.TB, name, data string, opt Options) ([]Sample, Meta, error) {
	t.Helper()
	r, err := NewReader(strings.NewReader(data), name, opt)
	if err != nil {
		return nil, Meta{}, err
	}
	s, err := ReadAll(r, 1<<20)
	return s, r.Meta(), err
}

func writeFile(t *testing.T, dir, name, data string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
