package nightly

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/batteryless/harness/traces"
)

// PlanVersion is the version of plan.json's schema.
const PlanVersion = 1

// Cell is one replay of the matrix: a board, a model, a scheduler, a trace
// and the repeat number.
type Cell struct {
	// ID is stable: a hash of the axes, the run settings and the contents
	// of the files the cell reads. The same matrix over the same files
	// gives the same IDs on every machine.
	ID        string `json:"id"`
	Name      string `json:"name"` // board/model/scheduler/trace[#run]
	Board     string `json:"board"`
	Model     string `json:"model"`
	Scheduler string `json:"scheduler"`
	Trace     string `json:"trace"`
	Run       int    `json:"run"`
	// TraceArg is what `harness replay` is given: a file or
	// "bundled:NAME".
	TraceArg   string  `json:"trace_arg"`
	Inferences int     `json:"inferences"`
	Loop       bool    `json:"loop"`
	DeadlineS  float64 `json:"deadline_s,omitempty"`
	TimeoutS   float64 `json:"timeout_s"`
	// Hashes are the sha256 of what the cell reads ("trace", "model",
	// "input", "profile"); an embedded item (the bundled model, a bundled
	// trace, a named profile) is known by its name only. The firmware is
	// not: it is built on the runner that uses it (from the same commit),
	// and each result names the ELF it ran.
	Hashes map[string]string `json:"hashes"`
}

// Plan is a matrix expanded into cells, in a stable order (boards, models,
// schedulers, traces and repeats in the config's order).
type Plan struct {
	Version int `json:"version"`
	// SHA256 identifies the plan: the hash of its cells' IDs in order.
	SHA256      string  `json:"sha256"`
	Config      string  `json:"config"`
	Created     string  `json:"created"`
	Boards      []Board `json:"boards"`
	Models      []Model `json:"models"`
	Retries     int     `json:"retries"`
	NoInference string  `json:"no_inference"`
	HealthS     float64 `json:"health_timeout_s"`
	Cells       []Cell  `json:"cells"`
	Excluded    int     `json:"excluded"`
	// Selection is the part of the plan a run does (a shard, some boards);
	// empty means every cell.
	Shard    string   `json:"shard,omitempty"`
	OnBoards []string `json:"on_boards,omitempty"`
	Selected []string `json:"selected,omitempty"`
}

// traceRef is a trace of the config: its name, what replay is given, and
// the file to hash ("" for a bundled trace).
type traceRef struct{ Name, Arg, File string }

func (c *Config) traceRef(t string) traceRef {
	if name, ok := strings.CutPrefix(t, "bundled:"); ok {
		name = strings.TrimSuffix(name, ".csv")
		return traceRef{Name: name, Arg: "bundled:" + name}
	}
	p := c.resolve(t)
	if _, err := os.Stat(p); err != nil && isBundled(t) {
		name := strings.TrimSuffix(t, ".csv")
		return traceRef{Name: name, Arg: "bundled:" + name}
	}
	// A file (a missing one is named when the plan hashes it).
	return traceRef{Name: baseName(t, t), Arg: p, File: p}
}

func isBundled(name string) bool {
	for _, b := range traces.Bundled() {
		if b == name || strings.TrimSuffix(b, ".csv") == name {
			return true
		}
	}
	return false
}

// hasher hashes each file once per plan.
type hasher map[string]string

