package scpi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Overflow is what SCPI instruments answer for a value they cannot give
// (9.9E37, "not a number" or out of range of the measurement).
const Overflow = 9.9e37

// ParseFloat parses one numeric response (NR1, NR2 or NR3: "3", "+3.300",
// "3.30000E+00"), with surrounding blanks. An answer of 9.9E37 (the SCPI
// overflow value) or anything that is not one finite number is an error
// that quotes the answer.
func ParseFloat(s string) (float64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty answer, want a number")
	}
	if len(t) > 64 {
		return 0, fmt.Errorf("answer %.20q... is not a number", t)
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || strings.ContainsAny(t, "xXpP_") || !isDecimal(t) {
		return 0, fmt.Errorf("answer %q is not a number", t)
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("answer %q is not a finite number", t)
	}
	if math.Abs(v) >= Overflow*0.999 {
		return 0, fmt.Errorf("answer %q is the instrument's overflow value (no valid reading)", t)
	}
	return v, nil
}

// isDecimal reports whether s uses only the characters of a decimal number
// (strconv also accepts "inf", "nan", hex floats and underscores).
func isDecimal(s string) bool {
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9', c == '+', c == '-', c == '.', c == 'e', c == 'E':
		default:
			return false
		}
	}
	return true
}

// ParseFloats parses a comma-separated list of numbers (a list query's
// answer), at most max of them.
func ParseFloats(s string, max int) ([]float64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return nil, errors.New("empty answer, want a list of numbers")
	}
	if n := strings.Count(t, ",") + 1; n > max {
		return nil, fmt.Errorf("answer has %d values, at most %d expected", n, max)
	}
	parts := strings.Split(t, ",")
	out := make([]float64, len(parts))
	for i, p := range parts {
		v, err := ParseFloat(p)
		if err != nil {
			return nil, fmt.Errorf("value %d: %w", i+1, err)
		}
		out[i] = v
	}
	return out, nil
}

// ParseBool parses a boolean answer: 1, 0, ON, OFF, YES, NO (any case).
func ParseBool(s string) (bool, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "1", "ON", "YES", "+1":
		return true, nil
	case "0", "OFF", "NO", "+0":
		return false, nil
	}
	return false, fmt.Errorf("answer %q is not a boolean (1/0, ON/OFF, YES/NO)", clip(s))
}

// Error is one entry of an instrument's error queue.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e Error) String() string { return fmt.Sprintf("%d %q", e.Code, e.Message) }

// ParseError parses an answer to SYST:ERR?: `-222,"Data out of range"`,
// `0,"No error"`; also the looser `0  No Error` some instruments send.
func ParseError(s string) (Error, error) {
	t := strings.TrimSpace(s)
	end := 0
	for end < len(t) && (t[end] == '+' || t[end] == '-' || (t[end] >= '0' && t[end] <= '9')) {
		end++
	}
	if end == 0 || end > 11 {
		return Error{}, fmt.Errorf("answer %q is not an error queue entry (want code,\"message\")", clip(s))
	}
	code, err := strconv.Atoi(t[:end])
	if err != nil {
		return Error{}, fmt.Errorf("answer %q is not an error queue entry (want code,\"message\")", clip(s))
	}
	rest := strings.TrimSpace(t[end:])
	rest = strings.TrimSpace(strings.TrimPrefix(rest, ","))
	if len(rest) >= 2 && rest[0] == '"' && rest[len(rest)-1] == '"' {
		rest = strings.ReplaceAll(rest[1:len(rest)-1], `""`, `"`)
	}
	return Error{Code: code, Message: rest}, nil
}

// Identity is an answer to *IDN?.
type Identity struct {
	Manufacturer string `json:"manufacturer"`
	Model        string `json:"model"`
	Serial       string `json:"serial"`
	Firmware     string `json:"firmware"`
}

// ParseIdentity parses an answer to *IDN?: manufacturer, model, serial and
// firmware, comma-separated; fields beyond the fourth (Siglent appends a
// hardware version) belong to the firmware.
func ParseIdentity(s string) (Identity, error) {
	t := strings.TrimSpace(s)
	f := strings.Split(t, ",")
	if len(f) < 4 || len(f) > 8 || len(t) > 256 {
		return Identity{}, fmt.Errorf("*IDN? answer %q does not have 4 comma-separated fields (manufacturer,model,serial,firmware)", clip(s))
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	if f[0] == "" || f[1] == "" {
		return Identity{}, fmt.Errorf("*IDN? answer %q has no manufacturer or model", clip(s))
	}
	return Identity{Manufacturer: f[0], Model: f[1], Serial: f[2], Firmware: strings.Join(f[3:], ",")}, nil
}

func (id Identity) String() string {
	return strings.Join([]string{id.Manufacturer, id.Model, id.Serial, id.Firmware}, ",")
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// ErrBlockFormat marks a block whose header is not "#<n><length>".
var ErrBlockFormat = errors.New("malformed block header")

// ErrTooLong is returned for an answer or block longer than the reader's
// limit: the rest is not read into memory.
var ErrTooLong = errors.New("answer longer than the limit")

// readLine reads up to and including '\n' and returns the line without its
// terminator ("\n" or "\r\n"), refusing lines longer than max bytes.
func readLine(r *bufio.Reader, max int) (string, error) {
	var buf []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(buf)+len(frag) > max+2 {
			return "", fmt.Errorf("%w (%d bytes)", ErrTooLong, max)
		}
		buf = append(buf, frag...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return "", err
	}
	buf = buf[:len(buf)-1]
	if n := len(buf); n > 0 && buf[n-1] == '\r' {
		buf = buf[:n-1]
	}
	if len(buf) > max {
		return "", fmt.Errorf("%w (%d bytes)", ErrTooLong, max)
	}
	return string(buf), nil
}

// ReadBlock reads an IEEE 488.2 definite-length block, "#<n><length><bytes>"
// (n digits of length, 1 <= n <= 9), and leaves the message terminator that
// follows it to the caller. A block longer than max is refused before anything is allocated;
// a header that lies (a length longer than the data) ends in the reader's
// error, io.ErrUnexpectedEOF or a deadline. The indefinite form "#0" is
// refused: over a byte stream its end cannot be told from a newline in the
// data.
func ReadBlock(r *bufio.Reader, max int) ([]byte, error) {
	c, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	if c != '#' {
		return nil, fmt.Errorf("block: starts with %q, want '#': %w", c, ErrBlockFormat)
	}
	c, err = r.ReadByte()
	if err != nil {
		return nil, noEOF(err)
	}
	if c == '0' {
		return nil, fmt.Errorf("block: indefinite-length block (#0) not supported: %w", ErrBlockFormat)
	}
	if c < '1' || c > '9' {
		return nil, fmt.Errorf("block: length digit count %q is not 1-9: %w", c, ErrBlockFormat)
	}
	digits := int(c - '0')
	n := 0
	for i := 0; i < digits; i++ {
		d, err := r.ReadByte()
		if err != nil {
			return nil, noEOF(err)
		}
		if d < '0' || d > '9' {
			return nil, fmt.Errorf("block: length digit %q is not a digit: %w", d, ErrBlockFormat)
		}
		n = n*10 + int(d-'0')
	}
	if n > max {
		return nil, fmt.Errorf("block: %d bytes: %w (%d bytes)", n, ErrTooLong, max)
	}
	data := make([]byte, n)
	if got, err := io.ReadFull(r, data); err != nil {
		return nil, fmt.Errorf("block: %d of %d bytes: %w", got, n, noEOF(err))
	}
	return data, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
