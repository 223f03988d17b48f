package nightly

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func planOf(t *testing.T, dir, yaml string) *Plan {
	t.Helper()
	p := filepath.Join(dir, "matrix.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Expand(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

const twoBoards = `boards:
  - {name: a, board: sim}
  - {name: b, board: serial, port: /dev/ttyX, tags: [msp430]}
schedulers: [tile, inas, sonic]
traces: [t1.csv, rf-office]
repeat: 2
`

// TestCellIDsStable: the same matrix over the same files gives the same
// IDs; a file's contents change its cells' IDs; where a board is (its
// port) does not.
func TestCellIDsStable(t *testing.T) {
	dir := writeFiles(t, map[string]string{"t1.csv": "one"})
	p1 := planOf(t, dir, twoBoards)
	p2 := planOf(t, dir, twoBoards)
	if len(p1.Cells) != 2*3*2*2 || p1.SHA256 != p2.SHA256 {
		t.Fatalf("%d cells; plans %s and %s", len(p1.Cells), p1.SHA256, p2.SHA256)
	}
	ids := map[string]bool{}
	for i, c := range p1.Cells {
		if c.ID != p2.Cells[i].ID || ids[c.ID] || len(c.ID) != 12 {
			t.Fatalf("cell %d: %s vs %s (or repeated, or not 12 hex digits)", i, c.ID, p2.Cells[i].ID)
		}
		ids[c.ID] = true
	}
	moved := planOf(t, dir, strings.Replace(twoBoards, "/dev/ttyX", "/dev/ttyY", 1))
	if moved.SHA256 != p1.SHA256 {
		t.Error("a board's port changed its cells' IDs")
	}
	if err := os.WriteFile(filepath.Join(dir, "t1.csv"), []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	p3 := planOf(t, dir, twoBoards)
	for i, c := range p3.Cells {
		same := c.ID == p1.Cells[i].ID
		if same == (c.Trace == "t1") {
			t.Errorf("cell %s: ID changed %v after t1.csv changed", c.Name, !same)
		}
	}
}

func TestExclude(t *testing.T) {
	dir := writeFiles(t, map[string]string{"t1.csv": "one"})
	p := planOf(t, dir, twoBoards+"exclude:\n  - {board: b, scheduler: sonic}\n  - {tag: msp430, trace: 't*'}\n  - {board: sim, scheduler: inas, trace: rf-office}\n")
	for _, c := range p.Cells {
		if c.Board == "b" && (c.Scheduler == "sonic" || c.Trace == "t1") || c.Board == "a" && c.Scheduler == "inas" && c.Trace == "rf-office" {
			t.Errorf("cell %s not excluded", c.Name)
		}
	}
	// b: 3 schedulers x 2 traces less sonic (2) less t1 (2 more) = 2;
	// a: 6 less inas/rf-office (1) = 5; times 2 repeats.
	if len(p.Cells) != 14 || p.Excluded != 10 {
		t.Errorf("%d cells, %d excluded; want 14, 10", len(p.Cells), p.Excluded)
	}
}

// TestShards: the shards of a plan are disjoint, cover it, are balanced,
// and do not depend on anything but the plan.
func TestShards(t *testing.T) {
	dir := writeFiles(t, map[string]string{"t1.csv": "one"})
	for n := 1; n <= 5; n++ {
		seen := map[string]int{}
		for i := 1; i <= n; i++ {
			p := planOf(t, dir, twoBoards)
			if err := p.Select(Shard{i, n}, nil); err != nil {
				t.Fatal(err)
			}
			todo := p.Todo()
			if d := len(todo) - len(p.Cells)/n; d < 0 || d > 1 {
				t.Errorf("shard %d/%d: %d of %d cells", i, n, len(todo), len(p.Cells))
			}
			for _, c := range todo {
				seen[c.ID]++
			}
		}
		if len(seen) != 24 {
			t.Errorf("%d shards cover %d of 24 cells", n, len(seen))
		}
		for id, k := range seen {
			if k != 1 {
				t.Errorf("%d shards: cell %s in %d", n, id, k)
			}
		}
	}
	p := planOf(t, dir, twoBoards)
	if err := p.Select(Shard{1, 1}, []string{"b"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Todo() {
		if c.Board != "b" {
			t.Errorf("--boards b selected %s", c.Name)
		}
	}
	if err := p.Select(Shard{1, 1}, []string{"zz"}); err == nil || !strings.Contains(err.Error(), `no board "zz"`) {
		t.Errorf("unknown board: %v", err)
	}
}

func TestParseShard(t *testing.T) {
	good := map[string]Shard{"": {1, 1}, "1/1": {1, 1}, "2/4": {2, 4}}
	for s, want := range good {
		if got, err := ParseShard(s); err != nil || got != want {
			t.Errorf("ParseShard(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"0/2", "3/2", "1", "a/b", "1/0", "-1/2", "1/2/3", "1/100000"} {
		if _, err := ParseShard(s); err == nil {
			t.Errorf("ParseShard(%q) accepted", s)
		}
	}
}

func TestPlanRoundTrip(t *testing.T) {
	dir := writeFiles(t, map[string]string{"t1.csv": "one"})
	p := planOf(t, dir, twoBoards)
	if err := p.Select(Shard{2, 3}, nil); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "plan.json")
	if err := WritePlan(file, p); err != nil {
		t.Fatal(err)
	}
	back, err := ReadPlan(file)
	if err != nil {
		t.Fatal(err)
	}
	a, b := p.Todo(), back.Todo()
	if len(a) != len(b) || back.SHA256 != p.SHA256 || back.Shard != "2/3" {
		t.Fatalf("read back %d cells of %d, shard %q", len(b), len(a), back.Shard)
	}
	// An edited plan is refused.
	data, _ := os.ReadFile(file)
	data = []byte(strings.Replace(string(data), a[0].ID, "000000000000", 1))
	os.WriteFile(file, data, 0o644)
	if _, err := ReadPlan(file); err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Errorf("edited plan: %v", err)
	}
}

func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"1/2", "", "0/0", "9999/10000", "1/-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sh, err := ParseShard(s)
		if err != nil {
			return
		}
		if sh.I < 1 || sh.I > sh.N {
			t.Fatalf("ParseShard(%q) = %v", s, sh)
		}
		if back, err := ParseShard(sh.String()); err != nil || back != sh {
			t.Fatalf("%q: %v does not read back: %v, %v", s, sh, back, err)
		}
	})
}
