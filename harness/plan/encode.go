package plan

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/batteryless/harness/harness/model"
)

// The binary image of a model and its plan, read by the firmware. See
// FORMAT.md beside this file for the layout; every field is little-endian.
const (
	ImageMagic uint32 = 0x4C504849 // "IHPL"
	// ImageVersion is the version of an image without a board-side rule;
	// ImageVersionSections that of one with the run-time rule (flag
	// ImageRuntimeRule) or just-in-time checkpoints (ImageFlagJIT), which
	// carries their section. An encoder writes the lowest version that
	// holds the plan, so images without either never changed.
	ImageVersion         = 1
	ImageVersionSections = 2
	ImageHeaderBytes     = 32
	// RuleHeadBytes is the fixed part of the rule section; one u32 per
	// task follows it. JITHeadBytes is the jit section's; one u32 per
	// layer follows it.
	RuleHeadBytes    = 16
	JITHeadBytes     = 16
	TensorRecBytes   = 24
	LayerRecBytes    = 128
	ScheduleRecBytes = 32
	QuantRecBytes    = 8
	LayerParams      = 28
	noTensor         = 0xFFFF
)

// Tensor flags in an image.
const (
	TensorConst = 1 << 0
)

// Image header flags (byte 23).
const (
	// ImageRuntimeRule: the runtime reads the supply voltage before each
	// task and, when the energy left does not cover the task and a commit,
	// commits and sleeps until the turn-on voltage (Plan.RuntimeRule).
	ImageRuntimeRule = 1 << 0
	// ImageJIT: just-in-time checkpoints (Plan.JIT): the runtime reads the
	// supply before every chunk of a task and, below the threshold, writes
	// a snapshot, sleeps until the turn-on voltage and goes on.
	ImageFlagJIT = 1 << 1
)

// Schedule flags in an image.
const (
	ScheduleNoCommitAtEnd = 1 << 0
)

// ImageRule is the run-time rule section of an image: what the firmware's
// rule needs to decide as plan.RuleNeed and plan.RuleLimit do, in integer
// units. The energy above brown-out at v mV is
// CapacitanceNF * (v^2 - VoffMV^2) / 2e6 nJ (rounded down).
type ImageRule struct {
	CapacitanceNF uint32
	VonMV, VoffMV uint16
	LimitNJ       uint32   // a task whose need is above it runs anyway
	NeedNJ        []uint32 // per task: plan.RuleNeed, rounded up
}

// ImageJIT is the just-in-time checkpoint section of an image (Plan.JIT).
type ImageJIT struct {
	ThresholdMV, VonMV            uint16
	SnapshotOffset, SnapshotBytes uint32
	ChunkPixels                   []uint32 // per layer
}

// ImageTensor is a tensor record of an image.
type ImageTensor struct {
	DType      model.DType
	Flags      uint8
	ZeroPoint  int16
	N, H, W, C int
	Offset     int // NVM offset (activations) or image offset of the data (constants)
	Bytes      int
}

// ImageLayer is a layer record of an image.
type ImageLayer struct {
	Op                    model.Op
	Inputs                []int
	Output, Weights, Bias int // -1: none
	Params                [LayerParams]int32
}

// Image is a decoded model-and-plan image.
type Image struct {
	Version   int
	WordBytes int
	Flags     uint8
	NVMBytes  int
	PlanTag   uint32
	Tensors   []ImageTensor
	Layers    []ImageLayer
	Schedules []LayerPlan // the schedule fields only
	Quant     [][2]int32  // (multiplier, shift) pairs
	Rule      *ImageRule  // the run-time rule section (version 2), nil without
	JIT       *ImageJIT   // the jit section (version 2), nil without
	Data      []byte      // the whole image (constants are slices of it)
}

// sectionName names the version-2 section an image has.
func sectionName(rule bool) string {
	if rule {
		return "rule"
	}
	return "jit"
}

