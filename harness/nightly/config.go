// Package nightly runs a matrix of replays (boards x models x schedulers x
// traces) the way a nightly hardware CI needs: every cell a `harness
// replay` child process with a timeout, a health check per board first, a
// journal appended and fsynced per event so that a killed runner loses at
// most the cell in flight, resume and only-failed reruns, retries for
// infrastructure errors only, shards and their merge.
//
// The runner depends on the replay command's contract only (its exit
// codes, its --json object, its --log records), not on the engine behind
// it.
package nightly

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/batteryless/harness/harness/suggest"
	"github.com/spf13/viper"
	"gopkg.in/yaml.v3"
)

// Board kinds the runner knows how to pass on to `harness replay --board`.
var BoardKinds = []string{"sim", "qemu-stm32", "serial"}

// Board is one entry of the hardware map: a name for the reports, the
// board kind, and how to reach it.
type Board struct {
	Name    string   `json:"name"`
	Kind    string   `json:"board"`
	Profile string   `json:"profile,omitempty"`
	ELF     string   `json:"elf,omitempty"`    // qemu-stm32: the firmware
	Port    string   `json:"port,omitempty"`   // serial: the serial port
	Supply  string   `json:"supply,omitempty"` // serial: the supply's address
	Tags    []string `json:"tags,omitempty"`
	// Workers is how many cells run on the board at once (a real board:
	// 1; the simulated board: the machine's cores).
	Workers int `json:"workers"`
	// Args are extra flags passed to every replay on this board.
	Args []string `json:"args,omitempty"`
}

// Model is one model of the matrix, with its input.
type Model struct {
	Name  string `json:"name"`
	Path  string `json:"path,omitempty"`  // "" for the bundled model
	Input string `json:"input,omitempty"` // "" for the model's default input
	// Deadline, when not 0, overrides the matrix's deadline for this
	// model.
	Deadline Duration `json:"deadline,omitempty"`
}

// Exclude drops the cells that match every key it sets (a board's name,
// kind or tag; a model's name or path; a scheduler; a trace's name or
// path). Values may be path.Match patterns.
type Exclude struct {
	Board     string `json:"board,omitempty"`
	Model     string `json:"model,omitempty"`
	Scheduler string `json:"scheduler,omitempty"`
	Trace     string `json:"trace,omitempty"`
	Tag       string `json:"tag,omitempty"`
}

// Duration is a time.Duration that reads and writes as "10m".
type Duration time.Duration

// MarshalText writes the duration as Go's time.Duration does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration ("90s", "10m").
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Config is a nightly matrix, as read from its YAML file.
type Config struct {
	// Path is the file it was read from; relative paths inside it are
	// relative to its folder.
	Path       string    `json:"path"`
	Boards     []Board   `json:"boards"`
	Models     []Model   `json:"models"`
	Schedulers []string  `json:"schedulers"`
	Traces     []string  `json:"traces"`
	Inferences int       `json:"inferences"`
	Loop       bool      `json:"loop"`
	Repeat     int       `json:"repeat"`
	Timeout    Duration  `json:"timeout"`
	Retries    int       `json:"retries"`
	Deadline   Duration  `json:"deadline,omitempty"`
	Exclude    []Exclude `json:"exclude,omitempty"`
	// HealthTimeout bounds each board's health check.
	HealthTimeout Duration `json:"health_timeout"`
	// NoInference is the outcome of a replay whose trace ended before any
	// inference completed (exit 4): fail (the default) or error.
	NoInference string `json:"no_inference"`
}

// Defaults of the keys a config may leave out.
const (
	DefaultTimeout       = 10 * time.Minute
	DefaultHealthTimeout = 2 * time.Minute
)

// configKeys is the schema: every key, its type, and the keys of the
// entries of its lists of maps.
var (
	topKeys = map[string]string{
		"boards": "list", "models": "list", "schedulers": "strings", "traces": "strings",
		"inferences": "int", "loop": "bool", "repeat": "int", "timeout": "duration", "retries": "int",
		"deadline": "duration", "exclude": "list", "health_timeout": "duration", "no_inference": "string",
	}
	boardKeys = map[string]string{
		"name": "string", "board": "string", "profile": "string", "elf": "string", "port": "string",
		"supply": "string", "tags": "strings", "workers": "int", "args": "strings",
	}
	modelKeys   = map[string]string{"name": "string", "path": "string", "input": "string", "deadline": "duration"}
	excludeKeys = map[string]string{"board": "string", "model": "string", "scheduler": "string", "trace": "string", "tag": "string"}
)

// maxConfigBytes bounds a config file: a matrix is a few hundred lines.
const maxConfigBytes = 1 << 20

