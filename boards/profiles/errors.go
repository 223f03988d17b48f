package profiles

import (
	"fmt"
	"strings"
	"unicode"
)

// ---------------------------------------------------------------------------
// Errors.

// FieldError is an error about one field of a profile. Its message is one
// line: "file:line: field: problem" (without "line:" when unknown, without
// "file:" when the profile has no source).
type FieldError struct {
	File  string // file name, or the profile's Source
	Line  int    // 1-based; 0 if unknown
	Field string // path of the field, e.g. "power.voff"
	Msg   string
}

func (e *FieldError) Error() string {
	var s string
	switch {
	case e.File != "" && e.Line > 0:
		s = fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
	case e.File != "":
		s = fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Msg)
	default:
		s = fmt.Sprintf("%s: %s", e.Field, e.Msg)
	}
	return oneLine(s)
}

// oneLine replaces control characters and line separators with spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) {
			return ' '
		}
		return r
	}, s)
}
