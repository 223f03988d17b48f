package scpi

import (
	"bufio"
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseResponse feeds any text to every answer parser and to the line
// reader: no panic, bounded results, and what is accepted is what it says.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{"3.3", "+3.30000000E+00", "9.9E37", "-222,\"Data out of range\"", "0  No Error",
		"Keysight Technologies,N6705C,MY1,D.03", "ON", "1,2,3", "#15hello", "\"\"", ",,,", "1e999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := ParseFloat(s); err == nil {
			if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) >= Overflow*0.999 {
				t.Fatalf("ParseFloat(%q) = %v accepted", s, v)
			}
		}
		if vs, err := ParseFloats(s, 8); err == nil && (len(vs) == 0 || len(vs) > 8) {
			t.Fatalf("ParseFloats(%q) = %d values", s, len(vs))
		}
		if b, err := ParseBool(s); err == nil {
			u := strings.ToUpper(strings.TrimSpace(s))
			if b != (u == "1" || u == "ON" || u == "YES" || u == "+1") {
				t.Fatalf("ParseBool(%q) = %v", s, b)
			}
		}
		if e, err := ParseError(s); err == nil {
			if !strings.Contains(s, strconv.Itoa(abs(e.Code))) {
				t.Fatalf("ParseError(%q) = %v: the code is not in the answer", s, e)
			}
		}
		if id, err := ParseIdentity(s); err == nil && (id.Manufacturer == "" || id.Model == "" || len(s) > 300) {
			t.Fatalf("ParseIdentity(%q) = %+v", s, id)
		}
		line, err := readLine(bufio.NewReaderSize(strings.NewReader(s), 16), 64)
		if err == nil && (len(line) > 64 || strings.ContainsRune(line, '\n')) {
			t.Fatalf("readLine(%q) = %q", s, line)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// FuzzReadBlock feeds any bytes to the block reader: no panic, nothing
// beyond the limit, and an accepted block is exactly the bytes its header
// announces.
func FuzzReadBlock(f *testing.F) {
	for _, s := range []string{"#15hello", "#210abcdefghij\n", "#0abc\n", "#9999999999", "#", "x", "#1", "#3100" + strings.Repeat("z", 100)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1024
		b, err := ReadBlock(bufio.NewReaderSize(bytes.NewReader(data), 16), limit)
		if err != nil {
			return
		}
		if len(b) > limit {
			t.Fatalf("%d bytes beyond the limit", len(b))
		}
		n := int(data[1] - '0')
		size, perr := strconv.Atoi(string(data[2 : 2+n]))
		if data[0] != '#' || perr != nil || size != len(b) || !bytes.Equal(b, data[2+n:2+n+size]) {
			t.Fatalf("block %q from %q", b, data)
		}
	})
}
