package profiles

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ---------------------------------------------------------------------------
// Fields by path, and writing a profile.

// allSpecs are the required and the optional numbers, in file order.
var allSpecs = slices.Concat(specs, optionalSpecs)

func specOf(path string) *fieldSpec {
	for i := range allSpecs {
		if allSpecs[i].path == path {
			return &allSpecs[i]
		}
	}
	return nil
}

// FieldPaths lists the YAML paths of the numbers the profile has, in file
// order: every required one, and those of the optional sections present.
func (p *Profile) FieldPaths() []string {
	var paths []string
	for _, s := range allSpecs {
		if s.has == nil || s.has(p) {
			paths = append(paths, s.path)
		}
	}
	return paths
}

// Field returns the number at a YAML path (e.g. "costs.add.cycles") in SI
// base units; false when the path is no number of the schema or its
// optional section is absent.
func (p *Profile) Field(path string) (float64, bool) {
	s := specOf(path)
	if s == nil || s.has != nil && !s.has(p) {
		return 0, false
	}
	return s.get(p), true
}

// SetField sets the number at a YAML path (SI base units). Setting a field
// of an absent optional section adds the section, its other fields 0. The
// source is not changed.
func (p *Profile) SetField(path string, v float64) error {
	s := specOf(path)
	if s == nil {
		return fmt.Errorf("profile: %s: no such field", oneLine(path))
	}
	s.set(p, v)
	return nil
}

// YAML writes the profile in the file format Parse reads, with every
// number's source; header, if not empty, becomes comment lines at the top.
// Numbers are written with a unit of their dimension (an SI prefix where
// the value reads better with one) and in full precision: the file parses
// back to the same values.
func (p *Profile) YAML(header string) []byte {
	var b bytes.Buffer
	if header != "" {
		for _, l := range strings.Split(strings.TrimRight(header, "\n"), "\n") {
			b.WriteString(strings.TrimRight("# "+oneLine(l), " ") + "\n")
		}
	}
	fmt.Fprintf(&b, "name: %s\ndescription: %s\n", yamlString(p.Name), yamlString(p.Description))
	var write func(n *schemaNode, prefix string, depth int)
	write = func(n *schemaNode, prefix string, depth int) {
		indent := strings.Repeat("  ", depth)
		width := 0
		for _, k := range n.keys {
			if n.children[k].spec != nil {
				width = max(width, len(k))
			}
		}
		for _, k := range slices.Concat(n.keys, n.optional) {
			c, path := n.children[k], join(prefix, k)
			if c.str {
				continue
			}
			if c.spec == nil {
				if slices.Contains(n.optional, k) && !hasAny(p, path) {
					continue
				}
				if depth == 0 {
					b.WriteString("\n")
				}
				fmt.Fprintf(&b, "%s%s:\n", indent, k)
				write(c, path, depth+1)
				continue
			}
			val, unit := formatExact(c.spec.get(p), c.spec.dim)
			fmt.Fprintf(&b, "%s%s:%s {value: %s, unit: %s, source: %s}\n", indent, k, strings.Repeat(" ", width-len(k)+1),
				val, yamlString(unit), yamlString(p.Sources[path]))
		}
	}
	write(schema, "", 0)
	return b.Bytes()
}

// hasAny reports whether an optional section (or a section holding
// optional ones) at path has a number in p.
func hasAny(p *Profile, path string) bool {
	for _, s := range optionalSpecs {
		if strings.HasPrefix(s.path, path+".") && s.has(p) {
			return true
		}
	}
	return false
}

// yamlString quotes s as a YAML double-quoted scalar (Go's escapes are
// YAML's for the characters strconv.Quote escapes).
func yamlString(s string) string { return strconv.Quote(s) }

// formatExact formats v (SI base units) as a value and a unit of dimension
// d that toSI converts back to exactly v: with the prefix or multiple that
// reads best when that round trip is exact, else in the base unit.
func formatExact(v float64, d dimension) (string, string) {
	num := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	info := dims[d]
	base := ""
	if len(info.bases) > 0 {
		base = info.bases[0]
	} else {
		base = info.fixed[0].sym
	}
	exact := func(x float64, unit string) bool {
		y, ok := toSI(x, d, unit)
		return ok && y == v
	}
	switch {
	case d == dimBytes:
		for i := len(info.fixed) - 1; i > 0; i-- {
			f := info.fixed[i].factor
			if v >= f && math.Mod(v, f) == 0 && exact(v/f, info.fixed[i].sym) {
				return num(v / f), info.fixed[i].sym
			}
		}
	case len(info.bases) > 0 && v != 0 && !math.IsInf(v, 0) && !math.IsNaN(v):
		a := math.Abs(v)
		for _, pr := range displayPrefixes {
			if a >= math.Pow10(pr.exp)*(1-1e-12) || pr.exp == -12 {
				x := shiftDecimal(v, -pr.exp)
				if exact(x, pr.sym+base) {
					return num(x), pr.sym + base
				}
				break
			}
		}
	}
	return num(v), base
}
