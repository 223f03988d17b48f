package vectors

import (
	"fmt"
	"slices"
	"sort"

	"github.com/batteryless/harness/harness/kernels"
)

// Result is the outcome of one case.
type Result struct {
	Path       string `json:"path"`
	Op         string `json:"op"`
	Case       string `json:"case"`
	Passed     bool   `json:"passed"`
	Mismatches int    `json:"mismatches"`           // values that differ from output_ref
	FirstDiff  string `json:"first_diff,omitempty"` // where and by how much, for people
	Err        string `json:"error,omitempty"`      // the case could not be run
}

// Ops lists the operators this package can run.
func Ops() []string {
	ops := make([]string, 0, len(runners))
	for op := range runners {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	return ops
}

var runners = map[string]func(*Case) ([]int8, error){
	"conv2d_s8":           runConv,
	"depthwise_conv2d_s8": runConv,
	"fully_connected_s8":  runFC,
	"avgpool_s8":          runPool,
	"maxpool_s8":          runPool,
	"softmax_s8":          runSoftmax,
	"add_s8":              runAdd,
	"mul_s8":              runMul,
}

// Run computes a case with the reference kernels and compares it with its
// output_ref, value by value.
func Run(c *Case) Result {
	r := Result{Path: c.Path, Op: c.Op, Case: c.Name}
	run, ok := runners[c.Op]
	if !ok {
		r.Err = fmt.Sprintf("%s: operator %q is not supported (supported: %v)", c.Path, c.Op, Ops())
		return r
	}
	got, err := run(c)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	want, err := c.Tensor("output_ref", "int8", len(got))
	if err != nil {
		r.Err = err.Error()
		return r
	}
	for i, w := range want.Data {
		if int64(got[i]) != w {
			if r.Mismatches == 0 {
				r.FirstDiff = fmt.Sprintf("output[%d] = %d, want %d", i, got[i], w)
			}
			r.Mismatches++
		}
	}
	r.Passed = r.Mismatches == 0
	return r
}

// params reads integer parameters, keeping the first error.
type params struct {
	c   *Case
	err error
}

func (p *params) i(name string) int {
	v, err := p.c.Int(name)
	if err != nil && p.err == nil {
		p.err = err
	}
	return v
}

func (p *params) i32(name string) int32 { return int32(p.i(name)) }

// positive checks that shape-like parameters are in a sane range, so a lying
// file cannot make the kernels index out of range or allocate without bound.
func (p *params) positive(names ...string) {
	for _, n := range names {
		if v := p.i(n); p.err == nil && (v <= 0 || v > 1<<16) {
			p.err = fmt.Errorf("%s: params.%s = %d is out of range [1, 65536]", p.c.Path, n, v)
		}
	}
}

func (p *params) tensor(name, dtype string, elems int) *kernelsTensor {
	if p.err != nil {
		return &kernelsTensor{}
	}
	t, err := p.c.Tensor(name, dtype, elems)
	if err != nil {
		p.err = err
		return &kernelsTensor{}
	}
	return &kernelsTensor{t}
}

type kernelsTensor struct{ *Tensor }

func (t *kernelsTensor) i8() []int8 {
	if t.Tensor == nil {
		return nil
	}
	return t.Int8s()
}

func (t *kernelsTensor) i32() []int32 {
	if t.Tensor == nil {
		return nil
	}
	return t.Int32s()
}

func tooBig(c *Case, elems ...int) error {
	for _, e := range elems {
		if e > 1<<26 {
			return fmt.Errorf("%s: a tensor of %d elements is larger than the vector runner accepts", c.Path, e)
		}
	}
	return nil
}

func runConv(c *Case) ([]int8, error) {
	p := &params{c: c}
	depthwise := c.Op == "depthwise_conv2d_s8"
	p.positive("input_batches", "input_h", "input_w", "in_ch", "out_ch", "filter_y", "filter_x",
		"stride_y", "stride_x", "dilation_y", "dilation_x", "output_h", "output_w")
	mult := 1
	if depthwise {
		p.positive("ch_mult")
		mult = p.i("ch_mult")
	}
	if p.err != nil {
		return nil, p.err
	}
	cp := kernels.ConvParams{
		In:      kernels.Shape{N: p.i("input_batches"), H: p.i("input_h"), W: p.i("input_w"), C: p.i("in_ch")},
		Out:     kernels.Shape{N: p.i("input_batches"), H: p.i("output_h"), W: p.i("output_w"), C: p.i("out_ch")},
		KernelH: p.i("filter_y"), KernelW: p.i("filter_x"),
		StrideH: p.i("stride_y"), StrideW: p.i("stride_x"),
		DilationH: p.i("dilation_y"), DilationW: p.i("dilation_x"),
		PadTop: p.i("pad_y"), PadLeft: p.i("pad_x"),
		DepthMultiplier: mult,
		InputOffset:     p.i32("input_offset"), OutputOffset: p.i32("output_offset"),
		ActMin: p.i32("out_activation_min"), ActMax: p.i32("out_activation_max"),
	}
	if p.err != nil {
		return nil, p.err
	}
	if depthwise && cp.Out.C != cp.In.C*mult {
		return nil, fmt.Errorf("%s: out_ch %d is not in_ch %d x ch_mult %d", c.Path, cp.Out.C, cp.In.C, mult)
	}
	wElems := cp.Out.C * cp.KernelH * cp.KernelW * cp.In.C
	if depthwise {
		wElems = cp.KernelH * cp.KernelW * cp.Out.C
	}
	if err := tooBig(c, cp.In.Elems(), cp.Out.Elems(), wElems); err != nil {
		return nil, err
	}
	in := p.tensor("input", "int8", cp.In.Elems()).i8()
	w := p.tensor("weights", "int8", wElems).i8()
	bias := p.tensor("biases", "int32", cp.Out.C).i32()
	cp.Multiplier = p.tensor("output_mult", "int32", cp.Out.C).i32()
	cp.Shift = p.tensor("output_shift", "int32", cp.Out.C).i32()
	if p.err != nil {
		return nil, p.err
	}
	if err := checkShifts(c, cp.Shift); err != nil {
		return nil, err
	}
	// Both kernels run every case: the portable one, and the fast one the
	// executor uses (when the case's parameters allow it), which must agree.
	run := func() []int8 {
		out := make([]int8, cp.Out.Elems())
		if depthwise {
			kernels.DepthwiseConv2D(&cp, in, w, bias, out, cp.Out.Full(), nil)
		} else {
			kernels.Conv2D(&cp, in, w, bias, out, cp.Out.Full(), nil)
		}
		return out
	}
	out := run()
	if cp.Prepare(w, bias, depthwise) {
		if fast := run(); !slices.Equal(fast, out) {
			return nil, fmt.Errorf("%s: the fast kernel's output differs from the portable kernel's", c.Path)
		}
	}
	return out, nil
}

func checkShifts(c *Case, shifts []int32) error {
	for i, s := range shifts {
		if s < -31 || s > 30 {
			return fmt.Errorf("%s: shift %d of channel %d is outside [-31, 30]", c.Path, s, i)
		}
	}
	return nil
}

func runFC(c *Case) ([]int8, error) {
	p := &params{c: c}
	p.positive("input_batches", "accumulation_depth", "out_ch")
	if p.err != nil {
		return nil, p.err
	}
	fp := kernels.FCParams{
		Batches: p.i("input_batches"), Depth: p.i("accumulation_depth"), OutC: p.i("out_ch"),
		InputOffset: p.i32("input_offset"), FilterOffset: p.i32("filter_offset"), OutputOffset: p.i32("output_offset"),
		ActMin: p.i32("out_activation_min"), ActMax: p.i32("out_activation_max"),
	}
	if err := tooBig(c, fp.Batches*fp.Depth, fp.OutC*fp.Depth); err != nil {
		return nil, err
	}
	in := p.tensor("input", "int8", fp.Batches*fp.Depth).i8()
	w := p.tensor("weights", "int8", fp.OutC*fp.Depth).i8()
	bias := p.tensor("biases", "int32", fp.OutC).i32()
	if _, ok := c.Tensors["output_mult"]; ok {
		fp.Multiplier = p.tensor("output_mult", "int32", fp.OutC).i32()
		fp.Shift = p.tensor("output_shift", "int32", fp.OutC).i32()
	} else {
		fp.Multiplier = []int32{p.i32("output_multiplier")}
		fp.Shift = []int32{p.i32("output_shift")}
	}
	if p.err != nil {
		return nil, p.err
	}
	if err := checkShifts(c, fp.Shift); err != nil {
		return nil, err
	}
	out := make([]int8, fp.Batches*fp.OutC)
	kernels.FullyConnected(&fp, in, w, bias, out, fp.Shape().Full())
	return out, nil
}

func runPool(c *Case) ([]int8, error) {
	p := &params{c: c}
	p.positive("batch_size", "input_h", "input_w", "input_c", "filter_h", "filter_w", "stride_h", "stride_w", "output_h", "output_w")
	if p.err != nil {
		return nil, p.err
	}
	pp := kernels.PoolParams{
		In:      kernels.Shape{N: p.i("batch_size"), H: p.i("input_h"), W: p.i("input_w"), C: p.i("input_c")},
		Out:     kernels.Shape{N: p.i("batch_size"), H: p.i("output_h"), W: p.i("output_w"), C: p.i("input_c")},
		FilterH: p.i("filter_h"), FilterW: p.i("filter_w"),
		StrideH: p.i("stride_h"), StrideW: p.i("stride_w"),
		PadTop: p.i("padding_h"), PadLeft: p.i("padding_w"),
		ActMin: p.i32("activation_min"), ActMax: p.i32("activation_max"),
	}
	if err := tooBig(c, pp.In.Elems(), pp.Out.Elems()); err != nil {
		return nil, err
	}
	in := p.tensor("input", "int8", pp.In.Elems()).i8()
	if p.err != nil {
		return nil, p.err
	}
	out := make([]int8, pp.Out.Elems())
	if c.Op == "maxpool_s8" {
		kernels.MaxPool(&pp, in, out, pp.Out.Full())
	} else {
		kernels.AveragePool(&pp, in, out, pp.Out.Full())
	}
	return out, nil
}

func runSoftmax(c *Case) ([]int8, error) {
	p := &params{c: c}
	p.positive("num_rows", "row_size")
	if p.err != nil {
		return nil, p.err
	}
	sp := kernels.SoftmaxParams{
		Shape:     kernels.Shape{N: p.i("num_rows"), H: 1, W: 1, C: p.i("row_size")},
		InputMult: p.i32("input_mult"), InputLeftShift: p.i("input_left_shift"), DiffMin: p.i32("diff_min"),
	}
	if p.err == nil && (sp.InputLeftShift < 0 || sp.InputLeftShift > 31) {
		return nil, fmt.Errorf("%s: params.input_left_shift = %d is outside [0, 31]", c.Path, sp.InputLeftShift)
	}
	if err := tooBig(c, sp.Shape.Elems()); err != nil {
		return nil, err
	}
	in := p.tensor("input", "int8", sp.Shape.Elems()).i8()
	if p.err != nil {
		return nil, p.err
	}
	out := make([]int8, sp.Shape.Elems())
	kernels.Softmax(&sp, in, out, sp.Shape.Full())
	return out, nil
}

func elementwiseInputs(c *Case, p *params) (kernels.Shape, []int8, []int8) {
	in1 := p.tensor("input1", "int8", -1)
	n := 0
	if in1.Tensor != nil {
		n = len(in1.Data)
	}
	in2 := p.tensor("input2", "int8", n)
	return kernels.Shape{N: 1, H: 1, W: 1, C: n}, in1.i8(), in2.i8()
}

func runAdd(c *Case) ([]int8, error) {
	p := &params{c: c}
	shape, a, b := elementwiseInputs(c, p)
	ap := kernels.AddParams{
		Shape:        shape,
		Input1Offset: p.i32("input1_offset"), Input2Offset: p.i32("input2_offset"),
		LeftShift:  p.i("left_shift"),
		Input1Mult: p.i32("input1_mult"), Input1Shift: p.i("input1_shift"),
		Input2Mult: p.i32("input2_mult"), Input2Shift: p.i("input2_shift"),
		OutputMult: p.i32("output_mult"), OutputShift: p.i("output_shift"),
		OutputOffset: p.i32("output_offset"),
		ActMin:       p.i32("out_activation_min"), ActMax: p.i32("out_activation_max"),
	}
	if p.err != nil {
		return nil, p.err
	}
	if ap.LeftShift < 0 || ap.LeftShift > 24 {
		return nil, fmt.Errorf("%s: params.left_shift = %d is outside [0, 24]", c.Path, ap.LeftShift)
	}
	if err := checkShifts(c, []int32{int32(ap.Input1Shift), int32(ap.Input2Shift), int32(ap.OutputShift)}); err != nil {
		return nil, err
	}
	out := make([]int8, shape.Elems())
	kernels.Add(&ap, a, b, out, shape.Full(), nil)
	if ap.Prepare() {
		fast := make([]int8, shape.Elems())
		kernels.Add(&ap, a, b, fast, shape.Full(), nil)
		if !slices.Equal(fast, out) {
			return nil, fmt.Errorf("%s: the fast kernel's output differs from the portable kernel's", c.Path)
		}
	}
	return out, nil
}

func runMul(c *Case) ([]int8, error) {
	p := &params{c: c}
	shape, a, b := elementwiseInputs(c, p)
	mp := kernels.MulParams{
		Shape:        shape,
		Input1Offset: p.i32("input1_offset"), Input2Offset: p.i32("input2_offset"),
		OutputMult: p.i32("output_mult"), OutputShift: p.i("output_shift"),
		OutputOffset: p.i32("output_offset"),
		ActMin:       p.i32("out_activation_min"), ActMax: p.i32("out_activation_max"),
	}
	if p.err != nil {
		return nil, p.err
	}
	if err := checkShifts(c, []int32{int32(mp.OutputShift)}); err != nil {
		return nil, err
	}
	out := make([]int8, shape.Elems())
	kernels.Mul(&mp, a, b, out, shape.Full())
	return out, nil
}
