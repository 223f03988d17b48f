// Package refexec is the reference executor: it runs an imported model's
// layers in order with the bit-exact int8 kernels, in one preallocated arena,
// and computes any region of any layer on caller-supplied buffers (which is
// how the simulated board runs intermittent tasks on its NVM image).
//
// Every output of every board is judged against this executor.
package refexec

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/batteryless/harness/harness/fixedpoint"
	"github.com/batteryless/harness/harness/kernels"
	"github.com/batteryless/harness/harness/model"
)

// Executor runs whole inferences of one model. It allocates its arena once;
// Invoke allocates nothing. An Executor is not safe for concurrent use: make
// one per goroutine (they share the model's read-only weights).
type Executor struct {
	m       *model.Model
	arena   []byte
	scratch kernels.Scratch
}

// New makes an executor with the model's planned arena.
func New(m *model.Model) *Executor {
	return &Executor{
		m:     m,
		arena: make([]byte, m.Plan.ArenaBytes),
	}
}

// Options change how an Executor computes.
type Options struct {
	// Rounding of every requantization: fixedpoint.Double (the zero value,
	// TFLite Micro's, which every board is judged by) or fixedpoint.Single
	// (TFLite desktop's and XNNPACK's, for comparing with those engines).
	Rounding fixedpoint.Rounding
}

// NewWith makes an executor with options o.
func NewWith(m *model.Model, o Options) *Executor {
	if o.Rounding != fixedpoint.Double {
		m = m.WithRounding(o.Rounding)
	}
	return New(m)
}

// Model is the executor's model.
func (e *Executor) Model() *model.Model { return e.m }

// ArenaBytes is the size of the executor's activation arena.
func (e *Executor) ArenaBytes() int { return len(e.arena) }

func (e *Executor) view(t int) []byte {
	tt := e.m.Tensors[t]
	return e.arena[tt.Offset : tt.Offset+tt.Bytes()]
}

// SetInput copies the input tensor's raw bytes (int8 values, or little-endian
// float32 for a float model input) into the arena.
func (e *Executor) SetInput(data []byte) error {
	in := e.m.InputTensor()
	if len(data) != in.Bytes() {
		return fmt.Errorf("input is %d bytes, but the model's input %q (%s %v) needs %d", len(data), in.Name, in.DType, in.Dims, in.Bytes())
	}
	copy(e.view(e.m.Input), data)
	return nil
}

// Invoke runs every layer on the current input.
func (e *Executor) Invoke() {
	var ins [2][]byte
	for _, l := range e.m.Layers {
		for i, t := range l.Inputs {
			ins[i] = e.view(t)
		}
		RunLayer(e.m, l, ins[:len(l.Inputs)], e.view(l.Output), e.m.OutputShape(l).Full(), &e.scratch)
	}
}

// InvokeEach runs every layer on the current input, as Invoke does, and
// after each layer calls f with the layer, the raw bytes of its input
// tensors (in l.Inputs order) and of its whole output tensor. The slices are
// views of the arena, valid only during the call: later layers reuse the
// memory. A layer's inputs and its output never share arena bytes (they are
// alive at the same step), so ins still hold what the layer read.
func (e *Executor) InvokeEach(f func(l *model.Layer, ins [][]byte, out []byte)) {
	var ins [2][]byte
	for _, l := range e.m.Layers {
		for i, t := range l.Inputs {
			ins[i] = e.view(t)
		}
		out := e.view(l.Output)
		RunLayer(e.m, l, ins[:len(l.Inputs)], out, e.m.OutputShape(l).Full(), &e.scratch)
		f(l, ins[:len(l.Inputs)], out)
	}
}

// Output is the output tensor's raw bytes; it is overwritten by the next Invoke.
func (e *Executor) Output() []byte { return e.view(e.m.Output) }

// Run sets the input, invokes and returns a copy of the output.
func (e *Executor) Run(input []byte) ([]byte, error) {
	if err := e.SetInput(input); err != nil {
		return nil, err
	}
	e.Invoke()
	return append([]byte(nil), e.Output()...), nil
}