func (h hasher) file(p string) (string, error) {
	if v, ok := h[p]; ok {
		return v, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := sha256.New()
	if _, err := io.Copy(s, f); err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	v := hex.EncodeToString(s.Sum(nil))
	h[p] = v
	return v, nil
}

// DefaultELF is the emulated board's firmware when a board names none (as
// `harness replay --board qemu-stm32` finds it, from the working folder).
const DefaultELF = "firmware/build/stm32f4/firmware-noplan.elf"

// Expand makes the plan of a matrix: every combination of board, model,
// scheduler, trace and repeat, less the excluded ones. Every file the
// cells read must exist (a missing one is an error naming it), since its
// contents go into the cells' IDs.
func Expand(cfg *Config) (*Plan, error) {
	h := hasher{}
	p := &Plan{Version: PlanVersion, Config: cfg.Path, Created: time.Now().UTC().Format(time.RFC3339),
		Retries: cfg.Retries, NoInference: cfg.NoInference, HealthS: time.Duration(cfg.HealthTimeout).Seconds(),
		Models: cfg.Models}
	for _, b := range cfg.Boards {
		if b.Workers == 0 {
			// A real or emulated board is one resource; the simulated
			// board is as many as the machine has cores.
			b.Workers = 1
			if b.Kind == "sim" {
				b.Workers = runtime.NumCPU()
			}
		}
		p.Boards = append(p.Boards, b)
	}
	hashOf := func(what, file string) (string, error) {
		v, err := h.file(file)
		if err != nil {
			return "", fmt.Errorf("config %s: %s: %w", cfg.Path, what, err)
		}
		return v, nil
	}
	traceRefs := make([]traceRef, len(cfg.Traces))
	for i, t := range cfg.Traces {
		traceRefs[i] = cfg.traceRef(t)
	}
	for _, b := range p.Boards {
		boardHashes := map[string]string{}
		if b.Profile != "" {
			boardHashes["profile"] = "name:" + b.Profile
			if looksLikeFile(b.Profile) {
				v, err := hashOf("board "+b.Name+" profile", b.Profile)
				if err != nil {
					return nil, err
				}
				boardHashes["profile"] = v
			}
		}
		for _, m := range cfg.Models {
			hs := map[string]string{}
			for k, v := range boardHashes {
				hs[k] = v
			}
			hs["model"] = "bundled"
			if m.Path != "" {
				v, err := hashOf("model "+m.Name, m.Path)
				if err != nil {
					return nil, err
				}
				hs["model"] = v
			}
			if m.Input != "" {
				v, err := hashOf("model "+m.Name+" input", m.Input)
				if err != nil {
					return nil, err
				}
				hs["input"] = v
			}
			deadline := cfg.Deadline
			if m.Deadline > 0 {
				deadline = m.Deadline
			}
			for _, s := range cfg.Schedulers {
				for _, tr := range traceRefs {
					if excluded(cfg.Exclude, b, m, s, tr) {
						p.Excluded += cfg.Repeat
						continue
					}
					ch := map[string]string{}
					for k, v := range hs {
						ch[k] = v
					}
					ch["trace"] = "bundled:" + tr.Name
					if tr.File != "" {
						v, err := hashOf("trace "+tr.Name, tr.File)
						if err != nil {
							return nil, err
						}
						ch["trace"] = v
					}
					for run := 1; run <= cfg.Repeat; run++ {
						c := Cell{Board: b.Name, Model: m.Name, Scheduler: s, Trace: tr.Name, Run: run, TraceArg: tr.Arg,
							Inferences: cfg.Inferences, Loop: cfg.Loop, DeadlineS: time.Duration(deadline).Seconds(),
							TimeoutS: time.Duration(cfg.Timeout).Seconds(), Hashes: ch}
						c.Name = b.Name + "/" + m.Name + "/" + s + "/" + tr.Name
						if cfg.Repeat > 1 {
							c.Name += "#" + strconv.Itoa(run)
						}
						c.ID = cellID(b, c)
						p.Cells = append(p.Cells, c)
					}
				}
			}
		}
	}
	seen := map[string]string{}
	for _, c := range p.Cells {
		if other, ok := seen[c.ID]; ok {
			return nil, fmt.Errorf("config %s: cells %s and %s are the same run", cfg.Path, other, c.Name)
		}
		seen[c.ID] = c.Name
	}
	p.SHA256 = planHash(p.Cells)
	return p, nil
}

// cellID hashes what a cell does: its board (name, kind, profile, extra
// flags; not the port or supply, which say where the board is, not what
// it runs), its axes, the run settings and the files' contents.
func cellID(b Board, c Cell) string {
	keys := make([]string, 0, len(c.Hashes))
	for k := range c.Hashes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var s strings.Builder
	fmt.Fprintf(&s, "v%d\nboard=%s\nkind=%s\nprofile=%s\nargs=%q\nmodel=%s\nscheduler=%s\ntrace=%s\nrun=%d\ninferences=%d\nloop=%t\ndeadline=%g\n",
		PlanVersion, b.Name, b.Kind, b.Profile, b.Args, c.Model, c.Scheduler, c.Trace, c.Run, c.Inferences, c.Loop, c.DeadlineS)
	for _, k := range keys {
		fmt.Fprintf(&s, "%s=%s\n", k, c.Hashes[k])
	}
	sum := sha256.Sum256([]byte(s.String()))
	return hex.EncodeToString(sum[:6])
}

func planHash(cells []Cell) string {
	s := sha256.New()
	for _, c := range cells {
		io.WriteString(s, c.ID+"\n")
	}
	return hex.EncodeToString(s.Sum(nil))
}

// excluded reports whether an exclude entry matches the cell.
func excluded(ex []Exclude, b Board, m Model, s string, tr traceRef) bool {
	for _, e := range ex {
		if e.Board == "" && e.Model == "" && e.Scheduler == "" && e.Trace == "" && e.Tag == "" {
			continue
		}
		if e.Board != "" && !match(e.Board, b.Name, b.Kind) {
			continue
		}
		if e.Model != "" && !match(e.Model, m.Name, m.Path) {
			continue
		}
		if e.Scheduler != "" && !match(e.Scheduler, s) {
			continue
		}
		if e.Trace != "" && !match(e.Trace, tr.Name, tr.Arg) {
			continue
		}
		if e.Tag != "" && !match(e.Tag, b.Tags...) {
			continue
		}
		return true
	}
	return false
}

func match(pattern string, values ...string) bool {
	for _, v := range values {
		if v == "" {
			continue
		}
		if ok, err := path.Match(pattern, v); err == nil && ok || pattern == v {
			return true
		}
	}
	return false
}

// Shard is a 1-based slice i of n of a plan.
type Shard struct{ I, N int }

// ParseShard reads "i/n" (1 <= i <= n).
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{1, 1}, nil
	}
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n || n > 10000 {
		return Shard{}, fmt.Errorf("--shard %q: want i/n with 1 <= i <= n (e.g. 2/4)", s)
	}
	return Shard{i, n}, nil
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.I, s.N) }

