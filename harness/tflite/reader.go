package tflite

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	flatbuffers "github.com/google/flatbuffers/go"
)

// fieldError is the error type of this package: a dotted field path such as
// "subgraphs[0].tensors[3].shape" and a message. The path is built from the
// innermost field outwards while the error is returned, so decoding a valid
// file formats no paths at all.
type fieldError struct {
	op   string // "" for decoding, "encode" for Encode
	path string
	msg  string
}

func (e *fieldError) Error() string {
	var sb strings.Builder
	sb.WriteString("tflite: ")
	if e.op != "" {
		sb.WriteString(e.op)
		sb.WriteString(": ")
	}
	if e.path != "" {
		sb.WriteString(e.path)
		sb.WriteString(": ")
	}
	sb.WriteString(e.msg)
	return sb.String()
}

func errorf(format string, args ...any) error {
	return &fieldError{msg: fmt.Sprintf(format, args...)}
}

// in prefixes the path of err (a *fieldError) with the field name seg.
func in(err error, seg string) error {
	if fe, ok := err.(*fieldError); ok {
		if fe.path == "" {
			fe.path = seg
		} else {
			fe.path = seg + "." + fe.path
		}
	}
	return err
}

// inElem prefixes the path of err with "name[i]".
func inElem(err error, name string, i int) error {
	return in(err, name+"["+strconv.Itoa(i)+"]")
}

// Sizes of the flatbuffers primitives.
const (
	sizeUOffset = 4
	sizeSOffset = 4
	sizeVOffset = 2
)

// reader is a bounds-checked view of a flatbuffer. Every read goes through a
// check that the bytes lie inside buf, so none of the flatbuffers runtime
// accessors (which panic out of range) are ever called on an unchecked
// position. Sums that could wrap where int is 32 bits (position plus a
// 32-bit offset, element count times size) are computed in 64 bits.
type reader struct {
	buf []byte
	// budget is what is left of the decode budget, in bytes of Go memory.
	budget int64
	// limit is the initial budget, for error messages.
	limit int64
	// dataTotal is the total length of the buffer data decoded so far.
	// Buffer data is not copied, but disjoint buffers cannot hold more
	// than the file; more means buffers share data, which would multiply
	// the work and memory of consumers (and of Encode).
	dataTotal uint64
}

// Decode budget: the decoded values (slices copied out, strings, structs)
// may use at most budgetPerByte*len(file)+budgetBase bytes of Go memory. A
// genuine file uses well under 16 bytes of decoded values per file byte
// (constant buffer data is not copied and so costs nothing); only files whose
// offsets point many times at the same data exceed it.
const (
	budgetPerByte = 16
	budgetBase    = 64 << 10
)

func newReader(buf []byte) *reader {
	limit := int64(len(buf))*budgetPerByte + budgetBase
	return &reader{buf: buf, budget: limit, limit: limit}
}

// charge takes n items of size bytes each from the decode budget.
func (r *reader) charge(n, size int) error {
	cost := uint64(n) * uint64(size) // n < 2^32 and size < 2^10: no overflow
	if cost > uint64(r.budget) {
		return errorf("decoding would exceed the budget of %d bytes of decoded data for a %d-byte file (do many offsets point at the same data?)", r.limit, len(r.buf))
	}
	r.budget -= int64(cost)
	return nil
}

// check reports whether the n bytes at pos lie inside the buffer and pos is
// a multiple of align.
func (r *reader) check(pos, n, align int, what string) error {
	if pos < 0 || n < 0 || pos > len(r.buf) || n > len(r.buf)-pos {
		return errorf("%s at offset %d runs past the end of the %d-byte file", what, pos, len(r.buf))
	}
	if align > 1 && pos%align != 0 {
		return errorf("%s at offset %d is not aligned to %d bytes", what, pos, align)
	}
	return nil
}

func (r *reader) u16(pos int) uint16 { return flatbuffers.GetUint16(r.buf[pos:]) }
func (r *reader) u32(pos int) uint32 { return flatbuffers.GetUint32(r.buf[pos:]) }

// deref follows the uoffset stored at pos (which must already be checked)
// and returns the absolute position it points at.
func (r *reader) deref(pos int) (int, error) {
	off := r.u32(pos)
	if off == 0 {
		return 0, errorf("offset at %d is 0 (points at itself)", pos)
	}
	// uint64 so that the sum cannot wrap even where int is 32 bits.
	target := uint64(pos) + uint64(off)
	if target >= uint64(len(r.buf)) {
		return 0, errorf("offset %d at %d points past the end of the %d-byte file", off, pos, len(r.buf))
	}
	return int(target), nil
}

// table is a verified flatbuffers table: its inline object lies in the
// buffer, and so does its vtable.
type table struct {
	r      *reader
	pos    int // start of the object (its soffset to the vtable)
	vt     int // start of the vtable
	vtLen  int // vtable size in bytes
	objLen int // inline object size in bytes
}

