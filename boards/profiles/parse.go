package profiles

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ---------------------------------------------------------------------------
// Parsing.

// parser walks a YAML tree against the schema.
type parser struct {
	file  string
	p     *Profile
	lines map[string]int // field path -> line of its value
}

func (ps *parser) errf(line int, field, format string, args ...any) error {
	return &FieldError{File: ps.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// resolve follows aliases (bounded: an alias never points at an alias).
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; i < 4 && n != nil && n.Kind == yaml.AliasNode; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing (null)"
		}
		return "a scalar"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	return "an unknown node"
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// pair is one key and value of a mapping.
type pair struct {
	key  string
	line int // the key's line
	val  *yaml.Node
}

// mapping checks that n is a mapping and calls fn on its pairs in document
// order, each after checking that its key is one of allowed or optional and
// appears once; then it reports the first key of allowed that is missing,
// at line (the line of the mapping's own key).
func (ps *parser) mapping(n *yaml.Node, field string, line int, allowed, optional []string, want string, fn func(pair) error) error {
	if n == nil || n.Kind != yaml.MappingNode {
		what := "nothing"
		if n != nil {
			what = kindName(n)
			line = n.Line
		}
		return ps.errf(line, field, "want %s, got %s", want, what)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := resolve(n.Content[i])
		if k == nil || k.Kind != yaml.ScalarNode {
			l := n.Line
			if k != nil {
				l = k.Line
			}
			return ps.errf(l, field, "keys must be plain names, got %s", kindNameOr(k))
		}
		if !slices.Contains(allowed, k.Value) && !slices.Contains(optional, k.Value) {
			return ps.errf(k.Line, join(field, quoteKey(k.Value)), "unknown field (want %s)", strings.Join(slices.Concat(allowed, optional), ", "))
		}
		if first, dup := seen[k.Value]; dup {
			return ps.errf(k.Line, join(field, k.Value), "duplicate field (first at line %d)", first)
		}
		seen[k.Value] = k.Line
		if err := fn(pair{key: k.Value, line: k.Line, val: resolve(n.Content[i+1])}); err != nil {
			return err
		}
	}
	for _, a := range allowed {
		if _, ok := seen[a]; !ok {
			return ps.errf(line, join(field, a), "missing field")
		}
	}
	return nil
}

var plainKeyRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// quoteKey returns a key as it can appear in a field path: as is when plain,
// else quoted (and cut to 64 bytes).
func quoteKey(k string) string {
	if plainKeyRE.MatchString(k) {
		return k
	}
	if len(k) > 64 {
		k = k[:64] + "..."
	}
	return strconv.Quote(k)
}

func kindNameOr(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	return kindName(n)
}

// section parses a mapping of the schema, in document order.
func (ps *parser) section(n *yaml.Node, s *schemaNode, field string, line int) error {
	return ps.mapping(n, field, line, s.keys, s.optional, "a mapping", func(kv pair) error {
		child, path := s.children[kv.key], join(field, kv.key)
		switch {
		case child.str:
			return ps.str(kv.val, path, kv.line)
		case child.spec != nil:
			return ps.quantity(kv.val, child.spec, kv.line)
		}
		return ps.section(kv.val, child, path, kv.line)
	})
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// str parses a top-level string field.
func (ps *parser) str(n *yaml.Node, field string, line int) error {
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		return ps.errf(line, field, "want a string, got %s", kindNameOr(n))
	}
	ps.lines[field] = n.Line
	switch field {
	case "name":
		ps.p.Name = n.Value
	case "description":
		ps.p.Description = n.Value
	}
	return nil
}

// quantity parses {value, unit, source} into the field of spec.
func (ps *parser) quantity(n *yaml.Node, spec *fieldSpec, line int) error {
	vals := map[string]*yaml.Node{}
	err := ps.mapping(n, spec.path, line, quantityKeys, nil, "a quantity {value, unit, source}", func(kv pair) error {
		vals[kv.key] = kv.val
		return nil
	})
	if err != nil {
		return err
	}
	vn, un, sn := vals["value"], vals["unit"], vals["source"]

	// The value: a YAML number.
	vf := spec.path + ".value"
	if vn.Kind != yaml.ScalarNode || (vn.ShortTag() != "!!int" && vn.ShortTag() != "!!float") {
		what := kindName(vn)
		if vn.Kind == yaml.ScalarNode && vn.ShortTag() != "!!null" {
			what = strconv.Quote(vn.Value)
		}
		return ps.errf(vn.Line, vf, "want a number, got %s", what)
	}
	var v float64
	if err := vn.Decode(&v); err != nil {
		return ps.errf(vn.Line, vf, "%q is not a number", vn.Value)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return ps.errf(vn.Line, vf, "%s must be finite and not negative", vn.Value)
	}

	// The unit: one of the field's dimension.
	uf := spec.path + ".unit"
	if un.Kind != yaml.ScalarNode || un.ShortTag() == "!!null" {
		return ps.errf(un.Line, uf, "want a unit, got %s", kindName(un))
	}
	si, ok := toSI(v, spec.dim, un.Value)
	if !ok {
		return ps.errf(un.Line, uf, "%s", unitError(spec.dim, un.Value))
	}
	if math.IsInf(si, 0) || math.IsNaN(si) {
		return ps.errf(vn.Line, vf, "%s %s overflows", vn.Value, un.Value)
	}
	if spec.dim == dimBytes && (si != math.Trunc(si) || si > 1<<53) {
		return ps.errf(vn.Line, vf, "%s %s is not a whole number of bytes (at most 2^53)", vn.Value, un.Value)
	}

	// The source: a non-empty string.
	sf := spec.path + ".source"
	if sn.Kind != yaml.ScalarNode || sn.ShortTag() == "!!null" || strings.TrimSpace(sn.Value) == "" {
		return ps.errf(sn.Line, sf, "want a non-empty source (a document, a measurement, or \"assumed: why\")")
	}

	spec.set(ps.p, si)
	ps.p.Sources[spec.path] = strings.TrimSpace(sn.Value)
	ps.lines[spec.path] = vn.Line
	return nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// yamlParserProblems are the problems of yaml.v3's parser (as opposed to its
// scanner). yaml.v3 v3.0.1 reports their line 0-based (decode.go, fail: only
// scanner errors get the +1), and no line at all for 0.
var yamlParserProblems = []string{
	"did not find expected <stream-start>",
	"did not find expected <document start>",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"found undefined tag handle",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found duplicate %TAG directive",
}

// yamlError turns an error of the YAML library into one line with file:line
// (or file alone when the library gives no line).
//
// yaml.v3 reports a parser error at the start of the enclosing block or flow
// collection (its context mark), and 0-based. For such errors in files up to
// refineMaxBytes, the line is instead the first line at which the file's
// prefix fails with the same error: where a reader would look.
func yamlError(file string, data []byte, err error) error {
	msg := oneLine(err.Error())
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return fmt.Errorf("%s: %s", file, msg)
	}
	line, _ := strconv.Atoi(m[1]) // 0 when absent
	if slices.Contains(yamlParserProblems, m[2]) {
		line++
		if l := firstFailingLine(data, err.Error()); l > 0 {
			line = l
		}
	}
	if line <= 0 {
		return fmt.Errorf("%s: yaml: %s", file, m[2])
	}
	return fmt.Errorf("%s:%d: yaml: %s", file, line, m[2])
}

// refineMaxBytes bounds the files whose parser errors firstFailingLine
// locates.
const refineMaxBytes = 64 << 10

// firstFailingLine returns the 1-based number of the first line such that
// the file up to and including it fails to parse with the error msg, or 0 if
// the file is too large to search. The parser streams, so once a prefix
// holds the offending token it fails as the whole file does, and shorter
// prefixes fail otherwise or not at all: a binary search finds the line in
// a few parses.
func firstFailingLine(data []byte, msg string) int {
	if len(data) > refineMaxBytes {
		return 0
	}
	var ends []int // ends[k] is the end of line k+1
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	fails := func(k int) bool {
		err := checkYAML(data[:ends[k]])
		return err != nil && err.Error() == msg
	}
	lo, hi := 0, len(ends)-1
	if !fails(hi) {
		return 0
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo + 1
}

// checkYAML parses every document of data, never panicking.
func checkYAML(data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// decodeYAML decodes exactly one YAML document, never panicking.
func decodeYAML(data []byte, file string) (root *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("%s: yaml: %s", file, oneLine(fmt.Sprint(r)))
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s:1: profile: empty file", file)
		}
		return nil, yamlError(file, data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, yamlError(file, data, err)
		}
		return nil, fmt.Errorf("%s:%d: profile: a second YAML document; a profile is one document", file, extra.Line)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("%s:1: profile: empty file", file)
	}
	return resolve(doc.Content[0]), nil
}

// Parse parses and validates a profile from YAML. name is the file
// name used in error messages and recorded as the profile's Source.
func Parse(data []byte, name string) (*Profile, error) {
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("%s: profile: %d bytes, more than the %d-byte limit", oneLine(name), len(data), MaxBytes)
	}
	p, err := parse(data, oneLine(name))
	if err != nil {
		return nil, err
	}
	p.Source = name
	return p, nil
}

func parse(data []byte, file string) (*Profile, error) {
	root, err := decodeYAML(data, file)
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, fmt.Errorf("%s:1: profile: empty file", file)
	}
	ps := &parser{file: file, p: &Profile{Sources: map[string]string{}}, lines: map[string]int{}}
	if err := ps.section(root, schema, "", root.Line); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) && fe.Field == "" {
			fe.Field = "profile"
		}
		return nil, err
	}
	if err := ps.p.Validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.File, fe.Line = file, ps.lines[fe.Field]
			return nil, fe
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return ps.p, nil
}
