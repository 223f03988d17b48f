package traces

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Open opens a trace file. The caller closes it. Errors name the path as given.
func Open(path string, opt Options) (ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: "cannot open: " + oneLine(unwrapPathError(err)), Err: err}
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		f.Close()
		return nil, &Error{File: path, Msg: "is a directory, not a trace file"}
	}
	r, err := NewReader(f, path, opt)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fileReader{Reader: r, f: f}, nil
}

func unwrapPathError(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

type fileReader struct {
	Reader
	f *os.File
}

func (r *fileReader) Close() error { return r.f.Close() }

// NewReader reads a trace from r. The name ("input" if empty) is used in
// error messages ("name:line: ...") and, as its base name, in Meta.Name. With Options.Format
// "" the format is detected from the first non-blank line, peeked without
// consuming anything: a '#' comment or a header with a "time_" column is a
// canonical CSV, "sec RSSI,mW" is REACT, and "<integer><TAB><number>" is
// Mementos.
func NewReader(r io.Reader, name string, opt Options) (Reader, error) {
	if name == "" {
		name = "input"
	}
	if err := opt.check(name); err != nil {
		return nil, err
	}
	br := newBufReader(r)
	format := strings.ToLower(opt.Format)
	if format == "" {
		var err error
		if format, err = detect(br, name); err != nil {
			return nil, err
		}
	}
	switch format {
	case "csv":
		return newCSVReader(br, name, opt)
	case "react":
		return newReactReader(br, name)
	case "mementos":
		return newMementosReader(br, name, opt), nil
	}
	panic("unreachable")
}

func (o Options) check(name string) error {
	switch strings.ToLower(o.Format) {
	case "", "csv", "react", "mementos":
	default:
		return &Error{File: name, Msg: fmt.Sprintf("unknown format %s (known: %s)", quote(o.Format), strings.Join(Formats, ", "))}
	}
	if math.IsNaN(o.LoadOhms) || math.IsInf(o.LoadOhms, 0) || o.LoadOhms < 0 {
		return &Error{File: name, Msg: "load " + fmtNum(o.LoadOhms) + " ohm is not a positive resistance"}
	}
	return nil
}

// baseName returns the base name of a path for Meta.Name.
func baseName(file string) string {
	if file == "" {
		return ""
	}
	return filepath.Base(file)
}

// detect peeks at the first non-blank line of br and names its format.
func detect(br *bufio.Reader, name string) (string, error) {
	for {
		_, perr := br.Peek(br.Buffered() + 1)
		buf, _ := br.Peek(br.Buffered())
		atEOF := perr != nil
		if perr != nil && perr != io.EOF && !errors.Is(perr, bufio.ErrBufferFull) {
			return "", &Error{File: name, Line: 1, Msg: "read error: " + oneLine(perr.Error()), Err: perr}
		}
		format, line, done, err := classify(buf, atEOF, name)
		if done {
			return format, err
		}
		if errors.Is(perr, bufio.ErrBufferFull) {
			return "", errorf(name, line, "line is longer than %d bytes", MaxLineBytes)
		}
	}
}

// classify names the format of the first non-blank line in buf. done is false
// when buf does not yet hold a whole line and more input may come.
func classify(buf []byte, atEOF bool, name string) (format string, line int, done bool, err error) {
	buf = bytes.TrimPrefix(buf, bom)
	line = 1
	for {
		i := bytes.IndexByte(buf, '\n')
		var b []byte
		if i < 0 {
			if !atEOF {
				// Comments are CSV even before the line is whole.
				if t := trimSpace(buf); len(t) > 0 && t[0] == '#' {
					return "csv", line, true, nil
				}
				return "", line, false, nil
			}
			b = buf
		} else {
			b = buf[:i]
		}
		b = trimSpace(bytes.TrimSuffix(b, []byte{'\r'}))
		if len(b) > 0 {
			if len(b) > MaxLineBytes {
				return "", line, true, errorf(name, line, "line is longer than %d bytes", MaxLineBytes)
			}
			f, err := classifyLine(b)
			if err != nil {
				return "", line, true, errorf(name, line, "%s", err)
			}
			return f, line, true, nil
		}
		if i < 0 {
			return "", line, true, errorf(name, 1, "empty file (no samples)")
		}
		buf = buf[i+1:]
		line++
	}
}

// classifyLine names the format whose first line b (non-blank, trimmed) is.
func classifyLine(b []byte) (string, error) {
	if b[0] == '#' {
		return "csv", nil
	}
	if isReactHeader(b) {
		return "react", nil
	}
	if bytes.Contains(bytes.ToLower(b), []byte("time_")) {
		return "csv", nil
	}
	var f [3][]byte
	if splitWS(b, f[:]) == 2 && isDigits(f[0]) {
		if v, err := strconv.ParseFloat(string(f[1]), 64); err == nil && finite(v) {
			return "mementos", nil
		}
	}
	return "", fmt.Errorf("unknown trace format: first line %s is neither a CSV header (time_s,power_w ...), the REACT header \"sec RSSI,mW\" nor a Mementos row \"<integer><TAB><volts>\"; give the format (--format csv, react or mementos)", quote(string(b)))
}

func isDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Glob returns the trace files under dir (walked recursively), sorted. It
// skips hidden files and folders (".x"), README*, LICENSE* and *.md files, and
// anything that is not a regular file.
func Glob(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if path != dir && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil
		}
		upper := strings.ToUpper(name)
		if strings.HasPrefix(upper, "README") || strings.HasPrefix(upper, "LICENSE") || strings.HasSuffix(upper, ".MD") {
			return nil
		}
		out = append(out, path)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("traces: %s", oneLine(err.Error()))
	}
	slices.Sort(out)
	return out, nil
}
