package outfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRefusesAnInput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "t.csv")
	if err := os.WriteFile(in, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Another path to the same file: a symlink and a hard link.
	sym := filepath.Join(dir, "sym.csv")
	hard := filepath.Join(dir, "hard.csv")
	if err := os.Symlink(in, sym); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(in, hard); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{in, sym, hard, filepath.Join(dir, ".", "t.csv")} {
		if _, err := Create(out, in); !errors.Is(err, ErrIsInput) {
			t.Errorf("Create(%s) with input %s: %v, want ErrIsInput", out, in, err)
		}
	}
	if b, _ := os.ReadFile(in); string(b) != "keep me" {
		t.Fatalf("the input changed: %q", b)
	}
}

func TestCommitAndAbort(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.txt")
	if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Create(out)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("half"))
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Fatalf("the output changed before Commit: %q", b)
	}
	f.Abort()
	if b, _ := os.ReadFile(out); string(b) != "old" {
		t.Fatalf("Abort changed the output: %q", b)
	}
	if err := WriteFile(out, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "new" {
		t.Fatalf("after WriteFile: %q", b)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*partial*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
}