// table resolves and verifies the table whose object starts at pos.
func (r *reader) table(pos int) (table, error) {
	if err := r.check(pos, sizeSOffset, 4, "table"); err != nil {
		return table{}, err
	}
	soff := int(flatbuffers.GetSOffsetT(r.buf[pos:]))
	vt := pos - soff
	if vt < 0 || vt > len(r.buf)-4 {
		return table{}, errorf("table at offset %d has its vtable at %d, outside the %d-byte file", pos, vt, len(r.buf))
	}
	if vt%2 != 0 {
		return table{}, errorf("table at offset %d has its vtable at odd offset %d", pos, vt)
	}
	vtLen := int(r.u16(vt))
	objLen := int(r.u16(vt + 2))
	if vtLen < 4 || vtLen%2 != 0 {
		return table{}, errorf("table at offset %d has a vtable (at %d) of invalid size %d", pos, vt, vtLen)
	}
	if vtLen > len(r.buf)-vt {
		return table{}, errorf("vtable of %d bytes at offset %d runs past the end of the %d-byte file", vtLen, vt, len(r.buf))
	}
	if objLen < sizeSOffset {
		return table{}, errorf("table at offset %d has invalid inline size %d", pos, objLen)
	}
	if objLen > len(r.buf)-pos {
		return table{}, errorf("table of %d bytes at offset %d runs past the end of the %d-byte file", objLen, pos, len(r.buf))
	}
	return table{r: r, pos: pos, vt: vt, vtLen: vtLen, objLen: objLen}, nil
}

// field returns the absolute position of field idx, of size bytes, or 0 if
// the field is absent. It checks that the field lies inside the table's
// inline object and is aligned to its size.
func (t table) field(idx, size int, name string) (int, error) {
	vo := 4 + 2*idx
	if vo+sizeVOffset > t.vtLen {
		return 0, nil // field newer than the writer of the file: absent
	}
	off := int(t.r.u16(t.vt + vo))
	if off == 0 {
		return 0, nil
	}
	if off < sizeSOffset || off > t.objLen-size {
		return 0, in(errorf("field at offset %d of the table at %d lies outside the table's %d bytes", off, t.pos, t.objLen), name)
	}
	pos := t.pos + off
	if pos%size != 0 {
		return 0, in(errorf("field at offset %d is not aligned to %d bytes", pos, size), name)
	}
	return pos, nil
}

// has reports whether field idx is present, without reading it.
func (t table) has(idx int) bool {
	vo := 4 + 2*idx
	return vo+sizeVOffset <= t.vtLen && t.r.u16(t.vt+vo) != 0
}

func (t table) uint8Field(idx int, def uint8, name string) (uint8, error) {
	p, err := t.field(idx, 1, name)
	if err != nil || p == 0 {
		return def, err
	}
	return flatbuffers.GetUint8(t.r.buf[p:]), nil
}

func (t table) int8Field(idx int, def int8, name string) (int8, error) {
	v, err := t.uint8Field(idx, uint8(def), name)
	return int8(v), err
}

func (t table) boolField(idx int, def bool, name string) (bool, error) {
	var d uint8
	if def {
		d = 1
	}
	v, err := t.uint8Field(idx, d, name)
	return v != 0, err
}

func (t table) uint32Field(idx int, def uint32, name string) (uint32, error) {
	p, err := t.field(idx, 4, name)
	if err != nil || p == 0 {
		return def, err
	}
	return flatbuffers.GetUint32(t.r.buf[p:]), nil
}

func (t table) int32Field(idx int, def int32, name string) (int32, error) {
	v, err := t.uint32Field(idx, uint32(def), name)
	return int32(v), err
}

func (t table) float32Field(idx int, def float32, name string) (float32, error) {
	v, err := t.uint32Field(idx, math.Float32bits(def), name)
	return math.Float32frombits(v), err
}

func (t table) uint64Field(idx int, def uint64, name string) (uint64, error) {
	p, err := t.field(idx, 8, name)
	if err != nil || p == 0 {
		return def, err
	}
	return flatbuffers.GetUint64(t.r.buf[p:]), nil
}

// ref follows the uoffset in field idx and returns the absolute target
// position, or 0 if the field is absent.
func (t table) ref(idx int, name string) (int, error) {
	p, err := t.field(idx, sizeUOffset, name)
	if err != nil || p == 0 {
		return 0, err
	}
	target, err := t.r.deref(p)
	if err != nil {
		return 0, in(err, name)
	}
	return target, nil
}

// subtable returns the table field idx points at; ok is false if absent.
func (t table) subtable(idx int, name string) (sub table, ok bool, err error) {
	target, err := t.ref(idx, name)
	if err != nil || target == 0 {
		return table{}, false, err
	}
	sub, err = t.r.table(target)
	if err != nil {
		return table{}, false, in(err, name)
	}
	return sub, true, nil
}

