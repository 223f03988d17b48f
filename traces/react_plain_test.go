package traces

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// readAllREACT reads a REACT stream to its end or first error, through the
// plain-row path or the general one only, and renders everything it gave.
func readAllREACT(data []byte, general bool, wrap func(io.Reader) io.Reader) string {
	var out strings.Builder
	r, err := NewReader(wrap(bytes.NewReader(data)), "t.trace", Options{Format: "react"})
	if err != nil {
		return "open: " + err.Error()
	}
	rr := r.(*reactReader)
	rr.general = general
	for i := 0; ; i++ {
		s, err := r.Next()
		if err != nil {
			fmt.Fprintf(&out, "end after %d: %v (again: %v)\n", i, err, func() error { _, e := r.Next(); return e }())
			break
		}
		fmt.Fprintf(&out, "%x %x\n", s.T, s.P)
	}
	m := r.Meta()
	fmt.Fprintf(&out, "meta %+v\n", m)
	return out.String()
}

// TestReactPlainRowsMatchGeneralPath: the fast path for plain rows gives the
// same samples, errors (with their line numbers) and warnings as the general
// path, whatever the rows and however the input arrives.
func TestReactPlainRowsMatchGeneralPath(t *testing.T) {
	rows := []string{"0.00\t0.25", "  0.02 \t 0.5  ", "0.04\t1e1", "0.06\t+2.5", "0.08\t-0", "", "   ", "0.10\t0.21\r",
		"0.12\t7", "0.14\t-0.5", "0.13\t1", "0.16\t", "0.18\t1\t2", "0.2\tabc", "12345678901234567\t1", "0.22\t.5", "0.24\t5.",
		"0.26\t1.2.3", "0.3\t1", "0.3\t2", strings.Repeat("9", 5000), "0.5\t0x10", "1\t0.000000000000001",
		"0.4\t1" + strings.Repeat(" ", MaxLineBytes-6), "0.4\t1" + strings.Repeat(" ", MaxLineBytes-5), "0.4\t1" + strings.Repeat(" ", MaxLineBytes-4),
		"0.4\t1\r\r", "0.4\t1 \r", "0.4\r\t1", "+.5\t.5", "-\t1", "1234567890123456\t1", "123456789012345.\t1", "0.4\t-.0",
		"0.5\t123456789012345", "0.6\t12345678901234.5", "0.7\t1.234567890123456", "0.8\t1234567890123.45\n", "0.9\t7.", "1.0\t.7", "1.1.\t1", "1.2\t1 "}
	rng := rand.New(rand.NewPCG(7, 8))
	wraps := map[string]func(io.Reader) io.Reader{
		"whole":   func(r io.Reader) io.Reader { return r },
		"onebyte": iotest.OneByteReader,
		"half":    iotest.HalfReader,
	}
	for trial := 0; trial < 300; trial++ {
		var b bytes.Buffer
		b.WriteString("sec RSSI,mW\n")
		t0 := 0.0
		for i, n := 0, rng.IntN(3000); i < n; i++ {
			if rng.IntN(50) == 0 {
				b.WriteString(rows[rng.IntN(len(rows))])
			} else {
				t0 += 0.02 * float64(1+rng.IntN(2))
				fmt.Fprintf(&b, "%.2f\t%.2f", t0, float64(rng.IntN(3000))/100)
			}
			if rng.IntN(20) == 0 {
				b.WriteString("\r")
			}
			if i < n-1 || rng.IntN(2) == 0 {
				b.WriteString("\n")
			}
		}
		data := b.Bytes()
		for name, wrap := range wraps {
			if name == "onebyte" && trial%10 != 0 {
				continue
			}
			fast, slow := readAllREACT(data, false, wrap), readAllREACT(data, true, wrap)
			if fast != slow {
				t.Fatalf("trial %d (%s): the plain-row path differs:\n%s\nvs the general path:\n%s", trial, name, fast, slow)
			}
		}
	}
}
