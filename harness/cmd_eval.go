package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/batteryless/harness/harness/fixedpoint"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/replay"
	"github.com/batteryless/harness/reports"
	"github.com/spf13/cobra"
)

// evalCacheVersion is part of every cache key: bump it when what eval
// computes or stores changes, so that older entries are never read.
const evalCacheVersion = "eval-1"

// maxBadListed bounds the bad files a result names (the count is exact).
const maxBadListed = 1000

// maxManifestLine bounds one line of a manifest.
const maxManifestLine = 64 << 10

type badFile struct {
	File string `json:"file"`
	Line int    `json:"line,omitempty"` // of the manifest, when there is one
	Why  string `json:"why"`
}

// evalResult is what eval measures over one labelled set.
type evalResult struct {
	Model       string    `json:"model"`
	ModelSHA256 string    `json:"model_sha256"`
	Data        string    `json:"data"`
	Labels      string    `json:"labels,omitempty"` // the manifest, when one was used
	DataHash    string    `json:"data_hash"`        // of every entry's name, label and bytes, in any order
	Rounding    string    `json:"rounding"`
	Classes     int       `json:"classes"`
	Evaluated   int       `json:"evaluated"`
	Top1Correct int       `json:"top1_correct"`
	Top1        float64   `json:"top1"`
	Top5Correct *int      `json:"top5_correct,omitempty"` // models with 5 or more classes
	Top5        *float64  `json:"top5,omitempty"`
	Confusion   [][]int   `json:"confusion"` // [label][predicted class]
	Bad         int       `json:"bad"`
	BadFiles    []badFile `json:"bad_files,omitempty"` // the first maxBadListed
	Jobs        int       `json:"jobs"`
	WallS       float64   `json:"wall_s"`
	PerSecond   float64   `json:"inferences_per_s"`
	Cached      bool      `json:"cached"`
	CachePath   string    `json:"cache_path,omitempty"`
}

// evalOptions says what to evaluate and how.
type evalOptions struct {
	data, labels string
	jobs         int
	failOnBad    bool
	rounding     fixedpoint.Rounding
	cache        bool
}

func newEvalCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "eval MODEL --data DIR",
		Short: "Measure a model's top-1 (and top-5) accuracy over a labelled set of raw int8 inputs",
		Long: `Run every input of a labelled set through the bit-exact reference executor and
report top-1 accuracy (top-5 when the model has 5 or more classes), the confusion
table and the throughput.

The set is a folder of raw input tensors (int8 bytes in NHWC order, exactly the
model's input size, as infer --input takes them), labelled either by a manifest
CSV (--labels FILE, or DIR/labels.csv) whose lines are "file,label" with file
relative to DIR and label the class index, or by one folder per class whose name
starts with the class index ("3", "03_dog"). Inputs are read one at a time, so a
set of any size runs in bounded memory.

A bad entry (an unreadable file, a wrong size, a label that is not a class of the
model) is named and skipped, or with --bad fail stops the run. Results are cached
under the user's cache folder, keyed by the model's bytes and every input's name,
label and bytes; --cache=false measures again.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rd, err := fixedpoint.ParseRounding(s.str("rounding"))
			if err != nil {
				return fmt.Errorf("--rounding: %w", err)
			}
			o := evalOptions{data: s.str("data"), labels: s.str("labels"), jobs: s.integer("jobs"),
				rounding: rd, cache: s.boolean("cache")}
			switch s.str("bad") {
			case "skip":
			case "fail":
				o.failOnBad = true
			default:
				return fmt.Errorf("--bad %q: want skip or fail", s.str("bad"))
			}
			res, err := evaluate(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			if s.json() {
				return reports.JSON(cmd.OutOrStdout(), res)
			}
			return printEval(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	f.String("data", "", "folder of raw int8 inputs: one folder per class, or files named by a manifest")
	f.String("labels", "", "manifest CSV of file,label lines (default: DIR/labels.csv when present)")
	f.Int("jobs", runtime.NumCPU(), "inferences run in parallel (one executor each)")
	f.String("bad", "skip", "a bad input: skip (name it and go on) or fail (stop with an error)")
	f.String("rounding", "double", "requantization rounding: double (TFLite Micro) or single (TFLite desktop, XNNPACK)")
	f.Bool("cache", true, "reuse and store results in the cache")
	return cmd
}

// evaluate measures the accuracy of the model at modelPath over the
// labelled set of o, from the cache when it holds this model and set.
func evaluate(ctx context.Context, modelPath string, o evalOptions) (*evalResult, error) {
	if o.data == "" {
		return nil, errors.New("--data is required: the folder of the labelled set")
	}
	if st, err := os.Stat(o.data); err != nil {
		return nil, fmt.Errorf("--data: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("--data %s: not a folder", o.data)
	}
	if o.jobs < 1 || o.jobs > 1024 {
		return nil, fmt.Errorf("--jobs %d: want 1 to 1024", o.jobs)
	}
	if o.labels == "" {
		if _, err := os.Stat(filepath.Join(o.data, "labels.csv")); err == nil {
			o.labels = filepath.Join(o.data, "labels.csv")
		}
	}
	modelBytes := modelFileBytes(modelPath)
	if modelBytes == nil {
		_, err := os.Stat(modelPath)
		return nil, fmt.Errorf("model: %w", err)
	}
	m, err := loadModel(modelPath)
	if err != nil {
		return nil, err
	}
	in, out := m.InputTensor(), m.OutputTensor()
	if in.Shape.N != 1 || out.Shape.N != 1 {
		return nil, fmt.Errorf("%s: eval runs batch-1 models; input %v, output %v", modelPath, in.Dims, out.Dims)
	}
	classes := out.Shape.Elems()
	sum := sha256.Sum256(modelBytes)
	res := &evalResult{Model: m.Name, ModelSHA256: hex.EncodeToString(sum[:]), Data: o.data, Labels: o.labels,
		Rounding: o.rounding.String(), Classes: classes, Jobs: o.jobs}

	// Pass one: the set's hash (and its bad entries), for the cache key.
	src := &evalSource{dir: o.data, manifest: o.labels, classes: classes, inputBytes: in.Bytes()}
	var hash [4]uint64
	if err := src.each(ctx, func(e evalEntry) error {
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%d\x00%s\x00", e.name, e.label, e.bad)
		h.Write(e.data)
		var d [32]byte
		h.Sum(d[:0])
		for i := range hash {
			hash[i] += binary.LittleEndian.Uint64(d[8*i:])
		}
		return nil
	}); err != nil {
		return nil, interrupted(ctx, err)
	}
	var hb [32]byte
	for i, v := range hash {
		binary.LittleEndian.PutUint64(hb[8*i:], v)
	}
	res.DataHash = hex.EncodeToString(hb[:])

	var cachePath string
	if o.cache {
		key := sha256.Sum256([]byte(strings.Join([]string{evalCacheVersion, res.ModelSHA256, res.DataHash,
			res.Rounding, strconv.FormatBool(o.failOnBad), strconv.Itoa(src.count)}, "\x00")))
		if dir, err := os.UserCacheDir(); err == nil {
			cachePath = filepath.Join(dir, "harness", "eval", hex.EncodeToString(key[:16])+".json")
		}
		if cached, ok := readEvalCache(cachePath, res); ok {
			return cached, nil
		}
	}

	// Pass two: the inferences, on o.jobs executors.
	res.Confusion = make([][]int, classes)
	for i := range res.Confusion {
		res.Confusion[i] = make([]int, classes)
	}
	top5 := 0
	start := time.Now()
	entries := make(chan evalEntry, 2*o.jobs)
	type outcome struct{ label, pred, rank int }
	outcomes := make(chan outcome, 2*o.jobs)
	var wg sync.WaitGroup
	for range o.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := refexec.NewWith(m, refexec.Options{Rounding: o.rounding})
			for en := range entries {
				if err := e.SetInput(en.data); err != nil {
					panic(err) // sizes are checked by the source
				}
				e.Invoke()
				v := tensorValues(out, e.Output())
				pred := replay.Argmax(v)
				// The label's rank: how many classes score above it, or
				// tie with it at a lower index.
				rank := 0
				for c, x := range v {
					if x > v[en.label] || (x == v[en.label] && c < en.label) {
						rank++
					}
				}
				outcomes <- outcome{en.label, pred, rank}
			}
		}()
	}
	collected := make(chan struct{})
	go func() {
		for oc := range outcomes {
			res.Evaluated++
			res.Confusion[oc.label][oc.pred]++
			if oc.pred == oc.label {
				res.Top1Correct++
			}
			if oc.rank < 5 {
				top5++
			}
		}
		close(collected)
	}()
	srcErr := src.each(ctx, func(e evalEntry) error {
		if e.bad != "" {
			if o.failOnBad {
				return fmt.Errorf("%s: %s", e.where(), e.bad)
			}
			res.Bad++
			if len(res.BadFiles) < maxBadListed {
				res.BadFiles = append(res.BadFiles, badFile{File: e.name, Line: e.line, Why: e.bad})
			}
			return nil
		}
		select {
		case entries <- e:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(entries)
	wg.Wait()
	close(outcomes)
	<-collected
	if srcErr != nil {
		return nil, interrupted(ctx, srcErr)
	}
	res.WallS = time.Since(start).Seconds()
	if res.Evaluated == 0 {
		return nil, fmt.Errorf("%s: no input could be evaluated (%d bad)", o.data, res.Bad)
	}
	res.Top1 = float64(res.Top1Correct) / float64(res.Evaluated)
	if classes >= 5 {
		t5 := float64(top5) / float64(res.Evaluated)
		res.Top5Correct, res.Top5 = &top5, &t5
	}
	if res.WallS > 0 {
		res.PerSecond = float64(res.Evaluated) / res.WallS
	}
	if cachePath != "" {
		// A cache that cannot be written costs the next run time, nothing more.
		_ = writeEvalCache(cachePath, res)
	}
	return res, nil
}

// readEvalCache returns the cached result at path if it is one for the
// same model, data and rounding as want.
func readEvalCache(path string, want *evalResult) (*evalResult, bool) {
	if path == "" {
		return nil, false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var r evalResult
	if json.Unmarshal(data, &r) != nil || r.ModelSHA256 != want.ModelSHA256 || r.DataHash != want.DataHash ||
		r.Rounding != want.Rounding || r.Classes != want.Classes || len(r.Confusion) != r.Classes {
		return nil, false
	}
	r.Cached, r.CachePath = true, path
	r.Model, r.Data, r.Labels, r.Jobs = want.Model, want.Data, want.Labels, want.Jobs
	return &r, true
}

// writeEvalCache stores r at path through a temporary file renamed into place.
func writeEvalCache(path string, r *evalResult) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	r.CachePath = path
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".eval-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// evalEntry is one input of a labelled set: its bytes and label, or why it
// cannot be used.
type evalEntry struct {
	name  string // as the manifest or the folder gives it
	line  int    // of the manifest; 0 for folders
	label int
	data  []byte
	bad   string
}

func (e evalEntry) where() string {
	if e.line > 0 {
		return fmt.Sprintf("%s (manifest line %d)", e.name, e.line)
	}
	return e.name
}

// evalSource streams the entries of a labelled set.
type evalSource struct {
	dir, manifest string
	classes       int
	inputBytes    int
	count         int // entries seen by the last each
}

// each calls f with every entry in turn, good or bad; an error from f, the
// context or the set's structure (a manifest that cannot be read, a class
// folder without a class index) stops it.
func (s *evalSource) each(ctx context.Context, f func(evalEntry) error) error {
	s.count = 0
	emit := func(e evalEntry, path string) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.count++
		if e.bad == "" {
			if e.label < 0 || e.label >= s.classes {
				e.bad = fmt.Sprintf("label %d is not a class of the model (0 to %d)", e.label, s.classes-1)
			} else {
				e.data, e.bad = readInput(path, s.inputBytes)
			}
		}
		return f(e)
	}
	if s.manifest != "" {
		return s.eachManifest(emit)
	}
	return s.eachFolder(emit)
}

// readInput reads an input file of exactly want bytes, reading at most one
// byte more; why says what is wrong otherwise.
func readInput(path string, want int) (data []byte, why string) {
	f, err := os.Open(path)
	if err != nil {
		return nil, oneLine(err.Error())
	}
	defer f.Close()
	data, err = io.ReadAll(io.LimitReader(f, int64(want)+1))
	if err != nil {
		return nil, oneLine(err.Error())
	}
	if len(data) != want {
		more := ""
		if len(data) > want {
			more = " or more"
		}
		return nil, fmt.Sprintf("%d%s bytes, the model's input takes %d", len(data), more, want)
	}
	return data, ""
}

func (s *evalSource) eachManifest(emit func(evalEntry, string) error) error {
	f, err := os.Open(s.manifest)
	if err != nil {
		return fmt.Errorf("--labels: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), maxManifestLine)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(strings.TrimSuffix(sc.Text(), "\r"))
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		rec, err := csv.NewReader(strings.NewReader(text)).Read()
		if err != nil || len(rec) != 2 {
			return fmt.Errorf("%s:%d: want file,label, got %q", s.manifest, line, text)
		}
		name, labelText := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		label, err := strconv.Atoi(labelText)
		if err != nil {
			if line == 1 {
				continue // a header
			}
			if err := emit(evalEntry{name: name, line: line, bad: fmt.Sprintf("label %q is not a class index", labelText)}, ""); err != nil {
				return err
			}
			continue
		}
		path := name
		if !filepath.IsAbs(path) {
			path = filepath.Join(s.dir, name)
		}
		if err := emit(evalEntry{name: name, line: line, label: label}, path); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s:%d: a line longer than %d bytes", s.manifest, line+1, maxManifestLine)
		}
		return fmt.Errorf("%s: %w", s.manifest, err)
	}
	return nil
}

// classOf reads the class index a folder name starts with.
func classOf(name string) (int, bool) {
	n := 0
	for n < len(name) && name[n] >= '0' && name[n] <= '9' {
		n++
	}
	if n == 0 || n > 9 {
		return 0, false
	}
	c, err := strconv.Atoi(name[:n])
	return c, err == nil
}

func (s *evalSource) eachFolder(emit func(evalEntry, string) error) error {
	top, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	folders := 0
	for _, d := range top {
		if !d.IsDir() {
			continue // stray files beside the class folders (a README)
		}
		label, ok := classOf(d.Name())
		if !ok {
			return fmt.Errorf("%s: the folder name does not start with a class index (want e.g. 3 or 03_dog), and there is no labels.csv", filepath.Join(s.dir, d.Name()))
		}
		folders++
		dir, err := os.Open(filepath.Join(s.dir, d.Name()))
		if err != nil {
			return fmt.Errorf("--data: %w", err)
		}
		for {
			// In chunks: a class folder of any size in bounded memory.
			chunk, err := dir.ReadDir(256)
			for _, fe := range chunk {
				name := filepath.Join(d.Name(), fe.Name())
				e := evalEntry{name: name, label: label}
				if !fe.Type().IsRegular() && fe.Type()&os.ModeSymlink == 0 {
					e.bad = "not a regular file"
				}
				if err := emit(e, filepath.Join(s.dir, name)); err != nil {
					dir.Close()
					return err
				}
			}
			if err == io.EOF || len(chunk) == 0 {
				break
			}
			if err != nil {
				dir.Close()
				return fmt.Errorf("%s: %w", d.Name(), err)
			}
		}
		dir.Close()
	}
	if folders == 0 {
		return fmt.Errorf("%s: no class folders and no labels.csv (give --labels FILE, or one folder per class named by its index)", s.dir)
	}
	return nil
}

func printEval(w io.Writer, r *evalResult) error {
	source := "measured"
	if r.Cached {
		source = "cached (" + r.CachePath + ")"
	}
	rows := [][]string{
		{"model", r.Model},
		{"data", r.Data},
		{"rounding", r.Rounding},
		{"inputs evaluated", strconv.Itoa(r.Evaluated)},
		{"top-1 accuracy", fmt.Sprintf("%.4f (%d/%d)", r.Top1, r.Top1Correct, r.Evaluated)},
	}
	if r.Top5 != nil {
		rows = append(rows, []string{"top-5 accuracy", fmt.Sprintf("%.4f (%d/%d)", *r.Top5, *r.Top5Correct, r.Evaluated)})
	}
	rows = append(rows,
		[]string{"bad inputs skipped", strconv.Itoa(r.Bad)},
		[]string{"throughput", fmt.Sprintf("%.0f inferences/s on %d jobs (%.2f s)", r.PerSecond, r.Jobs, r.WallS)},
		[]string{"result", source})
	if err := reports.Table(w, []string{"", ""}, rows, nil); err != nil {
		return err
	}
	if r.Classes <= 20 {
		header := []string{"label \\ predicted"}
		for c := range r.Classes {
			header = append(header, strconv.Itoa(c))
		}
		var conf [][]string
		for l, row := range r.Confusion {
			cells := []string{strconv.Itoa(l)}
			for _, n := range row {
				cells = append(cells, strconv.Itoa(n))
			}
			conf = append(conf, cells)
		}
		if err := reports.Table(w, header, conf, nil); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "confusion table: %d classes, in --json\n", r.Classes)
	}
	if len(r.BadFiles) > 0 {
		var bad [][]string
		for _, b := range r.BadFiles[:min(len(r.BadFiles), 10)] {
			where := b.File
			if b.Line > 0 {
				where += fmt.Sprintf(" (line %d)", b.Line)
			}
			bad = append(bad, []string{where, b.Why})
		}
		if err := reports.Table(w, []string{"skipped", "why"}, bad, nil); err != nil {
			return err
		}
		if r.Bad > 10 {
			fmt.Fprintf(w, "... and %d more (all in --json, up to %d)\n", r.Bad-10, maxBadListed)
		}
	}
	return nil
}