// Load reads a matrix from its YAML file (through viper) and checks it:
// an unknown key, a value of the wrong type or a missing required key is
// an error naming the file, the line and the key.
func Load(path string) (*Config, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if st.Size() > maxConfigBytes {
		return nil, fmt.Errorf("config %s: %d bytes, more than a matrix needs (limit %d)", path, st.Size(), maxConfigBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse reads a matrix from YAML; name is the file's path (for messages
// and for resolving relative paths).
func Parse(data []byte, name string) (*Config, error) {
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("config %s: %d bytes, more than a matrix needs (limit %d)", name, len(data), maxConfigBytes)
	}
	// yaml.v3 keeps the lines that viper drops: errors name them.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	d := &decoder{file: name, root: &root}
	cfg := &Config{Path: name}
	raw := v.AllSettings()
	d.checkKeys(raw, topKeys, nil)
	if d.err != nil {
		return nil, d.err
	}
	cfg.Inferences = d.integer(raw, "inferences", []string{"inferences"}, 1)
	cfg.Loop = d.boolean(raw, "loop", []string{"loop"}, false)
	cfg.Repeat = d.integer(raw, "repeat", []string{"repeat"}, 1)
	cfg.Retries = d.integer(raw, "retries", []string{"retries"}, 0)
	cfg.Timeout = d.duration(raw, "timeout", []string{"timeout"}, DefaultTimeout)
	cfg.HealthTimeout = d.duration(raw, "health_timeout", []string{"health_timeout"}, DefaultHealthTimeout)
	cfg.Deadline = d.duration(raw, "deadline", []string{"deadline"}, 0)
	cfg.NoInference = d.str(raw, "no_inference", []string{"no_inference"}, "fail")
	cfg.Schedulers = d.strings(raw, "schedulers", []string{"schedulers"})
	cfg.Traces = d.strings(raw, "traces", []string{"traces"})
	for i, m := range d.maps(raw, "boards", []string{"boards"}, boardKeys) {
		at := []string{"boards", strconv.Itoa(i)}
		b := Board{
			Name: d.str(m, "name", append(at, "name"), ""), Kind: d.str(m, "board", append(at, "board"), ""),
			Profile: d.str(m, "profile", append(at, "profile"), ""), ELF: d.str(m, "elf", append(at, "elf"), ""),
			Port: d.str(m, "port", append(at, "port"), ""), Supply: d.str(m, "supply", append(at, "supply"), ""),
			Tags: d.strings(m, "tags", append(at, "tags")), Workers: d.integer(m, "workers", append(at, "workers"), 0),
			Args: d.strings(m, "args", append(at, "args")),
		}
		cfg.Boards = append(cfg.Boards, b)
	}
	for i, m := range d.maps(raw, "models", []string{"models"}, modelKeys) {
		at := []string{"models", strconv.Itoa(i)}
		cfg.Models = append(cfg.Models, Model{
			Name: d.str(m, "name", append(at, "name"), ""), Path: d.str(m, "path", append(at, "path"), ""),
			Input: d.str(m, "input", append(at, "input"), ""), Deadline: d.duration(m, "deadline", append(at, "deadline"), 0),
		})
	}
	for i, m := range d.maps(raw, "exclude", []string{"exclude"}, excludeKeys) {
		at := []string{"exclude", strconv.Itoa(i)}
		cfg.Exclude = append(cfg.Exclude, Exclude{
			Board: d.str(m, "board", append(at, "board"), ""), Model: d.str(m, "model", append(at, "model"), ""),
			Scheduler: d.str(m, "scheduler", append(at, "scheduler"), ""), Trace: d.str(m, "trace", append(at, "trace"), ""),
			Tag: d.str(m, "tag", append(at, "tag"), ""),
		})
	}
	if d.err != nil {
		return nil, d.err
	}
	if err := cfg.validate(d); err != nil {
		return nil, err
	}
	return cfg, nil
}

// validate checks what the types alone do not: required keys, ranges,
// board kinds, unique names.
func (c *Config) validate(d *decoder) error {
	switch {
	case len(c.Boards) == 0:
		return d.errorf([]string{"boards"}, "at least one board is needed")
	case len(c.Schedulers) == 0:
		return d.errorf([]string{"schedulers"}, "at least one scheduler is needed")
	case len(c.Traces) == 0:
		return d.errorf([]string{"traces"}, "at least one trace is needed")
	case c.Inferences < 1:
		return d.errorf([]string{"inferences"}, "want at least 1, got %d", c.Inferences)
	case c.Repeat < 1 || c.Repeat > 1000:
		return d.errorf([]string{"repeat"}, "want 1 to 1000, got %d", c.Repeat)
	case c.Retries < 0 || c.Retries > 10:
		return d.errorf([]string{"retries"}, "want 0 to 10, got %d", c.Retries)
	case c.Timeout <= 0:
		return d.errorf([]string{"timeout"}, "want a positive duration, got %s", time.Duration(c.Timeout))
	case c.HealthTimeout <= 0:
		return d.errorf([]string{"health_timeout"}, "want a positive duration, got %s", time.Duration(c.HealthTimeout))
	case c.Deadline < 0:
		return d.errorf([]string{"deadline"}, "want a positive duration, got %s", time.Duration(c.Deadline))
	case c.NoInference != "fail" && c.NoInference != "error":
		return d.errorf([]string{"no_inference"}, "want fail or error, got %q", c.NoInference)
	}
	if len(c.Models) == 0 {
		// The bundled model, as every command defaults to.
		c.Models = []Model{{Name: "bundled"}}
	}
	names := map[string]bool{}
	for i := range c.Boards {
		b := &c.Boards[i]
		at := []string{"boards", strconv.Itoa(i)}
		if b.Name == "" {
			return d.errorf(append(at, "name"), "a board needs a name")
		}
		if !validName(b.Name) {
			return d.errorf(append(at, "name"), "%q: use letters, digits, '-', '_' and '.'", b.Name)
		}
		if names[b.Name] {
			return d.errorf(append(at, "name"), "board %q is named twice", b.Name)
		}
		names[b.Name] = true
		if !contains(BoardKinds, b.Kind) {
			return d.errorf(append(at, "board"), "%q: want one of %s", b.Kind, strings.Join(BoardKinds, ", "))
		}
		if b.Kind == "serial" && b.Port == "" {
			return d.errorf(append(at, "port"), "a serial board needs its port")
		}
		if b.Workers < 0 || b.Workers > 256 {
			return d.errorf(append(at, "workers"), "want 0 (the default) to 256, got %d", b.Workers)
		}
		if b.ELF != "" {
			b.ELF = c.resolve(b.ELF)
		}
		if b.Profile != "" && looksLikeFile(b.Profile) {
			b.Profile = c.resolve(b.Profile)
		}
	}
	modelNames := map[string]bool{}
	for i := range c.Models {
		m := &c.Models[i]
		at := []string{"models", strconv.Itoa(i)}
		if m.Path == "bundled" {
			m.Path = ""
		}
		if m.Path != "" {
			m.Path = c.resolve(m.Path)
		}
		if m.Input != "" {
			m.Input = c.resolve(m.Input)
		}
		if m.Name == "" {
			m.Name = baseName(m.Path, "bundled")
		}
		if modelNames[m.Name] {
			return d.errorf(append(at, "name"), "two models named %q: give one a name", m.Name)
		}
		modelNames[m.Name] = true
		if m.Deadline < 0 {
			return d.errorf(append(at, "deadline"), "want a positive duration")
		}
	}
	seen := map[string]bool{}
	for i, s := range c.Schedulers {
		if s == "" || seen[s] {
			return d.errorf([]string{"schedulers", strconv.Itoa(i)}, "empty or repeated scheduler %q", s)
		}
		seen[s] = true
	}
	traceNames := map[string]bool{}
	for i, t := range c.Traces {
		if t == "" {
			return d.errorf([]string{"traces", strconv.Itoa(i)}, "empty trace")
		}
		r := c.traceRef(t)
		if traceNames[r.Name] {
			return d.errorf([]string{"traces", strconv.Itoa(i)}, "two traces named %q", r.Name)
		}
		traceNames[r.Name] = true
	}
	return nil
}

func validName(s string) bool {
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return s != ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// looksLikeFile tells a profile file from an embedded profile's name.
func looksLikeFile(s string) bool {
	return strings.ContainsAny(s, "/\\") || strings.HasSuffix(s, ".yaml") || strings.HasSuffix(s, ".yml")
}

// resolve makes a path of the config relative to the config's folder.
func (c *Config) resolve(p string) string {
	if filepath.IsAbs(p) || c.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}

// baseName is a file's name without folder and extension.
func baseName(p, def string) string {
	if p == "" {
		return def
	}
	b := filepath.Base(p)
	if ext := filepath.Ext(b); ext != "" && ext != b {
		b = strings.TrimSuffix(b, ext)
	}
	return b
}

// decoder reads viper's map of a config strictly, naming the key and its
// line at the first error.
type decoder struct {
	file string
	root *yaml.Node
	err  error
}

// errorf is an error at a key path ("boards", "0", "name").
func (d *decoder) errorf(at []string, format string, args ...any) error {
	loc := d.file
	if line := lineOf(d.root, at); line > 0 {
		loc += ":" + strconv.Itoa(line)
	}
	return fmt.Errorf("config %s: %s: %s", loc, keyPath(at), fmt.Sprintf(format, args...))
}

func (d *decoder) fail(at []string, format string, args ...any) {
	if d.err == nil {
		d.err = d.errorf(at, format, args...)
	}
}

// keyPath writes boards.0.name as boards[0].name.
func keyPath(at []string) string {
	var b strings.Builder
	for i, k := range at {
		if _, err := strconv.Atoi(k); err == nil {
			b.WriteString("[" + k + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(k)
	}
	return b.String()
}

// checkKeys refuses keys the schema does not know, suggesting the nearest
// known one.
func (d *decoder) checkKeys(m map[string]any, known map[string]string, at []string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := known[k]; !ok {
			msg := "unknown key"
			names := make([]string, 0, len(known))
			for n := range known {
				names = append(names, n)
			}
			if near := suggest.Nearest(k, names); near != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", near)
			}
			d.fail(append(append([]string(nil), at...), k), "%s", msg)
		}
	}
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	case nil:
		return "nothing"
	default:
		return fmt.Sprintf("%T %v", v, v)
	}
}

func (d *decoder) str(m map[string]any, k string, at []string, def string) string {
	v, ok := m[k]
	if !ok || v == nil {
		return def
	}
	s, ok := v.(string)
	if !ok {
		d.fail(at, "want a string, got %s", describe(v))
		return def
	}
	return s
}

func (d *decoder) integer(m map[string]any, k string, at []string, def int) int {
	v, ok := m[k]
	if !ok || v == nil {
		return def
	}
	switch x := v.(type) {
	case int:
		return x
	case int64:
		return int(x)
	case uint64:
		if x < 1<<31 {
			return int(x)
		}
	case float64:
		if x == float64(int(x)) && x < 1<<31 && x > -(1<<31) {
			return int(x)
		}
	}
	d.fail(at, "want an integer, got %s", describe(v))
	return def
}

func (d *decoder) boolean(m map[string]any, k string, at []string, def bool) bool {
	v, ok := m[k]
	if !ok || v == nil {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		d.fail(at, "want true or false, got %s", describe(v))
		return def
	}
	return b
}

func (d *decoder) duration(m map[string]any, k string, at []string, def time.Duration) Duration {
	v, ok := m[k]
	if !ok || v == nil {
		return Duration(def)
	}
	s, ok := v.(string)
	if ok {
		if dur, err := time.ParseDuration(s); err == nil {
			return Duration(dur)
		}
	}
	if n, ok := v.(int); ok && n == 0 {
		return 0
	}
	d.fail(at, "want a duration such as 90s or 10m, got %s", describe(v))
	return Duration(def)
}

func (d *decoder) strings(m map[string]any, k string, at []string) []string {
	v, ok := m[k]
	if !ok || v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		d.fail(at, "want a list of strings, got %s", describe(v))
		return nil
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			d.fail(append(append([]string(nil), at...), strconv.Itoa(i)), "want a string, got %s", describe(e))
			return nil
		}
		out = append(out, s)
	}
	return out
}

