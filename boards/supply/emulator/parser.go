package emulator

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// SCPI error codes the emulator reports, with the standard's messages.
const (
	errCommand         = -100
	errDataType        = -104
	errParamNotAllowed = -108
	errMissingParam    = -109
	errUndefinedHeader = -113
	errExecution       = -200
	errSettingsConflct = -221
	errOutOfRange      = -222
	errTooMuchData     = -223
	errIllegalValue    = -224
	errQueueOverflow   = -350
	// Keithley 2280S device-specific list errors.
	errTooManyPoints = 201
	errListLengths   = 202
)

var errMessages = map[int]string{
	errCommand:         "Command error",
	errDataType:        "Data type error",
	errParamNotAllowed: "Parameter not allowed",
	errMissingParam:    "Missing parameter",
	errUndefinedHeader: "Undefined header",
	errExecution:       "Execution error",
	errSettingsConflct: "Settings conflict",
	errOutOfRange:      "Data out of range",
	errTooMuchData:     "Too much data",
	errIllegalValue:    "Illegal parameter value",
	errQueueOverflow:   "Queue overflow",
	errTooManyPoints:   "Too many list points",
	errListLengths:     "List lengths not equivalent",
}

// scpiErr is an error a command puts in the error queue.
type scpiErr struct {
	code   int
	detail string
}

func (e *scpiErr) Error() string { return fmt.Sprintf("%d,%q", e.code, e.message()) }

func (e *scpiErr) message() string {
	m := errMessages[e.code]
	if m == "" {
		m = "Error"
	}
	if e.detail != "" {
		m += "; " + e.detail
	}
	return m
}

func fail(code int, format string, args ...any) *scpiErr {
	return &scpiErr{code: code, detail: fmt.Sprintf(format, args...)}
}

// node is one mnemonic of a command pattern: "VOLTage" has the short form
// VOLT and the long form VOLTAGE; "[:LEVel]" is optional; "CH<n>" takes a
// numeric suffix.
type node struct {
	short, long string
	optional    bool
	suffix      bool
}

type pattern []node

// compile turns a header as programming guides write it into a pattern:
// "[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]", "CH<n>:VOLTage",
// "*IDN". It panics on a malformed pattern (they are the emulator's own
// literals).
func compile(p string) pattern {
	var out pattern
	i := 0
	for i < len(p) {
		var n node
		if p[i] == '[' {
			n.optional = true
			i++
		}
		if i < len(p) && p[i] == ':' {
			i++
		}
		start := i
		for i < len(p) && (isLetter(p[i]) || p[i] == '*') {
			i++
		}
		name := p[start:i]
		if name == "" {
			panic("emulator: bad pattern " + p)
		}
		if strings.HasPrefix(p[i:], "<n>") {
			n.suffix = true
			i += 3
		}
		if n.optional {
			if i < len(p) && p[i] == ':' {
				i++
			}
			if i >= len(p) || p[i] != ']' {
				panic("emulator: bad pattern " + p)
			}
			i++
		}
		for j := 0; j < len(name); j++ {
			if c := name[j]; (c >= 'A' && c <= 'Z') || c == '*' {
				n.short += string(c)
			}
		}
		if n.short == "" {
			n.short = strings.ToUpper(name)
		}
		n.long = strings.ToUpper(name)
		out = append(out, n)
	}
	return out
}