// vector returns the position of the first element and the length of the
// vector field idx points at; present is false if the field is absent. It
// checks that all n*elemSize bytes lie inside the file and that the elements
// are aligned to elemSize (at least 4 for the length prefix).
func (t table) vector(idx, elemSize int, name string) (start, n int, present bool, err error) {
	target, err := t.ref(idx, name)
	if err != nil || target == 0 {
		return 0, 0, false, err
	}
	start, n, err = t.r.vectorAt(target, elemSize)
	if err != nil {
		return 0, 0, false, in(err, name)
	}
	return start, n, true, nil
}

func (r *reader) vectorAt(pos, elemSize int) (start, n int, err error) {
	if err := r.check(pos, sizeUOffset, 4, "vector length"); err != nil {
		return 0, 0, err
	}
	n32 := r.u32(pos)
	start = pos + sizeUOffset
	if uint64(n32)*uint64(elemSize) > uint64(len(r.buf)-start) {
		return 0, 0, errorf("vector of %d elements at offset %d runs past the end of the %d-byte file", n32, pos, len(r.buf))
	}
	n = int(n32) // at most len(r.buf), so it fits
	if elemSize > 4 && start%elemSize != 0 {
		return 0, 0, errorf("vector of %d-byte elements at offset %d is not aligned to %d bytes", elemSize, pos, elemSize)
	}
	return start, n, nil
}

// str reads the string field idx ("" when absent). Strings must carry the
// NUL terminator flatbuffers writes after them.
func (t table) str(idx int, name string) (string, error) {
	start, n, ok, err := t.vector(idx, 1, name)
	if err != nil || !ok {
		return "", err
	}
	if start+n >= len(t.r.buf) || t.r.buf[start+n] != 0 {
		return "", in(errorf("string of %d bytes at offset %d is not NUL-terminated", n, start-sizeUOffset), name)
	}
	if n == 0 {
		return "", nil
	}
	if err := t.r.charge(n, 1); err != nil {
		return "", in(err, name)
	}
	return string(t.r.buf[start : start+n]), nil
}

// bytes returns the [ubyte] field idx as a subslice of the file (no copy),
// nil when absent or empty.
func (t table) bytes(idx int, name string) ([]byte, error) {
	start, n, ok, err := t.vector(idx, 1, name)
	if err != nil || !ok || n == 0 {
		return nil, err
	}
	return t.r.buf[start : start+n : start+n], nil
}

// int32s copies the [int] field idx out: nil when absent, non-nil when
// present (even if empty).
func (t table) int32s(idx int, name string) ([]int32, error) {
	start, n, ok, err := t.vector(idx, 4, name)
	if err != nil || !ok {
		return nil, err
	}
	if err := t.r.charge(n, 4); err != nil {
		return nil, in(err, name)
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = flatbuffers.GetInt32(t.r.buf[start+4*i:])
	}
	return out, nil
}

// float32s copies the [float] field idx out (nil when absent).
func (t table) float32s(idx int, name string) ([]float32, error) {
	start, n, ok, err := t.vector(idx, 4, name)
	if err != nil || !ok {
		return nil, err
	}
	if err := t.r.charge(n, 4); err != nil {
		return nil, in(err, name)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = flatbuffers.GetFloat32(t.r.buf[start+4*i:])
	}
	return out, nil
}

// int64s copies the [long] field idx out (nil when absent).
func (t table) int64s(idx int, name string) ([]int64, error) {
	start, n, ok, err := t.vector(idx, 8, name)
	if err != nil || !ok {
		return nil, err
	}
	if err := t.r.charge(n, 8); err != nil {
		return nil, in(err, name)
	}
	out := make([]int64, n)
	for i := range out {
		out[i] = flatbuffers.GetInt64(t.r.buf[start+8*i:])
	}
	return out, nil
}

// tableVector resolves the vector of tables in field idx and charges
// elemCost bytes per element for the Go values the caller will decode from
// them. present is false when the field is absent. Use elem to get the
// tables.
func (t table) tableVector(idx int, name string, elemCost int) (start, n int, present bool, err error) {
	start, n, ok, err := t.vector(idx, sizeUOffset, name)
	if err != nil || !ok {
		return 0, 0, false, err
	}
	if err := t.r.charge(n, elemCost); err != nil {
		return 0, 0, false, in(err, name)
	}
	return start, n, true, nil
}

// elem returns table i of the vector of tables whose elements start at
// start (as returned by tableVector, so the offset itself is in bounds).
func (r *reader) elem(start, i int) (table, error) {
	target, err := r.deref(start + sizeUOffset*i)
	if err != nil {
		return table{}, err
	}
	return r.table(target)
}