// RunLayer computes region r of layer l's output. ins are the raw bytes of
// the layer's input tensors (in l.Inputs order) and out the raw bytes of its
// whole output tensor; only the region's elements of out are written. s is
// the kernels' working memory: keep one per goroutine and pass it to every
// call (nil allocates at each call).
func RunLayer(m *model.Model, l *model.Layer, ins [][]byte, out []byte, r kernels.Region, s *kernels.Scratch) {
	o := model.BytesAsInt8(out)
	in0 := model.BytesAsInt8(ins[0])
	switch l.Op {
	case model.OpConv2D:
		kernels.Conv2D(l.Conv, in0, l.WeightsData(), l.BiasData(), o, r, s)
	case model.OpDepthwiseConv2D:
		kernels.DepthwiseConv2D(l.Conv, in0, l.WeightsData(), l.BiasData(), o, r, s)
	case model.OpFullyConnected:
		kernels.FullyConnected(l.FC, in0, l.WeightsData(), l.BiasData(), o, r)
	case model.OpAveragePool2D:
		kernels.AveragePool(l.Pool, in0, o, r)
	case model.OpMaxPool2D:
		kernels.MaxPool(l.Pool, in0, o, r)
	case model.OpAdd:
		kernels.Add(l.Add, in0, model.BytesAsInt8(ins[1]), o, r, s)
	case model.OpMul:
		kernels.Mul(l.Mul, in0, model.BytesAsInt8(ins[1]), o, r)
	case model.OpReshape:
		// A reshape keeps the bytes in order; its region is over the output
		// shape, whose element order is the input's.
		s := m.OutputShape(l)
		size := m.Tensors[l.Output].DType.Size()
		s.C *= size
		r.C0, r.C1 = r.C0*size, r.C1*size
		kernels.Copy(s, in0, o, r)
	case model.OpSoftmax:
		kernels.Softmax(l.Softmax, in0, o, r)
	case model.OpQuantize:
		if l.Requant != nil {
			kernels.Requantize(l.Requant, in0, o, r)
			return
		}
		quantizeFloat(l.Edge, ins[0], o, r)
	case model.OpDequantize:
		dequantize(l.Edge, in0, out, r)
	default:
		panic(fmt.Sprintf("refexec: layer %d has unknown operator %v", l.Index, l.Op))
	}
}

// regionIndices calls f for each flat element index of region r of shape s.
func regionIndices(s kernels.Shape, r kernels.Region, f func(i int)) {
	for n := r.N0; n < r.N1; n++ {
		for y := r.Y0; y < r.Y1; y++ {
			for x := r.X0; x < r.X1; x++ {
				base := ((n*s.H+y)*s.W + x) * s.C
				for c := r.C0; c < r.C1; c++ {
					f(base + c)
				}
			}
		}
	}
}

// quantizeFloat is TFLite's AffineQuantize (float32 arithmetic, round half
// away from zero, clamp to int8).
func quantizeFloat(q *model.EdgeQuant, in []byte, out []int8, r kernels.Region) {
	scale := float32(q.Scale)
	regionIndices(q.Shape, r, func(i int) {
		v := math.Float32frombits(binary.LittleEndian.Uint32(in[4*i:]))
		qv := int64(math.Round(float64(v/scale))) + int64(q.ZeroPoint)
		if math.IsNaN(float64(v)) {
			qv = int64(q.ZeroPoint)
		}
		out[i] = int8(min(max(qv, -128), 127))
	})
}

// dequantize is TFLite's Dequantize: float32(scale * (q - zero_point)).
func dequantize(q *model.EdgeQuant, in []int8, out []byte, r kernels.Region) {
	regionIndices(q.Shape, r, func(i int) {
		v := float32(q.Scale * float64(int32(in[i])-q.ZeroPoint))
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
	})
}

// AccumulateLayer adds the reduction range [lo, hi) of region r of layer l
// to acc (one int32 per value of r, in region order): input channels of a
// CONV_2D, inputs of a FULLY_CONNECTED, window rows of an AVERAGE_POOL_2D.
func AccumulateLayer(l *model.Layer, ins [][]byte, r kernels.Region, lo, hi int, acc []int32) {
	in0 := model.BytesAsInt8(ins[0])
	switch l.Op {
	case model.OpConv2D:
		kernels.Conv2DAccumulate(l.Conv, in0, l.WeightsData(), r, lo, hi, acc)
	case model.OpFullyConnected:
		kernels.FullyConnectedAccumulate(l.FC, in0, l.WeightsData(), r, lo, hi, acc)
	case model.OpAveragePool2D:
		kernels.AveragePoolAccumulate(l.Pool, in0, r, lo, hi, acc)
	default:
		panic(fmt.Sprintf("refexec: layer %d (%v) has no split reduction", l.Index, l.Op))
	}
}

// FinishLayer turns the complete partial sums of region r into layer l's
// int8 outputs.
func FinishLayer(l *model.Layer, acc []int32, out []byte, r kernels.Region) {
	o := model.BytesAsInt8(out)
	switch l.Op {
	case model.OpConv2D:
		kernels.ConvFinish(l.Conv, l.BiasData(), acc, o, r)
	case model.OpFullyConnected:
		kernels.FullyConnectedFinish(l.FC, l.BiasData(), acc, o, r)
	case model.OpAveragePool2D:
		kernels.AveragePoolFinish(l.Pool, acc, o, r)
	default:
		panic(fmt.Sprintf("refexec: layer %d (%v) has no split reduction", l.Index, l.Op))
	}
}