// Select marks the part of the plan a run does: the cells of shard s (the
// plan's cells dealt round-robin in plan order, so that every shard gets
// its share of each board) on the named boards (all when none).
func (p *Plan) Select(s Shard, onBoards []string) error {
	for _, b := range onBoards {
		if p.board(b) == nil {
			var names []string
			for _, pb := range p.Boards {
				names = append(names, pb.Name)
			}
			return fmt.Errorf("--boards: no board %q in the plan (boards: %s)", b, strings.Join(names, ", "))
		}
	}
	p.Selected = nil
	p.Shard, p.OnBoards = "", onBoards
	if s.N > 1 {
		p.Shard = s.String()
	}
	if s.N <= 1 && len(onBoards) == 0 {
		return nil
	}
	k := 0
	for _, c := range p.Cells {
		if len(onBoards) > 0 && !contains(onBoards, c.Board) {
			continue
		}
		if k%s.N == s.I-1 {
			p.Selected = append(p.Selected, c.ID)
		}
		k++
	}
	if p.Selected == nil {
		p.Selected = []string{}
	}
	return nil
}

// Todo returns the cells the selection holds, in plan order.
func (p *Plan) Todo() []Cell {
	if p.Selected == nil {
		return p.Cells
	}
	in := map[string]bool{}
	for _, id := range p.Selected {
		in[id] = true
	}
	var out []Cell
	for _, c := range p.Cells {
		if in[c.ID] {
			out = append(out, c)
		}
	}
	return out
}

func (p *Plan) board(name string) *Board {
	for i := range p.Boards {
		if p.Boards[i].Name == name {
			return &p.Boards[i]
		}
	}
	return nil
}

// Cell returns the cell of that ID, or nil.
func (p *Plan) Cell(id string) *Cell {
	for i := range p.Cells {
		if p.Cells[i].ID == id {
			return &p.Cells[i]
		}
	}
	return nil
}

// maxPlanBytes bounds plan.json: a million-cell matrix is not a nightly.
const maxPlanBytes = 256 << 20

// ReadPlan reads DIR/plan.json.
func ReadPlan(file string) (*Plan, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var p Plan
	dec := json.NewDecoder(io.LimitReader(f, maxPlanBytes))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if p.Version != PlanVersion {
		return nil, fmt.Errorf("%s: plan version %d, this harness reads %d", file, p.Version, PlanVersion)
	}
	if got := planHash(p.Cells); got != p.SHA256 {
		return nil, fmt.Errorf("%s: the cells do not match the plan's sha256 (edited or cut short)", file)
	}
	return &p, nil
}

// WritePlan writes the plan as indented JSON, atomically.
func WritePlan(file string, p *Plan) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(file, append(b, '\n'))
}

// writeFileAtomic writes to a temporary file beside file and renames it
// into place: a reader never sees half a file.
func writeFileAtomic(file string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := os.Rename(name, file); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}
