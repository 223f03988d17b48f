package digest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFileEqualsBytes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := []byte("time_s,power_w\n0,0.001\n")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := File(p)
	if err != nil || got != Bytes(data) || len(got) != 64 {
		t.Fatalf("File = %q, %v; Bytes = %q", got, err, Bytes(data))
	}
	if _, err := File(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("a missing file hashed")
	}
}