// nanoJoules is the least n for which n nJ, as the float n*1e-9 J, is at
// least x J, as a u32; ok is false when it does not fit. (Not just
// ceil(x*1e9): the product rounds, and the firmware's integer comparison
// must be the float one of a board told n*1e-9 J.)
func nanoJoules(x float64) (uint32, bool) {
	v := math.Ceil(x * 1e9)
	if !(v >= 0 && v <= math.MaxUint32) {
		return 0, false
	}
	for v > 0 && (v-1)*1e-9 >= x {
		v--
	}
	for v*1e-9 < x {
		v++
	}
	if v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}

// millivolts is v volts in mV, rounded, as a u16.
func millivolts(v float64) (uint16, bool) {
	mv := math.Round(v * 1000)
	if !(mv >= 0 && mv <= math.MaxUint16) {
		return 0, false
	}
	return uint16(mv), true
}

// jitOf is the jit section's values for plan p.
func jitOf(p *Plan, layers int) (*ImageJIT, error) {
	j, st := p.JIT, p.Storage
	if st == nil || len(j.ChunkPixels) != layers {
		return nil, fmt.Errorf("plan: image: the plan's just-in-time checkpoints need its storage and a chunk size per layer (%d for %d layers)", len(j.ChunkPixels), layers)
	}
	r := &ImageJIT{SnapshotOffset: uint32(j.SnapshotOffset), SnapshotBytes: uint32(j.SnapshotBytes), ChunkPixels: make([]uint32, layers)}
	var ok1, ok2 bool
	r.ThresholdMV, ok1 = millivolts(j.ThresholdV)
	r.VonMV, ok2 = millivolts(st.VonV)
	if !ok1 || !ok2 || r.ThresholdMV == 0 || r.VonMV <= r.ThresholdMV || j.SnapshotOffset < HeaderBytes || j.SnapshotOffset%4 != 0 ||
		j.SnapshotBytes < SnapshotHeaderBytes || j.SnapshotOffset+j.SnapshotBytes > p.NVMBytes {
		return nil, fmt.Errorf("plan: image: just-in-time checkpoints: threshold %g V, turn-on %g V, snapshot area %d+%d of %d NVM bytes do not fit the section", j.ThresholdV, st.VonV, j.SnapshotOffset, j.SnapshotBytes, p.NVMBytes)
	}
	for i, n := range j.ChunkPixels {
		if n < 1 || n > math.MaxUint32 {
			return nil, fmt.Errorf("plan: image: layer %d: %d pixels per chunk", i, n)
		}
		r.ChunkPixels[i] = uint32(n)
	}
	return r, nil
}

// ruleOf is the rule section's values for plan p. The need is rounded up
// to whole nJ, and the firmware's reading rounds the energy down, so the
// firmware sleeps exactly where the plan's float rule would, told the
// energy the firmware computes. So does the "runs anyway" test: the limit
// is rounded up too, and the need of a task above the float limit is
// raised above the integer one (its energy test then no longer matters).
func ruleOf(p *Plan) (*ImageRule, error) {
	st := p.Storage
	if st == nil {
		return nil, fmt.Errorf("plan: image: the plan has the run-time rule but no storage (capacitance and thresholds) for it")
	}
	r := &ImageRule{NeedNJ: make([]uint32, len(p.Tasks))}
	var ok1, ok2, ok3, ok4 bool
	if nf := math.Round(st.CapacitanceF * 1e9); nf > 0 && nf <= math.MaxUint32 {
		r.CapacitanceNF, ok1 = uint32(nf), true
	}
	r.VonMV, ok2 = millivolts(st.VonV)
	r.VoffMV, ok3 = millivolts(st.VoffV)
	r.LimitNJ, ok4 = nanoJoules(p.RuleLimit())
	if !ok1 || !ok2 || !ok3 || !ok4 || r.LimitNJ == math.MaxUint32 || r.VoffMV == 0 || r.VonMV <= r.VoffMV {
		return nil, fmt.Errorf("plan: image: storage %g F, %g V on, %g V off, limit %g J do not fit the rule section's nF, mV and nJ fields", st.CapacitanceF, st.VonV, st.VoffV, p.RuleLimit())
	}
	for i := range p.Tasks {
		need, ok := nanoJoules(p.RuleNeed(i))
		if !ok {
			need = math.MaxUint32 // above the limit: runs anyway, as in the plan
		}
		if p.RuleNeed(i) > p.RuleLimit() {
			need = max(need, r.LimitNJ+1)
		}
		r.NeedNJ[i] = need
	}
	return r, nil
}

