package traces

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// lineReader hands out the lines of a stream one by one, without their line
// endings, never holding more than one buffer of MaxLineBytes+2 bytes.
type lineReader struct {
	br   *bufio.Reader
	file string
	line int // number of the line last returned
	err  error
	eof  bool
}

func newBufReader(r io.Reader) *bufio.Reader {
	if br, ok := r.(*bufio.Reader); ok && br.Size() >= MaxLineBytes+2 {
		return br
	}
	return bufio.NewReaderSize(r, MaxLineBytes+2)
}

func newLineReader(br *bufio.Reader, file string) *lineReader {
	return &lineReader{br: br, file: file}
}

var bom = []byte("\xef\xbb\xbf")

// next returns the next line (valid until the following call) and its number,
// io.EOF after the last line, or an *Error.
func (l *lineReader) next() ([]byte, error) {
	if l.err != nil {
		return nil, l.err
	}
	if l.eof {
		l.err = io.EOF
		return nil, l.err
	}
	b, err := l.br.ReadSlice('\n')
	l.line++
	switch {
	case err == nil:
	case err == io.EOF:
		l.eof = true
		if len(b) == 0 {
			l.line--
			l.err = io.EOF
			return nil, l.err
		}
	case errors.Is(err, bufio.ErrBufferFull):
		l.err = errorf(l.file, l.line, "line is longer than %d bytes", MaxLineBytes)
		return nil, l.err
	default:
		l.err = &Error{File: l.file, Line: l.line, Msg: "read error: " + oneLine(err.Error()), Err: err}
		return nil, l.err
	}
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	if l.line == 1 {
		b = bytes.TrimPrefix(b, bom)
	}
	if len(b) > MaxLineBytes {
		l.err = errorf(l.file, l.line, "line is longer than %d bytes", MaxLineBytes)
		return nil, l.err
	}
	return b, nil
}

// fail makes err final and returns it.
func (l *lineReader) fail(err error) error {
	l.err = err
	return err
}

// errf makes a final *Error at the current line.
func (l *lineReader) errf(format string, args ...any) error {
	return l.fail(errorf(l.file, l.line, format, args...))
}

// oneLine replaces line breaks so that a message stays on one line.
func oneLine(s string) string {
	if !bytes.ContainsAny([]byte(s), "\r\n") {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
	return string(b)
}

// isBlank reports whether a line holds only spaces and tabs.
func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// trimSpace trims spaces and tabs.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// splitWS splits a line at runs of spaces and tabs into at most len(dst)
// fields and returns the number of fields found (which may exceed len(dst)).
func splitWS(b []byte, dst [][]byte) int {
	n := 0
	i := 0
	for i < len(b) {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
			i++
		}
		if i == len(b) {
			break
		}
		j := i
		for j < len(b) && b[j] != ' ' && b[j] != '\t' {
			j++
		}
		if n < len(dst) {
			dst[n] = b[i:j]
		}
		n++
		i = j
	}
	return n
}

// parseFloat parses a decimal number from b without allocating for short
// inputs. It returns a one-line reason on failure, naming what the value is.
func parseFloat(b []byte, what string) (float64, error) {
	if v, ok := parseSimpleDecimal(b); ok {
		return v, nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return 0, errors.New(what + " " + quote(string(b)) + " is out of range")
		}
		return 0, errors.New(what + ": cannot parse " + quote(string(b)) + " as a number")
	}
	if !finite(v) {
		return 0, errors.New(what + " " + quote(string(b)) + " is not a finite number")
	}
	return v, nil
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// parseSimpleDecimal parses the plain decimals traces are made of
// ("313.08", "-0.0723148", "2") without strconv: an optional sign, at most
// 15 digits with at most one point. The digits form an integer m below
// 10^15 < 2^53 and the point a power 10^k, both exact in float64, so m/10^k
// is the correctly rounded value, the same float64 strconv.ParseFloat gives.
// Anything else (exponents, more digits, a lone point) goes to strconv.
func parseSimpleDecimal(b []byte) (float64, bool) {
	v, n, ok := scanDecimal(b, 0)
	return v, ok && n == len(b)
}

// scanDecimal reads at b[p:] a plain decimal as parseSimpleDecimal takes it
// (a sign, at most 15 digits with at most one point, at most 16 bytes after
// the sign) and returns its value and where it ends; the caller checks
// what follows.
func scanDecimal(b []byte, p int) (float64, int, bool) {
	neg := false
	if p < len(b) && (b[p] == '-' || b[p] == '+') {
		neg = b[p] == '-'
		p++
	}
	start := p
	var m uint64
	for ; p < len(b); p++ {
		d := b[p] - '0'
		if d > 9 {
			break
		}
		m = m*10 + uint64(d)
	}
	digits, frac := p-start, 0
	if p < len(b) && b[p] == '.' {
		p++
		j := p
		for ; p < len(b); p++ {
			d := b[p] - '0'
			if d > 9 {
				break
			}
			m = m*10 + uint64(d)
		}
		frac = p - j
		digits += frac
	}
	if digits == 0 || digits > 15 || p-start > 16 {
		return 0, p, false
	}
	v := float64(m) / pow10[frac]
	if neg {
		v = -v
	}
	return v, p, true
}
