// Package reports turns results into what people and machines read: the
// tables every command prints, JSON output, and (later) the per-cycle logs,
// JUnit XML and HTML reports.
package reports

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// Table renders a table for people: a header, rows, and an optional footer
// row (totals).
func Table(w io.Writer, header []string, rows [][]string, footer []string) error {
	// Headers are printed as written: automatic formatting would turn
	// "mW" into "M W" and "brown-outs" into "BROWN - OUTS".
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
	t.Header(toAny(header)...)
	if err := t.Bulk(rows); err != nil {
		return fmt.Errorf("table: %w", err)
	}
	if footer != nil {
		t.Footer(toAny(footer)...)
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("table: %w", err)
	}
	return nil
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// JSON writes v as indented JSON followed by a newline.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("json output: %w", err)
	}
	return nil
}