func align4(n int) int { return (n + 3) &^ 3 }

// Tag is a 32-bit tag of the plan's task structure, written in the image
// and the NVM header so a board never resumes the progress of another plan.
func (p *Plan) Tag() uint32 {
	h := uint32(2166136261)
	mix := func(v uint32) {
		for i := 0; i < 4; i++ {
			h ^= v & 0xff
			h *= 16777619
			v >>= 8
		}
	}
	mix(uint32(len(p.Tasks)))
	for _, lp := range p.Layers {
		for _, v := range []int{lp.Layer, lp.TileH, lp.TileW, lp.TileC, lp.TileR, lp.CommitEvery, lp.PartialBase} {
			mix(uint32(v))
		}
		if lp.NoCommitAtEnd {
			mix(1)
		}
	}
	return h
}

// layerParams packs a layer's kernel parameters (FORMAT.md lists them) and
// appends its per-channel quantization to quant.
func layerParams(l *model.Layer, quant *[][2]int32) [LayerParams]int32 {
	var p [LayerParams]int32
	addQuant := func(mult, shift []int32) int32 {
		idx := int32(len(*quant))
		for i := range mult {
			*quant = append(*quant, [2]int32{mult[i], shift[i]})
		}
		return idx
	}
	switch l.Op {
	case model.OpConv2D, model.OpDepthwiseConv2D:
		c := l.Conv
		p = [LayerParams]int32{int32(c.KernelH), int32(c.KernelW), int32(c.StrideH), int32(c.StrideW), int32(c.DilationH), int32(c.DilationW),
			int32(c.PadTop), int32(c.PadLeft), int32(c.DepthMultiplier), c.InputOffset, c.OutputOffset, c.ActMin, c.ActMax,
			addQuant(c.Multiplier, c.Shift)}
	case model.OpFullyConnected:
		f := l.FC
		p = [LayerParams]int32{int32(f.Batches), int32(f.Depth), int32(f.OutC), f.InputOffset, f.FilterOffset, f.OutputOffset,
			f.ActMin, f.ActMax, addQuant(f.Multiplier, f.Shift), int32(len(f.Multiplier))}
	case model.OpAveragePool2D, model.OpMaxPool2D:
		q := l.Pool
		p = [LayerParams]int32{int32(q.FilterH), int32(q.FilterW), int32(q.StrideH), int32(q.StrideW), int32(q.PadTop), int32(q.PadLeft), q.ActMin, q.ActMax}
	case model.OpAdd:
		a := l.Add
		p = [LayerParams]int32{a.Input1Offset, a.Input2Offset, int32(a.LeftShift), a.Input1Mult, int32(a.Input1Shift), a.Input2Mult, int32(a.Input2Shift),
			a.OutputMult, int32(a.OutputShift), a.OutputOffset, a.ActMin, a.ActMax}
	case model.OpMul:
		q := l.Mul
		p = [LayerParams]int32{q.Input1Offset, q.Input2Offset, q.OutputMult, int32(q.OutputShift), q.OutputOffset, q.ActMin, q.ActMax}
	case model.OpSoftmax:
		p = [LayerParams]int32{l.Softmax.InputMult, int32(l.Softmax.InputLeftShift), l.Softmax.DiffMin}
	case model.OpQuantize:
		if r := l.Requant; r != nil {
			p = [LayerParams]int32{r.InputOffset, r.Multiplier, int32(r.Shift), r.OutputOffset}
		} else {
			p = [LayerParams]int32{0, 0, 0, 0, 1, int32(math.Float32bits(float32(l.Edge.Scale))), l.Edge.ZeroPoint}
		}
	case model.OpDequantize:
		p = [LayerParams]int32{int32(math.Float32bits(float32(l.Edge.Scale))), l.Edge.ZeroPoint}
	}
	return p
}

