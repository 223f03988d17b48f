package wire

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// vector is one line of the shared vector file, or one example of
// PROTOCOL.md.
type vector struct {
	where string // file:line
	wire  []byte
	text  string // the text form, or "error=KIND"
}

func parseVectorLine(where, line string) (vector, error) {
	hx, text, ok := strings.Cut(strings.TrimSpace(line), " ")
	if !ok {
		return vector{}, fmt.Errorf("%s: no space between the hex and the fields", where)
	}
	b, err := hex.DecodeString(hx)
	if err != nil {
		return vector{}, fmt.Errorf("%s: %v", where, err)
	}
	return vector{where: where, wire: b, text: strings.TrimSpace(text)}, nil
}

func readVectors(t *testing.T, path string) []vector {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := parseVectorLine(fmt.Sprintf("%s:%d", path, n), line)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

// decodeWire runs a vector's bytes through a Decoder and Unmarshal: the
// frame's header and message, or the first error.
func decodeWire(b []byte) (Header, Message, error) {
	var d Decoder
	var frame []byte
	var ferr error
	for p := b; len(p) > 0; {
		n, f, err := d.Feed(p)
		p = p[n:]
		if err != nil && ferr == nil && frame == nil {
			ferr = err
		}
		if f != nil && frame == nil && ferr == nil {
			frame = bytes.Clone(f)
		}
	}
	if ferr != nil {
		return Header{}, nil, ferr
	}
	if frame == nil {
		return Header{}, nil, errors.New("no frame")
	}
	return Unmarshal(frame)
}

// checkVector checks one vector against this package's codec.
func checkVector(t *testing.T, v vector) {
	t.Helper()
	if len(v.wire) == 0 || v.wire[len(v.wire)-1] != 0 || bytes.IndexByte(v.wire, 0) != len(v.wire)-1 {
		t.Errorf("%s: the bytes must end with the only 0x00", v.where)
		return
	}
	h, m, err := decodeWire(v.wire)
	if k, ok := strings.CutPrefix(v.text, "error="); ok {
		want, known := KindByName(k)
		if !known {
			t.Errorf("%s: unknown error kind %q", v.where, k)
			return
		}
		var werr *Error
		if !errors.As(err, &werr) || werr.Kind != want {
			t.Errorf("%s: decoding gives %v (%v), want an error of kind %v", v.where, m, err, want)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: %v", v.where, err)
		return
	}
	wh, wm, err := ParseText(v.text)
	if err != nil {
		t.Errorf("%s: %v", v.where, err)
		return
	}
	if h != wh || !reflect.DeepEqual(normalize(m), normalize(wm)) {
		t.Errorf("%s: decodes to\n  %s\nthe line says\n  %s", v.where, Format(h, m), Format(wh, wm))
	}
	if got := Format(h, m); got != v.text {
		t.Errorf("%s: not in the canonical text form:\n  %s\nwant\n  %s", v.where, v.text, got)
	}
	if wh.Version != Version {
		t.Errorf("%s: version %d in a valid frame", v.where, wh.Version)
		return
	}
	enc, err := Encode(wh.Seq, wm)
	if err != nil {
		t.Errorf("%s: encoding: %v", v.where, err)
	} else if !bytes.Equal(enc, v.wire) {
		t.Errorf("%s: encoding the fields gives\n  %x\nnot\n  %x", v.where, enc, v.wire)
	}
}

// normalize makes empty and nil byte slices equal.
func normalize(m Message) Message {
	switch m := m.(type) {
	case *DeployChunk:
		if len(m.Data) == 0 {
			m.Data = nil
		}
	case *SetInput:
		if len(m.Data) == 0 {
			m.Data = nil
		}
	case *Data:
		if len(m.Data) == 0 {
			m.Data = nil
		}
	}
	return m
}

func TestVectorsFile(t *testing.T) {
	writeVectorsIfAsked(t)
	vs := readVectors(t, vectorsPath)
	if len(vs) < 40 {
		t.Fatalf("%s: only %d vectors", vectorsPath, len(vs))
	}
	seen := map[Type]bool{}
	for _, v := range vs {
		checkVector(t, v)
		if h, _, err := decodeWire(v.wire); err == nil {
			seen[h.Type] = true
		}
	}
	for _, ty := range Types() {
		if !seen[ty] {
			t.Errorf("%s: no vector of type %v", vectorsPath, ty)
		}
	}
	// The file is exactly what the generator writes.
	have, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := formatVectors(t, generateVectors(t)); string(have) != want {
		t.Errorf("%s differs from the generator's output: run go test ./harness/wire -run TestVectorsFile -update", vectorsPath)
	}
}

// docExamples extracts every ```frame block of PROTOCOL.md: the hex of the
// bytes on the wire on its first line (spaces allowed), then a comment line
// "# TEXT" with the decoded fields (or "# error=KIND"); further "#" lines
// are free text, except "# decoded: HEX", the decoded frame, which is
// checked too.
type docExample struct {
	vector
	decoded []byte
}

func docExamples(t *testing.T, path string) []docExample {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var out []docExample
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```frame" {
			continue
		}
		start := i + 1
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, strings.TrimSpace(lines[i]))
		}
		where := fmt.Sprintf("%s:%d", path, start)
		if len(body) < 2 || !strings.HasPrefix(body[1], "# ") || strings.HasPrefix(body[0], "#") {
			t.Fatalf("%s: a frame block is the hex on one line, then \"# fields\"", where)
		}
		v, err := parseVectorLine(where, strings.ReplaceAll(body[0], " ", "")+" "+strings.TrimPrefix(body[1], "# "))
		if err != nil {
			t.Fatal(err)
		}
		ex := docExample{vector: v}
		for _, l := range body[2:] {
			if d, ok := strings.CutPrefix(l, "# decoded:"); ok {
				if ex.decoded, err = hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(d), " ", "")); err != nil {
					t.Fatalf("%s: decoded: %v", where, err)
				}
			} else if !strings.HasPrefix(l, "#") {
				t.Fatalf("%s: %q: a frame block has one line of hex, the rest are # comments", where, l)
			}
		}
		out = append(out, ex)
	}
	return out
}

// TestProtocolDoc decodes every example of PROTOCOL.md to its documented
// fields, and finds each in the shared vectors (which the C codec checks).
func TestProtocolDoc(t *testing.T) {
	const doc = "../../firmware/PROTOCOL.md"
	exs := docExamples(t, doc)
	file := map[string]string{}
	for _, v := range readVectors(t, vectorsPath) {
		file[hex.EncodeToString(v.wire)] = v.text
	}
	seen := map[Type]bool{}
	for _, ex := range exs {
		checkVector(t, ex.vector)
		if text, ok := file[hex.EncodeToString(ex.wire)]; !ok || text != ex.text {
			t.Errorf("%s: example not in %s with the same fields", ex.where, vectorsPath)
		}
		if ex.decoded != nil {
			d, err := DecodeCOBS(nil, ex.wire[:len(ex.wire)-1])
			if err != nil || !bytes.Equal(d, ex.decoded) {
				t.Errorf("%s: decoded frame is %x, the example says %x", ex.where, d, ex.decoded)
			}
		}
		if h, _, err := decodeWire(ex.wire); err == nil {
			seen[h.Type] = true
		}
	}
	for _, ty := range Types() {
		if !seen[ty] {
			t.Errorf("%s: no example of %v", doc, ty)
		}
	}
	t.Logf("%d examples", len(exs))
}
