package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func count(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return b
}

// TestCOBS: the examples of the COBS paper and of common references, and
// round trips of random frames of every density of zeros.
func TestCOBS(t *testing.T) {
	cases := []struct{ raw, enc []byte }{
		{unhex(t, "00"), unhex(t, "01 01")},
		{unhex(t, "00 00"), unhex(t, "01 01 01")},
		{unhex(t, "00 11 00"), unhex(t, "01 02 11 01")},
		{unhex(t, "11 22 00 33"), unhex(t, "03 11 22 02 33")},
		{unhex(t, "11 22 33 44"), unhex(t, "05 11 22 33 44")},
		{unhex(t, "11 00 00 00"), unhex(t, "02 11 01 01 01")},
		{count(254), append([]byte{0xFF}, count(254)...)},                                // one full block, nothing after
		{append([]byte{0}, count(254)...), append([]byte{0x01, 0xFF}, count(254)...)},    // a zero, then a full block
		{count(255), append(append([]byte{0xFF}, count(254)...), 0x02, 0xFF)},            // a full block, then one more byte
		{append(count(254), 0), append(append([]byte{0xFF}, count(254)...), 0x01, 0x01)}, // a full block, then a zero
		{append(count(253), 0), append(append([]byte{0xFE}, count(253)...), 0x01)},       // 253 bytes and a zero
		{nil, []byte{0x01}},
	}
	for _, c := range cases {
		if got := AppendCOBS(nil, c.raw); !bytes.Equal(got, c.enc) {
			t.Errorf("encode %x:\n got %x\nwant %x", c.raw, got, c.enc)
		}
		if got, err := DecodeCOBS(nil, c.enc); err != nil || !bytes.Equal(got, c.raw) {
			t.Errorf("decode %x: %x %v", c.enc, got, err)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 5000; trial++ {
		n := r.IntN(700)
		raw := make([]byte, n)
		density := r.IntN(5)
		for i := range raw {
			if density == 0 || r.IntN(4*density+1) != 0 {
				raw[i] = byte(1 + r.IntN(255))
			}
		}
		enc := AppendCOBS(nil, raw)
		if bytes.IndexByte(enc, 0) >= 0 {
			t.Fatalf("encoding of %x holds a 0x00", raw)
		}
		if n <= MaxFrame && len(enc) != n+1 {
			t.Fatalf("%d bytes encode to %d, want %d", n, len(enc), n+1)
		}
		if len(enc) > n+n/254+1 {
			t.Fatalf("%d bytes encode to %d", n, len(enc))
		}
		// In place: decode into the encoding's own storage.
		got, err := DecodeCOBS(enc[:0], enc)
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("round trip of %x: %x %v", raw, got, err)
		}
	}
	for _, bad := range [][]byte{unhex(t, "05 11 22"), unhex(t, "02 00"), unhex(t, "00"), unhex(t, "ff 01")} {
		var e *Error
		if _, err := DecodeCOBS(nil, bad); !errors.As(err, &e) || e.Kind != KindCOBS {
			t.Errorf("decode %x: %v, want a COBS error", bad, err)
		}
	}
}

func TestChecksum(t *testing.T) {
	if c := Checksum([]byte("123456789")); c != 0xCBF43926 {
		t.Errorf("CRC-32 check value %08x", c)
	}
}

// samples is a message of every type.
func samples() map[Type]Message {
	return map[Type]Message{
		TypeHello: &Hello{}, TypeDeployChunk: &DeployChunk{Offset: 7, Data: []byte{0, 1, 2}},
		TypeDeployCommit: &DeployCommit{Length: 3, CRC: 4}, TypeSetInput: &SetInput{Offset: 1, Data: []byte{9}},
		TypeStart: &Start{Inference: 5}, TypeReadOutput: &ReadOutput{Offset: 1, Length: 2},
		TypeReadNVM: &ReadNVM{Offset: 3, Length: MaxData}, TypeResetCounters: &ResetCounters{},
		TypeAck:      &Ack{Status: StatusBadRange, Cmd: TypeSetInput, Detail: 490},
		TypeIdentity: &Identity{Firmware: 1, NVMBytes: 2, ImageBytes: 3, Boots: 4, RxErrors: 5, Window: 6, Flags: 7, Name: "x"},
		TypeData:     &Data{Offset: 8, Data: bytes.Repeat([]byte{0}, MaxData)},
		TypeBoot:     &Boot{Boots: 1, Resume: 2, Reason: BootWatchdog, Flags: 3}, TypeTaskDone: &TaskDone{Task: 1, Cycles: 2},
		TypeCommit: &Commit{Progress: 3, Kind: CommitEarly}, TypeResult: &Result{Inference: 1, Length: 2, CRC: 3},
		TypeLog: &Log{Level: 3, Text: strings.Repeat("z", MaxText)},
	}
}

func TestRoundTrip(t *testing.T) {
	ms := samples()
	for _, ty := range Types() {
		m := ms[ty]
		if m == nil || m.Type() != ty {
			t.Fatalf("no sample of %v", ty)
		}
		w, err := Encode(0xBEEF, m)
		if err != nil {
			t.Fatal(err)
		}
		if len(w) > MaxWire {
			t.Errorf("%v: %d bytes on the wire", ty, len(w))
		}
		f, err := DecodeCOBS(nil, w[:len(w)-1])
		if err != nil {
			t.Fatal(err)
		}
		h, got, err := Unmarshal(f)
		if err != nil {
			t.Fatalf("%v: %v", ty, err)
		}
		if h != (Header{Version, ty, 0xBEEF}) || !reflect.DeepEqual(got, m) {
			t.Errorf("%v: round trip gives %s", ty, Format(h, got))
		}
		h2, m2, err := ParseText(Format(h, got))
		if err != nil || h2 != h || !reflect.DeepEqual(m2, m) {
			t.Errorf("%v: text round trip: %v", ty, err)
		}
	}
}

// TestErrors: what is wrong is named, and nothing panics.
func TestErrors(t *testing.T) {
	frame := func(ty Type, payload ...byte) []byte {
		f, err := MarshalRaw(Header{Version: 1, Type: ty, Seq: 1}, payload)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	cases := []struct {
		frame []byte
		kind  ErrorKind
		msg   string
	}{
		{nil, KindShort, "frame of 0 bytes"},
		{make([]byte, MaxFrame+1), KindLong, "at most 254"},
		{append(frame(TypeHello), 0)[1:], KindCRC, "CRC"},
		{frame(TypeStart, 1, 2, 3), KindLength, "START payload of 3 bytes, needs 4 (inference u32)"},
		{frame(TypeDeployChunk, 1, 2, 3, 4), KindLength, "DEPLOY_CHUNK payload of 4 bytes"},
		{frame(TypeReadNVM, 0, 0, 0, 0, 0, 1), KindLength, "READ_NVM length 256, must be 1..242"},
		{frame(0x3F), KindType, "unknown message type 0x3f"},
		{frame(TypeIdentity, make([]byte, 35)...), KindLength, "IDENTITY payload of 35 bytes, needs 36"},
	}
	v2, _ := MarshalRaw(Header{Version: 2, Type: TypeHello, Seq: 3}, []byte{1})
	cases = append(cases, struct {
		frame []byte
		kind  ErrorKind
		msg   string
	}{v2, KindVersion, "protocol version 2, this side speaks 1"})
	for _, c := range cases {
		h, m, err := Unmarshal(c.frame)
		var e *Error
		if !errors.As(err, &e) || e.Kind != c.kind || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%x: %v, want %v with %q", c.frame, err, c.kind, c.msg)
		}
		if c.kind == KindType || c.kind == KindVersion {
			if u, ok := m.(*Unknown); !ok || h.Seq == 0 || u.T != h.Type {
				t.Errorf("%x: header %+v and message %#v with a %v error", c.frame, h, m, c.kind)
			}
		}
	}
	// Fixed payloads may grow within a version: the extra bytes are ignored.
	f := frame(TypeStart, 5, 0, 0, 0, 0xAA, 0xBB)
	if _, m, err := Unmarshal(f); err != nil || m.(*Start).Inference != 5 {
		t.Errorf("a longer START: %v %v", m, err)
	}
	for _, m := range []Message{
		&DeployChunk{Data: nil}, &SetInput{Data: make([]byte, MaxData+1)}, &ReadOutput{Length: 0},
		&Identity{Name: "a name of more than sixteen bytes"}, &Identity{Name: "a\x00b"},
		&Log{Text: strings.Repeat("x", MaxText+1)}, &Unknown{T: 0x20, Payload: make([]byte, MaxPayload+1)}, nil,
	} {
		if _, err := Encode(1, m); err == nil {
			t.Errorf("encoding %#v succeeds", m)
		}
	}
}

// TestDecoderResync: garbage, a half frame, a run longer than a frame and
// empty frames around good frames: each good frame comes out, each bad one
// gives exactly one error.
func TestDecoderResync(t *testing.T) {
	good1, _ := Encode(1, &TaskDone{Task: 1, Cycles: 2})
	good2, _ := Encode(2, &DeployChunk{Offset: 0, Data: bytes.Repeat([]byte{0x55}, MaxData)})
	good3, _ := Encode(3, &Log{Text: "after"})
	var stream []byte
	stream = append(stream, 0x12, 0x34, 0x56)                   // noise before the first delimiter
	stream = append(stream, good1...)                           // noise merges with good1: CRC or COBS error
	stream = append(stream, good1...)                           // ok
	stream = append(stream, good2[:len(good2)/2]...)            // cut by a brown-out...
	stream = append(stream, 0)                                  // ...and a delimiter (the board's leading 0x00)
	stream = append(stream, good2...)                           // ok
	stream = append(stream, bytes.Repeat([]byte{0xAA}, 700)...) // noise longer than a frame
	stream = append(stream, 0, 0, 0)                            // delimiters: the end of the noise, then empty frames
	stream = append(stream, good3...)                           // ok
	stream = append(stream, good3[:5]...)                       // unfinished at the end
	var frames, errs []string
	r := NewReader(&oneByteReader{bytes.NewReader(stream)}) // byte by byte: state kept across reads
	for {
		f, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatal(err)
			}
			errs = append(errs, e.Kind.String())
			continue
		}
		h, m, err := Unmarshal(f)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, Format(h, m)[:12])
	}
	if got := strings.Join(frames, "|"); got != "TASK_DONE v=|DEPLOY_CHUNK|LOG v=1 seq=" {
		t.Errorf("frames %s", got)
	}
	if len(errs) != 3 || errs[2] != "long" {
		t.Errorf("errors %v, want 3 (the merged frame, the half frame, the long run)", errs)
	}
}