// EncodeImage writes the binary image of model m and plan p.
func EncodeImage(m *model.Model, p *Plan) ([]byte, error) {
	if len(m.Tensors) >= noTensor || len(m.Layers) >= noTensor {
		return nil, fmt.Errorf("plan: image: %d tensors and %d layers exceed the format's 16-bit counts", len(m.Tensors), len(m.Layers))
	}
	var quant [][2]int32
	params := make([][LayerParams]int32, len(m.Layers))
	for i, l := range m.Layers {
		params[i] = layerParams(l, &quant)
	}
	if len(quant) >= 1<<16 {
		return nil, fmt.Errorf("plan: image: %d quantization entries exceed 65535", len(quant))
	}
	off := ImageHeaderBytes
	tensorsAt := off
	off += len(m.Tensors) * TensorRecBytes
	layersAt := off
	off += len(m.Layers) * LayerRecBytes
	schedAt := off
	off += len(p.Layers) * ScheduleRecBytes
	quantAt := off
	off += len(quant) * QuantRecBytes
	var rule *ImageRule
	var jit *ImageJIT
	if p.RuntimeRule && p.JIT != nil {
		return nil, fmt.Errorf("plan: image: a plan has the run-time rule or just-in-time checkpoints, not both")
	}
	sectionAt := off
	if p.RuntimeRule {
		var err error
		if rule, err = ruleOf(p); err != nil {
			return nil, err
		}
		off += RuleHeadBytes + 4*len(p.Tasks)
	}
	if p.JIT != nil {
		var err error
		if jit, err = jitOf(p, len(m.Layers)); err != nil {
			return nil, err
		}
		off += JITHeadBytes + 4*len(m.Layers)
	}
	dataOff := map[int]int{}
	for _, t := range m.Tensors {
		if t.IsConst() {
			dataOff[t.Index] = off
			off = align4(off + len(t.Const))
		}
	}
	if off > math.MaxUint32 {
		return nil, fmt.Errorf("plan: image of %d bytes is too big", off)
	}
	b := make([]byte, off)
	le := binary.LittleEndian
	le.PutUint32(b[0:], ImageMagic)
	le.PutUint16(b[4:], ImageVersion)
	if rule != nil || jit != nil {
		le.PutUint16(b[4:], ImageVersionSections)
	}
	le.PutUint16(b[6:], ImageHeaderBytes)
	le.PutUint32(b[8:], uint32(off))
	le.PutUint16(b[16:], uint16(len(m.Tensors)))
	le.PutUint16(b[18:], uint16(len(m.Layers)))
	le.PutUint16(b[20:], uint16(len(quant)))
	b[22] = byte(p.WordBytes)
	if p.RuntimeRule {
		b[23] |= ImageRuntimeRule
	}
	if p.JIT != nil {
		b[23] |= ImageFlagJIT
	}
	le.PutUint32(b[24:], uint32(p.NVMBytes))
	le.PutUint32(b[28:], p.Tag())
	for i, t := range m.Tensors {
		r := b[tensorsAt+i*TensorRecBytes:]
		r[0] = byte(t.DType)
		offset := t.Offset
		if t.IsConst() {
			r[1] = TensorConst
			offset = dataOff[t.Index]
			copy(b[offset:], t.Const)
		} else if pl, ok := p.Placement(t.Index); ok {
			offset = pl.Offset
		} else {
			offset = math.MaxUint32 // a tensor the layers never use
		}
		le.PutUint16(r[2:], uint16(int16(t.ZeroPoint)))
		le.PutUint16(r[4:], uint16(t.Shape.N))
		le.PutUint16(r[6:], uint16(t.Shape.H))
		le.PutUint16(r[8:], uint16(t.Shape.W))
		le.PutUint16(r[10:], uint16(t.Shape.C))
		le.PutUint32(r[12:], uint32(offset))
		le.PutUint32(r[16:], uint32(t.Bytes()))
	}
	ref := func(t int) uint16 {
		if t < 0 {
			return noTensor
		}
		return uint16(t)
	}
	for i, l := range m.Layers {
		r := b[layersAt+i*LayerRecBytes:]
		r[0] = byte(l.Op)
		r[1] = byte(len(l.Inputs))
		in1 := -1
		if len(l.Inputs) > 1 {
			in1 = l.Inputs[1]
		}
		le.PutUint16(r[4:], ref(l.Inputs[0]))
		le.PutUint16(r[6:], ref(in1))
		le.PutUint16(r[8:], ref(l.Output))
		le.PutUint16(r[10:], ref(l.Weights))
		le.PutUint16(r[12:], ref(l.Bias))
		for k, v := range params[i] {
			le.PutUint32(r[16+4*k:], uint32(v))
		}
	}
	for i, lp := range p.Layers {
		r := b[schedAt+i*ScheduleRecBytes:]
		le.PutUint16(r[0:], uint16(lp.TileH))
		le.PutUint16(r[2:], uint16(lp.TileW))
		le.PutUint16(r[4:], uint16(lp.TileC))
		le.PutUint16(r[6:], uint16(lp.TileR))
		le.PutUint16(r[8:], uint16(lp.CommitEvery))
		if lp.NoCommitAtEnd {
			le.PutUint16(r[10:], ScheduleNoCommitAtEnd)
		}
		le.PutUint32(r[12:], uint32(lp.FirstTask))
		le.PutUint32(r[16:], uint32(lp.Tasks))
		le.PutUint32(r[20:], uint32(lp.PartialBase))
		le.PutUint16(r[24:], uint16(lp.PartialSlots))
		le.PutUint32(r[28:], uint32(lp.PartialSlotBytes))
	}
	for i, q := range quant {
		le.PutUint32(b[quantAt+8*i:], uint32(q[0]))
		le.PutUint32(b[quantAt+8*i+4:], uint32(q[1]))
	}
	if jit != nil {
		r := b[sectionAt:]
		le.PutUint16(r[0:], jit.ThresholdMV)
		le.PutUint16(r[2:], jit.VonMV)
		le.PutUint32(r[4:], jit.SnapshotOffset)
		le.PutUint32(r[8:], jit.SnapshotBytes)
		le.PutUint32(r[12:], uint32(JITHeadBytes+4*len(jit.ChunkPixels)))
		for i, n := range jit.ChunkPixels {
			le.PutUint32(r[JITHeadBytes+4*i:], n)
		}
	}
	if rule != nil {
		r := b[sectionAt:]
		le.PutUint32(r[0:], rule.CapacitanceNF)
		le.PutUint16(r[4:], rule.VonMV)
		le.PutUint16(r[6:], rule.VoffMV)
		le.PutUint32(r[8:], rule.LimitNJ)
		le.PutUint32(r[12:], uint32(RuleHeadBytes+4*len(rule.NeedNJ)))
		for i, n := range rule.NeedNJ {
			le.PutUint32(r[RuleHeadBytes+4*i:], n)
		}
	}
	le.PutUint32(b[12:], crc32.ChecksumIEEE(b[16:]))
	return b, nil
}