// maps reads a list of maps whose keys must be in known.
func (d *decoder) maps(m map[string]any, k string, at []string, known map[string]string) []map[string]any {
	v, ok := m[k]
	if !ok || v == nil {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		d.fail(at, "want a list of maps, got %s", describe(v))
		return nil
	}
	var out []map[string]any
	for i, e := range list {
		here := append(append([]string(nil), at...), strconv.Itoa(i))
		em, ok := e.(map[string]any)
		if !ok {
			d.fail(here, "want a map, got %s", describe(e))
			return nil
		}
		// viper keeps the keys inside lists as written: compare them
		// as it compares the others, without case.
		low := make(map[string]any, len(em))
		for kk, vv := range em {
			low[strings.ToLower(kk)] = vv
		}
		d.checkKeys(low, known, here)
		out = append(out, low)
	}
	return out
}

// lineOf finds the line of a key path in the YAML document (0 when it
// cannot).
func lineOf(root *yaml.Node, at []string) int {
	n := root
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, k := range at {
		switch n.Kind {
		case yaml.MappingNode:
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if strings.EqualFold(n.Content[i].Value, k) {
					line = n.Content[i].Line
					n = n.Content[i+1]
					found = true
					break
				}
			}
			if !found {
				return line
			}
		case yaml.SequenceNode:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
		default:
			return line
		}
	}
	return line
}
