package tflite

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"

	flatbuffers "github.com/google/flatbuffers/go"
)

// tinyModel is a valid model of a few hundred bytes.
func tinyModel() *Model {
	q := &Quantization{Scale: []float32{0.5}, ZeroPoint: []int64{-1}}
	return &Model{
		Version:       3,
		OperatorCodes: []OperatorCode{{Builtin: OpRelu, Version: 1}, {Builtin: OpRelu6, Version: 1}},
		Subgraphs: []Subgraph{{
			Name: "tiny",
			Tensors: []Tensor{
				{Name: "in", Type: TensorInt8, Shape: []int32{1, 4}, Quant: q},
				{Name: "out", Type: TensorInt8, Shape: []int32{1, 4}, Quant: q, Buffer: 1},
			},
			Inputs:    []int32{0},
			Outputs:   []int32{1},
			Operators: []Operator{{OpcodeIndex: 1, Inputs: []int32{0}, Outputs: []int32{1}}},
		}},
		Buffers: []Buffer{{}, {Data: []byte{1, 2, 3, 4}}},
	}
}

// nav walks an encoded model with the package's reader, failing the test
// on any error, to find the positions of fields to corrupt.
type nav struct {
	t testing.TB
	r *reader
}

func newNav(t testing.TB, data []byte) nav { return nav{t, newReader(data)} }

func (n nav) must(err error) {
	n.t.Helper()
	if err != nil {
		n.t.Fatal(err)
	}
}

func (n nav) root() table {
	n.t.Helper()
	p, err := n.r.deref(0)
	n.must(err)
	tb, err := n.r.table(p)
	n.must(err)
	return tb
}

// elem returns table i of the vector of tables in field idx of tb.
func (n nav) elem(tb table, idx, i int) table {
	n.t.Helper()
	start, _, ok, err := tb.tableVector(idx, "", 0)
	n.must(err)
	if !ok {
		n.t.Fatalf("field %d absent", idx)
	}
	e, err := n.r.elem(start, i)
	n.must(err)
	return e
}

// field returns the position of field idx of tb (which must be present).
func (n nav) field(tb table, idx, size int) int {
	n.t.Helper()
	p, err := tb.field(idx, size, "")
	n.must(err)
	if p == 0 {
		n.t.Fatalf("field %d absent", idx)
	}
	return p
}

// target returns where the uoffset field idx of tb points.
func (n nav) target(tb table, idx int) int {
	n.t.Helper()
	p, err := tb.ref(idx, "")
	n.must(err)
	return p
}

func put32(b []byte, pos int, v uint32) { binary.LittleEndian.PutUint32(b[pos:], v) }
func put16(b []byte, pos int, v uint16) { binary.LittleEndian.PutUint16(b[pos:], v) }

// decodeErr decodes without the recover safety net (a panic fails the
// test) and returns the error text, "" on success.
func decodeErr(data []byte) string {
	if _, err := decode(data); err != nil {
		return err.Error()
	}
	return ""
}

func checkOneLine(t *testing.T, msg string) {
	t.Helper()
	if !strings.HasPrefix(msg, "tflite: ") || strings.ContainsAny(msg, "\n\r") {
		t.Errorf("error is not one line starting with \"tflite: \": %q", msg)
	}
}

func TestTruncated(t *testing.T) {
	for _, m := range []*Model{tinyModel(), sampleModel()} {
		data := mustEncode(t, m)
		for n := 0; n < len(data); n++ {
			msg := decodeErr(bytes.Clone(data[:n]))
			if msg == "" {
				t.Fatalf("%d-byte prefix of a %d-byte model decoded without error", n, len(data))
			}
			checkOneLine(t, msg)
		}
	}
	if _, err := os.Stat(realModelsDir); err != nil {
		t.Logf("../shared/data absent: real-model truncation skipped")
		return
	}
	for _, path := range realModelFiles(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		stride := max(1, len(data)/1500)
		for n := 0; n < len(data); n += stride {
			if msg := decodeErr(data[:n]); msg != "" {
				checkOneLine(t, msg)
			}
		}
		for n := max(0, len(data)-64); n < len(data); n++ {
			if msg := decodeErr(data[:n]); msg != "" {
				checkOneLine(t, msg)
			}
		}
	}
}