func isLetter(c byte) bool { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') }

// matchToken matches one header token (upper case) against a node and
// returns its numeric suffix (0 when absent: the handler picks the
// default, the current channel on some instruments).
func matchToken(n node, tok string) (int, bool) {
	name := tok
	suffix := 0
	if n.suffix {
		end := len(tok)
		for end > 0 && tok[end-1] >= '0' && tok[end-1] <= '9' {
			end--
		}
		if end < len(tok) {
			v, err := strconv.Atoi(tok[end:])
			if err != nil || v < 1 || v > 99 {
				return 0, false
			}
			suffix = v
		}
		name = tok[:end]
	}
	return suffix, name == n.short || name == n.long
}

// match matches header tokens against a pattern, skipping optional nodes
// where needed, and returns the suffixes of the suffixed nodes in pattern
// order (0 for those absent).
func match(p pattern, toks []string) ([]int, bool) {
	var rec func(pi, ti int, acc []int) ([]int, bool)
	rec = func(pi, ti int, acc []int) ([]int, bool) {
		if pi == len(p) {
			return acc, ti == len(toks)
		}
		n := p[pi]
		if ti < len(toks) {
			if s, ok := matchToken(n, toks[ti]); ok {
				next := acc
				if n.suffix {
					next = append(append([]int(nil), acc...), s)
				}
				if r, ok := rec(pi+1, ti+1, next); ok {
					return r, true
				}
			}
		}
		if n.optional {
			next := acc
			if n.suffix {
				next = append(append([]int(nil), acc...), 0)
			}
			return rec(pi+1, ti, next)
		}
		return nil, false
	}
	return rec(0, 0, nil)
}

// unit is one program message unit: a header and its parameters.
type unit struct {
	header string   // as sent, without a leading ':' or the '?'
	root   bool     // the header started with ':'
	query  bool     // ends in '?'
	params []string // top-level comma-separated parameters, trimmed
}

// maxUnits bounds the units of one program message.
const maxUnits = 256

// parseMessage splits one program message (a line) into units at ';'
// outside quotes and parentheses, and each unit into header and
// parameters.
func parseMessage(line string) ([]unit, error) {
	var units []unit
	for _, raw := range splitTop(line, ';') {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		if len(units) == maxUnits {
			return nil, errors.New("too many units in one message")
		}
		u := unit{}
		head, rest := raw, ""
		if i := strings.IndexAny(raw, " \t"); i >= 0 {
			head, rest = raw[:i], strings.TrimSpace(raw[i+1:])
		}
		if strings.HasPrefix(head, ":") {
			u.root = true
			head = head[1:]
		}
		if strings.HasSuffix(head, "?") {
			u.query = true
			head = head[:len(head)-1]
		}
		if head == "" || strings.ContainsAny(head, "?\"'(),") {
			return nil, fmt.Errorf("bad header %q", raw)
		}
		u.header = head
		if rest != "" {
			for _, p := range splitTop(rest, ',') {
				u.params = append(u.params, strings.TrimSpace(p))
			}
		}
		units = append(units, u)
	}
	return units, nil
}

// splitTop splits s at sep where it is outside quotes and parentheses.
func splitTop(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			if depth > 0 {
				depth--
			}
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// number parses a numeric parameter with an optional unit suffix of the
// given base unit ("V", "A", "S") and SI prefix (m, u, k), or MIN/MAX/DEF.
func number(p, base string, minV, maxV, def float64) (float64, *scpiErr) {
	t := strings.ToUpper(strings.TrimSpace(p))
	switch t {
	case "MIN", "MINIMUM":
		return minV, nil
	case "MAX", "MAXIMUM":
		return maxV, nil
	case "DEF", "DEFAULT":
		return def, nil
	case "":
		return 0, fail(errMissingParam, "")
	}
	scale := 1.0
	if base != "" && strings.HasSuffix(t, base) {
		t = strings.TrimSuffix(t, base)
		switch {
		case strings.HasSuffix(t, "M"):
			scale, t = 1e-3, strings.TrimSuffix(t, "M")
		case strings.HasSuffix(t, "U"):
			scale, t = 1e-6, strings.TrimSuffix(t, "U")
		case strings.HasSuffix(t, "K"):
			scale, t = 1e3, strings.TrimSuffix(t, "K")
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || !plainNumber(t) {
		return 0, fail(errDataType, "%q is not a number", p)
	}
	v *= scale
	if v < minV-1e-12 || v > maxV+1e-12 {
		return 0, fail(errOutOfRange, "%g not in %g to %g", v, minV, maxV)
	}
	return v, nil
}

func plainNumber(s string) bool {
	s = strings.TrimSpace(s)
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '.' || c == '+' || c == '-' || c == 'E') {
			return false
		}
	}
	return true
}

// boolean parses ON/OFF/1/0.
func boolean(p string) (bool, *scpiErr) {
	switch strings.ToUpper(strings.TrimSpace(p)) {
	case "ON", "1":
		return true, nil
	case "OFF", "0":
		return false, nil
	case "":
		return false, fail(errMissingParam, "")
	}
	return false, fail(errIllegalValue, "%q is not ON/OFF/1/0", p)
}

// chanList parses "(@1)", "(@1,3)" or "(@1:3)".
func chanList(p string, channels int) ([]int, *scpiErr) {
	t := strings.TrimSpace(p)
	if !strings.HasPrefix(t, "(@") || !strings.HasSuffix(t, ")") {
		return nil, fail(errDataType, "%q is not a channel list", p)
	}
	var out []int
	for _, part := range strings.Split(t[2:len(t)-1], ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err1 != nil || err2 != nil || a < 1 || b > channels || a > b {
			return nil, fail(errOutOfRange, "channel list %q (channels 1 to %d)", p, channels)
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// quoted removes the quotes of a string parameter.
func quoted(p string) (string, *scpiErr) {
	t := strings.TrimSpace(p)
	if len(t) >= 2 && (t[0] == '"' || t[0] == '\'') && t[len(t)-1] == t[0] {
		return t[1 : len(t)-1], nil
	}
	return "", fail(errDataType, "%q is not a quoted string", p)
}

// chName parses "CH1", "CH2", ... as Rigol and Siglent name channels.
func chName(p string, channels int) (int, *scpiErr) {
	t := strings.ToUpper(strings.TrimSpace(p))
	if !strings.HasPrefix(t, "CH") {
		return 0, fail(errIllegalValue, "%q is not a channel name (CH1 ...)", p)
	}
	n, err := strconv.Atoi(t[2:])
	if err != nil || n < 1 || n > channels {
		return 0, fail(errIllegalValue, "no channel %q", p)
	}
	return n, nil
}
