package profiles

import "slices"

// ---------------------------------------------------------------------------
// Table.

// TableHeader is the header of the rows that Table returns.
var TableHeader = []string{"field", "value", "source"}

// Table returns one row per field for people: the field's path in the YAML
// file, its value with its unit, and its source. The first rows are the
// profile's name (with where it came from) and description.
func (p *Profile) Table() [][]string {
	rows := [][]string{
		{"name", p.Name, p.Source},
		{"description", p.Description, ""},
	}
	for _, s := range slices.Concat(specs, optionalSpecs) {
		if s.has != nil && !s.has(p) {
			continue
		}
		rows = append(rows, []string{s.path, formatSI(s.get(p), s.dim), p.Sources[s.path]})
	}
	return rows
}