func TestHostile(t *testing.T) {
	tiny := mustEncode(t, tinyModel())
	if len(tiny) > 1024 {
		t.Fatalf("tiny model is %d bytes, want <= 1024", len(tiny))
	}
	n := newNav(t, tiny)
	root := n.root()
	sg := n.elem(root, modelSubgraphs, 0)
	t0 := n.elem(sg, subgraphTensors, 0)
	t1 := n.elem(sg, subgraphTensors, 1)
	op := n.elem(sg, subgraphOperators, 0)
	oc := n.elem(root, modelOperatorCodes, 0)
	size := len(tiny)

	cases := []struct {
		name   string
		mutate func(b []byte)
		want   string // exact error, or prefix ending in "..."
	}{
		{"short", func(b []byte) {}, ""}, // replaced below
		{"identifier", func(b []byte) { copy(b[4:], "TFL2") },
			`tflite: file identifier is "TFL2", want "TFL3" (not a TensorFlow Lite model?)`},
		{"root past end", func(b []byte) { put32(b, 0, 0xfffffff0) },
			fmt.Sprintf("tflite: root table: offset 4294967280 at 0 points past the end of the %d-byte file", size)},
		{"root zero", func(b []byte) { put32(b, 0, 0) },
			"tflite: root table: offset at 0 is 0 (points at itself)"},
		{"root misaligned", func(b []byte) { put32(b, 0, uint32(root.pos+1)) },
			fmt.Sprintf("tflite: root table: table at offset %d is not aligned to 4 bytes", root.pos+1)},
		{"shape 2^31 elements", func(b []byte) { put32(b, n.target(t1, tensorShape), 1<<31) },
			fmt.Sprintf("tflite: subgraphs[0].tensors[1].shape: vector of 2147483648 elements at offset %d runs past the end of the %d-byte file", n.target(t1, tensorShape), size)},
		{"shape 1M elements", func(b []byte) { put32(b, n.target(t0, tensorShape), 1000000) },
			fmt.Sprintf("tflite: subgraphs[0].tensors[0].shape: vector of 1000000 elements at offset %d runs past the end of the %d-byte file", n.target(t0, tensorShape), size)},
		{"tensors 2^32-1 elements", func(b []byte) { put32(b, n.target(sg, subgraphTensors), 0xffffffff) },
			fmt.Sprintf("tflite: subgraphs[0].tensors: vector of 4294967295 elements at offset %d runs past the end of the %d-byte file", n.target(sg, subgraphTensors), size)},
		{"name offset past end", func(b []byte) { put32(b, n.field(t1, tensorName, 4), 0x7fffffff) },
			fmt.Sprintf("tflite: subgraphs[0].tensors[1].name: offset 2147483647 at %d points past the end of the %d-byte file", n.field(t1, tensorName, 4), size)},
		{"name not terminated", func(b []byte) { b[n.target(t0, tensorName)+4+2] = 'x' },
			fmt.Sprintf("tflite: subgraphs[0].tensors[0].name: string of 2 bytes at offset %d is not NUL-terminated", n.target(t0, tensorName))},
		{"vtable before start", func(b []byte) { put32(b, t1.pos, 0x7ffffff0) },
			fmt.Sprintf("tflite: subgraphs[0].tensors[1]: table at offset %d has its vtable at %d, outside the %d-byte file", t1.pos, t1.pos-0x7ffffff0, size)},
		{"vtable past end", func(b []byte) { put32(b, t1.pos, 0xfffe7960) },
			fmt.Sprintf("tflite: subgraphs[0].tensors[1]: table at offset %d has its vtable at %d, outside the %d-byte file", t1.pos, t1.pos+100000, size)},
		{"vtable size", func(b []byte) { put16(b, op.vt, 0xfffe) },
			fmt.Sprintf("tflite: subgraphs[0].operators[0]: vtable of 65534 bytes at offset %d runs past the end of the %d-byte file", op.vt, size)},
		{"vtable size odd", func(b []byte) { put16(b, op.vt, 3) },
			fmt.Sprintf("tflite: subgraphs[0].operators[0]: table at offset %d has a vtable (at %d) of invalid size 3", op.pos, op.vt)},
		{"field outside table", func(b []byte) { put16(b, op.vt+4+2*operatorInputs, 0xfff0) },
			fmt.Sprintf("tflite: subgraphs[0].operators[0].inputs: field at offset 65520 of the table at %d lies outside the table's %d bytes", op.pos, op.objLen)},
		{"version", func(b []byte) { put32(b, n.field(root, modelVersion, 4), 4) },
			"tflite: version: schema version 4 is not supported (want 3)"},
		{"opcode index", func(b []byte) { put32(b, n.field(op, operatorOpcodeIndex, 4), 7) },
			"tflite: subgraphs[0].operators[0].opcode_index: operator code index 7 out of range: the model has 2 operator codes"},
		{"tensor buffer", func(b []byte) { put32(b, n.field(t1, tensorBuffer, 4), 2) },
			"tflite: subgraphs[0].tensors[1].buffer: buffer index 2 out of range: the model has 2 buffers"},
		{"operator input", func(b []byte) { put32(b, n.target(op, operatorInputs)+4, 2) },
			"tflite: subgraphs[0].operators[0].inputs[0]: tensor index 2 out of range [-1, 2)"},
		{"subgraph output", func(b []byte) { put32(b, n.target(sg, subgraphOutputs)+4, 0xfffffffe) },
			"tflite: subgraphs[0].outputs[0]: tensor index -2 out of range [-1, 2)"},
		{"negative builtin", func(b []byte) {
			b[n.field(oc, opcodeDeprecatedBuiltin, 1)] = 0xfb
			put32(b, n.field(oc, opcodeBuiltin, 4), 0xfffffff0)
		},
			"tflite: operator_codes[0].builtin_code: negative operator code -5 (deprecated_builtin_code -5)"},
		// As in TFLite, the effective code is the larger of the two: ADD.
		{"negative deprecated code", func(b []byte) {
			b[n.field(oc, opcodeDeprecatedBuiltin, 1)] = 0xfb
			put32(b, n.field(oc, opcodeBuiltin, 4), 0)
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := bytes.Clone(tiny)
			c.mutate(b)
			if c.name == "short" {
				b, c.want = b[:7], "tflite: file of 7 bytes is too short for a TensorFlow Lite model (need at least 8)"
			}
			got := decodeErr(b)
			if got != c.want {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
			// Decode (with its safety net) agrees.
			if _, err := Decode(b); (err == nil) != (got == "") || (err != nil && err.Error() != got) {
				t.Errorf("Decode: %v", err)
			}
		})
	}
}

// rawModel builds a model with one subgraph whose tensor tables and buffer
// tables are written by the given functions, for structures Encode never
// writes.
func rawModel(tensors, buffers func(b *flatbuffers.Builder) []flatbuffers.UOffsetT) []byte {
	b := flatbuffers.NewBuilder(256)
	bufs := b.CreateVectorOfTables(buffers(b))
	tns := b.CreateVectorOfTables(tensors(b))
	b.StartObject(5)
	b.PrependUOffsetTSlot(subgraphTensors, tns, 0)
	sg := b.EndObject()
	sgs := b.CreateVectorOfTables([]flatbuffers.UOffsetT{sg})
	b.StartObject(5)
	b.PrependUint32Slot(modelVersion, 3, 0)
	b.PrependUOffsetTSlot(modelSubgraphs, sgs, 0)
	b.PrependUOffsetTSlot(modelBuffers, bufs, 0)
	b.FinishWithFileIdentifier(b.EndObject(), []byte("TFL3"))
	return b.FinishedBytes()
}

func emptyTable(b *flatbuffers.Builder) flatbuffers.UOffsetT {
	b.StartObject(0)
	return b.EndObject()
}

func oneEmptyBuffer(b *flatbuffers.Builder) []flatbuffers.UOffsetT {
	return []flatbuffers.UOffsetT{emptyTable(b)}
}

func TestUnsupported(t *testing.T) {
	sparse := rawModel(func(b *flatbuffers.Builder) []flatbuffers.UOffsetT {
		sp := emptyTable(b)
		b.StartObject(7)
		b.PrependUOffsetTSlot(tensorSparsity, sp, 0)
		return []flatbuffers.UOffsetT{b.EndObject()}
	}, oneEmptyBuffer)
	if got, want := decodeErr(sparse), "tflite: subgraphs[0].tensors[0].sparsity: sparse tensors are not supported"; got != want {
		t.Errorf("sparse: got %q, want %q", got, want)
	}

	details := rawModel(func(b *flatbuffers.Builder) []flatbuffers.UOffsetT {
		d := emptyTable(b)
		b.StartObject(7)
		b.PrependUint8Slot(quantDetailsType, 1, 0)
		b.PrependUOffsetTSlot(quantDetails, d, 0)
		q := b.EndObject()
		b.StartObject(5)
		b.PrependUOffsetTSlot(tensorQuantization, q, 0)
		return []flatbuffers.UOffsetT{b.EndObject()}
	}, oneEmptyBuffer)
	if got, want := decodeErr(details), "tflite: subgraphs[0].tensors[0].quantization.details: custom quantization details (type 1) are not supported"; got != want {
		t.Errorf("details: got %q, want %q", got, want)
	}
}

func TestExternalBuffer(t *testing.T) {
	external := func(off, size uint64) []byte {
		return rawModel(func(b *flatbuffers.Builder) []flatbuffers.UOffsetT {
			b.StartObject(3)
			b.PrependUint32Slot(tensorBuffer, 1, 0)
			return []flatbuffers.UOffsetT{b.EndObject()}
		}, func(b *flatbuffers.Builder) []flatbuffers.UOffsetT {
			e := emptyTable(b)
			b.StartObject(3)
			b.PrependUint64Slot(bufferOffset, off, 0)
			b.PrependUint64Slot(bufferSize, size, 0)
			return []flatbuffers.UOffsetT{e, b.EndObject()}
		})
	}
	// Data at file[4:8] is the identifier.
	data := external(4, 4)
	m, err := decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(m.Buffers[1].Data); got != "TFL3" || &m.Buffers[1].Data[0] != &data[4] {
		t.Errorf("external buffer data %q, want TFL3 aliasing the file", got)
	}
	bad := external(16, 1<<40)
	want := fmt.Sprintf("tflite: buffers[1].offset: external data of %d bytes at offset 16 runs past the end of the %d-byte file", uint64(1)<<40, len(bad))
	if got := decodeErr(bad); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	bad = external(1<<63, 1<<63)
	if got := decodeErr(bad); !strings.Contains(got, "buffers[1].offset: external data") {
		t.Errorf("overflowing offset+size: got %q", got)
	}
	// offset <= 1 means "not external": the data field (absent here) wins.
	m, err = decode(external(1, 100))
	if err != nil || m.Buffers[1].Data != nil {
		t.Errorf("offset 1: %v %v", err, m.Buffers[1].Data)
	}
}

// aliasModel builds a small file whose nTensors tensor offsets all point at
// one tensor table, whose shape is a vector of shapeLen elements: decoding
// it naively would copy nTensors*shapeLen elements out of ~4*(n+shapeLen)
// bytes. With nSubgraphs > 1 the subgraphs alias one subgraph too.
func aliasModel(shapeLen, nTensors, nSubgraphs int) []byte {
	b := flatbuffers.NewBuilder(1024)
	buf := emptyTable(b)
	bufs := b.CreateVectorOfTables([]flatbuffers.UOffsetT{buf})
	b.StartVector(4, shapeLen, 4)
	for i := 0; i < shapeLen; i++ {
		b.PrependInt32(int32(i))
	}
	shape := b.EndVector(shapeLen)
	b.StartObject(1)
	b.PrependUOffsetTSlot(tensorShape, shape, 0)
	tensor := b.EndObject()
	offs := make([]flatbuffers.UOffsetT, nTensors)
	for i := range offs {
		offs[i] = tensor
	}
	tns := b.CreateVectorOfTables(offs)
	b.StartObject(1)
	b.PrependUOffsetTSlot(subgraphTensors, tns, 0)
	sg := b.EndObject()
	sgOffs := make([]flatbuffers.UOffsetT, nSubgraphs)
	for i := range sgOffs {
		sgOffs[i] = sg
	}
	sgs := b.CreateVectorOfTables(sgOffs)
	b.StartObject(5)
	b.PrependUint32Slot(modelVersion, 3, 0)
	b.PrependUOffsetTSlot(modelSubgraphs, sgs, 0)
	b.PrependUOffsetTSlot(modelBuffers, bufs, 0)
	b.FinishWithFileIdentifier(b.EndObject(), []byte("TFL3"))
	return b.FinishedBytes()
}

// sharedDataModel builds a file whose nBuffers buffer offsets all point at
// one buffer holding dataLen bytes.
func sharedDataModel(dataLen, nBuffers int) []byte {
	return rawModel(func(b *flatbuffers.Builder) []flatbuffers.UOffsetT {
		return nil
	}, func(b *flatbuffers.Builder) []flatbuffers.UOffsetT {
		b.StartVector(1, dataLen, 16)
		for i := 0; i < dataLen; i++ {
			b.PlaceByte(byte(i))
		}
		data := b.EndVector(dataLen)
		b.StartObject(1)
		b.PrependUOffsetTSlot(bufferData, data, 0)
		buf := b.EndObject()
		offs := make([]flatbuffers.UOffsetT, nBuffers)
		for i := range offs {
			offs[i] = buf
		}
		return offs
	})
}

func TestSharedBufferData(t *testing.T) {
	if _, err := decode(sharedDataModel(100, 1)); err != nil {
		t.Fatal(err)
	}
	data := sharedDataModel(4000, 100)
	want := fmt.Sprintf("tflite: buffers[1].data: buffers hold 8000 bytes of data in total so far, more than the %d-byte file (do buffers share data?)", len(data))
	if got := decodeErr(data); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// allocBytes returns the bytes allocated by f.
func allocBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestAliasingBudget(t *testing.T) {
	// Small enough aliasing is accepted, within the budget.
	ok := aliasModel(4, 4, 2)
	if m, err := decode(ok); err != nil || len(m.Subgraphs) != 2 || len(m.Subgraphs[1].Tensors) != 4 {
		t.Fatalf("mild aliasing: %v", err)
	}

	cases := []struct {
		shapeLen, nTensors, nSubgraphs int
	}{
		{120, 120, 1},   // ~1 KB file, 14400 shape elements
		{500, 500, 1},   // ~4 KB file, 250000 elements
		{16, 16, 200},   // subgraph aliasing
		{100, 100, 100}, // ~1.6 KB file, 1e6 elements
	}
	for _, c := range cases {
		data := aliasModel(c.shapeLen, c.nTensors, c.nSubgraphs)
		var msg string
		alloc := allocBytes(func() { msg = decodeErr(data) })
		naive := uint64(c.shapeLen) * uint64(c.nTensors) * uint64(c.nSubgraphs) * 4
		t.Logf("%d-byte file (naive decode %d bytes): allocated %d bytes, error %q", len(data), naive, alloc, msg)
		limit := uint64(budgetPerByte*len(data)+budgetBase) * 2
		if alloc > limit || alloc > 4<<20 {
			t.Errorf("%d-byte file: decoding allocated %d bytes, want < %d", len(data), alloc, min(limit, 4<<20))
		}
		if naive > limit && !strings.Contains(msg, "budget") {
			t.Errorf("%d-byte file: got %q, want a budget error", len(data), msg)
		}
		if msg != "" {
			checkOneLine(t, msg)
		}
	}
}

func TestHostileAllocs(t *testing.T) {
	tiny := mustEncode(t, tinyModel())
	n := newNav(t, tiny)
	t1 := n.elem(n.elem(n.root(), modelSubgraphs, 0), subgraphTensors, 1)
	huge := bytes.Clone(tiny)
	put32(huge, n.target(t1, tensorShape), 1<<31)

	allocs := testing.AllocsPerRun(100, func() { _, _ = decode(huge) })
	bytesPer := allocBytes(func() {
		for i := 0; i < 100; i++ {
			_, _ = decode(huge)
		}
	}) / 100
	t.Logf("2^31-element vector in a %d-byte file: %.0f allocations, %d bytes per decode", len(huge), allocs, bytesPer)
	if allocs > 50 || bytesPer > 64<<10 {
		t.Errorf("decoding a hostile %d-byte file: %.0f allocations, %d bytes", len(huge), allocs, bytesPer)
	}

	// Random 1 KB inputs with a valid header allocate little.
	rng := rand.New(rand.NewPCG(1, 2))
	junk := make([]byte, 1024)
	total := allocBytes(func() {
		for i := 0; i < 2000; i++ {
			for j := range junk {
				junk[j] = byte(rng.UintN(256))
			}
			put32(junk, 0, uint32(rng.UintN(64))*4)
			copy(junk[4:], "TFL3")
			_, _ = decode(junk)
		}
	})
	if per := total / 2000; per > 256<<10 {
		t.Errorf("random 1 KB inputs: %d bytes allocated per decode", per)
	}
}

func TestRandomFlips(t *testing.T) {
	inputs := [][]byte{mustEncode(t, tinyModel()), mustEncode(t, sampleModel())}
	iters := 20000
	if testing.Short() {
		iters = 2000
	}
	rng := rand.New(rand.NewPCG(3, 4))
	decoded := 0
	for _, in := range inputs {
		for i := 0; i < iters; i++ {
			b := bytes.Clone(in)
			for k := 0; k <= int(rng.UintN(4)); k++ {
				b[rng.UintN(uint(len(b)))] = byte(rng.UintN(256))
			}
			m, err := decode(b)
			if err != nil {
				checkOneLine(t, err.Error())
				continue
			}
			decoded++
			checkReencode(t, m)
		}
	}
	t.Logf("%d of %d flipped inputs still decoded", decoded, 2*iters)
}

// checkReencode checks that a decoded model encodes, decodes to the same
// value, and re-encodes to the same bytes.
func checkReencode(t testing.TB, m *Model) {
	t.Helper()
	b1, err := Encode(m)
	if err != nil {
		t.Fatalf("decoded model does not encode: %v", err)
	}
	m2, err := decode(b1)
	if err != nil {
		t.Fatalf("re-encoded model does not decode: %v", err)
	}
	if d := diff(m, m2); d != "" {
		t.Fatalf("re-encoded model differs at Model%s", d)
	}
	b2, err := Encode(m2)
	if err != nil || !bytes.Equal(b1, b2) {
		t.Fatalf("second encoding differs (err %v)", err)
	}
}