// DecodeImage parses and checks an image: magic, version, sizes, CRC, and
// every record's references. It never panics on bad input.
func DecodeImage(b []byte) (*Image, error) {
	le := binary.LittleEndian
	if len(b) < ImageHeaderBytes {
		return nil, fmt.Errorf("plan: image: %d bytes, shorter than its %d-byte header", len(b), ImageHeaderBytes)
	}
	if m := le.Uint32(b); m != ImageMagic {
		return nil, fmt.Errorf("plan: image: magic %#x, want %#x (IHPL)", m, ImageMagic)
	}
	version := int(le.Uint16(b[4:]))
	if version != ImageVersion && version != ImageVersionSections {
		return nil, fmt.Errorf("plan: image: version %d, this harness reads versions %d and %d", version, ImageVersion, ImageVersionSections)
	}
	if h := le.Uint16(b[6:]); h != ImageHeaderBytes {
		return nil, fmt.Errorf("plan: image: header of %d bytes, want %d", h, ImageHeaderBytes)
	}
	total := int(le.Uint32(b[8:]))
	if total != len(b) {
		return nil, fmt.Errorf("plan: image: header says %d bytes, the image has %d", total, len(b))
	}
	if c := crc32.ChecksumIEEE(b[16:]); c != le.Uint32(b[12:]) {
		return nil, fmt.Errorf("plan: image: CRC-32 %#08x, header says %#08x", c, le.Uint32(b[12:]))
	}
	img := &Image{Version: version, WordBytes: int(b[22]), Flags: b[23], NVMBytes: int(le.Uint32(b[24:])), PlanTag: le.Uint32(b[28:]), Data: b}
	if img.WordBytes != 2 && img.WordBytes != 4 {
		return nil, fmt.Errorf("plan: image: NVM word of %d bytes, want 2 or 4", img.WordBytes)
	}
	if img.NVMBytes < HeaderBytes {
		return nil, fmt.Errorf("plan: image: NVM area of %d bytes is smaller than its %d-byte header", img.NVMBytes, HeaderBytes)
	}
	hasRule, hasJIT := img.Flags&ImageRuntimeRule != 0, img.Flags&ImageFlagJIT != 0
	if hasRule && hasJIT {
		return nil, fmt.Errorf("plan: image: flags %#x: the run-time rule and just-in-time checkpoints together", img.Flags)
	}
	if (hasRule || hasJIT) != (version == ImageVersionSections) {
		return nil, fmt.Errorf("plan: image: version %d with flags %#x: the rule and jit sections come with version %d, and only with it", version, img.Flags, ImageVersionSections)
	}
	nt, nl, nq := int(le.Uint16(b[16:])), int(le.Uint16(b[18:])), int(le.Uint16(b[20:]))
	tensorsAt := ImageHeaderBytes
	layersAt := tensorsAt + nt*TensorRecBytes
	schedAt := layersAt + nl*LayerRecBytes
	quantAt := schedAt + nl*ScheduleRecBytes
	if quantAt+nq*QuantRecBytes > len(b) {
		return nil, fmt.Errorf("plan: image: %d tensors, %d layers and %d quantization entries do not fit %d bytes", nt, nl, nq, len(b))
	}
	// The records end after the quantization entries, or after the rule
	// or jit section, whose size its head says (checked below).
	sectionAt := quantAt + nq*QuantRecBytes
	recordsEnd := sectionAt
	if version == ImageVersionSections {
		if sectionAt+RuleHeadBytes > len(b) {
			return nil, fmt.Errorf("plan: image: the %s section's head at %d does not fit %d bytes", sectionName(hasRule), sectionAt, len(b))
		}
		n := int(le.Uint32(b[sectionAt+12:]))
		if n < RuleHeadBytes || n%4 != 0 || n > len(b)-sectionAt {
			return nil, fmt.Errorf("plan: image: %s section of %d bytes at %d does not fit %d bytes", sectionName(hasRule), n, sectionAt, len(b))
		}
		recordsEnd = sectionAt + n
	}
	for i := 0; i < nt; i++ {
		r := b[tensorsAt+i*TensorRecBytes:]
		t := ImageTensor{DType: model.DType(r[0]), Flags: r[1], ZeroPoint: int16(le.Uint16(r[2:])),
			N: int(le.Uint16(r[4:])), H: int(le.Uint16(r[6:])), W: int(le.Uint16(r[8:])), C: int(le.Uint16(r[10:])),
			Offset: int(le.Uint32(r[12:])), Bytes: int(le.Uint32(r[16:]))}
		if t.DType.Size() == 0 {
			return nil, fmt.Errorf("plan: image: tensor %d has data type %d", i, r[0])
		}
		if t.N*t.H*t.W*t.C*t.DType.Size() != t.Bytes {
			return nil, fmt.Errorf("plan: image: tensor %d: shape %dx%dx%dx%d of %s is not %d bytes", i, t.N, t.H, t.W, t.C, t.DType, t.Bytes)
		}
		if t.Flags&TensorConst != 0 && (t.Offset < recordsEnd || t.Offset > len(b) || t.Bytes > len(b)-t.Offset) {
			return nil, fmt.Errorf("plan: image: tensor %d: constant data at %d+%d lies outside the data section", i, t.Offset, t.Bytes)
		}
		if t.Flags&TensorConst == 0 && t.Offset != math.MaxUint32 && (t.Offset < HeaderBytes || t.Offset > img.NVMBytes || t.Bytes > img.NVMBytes-t.Offset) {
			return nil, fmt.Errorf("plan: image: tensor %d: NVM bytes %d+%d lie outside the activation area [%d, %d)", i, t.Offset, t.Bytes, HeaderBytes, img.NVMBytes)
		}
		img.Tensors = append(img.Tensors, t)
	}
	tensorRef := func(v uint16, what string, layer int) (int, error) {
		if v == noTensor {
			return -1, nil
		}
		if int(v) >= nt {
			return 0, fmt.Errorf("plan: image: layer %d: %s tensor %d of %d", layer, what, v, nt)
		}
		return int(v), nil
	}
	for i := 0; i < nl; i++ {
		r := b[layersAt+i*LayerRecBytes:]
		l := ImageLayer{Op: model.Op(r[0])}
		if l.Op < model.OpConv2D || l.Op > model.OpDequantize {
			return nil, fmt.Errorf("plan: image: layer %d has operator %d", i, r[0])
		}
		nin := int(r[1])
		if nin < 1 || nin > 2 {
			return nil, fmt.Errorf("plan: image: layer %d has %d inputs", i, nin)
		}
		for k := 0; k < nin; k++ {
			t, err := tensorRef(le.Uint16(r[4+2*k:]), "input", i)
			if err != nil || t < 0 {
				return nil, fmt.Errorf("plan: image: layer %d: input %d is missing or out of range", i, k)
			}
			l.Inputs = append(l.Inputs, t)
		}
		var err error
		if l.Output, err = tensorRef(le.Uint16(r[8:]), "output", i); err != nil || l.Output < 0 {
			return nil, fmt.Errorf("plan: image: layer %d: output is missing or out of range", i)
		}
		if l.Weights, err = tensorRef(le.Uint16(r[10:]), "weights", i); err != nil {
			return nil, err
		}
		if l.Bias, err = tensorRef(le.Uint16(r[12:]), "bias", i); err != nil {
			return nil, err
		}
		for k := range l.Params {
			l.Params[k] = int32(le.Uint32(r[16+4*k:]))
		}
		img.Layers = append(img.Layers, l)
	}
	for i := 0; i < nl; i++ {
		r := b[schedAt+i*ScheduleRecBytes:]
		img.Schedules = append(img.Schedules, LayerPlan{Layer: i,
			TileH: int(le.Uint16(r[0:])), TileW: int(le.Uint16(r[2:])), TileC: int(le.Uint16(r[4:])), TileR: int(le.Uint16(r[6:])),
			CommitEvery: int(le.Uint16(r[8:])), NoCommitAtEnd: le.Uint16(r[10:])&ScheduleNoCommitAtEnd != 0,
			FirstTask: int(le.Uint32(r[12:])), Tasks: int(le.Uint32(r[16:])), PartialBase: int(le.Uint32(r[20:])),
			PartialSlots: int(le.Uint16(r[24:])), PartialSlotBytes: int(le.Uint32(r[28:]))})
	}
	next := 0
	for i, sc := range img.Schedules {
		if sc.FirstTask != next {
			return nil, fmt.Errorf("plan: image: schedule %d starts at task %d, the layers before end at %d", i, sc.FirstTask, next)
		}
		next += sc.Tasks
		if sc.PartialSlots > 0 && (sc.PartialBase < HeaderBytes || sc.PartialBase > img.NVMBytes ||
			sc.PartialSlots*sc.PartialSlotBytes > img.NVMBytes-sc.PartialBase) {
			return nil, fmt.Errorf("plan: image: schedule %d: partial-sum slots at %d+%dx%d lie outside the NVM area", i, sc.PartialBase, sc.PartialSlots, sc.PartialSlotBytes)
		}
	}
	if next > MaxTasksFor(img.WordBytes) {
		return nil, fmt.Errorf("plan: image: %d tasks, more than a %d-byte progress word counts", next, img.WordBytes)
	}
	for i := 0; i < nq; i++ {
		img.Quant = append(img.Quant, [2]int32{int32(le.Uint32(b[quantAt+8*i:])), int32(le.Uint32(b[quantAt+8*i+4:]))})
	}
	if hasJIT {
		r := b[sectionAt:recordsEnd]
		if len(r) != JITHeadBytes+4*nl {
			return nil, fmt.Errorf("plan: image: jit section of %d bytes, want %d for %d layers", len(r), JITHeadBytes+4*nl, nl)
		}
		j := &ImageJIT{ThresholdMV: le.Uint16(r[0:]), VonMV: le.Uint16(r[2:]), SnapshotOffset: le.Uint32(r[4:]), SnapshotBytes: le.Uint32(r[8:]), ChunkPixels: make([]uint32, nl)}
		if j.ThresholdMV == 0 || j.VonMV <= j.ThresholdMV {
			return nil, fmt.Errorf("plan: image: jit section: threshold %d mV, turn-on %d mV (want 0 < threshold < turn-on)", j.ThresholdMV, j.VonMV)
		}
		if j.SnapshotOffset < HeaderBytes || j.SnapshotOffset%4 != 0 || j.SnapshotBytes < SnapshotHeaderBytes ||
			uint64(j.SnapshotOffset)+uint64(j.SnapshotBytes) > uint64(img.NVMBytes) {
			return nil, fmt.Errorf("plan: image: jit section: snapshot area %d+%d lies outside NVM [%d, %d) (or is unaligned, or shorter than its %d-byte header)", j.SnapshotOffset, j.SnapshotBytes, HeaderBytes, img.NVMBytes, SnapshotHeaderBytes)
		}
		for i := range j.ChunkPixels {
			if j.ChunkPixels[i] = le.Uint32(r[JITHeadBytes+4*i:]); j.ChunkPixels[i] == 0 {
				return nil, fmt.Errorf("plan: image: jit section: layer %d has chunks of 0 pixels", i)
			}
		}
		img.JIT = j
	}
	if hasRule {
		r := b[sectionAt:recordsEnd]
		rule := &ImageRule{CapacitanceNF: le.Uint32(r[0:]), VonMV: le.Uint16(r[4:]), VoffMV: le.Uint16(r[6:]), LimitNJ: le.Uint32(r[8:])}
		if len(r) != RuleHeadBytes+4*next {
			return nil, fmt.Errorf("plan: image: rule section of %d bytes, want %d for %d tasks", len(r), RuleHeadBytes+4*next, next)
		}
		if rule.CapacitanceNF == 0 || rule.VoffMV == 0 || rule.VonMV <= rule.VoffMV {
			return nil, fmt.Errorf("plan: image: rule section: capacitance %d nF, turn-on %d mV, brown-out %d mV (want a capacitance and 0 < brown-out < turn-on)", rule.CapacitanceNF, rule.VonMV, rule.VoffMV)
		}
		rule.NeedNJ = make([]uint32, next)
		for i := range rule.NeedNJ {
			rule.NeedNJ[i] = le.Uint32(r[RuleHeadBytes+4*i:])
		}
		img.Rule = rule
	}
	return img, nil
}