type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

// TestDecoderAllocs: the decoder allocates nothing, whatever it is fed.
func TestDecoderAllocs(t *testing.T) {
	noise := make([]byte, 1<<16)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range noise {
		noise[i] = byte(r.IntN(256))
		if i%1000 < 600 && noise[i] == 0 {
			noise[i] = 1 // long runs without a delimiter too
		}
	}
	var d Decoder
	bad := 0
	feed := func(b []byte) {
		for p := b; len(p) > 0; {
			n, _, err := d.Feed(p)
			if err != nil {
				bad++
			}
			p = p[n:]
		}
	}
	feed(noise)
	perRun, errsPerRun := testing.AllocsPerRun(10, func() { feed(noise) }), bad
	if perRun > 3*float64(errsPerRun) {
		t.Errorf("%v allocations per 64 KiB of noise with %d bad frames", perRun, errsPerRun)
	}
	// Good frames cost nothing.
	good, _ := Encode(1, &DeployChunk{Data: noise[:MaxData]})
	stream := bytes.Repeat(good, 200)
	if a := testing.AllocsPerRun(10, func() { feed(stream) }); a != 0 {
		t.Errorf("%v allocations decoding 200 good frames", a)
	}
}

// reference splits a stream at every 0x00 and decodes each piece on its own.
func reference(data []byte) []string {
	var out []string
	pieces := bytes.Split(data, []byte{0})
	last := pieces[len(pieces)-1] // no delimiter after it
	for _, p := range pieces[:len(pieces)-1] {
		switch {
		case len(p) == 0:
		case len(p) > MaxWire-1:
			out = append(out, "error long")
		default:
			f, err := DecodeCOBS(nil, p)
			if err == nil {
				err = CheckFrame(f)
			}
			if err != nil {
				out = append(out, "error "+err.(*Error).Kind.String())
			} else {
				out = append(out, hex.EncodeToString(f))
			}
		}
	}
	if len(last) > MaxWire-1 {
		out = append(out, "error long")
	}
	return out
}

// FuzzFrameReader: any byte stream gives the frames and errors of splitting
// it at each 0x00, no frame longer than MaxFrame, and no panic.
func FuzzFrameReader(f *testing.F) {
	good, _ := Encode(1, &Hello{})
	long, _ := Encode(2, &DeployChunk{Data: bytes.Repeat([]byte{7}, MaxData)})
	f.Add(good)
	f.Add(append(append([]byte{1, 2, 3}, good...), long...))
	f.Add(append(long[:100], good...))
	f.Add(bytes.Repeat([]byte{0xFF}, 600))
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{0x09, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data))
		var got []string
		for {
			fr, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("not a frame error: %v", err)
				}
				got = append(got, "error "+e.Kind.String())
				continue
			}
			if len(fr) < MinFrame || len(fr) > MaxFrame {
				t.Fatalf("frame of %d bytes", len(fr))
			}
			got = append(got, hex.EncodeToString(fr))
			Unmarshal(fr) // must not panic
		}
		if want := reference(data); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("stream gives %v, splitting it gives %v", got, want)
		}
	})
}

// FuzzUnmarshal: any decoded frame either fails with an *Error or gives a
// message that encodes again to a frame that decodes to the same message,
// and whose text form reads back the same.
func FuzzUnmarshal(f *testing.F) {
	for _, m := range samples() {
		fr, _ := Marshal(9, m)
		f.Add(fr)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, m, err := Unmarshal(frame)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %v", err)
			}
			return
		}
		again, err := Marshal(h.Seq, m)
		if err != nil {
			t.Fatalf("%s does not encode: %v", Format(h, m), err)
		}
		if len(again) > len(frame) {
			t.Fatalf("re-encoding grew %d -> %d bytes", len(frame), len(again))
		}
		if len(again) == len(frame) && !bytes.Equal(again, frame) {
			t.Fatalf("re-encoding differs:\n%x\n%x", frame, again)
		}
		h2, m2, err := Unmarshal(again)
		if err != nil || h2 != h || !reflect.DeepEqual(m2, m) {
			t.Fatalf("re-decoding: %v", err)
		}
		h3, m3, err := ParseText(Format(h, m))
		if err != nil || h3 != h || !reflect.DeepEqual(normalize(m3), normalize(m)) {
			t.Fatalf("text form %q: %v", Format(h, m), err)
		}
	})
}
